@testable import QuiverDaemon
@testable import QuiverFabric
import Testing

/// The exposition writer, byte for byte: families kept together in first-use order, label
/// values and help escaped by the format's rules, values spelled as Prometheus reads them.
@Suite struct PrometheusTextTests {
    @Test func familiesTogetherInFirstUseOrder() {
        var t = PrometheusText()
        t.counter("a_total", "A things.", .init([("x", "1")]), 3)
        t.gauge("b", "B now.", .init(), 0.5)
        t.counter("a_total", "A things.", .init([("x", "2")]), 18_446_744_073_709_551_615)
        #expect(t.render() == """
        # HELP a_total A things.
        # TYPE a_total counter
        a_total{x="1"} 3
        a_total{x="2"} 18446744073709551615
        # HELP b B now.
        # TYPE b gauge
        b 0.5

        """)
    }

    @Test func hostileLabelValuesAndHelpAreEscaped() {
        var t = PrometheusText()
        t.gauge("g", "line one\nback\\slash \"quoted\"", .init([("v", "a\"b\\c\nd}e,f=g")]).adding("u", "ünï"), 1)
        #expect(t.render() == """
        # HELP g line one\\nback\\\\slash "quoted"
        # TYPE g gauge
        g{v="a\\"b\\\\c\\nd}e,f=g",u="ünï"} 1

        """)
    }

    @Test func numbers() {
        #expect(PrometheusText.number(2_500_000) == "2500000")
        #expect(PrometheusText.number(-3) == "-3")
        #expect(PrometheusText.number(0.000012) == "1.2e-05")
        #expect(PrometheusText.number(1e300) == "1e+300")
        #expect(PrometheusText.number(.nan) == "NaN")
        #expect(PrometheusText.number(.infinity) == "+Inf")
        #expect(PrometheusText.number(-.infinity) == "-Inf")
    }

    @Test func aFamilyWithoutSamplesIsNotWritten() {
        var t = PrometheusText()
        _ = t.family("unused_total", "Never sampled.", .counter, expected: 4096)
        let used = t.family("used", "Sampled.", .gauge)
        t.add(used, .init(), 2.0)
        #expect(t.render() == """
        # HELP used Sampled.
        # TYPE used gauge
        used 2

        """)
        #expect(PrometheusText().render() == "")
    }

    /// Parts written apart join family by family: each family once, where a part first declared
    /// it, its samples from part 0 before part 1's; `count` and the pieces are the same bytes.
    @Test func partsJoinFamilyByFamily() {
        var a = PrometheusText(), b = PrometheusText()
        a.counter("x_total", "X.", .init([("n", "a1")]), 1)
        b.gauge("only_b", "Only in b.", .init(), 7)
        b.counter("x_total", "X.", .init([("n", "b1")]), 2)
        a.counter("x_total", "X.", .init([("n", "a2")]), 3)
        a.gauge("only_a", "Only in a.", .init(), 5)
        let e = PrometheusText.Exposition([a, b])
        let text = String(decoding: e.bytes(), as: UTF8.self)
        #expect(text == """
        # HELP x_total X.
        # TYPE x_total counter
        x_total{n="a1"} 1
        x_total{n="a2"} 3
        x_total{n="b1"} 2
        # HELP only_a Only in a.
        # TYPE only_a gauge
        only_a 5
        # HELP only_b Only in b.
        # TYPE only_b gauge
        only_b 7

        """)
        #expect(e.count == e.bytes().count)
        var pieces: [UInt8] = []
        e.write { pieces.append(contentsOf: $0) }
        #expect(pieces == e.bytes())
    }

    /// `Metrics` writes each topology's rows in two halves on two threads; the exposition still
    /// lists every VNIC in row order within each family, and the topology-wide counters once.
    @Test func metricsHalvesKeepRowOrder() {
        let rows = (0..<5).map { i in
            var r = VNICStats(topology: "t", tenant: "a", host: "h\(i)", vnic: "n0", link: "l\(i)")
            r.ipackets = UInt64(10 + i)
            return r
        }
        let text = Metrics.render([TopologyStats(vnics: rows, isolationDrops: ["a": 4])])
        let received = text.split(separator: "\n").filter { $0.hasPrefix("quiver_vnic_receive_packets_total{") }.map(String.init)
        #expect(received == (0..<5).map { "quiver_vnic_receive_packets_total{topology=\"t\",tenant=\"a\",host=\"h\($0)\",vnic=\"n0\"} \(10 + $0)" })
        #expect(text.components(separatedBy: "# TYPE quiver_vnic_receive_packets_total counter").count == 2)
        #expect(text.contains("quiver_tenant_isolation_drops_total{topology=\"t\",tenant=\"a\"} 4\n"))
        #expect(text.components(separatedBy: "quiver_tenant_isolation_drops_total{").count == 2)
    }
}
