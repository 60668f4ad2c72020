//! What an upstream's reply means (`cloud-gateway.md` §2): every way it can fail has its own code,
//! and a good reply is cut down to the four-field envelope `{success, data, errorCode, errorMessage}`.
//!
//! An upstream's `success: false` is not a gateway failure: it is an envelope the doors pass on. The
//! upstream's body never reaches an error message (it may hold anything); the status, the size and
//! which rule was broken do.

use serde_json::Value;
use souk_types::Code;

use super::{CloudEnvelope, UpstreamReply};
use crate::error::Failure;

/// Classifies a reply: the envelope, or the failure with its code. `timeout_ms` is the deadline the
/// request had, for the message.
pub fn read_reply(reply: UpstreamReply, timeout_ms: u64) -> Result<CloudEnvelope, Failure> {
    match reply {
        UpstreamReply::TimedOut => Err(Failure::new(
            Code::CloudUpstreamTimeout,
            format!("no answer within {timeout_ms} ms; the call was cancelled"),
        )),
        UpstreamReply::ConnectFailed(why) => Err(Failure::new(Code::CloudUpstreamConnectError, why)),
        UpstreamReply::AddressRefused(why) => Err(Failure::new(Code::CloudUpstreamAddressRefused, why)),
        UpstreamReply::RedirectRefused(why) => Err(Failure::new(Code::CloudUpstreamRedirect, why)),
        UpstreamReply::TooLarge => Err(Failure::new(Code::CloudUpstreamTooLarge, "")),
        UpstreamReply::Answered { status, .. } if !(200..300).contains(&status) => Err(Failure::new(
            Code::CloudUpstreamHttpStatus,
            format!("the upstream answered HTTP {status}"),
        )),
        UpstreamReply::Answered { body, .. } => read_envelope(&body),
    }
}

fn not_envelope(why: &str) -> Failure {
    Failure::new(Code::CloudUpstreamNotEnvelope, why)
}

/// Reads `{success, data, errorCode, errorMessage}` and drops every other field.
fn read_envelope(body: &[u8]) -> Result<CloudEnvelope, Failure> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(not_envelope("the answer is not a JSON object"));
    };
    let Some(Value::Bool(success)) = fields.remove("success") else {
        return Err(not_envelope("the answer has no boolean success"));
    };
    // Codes are strings by contract; a number (`404`) is taken as its text, as upstreams often do.
    let error_code = match fields.remove("errorCode") {
        None | Some(Value::Null) => None,
        Some(Value::String(code)) => Some(code),
        Some(Value::Number(code)) => Some(code.to_string()),
        Some(_) => return Err(not_envelope("errorCode is not a string")),
    };
    let error_message = match fields.remove("errorMessage") {
        None | Some(Value::Null) => None,
        Some(Value::String(message)) => Some(message),
        Some(_) => return Err(not_envelope("errorMessage is not a string")),
    };
    let data = fields.remove("data").unwrap_or(Value::Null);
    if success && is_falsy(&data) {
        // The platform SDK would hand `{}` to the page (`data || {}`): the upstream broke the contract.
        return Err(Failure::new(
            Code::CloudUpstreamFalsyData,
            "success with data 0, false, \"\", null or missing",
        ));
    }
    Ok(CloudEnvelope {
        success,
        data,
        error_code,
        error_message,
    })
}

/// JavaScript's falsy values that JSON can carry.
fn is_falsy(data: &Value) -> bool {
    match data {
        Value::Null => true,
        Value::Bool(flag) => !flag,
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::String(text) => text.is_empty(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, body: &str) -> UpstreamReply {
        UpstreamReply::Answered {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    fn check(reply: UpstreamReply, expect: Result<Value, Code>) {
        let got = read_reply(reply, 3000);
        match (got, expect) {
            (Ok(envelope), Ok(want)) => {
                let got = serde_json::json!({
                    "success": envelope.success,
                    "data": envelope.data,
                    "errorCode": envelope.error_code,
                    "errorMessage": envelope.error_message,
                });
                assert_eq!(got, want);
            }
            (Err(failure), Err(code)) => assert_eq!(failure.code, code, "{}", failure.detail),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn envelopes_keep_four_fields() {
        check(
            answered(200, r#"{"success":true,"data":{"a":1},"extra":"dropped","errorCode":null}"#),
            Ok(serde_json::json!({"success": true, "data": {"a": 1}, "errorCode": null, "errorMessage": null})),
        );
        check(
            answered(201, r#"{"success":true,"data":[0]}"#),
            Ok(serde_json::json!({"success": true, "data": [0], "errorCode": null, "errorMessage": null})),
        );
        check(
            answered(200, r#"{"success":true,"data":"0"}"#),
            Ok(serde_json::json!({"success": true, "data": "0", "errorCode": null, "errorMessage": null})),
        );
    }

    #[test]
    fn upstream_failures_are_envelopes_not_gateway_failures() {
        check(
            answered(
                200,
                r#"{"success":false,"errorCode":"BIZ_ERR","errorMessage":"bad thing","trace":"x"}"#,
            ),
            Ok(serde_json::json!({"success": false, "data": null, "errorCode": "BIZ_ERR", "errorMessage": "bad thing"})),
        );
        check(
            answered(200, r#"{"success":false,"errorCode":404}"#),
            Ok(serde_json::json!({"success": false, "data": null, "errorCode": "404", "errorMessage": null})),
        );
    }

    #[test]
    fn every_failure_has_its_code() {
        check(UpstreamReply::TimedOut, Err(Code::CloudUpstreamTimeout));
        check(UpstreamReply::ConnectFailed("refused".into()), Err(Code::CloudUpstreamConnectError));
        check(
            UpstreamReply::AddressRefused("10.0.0.1".into()),
            Err(Code::CloudUpstreamAddressRefused),
        );
        check(UpstreamReply::RedirectRefused("elsewhere".into()), Err(Code::CloudUpstreamRedirect));
        check(UpstreamReply::TooLarge, Err(Code::CloudUpstreamTooLarge));
        check(answered(500, r#"{"success":true,"data":1}"#), Err(Code::CloudUpstreamHttpStatus));
        check(answered(302, ""), Err(Code::CloudUpstreamHttpStatus));
        for body in [
            "<html>",
            "[]",
            r#"{"data":1}"#,
            r#"{"success":"true","data":1}"#,
            r#"{"success":false,"errorCode":{}}"#,
        ] {
            check(answered(200, body), Err(Code::CloudUpstreamNotEnvelope));
        }
        for data in ["0", "0.0", "false", r#""""#, "null"] {
            check(
                answered(200, &format!(r#"{{"success":true,"data":{data}}}"#)),
                Err(Code::CloudUpstreamFalsyData),
            );
        }
        check(answered(200, r#"{"success":true}"#), Err(Code::CloudUpstreamFalsyData));
        let failure = read_reply(answered(503, "secret stack trace"), 3000).unwrap_err();
        assert!(
            failure.detail.contains("503") && !failure.detail.contains("secret"),
            "{}",
            failure.detail
        );
    }
}
