//! URL building: a base URL (possibly with a path prefix) plus percent-encoded path segments and
//! query parameters.

use reqwest::Url;

use crate::SdkError;

/// Parses the base URL a client was given; it must be http(s) and able to take path segments.
pub(crate) fn parse_base(base: &str) -> Result<Url, SdkError> {
    let url = Url::parse(base).map_err(|err| SdkError::InvalidUrl(format!("{base}: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(SdkError::InvalidUrl(format!("{base}: not an http(s) URL")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SdkError::InvalidUrl(format!("{base}: a base URL takes no query or fragment")));
    }
    Ok(url)
}

/// `base` + `/segment/segment...` + `?key=value...`; each segment and pair is percent-encoded, and
/// query parameters whose value is `None` are left out.
pub(crate) fn endpoint(base: &Url, segments: &[&str], query: &[(&str, Option<String>)]) -> Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("parse_base refused cannot-be-a-base URLs")
        .pop_if_empty()
        .extend(segments);
    let present: Vec<(&str, &str)> = query
        .iter()
        .filter_map(|(key, value)| value.as_deref().map(|value| (*key, value)))
        .collect();
    if !present.is_empty() {
        url.query_pairs_mut().extend_pairs(present);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(base: &str, segments: &[&str], query: &[(&str, Option<String>)], expect: &str) {
        let base = parse_base(base).unwrap();
        assert_eq!(endpoint(&base, segments, query).as_str(), expect);
    }

    #[test]
    fn segments_are_appended_and_encoded() {
        check(
            "http://127.0.0.1:8080",
            &["souk", "v1", "admin", "apps"],
            &[],
            "http://127.0.0.1:8080/souk/v1/admin/apps",
        );
        check(
            "http://127.0.0.1:8080/",
            &["souk", "v1", "admin", "apps", "wx a/b?c#d%"],
            &[],
            "http://127.0.0.1:8080/souk/v1/admin/apps/wx%20a%2Fb%3Fc%23d%25",
        );
        check(
            "https://gw.example/prefix/",
            &["cgi-bin", "token"],
            &[],
            "https://gw.example/prefix/cgi-bin/token",
        );
        check(
            "https://gw.example/prefix",
            &["cgi-bin", "token"],
            &[],
            "https://gw.example/prefix/cgi-bin/token",
        );
    }

    #[test]
    fn query_skips_absent_values_and_encodes_the_rest() {
        check(
            "http://h",
            &["calls"],
            &[
                ("appid", Some("wx1".to_owned())),
                ("service_id", None),
                ("api", Some("a&b=c d".to_owned())),
            ],
            "http://h/calls?appid=wx1&api=a%26b%3Dc+d",
        );
        check("http://h", &["calls"], &[("cursor", None)], "http://h/calls");
    }

    #[test]
    fn bad_bases_are_refused() {
        for base in ["127.0.0.1:8080", "ftp://h", "mailto:x@y", "http://h/?q=1", "not a url"] {
            assert!(parse_base(base).is_err(), "{base}");
        }
    }
}
