import Foundation

/// A JSON Schema (draft 2020-12) of topology files, made from ``TopologyFields``: what
/// `quiver schema` prints, for editors that complete and check YAML against a schema (the YAML
/// language server: `# yaml-language-server: $schema=…` at the top of a file).
///
/// It checks keys and the shape of values; what needs the whole file or the host (references,
/// collisions, addresses in use, files) is validation's (`quiver validate`). Every value may be
/// written as a string, as the parser reads text: `mtu: "1500"` is a number.
public enum TopologySchema {
    public static let id = "https://quiver.invalid/schema/topology.json"

    public static func document() -> [String: Any] {
        var defs: [String: Any] = [:]
        for s in TopologyFields.sections where s.id != "topology" { defs[s.id] = object(s) }
        for e in TopologyFields.expectations { defs[e.id] = object(e) }
        defs["expectation"] = [
            "description": "one key naming the kind, holding its fields",
            "oneOf": TopologyFields.expectations.map { e in
                ["type": "object", "properties": [e.id: ["$ref": "#/$defs/\(e.id)"]], "required": [e.id], "additionalProperties": false] as [String: Any]
            },
        ]
        var top = object(TopologyFields.topology)
        top["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        top["$id"] = id
        top["title"] = "Quiver topology"
        top["$defs"] = defs
        return top
    }

    /// The schema as JSON text (keys sorted, indented).
    public static func text() throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: document(), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]),
               as: UTF8.self)
    }

    static func object(_ s: FieldSection) -> [String: Any] {
        var properties: [String: Any] = [:]
        for f in s.fields { properties[f.key] = value(f.type, f.meaning) }
        var o: [String: Any] = ["type": "object", "properties": properties, "additionalProperties": false,
                                "required": s.fields.filter { $0.presence == .required }.map(\.key)]
        if s.id == "host" {
            // Keys of guests only on `kind: vm` hosts; a guest's NICs take the VM keys, a
            // namespace host's the netns ones.
            let vmKeys = s.fields.filter { $0.presence == .vmHost }.map(\.key)
            let nicOnly = { (p: Presence) in TopologyFields.vnic.fields.filter { $0.presence == p }.map(\.key) }
            func refuse(_ keys: [String]) -> [String: Any] { Dictionary(uniqueKeysWithValues: keys.map { ($0, false as Any) }) }
            o["if"] = ["properties": ["kind": ["const": "vm"]], "required": ["kind"]]
            o["then"] = ["anyOf": [["required": ["kernel"]], ["required": ["image"]]],
                         "properties": ["vnics": ["items": ["properties": refuse(nicOnly(.netnsNIC))]]]]
            o["else"] = ["properties": refuse(vmKeys).merging(["vnics": ["items": ["properties": refuse(nicOnly(.vmNIC))]]]) { a, _ in a }]
        }
        return o
    }

    /// A string of digits or an integer in `range`.
    static func integer(_ range: ClosedRange<Int>) -> [String: Any] {
        ["anyOf": [["type": "integer", "minimum": range.lowerBound, "maximum": range.upperBound], ["type": "string", "pattern": "^[0-9]+$"]]]
    }

    static func value(_ t: FieldType, _ description: String? = nil) -> [String: Any] {
        var v: [String: Any]
        switch t {
        case .name(let max): v = ["type": "string", "pattern": "^[A-Za-z0-9_]{1,\(max)}$"]
        case .text, .path: v = ["type": "string"]
        case .interfaceName: v = ["type": "string", "pattern": "^[^/:%\\s]{1,15}$"]
        case .integer(let r): v = integer(r)
        case .decimal(let r):
            v = ["anyOf": [["type": "number", "minimum": r.lowerBound, "maximum": r.upperBound], ["type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"]]]
        case .rate:
            v = ["anyOf": [["type": "integer", "minimum": 0], ["type": "number", "minimum": 0],
                           ["type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?[KkMmGg]?\\s*$"]]]
        case .bytes: v = integer(1514...Int(UInt32.max))
        case .port: v = integer(1...65535)
        case .choice(let words): v = ["type": "string", "enum": words]
        case .mac: v = ["type": "string", "pattern": "^(auto|random|[0-9A-Fa-f]{1,2}([:-][0-9A-Fa-f]{1,2}){5})$"]
        case .address: v = ["type": "string", "pattern": "^[0-9A-Fa-f:.]+$"]
        case .prefix: v = ["type": "string", "pattern": "^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$"]
        case .endpoint: v = ["type": "string", "pattern": "^[^/]+/[^/]+(/[^/]+)?$"]
        case .percentage: v = ["anyOf": [["type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1], ["type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?%?$"]]]
        case .autoOnOff: v = ["anyOf": [["type": "string", "enum": ["auto", "on", "off"]], ["type": "boolean"]]]
        case .boolean: v = ["anyOf": [["type": "boolean"], ["type": "string", "enum": ["true", "false"]]]]
        case .size: v = ["anyOf": [["type": "integer", "minimum": 1], ["type": "string", "pattern": "^[0-9]+[KkMmGgTt]?$"]]]
        case .list(let item): v = ["type": "array", "items": value(item)]
        case .sections(let id): v = ["anyOf": [["type": "array", "items": ["$ref": "#/$defs/\(id)"]], ["type": "null"]]]
        case .oneOrList(let item): v = ["anyOf": [value(item), ["type": "array", "items": value(item)]]]
        }
        if let description { v["description"] = description.replacingOccurrences(of: "`", with: "") }
        return v
    }
}
