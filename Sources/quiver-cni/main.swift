import Foundation
import QuiverCNI

// quiver-cni: the CNI protocol on stdin/stdout (docs/CNI.md). The runtime's environment and
// configuration in; the result or the spec's error object out; notes on stderr.
let input = FileHandle.standardInput.readDataToEndOfFile()
let output = CNIPlugin.run(environment: ProcessInfo.processInfo.environment, stdin: input)
FileHandle.standardOutput.write(output.stdout)
for line in output.stderr { FileHandle.standardError.write(Data((line + "\n").utf8)) }
exit(output.exitCode)
