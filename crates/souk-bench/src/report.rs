//! The results: a table on stdout and, with `--json FILE`, the same numbers as JSON.

use serde::Serialize;

use crate::procs::Memory;

/// One scenario's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// What was measured (`direct`, `nginx proxy`, `souk sync invoke`, ...).
    pub name: String,
    /// souk's database (`sqlite`, `postgres`), for souk scenarios.
    pub backend: Option<String>,
    /// `wrk`, or `built-in` (the bench's own generator, when wrk is missing).
    pub load_generator: String,
    /// Requests/s of each measured run (warm-up excluded).
    pub runs_requests_per_second: Vec<f64>,
    /// The median of the runs' requests/s.
    pub requests_per_second: f64,
    /// The median of the runs' median latencies.
    pub p50_ms: f64,
    /// The median of the runs' 99th percentile latencies.
    pub p99_ms: f64,
    /// Successful answers, warm-up included.
    pub successes: u64,
    /// Failed answers (and socket errors), warm-up included.
    pub failures: u64,
    /// The first failure, as an example.
    pub first_failure: Option<String>,
    /// Requests/s relative to the nginx proxy scenario, when it ran.
    pub ratio_to_nginx: Option<f64>,
    /// Requests/s relative to the direct scenario.
    pub ratio_to_direct: Option<f64>,
}

/// The main scenario on a fresh embedded souk and a fresh cluster node in alternating runs (the one
/// not measured frozen): the host's drift between the backends' phases (minutes apart) does not
/// reach this ratio.
#[derive(Debug, Clone, Serialize)]
pub struct PairedReport {
    /// Requests/s of each pair of runs: (embedded, cluster node).
    pub pairs: Vec<(f64, f64)>,
    /// The median of the pairs' cluster-over-embedded ratios.
    pub ratio: f64,
    /// Failed or unanswered requests in these runs.
    pub failures: u64,
}

/// The exact-charging check of one souk.
#[derive(Debug, Clone, Serialize)]
pub struct ChargingReport {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Successful sync calls through souk (smoke call, warm-ups, runs, soak).
    pub successful_souk_calls: i64,
    /// Units the packages lost.
    pub units_charged: i64,
    /// Whether they are equal.
    pub exact: bool,
}

/// souk's memory while the main scenario ran.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Right after start and setup.
    pub idle: Option<Memory>,
    /// The highest `VmRSS` sampled under load, and `VmHWM` after it.
    pub under_load: Option<Memory>,
}

/// RSS during `--soak`.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// How long the main scenario ran.
    pub seconds: u64,
    /// Requests/s over the soak.
    pub requests_per_second: f64,
    /// Samples at every tenth of the run, the last at its end.
    pub samples: Vec<(String, Option<Memory>)>,
    /// Failed answers during the soak.
    pub failures: u64,
}

impl SoakReport {
    /// The highest RSS sampled in the first half of the soak and in the second, KiB. Caches fill
    /// in the first half and RSS moves a little with the allocator; a leak makes the second half's
    /// highest sample higher than the first's, run after run.
    pub fn peak_rss_by_half_kib(&self) -> Option<(u64, u64)> {
        let rss: Vec<u64> = self
            .samples
            .iter()
            .map(|(_, sample)| sample.map(|m| m.rss_kib))
            .collect::<Option<_>>()?;
        let middle = rss.len() / 2;
        Some((*rss[..middle].iter().max()?, *rss[middle..].iter().max()?))
    }
}

/// Instructions per request of the main souk scenario under callgrind.
#[derive(Debug, Clone, Serialize)]
pub struct CallgrindReport {
    /// Requests sent in the measured run (beyond the baseline's).
    pub requests: u64,
    /// Instructions of the baseline run (start, setup, warm-up, stop).
    pub baseline_instructions: u64,
    /// Instructions of the measured run (the same plus `requests`).
    pub measured_instructions: u64,
    /// (measured - baseline) / requests.
    pub instructions_per_request: f64,
}

