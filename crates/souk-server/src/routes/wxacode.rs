//! Mini-program codes over HTTP (`wire.md` §2 rows createQRCode, get, getUnlimited):
//! `POST /cgi-bin/wxaapp/createwxaqrcode`, `POST /wxa/getwxacode`, `POST /wxa/getwxacodeunlimit` answer a
//! PNG (`image/png`) or a WeChat-style JSON failure; `GET /souk/v1/codes/{id}` says what a code points at,
//! as JSON for programs and as a small page for people.
//!
//! Bodies are read as JSON whatever their `Content-Type` (wechatpy sends none). souk draws standard QR
//! codes holding a souk URL, not WeChat's round "sun codes" (`souk_builtins::wxacode`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use souk_builtins::wxacode::{render_code, CodeStyle, Rgb};
use souk_core::builtin::BuiltinApi;
use souk_core::store::codes::CodeRecord;
use souk_core::tokens::Caller;
use souk_core::wxacode::rules::CodeKind;
use souk_core::wxacode::{code_json, IssuedCode};
use souk_core::Failure;
use souk_types::Code;

use crate::context::RequestContext;
use crate::extract::{call_record, read_limited, QueryPairs, WechatCaller};
use crate::render;
use crate::state::AppState;

/// `POST /cgi-bin/wxaapp/createwxaqrcode` (interface C).
pub async fn create_qrcode(state: State<AppState>, context: RequestContext, WechatCaller(caller): WechatCaller, body: Body) -> Response {
    answer_code(state, context, caller, CodeKind::QrCode, "createwxaqrcode", body).await
}

/// `POST /wxa/getwxacode` (interface A).
pub async fn get_code(state: State<AppState>, context: RequestContext, WechatCaller(caller): WechatCaller, body: Body) -> Response {
    answer_code(state, context, caller, CodeKind::Get, "getwxacode", body).await
}

/// `POST /wxa/getwxacodeunlimit` (interface B).
pub async fn get_unlimited(state: State<AppState>, context: RequestContext, WechatCaller(caller): WechatCaller, body: Body) -> Response {
    answer_code(state, context, caller, CodeKind::Unlimited, "getwxacodeunlimit", body).await
}

async fn answer_code(
    State(state): State<AppState>,
    context: RequestContext,
    caller: Caller,
    kind: CodeKind,
    route: &str,
    body: Body,
) -> Response {
    let mut call = call_record(&context, route);
    call.appid = Some(caller.app.appid.clone());
    let api = match kind {
        CodeKind::QrCode => BuiltinApi::CreateQrCode,
        CodeKind::Get => BuiltinApi::GetCode,
        CodeKind::Unlimited => BuiltinApi::GetUnlimitedCode,
    };
    let drawn = async {
        state.souk.admit_builtin(&caller.app, api, &mut call).await?;
        let body = read_limited(body, state.settings.max_body_bytes).await?;
        let issued = state.souk.issue_code(&caller.app, kind, &body).await?;
        draw(&state, issued).await
    }
    .await;
    let response = match drawn {
        Ok(png) => {
            call.bytes_out = i64::try_from(png.len()).unwrap_or(i64::MAX);
            ([(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))], png).into_response()
        }
        Err(failure) => {
            call.errcode = failure.code.errcode();
            call.message = Some(failure.message());
            render::wechat_failure(&failure, &context.request_id)
        }
    };
    state.log_call(call, &context).await;
    response
}

/// Draws the code on the CPU pool.
async fn draw(state: &AppState, issued: IssuedCode) -> Result<Vec<u8>, Failure> {
    let [r, g, b] = issued.color;
    let style = CodeStyle {
        width: issued.width,
        line_color: Rgb { r, g, b },
        hyaline: issued.hyaline,
    };
    let url = issued.url;
    state
        .cpu
        .run(move || render_code(&url, &style))
        .await
        .map_err(|err| Failure::new(Code::CpuBusy, err.to_string()))?
        .map_err(|err| {
            tracing::error!(error = %err, "code drawing failed");
            Failure::new(Code::SystemError, "the code could not be drawn")
        })
}

/// `GET /souk/v1/codes/{id}`: what the code points at. JSON when the client accepts
/// `application/json` or asks `?format=json`, else a small HTML page; souk-style errors.
pub async fn show_code(
    State(state): State<AppState>,
    context: RequestContext,
    Path(code_id): Path<String>,
    query: QueryPairs,
    headers: HeaderMap,
) -> Response {
    let record = match state.souk.find_code(&code_id).await {
        Ok(record) => record,
        Err(failure) => return render::souk_failure(&failure, &context.request_id),
    };
    let accepts_json = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/json"));
    if accepts_json || query.get("format") == Some("json") {
        return axum::Json(code_json(&record)).into_response();
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], code_page(&record)).into_response()
}

/// The page a person sees after scanning a code with an ordinary camera app.
fn code_page(record: &CodeRecord) -> String {
    let mut rows = format!("<tr><th>appid</th><td>{}</td></tr>", escape(&record.appid));
    for (name, value) in [
        ("path", &record.path),
        ("page", &record.page),
        ("scene", &record.scene),
        ("env_version", &record.env_version),
    ] {
        if let Some(value) = value {
            rows.push_str(&format!("<tr><th>{name}</th><td>{}</td></tr>", escape(value)));
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Mini-program code</title></head>\n<body><h1>Mini-program code</h1>\
         <p>Open this code in the mini-program to go to:</p><table>{rows}</table></body></html>\n"
    )
}

/// HTML-escapes text for element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
