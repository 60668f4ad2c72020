//! Printing answers: JSON as the API answered it, or `key  value` fields and aligned tables for
//! people, with times in UTC.

use serde::Serialize;
use serde_json::Value;
use souk_sdk::types::admin::{ApiView, AppView, List, PackageView, RateLimit, ServiceView};

use super::CliError;

/// How answers are printed: JSON as the API answered it, or lines and tables for people.
#[derive(Debug, Clone, Copy)]
pub(super) struct Output {
    pub(super) json: bool,
}

impl Output {
    fn print_json<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value).map_err(|err| CliError::Local(format!("cannot print the answer: {err}")))?;
        println!("{text}");
        Ok(())
    }

    /// One line for people, or the answer as JSON.
    pub(super) fn line<T: Serialize>(self, answer: &T, human: impl FnOnce() -> String) -> Result<(), CliError> {
        if self.json {
            return self.print_json(answer);
        }
        println!("{}", human());
        Ok(())
    }

    /// An answer holding a secret: the fields on stdout, the note about the secret on stderr.
    pub(super) fn secret<T: Serialize>(self, answer: &T, fields: &[(&str, &str)], note: impl FnOnce() -> String) -> Result<(), CliError> {
        if self.json {
            return self.print_json(answer);
        }
        print_fields(fields.iter().map(|(key, value)| (*key, (*value).to_owned())));
        eprintln!("{}", note());
        Ok(())
    }

    /// A page of a list as a table, with a hint on stderr when more pages exist.
    pub(super) fn list<T: Serialize>(
        self,
        page: &List<T>,
        what: &str,
        headers: &[&str],
        row: impl Fn(&T) -> Vec<String>,
    ) -> Result<(), CliError> {
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

    pub(super) fn app(self, app: &AppView) -> Result<(), CliError> {
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

    pub(super) fn service(self, service: &ServiceView) -> Result<(), CliError> {
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

    pub(super) fn api(self, api: &ApiView) -> Result<(), CliError> {
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

    pub(super) fn package(self, package: &PackageView) -> Result<(), CliError> {
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

pub(super) fn status(disabled: bool) -> String {
    if disabled { "disabled" } else { "enabled" }.to_owned()
}

pub(super) fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

fn joined_or(values: &[String], empty: &str) -> String {
    if values.is_empty() {
        empty.to_owned()
    } else {
        values.join(", ")
    }
}

pub(super) fn format_rate_limit(limit: Option<&RateLimit>) -> String {
    limit.map_or_else(
        || "none".to_owned(),
        |limit| format!("{}/s, burst {}", limit.per_second, limit.burst),
    )
}

/// Unix milliseconds as RFC 3339 in UTC with milliseconds (`2025-01-31T12:00:00.123Z`).
pub(super) fn format_time_ms(unix_ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(format).ok())
        .unwrap_or_else(|| format!("{unix_ms} ms"))
}

/// Unix seconds as RFC 3339 in UTC (`2025-01-31T12:00:00Z`).
pub(super) fn format_time_s(unix_seconds: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|at| at.format(format).ok())
        .unwrap_or_else(|| format!("{unix_seconds} s"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
