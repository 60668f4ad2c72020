//! CDN files over HTTP (`wire.md` §4 `cdn`): `GET /souk/v1/cdn/{file_id}` serves a file to whoever
//! holds its URL (a provider fetching what a caller marked); `POST /souk/v1/cdn?access_token=`
//! uploads one for an app server, answering `{url, expires_in}`.
//!
//! [`upload_from_request`] is the upload without its authentication, so the client API's
//! `POST /souk/v1/client/cdn` is the same few lines with a client session instead of a token.
//! Both routes are souk's own: honest statuses and `{errCode, errMsg, requestID}` errors.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use souk_core::blob::{BlobError, ByteStream};
use souk_core::cdn::CdnFile;
use souk_core::{Failure, Souk};
use souk_types::Code;

use crate::context::RequestContext;
use crate::extract::{call_record, QueryPairs};
use crate::render;
use crate::state::AppState;

/// Room for multipart boundaries, part headers and small text fields around the file part.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;
/// Files are served as what they claim to be, never sniffed, and never run as a page of souk's
/// origin (an uploaded `text/html` could otherwise script it).
const SANDBOX: &str = "sandbox; default-src 'none'";

/// The answer of an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadAnswer {
    /// Where the file is served.
    pub url: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

impl From<&CdnFile> for UploadAnswer {
    fn from(file: &CdnFile) -> Self {
        UploadAnswer {
            url: file.url.clone(),
            expires_in: file.expires_in_secs,
        }
    }
}

/// `GET /souk/v1/cdn/{file_id}`: the bytes, streamed, with their content type, length and a cache
/// lifetime that ends when the file expires.
pub async fn serve_file(State(state): State<AppState>, context: RequestContext, Path(file_id): Path<String>) -> Response {
    let file = match state.souk.open_cdn_file(&file_id).await {
        Ok(file) => file,
        Err(failure) => return render::souk_failure(&failure, &context.request_id),
    };
    let content_type =
        HeaderValue::from_str(&file.record.content_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_LENGTH, HeaderValue::from(file.body.size)),
        (header::CACHE_CONTROL, cache_control(file.max_age_secs)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(SANDBOX)),
    ];
    (headers, Body::from_stream(file.body.stream)).into_response()
}

fn cache_control(max_age_secs: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={}, immutable", max_age_secs.max(0)))
        .unwrap_or_else(|_| HeaderValue::from_static("no-store"))
}

/// `POST /souk/v1/cdn?access_token=`: a raw body with its `Content-Type`, or `multipart/form-data`
/// with a file part.
pub async fn upload(State(state): State<AppState>, context: RequestContext, query: QueryPairs, request: Request) -> Response {
    let mut call = call_record(&context, "cdn");
    let uploaded = match state.souk.authenticate(query.get("access_token")).await {
        Ok(caller) => {
            call.appid = Some(caller.app.appid.clone());
            upload_from_request(&state.souk, &caller.app.appid, request).await
        }
        Err(failure) => Err(failure),
    };
    let response = match &uploaded {
        Ok(file) => {
            call.bytes_in = file.record.size;
            (StatusCode::OK, axum::Json(UploadAnswer::from(file))).into_response()
        }
        Err(failure) => {
            call.errcode = failure.code.errcode();
            call.message = Some(failure.message());
            render::souk_failure(failure, &context.request_id)
        }
    };
    state.log_call(call, &context).await;
    response
}

/// Uploads the file in `request` for `appid`: the raw body with its `Content-Type`, or, for
/// `multipart/form-data`, the first part with a file name (else the first named `file` or `media`)
/// with that part's content type; other parts are ignored. The size limit is the operator's CDN
/// limit, checked while the body streams in.
pub async fn upload_from_request(souk: &Souk, appid: &str, request: Request) -> Result<CdnFile, Failure> {
    let max_bytes = souk
        .cdn_settings()
        .map(|settings| settings.max_bytes)
        .ok_or_else(|| Failure::new(Code::SystemError, "cdn files are not enabled on this souk"))?;
    let (parts, body) = request.into_parts();
    let content_type = header_text(&parts.headers, header::CONTENT_TYPE);
    match multer::parse_boundary(content_type) {
        Ok(boundary) => {
            refuse_declared_length(&parts.headers, max_bytes + MULTIPART_OVERHEAD, max_bytes)?;
            upload_multipart(souk, appid, body, boundary, max_bytes).await
        }
        Err(_) if is_multipart(content_type) => Err(Failure::new(
            Code::DataFormatError,
            "multipart/form-data without a boundary parameter",
        )),
        Err(_) => {
            refuse_declared_length(&parts.headers, max_bytes, max_bytes)?;
            let stream: ByteStream<'static> = body.into_data_stream().map_err(|err| BlobError::Body(err.to_string())).boxed();
            souk.upload_cdn_file(appid, content_type, stream).await
        }
    }
}

async fn upload_multipart(souk: &Souk, appid: &str, body: Body, boundary: String, max_bytes: u64) -> Result<CdnFile, Failure> {
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(max_bytes.saturating_add(MULTIPART_OVERHEAD)));
    let mut multipart = multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    loop {
        let field = multipart.next_field().await.map_err(|err| multipart_failure(&err, max_bytes))?;
        let Some(field) = field else {
            return Err(Failure::new(
                Code::DataFormatError,
                "the multipart body has no file part (a part with a filename, or named file)",
            ));
        };
        let is_file = field.file_name().is_some() || matches!(field.name(), Some("file" | "media"));
        if !is_file {
            continue;
        }
        let content_type = field.content_type().map(ToString::to_string).unwrap_or_default();
        let stream: ByteStream<'static> = field
            .map_err(move |err| match err {
                multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
                    BlobError::TooLarge { limit: max_bytes }
                }
                other => BlobError::Body(other.to_string()),
            })
            .boxed();
        return souk.upload_cdn_file(appid, &content_type, stream).await;
    }
}

fn multipart_failure(err: &multer::Error, max_bytes: u64) -> Failure {
    match err {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            Failure::new(Code::CdnFileTooLarge, format!("the file is larger than {max_bytes} bytes"))
        }
        other => Failure::new(Code::DataFormatError, format!("the multipart body could not be read: {other}")),
    }
}

/// A body whose declared length is already past the limit is refused before it is read.
fn refuse_declared_length(headers: &HeaderMap, allowed: u64, max_bytes: u64) -> Result<(), Failure> {
    let declared = header_text(headers, header::CONTENT_LENGTH).parse::<u64>().ok();
    match declared {
        Some(length) if length > allowed => Err(Failure::new(
            Code::CdnFileTooLarge,
            format!("the file is larger than {max_bytes} bytes"),
        )),
        _ => Ok(()),
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default()
}

fn is_multipart(content_type: &str) -> bool {
    content_type.trim_start().to_ascii_lowercase().starts_with("multipart/")
}
