//! `souk admin ...`: the command line of the admin API (`wire.md` §6), a thin layer over
//! `souk_sdk::AdminClient`.
//!
//! Each subcommand is one admin API call (a few with `--all`, which follows `next` cursors). Answers
//! print as lines and tables for people, or as JSON with `--json`. A failed call prints
//! `error: <message> (request id R)` on stderr and exits 1; usage errors are clap's and exit 2.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;
use souk_sdk::types::admin::{
    ApiMode, ApiPatch, ApiView, AppPatch, AppView, CallView, List, NewApi, NewApp, NewPackage, NewService, PackageView, RateLimit,
    ServicePatch, ServiceView,
};
use souk_sdk::{AdminClient, CallQuery, SdkError};

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
}

#[derive(Debug, Subcommand)]
enum AppsCommand {
    /// Register an app; prints its appid and secret (the secret is shown only once).
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        fields: AppFields,
    },
    /// List apps.
    List(ListArgs),
    /// Show one app.
    Show {
        /// The app's appid.
        appid: String,
    },
    /// Change an app's settings (only the options given change).
    Update {
        /// The app's appid.
        appid: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: AppFields,
    },
    /// Disable an app: its tokens stop working and it gets no new ones.
    Disable {
        /// The app's appid.
        appid: String,
    },
    /// Enable a disabled app.
    Enable {
        /// The app's appid.
        appid: String,
    },
    /// Replace an app's secret; the old one stops working. Prints the new secret once.
    RotateSecret {
        /// The app's appid.
        appid: String,
    },
}

/// The app settings shared by `apps create` and `apps update`.
#[derive(Debug, Args)]
struct AppFields {
    /// App type: miniprogram (default), minigame, official_account, ...
    #[arg(long = "type", value_name = "TYPE")]
    app_type: Option<String>,
    /// Open account the app is bound to (same unionid across its apps); "" unbinds on update.
    #[arg(long, value_name = "OA")]
    open_account: Option<String>,
    /// A registered page, like pages/index/index (repeat for several); replaces the list on update,
    /// a single --page "" empties it.
    #[arg(long = "page", value_name = "PAGE")]
    pages: Vec<String>,
    /// Theme colour #rrggbb; "" clears on update.
    #[arg(long, value_name = "COLOR")]
    theme_color: Option<String>,
    /// Where souk pushes the app's messages and events; "" clears on update.
    #[arg(long, value_name = "URL")]
    message_url: Option<String>,
    /// The token message pushes are signed with; "" clears on update.
    #[arg(long, value_name = "TOKEN")]
    message_token: Option<String>,
    /// An origin allowed to call the client API (repeat for several; none: any origin); replaces
    /// the list on update, a single --allowed-origin "" empties it.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// Rate limit over all the app's service-market calls, PER_SECOND/BURST (like 10/20); "none"
    /// removes it on update.
    #[arg(long, value_name = "PER_SECOND/BURST", value_parser = parse_rate_setting)]
    rate_limit: Option<RateSetting>,
}

