//! The client API on the wire (`wire.md` §4): what an app's server sends to mint a session for one of
//! its users, and what a page or mini-program sends with that session (seed 000's `invokeService`,
//! `getAsyncResult`), parsed strictly with a message that says what is wrong.

use serde_json::{Map, Value};

use crate::market::{BadRequest, MAX_CLIENT_MSG_ID_LEN};
use crate::Code;

/// The longest operator user id souk keeps.
pub const MAX_USER_LEN: usize = 128;
/// The longest nick souk keeps.
pub const MAX_NICK_LEN: usize = 64;
/// The most scopes one session may name.
pub const MAX_SCOPES: usize = 16;

/// `POST /souk/v1/client-sessions?access_token=` `{user, nick?, scopes?, plugin_appid?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    /// The operator's stable id for the person.
    pub user: String,
    /// Display name.
    pub nick: Option<String>,
    /// Scopes the user already granted (`scope.userInfo`, ...).
    pub scopes: Vec<String>,
    /// The plugin the session is for; its calls are charged to the minting (host) app.
    pub plugin_appid: Option<String>,
}

/// A client `servicemarket/invoke` body: `{service, api, data, async, consumeType, consumeAppid}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientInvokeRequest {
    /// The service-market part, as the server API would carry it.
    pub invoke: crate::market::InvokeRequest,
    /// `Some(appid)` when `consumeType: 2` asks `consumeAppid`'s package to pay.
    pub consume_appid: Option<String>,
}

fn bad(code: Code, detail: impl Into<String>) -> BadRequest {
    BadRequest {
        code,
        detail: detail.into(),
    }
}

fn object(body: &[u8]) -> Result<Map<String, Value>, BadRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(Code::EmptyPostData, "the request body is empty"));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(bad(Code::DataFormatError, "the body must be a JSON object")),
        Err(err) => Err(bad(Code::DataFormatError, format!("the body is not JSON: {err}"))),
    }
}

fn text(fields: &mut Map<String, Value>, name: &str) -> Result<Option<String>, BadRequest> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(bad(Code::DataFormatError, format!("{name} must be a string"))),
    }
}

/// Parses a session request.
pub fn parse_session_request(body: &[u8]) -> Result<SessionRequest, BadRequest> {
    let mut fields = object(body)?;
    let user = text(&mut fields, "user")?
        .filter(|user| !user.is_empty())
        .ok_or_else(|| bad(Code::MarketBadInput, "user is missing"))?;
    if user.len() > MAX_USER_LEN {
        return Err(bad(Code::MarketBadInput, format!("user is longer than {MAX_USER_LEN} bytes")));
    }
    let nick = text(&mut fields, "nick")?;
    if nick.as_ref().is_some_and(|nick| nick.chars().count() > MAX_NICK_LEN) {
        return Err(bad(Code::MarketBadInput, format!("nick is longer than {MAX_NICK_LEN} characters")));
    }
    let scopes = scopes(&mut fields)?;
    let plugin_appid = text(&mut fields, "plugin_appid")?.filter(|id| !id.is_empty());
    if let Some(unknown) = fields.keys().next() {
        return Err(bad(Code::MarketBadInput, format!("unknown field {unknown}")));
    }
    Ok(SessionRequest {
        user,
        nick,
        scopes,
        plugin_appid,
    })
}

