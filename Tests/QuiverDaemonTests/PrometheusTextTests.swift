@testable import QuiverDaemon
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
}
