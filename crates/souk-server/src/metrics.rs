//! Prometheus counters for `/metrics`: calls by route and errcode, and their total latency.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Call counters, by (route, errcode).
#[derive(Debug, Default)]
pub struct Metrics {
    calls: Mutex<BTreeMap<(String, i64), (u64, u64)>>,
}

impl Metrics {
    /// Counts one call.
    pub fn observe(&self, route: &str, errcode: i64, latency_us: i64) {
        let mut calls = self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = calls.entry((route.to_owned(), errcode)).or_default();
        entry.0 += 1;
        entry.1 += u64::try_from(latency_us).unwrap_or(0);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let calls = self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::from("# HELP souk_calls_total Calls answered, by route and errcode.\n# TYPE souk_calls_total counter\n");
        for ((route, errcode), (count, _)) in calls.iter() {
            let _ = writeln!(out, "souk_calls_total{{route=\"{route}\",errcode=\"{errcode}\"}} {count}");
        }
        out.push_str(
            "# HELP souk_call_latency_seconds_total Time spent answering calls.\n# TYPE souk_call_latency_seconds_total counter\n",
        );
        for ((route, errcode), (_, latency_us)) in calls.iter() {
            #[allow(clippy::cast_precision_loss, reason = "a metric, not an account")]
            let seconds = *latency_us as f64 / 1e6;
            let _ = writeln!(
                out,
                "souk_call_latency_seconds_total{{route=\"{route}\",errcode=\"{errcode}\"}} {seconds}"
            );
        }
        out
    }
}
