//! `souk-bench`: souk against nginx. On loopback it starts the example provider (the upstream), nginx
//! as a plain reverse proxy to it, and souk; it loads each with `wrk` at a fixed concurrency
//! (a discarded warm-up, then several runs) and prints requests/s (median of the runs), p50/p99
//! latency and each souk scenario's ratio to the nginx proxy and to the provider called directly.
//! It also counts callgrind instructions per souk request, reports souk's resident memory (and its
//! growth over `--soak SECS`), and checks that souk charged exactly one unit per successful call.
//!
//! Run with `cargo run --release -p souk-bench -- [--duration S] [--runs N] [--json FILE] ...` after
//! `cargo build --release -p souk -p souk-example-provider`. Progress goes to stderr, the table to
//! stdout. Nothing is installed: a missing `nginx`, `wrk` or `valgrind` is named with the package to
//! install, and its rows are skipped (an error with `--require`). Exit codes: 0 clean run, 1
//! failures or a charging mismatch or an error, 2 binaries or required tools missing (or bad
//! arguments), 130 interrupted.

mod load;
mod procs;
mod report;
mod setup;
mod upstream;
mod wrk;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use rand::distr::{Alphanumeric, SampleString};
use souk_sdk::AdminClient;

use crate::load::Target;
use crate::procs::{Binaries, Children, Memory, Pinning, SoukLaunch};
use crate::report::{CallgrindReport, ChargingReport, MemoryReport, PairedReport, Report, ScenarioReport, SoakReport};
use crate::wrk::{Body, Plan, RunResult, Shape};

/// Benchmark souk against nginx proxying to the same upstream, and against the upstream directly.
#[derive(Debug, Parser)]
#[command(name = "souk-bench", version)]
struct Args {
    /// Seconds of each measured wrk run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// Measured runs per scenario (the table shows their median).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Seconds of the warm-up run before each scenario (discarded).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
    warmup: u64,
    /// Open connections (wrk `-c`).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// wrk threads (`-t`); default 1 when pinned (the load has one core), else 2.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: Option<u32>,
    /// Requests per scenario of the built-in generator, used only when wrk is missing.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    requests: u32,
    /// Also run souk's scenarios on this PostgreSQL database (e.g.
    /// `postgres://postgres@127.0.0.1:5432/souk_bench`, which must exist), after the embedded SQLite.
    /// The bench empties it first (drops its tables and functions): what an earlier run left, such
    /// as async jobs still retrying against a provider long gone, would load the database.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// With `--database-url`: run souk's scenarios a third time as a cluster node, on that
    /// PostgreSQL (emptied again) and this Redis (e.g. `redis://127.0.0.1:6379/`), for the row
    /// "cluster node vs embedded".
    #[arg(long, value_name = "URL", requires = "database_url")]
    redis_url: Option<String>,
    /// Which of souk's backends to measure (comma-separated): `sqlite`, and with `--database-url`
    /// `postgres`, and with `--redis-url` too `cluster`. Default: every one the URLs allow.
    #[arg(long, value_enum, value_delimiter = ',')]
    backends: Vec<Backend>,
    /// Measure only the main souk scenario (sync invoke) on each backend, besides direct and
    /// nginx: for comparing one change's effect in a few minutes.
    #[arg(long)]
    main_only: bool,
    /// Run the main souk scenario this many seconds more and report souk's RSS at its start,
    /// middle and end.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    soak: Option<u64>,
    /// Requests counted under callgrind (0 skips callgrind).
    #[arg(long, default_value_t = 2000)]
    callgrind_requests: u32,
    /// Do not pin processes to cores with taskset.
    #[arg(long)]
    no_pin: bool,
    /// Fail instead of skipping when one of these is missing.
    #[arg(long, value_enum, value_delimiter = ',')]
    require: Vec<Tool>,
    /// Also write the numbers as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// One of the stores souk's scenarios run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The embedded default.
    Sqlite,
    /// `--database-url`.
    Postgres,
    /// `--database-url` and `--redis-url`: a cluster node.
    Cluster,
}

/// An outside tool the bench uses when it is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Tool {
    Nginx,
    Wrk,
    Valgrind,
    Taskset,
}

impl Tool {
    fn binary(self) -> &'static str {
        match self {
            Tool::Nginx => "nginx",
            Tool::Wrk => "wrk",
            Tool::Valgrind => "valgrind",
            Tool::Taskset => "taskset",
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            Tool::Nginx => "apt-get install nginx-light (or nginx)",
            Tool::Wrk => "apt-get install wrk",
            Tool::Valgrind => "apt-get install valgrind",
            Tool::Taskset => "apt-get install util-linux",
        }
    }
}

/// The outside tools found.
#[derive(Debug)]
struct Tools {
    nginx: Option<PathBuf>,
    wrk: Option<PathBuf>,
    valgrind: Option<PathBuf>,
    taskset: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let binaries = match procs::locate_binaries() {
        Ok(binaries) => binaries,
        Err(message) => {
            eprintln!("souk-bench: {message}");
            return ExitCode::from(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("souk-bench: warning: a debug build; numbers mean little without --release");
    }
    let tools = Tools {
        nginx: procs::which("nginx"),
        wrk: procs::which("wrk"),
        valgrind: procs::which("valgrind"),
        taskset: procs::which("taskset"),
    };
    let mut missing_required = false;
    for (tool, found) in [
        (Tool::Nginx, &tools.nginx),
        (Tool::Wrk, &tools.wrk),
        (Tool::Valgrind, &tools.valgrind),
        (Tool::Taskset, &tools.taskset),
    ] {
        if found.is_none() {
            let required = args.require.contains(&tool);
            eprintln!(
                "souk-bench: {}: `{}` is not installed; get it with `{}`{}",
                if required { "error" } else { "note" },
                tool.binary(),
                tool.install_hint(),
                if required { "" } else { " (its rows are skipped)" }
            );
            missing_required |= required;
        }
    }
    if missing_required {
        return ExitCode::from(2);
    }
    // Pinned before the runtime starts, so its threads inherit the client core.
    let pinning = match (&tools.taskset, args.no_pin) {
        (Some(taskset), false) => Pinning::with_taskset(taskset.clone()).unwrap_or_else(|why| {
            eprintln!("souk-bench: not pinning: {why}");
            Pinning::none()
        }),
        _ => Pinning::none(),
    };
    eprintln!("souk-bench: {}", pinning.describe());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("souk-bench: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // On Ctrl-C the bench future is dropped, and with it the guards that kill every child.
        tokio::select! {
            code = run(&args, &binaries, &tools, &pinning) => code,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("souk-bench: interrupted; stopping souk, nginx and the provider");
                ExitCode::from(130)
            }
        }
    })
}

