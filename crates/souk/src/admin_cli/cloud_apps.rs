//! `souk admin cloud-apps ...`: an app's external services for the cloud gateway
//! (`cloud-gateway.md` §1): register one with its origin whitelist, list, show, update (whitelist,
//! env, signing method, disable or enable), and rotate its signing secret.

use clap::builder::PossibleValuesParser;
use clap::Subcommand;
use souk_sdk::types::admin::{CloudAppPatch, CloudAppView, NewCloudApp};
use souk_sdk::AdminClient;

use super::options::ListArgs;
use super::output::{format_time_s, status, Output};
use super::{pages, CliError};

/// The signing methods souk knows (`cloud-gateway.md` §3).
const SIGN_METHODS: [&str; 3] = ["md5", "hmac", "hmac-sha256"];

#[derive(Debug, Subcommand)]
pub(super) enum CloudAppsCommand {
    /// Register an external service of an app; prints its cloudAppId, app key and secret (the
    /// secret is shown only once).
    Create {
        /// The owning app.
        #[arg(long)]
        appid: String,
        /// An origin calls may go to, like https://api.example.com[:port] (repeat for several, at
        /// most 20).
        #[arg(long = "origin", value_name = "ORIGIN", required = true)]
        whitelist: Vec<String>,
        /// Sent to the service as the env parameter [default: online].
        #[arg(long)]
        env: Option<String>,
        /// How requests are signed [default: md5].
        #[arg(long, value_parser = PossibleValuesParser::new(SIGN_METHODS))]
        sign_method: Option<String>,
    },
    /// List cloud apps.
    List {
        /// Only this app's cloud apps.
        #[arg(long)]
        appid: Option<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one cloud app.
    Show {
        /// The cloudAppId.
        cloud_app_id: String,
    },
    /// Change a cloud app (only the options given change).
    Update {
        /// The cloudAppId.
        cloud_app_id: String,
        /// An origin calls may go to (repeat for several); replaces the whole whitelist.
        #[arg(long = "origin", value_name = "ORIGIN")]
        whitelist: Vec<String>,
        /// New env parameter.
        #[arg(long)]
        env: Option<String>,
        /// New signing method.
        #[arg(long, value_parser = PossibleValuesParser::new(SIGN_METHODS))]
        sign_method: Option<String>,
        /// Refuse every call through the cloud app.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Accept calls again.
        #[arg(long)]
        enable: bool,
    },
    /// Replace a cloud app's signing secret; the old one stops working. Prints the new one once.
    RotateSecret {
        /// The cloudAppId.
        cloud_app_id: String,
    },
}

/// Runs one `cloud-apps` subcommand.
pub(super) async fn run(client: &AdminClient, out: Output, command: CloudAppsCommand) -> Result<(), CliError> {
    match command {
        CloudAppsCommand::Create {
            appid,
            whitelist,
            env,
            sign_method,
        } => {
            let new = NewCloudApp {
                appid,
                whitelist,
                env,
                sign_method,
            };
            let created = client.create_cloud_app(&new).await?;
            let view = &created.cloud_app;
            let fields = [
                ("cloud_app_id", view.cloud_app_id.as_str()),
                ("app_key", view.app_key.as_str()),
                ("secret", created.secret.as_str()),
            ];
            out.secret(&created, &fields, || {
                format!(
                    "note: the secret is shown only this once; store it where your service verifies souk's signature \
                     (`souk admin cloud-apps rotate-secret {}` makes a new one)",
                    view.cloud_app_id
                )
            })
        }
        CloudAppsCommand::List { appid, list } => {
            let appid = appid.as_deref();
            let page = pages(
                list.all,
                |cursor| async move { client.list_cloud_apps(appid, cursor.as_deref()).await },
            )
            .await?;
            out.list(
                &page,
                "cloud apps",
                &["CLOUD APP ID", "APPID", "ENV", "SIGN", "STATUS", "WHITELIST"],
                |cloud_app| {
                    vec![
                        cloud_app.cloud_app_id.clone(),
                        cloud_app.appid.clone(),
                        cloud_app.env.clone(),
                        cloud_app.sign_method.clone(),
                        status(cloud_app.disabled),
                        cloud_app.whitelist.join(", "),
                    ]
                },
            )
        }
        CloudAppsCommand::Show { cloud_app_id } => show(out, &client.get_cloud_app(&cloud_app_id).await?),
        CloudAppsCommand::Update {
            cloud_app_id,
            whitelist,
            env,
            sign_method,
            disable,
            enable,
        } => {
            let patch = cloud_app_patch(whitelist, env, sign_method, disable, enable);
            show(out, &client.patch_cloud_app(&cloud_app_id, &patch).await?)
        }
        CloudAppsCommand::RotateSecret { cloud_app_id } => {
            let rotated = client.rotate_cloud_app_secret(&cloud_app_id).await?;
            let fields = [
                ("cloud_app_id", rotated.cloud_app.cloud_app_id.as_str()),
                ("secret", rotated.secret.as_str()),
            ];
            out.secret(&rotated, &fields, || {
                "note: the new secret is shown only this once; souk signs with it from the next call on".to_owned()
            })
        }
    }
}

fn cloud_app_patch(whitelist: Vec<String>, env: Option<String>, sign_method: Option<String>, disable: bool, enable: bool) -> CloudAppPatch {
    CloudAppPatch {
        whitelist: (!whitelist.is_empty()).then_some(whitelist),
        env,
        sign_method,
        disabled: if disable {
            Some(true)
        } else if enable {
            Some(false)
        } else {
            None
        },
    }
}

/// One cloud app as `key  value` lines (the JSON answer with `--json`).
fn show(out: Output, cloud_app: &CloudAppView) -> Result<(), CliError> {
    out.line(cloud_app, || {
        let fields = [
            ("cloud_app_id", cloud_app.cloud_app_id.clone()),
            ("appid", cloud_app.appid.clone()),
            ("app_key", cloud_app.app_key.clone()),
            ("env", cloud_app.env.clone()),
            ("sign method", cloud_app.sign_method.clone()),
            ("status", status(cloud_app.disabled)),
            ("whitelist", cloud_app.whitelist.join(", ")),
            ("created", format_time_s(cloud_app.created_at)),
        ];
        let width = fields.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
        fields
            .iter()
            .map(|(key, value)| format!("{key:<width$}  {value}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_cli::tests::parse;
    use crate::admin_cli::AdminCommand;

    #[test]
    fn create_takes_repeated_origins() {
        let args = parse(&[
            "cloud-apps",
            "create",
            "--appid",
            "wx1",
            "--origin",
            "https://a.example",
            "--origin",
            "http://b.example:8080",
            "--sign-method",
            "hmac",
        ]);
        let AdminCommand::CloudApps(CloudAppsCommand::Create {
            appid,
            whitelist,
            env,
            sign_method,
        }) = *args.command
        else {
            panic!("not cloud-apps create");
        };
        assert_eq!(appid, "wx1");
        assert_eq!(whitelist, ["https://a.example", "http://b.example:8080"]);
        assert_eq!((env, sign_method.as_deref()), (None, Some("hmac")));
    }

    #[test]
    fn update_builds_a_patch() {
        let args = parse(&["cloud-apps", "update", "1234", "--env", "test", "--disable"]);
        let AdminCommand::CloudApps(CloudAppsCommand::Update {
            cloud_app_id,
            whitelist,
            env,
            sign_method,
            disable,
            enable,
        }) = *args.command
        else {
            panic!("not cloud-apps update");
        };
        assert_eq!(cloud_app_id, "1234");
        assert_eq!(
            cloud_app_patch(whitelist, env, sign_method, disable, enable),
            CloudAppPatch {
                env: Some("test".into()),
                disabled: Some(true),
                ..CloudAppPatch::default()
            }
        );
        let enable = parse(&["cloud-apps", "update", "1234", "--enable", "--origin", "https://c.example"]);
        let AdminCommand::CloudApps(CloudAppsCommand::Update {
            whitelist,
            env,
            sign_method,
            disable,
            enable,
            ..
        }) = *enable.command
        else {
            panic!("not cloud-apps update");
        };
        assert_eq!(
            cloud_app_patch(whitelist, env, sign_method, disable, enable),
            CloudAppPatch {
                whitelist: Some(vec!["https://c.example".into()]),
                disabled: Some(false),
                ..CloudAppPatch::default()
            }
        );
    }
}
