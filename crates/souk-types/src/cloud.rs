//! The external-HTTP gateway's request on the wire (`cloud-gateway.md` §2, seed 003): the body of the
//! client and server doors `{path, method, params, body, headers, exts}`, and the MTOP shape the stock
//! `@tbmp/mp-cloud-sdk` sends (`taobao-gateway.md` §3.1), both parsed into one [`CloudRequest`] that
//! has passed every rule of §2 that needs nothing but the request itself.
//!
//! Every broken rule earns its own code, whose [`Code::error_code`] is the stable `errorCode`:
//! - a malformed body, a missing or ill-typed field, a bad `path`, `timeout`, `cacheType` or
//!   `cacheTime`, a GET with a body: `INVALID_REQUEST`;
//! - `method` other than upper-case `GET` or `POST`: `METHOD_NOT_ALLOWED`;
//! - a POST whose caller headers ask for a content type other than `application/json`:
//!   `CONTENT_TYPE_REFUSED`;
//! - path, encoded query and body together over 128 KB (or caller headers over 8 KB):
//!   `REQUEST_TOO_LARGE`.
//!
//! Decisions the contract leaves open, made here:
//! - `params` values: strings as they are, numbers and booleans as their JSON text (`1`, `1.5`,
//!   `true`), `null` and `""` left out (an empty value would sign differently for different verifier
//!   families, `taobao-gateway.md` §1.4); objects and arrays are refused, as there is no one way to
//!   flatten them into a query.
//! - `timeout` outside 1..=10000 ms is refused, not clamped: a caller who asked for 30 s learns it at
//!   once rather than meeting an unexpected timeout later.
//! - `cacheTime` outside 1..=3600 s is refused likewise; it is checked even without `cacheType`.
//! - a GET whose `body` is `null`, absent, `""` or `{}` has no body (SDKs fill in `{}`); any other
//!   body on a GET is refused.
//! - `path` characters outside RFC 3986's path set (spaces, non-ASCII, ...) are percent-encoded;
//!   `?`, `#`, `\`, control characters, a leading `//`, dot segments (also percent-encoded ones) and
//!   encoded `/`, `\` or NUL are refused.
//! - caller headers `Content-Type`, `Host`, `Content-Length`, hop-by-hop ones and `top-sign-list` (which
//!   would pull headers into an SPI verifier's signature base) are dropped, not sent.

use serde_json::{Map, Value};

use crate::market::BadRequest;
use crate::Code;

/// `exts.timeout` when absent, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 3_000;
/// The longest `exts.timeout`, in milliseconds.
pub const MAX_TIMEOUT_MS: u64 = 10_000;
/// The largest request: path, encoded query and body, in bytes.
pub const MAX_REQUEST_BYTES: usize = 128 * 1024;
/// The most bytes of caller headers (names and values).
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// The longest `path`, in bytes (after encoding).
pub const MAX_PATH_LEN: usize = 2_048;
/// `exts.cacheTime` when absent, in seconds.
pub const DEFAULT_CACHE_SECS: u64 = 300;
/// The longest `exts.cacheTime`, in seconds.
pub const MAX_CACHE_SECS: u64 = 3_600;
/// The most origins on a cloud app's whitelist.
pub const MAX_WHITELIST: usize = 20;
/// The longest origin (normalised), in bytes.
pub const MAX_ORIGIN_LEN: usize = 300;
/// The longest `exts.cloudAppId`.
pub const MAX_CLOUD_APP_ID_LEN: usize = 64;

/// The context parameters souk adds to every upstream query (`cloud-gateway.md` §2,
/// `taobao-gateway.md` §2.2, plus `timestamp` and `sign_method`). A caller parameter with one of these
/// names is always dropped, whether or not souk sends a value for it, so no caller can pose as a user.
pub const CONTEXT_PARAMS: &[&str] = &[
    "app_key",
    "open_id",
    "mini_app_id",
    "env",
    "mix_nick",
    "user_nick",
    "request_id",
    "timestamp",
    "sign",
    "sign_method",
    "access_token",
    "user_id",
    "main_user_id",
    "source_app_id",
    "app_owner_open_id",
];

/// Whether a caller parameter name is one souk reserves ([`CONTEXT_PARAMS`]).
pub fn is_context_param(name: &str) -> bool {
    CONTEXT_PARAMS.contains(&name)
}