async fn run(args: &Args, binaries: &Binaries, tools: &Tools, pinning: &Pinning) -> ExitCode {
    let report = match bench(args, binaries, tools, pinning).await {
        Ok(report) => report,
        Err(message) => {
            eprintln!("souk-bench: error: {message}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|err| err.to_string())
            .and_then(|text| std::fs::write(path, text + "\n").map_err(|err| err.to_string()));
        if let Err(err) = written {
            eprintln!("souk-bench: error: cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        eprintln!("souk-bench: FAILED: the run had failed requests or inexact charging; its numbers are not valid");
        ExitCode::FAILURE
    }
}

fn progress(message: &str) {
    eprintln!("souk-bench: {message}");
}

fn random_text(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// What every scenario shares.
struct Bench<'a> {
    args: &'a Args,
    pinning: &'a Pinning,
    wrk: Option<&'a Path>,
    shape: Shape,
    temp: PathBuf,
    client: load::HttpClient,
    scenarios: Vec<ScenarioReport>,
}

/// Drops every table and function of the database's current schema, so that souk starts on an
/// empty one and migrates it.
async fn empty_database(url: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url)
        .await
        .map_err(|err| format!("cannot connect to --database-url: {err}"))?;
    sqlx::raw_sql(
        "DO $$ DECLARE r record; BEGIN \
           FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP \
             EXECUTE format('DROP TABLE %I CASCADE', r.tablename); \
           END LOOP; \
           FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                    WHERE n.nspname = current_schema() LOOP \
             EXECUTE format('DROP FUNCTION %s CASCADE', r.f); \
           END LOOP; \
         END $$",
    )
    .execute(&mut connection)
    .await
    .map_err(|err| format!("cannot empty the --database-url database: {err}"))?;
    connection.close().await.map_err(|err| err.to_string())
}

/// A backend to run: its name in the table, its database URL and its Redis URL.
type BackendRun<'a> = (&'static str, Option<&'a str>, Option<&'a str>);

/// The backends to run, in order.
fn chosen_backends(args: &Args) -> Result<Vec<BackendRun<'_>>, String> {
    let wanted = |backend| args.backends.is_empty() || args.backends.contains(&backend);
    let mut backends = Vec::new();
    if wanted(Backend::Sqlite) {
        backends.push(("sqlite", None, None));
    }
    let database = args.database_url.as_deref();
    let redis = args.redis_url.as_deref();
    if wanted(Backend::Postgres) {
        match database {
            Some(url) => backends.push(("postgres", Some(url), None)),
            None if !args.backends.is_empty() => return Err("--backends postgres needs --database-url".to_owned()),
            None => {}
        }
    }
    if wanted(Backend::Cluster) {
        match (database, redis) {
            (Some(url), Some(redis)) => backends.push(("postgres+redis", Some(url), Some(redis))),
            _ if !args.backends.is_empty() => return Err("--backends cluster needs --database-url and --redis-url".to_owned()),
            _ => {}
        }
    }
    Ok(backends)
}

/// What one scenario's measurement tells its caller beyond its row.
struct Measured {
    /// Successes, warm-up included.
    successes: u64,
    /// The highest RSS sampled while it ran (when a pid was given).
    peak: Option<Memory>,
}

async fn bench(args: &Args, binaries: &Binaries, tools: &Tools, pinning: &Pinning) -> Result<Report, String> {
    let backends = chosen_backends(args)?;
    // Declared before the children so it is removed after they are killed.
    let temp = tempfile::Builder::new()
        .prefix("souk-bench-")
        .tempdir()
        .map_err(|err| format!("cannot make a temporary dir: {err}"))?;
    let mut children = Children::default();
    let provider_secret = random_text(32);
    let threads = args.threads.unwrap_or(if pinning.pinned() { 1 } else { 2 });
    let mut bench = Bench {
        args,
        pinning,
        wrk: tools.wrk.as_deref(),
        shape: Shape {
            threads,
            connections: args.concurrency,
        },
        temp: temp.path().to_owned(),
        client: load::http_client(args.concurrency as usize),
        scenarios: Vec::new(),
    };
    let mut skipped = Vec::new();
    if bench.wrk.is_none() {
        skipped.push(
            "wrk is not installed (apt-get install wrk): only direct and souk sync invoke ran, with the bench's own \
             generator; nginx, the 100-app, token, cloud, async and soak rows are skipped"
                .to_owned(),
        );
    }

    progress("starting souk-example-provider");
    let provider = procs::start_provider(
        &mut children,
        pinning,
        &binaries.provider,
        &provider_secret,
        &temp.path().join("provider.log"),
    )
    .await?;
    let (cloud_upstream, cloud_hits) = upstream::start().await?;
    progress(&format!("provider at http://{provider}, cloud upstream at http://{cloud_upstream}"));

    // Signed as souk signs (the provider checks it); the ids are only echoed.
    let direct = Target::Direct {
        provider,
        secret: provider_secret.clone(),
        service_id: "wxbenchservice00".to_owned(),
        api: setup::API_NAME.to_owned(),
        appid: "wxbench000000000".to_owned(),
    };
    bench.measure_target("direct", None, provider, &direct, None).await?;
    children.check_alive()?;

    match (&tools.nginx, bench.wrk) {
        (Some(nginx), Some(_)) => {
            progress("starting nginx");
            let nginx_dir = temp.path().join("nginx");
            let nginx = procs::start_nginx(&mut children, &bench.client, pinning, nginx, &nginx_dir, provider).await?;
            progress(&format!("nginx at http://{nginx}"));
            bench.measure_target("nginx proxy", None, nginx, &direct, None).await?;
            children.check_alive()?;
        }
        (None, _) => skipped.push("nginx proxy: nginx is not installed (apt-get install nginx-light)".to_owned()),
        (Some(_), None) => {}
    }

    let mut charging = Vec::new();
    let mut memory = Vec::new();
    let mut soak = None;
    // Both the embedded default and a cluster node: their ratio again, from alternating runs.
    let pair_with = match (&backends[..], bench.wrk) {
        (_, None) => None,
        (chosen, Some(_)) if chosen.iter().any(|(name, _, _)| *name == "sqlite") => {
            chosen.iter().find_map(|&(_, url, redis_url)| Some((url?, redis_url?)))
        }
        _ => None,
    };
    for (index, (backend, url, redis_url)) in backends.into_iter().enumerate() {
        if let Some(url) = url {
            progress("emptying the PostgreSQL database (its tables and functions are dropped)");
            empty_database(url).await?;
        }
        let souk = SoukRun {
            backend,
            launch: PreparedLaunch {
                files: backend,
                database_url: url,
                redis_url,
                provider,
                provider_secret: &provider_secret,
            },
            cloud_upstream,
            soak: if index == 0 { args.soak } else { None },
            main_only: args.main_only,
        };
        let outcome = souk.run(&mut bench, &mut children, binaries).await?;
        charging.push(outcome.charging);
        memory.push(outcome.memory);
        soak = soak.or(outcome.soak);
    }
    let paired = match pair_with {
        Some((database_url, redis_url)) => {
            let launch = PairedLaunch {
                database_url,
                redis_url,
                provider,
                provider_secret: &provider_secret,
            };
            let (report, checks) = paired(&mut bench, &mut children, binaries, &launch).await?;
            charging.extend(checks);
            Some(report)
        }
        None => None,
    };
    if args.main_only {
        skipped.push("--main-only: the 100-app, token, cloud and async rows".to_owned());
    } else if bench.wrk.is_some() {
        progress(&format!(
            "the cloud upstream was called {} time(s) (once per souk); the rest were cache hits",
            cloud_hits.load(Ordering::Relaxed)
        ));
    }

    let callgrind = match (&tools.valgrind, args.callgrind_requests) {
        (_, 0) => {
            skipped.push("callgrind: --callgrind-requests 0".to_owned());
            None
        }
        (None, _) => {
            skipped.push("callgrind instructions per request: valgrind is not installed (apt-get install valgrind)".to_owned());
            None
        }
        (Some(_), requests) => Some(
            callgrind(&bench, binaries, provider, &provider_secret, u64::from(requests))
                .await
                .map_err(|err| format!("callgrind: {err}"))?,
        ),
    };
    if args.soak.is_some() && bench.wrk.is_none() {
        skipped.push("soak: needs wrk".to_owned());
    }

    let mut report = Report {
        duration_secs: args.duration,
        warmup_secs: args.warmup,
        runs: args.runs,
        concurrency: args.concurrency,
        threads,
        pinning: pinning.describe(),
        method: if bench.wrk.is_some() {
            format!(
                "wrk: {} runs of {} s each after a {} s warm-up, {} connections, {threads} thread(s); medians of the runs",
                args.runs, args.duration, args.warmup, args.concurrency
            )
        } else {
            format!(
                "the bench's own generator: one run of {} requests after a warm-up, {} connections",
                args.requests, args.concurrency
            )
        },
        scenarios: bench.scenarios,
        skipped,
        charging,
        memory,
        soak,
        callgrind,
        paired,
    };
    report.compute_ratios();
    Ok(report)
}

impl Bench<'_> {
    /// Measures one of the built-in targets: with wrk when it is there, else with the built-in
    /// generator (one run of `--requests`).
    async fn measure_target(
        &mut self,
        name: &str,
        backend: Option<&str>,
        host: SocketAddr,
        target: &Target,
        pid: Option<u32>,
    ) -> Result<Measured, String> {
        if self.wrk.is_some() {
            let drain = matches!(target, Target::Souk { .. });
            let make_plan = |tag: &str| plan_of_target(target, host, tag, drain);
            return self.measure(name, backend, &make_plan, pid).await;
        }
        self.measure_builtin(name, backend, target).await
    }

    /// A warm-up and `--runs` measured wrk runs of the plan `make_plan` makes (called per run
    /// with a fresh tag, so signatures stay fresh and ids unique).
    async fn measure(
        &mut self,
        name: &str,
        backend: Option<&str>,
        make_plan: &dyn Fn(&str) -> Plan,
        pid: Option<u32>,
    ) -> Result<Measured, String> {
        let label = match backend {
            Some(backend) => format!("{name} [{backend}]"),
            None => name.to_owned(),
        };
        let base_tag = random_text(6);
        progress(&format!("{label}: warm-up of {} s", self.args.warmup));
        let warm = self.wrk_once(&make_plan(&format!("{base_tag}w")), self.args.warmup, None).await?.0;
        let mut successes = warm.ok;
        let mut failures = warm.failures();
        let mut first_failure = warm.first_failure();
        let mut runs = Vec::new();
        let mut peak: Option<Memory> = None;
        for run in 0..self.args.runs {
            let (result, sampled) = self
                .wrk_once(&make_plan(&format!("{base_tag}{run}")), self.args.duration, pid)
                .await?;
            progress(&format!(
                "{label}: run {}/{}: {:.1} requests/s, p50 {:.2} ms, p99 {:.2} ms, {} failures",
                run + 1,
                self.args.runs,
                result.requests_per_second(),
                result.p50_us / 1000.0,
                result.p99_us / 1000.0,
                result.failures()
            ));
            successes += result.ok;
            failures += result.failures();
            first_failure = first_failure.or_else(|| result.first_failure());
            peak = max_memory(peak, sampled);
            runs.push(result);
        }
        if failures > 0 {
            eprintln!(
                "souk-bench: FAILURES: {label}: {failures} failed answers; first: {}",
                first_failure.as_deref().unwrap_or("(socket errors)")
            );
        }
        let rps: Vec<f64> = runs.iter().map(RunResult::requests_per_second).collect();
        let p50: Vec<f64> = runs.iter().map(|run| run.p50_us / 1000.0).collect();
        let p99: Vec<f64> = runs.iter().map(|run| run.p99_us / 1000.0).collect();
        let report = ScenarioReport {
            name: name.to_owned(),
            backend: backend.map(str::to_owned),
            load_generator: "wrk".to_owned(),
            requests_per_second: wrk::median(&rps),
            runs_requests_per_second: rps,
            p50_ms: wrk::median(&p50),
            p99_ms: wrk::median(&p99),
            successes,
            failures,
            first_failure,
            ratio_to_nginx: None,
            ratio_to_direct: None,
        };
        self.scenarios.push(report);
        Ok(Measured { successes, peak })
    }

    /// One wrk run of `plan` for `seconds`, sampling the memory of `pid` every 200 ms meanwhile.
    async fn wrk_once(&self, plan: &Plan, seconds: u64, pid: Option<u32>) -> Result<(RunResult, Option<Memory>), String> {
        let wrk = self.wrk.ok_or("wrk is not installed")?.to_owned();
        let script_path = self.temp.join("scenario.lua");
        std::fs::write(&script_path, wrk::script(plan, seconds)).map_err(|err| format!("cannot write {}: {err}", script_path.display()))?;
        let pinning = self.pinning.clone();
        let (host, shape) = (plan.host, self.shape);
        let mut running = tokio::task::spawn_blocking(move || wrk::run(&wrk, &pinning, &script_path, host, shape, seconds));
        let mut peak = None;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                done = &mut running => {
                    let result = done.map_err(|err| format!("the wrk task failed: {err}"))??;
                    return Ok((result, peak));
                }
                _ = tick.tick() => {
                    if let Some(pid) = pid {
                        peak = max_memory(peak, procs::memory(pid));
                    }
                }
            }
        }
    }

    /// The built-in generator, when wrk is missing: a warm-up and one run of `--requests`.
    async fn measure_builtin(&mut self, name: &str, backend: Option<&str>, target: &Target) -> Result<Measured, String> {
        let requests = self.args.requests as usize;
        let concurrency = self.args.concurrency as usize;
        let warmup = (requests / 10).max(200);
        let target = Arc::new(target.clone());
        progress(&format!("{name}: built-in generator, warm-up of {warmup} requests"));
        let warm = load::run(&self.client, &target, "warmup", warmup, concurrency).await;
        progress(&format!("{name}: {requests} requests from {concurrency} workers"));
        let measured = load::run(&self.client, &target, "measure", requests, concurrency).await;
        let failures = (warm.failures + measured.failures) as u64;
        let successes = (warm.successes() + measured.successes()) as u64;
        let report = ScenarioReport {
            name: name.to_owned(),
            backend: backend.map(str::to_owned),
            load_generator: "built-in".to_owned(),
            runs_requests_per_second: vec![measured.requests_per_second()],
            requests_per_second: measured.requests_per_second(),
            p50_ms: measured.percentile_ms(0.50),
            p99_ms: measured.percentile_ms(0.99),
            successes,
            failures,
            first_failure: warm.first_failure.or(measured.first_failure),
            ratio_to_nginx: None,
            ratio_to_direct: None,
        };
        self.scenarios.push(report);
        Ok(Measured { successes, peak: None })
    }
}

