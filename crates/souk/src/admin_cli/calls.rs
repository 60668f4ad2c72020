//! `souk admin calls`: the call log, filtered and paged, newest first.

use clap::Args;
use souk_sdk::types::admin::CallView;
use souk_sdk::{AdminClient, CallQuery};

use super::options::{parse_time, ListArgs};
use super::output::{format_time_ms, or_dash, Output};
use super::{pages, CliError};

/// `calls`: filters of the call log.
#[derive(Debug, Args)]
pub(super) struct CallsArgs {
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

/// Runs `calls`: one page of the call log, or all of them with `--all`.
pub(super) async fn run(client: &AdminClient, out: Output, args: CallsArgs) -> Result<(), CliError> {
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

#[cfg(test)]
mod tests {
    use crate::admin_cli::tests::parse;
    use crate::admin_cli::AdminCommand;

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
}