#[derive(Debug, Subcommand)]
enum ServicesCommand {
    /// Register a service; prints its id and the secret souk signs provider requests with.
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
        /// The service id (generated when absent).
        #[arg(long = "id", value_name = "ID")]
        service_id: Option<String>,
        /// The signing secret (generated when absent).
        #[arg(long)]
        secret: Option<String>,
    },
    /// List services.
    List(ListArgs),
    /// Show one service.
    Show {
        /// The service id.
        service_id: String,
    },
    /// Change a service (only the options given change).
    Update {
        /// The service id.
        service_id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New signing secret (give the provider the same one).
        #[arg(long)]
        secret: Option<String>,
        /// Disable the service: calls to it get "unknown service".
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable a disabled service.
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ApisCommand {
    /// Add an API to a service.
    Create {
        /// The service id.
        service_id: String,
        /// The API name callers use.
        #[arg(long)]
        name: String,
        /// Where souk POSTs the signed request.
        #[arg(long, value_name = "URL")]
        upstream_url: String,
        /// Sync, async (long tasks) or both.
        #[arg(long, default_value = "sync", value_parser = mode_parser())]
        mode: ApiMode,
        #[command(flatten)]
        settings: ApiSettings,
    },
    /// List a service's APIs.
    List {
        /// The service id.
        service_id: String,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one API.
    Show {
        /// The service id.
        service_id: String,
        /// The API name.
        name: String,
    },
    /// Change an API (only the options given change).
    Update {
        /// The service id.
        service_id: String,
        /// The API name.
        name: String,
        /// New upstream URL.
        #[arg(long, value_name = "URL")]
        upstream_url: Option<String>,
        /// New mode.
        #[arg(long, value_parser = mode_parser())]
        mode: Option<ApiMode>,
        /// Remove the API's schema.
        #[arg(long, conflicts_with = "schema")]
        no_schema: bool,
        #[command(flatten)]
        settings: ApiSettings,
    },
    /// Delete an API.
    Delete {
        /// The service id.
        service_id: String,
        /// The API name.
        name: String,
    },
}

/// The API settings shared by `apis create` and `apis update`.
#[derive(Debug, Args)]
struct ApiSettings {
    /// Timeout of one provider call in milliseconds (default 10000).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// A JSON Schema `data` must satisfy: the JSON itself, or @FILE to read it from a file.
    #[arg(long, value_name = "JSON_OR_@FILE", value_parser = parse_schema)]
    schema: Option<Value>,
    /// Units charged per successful call (default 1).
    #[arg(long, value_name = "UNITS")]
    price: Option<i64>,
    /// Rate limit over all callers, PER_SECOND/BURST (like 100/200); "none" removes it on update.
    #[arg(long, value_name = "PER_SECOND/BURST", value_parser = parse_rate_setting)]
    rate_limit: Option<RateSetting>,
}

#[derive(Debug, Subcommand)]
enum PackagesCommand {
    /// Give an app units to spend on a service.
    Create {
        /// The paying app.
        #[arg(long)]
        appid: String,
        /// The service the units are for.
        #[arg(long)]
        service_id: String,
        /// Units bought.
        #[arg(long)]
        units: i64,
        /// When the package stops being usable: Unix seconds or RFC 3339.
        #[arg(long, value_name = "UNIX_SECONDS|RFC3339", value_parser = parse_time)]
        expires_at: Option<i64>,
    },
    /// List packages.
    List {
        /// Only this app's packages.
        #[arg(long)]
        appid: Option<String>,
        /// Only packages for this service.
        #[arg(long)]
        service_id: Option<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one package.
    Show {
        /// The package id.
        package_id: String,
    },
    /// A package's ledger: each charge reserved, committed or released.
    Ledger {
        /// The package id.
        package_id: String,
        #[command(flatten)]
        list: ListArgs,
    },
}

/// `calls`: filters of the call log.
#[derive(Debug, Args)]
struct CallsArgs {
    /// Only calls of this app.
    #[arg(long)]
    appid: Option<String>,
    /// Only calls to this service.
    #[arg(long)]
    service_id: Option<String>,
    /// Only calls to this API.
    #[arg(long)]
    api: Option<String>,
    /// Only calls that answered this errcode (0: successes).
    #[arg(long, allow_negative_numbers = true)]
    errcode: Option<i64>,
    /// Only the call with this request id.
    #[arg(long)]
    request_id: Option<String>,
    /// Only calls since this time: Unix seconds or RFC 3339.
    #[arg(long, value_name = "UNIX_SECONDS|RFC3339", value_parser = parse_time)]
    since: Option<i64>,
    /// Calls per page.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[command(flatten)]
    list: ListArgs,
}

/// Paging of list commands.
#[derive(Debug, Args)]
struct ListArgs {
    /// Follow the pages to the end instead of printing the first one.
    #[arg(long)]
    all: bool,
}

/// A rate limit to set, or `none` to remove it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RateSetting {
    Set(RateLimit),
    Remove,
}

impl RateSetting {
    /// For a create: `none` is the same as no limit.
    fn for_create(setting: Option<RateSetting>) -> Option<RateLimit> {
        match setting? {
            RateSetting::Set(limit) => Some(limit),
            RateSetting::Remove => None,
        }
    }

    /// For a patch: absent leaves it, `none` removes it (`null`), a value sets it.
    fn for_patch(setting: Option<RateSetting>) -> Option<Option<RateLimit>> {
        setting.map(|setting| match setting {
            RateSetting::Set(limit) => Some(limit),
            RateSetting::Remove => None,
        })
    }
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
        AdminCommand::Apps(command) => apps(&client, out, command).await,
        AdminCommand::Services(command) => services(&client, out, command).await,
        AdminCommand::Apis(command) => apis(&client, out, command).await,
        AdminCommand::Packages(command) => packages(&client, out, command).await,
        AdminCommand::Calls(args) => calls(&client, out, args).await,
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

// ---- commands ----

async fn apps(client: &AdminClient, out: Output, command: AppsCommand) -> Result<(), CliError> {
    match command {
        AppsCommand::Create { name, fields } => {
            let created = client.create_app(&new_app(name, fields)).await?;
            out.secret(&created, &[("appid", &created.app.appid), ("secret", &created.secret)], || {
                format!(
                    "note: the secret is shown only this once; store it now (`souk admin apps rotate-secret {}` makes a new one)",
                    created.app.appid
                )
            })
        }
        AppsCommand::List(list) => {
            let page = pages(list.all, |cursor| async move { client.list_apps(cursor.as_deref()).await }).await?;
            out.list(
                &page,
                "apps",
                &["APPID", "NAME", "TYPE", "STATUS", "OPEN ACCOUNT", "CREATED"],
                |app| {
                    vec![
                        app.appid.clone(),
                        app.name.clone(),
                        app.app_type.clone(),
                        status(app.disabled),
                        or_dash(app.open_account.as_deref()),
                        format_time_s(app.created_at),
                    ]
                },
            )
        }
        AppsCommand::Show { appid } => out.app(&client.get_app(&appid).await?),
        AppsCommand::Update { appid, name, fields } => {
            let patch = app_patch(name, fields);
            out.app(&client.patch_app(&appid, &patch).await?)
        }
        AppsCommand::Disable { appid } => set_app_disabled(client, out, &appid, true).await,
        AppsCommand::Enable { appid } => set_app_disabled(client, out, &appid, false).await,
        AppsCommand::RotateSecret { appid } => {
            let rotated = client.rotate_secret(&appid).await?;
            out.secret(&rotated, &[("appid", &rotated.app.appid), ("secret", &rotated.secret)], || {
                "note: the new secret is shown only this once; the old one no longer works".to_owned()
            })
        }
    }
}

async fn set_app_disabled(client: &AdminClient, out: Output, appid: &str, disabled: bool) -> Result<(), CliError> {
    let patch = AppPatch {
        disabled: Some(disabled),
        ..AppPatch::default()
    };
    let app = client.patch_app(appid, &patch).await?;
    out.line(&app, || format!("app {} is now {}", app.appid, status(app.disabled)))
}

async fn services(client: &AdminClient, out: Output, command: ServicesCommand) -> Result<(), CliError> {
    match command {
        ServicesCommand::Create { name, service_id, secret } => {
            let created = client.create_service(&NewService { service_id, name, secret }).await?;
            let fields = [
                ("service_id", created.service.service_id.as_str()),
                ("secret", created.secret.as_str()),
            ];
            out.secret(&created, &fields, || {
                "note: give the provider this secret; souk signs every request to it with it".to_owned()
            })
        }
        ServicesCommand::List(list) => {
            let page = pages(list.all, |cursor| async move { client.list_services(cursor.as_deref()).await }).await?;
            out.list(&page, "services", &["SERVICE ID", "NAME", "STATUS", "CREATED"], |service| {
                vec![
                    service.service_id.clone(),
                    service.name.clone(),
                    status(service.disabled),
                    format_time_s(service.created_at),
                ]
            })
        }
        ServicesCommand::Show { service_id } => out.service(&client.get_service(&service_id).await?),
        ServicesCommand::Update {
            service_id,
            name,
            secret,
            disable,
            enable,
        } => {
            let disabled = match (disable, enable) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let patch = ServicePatch { name, secret, disabled };
            out.service(&client.patch_service(&service_id, &patch).await?)
        }
    }
}

async fn apis(client: &AdminClient, out: Output, command: ApisCommand) -> Result<(), CliError> {
    match command {
        ApisCommand::Create {
            service_id,
            name,
            upstream_url,
            mode,
            settings,
        } => {
            let api = NewApi {
                name,
                upstream_url,
                mode,
                timeout_ms: settings.timeout_ms,
                schema: settings.schema,
                price: settings.price,
                rate_limit: RateSetting::for_create(settings.rate_limit),
            };
            out.api(&client.create_api(&service_id, &api).await?)
        }
        ApisCommand::List { service_id, list } => {
            let service_id = service_id.as_str();
            let page = pages(list.all, |cursor| async move {
                client.list_apis_page(service_id, cursor.as_deref()).await
            })
            .await?;
            out.list(
                &page,
                "APIs",
                &["NAME", "MODE", "PRICE", "TIMEOUT", "RATE LIMIT", "UPSTREAM"],
                |api| {
                    vec![
                        api.name.clone(),
                        api.mode.as_str().to_owned(),
                        api.price.to_string(),
                        format!("{} ms", api.timeout_ms),
                        format_rate_limit(api.rate_limit.as_ref()),
                        api.upstream_url.clone(),
                    ]
                },
            )
        }
        ApisCommand::Show { service_id, name } => out.api(&client.get_api(&service_id, &name).await?),
        ApisCommand::Update {
            service_id,
            name,
            upstream_url,
            mode,
            no_schema,
            settings,
        } => {
            let schema = match (no_schema, settings.schema) {
                (true, _) => Some(None),
                (false, schema) => schema.map(Some),
            };
            let patch = ApiPatch {
                upstream_url,
                mode,
                timeout_ms: settings.timeout_ms,
                schema,
                price: settings.price,
                rate_limit: RateSetting::for_patch(settings.rate_limit),
            };
            out.api(&client.patch_api(&service_id, &name, &patch).await?)
        }
        ApisCommand::Delete { service_id, name } => {
            client.delete_api(&service_id, &name).await?;
            let answer = serde_json::json!({ "deleted": true, "service_id": service_id, "name": name });
            out.line(&answer, || format!("deleted API {name} of service {service_id}"))
        }
    }
}

async fn packages(client: &AdminClient, out: Output, command: PackagesCommand) -> Result<(), CliError> {
    match command {
        PackagesCommand::Create {
            appid,
            service_id,
            units,
            expires_at,
        } => {
            let package = NewPackage {
                appid,
                service_id,
                units,
                expires_at,
            };
            out.package(&client.create_package(&package).await?)
        }
        PackagesCommand::List { appid, service_id, list } => {
            let (appid, service_id) = (appid.as_deref(), service_id.as_deref());
            let page = pages(list.all, |cursor| async move {
                client.list_packages(appid, service_id, cursor.as_deref()).await
            })
            .await?;
            out.list(
                &page,
                "packages",
                &["PACKAGE ID", "APPID", "SERVICE", "UNITS", "LEFT", "EXPIRES"],
                |package| {
                    vec![
                        package.package_id.clone(),
                        package.appid.clone(),
                        package.service_id.clone(),
                        package.units.to_string(),
                        package.units_left.to_string(),
                        package.expires_at.map_or_else(|| "never".to_owned(), format_time_s),
                    ]
                },
            )
        }
        PackagesCommand::Show { package_id } => out.package(&client.get_package(&package_id).await?),
        PackagesCommand::Ledger { package_id, list } => {
            let package_id = package_id.as_str();
            let page = pages(
                list.all,
                |cursor| async move { client.ledger_page(package_id, cursor.as_deref()).await },
            )
            .await?;
            out.list(
                &page,
                "ledger entries",
                &["TIME", "REQUEST ID", "STATE", "UNITS", "CALLER", "PAYER", "API"],
                |entry| {
                    vec![
                        format_time_ms(entry.created_at_ms),
                        entry.request_id.clone(),
                        entry.state.clone(),
                        entry.units.to_string(),
                        entry.caller_appid.clone(),
                        entry.payer_appid.clone(),
                        format!("{}/{}", entry.service_id, entry.api),
                    ]
                },
            )
        }
    }
}

async fn calls(client: &AdminClient, out: Output, args: CallsArgs) -> Result<(), CliError> {
    let base = CallQuery {
        appid: args.appid,
        service_id: args.service_id,
        api: args.api,
        errcode: args.errcode,
        request_id: args.request_id,
        since: args.since,
        limit: Some(args.limit),
        cursor: None,
    };
    let base = &base;
    let page = pages(args.list.all, |cursor| async move {
        let query = CallQuery { cursor, ..base.clone() };
        client.list_calls(&query).await
    })
    .await?;
    out.list(
        &page,
        "calls",
        &[
            "TIME (UTC)",
            "REQUEST ID",
            "APPID",
            "SERVICE/API",
            "ERRCODE",
            "LATENCY",
            "PACKAGE",
            "IN/OUT BYTES",
        ],
        call_row,
    )
}

fn call_row(call: &CallView) -> Vec<String> {
    let target = match (&call.service_id, &call.api) {
        (Some(service), Some(api)) => format!("{service}/{api}"),
        (Some(service), None) => service.clone(),
        _ => call.route.clone(),
    };
    vec![
        format_time_ms(call.at_ms),
        call.request_id.clone(),
        or_dash(call.appid.as_deref()),
        target,
        call.errcode.to_string(),
        format!("{:.1} ms", call.latency_us as f64 / 1000.0),
        or_dash(call.package_id.as_deref()),
        format!("{}/{}", call.bytes_in, call.bytes_out),
    ]
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

// ---- building requests ----

fn new_app(name: String, fields: AppFields) -> NewApp {
    NewApp {
        name,
        app_type: fields.app_type,
        open_account: fields.open_account.filter(|value| !value.is_empty()),
        pages: list_setting(fields.pages),
        theme_color: fields.theme_color.filter(|value| !value.is_empty()),
        message_url: fields.message_url.filter(|value| !value.is_empty()),
        message_token: fields.message_token.filter(|value| !value.is_empty()),
        allowed_origins: list_setting(fields.allowed_origins),
        rate_limit: RateSetting::for_create(fields.rate_limit),
    }
}

fn app_patch(name: Option<String>, fields: AppFields) -> AppPatch {
    AppPatch {
        name,
        app_type: fields.app_type,
        open_account: clearable(fields.open_account),
        pages: list_setting(fields.pages),
        theme_color: clearable(fields.theme_color),
        message_url: clearable(fields.message_url),
        message_token: clearable(fields.message_token),
        allowed_origins: list_setting(fields.allowed_origins),
        rate_limit: RateSetting::for_patch(fields.rate_limit),
        disabled: None,
    }
}

/// A repeated option: not given leaves the list alone; given, the non-empty values are the list.
fn list_setting(values: Vec<String>) -> Option<Vec<String>> {
    if values.is_empty() {
        return None;
    }
    Some(values.into_iter().filter(|value| !value.is_empty()).collect())
}

/// An optional setting on update: not given leaves it, `""` clears it (`null`), a value sets it.
fn clearable(value: Option<String>) -> Option<Option<String>> {
    value.map(|value| Some(value).filter(|value| !value.is_empty()))
}

// ---- parsing option values ----

fn parse_rate_setting(text: &str) -> Result<RateSetting, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(RateSetting::Remove);
    }
    let (rate, burst) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not PER_SECOND/BURST (like 10/20), nor none"))?;
    let per_second: f64 = rate
        .trim()
        .parse()
        .map_err(|_| format!("{rate:?} is not a number of calls per second"))?;
    if !per_second.is_finite() || per_second <= 0.0 {
        return Err(format!("{rate:?}: the rate must be above 0"));
    }
    let burst: u32 = burst.trim().parse().map_err(|_| format!("{burst:?} is not a whole burst size"))?;
    Ok(RateSetting::Set(RateLimit { per_second, burst }))
}

fn mode_parser() -> impl TypedValueParser<Value = ApiMode> {
    PossibleValuesParser::new(["sync", "async", "both"]).map(|name: String| ApiMode::parse(&name).expect("only the listed values get here"))
}

/// The schema as JSON, or `@FILE` naming a file that holds it.
fn parse_schema(text: &str) -> Result<Value, String> {
    let (json, origin) = match text.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|err| format!("cannot read the schema file {path}: {err}"))?,
            path,
        ),
        None => (text.to_owned(), "--schema"),
    };
    serde_json::from_str(&json).map_err(|err| format!("{origin} is not JSON: {err}"))
}