fn max_memory(a: Option<Memory>, b: Option<Memory>) -> Option<Memory> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Memory {
            rss_kib: a.rss_kib.max(b.rss_kib),
            hwm_kib: a.hwm_kib.max(b.hwm_kib),
        }),
        (a, b) => a.or(b),
    }
}

/// A wrk plan sending what the built-in `target` sends: 64 signed requests to the provider
/// (rotated), or souk invokes with unique `client_msg_id`s.
fn plan_of_target(target: &Target, host: SocketAddr, tag: &str, drain: bool) -> Plan {
    match target {
        Target::Direct { .. } => Plan {
            host,
            method: "POST",
            requests: (0..64)
                .map(|n| {
                    let (_, path, body) = target.parts(tag, n);
                    (path, Body::Fixed(body))
                })
                .collect(),
            marker: r#""success":true"#.to_owned(),
            drain,
            tag: tag.to_owned(),
        },
        Target::Souk {
            access_token,
            service_id,
            api,
            ..
        } => invoke_plan(
            host,
            std::slice::from_ref(access_token),
            service_id,
            std::slice::from_ref(api),
            false,
            tag,
        ),
    }
}

/// souk invokes: every token with every API, a unique `client_msg_id` each.
fn invoke_plan(host: SocketAddr, tokens: &[String], service_id: &str, apis: &[String], asynchronous: bool, tag: &str) -> Plan {
    let paths: Vec<String> = tokens
        .iter()
        .map(|token| {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("access_token", token)
                .finish();
            format!("/wxa/servicemarket?{query}")
        })
        .collect();
    let bodies: Vec<Body> = apis
        .iter()
        .map(|api| {
            let head = serde_json::json!({
                "service": service_id,
                "api": api,
                "data": {"n": 1},
                "async": asynchronous,
            })
            .to_string();
            let before = format!("{},\"client_msg_id\":\"", head.trim_end_matches('}'));
            Body::WithId {
                before,
                after: "\"}".to_owned(),
            }
        })
        .collect();
    // Tokens rotate fastest, so consecutive requests come from different apps.
    let requests = bodies
        .iter()
        .flat_map(|body| paths.iter().map(move |path| (path.clone(), body.clone())))
        .collect();
    Plan {
        host,
        method: "POST",
        requests,
        marker: r#""errcode":0,"#.to_owned(),
        drain: true,
        tag: tag.to_owned(),
    }
}

