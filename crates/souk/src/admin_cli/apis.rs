//! `souk admin apis ...`: add, list, show, update and delete the APIs of a service.

use clap::{Args, Subcommand};
use serde_json::Value;
use souk_sdk::types::admin::{ApiMode, ApiPatch, NewApi};
use souk_sdk::AdminClient;

use super::options::{mode_parser, parse_rate_setting, parse_schema, ListArgs, RateSetting};
use super::output::{format_rate_limit, Output};
use super::{pages, CliError};

#[derive(Debug, Subcommand)]
pub(super) enum ApisCommand {
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
pub(super) struct ApiSettings {
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

/// Runs one `apis` subcommand.
pub(super) async fn run(client: &AdminClient, out: Output, command: ApisCommand) -> Result<(), CliError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_cli::tests::{parse, Cli};
    use crate::admin_cli::AdminCommand;
    use clap::Parser;

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
}
