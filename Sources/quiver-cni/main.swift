import Foundation
import QuiverCNI

// quiver-cni: the CNI protocol on stdin/stdout (docs/CNI.md). The runtime's environment and
// configuration in; the result or the spec's error object out; notes on stderr. A runtime starts
// it for every call, so start-up avoids what it does not need (ProcessInfo, FileHandle).
var environment: [String: String] = [:]
var entry = environ
while let p = entry.pointee {
    let pair = String(cString: p)
    if let eq = pair.firstIndex(of: "=") { environment[String(pair[..<eq])] = String(pair[pair.index(after: eq)...]) }
    entry += 1
}
var input: [UInt8] = []
var chunk = [UInt8](repeating: 0, count: 65536)
while true {
    let n = read(0, &chunk, chunk.count)
    if n > 0 { input += chunk[0..<n]; continue }
    if n < 0 && errno == EINTR { continue }
    break
}
func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        off += n
    }
}
let output = CNIPlugin.run(environment: environment, stdin: Data(input))
writeAll(1, [UInt8](output.stdout))
for line in output.stderr { writeAll(2, Array((line + "\n").utf8)) }
exit(output.exitCode)