/// Unix seconds, or an RFC 3339 time.
fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|at| at.unix_timestamp())
        .map_err(|_| format!("{text:?} is neither Unix seconds nor RFC 3339 (like 2025-01-31T12:00:00Z)"))
}

// ---- printing ----

/// How answers are printed: JSON as the API answered it, or lines and tables for people.
#[derive(Debug, Clone, Copy)]
struct Output {
    json: bool,
}

impl Output {
    fn print_json<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value).map_err(|err| CliError::Local(format!("cannot print the answer: {err}")))?;
        println!("{text}");
        Ok(())
    }

    /// One line for people, or the answer as JSON.
    fn line<T: Serialize>(self, answer: &T, human: impl FnOnce() -> String) -> Result<(), CliError> {
        if self.json {
            return self.print_json(answer);
        }
        println!("{}", human());
        Ok(())
    }

    /// An answer holding a secret: the fields on stdout, the note about the secret on stderr.
    fn secret<T: Serialize>(self, answer: &T, fields: &[(&str, &str)], note: impl FnOnce() -> String) -> Result<(), CliError> {
        if self.json {
            return self.print_json(answer);
        }
        print_fields(fields.iter().map(|(key, value)| (*key, (*value).to_owned())));
        eprintln!("{}", note());
        Ok(())
    }

    /// A page of a list as a table, with a hint on stderr when more pages exist.
    fn list<T: Serialize>(self, page: &List<T>, what: &str, headers: &[&str], row: impl Fn(&T) -> Vec<String>) -> Result<(), CliError> {
        if self.json {
            return self.print_json(page);
        }
        if page.items.is_empty() {
            println!("no {what}");
        } else {
            print_table(headers, page.items.iter().map(row).collect());
        }
        if page.next.is_some() {
            eprintln!("more {what} exist: pass --all to list them all");
        }
        Ok(())
    }

    fn app(self, app: &AppView) -> Result<(), CliError> {
        if self.json {
            return self.print_json(app);
        }
        print_fields([
            ("appid", app.appid.clone()),
            ("name", app.name.clone()),
            ("type", app.app_type.clone()),
            ("status", status(app.disabled)),
            ("open account", or_dash(app.open_account.as_deref())),
            ("pages", joined_or(&app.pages, "-")),
            ("theme color", or_dash(app.theme_color.as_deref())),
            ("message url", or_dash(app.message_url.as_deref())),
            ("message token", if app.message_token_set { "set" } else { "not set" }.to_owned()),
            ("allowed origins", joined_or(&app.allowed_origins, "any")),
            ("rate limit", format_rate_limit(app.rate_limit.as_ref())),
            ("created", format_time_s(app.created_at)),
        ]);
        Ok(())
    }

    fn service(self, service: &ServiceView) -> Result<(), CliError> {
        if self.json {
            return self.print_json(service);
        }
        print_fields([
            ("service_id", service.service_id.clone()),
            ("name", service.name.clone()),
            ("status", status(service.disabled)),
            ("created", format_time_s(service.created_at)),
        ]);
        Ok(())
    }

    fn api(self, api: &ApiView) -> Result<(), CliError> {
        if self.json {
            return self.print_json(api);
        }
        print_fields([
            ("service_id", api.service_id.clone()),
            ("name", api.name.clone()),
            ("upstream url", api.upstream_url.clone()),
            ("mode", api.mode.as_str().to_owned()),
            ("timeout", format!("{} ms", api.timeout_ms)),
            ("price", format!("{} unit(s) per call", api.price)),
            ("rate limit", format_rate_limit(api.rate_limit.as_ref())),
            ("schema", api.schema.as_ref().map_or_else(|| "none".to_owned(), Value::to_string)),
            ("created", format_time_s(api.created_at)),
        ]);
        Ok(())
    }

    fn package(self, package: &PackageView) -> Result<(), CliError> {
        if self.json {
            return self.print_json(package);
        }
        print_fields([
            ("package_id", package.package_id.clone()),
            ("appid", package.appid.clone()),
            ("service_id", package.service_id.clone()),
            ("units", package.units.to_string()),
            ("units left", package.units_left.to_string()),
            ("expires", package.expires_at.map_or_else(|| "never".to_owned(), format_time_s)),
            ("created", format_time_s(package.created_at)),
        ]);
        Ok(())
    }
}