/// One souk (on one database) through its scenarios.
struct SoukRun<'a> {
    backend: &'static str,
    /// Its souk's start (`files` is the backend's name).
    launch: PreparedLaunch<'a>,
    cloud_upstream: SocketAddr,
    soak: Option<u64>,
    /// Only the main scenario (and the soak, if asked for).
    main_only: bool,
}

/// How long both souks of the alternating runs run between two measured runs.
const THAW_SETTLE: Duration = Duration::from_secs(1);

/// What the alternating runs need.
struct PairedLaunch<'a> {
    database_url: &'a str,
    redis_url: &'a str,
    provider: SocketAddr,
    provider_secret: &'a str,
}

/// One of the two souks of the alternating runs.
struct PairedSouk {
    backend: &'static str,
    started: StartedSouk,
    successes: u64,
}

/// The main scenario on a fresh embedded souk and a fresh cluster node, both started, in
/// alternating runs (which goes first alternates too; the one not measured is frozen with
/// SIGSTOP), after a warm-up of each; returns the ratio of each pair and their median, and each
/// souk's charging check.
async fn paired(
    bench: &mut Bench<'_>,
    children: &mut Children,
    binaries: &Binaries,
    launch: &PairedLaunch<'_>,
) -> Result<(PairedReport, Vec<ChargingReport>), String> {
    progress("alternating runs: an embedded souk and a cluster node side by side (the PostgreSQL database is emptied again)");
    empty_database(launch.database_url).await?;
    let mut souks = Vec::new();
    for (backend, database_url, redis_url) in [
        ("sqlite", None, None),
        ("postgres+redis", Some(launch.database_url), Some(launch.redis_url)),
    ] {
        let started = start_prepared(
            bench,
            children,
            binaries,
            &PreparedLaunch {
                files: &format!("paired-{backend}"),
                database_url,
                redis_url,
                provider: launch.provider,
                provider_secret: launch.provider_secret,
            },
        )
        .await?;
        souks.push(PairedSouk {
            backend,
            started,
            // The setup's smoke call was a charged success.
            successes: 1,
        });
    }
    let tag = random_text(6);
    let mut failures = 0;
    let mut rps = [Vec::new(), Vec::new()];
    for run in 0..=bench.args.runs {
        // Run 0 is each one's warm-up.
        let (seconds, label) = match run {
            0 => (bench.args.warmup, "warm-up".to_owned()),
            _ => (bench.args.duration, format!("run {run}/{}", bench.args.runs)),
        };
        let order: [usize; 2] = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for index in order {
            // Only the souk measured runs: the other is frozen, so that its timers, housekeeping
            // and job polling take no CPU from it on the shared core. Both run for a moment
            // first: the one measured last writes out its call log (not frozen inside a
            // transaction), the one measured next catches up on what came due while it was frozen.
            children.thaw(souks[index].started.pid)?;
            tokio::time::sleep(THAW_SETTLE).await;
            children.freeze(souks[1 - index].started.pid)?;
            let souk = &mut souks[index];
            let plan = plan_of_target(&souk.started.target, souk.started.host, &format!("{tag}p{run}"), true);
            let (result, _) = bench.wrk_once(&plan, seconds, None).await?;
            progress(&format!(
                "alternating runs [{}]: {label}: {:.1} requests/s, {} failures",
                souk.backend,
                result.requests_per_second(),
                result.failures()
            ));
            if let Some(first) = result.first_failure() {
                eprintln!("souk-bench: FAILURES: alternating runs [{}]: first: {first}", souk.backend);
            }
            failures += result.failures();
            souk.successes += result.ok;
            if run > 0 {
                rps[index].push(result.requests_per_second());
            }
        }
        children.check_alive()?;
    }
    for souk in &souks {
        children.thaw(souk.started.pid)?;
    }
    let mut checks = Vec::new();
    for souk in &souks {
        let units_charged = setup::units_charged(&souk.started.admin, &souk.started.setup.package_id).await?;
        checks.push(charging_check(
            format!("{}, alternating runs", souk.backend),
            units_charged,
            souk.successes,
        ));
        children.terminate(souk.started.pid, Duration::from_secs(30)).await?;
    }
    let pairs: Vec<(f64, f64)> = rps[0].iter().copied().zip(rps[1].iter().copied()).collect();
    let ratios: Vec<f64> = pairs
        .iter()
        .map(|(embedded, cluster)| cluster / embedded.max(f64::MIN_POSITIVE))
        .collect();
    let report = PairedReport {
        ratio: wrk::median(&ratios),
        pairs,
        failures,
    };
    Ok((report, checks))
}

