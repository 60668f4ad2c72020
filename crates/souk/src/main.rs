//! The `souk` binary: `souk serve` runs the platform, `souk migrate` prepares its database,
//! `souk admin ...` manages it through the admin API.

mod admin_cli;
mod config;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, FlagConfig};

/// mimalloc instead of the system allocator: a call allocates and frees many small buffers (headers,
/// JSON, SQL parameters) across threads, where glibc's malloc spent about 8% of souk's time per call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A self-hosted service marketplace and open-platform gateway.
#[derive(Debug, Parser)]
#[command(name = "souk", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (embedded SQLite under --data-dir unless a database URL is configured).
    Serve(ServeArgs),
    /// Apply database migrations and exit (`serve` also migrates on start).
    Migrate(ServeArgs),
    /// Manage a running souk through its admin API.
    Admin(admin_cli::AdminArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// A souk.toml file (also SOUK_CONFIG).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (also SOUK_LISTEN; default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// Data directory (also SOUK_DATA_DIR; default ./souk-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The URL souk is reached at (also SOUK_PUBLIC_URL).
    #[arg(long)]
    public_url: Option<String>,
    /// Print the configuration (secrets redacted) and exit.
    #[arg(long)]
    check_config: bool,
    /// `serve` only: apply no migrations; refuse to start unless the database is exactly at this
    /// version's schema (run `souk migrate` first). For fleets that migrate in a separate step.
    #[arg(long)]
    no_migrate: bool,
}

impl ServeArgs {
    fn load(&self) -> Result<Config, String> {
        let flags = FlagConfig {
            config: self.config.clone(),
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            public_url: self.public_url.clone(),
        };
        Config::load(&flags).map_err(|err| format!("configuration: {err}"))
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("SOUK_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Admin(args) => admin_cli::run(args).await,
            Command::Serve(args) => run_or_report(serve_command(args)).await,
            Command::Migrate(args) => run_or_report(migrate_command(args)).await,
        }
    })
}

async fn run_or_report(work: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    match work.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_command(args: ServeArgs) -> Result<(), String> {
    let config = args.load()?;
    if args.check_config {
        print!("{}", config.redacted());
        return Ok(());
    }
    init_tracing();
    let migrations = if args.no_migrate {
        souk_store::Migrations::Require
    } else {
        souk_store::Migrations::Apply
    };
    serve::serve(config, migrations).await
}

async fn migrate_command(args: ServeArgs) -> Result<(), String> {
    if args.no_migrate {
        return Err("--no-migrate is for `souk serve`; `souk migrate` always migrates".to_owned());
    }
    let config = args.load()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|err| format!("cannot create data dir {}: {err}", config.data_dir.display()))?;
    let store = souk_store::open_with_settings(&config.database_url, souk_store::Migrations::Apply, config.database_settings)
        .await
        .map_err(|err| format!("cannot migrate the database: {err}"))?;
    println!("database migrated ({})", store.backend());
    Ok(())
}
