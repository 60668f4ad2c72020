//! `souk admin grants ...`: let one app charge another's packages (`consumeType: 2`) when the two are
//! not bound to one open account.

use clap::Subcommand;
use souk_sdk::types::admin::NewGrant;
use souk_sdk::AdminClient;

use super::output::{format_time_s, Output};
use super::CliError;

#[derive(Debug, Subcommand)]
pub(super) enum GrantsCommand {
    /// Let CALLER charge PAYER's packages.
    Create {
        /// The app whose packages pay.
        #[arg(long)]
        payer: String,
        /// The app allowed to make them pay.
        #[arg(long)]
        caller: String,
    },
    /// List grants, optionally of one payer or one caller.
    List {
        /// Only this payer's grants.
        #[arg(long)]
        payer: Option<String>,
        /// Only grants to this caller.
        #[arg(long)]
        caller: Option<String>,
    },
    /// Take a grant back.
    Delete {
        /// The app whose packages pay.
        #[arg(long)]
        payer: String,
        /// The app that may no longer make them pay.
        #[arg(long)]
        caller: String,
    },
}

/// Runs one `grants` subcommand.
pub(super) async fn run(client: &AdminClient, out: Output, command: GrantsCommand) -> Result<(), CliError> {
    match command {
        GrantsCommand::Create { payer, caller } => {
            let grant = client
                .create_grant(&NewGrant {
                    payer_appid: payer,
                    caller_appid: caller,
                })
                .await?;
            out.line(&grant, || {
                format!("{} may now charge {}'s packages", grant.caller_appid, grant.payer_appid)
            })
        }
        GrantsCommand::List { payer, caller } => {
            let page = client.list_grants(payer.as_deref(), caller.as_deref()).await?;
            out.list(&page, "grants", &["PAYER", "CALLER", "CREATED"], |grant| {
                vec![
                    grant.payer_appid.clone(),
                    grant.caller_appid.clone(),
                    format_time_s(grant.created_at),
                ]
            })
        }
        GrantsCommand::Delete { payer, caller } => {
            client.delete_grant(&payer, &caller).await?;
            out.line(&serde_json::json!({"deleted": true}), || {
                format!("{caller} may no longer charge {payer}'s packages")
            })
        }
    }
}