/// Where and how a souk of the bench starts: `files` names its data folder and log in the
/// bench's temporary folder.
struct PreparedLaunch<'a> {
    files: &'a str,
    database_url: Option<&'a str>,
    redis_url: Option<&'a str>,
    provider: SocketAddr,
    provider_secret: &'a str,
}

/// A souk started and set up for the main scenario.
struct StartedSouk {
    host: SocketAddr,
    pid: u32,
    admin: AdminClient,
    setup: setup::Setup,
    /// The main scenario against it.
    target: Target,
    log: PathBuf,
}

/// Starts `souk serve` and sets it up for the main scenario through the admin API (its app,
/// service, API, package and token; one checked call).
async fn start_prepared(
    bench: &Bench<'_>,
    children: &mut Children,
    binaries: &Binaries,
    launch: &PreparedLaunch<'_>,
) -> Result<StartedSouk, String> {
    let admin_token = random_text(32);
    let log = bench.temp.join(format!("souk-{}.log", launch.files));
    let (host, pid) = procs::start_souk(
        children,
        &bench.client,
        bench.pinning,
        &SoukLaunch {
            binary: &binaries.souk,
            data_dir: &bench.temp.join(format!("data-{}", launch.files)),
            admin_token: &admin_token,
            database_url: launch.database_url,
            redis_url: launch.redis_url,
            log: &log,
            callgrind_out: None,
        },
    )
    .await?;
    let admin = AdminClient::new(&format!("http://{host}"), &admin_token).map_err(|err| err.to_string())?;
    let setup = setup::prepare(&admin, host, launch.provider, launch.provider_secret, setup::UNITS)
        .await
        .map_err(|err| format!("setup through the admin API failed: {err}\n{}", procs::log_tail(&log)))?;
    let target = Target::Souk {
        souk: host,
        access_token: setup.access_token.clone(),
        service_id: setup.service_id.clone(),
        api: setup::API_NAME.to_owned(),
        run_tag: random_text(8),
    };
    Ok(StartedSouk {
        host,
        pid,
        admin,
        setup,
        target,
        log,
    })
}