/// `key  value` lines with the values aligned.
fn print_fields<K: AsRef<str>>(fields: impl IntoIterator<Item = (K, String)>) {
    let fields: Vec<(K, String)> = fields.into_iter().collect();
    let width = fields.iter().map(|(key, _)| key.as_ref().chars().count()).max().unwrap_or(0);
    for (key, value) in &fields {
        println!("{:<width$}  {value}", key.as_ref());
    }
}

fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    for line in table_lines(headers, &rows) {
        println!("{line}");
    }
}

/// The lines of a table: columns as wide as their widest cell, two spaces apart, no trailing spaces.
fn table_lines(headers: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<&str>| {
        let mut line = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if index + 1 < cells.len() {
                line.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.chars().count())));
            }
        }
        line
    };
    let mut lines = vec![render(headers.to_vec())];
    lines.extend(rows.iter().map(|row| render(row.iter().map(String::as_str).collect())));
    lines
}

fn status(disabled: bool) -> String {
    if disabled { "disabled" } else { "enabled" }.to_owned()
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

fn joined_or(values: &[String], empty: &str) -> String {
    if values.is_empty() {
        empty.to_owned()
    } else {
        values.join(", ")
    }
}

fn format_rate_limit(limit: Option<&RateLimit>) -> String {
    limit.map_or_else(
        || "none".to_owned(),
        |limit| format!("{}/s, burst {}", limit.per_second, limit.burst),
    )
}

/// Unix milliseconds as RFC 3339 in UTC with milliseconds (`2025-01-31T12:00:00.123Z`).
fn format_time_ms(unix_ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(format).ok())
        .unwrap_or_else(|| format!("{unix_ms} ms"))
}