/// `GET` or `POST`, the only methods the gateway passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloudMethod {
    /// `GET`: no body.
    Get,
    /// `POST`: a JSON body.
    Post,
}

impl CloudMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudMethod::Get => "GET",
            CloudMethod::Post => "POST",
        }
    }
}

/// `exts.cacheType`: who shares a cached answer (besides the same request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheType {
    /// `0`: the same app and the same user.
    AppUser,
    /// `1`: the same app, any user.
    App,
    /// `2`: the same user, any app.
    User,
    /// `3`: everyone.
    Global,
}

impl CacheType {
    /// The wire number.
    pub fn number(self) -> u8 {
        match self {
            CacheType::AppUser => 0,
            CacheType::App => 1,
            CacheType::User => 2,
            CacheType::Global => 3,
        }
    }

    /// The type of a wire number.
    pub fn from_number(number: u64) -> Option<CacheType> {
        match number {
            0 => Some(CacheType::AppUser),
            1 => Some(CacheType::App),
            2 => Some(CacheType::User),
            3 => Some(CacheType::Global),
            _ => None,
        }
    }

    /// Whether the key names the user (types 0 and 2).
    pub fn needs_user(self) -> bool {
        matches!(self, CacheType::AppUser | CacheType::User)
    }
}

/// Caching asked for by `exts.cacheType` and `exts.cacheTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheRule {
    /// Who shares an entry.
    pub cache_type: CacheType,
    /// How long a success is served, in seconds (1..=3600).
    pub ttl_secs: u64,
}

/// `exts`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudExts {
    /// The cloud app (`exts.cloudAppId`).
    pub cloud_app_id: String,
    /// The upstream origin (`exts.domain`), normalised by [`normalize_origin`].
    pub domain: String,
    /// The deadline of the upstream exchange, in milliseconds (1..=10000, default 3000).
    pub timeout_ms: u64,
    /// Caching, when `exts.cacheType` is set.
    pub cache: Option<CacheRule>,
}

/// A gateway request that passed every rule needing only the request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudRequest {
    /// The path, starting with `/`, percent-encoded where needed, without query or fragment.
    pub path: String,
    /// `GET` or `POST`.
    pub method: CloudMethod,
    /// The caller's query parameters as text, in the order given, without empty values. Context
    /// parameter names are still here: the gateway drops them.
    pub params: Vec<(String, String)>,
    /// The exact JSON bytes of a POST body (the caller's `body` serialized once); `None` for a GET
    /// and for a POST without a body.
    pub body: Option<Vec<u8>>,
    /// Caller headers to send (content type, host, length, hop-by-hop and `top-sign-list` removed).
    pub headers: Vec<(String, String)>,
    /// `exts`.
    pub exts: CloudExts,
}

fn bad(code: Code, detail: impl Into<String>) -> BadRequest {
    BadRequest {
        code,
        detail: detail.into(),
    }
}

fn invalid(detail: impl Into<String>) -> BadRequest {
    bad(Code::CloudInvalidRequest, detail)
}

fn object(body: &[u8]) -> Result<Map<String, Value>, BadRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("the request body is empty"));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(invalid("the body must be a JSON object")),
        Err(err) => Err(invalid(format!("the body is not JSON: {err}"))),
    }
}

/// The raw fields of either shape, before the rules.
struct RawRequest {
    path: Option<Value>,
    method: Option<Value>,
    params: Option<Value>,
    body: Option<Value>,
    headers: Option<Value>,
    exts: Option<Value>,
}

/// Parses the body of the client and server doors:
/// `{path, method?, params?, body?, headers?, exts: {cloudAppId, domain, timeout?, cacheType?, cacheTime?}}`.
/// Unknown fields are refused (`exts.env`, which SDK habits put there, is accepted and ignored: the
/// cloud app's environment is sent).
pub fn parse_request(body: &[u8]) -> Result<CloudRequest, BadRequest> {
    let mut fields = object(body)?;
    let raw = RawRequest {
        path: fields.remove("path"),
        method: fields.remove("method"),
        params: fields.remove("params"),
        body: fields.remove("body"),
        headers: fields.remove("headers"),
        exts: fields.remove("exts"),
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(invalid(format!("unknown field {unknown}")));
    }
    check(raw, true)
}

