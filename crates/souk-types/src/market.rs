//! The service market on the wire: the `/wxa/servicemarket` request as WeChat's SDKs send it, and the
//! provider envelope `{success, data, errorCode, errorMessage}` of `wire.md` §5.

use serde_json::{Map, Value};

use crate::Code;

/// A request body that could not be accepted, with the code it earns and a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    /// The public code.
    pub code: Code,
    /// What exactly was wrong, in words.
    pub detail: String,
}

impl BadRequest {
    fn new(code: Code, detail: impl Into<String>) -> Self {
        BadRequest {
            code,
            detail: detail.into(),
        }
    }
}

/// A parsed `POST /wxa/servicemarket` body.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeRequest {
    /// The provider's service id.
    pub service: String,
    /// The API name within the service.
    pub api: String,
    /// The JSON for the provider; an object or a JSON string on the wire, always a value here.
    pub data: Value,
    /// The caller's idempotency key: a retry with the same key gets the first answer.
    pub client_msg_id: Option<String>,
    /// `async: true` asks for an async long task.
    pub is_async: bool,
}

/// The longest `client_msg_id` souk keeps; WeChat's docs call it a random string id.
pub const MAX_CLIENT_MSG_ID_LEN: usize = 128;

/// Parses a `/wxa/servicemarket` body: JSON whatever the `Content-Type` said (wechatpy sends none).
///
/// An empty body is 44002, a body that is not a JSON object or a field of the wrong type 47001, a
/// missing `service`/`api` or a `data` string that is not JSON 9301001.
pub fn parse_invoke_request(body: &[u8]) -> Result<InvokeRequest, BadRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BadRequest::new(Code::EmptyPostData, "the request body is empty"));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|err| BadRequest::new(Code::DataFormatError, format!("the body is not JSON: {err}")))?;
    let Value::Object(mut fields) = value else {
        return Err(BadRequest::new(Code::DataFormatError, "the body must be a JSON object"));
    };
    let service = required_string(&mut fields, "service")?;
    let api = required_string(&mut fields, "api")?;
    let data = match fields.remove("data") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(text)) => serde_json::from_str(&text)
            .map_err(|err| BadRequest::new(Code::MarketBadInput, format!("data is a string but not JSON: {err}")))?,
        Some(other) => other,
    };
    let client_msg_id = optional_string(&mut fields, "client_msg_id")?;
    if client_msg_id.as_ref().is_some_and(|id| id.len() > MAX_CLIENT_MSG_ID_LEN) {
        return Err(BadRequest::new(
            Code::MarketBadInput,
            format!("client_msg_id is longer than {MAX_CLIENT_MSG_ID_LEN} bytes"),
        ));
    }
    let is_async = match fields.remove("async") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => flag,
        Some(_) => return Err(BadRequest::new(Code::DataFormatError, "async must be a boolean")),
    };
    Ok(InvokeRequest {
        service,
        api,
        data,
        client_msg_id: client_msg_id.filter(|id| !id.is_empty()),
        is_async,
    })
}

fn required_string(fields: &mut Map<String, Value>, name: &'static str) -> Result<String, BadRequest> {
    match optional_string(fields, name)? {
        Some(text) if !text.is_empty() => Ok(text),
        _ => Err(BadRequest::new(Code::MarketBadInput, format!("{name} is missing"))),
    }
}

fn optional_string(fields: &mut Map<String, Value>, name: &'static str) -> Result<Option<String>, BadRequest> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(BadRequest::new(Code::DataFormatError, format!("{name} must be a string"))),
    }
}

/// The provider's answer, reduced to the four fields of the contract.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEnvelope {
    /// Whether the provider's logic succeeded.
    pub success: bool,
    /// The provider's result (absent is `null`).
    pub data: Value,
    /// The provider's own error code, as text (numbers are kept as their decimal text).
    pub error_code: Option<String>,
    /// The provider's own error message.
    pub error_message: Option<String>,
}

