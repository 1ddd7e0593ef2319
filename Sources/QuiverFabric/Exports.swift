// The front door: `import QuiverFabric` brings a topology's file format (QuiverTopology), the
// values and kernel objects it is made of (QuiverKernel, with QuiverValues) and the probes that
// measure it (QuiverProbe) — what another project's tests need to bring a fabric up, probe it
// and tear it down.
@_exported import QuiverKernel
@_exported import QuiverProbe
@_exported import QuiverTopology