/// The exact-charging check of one souk (units charged == successful sync calls), said as progress.
fn charging_check(backend: String, units_charged: i64, successes: u64) -> ChargingReport {
    let successes = i64::try_from(successes).unwrap_or(i64::MAX);
    let check = ChargingReport {
        backend,
        successful_souk_calls: successes,
        units_charged,
        exact: units_charged == successes,
    };
    progress(&format!(
        "charging [{}]: {units_charged} units charged for {successes} successful sync calls: {}",
        check.backend,
        if check.exact { "exact" } else { "MISMATCH" }
    ));
    check
}

/// What one souk's run adds to the report besides its rows.
struct SoukOutcome {
    charging: ChargingReport,
    memory: MemoryReport,
    soak: Option<SoakReport>,
}

/// Apps and APIs of the wide scenario.
const WIDE: usize = 100;
/// Apps whose tokens the token scenario fetches in turn.
const TOKEN_APPS: usize = 10;

impl SoukRun<'_> {
    async fn run(&self, bench: &mut Bench<'_>, children: &mut Children, binaries: &Binaries) -> Result<SoukOutcome, String> {
        let backend = Some(self.backend);
        progress(&format!("starting souk serve on {}", self.backend));
        let started = start_prepared(bench, children, binaries, &self.launch).await?;
        let StartedSouk {
            host: souk,
            pid,
            admin,
            setup: main,
            target,
            log,
        } = started;
        let with_log = |err: String| format!("{err}\n{}", procs::log_tail(&log));
        progress(&format!("souk [{}] at http://{souk} (pid {pid})", self.backend));
        let idle = procs::memory(pid);
        progress(&format!(
            "set up app {}, service {}, package {}",
            main.appid, main.service_id, main.package_id
        ));

        let name = "souk sync invoke";
        let measured = bench
            .measure_target(name, backend, souk, &target, Some(pid))
            .await
            .map_err(with_log)?;
        children.check_alive().map_err(with_log)?;
        let under_load = measured.peak.map(|peak| Memory {
            hwm_kib: procs::memory(pid).map_or(peak.hwm_kib, |now| now.hwm_kib),
            ..peak
        });
        // The smoke call of the setup was a charged success too.
        let mut successes = 1 + measured.successes;
        let mut packages = vec![main.package_id.clone()];

        let mut soak = None;
        if bench.wrk.is_some() && !self.main_only {
            progress(&format!("setting up {WIDE} apps and {WIDE} APIs"));
            let wide = setup::prepare_wide(&admin, souk, self.launch.provider, self.launch.provider_secret, WIDE, WIDE)
                .await
                .map_err(with_log)?;
            let make_plan = |tag: &str| invoke_plan(souk, &wide.tokens, &wide.service_id, &wide.apis, false, tag);
            let measured = bench
                .measure("souk sync 100 apps x 100 APIs", backend, &make_plan, None)
                .await
                .map_err(with_log)?;
            successes += measured.successes;
            packages.extend(wide.package_ids.iter().cloned());
            children.check_alive().map_err(with_log)?;
        }
        if let (Some(seconds), Some(_)) = (self.soak, bench.wrk) {
            let (report, ok) = self.soak(bench, souk, &target, pid, seconds).await.map_err(with_log)?;
            successes += ok;
            soak = Some(report);
            children.check_alive().map_err(with_log)?;
        }

        // Every charged call has its answer by now (the wrk script drains before it stops).
        let mut units_charged = 0;
        for package in &packages {
            units_charged += setup::units_charged(&admin, package).await?;
        }
        let charging = charging_check(self.backend.to_owned(), units_charged, successes);

        if bench.wrk.is_some() && !self.main_only {
            let apps = setup::prepare_token_apps(&admin, TOKEN_APPS).await.map_err(with_log)?;
            let requests: Vec<(String, Body)> = apps
                .iter()
                .map(|(appid, secret)| {
                    let query = form_urlencoded::Serializer::new(String::new())
                        .append_pair("grant_type", "client_credential")
                        .append_pair("appid", appid)
                        .append_pair("secret", secret)
                        .finish();
                    (format!("/cgi-bin/token?{query}"), Body::None)
                })
                .collect();
            let make_plan = |tag: &str| Plan {
                host: souk,
                method: "GET",
                requests: requests.clone(),
                marker: r#""access_token":""#.to_owned(),
                drain: true,
                tag: tag.to_owned(),
            };
            bench
                .measure("souk token fetch", backend, &make_plan, None)
                .await
                .map_err(with_log)?;

            let cloud = setup::prepare_cloud(&admin, souk, self.cloud_upstream).await.map_err(with_log)?;
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("access_token", &cloud.access_token)
                .finish();
            let body = serde_json::json!({
                "path": "/hello",
                "method": "POST",
                "body": {"q": 1},
                "exts": {
                    "cloudAppId": cloud.cloud_app_id,
                    "domain": format!("http://{}", self.cloud_upstream),
                    "cacheType": 1,
                    "cacheTime": 3600,
                },
            })
            .to_string();
            let make_plan = |tag: &str| Plan {
                host: souk,
                method: "POST",
                requests: vec![(format!("/souk/v1/cloud/http-request?{query}"), Body::Fixed(body.clone()))],
                marker: r#""success":true"#.to_owned(),
                drain: true,
                tag: tag.to_owned(),
            };
            bench
                .measure("souk cloud gateway cache hit", backend, &make_plan, None)
                .await
                .map_err(with_log)?;

            // Last: the jobs it submits keep the workers busy after it.
            let asynchronous = setup::prepare_async(&admin, souk, self.launch.provider, self.launch.provider_secret)
                .await
                .map_err(with_log)?;
            let make_plan = |tag: &str| {
                invoke_plan(
                    souk,
                    std::slice::from_ref(&asynchronous.access_token),
                    &asynchronous.service_id,
                    std::slice::from_ref(&asynchronous.api),
                    true,
                    tag,
                )
            };
            bench
                .measure("souk async submit", backend, &make_plan, None)
                .await
                .map_err(with_log)?;
            children.check_alive().map_err(with_log)?;
        }

        children.terminate(pid, Duration::from_secs(30)).await.map_err(with_log)?;
        Ok(SoukOutcome {
            charging,
            memory: MemoryReport {
                backend: self.backend.to_owned(),
                idle,
                under_load,
            },
            soak,
        })
    }

    /// The main scenario for `seconds` in one wrk run, with souk's memory at every tenth of it;
    /// returns the report and the successes.
    async fn soak(
        &self,
        bench: &Bench<'_>,
        souk: SocketAddr,
        target: &Target,
        pid: u32,
        seconds: u64,
    ) -> Result<(SoakReport, u64), String> {
        progress(&format!("soak [{}]: the main scenario for {seconds} s", self.backend));
        let plan = plan_of_target(target, souk, &format!("{}s", random_text(6)), true);
        let running = bench.wrk_once(&plan, seconds, None);
        tokio::pin!(running);
        let mut samples = Vec::new();
        let started = tokio::time::Instant::now();
        // A sample at every tenth of the run: the curve shows a plateau or a leak.
        let checkpoints: Vec<(String, f64)> = (1..10)
            .map(|tenth| {
                let at = seconds as f64 * f64::from(tenth) / 10.0;
                (format!("{at:.0}s"), at)
            })
            .collect();
        let mut next = 0;
        let result = loop {
            let wait = checkpoints.get(next).map_or(Duration::from_secs(3600), |(_, at)| {
                Duration::from_secs_f64(*at).saturating_sub(started.elapsed())
            });
            tokio::select! {
                done = &mut running => break done?.0,
                _ = tokio::time::sleep(wait), if next < checkpoints.len() => {
                    let label = &checkpoints[next].0;
                    let sample = procs::memory(pid);
                    progress(&format!("soak: {label}: {sample:?}"));
                    samples.push((label.clone(), sample));
                    next += 1;
                }
            }
        };
        samples.push((format!("{seconds}s (end)"), procs::memory(pid)));
        let failures = result.failures();
        if failures > 0 {
            eprintln!(
                "souk-bench: FAILURES: soak: {failures} failed answers; first: {}",
                result.first_failure().as_deref().unwrap_or("(socket errors)")
            );
        }
        Ok((
            SoakReport {
                backend: self.backend.to_owned(),
                seconds,
                requests_per_second: result.requests_per_second(),
                samples,
                failures,
            },
            result.ok,
        ))
    }
}