/// Parses a provider body as the envelope; `Err` says why it is not one.
pub fn parse_envelope(body: &[u8]) -> Result<ProviderEnvelope, String> {
    let value: Value = serde_json::from_slice(body).map_err(|err| format!("provider answer is not JSON: {err}"))?;
    let Value::Object(mut fields) = value else {
        return Err("provider answer is not a JSON object".to_owned());
    };
    let success = match fields.remove("success") {
        Some(Value::Bool(flag)) => flag,
        Some(_) => return Err("provider answer's success is not a boolean".to_owned()),
        None => return Err("provider answer has no success field".to_owned()),
    };
    let text_field = |value: Option<Value>| match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(other) => Some(other.to_string()),
    };
    Ok(ProviderEnvelope {
        success,
        data: fields.remove("data").unwrap_or(Value::Null),
        error_code: text_field(fields.remove("errorCode")),
        error_message: text_field(fields.remove("errorMessage")),
    })
}

/// Turns the provider's `data` into the JSON string `/wxa/servicemarket` answers.
///
/// A provider that already answers a string is passed through unchanged (it is taken to be the
/// JSON text itself, as WeChat's examples show); anything else is serialized once.
pub fn data_as_json_string(data: &Value) -> String {
    match data {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_err(body: &str, code: Code) {
        let err = parse_invoke_request(body.as_bytes()).expect_err(body);
        assert_eq!(err.code, code, "{body}: {}", err.detail);
    }

    #[test]
    fn accepts_object_or_string_data() {
        let from_object = parse_invoke_request(br#"{"service":"s","api":"a","data":{"x":1},"client_msg_id":"m"}"#).unwrap();
        let from_string = parse_invoke_request(br#"{"service":"s","api":"a","data":"{\"x\":1}","client_msg_id":"m"}"#).unwrap();
        assert_eq!(from_object, from_string);
        assert_eq!(from_object.data, json!({"x": 1}));
        assert_eq!(from_object.client_msg_id.as_deref(), Some("m"));
        assert!(!from_object.is_async);
    }

    #[test]
    fn missing_data_is_an_empty_object() {
        let request = parse_invoke_request(br#"{"service":"s","api":"a","async":true}"#).unwrap();
        assert_eq!(request.data, json!({}));
        assert!(request.is_async);
    }

    #[test]
    fn bad_bodies_get_their_codes() {
        check_err("", Code::EmptyPostData);
        check_err("  \n", Code::EmptyPostData);
        check_err("{", Code::DataFormatError);
        check_err("[1]", Code::DataFormatError);
        check_err(r#"{"service":1,"api":"a"}"#, Code::DataFormatError);
        check_err(r#"{"service":"s","api":"a","async":"yes"}"#, Code::DataFormatError);
        check_err(r#"{"api":"a"}"#, Code::MarketBadInput);
        check_err(r#"{"service":"","api":"a"}"#, Code::MarketBadInput);
        check_err(r#"{"service":"s"}"#, Code::MarketBadInput);
        check_err(r#"{"service":"s","api":"a","data":"not json"}"#, Code::MarketBadInput);
        let long_id = "x".repeat(MAX_CLIENT_MSG_ID_LEN + 1);
        check_err(
            &format!(r#"{{"service":"s","api":"a","client_msg_id":"{long_id}"}}"#),
            Code::MarketBadInput,
        );
    }

    #[test]
    fn envelope_keeps_four_fields() {
        let envelope = parse_envelope(br#"{"success":false,"data":null,"errorCode":42,"errorMessage":"no","extra":1}"#).unwrap();
        assert!(!envelope.success);
        assert_eq!(envelope.error_code.as_deref(), Some("42"));
        assert_eq!(envelope.error_message.as_deref(), Some("no"));
        assert!(parse_envelope(b"<html>").is_err());
        assert!(parse_envelope(br#"{"data":1}"#).is_err());
        assert!(parse_envelope(br#"{"success":"true"}"#).is_err());
    }

    #[test]
    fn data_becomes_a_json_string() {
        assert_eq!(data_as_json_string(&json!({"a": [1, 2]})), r#"{"a":[1,2]}"#);
        assert_eq!(data_as_json_string(&json!("{\"a\":1}")), r#"{"a":1}"#);
        assert_eq!(data_as_json_string(&Value::Null), "null");
    }
}