/// Everything `--json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Seconds per measured run.
    pub duration_secs: u64,
    /// Discarded warm-up seconds per scenario.
    pub warmup_secs: u64,
    /// Measured runs per scenario.
    pub runs: u32,
    /// Open connections.
    pub concurrency: u32,
    /// wrk threads.
    pub threads: u32,
    /// What runs where.
    pub pinning: String,
    /// How the rows were measured, for people.
    pub method: String,
    /// The scenarios, direct first.
    pub scenarios: Vec<ScenarioReport>,
    /// Rows and columns left out, and why.
    pub skipped: Vec<String>,
    /// The charging checks.
    pub charging: Vec<ChargingReport>,
    /// souk's memory.
    pub memory: Vec<MemoryReport>,
    /// The soak, when asked.
    pub soak: Option<SoakReport>,
    /// Callgrind, when valgrind is there.
    pub callgrind: Option<CallgrindReport>,
    /// Embedded and cluster node in alternating runs, when both ran.
    pub paired: Option<PairedReport>,
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.2}x"))
}

fn memory(value: Option<Memory>) -> String {
    value.map_or_else(
        || "?".to_owned(),
        |memory| {
            format!(
                "RSS {:.1} MiB (peak {:.1} MiB)",
                memory.rss_kib as f64 / 1024.0,
                memory.hwm_kib as f64 / 1024.0
            )
        },
    )
}

impl Report {
    /// Fills in each scenario's ratios to nginx and to direct.
    pub fn compute_ratios(&mut self) {
        let find = |name: &str| {
            self.scenarios
                .iter()
                .find(|scenario| scenario.name == name)
                .map(|scenario| scenario.requests_per_second)
                .filter(|rps| *rps > 0.0)
        };
        let (nginx, direct) = (find("nginx proxy"), find("direct"));
        for scenario in &mut self.scenarios {
            scenario.ratio_to_nginx = nginx.map(|nginx| scenario.requests_per_second / nginx);
            scenario.ratio_to_direct = direct.map(|direct| scenario.requests_per_second / direct);
        }
    }

    /// The table for people.
    pub fn table(&self) -> String {
        let mut text = format!(
            "{:<42} {:>12} {:>9} {:>9} {:>9} {:>10}\n",
            "scenario", "requests/s", "p50 ms", "p99 ms", "vs nginx", "vs direct"
        );
        for scenario in &self.scenarios {
            let name = match &scenario.backend {
                Some(backend) => format!("{} [{backend}]", scenario.name),
                None => scenario.name.clone(),
            };
            text.push_str(&format!(
                "{:<42} {:>12.1} {:>9.2} {:>9.2} {:>9} {:>10}\n",
                name,
                scenario.requests_per_second,
                scenario.p50_ms,
                scenario.p99_ms,
                ratio(scenario.ratio_to_nginx),
                ratio(scenario.ratio_to_direct)
            ));
        }
        text.push_str(&format!("({}; {})\n", self.method, self.pinning));
        if let Some(callgrind) = &self.callgrind {
            text.push_str(&format!(
                "callgrind: {:.0} instructions per souk sync invoke [sqlite] ({} requests; {} - {} baseline)\n",
                callgrind.instructions_per_request, callgrind.requests, callgrind.measured_instructions, callgrind.baseline_instructions
            ));
        }
        for entry in &self.memory {
            text.push_str(&format!(
                "memory [{}]: idle {}; under load {}\n",
                entry.backend,
                memory(entry.idle),
                memory(entry.under_load)
            ));
        }
        if let Some(soak) = &self.soak {
            let samples: Vec<String> = soak
                .samples
                .iter()
                .map(|(when, sample)| format!("{when} {}", memory(*sample)))
                .collect();
            text.push_str(&format!(
                "soak [{}]: {} s at {:.1} requests/s, {} failures; RSS {}\n",
                soak.backend,
                soak.seconds,
                soak.requests_per_second,
                soak.failures,
                samples.join("; ")
            ));
            if let Some((first, second)) = soak.peak_rss_by_half_kib() {
                text.push_str(&format!(
                    "soak [{}]: highest RSS in the first half {:.1} MiB, in the second half {:.1} MiB ({:+.1} MiB)\n",
                    soak.backend,
                    first as f64 / 1024.0,
                    second as f64 / 1024.0,
                    (second as f64 - first as f64) / 1024.0
                ));
            }
        }
        if let Some(ratio) = self.cluster_ratio() {
            text.push_str(&format!(
                "cluster node: souk sync invoke [postgres+redis] at {ratio:.2}x of [sqlite] (goal: 0.6x or more)\n"
            ));
        }
        if let Some(paired) = &self.paired {
            let pairs: Vec<String> = paired
                .pairs
                .iter()
                .map(|(embedded, cluster)| format!("{cluster:.0}/{embedded:.0}"))
                .collect();
            text.push_str(&format!(
                "cluster node, alternating runs with [sqlite]: {:.2}x (median of {} pairs: {})\n",
                paired.ratio,
                paired.pairs.len(),
                pairs.join(", ")
            ));
        }
        for charging in &self.charging {
            text.push_str(&format!(
                "charging [{}]: {} units charged for {} successful souk sync calls: {}\n",
                charging.backend,
                charging.units_charged,
                charging.successful_souk_calls,
                if charging.exact { "exact" } else { "MISMATCH" }
            ));
        }
        for skipped in &self.skipped {
            text.push_str(&format!("skipped: {skipped}\n"));
        }
        text
    }

