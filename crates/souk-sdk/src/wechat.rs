//! [`WechatClient`]: the WeChat-compatible calls an app's server makes: access tokens, the service
//! market, customer-service messages and getPaidUnionId (`wire.md` §2).
//!
//! These APIs answer HTTP 200 whatever happens, with `{errcode, errmsg, ...}`; a non-zero errcode is
//! [`SdkError::Wechat`].

use reqwest::Url;
use serde_json::{json, Map, Value};
use souk_types::token::TokenAnswer;

use crate::error::{api_error, body_excerpt};
use crate::url::{endpoint, parse_base};
use crate::SdkError;

/// A successful `/wxa/servicemarket` (or `servicemarketretrieve`) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeAnswer {
    /// The provider's result as the JSON *string* the API answers.
    pub data: String,
    /// The request id, when souk answered one (async calls, retrieve).
    pub request_id: Option<String>,
}

impl InvokeAnswer {
    /// `data` parsed as JSON.
    pub fn json(&self) -> Result<Value, SdkError> {
        serde_json::from_str(&self.data).map_err(|err| SdkError::Decode(format!("data is not a JSON string: {err}")))
    }
}

/// A client of souk's WeChat-compatible APIs, as an app's server uses them.
#[derive(Debug, Clone)]
pub struct WechatClient {
    http: reqwest::Client,
    base: Url,
}

impl WechatClient {
    /// A client for the souk at `base_url` (like `http://127.0.0.1:8080`).
    pub fn new(base_url: &str) -> Result<Self, SdkError> {
        Self::with_http_client(reqwest::Client::new(), base_url)
    }

    /// Like [`WechatClient::new`], with a `reqwest::Client` configured by the caller.
    pub fn with_http_client(http: reqwest::Client, base_url: &str) -> Result<Self, SdkError> {
        Ok(WechatClient {
            http,
            base: parse_base(base_url)?,
        })
    }

    /// `GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`.
    pub async fn get_token(&self, appid: &str, secret: &str) -> Result<TokenAnswer, SdkError> {
        let url = endpoint(
            &self.base,
            &["cgi-bin", "token"],
            &[
                ("grant_type", Some("client_credential".to_owned())),
                ("appid", Some(appid.to_owned())),
                ("secret", Some(secret.to_owned())),
            ],
        );
        let answer = self.send(self.http.get(url)).await?;
        decode_token(answer)
    }

    /// `POST /cgi-bin/stable_token`: the stable token, rotated early when `force_refresh`.
    pub async fn stable_token(&self, appid: &str, secret: &str, force_refresh: bool) -> Result<TokenAnswer, SdkError> {
        let url = endpoint(&self.base, &["cgi-bin", "stable_token"], &[]);
        let body = json!({
            "grant_type": "client_credential",
            "appid": appid,
            "secret": secret,
            "force_refresh": force_refresh,
        });
        let answer = self.send(self.http.post(url).json(&body)).await?;
        decode_token(answer)
    }

    /// `POST /wxa/servicemarket`: a sync call of `service`/`api` with `data` (an object, or a JSON
    /// string sent as is). A repeated `client_msg_id` gets the first answer and is not charged again.
    pub async fn invoke_service(
        &self,
        access_token: &str,
        service: &str,
        api: &str,
        data: Value,
        client_msg_id: Option<&str>,
    ) -> Result<InvokeAnswer, SdkError> {
        let body = invoke_body(service, api, data, client_msg_id, false);
        let answer = self.post_with_token(&["wxa", "servicemarket"], access_token, &body).await?;
        decode_invoke(answer)
    }

    /// `POST /wxa/servicemarket` with `async: true`: starts a long task and returns its request id,
    /// to pass to [`WechatClient::retrieve`].
    pub async fn invoke_service_async(
        &self,
        access_token: &str,
        service: &str,
        api: &str,
        data: Value,
        client_msg_id: Option<&str>,
    ) -> Result<String, SdkError> {
        let body = invoke_body(service, api, data, client_msg_id, true);
        let answer = self.post_with_token(&["wxa", "servicemarket"], access_token, &body).await?;
        match answer.get("request_id") {
            Some(Value::String(id)) => Ok(id.clone()),
            _ => Err(SdkError::Decode("the async answer has no request_id".to_owned())),
        }
    }

