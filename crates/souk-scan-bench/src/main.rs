//! Benchmark: souk's code scanner (`souk-builtins::scan`) against `zbarimg` (zbar-tools) and the
//! Python `zxing-cpp` package on a generated corpus. Prints detection rate (overall, per kind, per
//! distortion) and images per second side by side; progress goes to stderr. A missing peer is shown
//! as "not installed" with the command that installs it: this program installs nothing.

mod corpus;
mod distort;
mod report;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

/// Compare souk's scanner with zbarimg and zxing-cpp on a generated corpus.
#[derive(Parser)]
#[command(name = "souk-scan-bench")]
struct Args {
    /// Where to write the corpus (PNGs and manifest.json); default a temporary folder, removed after.
    #[arg(long)]
    out: Option<PathBuf>,
    /// How many images to generate (616 is four rounds of every kind in every variant, plus several-code images).
    #[arg(long, default_value_t = 616)]
    images: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("souk-scan-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    // The temporary folder lives until the end of this function.
    let temp = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    let dir = match &args.out {
        Some(out) => {
            std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
            out.clone()
        }
        None => temp.path().to_owned(),
    };
    eprintln!("generating {} images into {}", args.images, dir.display());
    let entries = corpus::generate(&dir, args.images)?;
    let runs = [
        tools::run_souk(&dir, &entries)?,
        tools::run_zbar(&dir, &entries)?,
        tools::run_zxing(&dir, &entries)?,
    ];
    for run in &runs {
        if let tools::Outcome::Missing(install) = run.outcome {
            eprintln!("{} not found: install it with `{install}` to compare", run.tool);
        }
    }
    let (table, json) = report::render(&entries, &runs);
    print!("{table}");
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    eprintln!("done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