/// Instructions per request of the main souk scenario: souk under callgrind twice (start, setup,
/// a warm-up, stop; then the same plus `requests`), the difference divided by `requests`.
async fn callgrind(
    bench: &Bench<'_>,
    binaries: &Binaries,
    provider: SocketAddr,
    provider_secret: &str,
    requests: u64,
) -> Result<CallgrindReport, String> {
    const WARMUP: usize = 200;
    let mut totals = Vec::new();
    for (label, extra) in [("baseline", 0), ("measured", requests)] {
        progress(&format!(
            "callgrind {label}: souk under valgrind, setup, {WARMUP} warm-up requests, {extra} more (slow)"
        ));
        let mut children = Children::default();
        let admin_token = random_text(32);
        let out = bench.temp.join(format!("callgrind-{label}.out"));
        let log = bench.temp.join(format!("souk-callgrind-{label}.log"));
        let (souk, pid) = procs::start_souk(
            &mut children,
            &bench.client,
            bench.pinning,
            &SoukLaunch {
                binary: &binaries.souk,
                data_dir: &bench.temp.join(format!("data-callgrind-{label}")),
                admin_token: &admin_token,
                database_url: None,
                redis_url: None,
                log: &log,
                callgrind_out: Some(&out),
            },
        )
        .await?;
        let with_log = |err: String| format!("{err}\n{}", procs::log_tail(&log));
        let admin = AdminClient::new(&format!("http://{souk}"), &admin_token).map_err(|err| err.to_string())?;
        let main = setup::prepare(&admin, souk, provider, provider_secret, setup::UNITS)
            .await
            .map_err(with_log)?;
        let target = Arc::new(Target::Souk {
            souk,
            access_token: main.access_token,
            service_id: main.service_id,
            api: setup::API_NAME.to_owned(),
            run_tag: random_text(8),
        });
        let concurrency = 4;
        for (phase, count) in [("warmup", WARMUP), ("measure", extra as usize)] {
            if count == 0 {
                continue;
            }
            let outcome = load::run(&bench.client, &target, phase, count, concurrency).await;
            if outcome.failures > 0 {
                return Err(with_log(format!(
                    "{} of {count} requests failed under callgrind; first: {}",
                    outcome.failures,
                    outcome.first_failure.unwrap_or_default()
                )));
            }
        }
        children.terminate(pid, Duration::from_secs(120)).await.map_err(with_log)?;
        let text = std::fs::read_to_string(&out).map_err(|err| format!("cannot read {}: {err}", out.display()))?;
        let total = callgrind_total(&text).ok_or_else(|| format!("no totals in {}", out.display()))?;
        progress(&format!("callgrind {label}: {total} instructions"));
        totals.push(total);
    }
    let (baseline, measured) = (totals[0], totals[1]);
    Ok(CallgrindReport {
        requests,
        baseline_instructions: baseline,
        measured_instructions: measured,
        instructions_per_request: measured.saturating_sub(baseline) as f64 / requests as f64,
    })
}

