import Foundation
import Logging

/// `--log-format`: one line per event on standard error (journald adds its own timestamps), as
/// text (`LEVEL message key=value...`) or as one JSON object per line.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

/// A swift-log handler writing each event as one line to standard error, whole (one `write`).
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let format: LogFormat
    private let label: String

    public init(label: String, format: LogFormat) {
        self.label = label
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let m = event.metadata { all.merge(m) { _, new in new } }
        let line: String
        switch format {
        case .json:
            var object: [String: String] = ["time": ISO8601DateFormatter().string(from: Date()), "level": event.level.rawValue,
                                            "message": "\(event.message)", "logger": label]
            for (k, v) in all { object[k] = "\(v)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = String(decoding: data, as: UTF8.self)
        case .text:
            let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.quoted("\($0.value)"))" }
            line = ([event.level.rawValue.uppercased(), "\(event.message)"] + fields).joined(separator: " ")
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// A value with a space, a quote or a control character is quoted, so each line stays one
    /// line and splits into its fields.
    static func quoted(_ v: String) -> String {
        guard v.isEmpty || v.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.asciiValue.map { $0 < 0x20 } == true }) else { return v }
        var out = "\""
        for c in v.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where c.value < 0x20: out += String(format: "\\x%02x", c.value)
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}
