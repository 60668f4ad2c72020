//! The upstream request the gateway sends (`cloud-gateway.md` §2–§3): the caller's parameters without
//! any context-parameter name, then souk's context parameters (empty ones left out), signed over all
//! of them and, for a POST, the exact body bytes sent; values percent-encoded with RFC 3986's
//! unreserved set kept (spaces as `%20`, never `+`), so strict and form-style decoders read the same
//! values and every verifier family agrees on the signature (`taobao-gateway.md` §1.4).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::utf8_percent_encode;
use sha2::Sha256;
use souk_types::cloud::{is_context_param, CloudMethod, CloudRequest};
use souk_types::sign::{self, SignMethod};

use super::{CloudApp, CloudCaller, UpstreamRequest};
use crate::provider::QUERY_VALUE;

/// The prefix of a `mix_nick`, as the platform's start (`t01...`).
const MIX_NICK_PREFIX: &str = "t01";
/// Characters of the pseudonym after the prefix (192 bits of the HMAC).
const MIX_NICK_LEN: usize = 32;

/// The `mix_nick` of a user in an app: a stable pseudonym that does not reveal the openid.
/// `t01` + the first 32 base64url characters of HMAC-SHA256(`secret_key`, length-prefixed
/// (label, appid, openid)). The same on every node and after restarts as long as the server's secret
/// key is the same; different per app, so apps cannot join their users by it.
pub fn mix_nick(secret_key: &[u8], appid: &str, openid: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key).expect("hmac takes keys of any length");
    for part in ["souk.cloud.mix_nick.v1", appid, openid] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    let encoded = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{MIX_NICK_PREFIX}{}", &encoded[..MIX_NICK_LEN])
}

/// The caller's parameters that are sent: every one whose name is not a context parameter.
pub fn caller_params(request: &CloudRequest) -> impl Iterator<Item = &(String, String)> {
    request.params.iter().filter(|(name, _)| !is_context_param(name))
}

/// What the context parameters are made of, besides the cloud app and the caller.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The call's request id (sent as `request_id`).
    pub request_id: &'a str,
    /// Now, for `timestamp`.
    pub now_ms: i64,
    /// The user's pseudonym, when there is a user.
    pub mix_nick: Option<&'a str>,
}

/// Every query parameter sent, in order: the caller's (context names dropped), then the context
/// parameters with a value, then `sign`.
pub fn signed_params(cloud_app: &CloudApp, caller: &CloudCaller, request: &CloudRequest, context: &Context<'_>) -> Vec<(String, String)> {
    let mut params = unsigned_params(cloud_app, caller, request, context);
    let body = match request.method {
        CloudMethod::Post => request.body.as_deref(),
        CloudMethod::Get => None,
    };
    add_signature(cloud_app, body, &mut params);
    params
}

/// The query parameters before `sign`: the caller's without context names, then the context
/// parameters that have a value (`sign_method` only when it is not md5).
pub fn unsigned_params(cloud_app: &CloudApp, caller: &CloudCaller, request: &CloudRequest, context: &Context<'_>) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = caller_params(request).cloned().collect();
    let timestamp = sign::format_timestamp(context.now_ms);
    let sign_method = (cloud_app.sign_method != SignMethod::Md5).then(|| cloud_app.sign_method.as_str());
    let context_params = [
        ("app_key", Some(cloud_app.app_key.as_str())),
        ("open_id", caller.openid.as_deref()),
        ("mini_app_id", Some(caller.appid.as_str())),
        ("env", Some(cloud_app.env.as_str())),
        ("mix_nick", context.mix_nick),
        ("user_nick", caller.user_nick.as_deref()),
        ("request_id", Some(context.request_id)),
        ("timestamp", Some(timestamp.as_str())),
        ("sign_method", sign_method),
    ];
    for (name, value) in context_params {
        if let Some(value) = value.filter(|value| !value.is_empty()) {
            params.push((name.to_owned(), value.to_owned()));
        }
    }
    params
}

/// Appends `sign`: the §3 recipe with the cloud app's method and secret over `params` and the exact
/// body bytes sent (POST only).
pub fn add_signature(cloud_app: &CloudApp, body: Option<&[u8]>, params: &mut Vec<(String, String)>) {
    let signature = sign::sign(cloud_app.sign_method, &cloud_app.secret, params, body);
    params.push(("sign".to_owned(), signature));
}

/// `key=value&...`, both percent-encoded.
pub fn encode_query(params: &[(String, String)]) -> String {
    let mut query = String::with_capacity(params.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (idx, (key, value)) in params.iter().enumerate() {
        if idx > 0 {
            query.push('&');
        }
        query.extend(utf8_percent_encode(key, QUERY_VALUE));
        query.push('=');
        query.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    query
}

/// The request to send: `<domain><path>?<signed params>`, the caller's headers, the body of a POST,
/// and the deadline.
pub fn upstream_request(cloud_app: &CloudApp, caller: &CloudCaller, request: &CloudRequest, context: &Context<'_>) -> UpstreamRequest {
    let params = signed_params(cloud_app, caller, request, context);
    let origin = request.exts.domain.clone();
    let url = format!("{origin}{}?{}", request.path, encode_query(&params));
    UpstreamRequest {
        method: request.method,
        origin,
        url,
        headers: request.headers.clone(),
        body: match request.method {
            CloudMethod::Post => request.body.clone(),
            CloudMethod::Get => None,
        },
        timeout: Duration::from_millis(request.exts.timeout_ms),
    }
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
