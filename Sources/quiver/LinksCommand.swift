import ArgumentParser
import QuiverKernel
import QuiverNetlink

struct LinksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "links", abstract: "List links (like dladm show-link).")
    func run() throws {}
}