    /// The main scenario's throughput on a cluster node (PostgreSQL and Redis) over the embedded
    /// default's, when both ran.
    pub fn cluster_ratio(&self) -> Option<f64> {
        let throughput = |backend: &str| {
            self.scenarios
                .iter()
                .find(|scenario| scenario.name == "souk sync invoke" && scenario.backend.as_deref() == Some(backend))
                .map(|scenario| scenario.requests_per_second)
        };
        Some(throughput("postgres+redis")? / throughput("sqlite")?)
    }

    /// Whether the run is clean: no failure anywhere and exact charging.
    pub fn passed(&self) -> bool {
        self.charging.iter().all(|charging| charging.exact)
            && self.scenarios.iter().all(|scenario| scenario.failures == 0)
            && self.soak.as_ref().is_none_or(|soak| soak.failures == 0)
            && self.paired.as_ref().is_none_or(|paired| paired.failures == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str, backend: Option<&str>, rps: f64) -> ScenarioReport {
        ScenarioReport {
            name: name.to_owned(),
            backend: backend.map(str::to_owned),
            load_generator: "wrk".to_owned(),
            runs_requests_per_second: vec![rps],
            requests_per_second: rps,
            p50_ms: 1.234,
            p99_ms: 5.0,
            successes: 10,
            failures: 0,
            first_failure: None,
            ratio_to_nginx: None,
            ratio_to_direct: None,
        }
    }

    #[test]
    fn table_has_one_row_per_scenario_with_ratios() {
        let mut report = Report {
            duration_secs: 10,
            warmup_secs: 3,
            runs: 3,
            concurrency: 32,
            threads: 1,
            pinning: "not pinned".to_owned(),
            method: "3 runs".to_owned(),
            scenarios: vec![
                scenario("direct", None, 40.0),
                scenario("nginx proxy", None, 20.0),
                scenario("souk sync invoke", Some("sqlite"), 10.0),
            ],
            skipped: vec!["callgrind: valgrind not installed".to_owned()],
            charging: vec![ChargingReport {
                backend: "sqlite".to_owned(),
                successful_souk_calls: 3,
                units_charged: 3,
                exact: true,
            }],
            memory: vec![],
            soak: None,
            callgrind: None,
            paired: Some(PairedReport {
                pairs: vec![(10.0, 5.0), (8.0, 6.0), (9.0, 3.0)],
                ratio: 0.5,
                failures: 0,
            }),
        };
        report.compute_ratios();
        assert_eq!(report.scenarios[2].ratio_to_nginx, Some(0.5));
        assert_eq!(report.scenarios[2].ratio_to_direct, Some(0.25));
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "scenario                                     requests/s    p50 ms    p99 ms  vs nginx  vs direct"
        );
        assert_eq!(
            lines[3],
            "souk sync invoke [sqlite]                          10.0      1.23      5.00     0.50x      0.25x"
        );
        assert!(table.contains("charging [sqlite]: 3 units charged for 3 successful souk sync calls: exact\n"));
        assert!(table.contains("skipped: callgrind: valgrind not installed\n"));
        assert!(table.contains("cluster node, alternating runs with [sqlite]: 0.50x (median of 3 pairs: 5/10, 6/8, 3/9)\n"));
        assert!(report.passed());
        report.paired.as_mut().unwrap().failures = 1;
        assert!(!report.passed(), "a failure in the alternating runs fails the run");
        report.paired.as_mut().unwrap().failures = 0;
        report.charging[0].exact = false;
        assert!(!report.passed());
    }
}
