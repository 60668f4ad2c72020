//! `souk admin jobs ...`: async jobs, listed newest first with filters, or one with its attempts,
//! lease, deadline and outcome.

use clap::Subcommand;
use souk_sdk::types::admin::JobView;
use souk_sdk::{AdminClient, JobQuery};

use super::options::ListArgs;
use super::output::{format_time_s, or_dash, Output};
use super::{pages, CliError};

#[derive(Debug, Subcommand)]
pub(super) enum JobsCommand {
    /// List async jobs, newest first.
    List {
        /// Only this app's jobs.
        #[arg(long)]
        appid: Option<String>,
        /// Only jobs in this state.
        #[arg(long, value_parser = ["pending", "waiting", "succeeded", "failed"])]
        state: Option<String>,
        /// Jobs per page.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one job.
    Show {
        /// The job's request id.
        request_id: String,
    },
}

/// Runs one `jobs` subcommand.
pub(super) async fn run(client: &AdminClient, out: Output, command: JobsCommand) -> Result<(), CliError> {
    match command {
        JobsCommand::List { appid, state, limit, list } => {
            let base = JobQuery {
                appid,
                state,
                limit: Some(limit),
                cursor: None,
            };
            let base = &base;
            let page = pages(list.all, |cursor| async move {
                let query = JobQuery { cursor, ..base.clone() };
                client.list_jobs(&query).await
            })
            .await?;
            out.list(
                &page,
                "jobs",
                &[
                    "CREATED (UTC)",
                    "REQUEST ID",
                    "APPID",
                    "SERVICE/API",
                    "STATE",
                    "ATTEMPTS",
                    "OUTCOME",
                ],
                job_row,
            )
        }
        JobsCommand::Show { request_id } => {
            let job = client.get_job(&request_id).await?;
            out.line(&job, || job_lines(&job))
        }
    }
}

fn outcome(job: &JobView) -> String {
    match (job.state.as_str(), job.errcode) {
        ("succeeded", _) => "ok".to_owned(),
        (_, Some(errcode)) => errcode.to_string(),
        _ => "-".to_owned(),
    }
}

fn job_row(job: &JobView) -> Vec<String> {
    vec![
        format_time_s(job.created_at),
        job.request_id.clone(),
        job.appid.clone(),
        format!("{}/{}", job.service_id, job.api),
        job.state.clone(),
        job.attempts.to_string(),
        outcome(job),
    ]
}

fn job_lines(job: &JobView) -> String {
    let time = |at: Option<i64>| at.map_or_else(|| "-".to_owned(), format_time_s);
    let fields = [
        ("request_id", job.request_id.clone()),
        ("appid", job.appid.clone()),
        ("payer", job.payer_appid.clone()),
        ("openid", or_dash(job.openid.as_deref())),
        ("service/api", format!("{}/{}", job.service_id, job.api)),
        ("package", job.package_id.clone()),
        ("state", job.state.clone()),
        ("attempts", job.attempts.to_string()),
        ("body", format!("{} bytes", job.body_bytes)),
        ("created", format_time_s(job.created_at)),
        ("due", time(job.due_at)),
        ("deadline", format_time_s(job.deadline)),
        ("finished", time(job.finished_at)),
        (
            "lease",
            job.lease_owner
                .as_ref()
                .map_or_else(|| "-".to_owned(), |owner| format!("{owner} until {}", time(job.lease_until))),
        ),
        ("last error", or_dash(job.last_error.as_deref())),
        ("outcome", outcome(job)),
        ("data", or_dash(job.data.as_deref())),
        ("errmsg", or_dash(job.errmsg.as_deref())),
    ];
    let width = fields.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    fields
        .iter()
        .map(|(key, value)| format!("{key:<width$}  {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use crate::admin_cli::tests::parse;
    use crate::admin_cli::AdminCommand;

    use super::JobsCommand;

    #[test]
    fn jobs_take_filters_and_refuse_unknown_states() {
        let args = parse(&["jobs", "list", "--appid", "wx1", "--state", "failed", "--all"]);
        let AdminCommand::Jobs(JobsCommand::List { appid, state, limit, list }) = *args.command else {
            panic!("not jobs list");
        };
        assert_eq!(
            (appid.as_deref(), state.as_deref(), limit, list.all),
            (Some("wx1"), Some("failed"), 20, true)
        );
        let args = parse(&["jobs", "show", "r1"]);
        assert!(matches!(*args.command, AdminCommand::Jobs(JobsCommand::Show { ref request_id }) if request_id == "r1"));
        use clap::Parser;
        assert!(crate::admin_cli::tests::Cli::try_parse_from(["admin", "jobs", "list", "--state", "done"]).is_err());
    }
}
