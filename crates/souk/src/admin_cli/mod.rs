//! `souk admin ...`: the command line of the admin API (`wire.md` §6), a thin layer over
//! `souk_sdk::AdminClient`.
//!
//! Each subcommand is one admin API call (a few with `--all`, which follows `next` cursors). Answers
//! print as lines and tables for people, or as JSON with `--json`. A failed call prints
//! `error: <message> (request id R)` on stderr and exits 1; usage errors are clap's and exit 2.

mod apis;
mod apps;
mod calls;
mod cloud_apps;
mod grants;
mod jobs;
mod options;
mod output;
mod packages;
mod payments;
mod services;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use souk_sdk::types::admin::List;
use souk_sdk::{AdminClient, SdkError};

use apis::ApisCommand;
use apps::AppsCommand;
use calls::CallsArgs;
use cloud_apps::CloudAppsCommand;
use grants::GrantsCommand;
use jobs::JobsCommand;
use output::Output;
use packages::PackagesCommand;
use payments::PaymentsCommand;
use services::ServicesCommand;

/// Where `souk serve` listens by default.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// `souk serve`'s default data dir, where it writes the admin token it generates.
const DEFAULT_DATA_DIR: &str = "./souk-data";
/// The file in the data dir holding the generated admin token.
const ADMIN_TOKEN_FILE: &str = "admin-token";
/// The help heading of the options every subcommand takes.
const GLOBAL: &str = "Global options";

/// `souk admin`: operate a running souk through its admin API.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Base URL of the souk to administer.
    #[arg(long, env = "SOUK_URL", default_value = DEFAULT_URL, global = true, help_heading = GLOBAL)]
    url: String,
    /// Admin token; when absent, read from `<data-dir>/admin-token`.
    #[arg(long, env = "SOUK_ADMIN_TOKEN", hide_env_values = true, global = true, help_heading = GLOBAL)]
    token: Option<String>,
    /// Data dir of the local souk, where it keeps the admin token it generated [default: ./souk-data].
    #[arg(long, env = "SOUK_DATA_DIR", value_name = "DIR", global = true, help_heading = GLOBAL)]
    data_dir: Option<PathBuf>,
    /// Print the JSON answer instead of lines and tables.
    #[arg(long, global = true, help_heading = GLOBAL)]
    json: bool,
    // Boxed so `AdminArgs` stays small inside the binary's own command enum (clippy::large_enum_variant).
    #[command(subcommand)]
    command: Box<AdminCommand>,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Apps: the mini-programs and accounts that call souk.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Services: providers' services that apps call through souk.
    #[command(subcommand)]
    Services(ServicesCommand),
    /// APIs of a service: upstream URL, mode, price, limits.
    #[command(subcommand)]
    Apis(ApisCommand),
    /// Resource packages: units an app spends on a service.
    #[command(subcommand)]
    Packages(PackagesCommand),
    /// The call log, newest first.
    Calls(CallsArgs),
    /// Grants: which app may charge which other app's packages (consumeType 2).
    #[command(subcommand)]
    Grants(GrantsCommand),
    /// Async jobs: state, attempts and outcome of async service-market calls.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Cloud apps: an app's external HTTP services for the cloud gateway (whitelist, signing).
    #[command(subcommand)]
    CloudApps(CloudAppsCommand),
    /// Payments users made to apps, as the payment system reports them (for getPaidUnionId).
    #[command(subcommand)]
    Payments(PaymentsCommand),
}