    /// `POST /wxa/servicemarketretrieve`: an async task's result; errcode 9301015 while pending.
    pub async fn retrieve(&self, access_token: &str, request_id: &str) -> Result<InvokeAnswer, SdkError> {
        let body = json!({ "request_id": request_id });
        let answer = self.post_with_token(&["wxa", "servicemarketretrieve"], access_token, &body).await?;
        decode_invoke(answer)
    }

    /// `POST /cgi-bin/message/custom/send`: a customer-service message to `touser`, `message` being
    /// the body without `touser` (`{"msgtype": "text", "text": {"content": "..."}}`, `image`, `link`,
    /// `miniprogrampage`). 45015 past the 48-hour window, 45047 past 5 replies.
    pub async fn send_custom_message(&self, access_token: &str, touser: &str, message: Value) -> Result<(), SdkError> {
        let mut body = match message {
            Value::Object(fields) => Value::Object(fields),
            _ => return Err(SdkError::Decode("a message is a JSON object".to_owned())),
        };
        body["touser"] = Value::from(touser);
        self.post_with_token(&["cgi-bin", "message", "custom", "send"], access_token, &body)
            .await
            .map(drop)
    }

    /// `POST /cgi-bin/message/custom/typing`: `Typing` when `typing`, else `CancelTyping`.
    pub async fn set_typing(&self, access_token: &str, touser: &str, typing: bool) -> Result<(), SdkError> {
        let command = if typing { "Typing" } else { "CancelTyping" };
        let body = json!({ "touser": touser, "command": command });
        self.post_with_token(&["cgi-bin", "message", "custom", "typing"], access_token, &body)
            .await
            .map(drop)
    }

    /// `GET /wxa/getpaidunionid?openid=&transaction_id=`: the unionid of a user who paid within the last
    /// 5 minutes.
    pub async fn get_paid_unionid(&self, access_token: &str, openid: &str, transaction_id: &str) -> Result<String, SdkError> {
        self.paid_unionid(access_token, &[("openid", openid), ("transaction_id", transaction_id)])
            .await
    }

    /// `GET /wxa/getpaidunionid?openid=&mch_id=&out_trade_no=`: as [`WechatClient::get_paid_unionid`],
    /// naming the order by merchant id and order number.
    pub async fn get_paid_unionid_by_order(
        &self,
        access_token: &str,
        openid: &str,
        mch_id: &str,
        out_trade_no: &str,
    ) -> Result<String, SdkError> {
        self.paid_unionid(
            access_token,
            &[("openid", openid), ("mch_id", mch_id), ("out_trade_no", out_trade_no)],
        )
        .await
    }

    async fn paid_unionid(&self, access_token: &str, params: &[(&str, &str)]) -> Result<String, SdkError> {
        let mut query = vec![("access_token", Some(access_token.to_owned()))];
        query.extend(params.iter().map(|(name, value)| (*name, Some((*value).to_owned()))));
        let url = endpoint(&self.base, &["wxa", "getpaidunionid"], &query);
        let answer = self.send(self.http.get(url)).await?;
        match answer.get("unionid") {
            Some(Value::String(unionid)) => Ok(unionid.clone()),
            _ => Err(SdkError::Decode("the answer has no unionid".to_owned())),
        }
    }

