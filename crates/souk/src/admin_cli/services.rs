//! `souk admin services ...`: register, list, show and update providers' services.

use clap::Subcommand;
use souk_sdk::types::admin::{NewService, ServicePatch};
use souk_sdk::AdminClient;

use super::options::ListArgs;
use super::output::{format_time_s, status, Output};
use super::{pages, CliError};

#[derive(Debug, Subcommand)]
pub(super) enum ServicesCommand {
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

/// Runs one `services` subcommand.
pub(super) async fn run(client: &AdminClient, out: Output, command: ServicesCommand) -> Result<(), CliError> {
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