/// Runs `souk admin ...`; the exit code is 0 on success and 1 when the call failed.
pub async fn run(args: AdminArgs) -> ExitCode {
    match execute(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A failure of the command: the SDK's, or a local one (no token, bad URL).
#[derive(Debug)]
enum CliError {
    Sdk(SdkError),
    Local(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Sdk(err) => match err.request_id() {
                Some(request_id) => write!(f, "{err} (request id {request_id})"),
                None => write!(f, "{err}"),
            },
            CliError::Local(message) => f.write_str(message),
        }
    }
}

impl From<SdkError> for CliError {
    fn from(err: SdkError) -> Self {
        CliError::Sdk(err)
    }
}

async fn execute(args: AdminArgs) -> Result<(), CliError> {
    let token = resolve_token(args.token.as_deref(), args.data_dir.as_deref())?;
    let client = AdminClient::new(&args.url, &token)?;
    let out = Output { json: args.json };
    match *args.command {
        AdminCommand::Apps(command) => apps::run(&client, out, command).await,
        AdminCommand::Services(command) => services::run(&client, out, command).await,
        AdminCommand::Apis(command) => apis::run(&client, out, command).await,
        AdminCommand::Packages(command) => packages::run(&client, out, command).await,
        AdminCommand::Calls(args) => calls::run(&client, out, args).await,
        AdminCommand::Grants(command) => grants::run(&client, out, command).await,
        AdminCommand::Jobs(command) => jobs::run(&client, out, command).await,
        AdminCommand::CloudApps(command) => cloud_apps::run(&client, out, command).await,
        AdminCommand::Payments(command) => payments::run(&client, out, command).await,
    }
}

/// `--token` / `SOUK_ADMIN_TOKEN`, else the token file `souk serve` wrote in the data dir.
fn resolve_token(given: Option<&str>, data_dir: Option<&Path>) -> Result<String, CliError> {
    if let Some(token) = given.map(str::trim).filter(|token| !token.is_empty()) {
        return Ok(token.to_owned());
    }
    let path = data_dir.unwrap_or(Path::new(DEFAULT_DATA_DIR)).join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => Err(CliError::Local(format!("the admin token file {} is empty", path.display()))),
        Err(err) => Err(CliError::Local(format!(
            "no admin token: pass --token or set SOUK_ADMIN_TOKEN, or point --data-dir / SOUK_DATA_DIR at souk's data dir \
             (looked for {}: {err})",
            path.display()
        ))),
    }
}

/// Fetches the first page, or every page with `all`; returns the items and the cursor left over.
async fn pages<T, F, Fut>(all: bool, mut fetch: F) -> Result<List<T>, SdkError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<List<T>, SdkError>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = fetch(cursor).await?;
        items.extend(page.items);
        match page.next {
            Some(next) if all => cursor = Some(next),
            next => return Ok(List { items, next }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use options::ListArgs;

    /// `souk admin` as the lead wires it: the args flattened into a subcommand's parser.
    #[derive(Debug, Parser)]
    pub(super) struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }

    pub(super) fn parse(args: &[&str]) -> AdminArgs {
        Cli::try_parse_from(std::iter::once("admin").chain(args.iter().copied()))
            .unwrap_or_else(|err| panic!("{args:?}: {err}"))
            .admin
    }

    #[test]
    fn command_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere() {
        let args = parse(&["apps", "list", "--json", "--url", "http://h:1", "--token", "t", "--all"]);
        assert!(args.json);
        assert_eq!(args.url, "http://h:1");
        assert_eq!(args.token.as_deref(), Some("t"));
        assert!(matches!(
            *args.command,
            AdminCommand::Apps(AppsCommand::List(ListArgs { all: true }))
        ));
    }

    #[test]
    fn token_comes_from_the_flag_or_the_data_dir() {
        assert_eq!(resolve_token(Some(" t1 "), None).unwrap(), "t1");
        let dir = std::env::temp_dir().join(format!("souk-admin-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = resolve_token(None, Some(&dir)).unwrap_err().to_string();
        assert!(
            missing.contains("SOUK_ADMIN_TOKEN") && missing.contains(ADMIN_TOKEN_FILE),
            "{missing}"
        );
        std::fs::write(dir.join(ADMIN_TOKEN_FILE), "from-file\n").unwrap();
        assert_eq!(resolve_token(None, Some(&dir)).unwrap(), "from-file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_carry_the_request_id() {
        let err = CliError::Sdk(SdkError::Api {
            status: 404,
            code: "AdminNotFound".into(),
            message: "no app wx1".into(),
            request_id: Some("r-9".into()),
        });
        assert_eq!(err.to_string(), "no app wx1 [AdminNotFound, HTTP 404] (request id r-9)");
    }
}
