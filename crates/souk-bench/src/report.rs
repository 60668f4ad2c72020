//! The results: a table on stdout and, with `--json FILE`, the same numbers as JSON.

use serde::Serialize;

use crate::load::Outcome;

/// One scenario's numbers.
#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    /// `direct` or `souk sync invoke`.
    pub name: &'static str,
    /// Requests measured (warm-up excluded).
    pub requests: usize,
    /// Requests that failed, warm-up included.
    pub failures: usize,
    /// Wall time of the measured requests.
    pub seconds: f64,
    /// Throughput.
    pub requests_per_second: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Throughput relative to the direct scenario.
    pub ratio_to_direct: f64,
}

impl ScenarioReport {
    /// The report of a measured `outcome`, with `warmup_failures` added to its failures.
    pub fn new(name: &'static str, outcome: &Outcome, warmup_failures: usize, direct_rps: f64) -> Self {
        let rps = outcome.requests_per_second();
        ScenarioReport {
            name,
            requests: outcome.requests,
            failures: outcome.failures + warmup_failures,
            seconds: outcome.elapsed.as_secs_f64(),
            requests_per_second: rps,
            p50_ms: outcome.percentile_ms(0.50),
            p99_ms: outcome.percentile_ms(0.99),
            ratio_to_direct: if direct_rps > 0.0 { rps / direct_rps } else { 0.0 },
        }
    }
}

/// The exact-charging check.
#[derive(Debug, Serialize)]
pub struct ChargingReport {
    /// Successful calls through souk (smoke call, warm-up and measured).
    pub successful_souk_calls: i64,
    /// Units the package lost.
    pub units_charged: i64,
    /// Whether they are equal.
    pub exact: bool,
}

/// Everything `--json` writes.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Measured requests per scenario.
    pub requests: usize,
    /// Concurrent workers.
    pub concurrency: usize,
    /// Discarded warm-up requests per scenario.
    pub warmup: usize,
    /// The scenarios, direct first.
    pub scenarios: Vec<ScenarioReport>,
    /// The charging check.
    pub charging: ChargingReport,
}

impl Report {
    /// The table for people.
    pub fn table(&self) -> String {
        let mut text = format!(
            "{:<18} {:>12} {:>9} {:>9} {:>10}\n",
            "scenario", "requests/s", "p50 ms", "p99 ms", "vs direct"
        );
        for scenario in &self.scenarios {
            text.push_str(&format!(
                "{:<18} {:>12.1} {:>9.2} {:>9.2} {:>9.2}x\n",
                scenario.name, scenario.requests_per_second, scenario.p50_ms, scenario.p99_ms, scenario.ratio_to_direct
            ));
        }
        text
    }

    /// Whether the run is clean: no failure anywhere and exact charging.
    pub fn passed(&self) -> bool {
        self.charging.exact && self.scenarios.iter().all(|scenario| scenario.failures == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_one_row_per_scenario() {
        let report = Report {
            requests: 10,
            concurrency: 2,
            warmup: 200,
            scenarios: vec![ScenarioReport {
                name: "direct",
                requests: 10,
                failures: 0,
                seconds: 0.5,
                requests_per_second: 20.0,
                p50_ms: 1.234,
                p99_ms: 5.0,
                ratio_to_direct: 1.0,
            }],
            charging: ChargingReport {
                successful_souk_calls: 0,
                units_charged: 0,
                exact: true,
            },
        };
        assert_eq!(
            report.table(),
            "scenario             requests/s    p50 ms    p99 ms  vs direct\n\
             direct                     20.0      1.23      5.00      1.00x\n"
        );
        assert!(report.passed());
    }
}
