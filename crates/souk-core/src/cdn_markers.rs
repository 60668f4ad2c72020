//! `__cdn__` markers: values in a service-market call's `data` that souk uploads as CDN files and
//! replaces by their URL before the provider sees the request (seed 000's `CDN` method, done on the
//! server side; `docs/cdn.md` shows the shape).
//!
//! A marker is an object whose one key is `__cdn__`:
//! `{"__cdn__": {"type": "base64" | "text", "value": "...", "content_type": "image/png"}}`.
//! Every marker is found and checked before anything is uploaded, so a bad marker costs nothing;
//! finding and replacing are pure functions, and [`Souk::substitute_cdn_markers`] joins them with
//! the uploads.

use std::borrow::Cow;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value};
use souk_types::market::InvokeRequest;
use souk_types::Code;

use crate::cdn::check_content_type;
use crate::error::Failure;
use crate::souk::Souk;

/// The key that marks a value for upload.
pub const MARKER_KEY: &str = "__cdn__";
/// The most markers one call may carry.
pub const MAX_MARKERS: usize = 16;
/// The deepest a marker may sit in `data` (the object holding it, counted from `data` itself at 0).
pub const MAX_MARKER_DEPTH: usize = 32;

/// Standard base64, padding optional (browsers and SDKs differ).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One marker, checked and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnMarker {
    /// Where it sits in `data`, as a JSON pointer (`/images/0`).
    pub pointer: String,
    /// The content type to serve it with.
    pub content_type: String,
    /// Its bytes.
    pub bytes: Bytes,
}

/// Whether `data` holds any `__cdn__` key at all (cheap: no decoding, no allocation).
pub fn has_markers(data: &Value) -> bool {
    match data {
        Value::Object(map) => map.contains_key(MARKER_KEY) || map.values().any(has_markers),
        Value::Array(items) => items.iter().any(has_markers),
        _ => false,
    }
}

/// Finds, checks and decodes every marker in `data`, in order (object keys sorted, as `serde_json`
/// keeps them). A marker that is malformed,
/// too deep, one too many, or larger than `max_bytes` fails the whole call with a message naming it.
pub fn find_markers(data: &Value, max_bytes: u64) -> Result<Vec<CdnMarker>, Failure> {
    let mut markers = Vec::new();
    let mut pending: Vec<(String, &Value, usize)> = vec![(String::new(), data, 0)];
    while let Some((pointer, value, depth)) = pending.pop() {
        let children: Vec<(String, &Value)> = match value {
            Value::Object(map) if map.contains_key(MARKER_KEY) => {
                if depth > MAX_MARKER_DEPTH {
                    return Err(bad(&pointer, format!("is nested deeper than {MAX_MARKER_DEPTH} levels")));
                }
                if markers.len() == MAX_MARKERS {
                    return Err(Failure::new(
                        Code::MarketBadInput,
                        format!("data holds more than {MAX_MARKERS} {MARKER_KEY} markers"),
                    ));
                }
                markers.push(read_marker(&pointer, map, max_bytes)?);
                continue;
            }
            Value::Object(map) => map
                .iter()
                .map(|(key, child)| (format!("{pointer}/{}", escape(key)), child))
                .collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, child)| (format!("{pointer}/{i}"), child))
                .collect(),
            _ => continue,
        };
        // Pushed in reverse so that popping visits them in order.
        pending.extend(children.into_iter().rev().map(|(pointer, child)| (pointer, child, depth + 1)));
    }
    Ok(markers)
}

/// Replaces each marker's object by its URL, pairing `markers` with `urls` in order.
pub fn replace_markers(data: &mut Value, markers: &[CdnMarker], urls: Vec<String>) {
    debug_assert_eq!(markers.len(), urls.len());
    for (marker, url) in markers.iter().zip(urls) {
        if let Some(slot) = data.pointer_mut(&marker.pointer) {
            *slot = Value::String(url);
        }
    }
}