/// The optional `scopes` field: at most [`MAX_SCOPES`] non-empty strings of at most 64 bytes.
fn scopes(fields: &mut Map<String, Value>) -> Result<Vec<String>, BadRequest> {
    let scopes = match fields.remove("scopes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(scope) if !scope.is_empty() && scope.len() <= 64 => Ok(scope),
                _ => Err(bad(Code::DataFormatError, "scopes must be an array of short strings")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(bad(Code::DataFormatError, "scopes must be an array of strings")),
    };
    if scopes.len() > MAX_SCOPES {
        return Err(bad(Code::MarketBadInput, format!("at most {MAX_SCOPES} scopes")));
    }
    Ok(scopes)
}

/// Parses a client `authorize {scopes}` body: the scopes the user consents to (at least one).
pub fn parse_authorize_request(body: &[u8]) -> Result<Vec<String>, BadRequest> {
    let mut fields = object(body)?;
    let scopes = scopes(&mut fields)?;
    if scopes.is_empty() {
        return Err(bad(Code::MarketBadInput, "scopes is missing or empty"));
    }
    Ok(scopes)
}

/// Parses a client invoke body. Field names are seed 000's (`consumeType`, `consumeAppid`); a
/// `clientMsgId` is accepted too, so a page can retry without a second charge.
pub fn parse_client_invoke(body: &[u8]) -> Result<ClientInvokeRequest, BadRequest> {
    let mut fields = object(body)?;
    let consume_type = match fields.remove("consumeType") {
        None | Some(Value::Null) => None,
        Some(Value::Number(number)) => number.as_i64(),
        Some(_) => return Err(bad(Code::DataFormatError, "consumeType must be a number")),
    };
    let consume_appid = text(&mut fields, "consumeAppid")?.filter(|id| !id.is_empty());
    let consume_appid = match (consume_type, consume_appid) {
        (None, None) => None,
        (Some(2), Some(appid)) => Some(appid),
        (Some(2), None) => return Err(bad(Code::MarketBadInput, "consumeType 2 needs consumeAppid")),
        (None, Some(_)) => return Err(bad(Code::MarketBadInput, "consumeAppid needs consumeType 2")),
        (Some(other), _) => return Err(bad(Code::MarketBadInput, format!("consumeType must be 2 or absent, not {other}"))),
    };
    let client_msg_id = text(&mut fields, "clientMsgId")?;
    if client_msg_id.as_ref().is_some_and(|id| id.len() > MAX_CLIENT_MSG_ID_LEN) {
        return Err(bad(
            Code::MarketBadInput,
            format!("clientMsgId is longer than {MAX_CLIENT_MSG_ID_LEN} bytes"),
        ));
    }
    // The rest has the server API's shape; reuse its parser for the same rules and messages.
    let mut rest = Map::new();
    for name in ["service", "api", "data", "async"] {
        if let Some(value) = fields.remove(name) {
            rest.insert(name.to_owned(), value);
        }
    }
    if let Some(unknown) = fields.keys().next() {
        return Err(bad(Code::MarketBadInput, format!("unknown field {unknown}")));
    }
    if let Some(id) = client_msg_id.filter(|id| !id.is_empty()) {
        rest.insert("client_msg_id".to_owned(), Value::String(id));
    }
    let invoke = crate::market::parse_invoke_request(Value::Object(rest).to_string().as_bytes())?;
    Ok(ClientInvokeRequest { invoke, consume_appid })
}

/// Parses a client `servicemarket/async-result {requestId}` body.
pub fn parse_async_result_request(body: &[u8]) -> Result<String, BadRequest> {
    let mut fields = object(body)?;
    let request_id = text(&mut fields, "requestId")?.or(text(&mut fields, "requestID")?);
    request_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad(Code::MarketBadInput, "requestId is missing"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code_of<T: std::fmt::Debug>(result: Result<T, BadRequest>) -> Code {
        result.expect_err("should be refused").code
    }

    #[test]
    fn sessions() {
        let request = parse_session_request(br#"{"user":"u1","nick":"Ann","scopes":["scope.userInfo"],"plugin_appid":"wxp"}"#).unwrap();
        assert_eq!(request.user, "u1");
        assert_eq!(request.scopes, vec!["scope.userInfo".to_owned()]);
        assert_eq!(request.plugin_appid.as_deref(), Some("wxp"));
        assert_eq!(code_of(parse_session_request(b"")), Code::EmptyPostData);
        assert_eq!(code_of(parse_session_request(br#"{"nick":"x"}"#)), Code::MarketBadInput);
        assert_eq!(code_of(parse_session_request(br#"{"user":1}"#)), Code::DataFormatError);
        assert_eq!(
            code_of(parse_session_request(br#"{"user":"u","scopes":"a"}"#)),
            Code::DataFormatError
        );
        assert_eq!(code_of(parse_session_request(br#"{"user":"u","usr":"a"}"#)), Code::MarketBadInput);
        let long = json!({"user": "u".repeat(MAX_USER_LEN + 1)}).to_string();
        assert_eq!(code_of(parse_session_request(long.as_bytes())), Code::MarketBadInput);
    }

    #[test]
    fn client_invokes() {
        let request =
            parse_client_invoke(br#"{"service":"s","api":"a","data":{"x":1},"consumeType":2,"consumeAppid":"wxb","clientMsgId":"m"}"#)
                .unwrap();
        assert_eq!(request.consume_appid.as_deref(), Some("wxb"));
        assert_eq!(request.invoke.client_msg_id.as_deref(), Some("m"));
        assert_eq!(request.invoke.data, json!({"x": 1}));
        assert_eq!(parse_client_invoke(br#"{"service":"s","api":"a"}"#).unwrap().consume_appid, None);
        assert_eq!(
            code_of(parse_client_invoke(br#"{"service":"s","api":"a","consumeType":2}"#)),
            Code::MarketBadInput
        );
        assert_eq!(
            code_of(parse_client_invoke(
                br#"{"service":"s","api":"a","consumeType":1,"consumeAppid":"x"}"#
            )),
            Code::MarketBadInput
        );
        assert_eq!(
            code_of(parse_client_invoke(br#"{"service":"s","api":"a","consumeAppid":"x"}"#)),
            Code::MarketBadInput
        );
        assert_eq!(
            code_of(parse_client_invoke(br#"{"service":"s","api":"a","consumeType":"2"}"#)),
            Code::DataFormatError
        );
        assert_eq!(code_of(parse_client_invoke(br#"{"api":"a"}"#)), Code::MarketBadInput);
        assert_eq!(
            code_of(parse_client_invoke(br#"{"service":"s","api":"a","client_msg_id":"m"}"#)),
            Code::MarketBadInput
        );
    }

    #[test]
    fn authorize_requests() {
        assert_eq!(
            parse_authorize_request(br#"{"scopes":["scope.userInfo"]}"#).unwrap(),
            vec!["scope.userInfo".to_owned()]
        );
        assert_eq!(code_of(parse_authorize_request(br#"{"scopes":[]}"#)), Code::MarketBadInput);
        assert_eq!(code_of(parse_authorize_request(br#"{"scopes":"x"}"#)), Code::DataFormatError);
        assert_eq!(code_of(parse_authorize_request(br#"{"scopes":[1]}"#)), Code::DataFormatError);
    }

    #[test]
    fn async_results() {
        assert_eq!(parse_async_result_request(br#"{"requestId":"r1"}"#).unwrap(), "r1");
        assert_eq!(code_of(parse_async_result_request(br#"{}"#)), Code::MarketBadInput);
    }
}
