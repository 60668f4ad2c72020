//! The settings beside `blobs.url` ([`BlobOptions`]) and the checks of an `s3://` URL: every bad
//! value is refused at start with a message naming the setting, never quoting a secret.

use std::time::Duration;

use souk_core::blob::{BlobError, BlobKey};

/// The region used when none is set (what most S3-compatible servers accept).
pub const DEFAULT_S3_REGION: &str = "us-east-1";
/// The default bound on one S3 request (a part of a multipart upload included).
pub const DEFAULT_S3_TIMEOUT: Duration = Duration::from_secs(30);
/// The default bound on opening a connection to the S3 endpoint.
pub const DEFAULT_S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the blob backends beside the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobOptions {
    /// For `s3://` URLs.
    pub s3: S3Options,
}

impl BlobOptions {
    /// Whether any S3 setting is given (they make sense only with an `s3://` URL).
    pub fn has_s3_settings(&self) -> bool {
        let s3 = &self.s3;
        s3.endpoint.is_some() || s3.region.is_some() || s3.access_key_id.is_some() || s3.secret_access_key.is_some() || s3.allow_http
    }
}

/// How to reach an S3-compatible store.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Options {
    /// The endpoint, as `https://s3.example.com` or `http://127.0.0.1:9000`; unset: AWS S3 of the region.
    pub endpoint: Option<String>,
    /// The region (unset: [`DEFAULT_S3_REGION`]).
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key (never shown: `Debug` prints `***`).
    pub secret_access_key: Option<String>,
    /// Allow a plain-HTTP endpoint (local and test servers).
    pub allow_http: bool,
    /// The bound on one request.
    pub timeout: Duration,
    /// The bound on opening a connection.
    pub connect_timeout: Duration,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            timeout: DEFAULT_S3_TIMEOUT,
            connect_timeout: DEFAULT_S3_CONNECT_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "***"))
            .field("allow_http", &self.allow_http)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl S3Options {
    /// Checks the settings on their own (the URL is checked by [`parse_s3_url`]).
    pub fn check(&self) -> Result<(), BlobError> {
        if let Some(endpoint) = &self.endpoint {
            let rest = if let Some(rest) = endpoint.strip_prefix("https://") {
                rest
            } else if let Some(rest) = endpoint.strip_prefix("http://") {
                if !self.allow_http {
                    return Err(invalid(
                        "blobs.s3_endpoint is plain http://: set blobs.s3_allow_http = true to allow it (local servers only)",
                    ));
                }
                rest
            } else {
                return Err(invalid(
                    "blobs.s3_endpoint must be an http(s) URL, as https://s3.example.com or http://127.0.0.1:9000",
                ));
            };
            let host = rest.trim_end_matches('/');
            if host.is_empty() || host.contains(['@', '?', '#', '/', ' ']) {
                return Err(invalid(
                    "blobs.s3_endpoint must be scheme, host and port only (no path, user, query), as https://s3.example.com",
                ));
            }
        }
        if let Some(region) = &self.region {
            let valid = !region.is_empty() && region.len() <= 64 && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid {
                return Err(invalid("blobs.s3_region must be a region name, as us-east-1 or garage"));
            }
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) => {
                if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(invalid("blobs.s3_access_key_id must be 1 to 128 printable characters"));
                }
                if secret.is_empty() || secret.len() > 256 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(invalid("blobs.s3_secret_access_key must be 1 to 256 printable characters"));
                }
            }
            (None, None) => {}
            _ => {
                return Err(invalid(
                    "blobs.s3_access_key_id and blobs.s3_secret_access_key must be set together",
                ))
            }
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(invalid("the S3 timeouts must be longer than zero"));
        }
        Ok(())
    }
}

/// The bucket and prefix of `s3://<bucket>[/<prefix>]` (the part after `s3://`). The prefix is
/// one or more key segments (the rules of [`BlobKey`]); a trailing `/` is allowed.
pub fn parse_s3_url(rest: &str) -> Result<(String, Option<String>), BlobError> {
    const SHAPE: &str = "blobs.url must be s3://<bucket> or s3://<bucket>/<prefix>, as s3://souk-blobs/prod";
    if rest.contains('@') {
        // Quoting the URL back could show a secret.
        return Err(invalid(
            "blobs.url must not hold credentials: set blobs.s3_access_key_id and blobs.s3_secret_access_key",
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(invalid(SHAPE));
    }
    let (bucket, prefix) = match rest.split_once('/') {
        Some((bucket, prefix)) => (bucket, Some(prefix.strip_suffix('/').unwrap_or(prefix))),
        None => (rest, None),
    };
    if bucket.is_empty() {
        return Err(invalid(SHAPE));
    }
    let bucket_valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !bucket_valid {
        return Err(invalid(&format!(
            "the bucket {bucket:?} in blobs.url is not a bucket name: 3 to 63 lowercase letters, digits, '-' or '.'"
        )));
    }
    let prefix = match prefix {
        None | Some("") => None,
        Some(prefix) => {
            BlobKey::new(prefix).map_err(|_| {
                invalid(&format!(
                    "the prefix {prefix:?} in blobs.url must be /-separated segments of letters, digits, '_', '-' and inner dots"
                ))
            })?;
            Some(prefix.to_owned())
        }
    };
    Ok((bucket.to_owned(), prefix))
}

fn invalid(message: &str) -> BlobError {
    BlobError::Backend(message.to_owned())
}
