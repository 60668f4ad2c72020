//! `souk-bench`: the same sync echo load sent straight to the example provider and through souk's
//! `/wxa/servicemarket`, to see what the gateway costs; then a check that souk charged exactly one
//! unit per successful call.
//!
//! Run with `cargo run --release -p souk-bench -- [--requests N] [--concurrency C] [--json FILE]`
//! after `cargo build --release -p souk -p souk-example-provider`. Progress goes to stderr, the table
//! to stdout. Exit codes: 0 clean run, 1 failures or a charging mismatch or an error, 2 binaries
//! missing (or bad arguments), 130 interrupted.

mod load;
mod procs;
mod report;
mod setup;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rand::distr::{Alphanumeric, SampleString};
use souk_sdk::AdminClient;

use crate::load::{Outcome, Target};
use crate::procs::{Binaries, Children};
use crate::report::{ChargingReport, Report, ScenarioReport};

/// Benchmark souk's sync service-market invoke against calling the provider directly.
#[derive(Debug, Parser)]
#[command(name = "souk-bench", version)]
struct Args {
    /// Measured requests per scenario (a warm-up of max(N/10, 200) more is sent first and discarded).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    requests: u32,
    /// Concurrent workers, each with its own kept-alive connection.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Run souk on this database (e.g. `postgres://postgres@127.0.0.1:5432/souk_bench`, which must
    /// exist) instead of the embedded SQLite.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Also write the numbers as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("souk-bench: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // On Ctrl-C the bench future is dropped, and with it the guard that kills souk and the provider.
        tokio::select! {
            code = run(&args, &binaries) => code,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("souk-bench: interrupted; stopping souk and the provider");
                ExitCode::from(130)
            }
        }
    })
}

async fn run(args: &Args, binaries: &Binaries) -> ExitCode {
    let report = match bench(args, binaries).await {
        Ok(report) => report,
        Err(message) => {
            eprintln!("souk-bench: error: {message}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    let charging = &report.charging;
    println!(
        "charging: {} units charged for {} successful souk calls: {}",
        charging.units_charged,
        charging.successful_souk_calls,
        if charging.exact { "exact" } else { "MISMATCH" }
    );
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

async fn bench(args: &Args, binaries: &Binaries) -> Result<Report, String> {
    let requests = args.requests as usize;
    let concurrency = args.concurrency as usize;
    let warmup = (requests / 10).max(200);

    // Declared before the children so it is removed after they are killed.
    let temp = tempfile::Builder::new()
        .prefix("souk-bench-")
        .tempdir()
        .map_err(|err| format!("cannot make a temporary dir: {err}"))?;
    let mut children = Children::default();
    let provider_secret = random_text(32);
    let admin_token = random_text(32);
    let client = load::http_client(concurrency);

    progress("starting souk-example-provider");
    let provider_log = temp.path().join("provider.log");
    let provider = procs::start_provider(&mut children, &binaries.provider, &provider_secret, &provider_log).await?;
    progress(&format!(
        "starting souk serve on {}",
        if args.database_url.is_some() {
            "the given database"
        } else {
            "embedded SQLite"
        }
    ));
    let souk_log = temp.path().join("souk.log");
    let souk = procs::start_souk(
        &mut children,
        &client,
        &binaries.souk,
        &temp.path().join("data"),
        &admin_token,
        args.database_url.as_deref(),
        &souk_log,
    )
    .await?;
    progress(&format!("provider at http://{provider}, souk at http://{souk}"));

    let admin = AdminClient::new(&format!("http://{souk}"), &admin_token).map_err(|err| err.to_string())?;
    // One smoke call, the warm-up and the measured calls, plus slack so a double charge could show.
    let units = (1 + warmup + requests + requests / 100 + 10) as i64;
    let setup = setup::prepare(&admin, souk, provider, &provider_secret, units)
        .await
        .map_err(|err| format!("setup through the admin API failed: {err}\n{}", procs::log_tail(&souk_log)))?;
    progress(&format!(
        "set up app {}, service {}, package {} of {units} units",
        setup.appid, setup.service_id, setup.package_id
    ));

    let direct = Arc::new(Target::Direct {
        provider,
        secret: provider_secret.clone(),
        service_id: setup.service_id.clone(),
        api: setup::API_NAME.to_owned(),
        appid: setup.appid.clone(),
    });
    let (direct_warm, direct_run) = scenario(&client, &direct, "direct", requests, warmup, concurrency, &mut children).await?;
    let through_souk = Arc::new(Target::Souk {
        souk,
        access_token: setup.access_token.clone(),
        service_id: setup.service_id.clone(),
        api: setup::API_NAME.to_owned(),
        run_tag: random_text(8),
    });
    let (souk_warm, souk_run) = scenario(
        &client,
        &through_souk,
        "souk sync invoke",
        requests,
        warmup,
        concurrency,
        &mut children,
    )
    .await
    .map_err(|err| format!("{err}\n{}", procs::log_tail(&souk_log)))?;

    let successful_souk_calls = (1 + souk_warm.successes() + souk_run.successes()) as i64;
    let units_charged = setup::units_charged(&admin, &setup.package_id).await?;
    let direct_rps = direct_run.requests_per_second();
    Ok(Report {
        requests,
        concurrency,
        warmup,
        scenarios: vec![
            ScenarioReport::new("direct", &direct_run, direct_warm.failures, direct_rps),
            ScenarioReport::new("souk sync invoke", &souk_run, souk_warm.failures, direct_rps),
        ],
        charging: ChargingReport {
            successful_souk_calls,
            units_charged,
            exact: units_charged == successful_souk_calls,
        },
    })
}

/// A warm-up then the measured run of one scenario; failures are reported loudly as they are found.
async fn scenario(
    client: &load::HttpClient,
    target: &Arc<Target>,
    name: &'static str,
    requests: usize,
    warmup: usize,
    concurrency: usize,
    children: &mut Children,
) -> Result<(Outcome, Outcome), String> {
    progress(&format!("{name}: warm-up of {warmup} requests"));
    let warm = load::run(client, target, "warmup", warmup, concurrency).await;
    report_failures(name, "warm-up", &warm);
    progress(&format!("{name}: {requests} requests from {concurrency} workers"));
    let measured = load::run(client, target, "measure", requests, concurrency).await;
    report_failures(name, "measured run", &measured);
    children.check_alive()?;
    progress(&format!(
        "{name}: done in {:.2} s, {:.1} requests/s, {} failures",
        measured.elapsed.as_secs_f64(),
        measured.requests_per_second(),
        measured.failures
    ));
    Ok((warm, measured))
}

fn report_failures(name: &str, phase: &str, outcome: &Outcome) {
    if outcome.failures > 0 {
        eprintln!(
            "souk-bench: FAILURES: {name} {phase}: {} of {} requests failed; first: {}",
            outcome.failures,
            outcome.requests,
            outcome.first_failure.as_deref().unwrap_or("?")
        );
    }
}

fn random_text(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}