/// Unix seconds as RFC 3339 in UTC (`2025-01-31T12:00:00Z`).
fn format_time_s(unix_seconds: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|at| at.format(format).ok())
        .unwrap_or_else(|| format!("{unix_seconds} s"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// `souk admin` as the lead wires it: the args flattened into a subcommand's parser.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }

    fn parse(args: &[&str]) -> AdminArgs {
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
    fn app_update_builds_a_patch() {
        let args = parse(&[
            "apps",
            "update",
            "wx1",
            "--open-account",
            "",
            "--page",
            "pages/a",
            "--page",
            "pages/b",
            "--rate-limit",
            "none",
            "--theme-color",
            "#112233",
        ]);
        let AdminCommand::Apps(AppsCommand::Update { appid, name, fields }) = *args.command else {
            panic!("not apps update");
        };
        assert_eq!(appid, "wx1");
        let patch = app_patch(name, fields);
        assert_eq!(
            patch,
            AppPatch {
                open_account: Some(None),
                pages: Some(vec!["pages/a".into(), "pages/b".into()]),
                rate_limit: Some(None),
                theme_color: Some(Some("#112233".into())),
                ..AppPatch::default()
            }
        );
    }

    #[test]
    fn app_create_skips_what_is_not_given() {
        let args = parse(&[
            "apps",
            "create",
            "--name",
            "demo",
            "--allowed-origin",
            "https://a.example",
            "--rate-limit",
            "10/20",
        ]);
        let AdminCommand::Apps(AppsCommand::Create { name, fields }) = *args.command else {
            panic!("not apps create");
        };
        assert_eq!(
            new_app(name, fields),
            NewApp {
                name: "demo".into(),
                allowed_origins: Some(vec!["https://a.example".into()]),
                rate_limit: Some(RateLimit {
                    per_second: 10.0,
                    burst: 20
                }),
                ..NewApp::default()
            }
        );
    }

    #[test]
    fn api_options_parse() {
        let args = parse(&[
            "apis",
            "create",
            "svc",
            "--name",
            "Echo",
            "--upstream-url",
            "http://127.0.0.1:9000/echo",
            "--mode",
            "both",
            "--schema",
            r#"{"type":"object"}"#,
        ]);
        let AdminCommand::Apis(ApisCommand::Create { mode, settings, .. }) = *args.command else {
            panic!("not apis create");
        };
        assert_eq!(mode, ApiMode::Both);
        assert_eq!(settings.schema, Some(serde_json::json!({"type": "object"})));
        assert!(Cli::try_parse_from([
            "admin",
            "apis",
            "create",
            "s",
            "--name",
            "n",
            "--upstream-url",
            "u",
            "--mode",
            "never"
        ])
        .is_err());
        assert!(Cli::try_parse_from(["admin", "apis", "update", "s", "n", "--no-schema", "--schema", "{}"]).is_err());
        assert!(Cli::try_parse_from(["admin", "services", "update", "s", "--disable", "--enable"]).is_err());
    }

    #[test]
    fn calls_take_negative_errcodes_and_times() {
        let args = parse(&["calls", "--errcode", "-1", "--since", "2025-01-31T12:00:00Z"]);
        let AdminCommand::Calls(calls) = *args.command else {
            panic!("not calls");
        };
        assert_eq!(calls.errcode, Some(-1));
        assert_eq!(calls.since, Some(1_738_324_800));
        assert_eq!(calls.limit, 20);
    }

    #[test]
    fn option_values() {
        assert_eq!(
            parse_rate_setting("2.5/5"),
            Ok(RateSetting::Set(RateLimit { per_second: 2.5, burst: 5 }))
        );
        assert_eq!(parse_rate_setting("NONE"), Ok(RateSetting::Remove));
        for bad in ["10", "a/b", "0/1", "1/-1", "1/"] {
            assert!(parse_rate_setting(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_time("2025-01-31T20:00:00+08:00"), Ok(1_738_324_800));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_schema("{").is_err());
        assert!(parse_schema("@/nonexistent/schema.json").unwrap_err().contains("cannot read"));
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

    #[test]
    fn tables_align_and_times_are_utc() {
        let lines = table_lines(
            &["A", "LONG HEADER"],
            &[vec!["wide cell".into(), "x".into()], vec!["b".into(), "y".into()]],
        );
        assert_eq!(lines, ["A          LONG HEADER", "wide cell  x", "b          y"]);
        assert_eq!(format_time_ms(1_367_819_523_042), "2013-05-06T05:52:03.042Z");
        assert_eq!(format_time_s(1_367_819_523), "2013-05-06T05:52:03Z");
    }
}
