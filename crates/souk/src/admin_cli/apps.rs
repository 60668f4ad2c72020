//! `souk admin apps ...`: register, list, show, update, disable and enable apps, and rotate their
//! secrets.

use clap::{Args, Subcommand};
use souk_sdk::types::admin::{AppPatch, NewApp};
use souk_sdk::AdminClient;

use super::options::{parse_rate_setting, ListArgs, RateSetting};
use super::output::{format_time_s, or_dash, status, Output};
use super::{pages, CliError};

#[derive(Debug, Subcommand)]
pub(super) enum AppsCommand {
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
pub(super) struct AppFields {
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

/// Runs one `apps` subcommand.
pub(super) async fn run(client: &AdminClient, out: Output, command: AppsCommand) -> Result<(), CliError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_cli::tests::parse;
    use crate::admin_cli::AdminCommand;
    use souk_sdk::types::admin::RateLimit;

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
}