/// Parses the `data` of the stock SDK's MTOP call `mtop.miniapp.cloud.application.request` v1.0:
/// `{path, method, headers, body, queryString, options, ...}` where `headers`, `queryString` and
/// `options` are JSON strings (objects are taken too), `body` is a JSON string or a raw string (sent
/// as a JSON string), and `options` is `exts` plus the SDK's init options (`env`, `appKey`, ...,
/// ignored). Other data fields (`sdkVersion`, `protocols`) are ignored.
pub fn parse_mtop_request(body: &[u8]) -> Result<CloudRequest, BadRequest> {
    let mut fields = object(body)?;
    let raw = RawRequest {
        path: fields.remove("path"),
        method: fields.remove("method"),
        params: json_field(&mut fields, "queryString")?,
        body: match fields.remove("body") {
            // Objects were JSON-stringified by the SDK; a string that is not JSON was passed as is.
            Some(Value::String(text)) if !text.is_empty() => Some(serde_json::from_str(&text).unwrap_or(Value::String(text))),
            Some(Value::String(_)) => None,
            other => other,
        },
        headers: json_field(&mut fields, "headers")?,
        exts: json_field(&mut fields, "options")?,
    };
    check(raw, false)
}

/// An MTOP data field that holds JSON as a string (or, leniently, as JSON).
fn json_field(fields: &mut Map<String, Value>, name: &str) -> Result<Option<Value>, BadRequest> {
    match fields.remove(name) {
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|err| invalid(format!("{name} is a string but not JSON: {err}"))),
        other => Ok(other),
    }
}

fn check(raw: RawRequest, strict_exts: bool) -> Result<CloudRequest, BadRequest> {
    let path = match raw.path {
        Some(Value::String(path)) => check_path(&path)?,
        None | Some(Value::Null) => return Err(invalid("path is required")),
        Some(_) => return Err(invalid("path must be a string")),
    };
    let method = match raw.method {
        None | Some(Value::Null) => CloudMethod::Post,
        Some(Value::String(method)) => match method.as_str() {
            "GET" => CloudMethod::Get,
            "POST" => CloudMethod::Post,
            other => {
                return Err(bad(
                    Code::CloudMethodNotAllowed,
                    format!("method {other:?}: only GET and POST, upper case"),
                ))
            }
        },
        Some(_) => return Err(invalid("method must be a string")),
    };
    let params = check_params(raw.params)?;
    let headers = check_headers(raw.headers, method)?;
    let body = check_body(raw.body, method)?;
    let exts = check_exts(raw.exts, strict_exts)?;
    let size = path.len() + encoded_query_len(&params) + body.as_ref().map_or(0, Vec::len);
    if size > MAX_REQUEST_BYTES {
        return Err(bad(
            Code::CloudRequestTooLarge,
            format!("path, query and body are {size} bytes, more than {MAX_REQUEST_BYTES}"),
        ));
    }
    Ok(CloudRequest {
        path,
        method,
        params,
        body,
        headers,
        exts,
    })
}

/// A scalar as query or header text: strings as they are, numbers and booleans as JSON text; `None`
/// for `null`; an error for objects and arrays.
fn scalar_text(value: Value) -> Result<Option<String>, ()> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        Value::Number(number) => Ok(Some(number.to_string())),
        Value::Bool(flag) => Ok(Some(flag.to_string())),
        Value::Array(_) | Value::Object(_) => Err(()),
    }
}

fn check_params(params: Option<Value>) -> Result<Vec<(String, String)>, BadRequest> {
    let fields = match params {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err(invalid("params must be an object")),
    };
    let mut params = Vec::with_capacity(fields.len());
    for (key, value) in fields {
        if key.is_empty() {
            return Err(invalid("params has an empty name"));
        }
        let text = scalar_text(value).map_err(|()| invalid(format!("params.{key} must be a string, number or boolean")))?;
        if let Some(text) = text.filter(|text| !text.is_empty()) {
            params.push((key, text));
        }
    }
    Ok(params)
}

/// Caller headers souk never passes on: it sets them itself, they are hop-by-hop, or (`top-sign-list`)
/// they would change what an SPI verifier signs.
const DROPPED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "top-sign-list",
];

fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn check_headers(headers: Option<Value>, method: CloudMethod) -> Result<Vec<(String, String)>, BadRequest> {
    let fields = match headers {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err(invalid("headers must be an object")),
    };
    let mut kept = Vec::new();
    let mut total = 0;
    for (name, value) in fields {
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(invalid(format!("header name {name:?} is not an HTTP token")));
        }
        let Some(value) = scalar_text(value).map_err(|()| invalid(format!("header {name} must be a string")))? else {
            continue;
        };
        if !value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
            return Err(invalid(format!("header {name} has characters other than visible ASCII")));
        }
        total += name.len() + value.len();
        let lower = name.to_ascii_lowercase();
        if lower == "content-type" && method == CloudMethod::Post && !is_json_media_type(&value) {
            return Err(bad(
                Code::CloudContentTypeRefused,
                format!("Content-Type {value:?}: a POST sends application/json only"),
            ));
        }
        if !DROPPED_HEADERS.contains(&lower.as_str()) {
            kept.push((name, value));
        }
    }
    if total > MAX_HEADER_BYTES {
        return Err(bad(
            Code::CloudRequestTooLarge,
            format!("headers are {total} bytes, more than {MAX_HEADER_BYTES}"),
        ));
    }
    Ok(kept)
}

/// `application/json`, any case, with or without parameters (`; charset=UTF-8`).
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

fn check_body(body: Option<Value>, method: CloudMethod) -> Result<Option<Vec<u8>>, BadRequest> {
    let body = match body {
        None | Some(Value::Null) => return Ok(None),
        Some(body) => body,
    };
    if method == CloudMethod::Get {
        let empty = matches!(&body, Value::String(text) if text.is_empty()) || matches!(&body, Value::Object(fields) if fields.is_empty());
        if empty {
            return Ok(None);
        }
        return Err(invalid("a GET has no body: put its parameters in params"));
    }
    // Serialized once: these are the bytes signed and sent.
    Ok(Some(
        serde_json::to_vec(&body).map_err(|err| invalid(format!("body cannot be serialized: {err}")))?,
    ))
}

fn check_exts(exts: Option<Value>, strict: bool) -> Result<CloudExts, BadRequest> {
    let mut fields = match exts {
        Some(Value::Object(fields)) => fields,
        None | Some(Value::Null) => return Err(invalid("exts is required: exts.cloudAppId and exts.domain name the upstream")),
        Some(_) => return Err(invalid("exts must be an object")),
    };
    let cloud_app_id = match fields.remove("cloudAppId") {
        Some(Value::String(id)) => id,
        Some(Value::Number(number)) if number.is_u64() => number.to_string(),
        None | Some(Value::Null) => return Err(invalid("exts.cloudAppId is required")),
        Some(_) => return Err(invalid("exts.cloudAppId must be a string")),
    };
    let id_ok = !cloud_app_id.is_empty()
        && cloud_app_id.len() <= MAX_CLOUD_APP_ID_LEN
        && cloud_app_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !id_ok {
        return Err(invalid(format!(
            "exts.cloudAppId must be 1 to {MAX_CLOUD_APP_ID_LEN} characters of A-Z a-z 0-9 _ -"
        )));
    }
    let domain = match fields.remove("domain") {
        Some(Value::String(domain)) => normalize_origin(&domain)
            .ok_or_else(|| invalid(format!("exts.domain {domain:?} is not an origin like https://example.com[:port]")))?,
        None | Some(Value::Null) => return Err(invalid("exts.domain is required")),
        Some(_) => return Err(invalid("exts.domain must be a string")),
    };
    let timeout_ms = match whole_number(fields.remove("timeout"), "exts.timeout")? {
        None => DEFAULT_TIMEOUT_MS,
        Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => ms,
        Some(ms) => return Err(invalid(format!("exts.timeout {ms}: 1 to {MAX_TIMEOUT_MS} ms"))),
    };
    let cache_type = match whole_number(fields.remove("cacheType"), "exts.cacheType")? {
        None => None,
        Some(number) => Some(CacheType::from_number(number).ok_or_else(|| invalid(format!("exts.cacheType {number}: 0, 1, 2 or 3")))?),
    };
    let ttl_secs = match whole_number(fields.remove("cacheTime"), "exts.cacheTime")? {
        None => DEFAULT_CACHE_SECS,
        Some(secs) if (1..=MAX_CACHE_SECS).contains(&secs) => secs,
        Some(secs) => return Err(invalid(format!("exts.cacheTime {secs}: 1 to {MAX_CACHE_SECS} s"))),
    };
    fields.remove("env");
    if strict {
        if let Some(unknown) = fields.keys().next() {
            return Err(invalid(format!("unknown field exts.{unknown}")));
        }
    }
    Ok(CloudExts {
        cloud_app_id,
        domain,
        timeout_ms,
        cache: cache_type.map(|cache_type| CacheRule { cache_type, ttl_secs }),
    })
}

