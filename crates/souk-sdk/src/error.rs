//! The one error type of the SDK, and how answers that are not successes become it.

use souk_types::admin::ErrorBody;

/// Everything that can go wrong in a call through the SDK.
///
/// `Display` is one line meant for a person (the admin CLI prints it after `error: `); the request id,
/// when souk gave one, is in [`SdkError::request_id`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SdkError {
    /// souk's own API (admin, client) answered an error status with `{errCode, errMsg, requestID}`.
    #[error("{message} [{code}, HTTP {status}]")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error's name (`AdminNotFound`, ...), or `HTTP` when the body was not souk's error shape.
        code: String,
        /// What went wrong.
        message: String,
        /// The request id, to find the call in souk's log.
        request_id: Option<String>,
    },
    /// A WeChat-compatible API answered a non-zero `errcode` (always with HTTP 200).
    #[error("errcode {errcode}: {errmsg}")]
    Wechat {
        /// The errcode.
        errcode: i64,
        /// The errmsg, which ends with `rid: <request id>`.
        errmsg: String,
    },
    /// souk could not be reached, or the connection broke.
    #[error("cannot reach souk: {0}")]
    Transport(String),
    /// souk answered something that is not the expected shape.
    #[error("unexpected answer from souk: {0}")]
    Decode(String),
    /// The base URL given to a client is not an http(s) URL.
    #[error("invalid souk URL: {0}")]
    InvalidUrl(String),
}

impl SdkError {
    /// The request id souk gave the failed call, if any (`requestID`, or the `rid:` of an errmsg).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            SdkError::Api { request_id, .. } => request_id.as_deref(),
            SdkError::Wechat { errmsg, .. } => errmsg.rsplit_once("rid: ").map(|(_, rid)| rid.trim()),
            _ => None,
        }
    }

    /// The HTTP status of an [`SdkError::Api`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            SdkError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The `errCode` name of an [`SdkError::Api`] error (`AdminNotFound`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            SdkError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for SdkError {
    fn from(err: reqwest::Error) -> Self {
        SdkError::Transport(error_chain(&err))
    }
}

/// `err: cause: cause`, because reqwest's own message ("error sending request") hides the reason.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The error for a non-2xx answer of souk's own APIs.
pub(crate) fn api_error(status: u16, body: &[u8]) -> SdkError {
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(body) {
        let code = match error.err_code {
            serde_json::Value::String(name) => name,
            other => other.to_string(),
        };
        return SdkError::Api {
            status,
            code,
            message: error.err_msg,
            request_id: Some(error.request_id).filter(|id| !id.is_empty()),
        };
    }
    SdkError::Api {
        status,
        code: "HTTP".to_owned(),
        message: body_excerpt(body).unwrap_or_else(|| format!("HTTP status {status}")),
        request_id: None,
    }
}

/// The first line of a body, cut to a readable length, for errors about bodies that are not JSON.
pub(crate) fn body_excerpt(body: &[u8]) -> Option<String> {
    const MAX_CHARS: usize = 200;
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|line| !line.is_empty())?;
    let mut excerpt: String = line.chars().take(MAX_CHARS).collect();
    if line.chars().count() > MAX_CHARS {
        excerpt.push('…');
    }
    Some(excerpt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_error_body_is_decoded() {
        let err = api_error(404, br#"{"errCode":"AdminNotFound","errMsg":"no app wx1","requestID":"r-1"}"#);
        assert_eq!(
            err,
            SdkError::Api {
                status: 404,
                code: "AdminNotFound".to_owned(),
                message: "no app wx1".to_owned(),
                request_id: Some("r-1".to_owned()),
            }
        );
        assert_eq!(err.to_string(), "no app wx1 [AdminNotFound, HTTP 404]");
        assert_eq!(err.request_id(), Some("r-1"));
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.code(), Some("AdminNotFound"));
    }

    #[test]
    fn numeric_err_code_is_kept_as_text() {
        let err = api_error(429, br#"{"errCode":-11,"errMsg":"frequency limit","requestID":""}"#);
        assert_eq!(err.code(), Some("-11"));
        assert_eq!(err.request_id(), None);
    }

    #[test]
    fn other_bodies_become_a_short_message() {
        let err = api_error(502, b"\n<html>Bad Gateway</html>\n<body/>");
        assert_eq!(err.to_string(), "<html>Bad Gateway</html> [HTTP, HTTP 502]");
        let empty = api_error(503, b"");
        assert_eq!(empty.to_string(), "HTTP status 503 [HTTP, HTTP 503]");
        let long = api_error(500, "x".repeat(500).as_bytes());
        assert!(long.to_string().len() < 260);
    }

    #[test]
    fn wechat_request_id_comes_from_errmsg() {
        let err = SdkError::Wechat {
            errcode: 40013,
            errmsg: "invalid appid rid: 6620-abc".to_owned(),
        };
        assert_eq!(err.request_id(), Some("6620-abc"));
        assert_eq!(err.to_string(), "errcode 40013: invalid appid rid: 6620-abc");
    }
}
