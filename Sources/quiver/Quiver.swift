import ArgumentParser

@main
struct Quiver: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quiver",
        abstract: "A Crossbow-like virtual network fabric for Linux.",
        subcommands: [LinksCommand.self])
}
