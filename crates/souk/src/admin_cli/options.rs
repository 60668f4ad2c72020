//! What the subcommands share on their command lines: paging, rate limits, and the parsers of
//! option values (rates, API modes, schemas, times).

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;
use serde_json::Value;
use souk_sdk::types::admin::{ApiMode, RateLimit};

/// Paging of list commands.
#[derive(Debug, Args)]
pub(super) struct ListArgs {
    /// Follow the pages to the end instead of printing the first one.
    #[arg(long)]
    pub(super) all: bool,
}

/// A rate limit to set, or `none` to remove it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum RateSetting {
    Set(RateLimit),
    Remove,
}

impl RateSetting {
    /// For a create: `none` is the same as no limit.
    pub(super) fn for_create(setting: Option<RateSetting>) -> Option<RateLimit> {
        match setting? {
            RateSetting::Set(limit) => Some(limit),
            RateSetting::Remove => None,
        }
    }

    /// For a patch: absent leaves it, `none` removes it (`null`), a value sets it.
    pub(super) fn for_patch(setting: Option<RateSetting>) -> Option<Option<RateLimit>> {
        setting.map(|setting| match setting {
            RateSetting::Set(limit) => Some(limit),
            RateSetting::Remove => None,
        })
    }
}

pub(super) fn parse_rate_setting(text: &str) -> Result<RateSetting, String> {
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

pub(super) fn mode_parser() -> impl TypedValueParser<Value = ApiMode> {
    PossibleValuesParser::new(["sync", "async", "both"]).map(|name: String| ApiMode::parse(&name).expect("only the listed values get here"))
}

/// The schema as JSON, or `@FILE` naming a file that holds it.
pub(super) fn parse_schema(text: &str) -> Result<Value, String> {
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
pub(super) fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|at| at.unix_timestamp())
        .map_err(|_| format!("{text:?} is neither Unix seconds nor RFC 3339 (like 2025-01-31T12:00:00Z)"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