    async fn post_with_token(&self, segments: &[&str], access_token: &str, body: &Value) -> Result<Map<String, Value>, SdkError> {
        let url = endpoint(&self.base, segments, &[("access_token", Some(access_token.to_owned()))]);
        self.send(self.http.post(url).json(body)).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Map<String, Value>, SdkError> {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        wechat_answer(status, &body)
    }
}

fn invoke_body(service: &str, api: &str, data: Value, client_msg_id: Option<&str>, is_async: bool) -> Value {
    let mut body = json!({ "service": service, "api": api, "data": data });
    if let Some(id) = client_msg_id {
        body["client_msg_id"] = Value::from(id);
    }
    if is_async {
        body["async"] = Value::Bool(true);
    }
    body
}

/// A WeChat-style answer: an object whose `errcode`, when present, is 0; anything else is an error.
fn wechat_answer(status: u16, body: &[u8]) -> Result<Map<String, Value>, SdkError> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        if !(200..300).contains(&status) {
            return Err(api_error(status, body));
        }
        let excerpt = body_excerpt(body).unwrap_or_default();
        return Err(SdkError::Decode(format!("not a JSON object: {excerpt}")));
    };
    match fields.get("errcode") {
        None => Ok(fields),
        Some(code) => match code.as_i64() {
            Some(0) => Ok(fields),
            Some(errcode) => Err(SdkError::Wechat {
                errcode,
                errmsg: fields.get("errmsg").and_then(Value::as_str).unwrap_or_default().to_owned(),
            }),
            None => Err(SdkError::Decode(format!("errcode is not a number: {code}"))),
        },
    }
}

fn decode_token(fields: Map<String, Value>) -> Result<TokenAnswer, SdkError> {
    serde_json::from_value(Value::Object(fields)).map_err(|err| SdkError::Decode(format!("token answer: {err}")))
}

fn decode_invoke(mut fields: Map<String, Value>) -> Result<InvokeAnswer, SdkError> {
    let data = match fields.remove("data") {
        Some(Value::String(text)) => text,
        Some(other) => return Err(SdkError::Decode(format!("data is not a JSON string: {other}"))),
        None => return Err(SdkError::Decode("the answer has no data".to_owned())),
    };
    let request_id = match fields.remove("request_id") {
        Some(Value::String(id)) => Some(id),
        _ => None,
    };
    Ok(InvokeAnswer { data, request_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcode_zero_or_absent_is_success() {
        let fields = wechat_answer(200, br#"{"access_token":"t","expires_in":7200}"#).unwrap();
        assert_eq!(
            decode_token(fields).unwrap(),
            TokenAnswer {
                access_token: "t".into(),
                expires_in: 7200
            }
        );
        let fields = wechat_answer(200, br#"{"errcode":0,"errmsg":"ok","data":"{\"a\":1}"}"#).unwrap();
        let answer = decode_invoke(fields).unwrap();
        assert_eq!(answer.data, r#"{"a":1}"#);
        assert_eq!(answer.json().unwrap(), json!({"a": 1}));
    }

    #[test]
    fn errcodes_become_wechat_errors() {
        let err = wechat_answer(200, br#"{"errcode":9301010,"errmsg":"consumption failure rid: r1"}"#).unwrap_err();
        assert_eq!(
            err,
            SdkError::Wechat {
                errcode: 9301010,
                errmsg: "consumption failure rid: r1".into()
            }
        );
        // Unknown paths answer 404 with the same shape.
        let err = wechat_answer(404, br#"{"errcode":40066,"errmsg":"invalid url"}"#).unwrap_err();
        assert!(matches!(err, SdkError::Wechat { errcode: 40066, .. }));
    }

    #[test]
    fn other_answers_are_reported() {
        assert!(matches!(wechat_answer(502, b"bad gateway"), Err(SdkError::Api { status: 502, .. })));
        assert!(matches!(wechat_answer(200, b"[1]"), Err(SdkError::Decode(_))));
        assert!(matches!(wechat_answer(200, br#"{"errcode":"x"}"#), Err(SdkError::Decode(_))));
        let fields = wechat_answer(200, br#"{"errcode":0,"data":{"a":1}}"#).unwrap();
        assert!(matches!(decode_invoke(fields), Err(SdkError::Decode(_))));
    }

    #[test]
    fn invoke_body_has_the_optional_fields_only_when_set() {
        assert_eq!(
            invoke_body("s", "a", json!({"x": 1}), None, false),
            json!({"service": "s", "api": "a", "data": {"x": 1}})
        );
        assert_eq!(
            invoke_body("s", "a", json!("{}"), Some("m1"), true),
            json!({"service": "s", "api": "a", "data": "{}", "client_msg_id": "m1", "async": true})
        );
    }
}