/// A whole number given as a JSON number (`4000`, `4000.0`) or a string of digits (`"4000"`).
fn whole_number(value: Option<Value>, name: &str) -> Result<Option<u64>, BadRequest> {
    let wrong = || invalid(format!("{name} must be a whole number"));
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match (number.as_u64(), number.as_f64()) {
            (Some(whole), _) => Ok(Some(whole)),
            // Whole and in range, checked first: the cast is exact.
            (None, Some(float)) if float.fract() == 0.0 && (0.0..1e15).contains(&float) => Ok(Some(float as u64)),
            _ => Err(wrong()),
        },
        Some(Value::String(text)) if !text.is_empty() && text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().map(Some).map_err(|_| wrong())
        }
        Some(_) => Err(wrong()),
    }
}

/// RFC 3986 path characters kept as they are (unreserved, sub-delims, `:`, `@`, `/`, and `%` starting
/// an escape); everything else that is allowed at all is percent-encoded.
fn is_path_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&byte)
}

fn check_path(path: &str) -> Result<String, BadRequest> {
    if !path.starts_with('/') {
        return Err(invalid("path must start with / (the domain goes in exts.domain)"));
    }
    if path.starts_with("//") {
        return Err(invalid("path must not start with // (the domain goes in exts.domain)"));
    }
    if path.contains(['?', '#']) {
        return Err(invalid("path must not hold a query or fragment: put parameters in params"));
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err(invalid("path must not hold \\ or control characters"));
    }
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if is_path_char(byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    if encoded.len() > MAX_PATH_LEN {
        return Err(invalid(format!("path is longer than {MAX_PATH_LEN} bytes")));
    }
    for segment in encoded.split('/') {
        let decoded = percent_decode_segment(segment)?;
        if decoded == b"." || decoded == b".." {
            return Err(invalid("path must not hold . or .. segments"));
        }
        if decoded.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) {
            return Err(invalid("path must not hold encoded /, \\ or NUL"));
        }
    }
    Ok(encoded)
}

fn percent_decode_segment(segment: &str) -> Result<Vec<u8>, BadRequest> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'%' {
            let hex = bytes
                .get(idx + 1..idx + 3)
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| invalid("path has a % not followed by two hex digits"))?;
            out.push(hex);
            idx += 3;
        } else {
            out.push(bytes[idx]);
            idx += 1;
        }
    }
    Ok(out)
}

/// Bytes of a value once percent-encoded with RFC 3986's unreserved set kept.
fn encoded_len(text: &str) -> usize {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { 1 } else { 3 })
        .sum()
}

fn encoded_query_len(params: &[(String, String)]) -> usize {
    params
        .iter()
        .map(|(key, value)| encoded_len(key) + 1 + encoded_len(value) + 1)
        .sum()
}

/// Normalises an origin `http(s)://host[:port]` (an optional trailing `/` is allowed): lower-case
/// scheme and host, the default port left out. `None` for anything else: a path, query, fragment or
/// user info, an empty or malformed host (ASCII letters, digits, `-` and `.` labels, or a bracketed
/// IPv6 literal; internationalised names must be given in punycode), a bad port.
pub fn normalize_origin(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', '\\']) {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (literal, after) = v6.split_once(']')?;
        let ok = !literal.is_empty() && literal.contains(':') && literal.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ok {
            return None;
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{}]", literal.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let host = host.to_ascii_lowercase();
        let labels_ok = host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !labels_ok {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(digits) => {
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let port: u32 = digits.parse().ok()?;
            if !(1..=65_535).contains(&port) {
                return None;
            }
            (port != default_port).then_some(port)
        }
    };
    let origin = match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    (origin.len() <= MAX_ORIGIN_LEN).then_some(origin)
}

#[cfg(test)]
#[path = "cloud_tests.rs"]
mod tests;