/// The instruction count of a callgrind output file (`summary:` or `totals:`; the first event is `Ir`).
fn callgrind_total(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("summary:"))
        .or_else(|| text.lines().find_map(|line| line.strip_prefix("totals:")))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends_of(argv: &[&str]) -> Result<Vec<&'static str>, String> {
        let args = Args::try_parse_from(std::iter::once("souk-bench").chain(argv.iter().copied())).unwrap();
        chosen_backends(&args).map(|backends| backends.into_iter().map(|(name, _, _)| name).collect())
    }

    #[test]
    fn backends_default_to_what_the_urls_allow_and_a_choice_needs_its_urls() {
        let pg = ["--database-url", "postgres://db"];
        let both = ["--database-url", "postgres://db", "--redis-url", "redis://r"];
        assert_eq!(backends_of(&[]).unwrap(), ["sqlite"]);
        assert_eq!(backends_of(&pg).unwrap(), ["sqlite", "postgres"]);
        assert_eq!(backends_of(&both).unwrap(), ["sqlite", "postgres", "postgres+redis"]);
        let chosen = [&both[..], &["--backends", "cluster,sqlite"]].concat();
        assert_eq!(backends_of(&chosen).unwrap(), ["sqlite", "postgres+redis"]);
        assert!(backends_of(&["--backends", "postgres"]).unwrap_err().contains("--database-url"));
        let cluster_without_redis = [&pg[..], &["--backends", "cluster"]].concat();
        assert!(backends_of(&cluster_without_redis).unwrap_err().contains("--redis-url"));
    }

    #[test]
    fn callgrind_totals_are_read() {
        let text = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=(1) main\n0 5\nsummary: 123456789\ntotals: 123456789\n";
        assert_eq!(callgrind_total(text), Some(123_456_789));
        assert_eq!(callgrind_total("events: Ir\ntotals: 42\n"), Some(42));
        assert_eq!(callgrind_total("events: Ir\n"), None);
    }

    #[test]
    fn invoke_plans_pair_every_token_with_every_api() {
        let host = "127.0.0.1:1".parse().unwrap();
        let plan = invoke_plan(
            host,
            &["t1".into(), "t2".into()],
            "svc",
            &["A".into(), "B".into(), "C".into()],
            true,
            "tag",
        );
        assert_eq!(plan.requests.len(), 6);
        assert_eq!(plan.requests[0].0, "/wxa/servicemarket?access_token=t1");
        assert_eq!(plan.requests[1].0, "/wxa/servicemarket?access_token=t2");
        let Body::WithId { before, after } = &plan.requests[1].1 else {
            panic!("a unique id is needed");
        };
        let body: serde_json::Value = serde_json::from_str(&format!("{before}id-1{after}")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"service": "svc", "api": "A", "data": {"n": 1}, "async": true, "client_msg_id": "id-1"})
        );
    }

    #[test]
    fn direct_plans_keep_each_signature_with_its_body() {
        let target = Target::Direct {
            provider: "127.0.0.1:2".parse().unwrap(),
            secret: "s".into(),
            service_id: "svc".into(),
            api: "Echo".into(),
            appid: "wx1".into(),
        };
        let plan = plan_of_target(&target, "127.0.0.1:3".parse().unwrap(), "t", false);
        assert_eq!(plan.requests.len(), 64);
        for (path, body) in &plan.requests {
            let Body::Fixed(body) = body else {
                panic!("signed bodies are fixed")
            };
            let query = souk_sdk::provider::parse_query(path.split_once('?').unwrap().1);
            let now = i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
            )
            .unwrap();
            assert_eq!(
                souk_sdk::provider::verify_request("s", &query, body.as_bytes(), now, 60_000),
                Ok(())
            );
        }
    }
}