impl Souk {
    /// Uploads every `__cdn__` marker of `data` as a CDN file of `appid` and answers `data` with each
    /// marker replaced by its URL. Bad markers are [`Code::MarketBadInput`] (or
    /// [`Code::CdnFileTooLarge`]); souk's own failures are [`Code::MarketInternal`].
    pub async fn substitute_cdn_markers(&self, appid: &str, mut data: Value) -> Result<Value, Failure> {
        if !has_markers(&data) {
            return Ok(data);
        }
        let Some(settings) = self.cdn_settings() else {
            return Err(Failure::new(Code::MarketInternal, "cdn files are not enabled on this souk"));
        };
        let markers = find_markers(&data, settings.max_bytes)?;
        let mut urls = Vec::with_capacity(markers.len());
        for marker in &markers {
            let file = self
                .upload_cdn_bytes(appid, &marker.content_type, marker.bytes.clone())
                .await
                .map_err(|failure| match failure.code {
                    Code::CdnFileTooLarge => failure,
                    _ => Failure::new(Code::MarketInternal, failure.detail),
                })?;
            urls.push(file.url);
        }
        replace_markers(&mut data, &markers, urls);
        Ok(data)
    }

    /// The service-market request with its markers uploaded and replaced (borrowed as it is when it
    /// has none): the one call the invoke paths make before anything looks at `data`.
    pub async fn with_cdn_urls<'a>(&self, appid: &str, request: &'a InvokeRequest) -> Result<Cow<'a, InvokeRequest>, Failure> {
        if !has_markers(&request.data) {
            return Ok(Cow::Borrowed(request));
        }
        let data = self.substitute_cdn_markers(appid, request.data.clone()).await?;
        Ok(Cow::Owned(InvokeRequest { data, ..request.clone() }))
    }
}

/// Checks one marker object (`{"__cdn__": {...}}`) and decodes its value.
fn read_marker(pointer: &str, holder: &Map<String, Value>, max_bytes: u64) -> Result<CdnMarker, Failure> {
    if holder.len() != 1 {
        return Err(bad(pointer, "must be the only key of its object"));
    }
    let Some(Value::Object(spec)) = holder.get(MARKER_KEY) else {
        return Err(bad(pointer, "must be an object {type, value, content_type?}"));
    };
    if let Some(unknown) = spec.keys().find(|key| !matches!(key.as_str(), "type" | "value" | "content_type")) {
        return Err(bad(
            pointer,
            format!("has an unknown field {unknown:?} (allowed: type, value, content_type)"),
        ));
    }
    let Some(Value::String(value)) = spec.get("value") else {
        return Err(bad(pointer, "needs a string value"));
    };
    let (bytes, default_type) = match spec.get("type").and_then(Value::as_str) {
        Some("base64") => (decode_base64(pointer, value, max_bytes)?, "application/octet-stream"),
        Some("text") => (Bytes::copy_from_slice(value.as_bytes()), "text/plain; charset=utf-8"),
        Some(other) => return Err(bad(pointer, format!("has an unknown type {other:?} (base64 or text)"))),
        None => return Err(bad(pointer, "needs a type: base64 or text")),
    };
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(pointer, max_bytes));
    }
    let content_type = match spec.get("content_type") {
        None | Some(Value::Null) => default_type.to_owned(),
        Some(Value::String(given)) if !given.trim().is_empty() => check_content_type(given).map_err(|why| bad(pointer, why))?,
        Some(_) => return Err(bad(pointer, "has a content_type that is not a non-empty string")),
    };
    Ok(CdnMarker {
        pointer: pointer.to_owned(),
        content_type,
        bytes,
    })
}

fn decode_base64(pointer: &str, value: &str, max_bytes: u64) -> Result<Bytes, Failure> {
    // Refuse what cannot fit before spending memory on decoding it.
    if (value.len() as u64 / 4).saturating_mul(3) > max_bytes.saturating_add(3) {
        return Err(too_large(pointer, max_bytes));
    }
    BASE64
        .decode(value)
        .map(Bytes::from)
        .map_err(|err| bad(pointer, format!("is not valid base64: {err}")))
}

fn bad(pointer: &str, why: impl std::fmt::Display) -> Failure {
    Failure::new(Code::MarketBadInput, format!("the {MARKER_KEY} marker at {} {why}", shown(pointer)))
}

fn too_large(pointer: &str, max_bytes: u64) -> Failure {
    Failure::new(
        Code::CdnFileTooLarge,
        format!("the {MARKER_KEY} marker at {} is larger than {max_bytes} bytes", shown(pointer)),
    )
}

/// A pointer for people: `/` for `data` itself.
fn shown(pointer: &str) -> &str {
    if pointer.is_empty() {
        "/"
    } else {
        pointer
    }
}

/// A JSON pointer token (RFC 6901: `~` is `~0`, `/` is `~1`).
fn escape(key: &str) -> Cow<'_, str> {
    if key.contains(['~', '/']) {
        Cow::Owned(key.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(key)
    }
}

#[cfg(test)]
#[path = "cdn_markers_tests.rs"]
mod tests;
