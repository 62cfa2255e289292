//! The upstream routers' families in `/metrics`.

use super::report::{SourceView, TrafficView, UpstreamReport};
use std::fmt::Write;

use crate::exposition::{Labels, head, sample, series};

/// The upstream routers' families, appended to the local ones when sources
/// are configured (built separately: they come from the state's lock).
pub fn render(report: &UpstreamReport) -> String {
    let mut text = String::with_capacity(1024 + 400 * report.sources.len());
    let out = &mut text;
    let sources = &report.sources;
    head(
        out,
        "netmeter_upstream_up",
        "gauge",
        "1 when the last scrape of the upstream router succeeded.",
    );
    for s in sources {
        let labels = [("source", s.name.as_str()), ("type", s.kind.as_str())];
        sample(out, "netmeter_upstream_up", &labels, s.ok as u64);
    }
    head(
        out,
        "netmeter_upstream_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful scrape (0: none yet).",
    );
    for s in sources {
        let name = "netmeter_upstream_last_success_timestamp_seconds";
        sample(
            out,
            name,
            &[("source", &s.name)],
            s.last_success.unwrap_or(0),
        );
    }
    fn series_of(s: &SourceView) -> Vec<(&str, TrafficView)> {
        let wan = s.wan.iter().map(|t| ("wan", *t));
        let bypass = s.bypass.iter().map(|t| ("bypass", *t));
        let others = s.interfaces.iter().map(|i| (i.name.as_str(), i.traffic));
        wan.chain(bypass).chain(others).collect()
    }
    for (name, help, rx) in [
        (
            "netmeter_upstream_receive_bytes_total",
            "Bytes the upstream router's interface received (series wan: download from the \
             ISP; series bypass: beyond what netmeter's own WAN received).",
            true,
        ),
        (
            "netmeter_upstream_transmit_bytes_total",
            "Bytes the upstream router's interface sent.",
            false,
        ),
    ] {
        head(out, name, "counter", help);
        for s in sources {
            for (series, t) in series_of(s) {
                let value = if rx { t.rx_bytes } else { t.tx_bytes };
                sample(out, name, &[("source", &s.name), ("series", series)], value);
            }
        }
    }
    for (name, help, rx) in [
        (
            "netmeter_upstream_device_receive_bytes_total",
            "Bytes the upstream router counted for a device's download.",
            true,
        ),
        (
            "netmeter_upstream_device_transmit_bytes_total",
            "Bytes the upstream router counted for a device's upload.",
            false,
        ),
    ] {
        let with_devices: Vec<_> = sources.iter().filter(|s| !s.devices.is_empty()).collect();
        if with_devices.is_empty() {
            continue;
        }
        head(out, name, "counter", help);
        for s in with_devices {
            for d in &s.devices {
                let value = if rx { d.rx_bytes } else { d.tx_bytes };
                let hostname = d.hostname.as_deref().unwrap_or("");
                let labels = [
                    ("source", s.name.as_str()),
                    ("mac", &d.mac),
                    ("hostname", hostname),
                ];
                sample(out, name, &labels, value);
            }
        }
    }
    for (name, kind, help) in [
        (
            "netmeter_upstream_line",
            "gauge",
            "A line statistic of the moment (DSL: SNR margin, attenuation, rates).",
        ),
        (
            "netmeter_upstream_line_total",
            "counter",
            "A line statistic that only grows (DSL: CRC errors, errored seconds).",
        ),
    ] {
        let values: Vec<_> = sources
            .iter()
            .flat_map(|s| s.line.iter().map(move |l| (s, l)))
            .filter(|(_, l)| (l.kind == "counter") == (kind == "counter"))
            .collect();
        if values.is_empty() {
            continue;
        }
        head(out, name, kind, help);
        for (s, l) in values {
            let end = l.end.as_deref().unwrap_or("");
            let labels = [("source", s.name.as_str()), ("name", &l.name), ("end", end)];
            sample_float(out, name, &labels, l.value);
        }
    }
    text
}

/// A line statistic: Prometheus' float text (shortest form, NaN, ±Inf).
fn sample_float(out: &mut String, name: &str, labels: Labels, value: f64) {
    series(out, name, labels);
    let _ = match value {
        v if v.is_nan() => writeln!(out, " NaN"),
        v if v.is_infinite() => writeln!(out, " {}Inf", if v > 0.0 { '+' } else { '-' }),
        v => writeln!(out, " {v}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_values_print_in_the_shortest_form_that_reads_back() {
        for (v, text) in [
            (12.0, "12"),
            (12.3, "12.3"),
            (-0.25, "-0.25"),
            (0.0001, "0.0001"),
            (1e12, "1000000000000"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            let mut out = String::new();
            sample_float(&mut out, "x", &[], v);
            assert_eq!(out, format!("x {text}\n"));
        }
    }
}
