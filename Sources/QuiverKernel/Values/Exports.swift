// The values every layer shares (names, addresses, rates, the cap model, checked state
// directories) live in the pure QuiverValues target; `import QuiverKernel` brings them along.
@_exported import QuiverValues
