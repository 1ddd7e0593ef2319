/// An error in a value a user gave (a name, an address, a rate): says what is wrong and what to do.
public struct InvalidValue: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// A value from the user, as an error message shows it: in double quotes, at most `limit`
    /// characters (then `…`), with control characters, quotes and backslashes escaped — a
    /// message must never carry a terminal escape sequence or a megabyte of input.
    public static func quoted(_ value: some StringProtocol, limit: Int = 64) -> String {
        "\"" + escaped(value, limit: limit) + "\""
    }

    /// ``quoted(_:limit:)`` without the quotes.
    public static func escaped(_ value: some StringProtocol, limit: Int = 64) -> String {
        var out = ""
        var n = 0
        for u in value.unicodeScalars {
            if n == limit { out += "…"; break }
            n += 1
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || (0x7F...0x9F).contains(u.value) || u.properties.generalCategory == .format
                    || u.properties.generalCategory == .lineSeparator || u.properties.generalCategory == .paragraphSeparator {
                    out += "\\u{" + String(u.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }
}
