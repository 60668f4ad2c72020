//! `souk admin packages ...`: give apps resource packages, list and show them, and read a
//! package's ledger.

use clap::Subcommand;
use souk_sdk::types::admin::NewPackage;
use souk_sdk::AdminClient;

use super::options::{parse_time, ListArgs};
use super::output::{format_time_ms, format_time_s, Output};
use super::{pages, CliError};

#[derive(Debug, Subcommand)]
pub(super) enum PackagesCommand {
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

/// Runs one `packages` subcommand.
pub(super) async fn run(client: &AdminClient, out: Output, command: PackagesCommand) -> Result<(), CliError> {
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
