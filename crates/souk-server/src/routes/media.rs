//! Temporary media over HTTP (`wire.md` §2, `wechat-wire.md` §5.3–§5.4):
//! `POST /cgi-bin/media/upload?access_token=&type=image` with a multipart `media` part answers
//! `{errcode: 0, errmsg: "ok", type, media_id, created_at}`; `GET /cgi-bin/media/get?access_token=&media_id=`
//! answers the raw bytes with their sniffed `image/*` type, a `Content-Disposition` naming
//! `<media_id>.<ext>` (WxJava needs it) and `Cache-Control: no-cache, must-revalidate`. Errors are
//! WeChat-style JSON.
//!
//! The format is sniffed from the bytes (never the part's file name or content type) on the CPU pool;
//! the rules about type, size, ownership and expiry are the domain's ([`souk_core::media`]).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use serde_json::json;
use souk_builtins::image_input::{self, InputError, InputLimits};
use souk_core::builtin::BuiltinApi;
use souk_core::media::{self as domain, MediaUpload, MAX_IMAGE_BYTES};
use souk_core::Failure;
use souk_types::Code;

use crate::context::RequestContext;
use crate::extract::{call_record, QueryPairs, WechatCaller};
use crate::render;
use crate::routes::{logged_wechat_json, noted_failure};
use crate::state::AppState;

/// Room for multipart boundaries, part headers and small text fields around the media part.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// `POST /cgi-bin/media/upload?access_token=&type=image`, multipart part `media`.
pub async fn upload(
    State(state): State<AppState>,
    context: RequestContext,
    WechatCaller(caller): WechatCaller,
    query: QueryPairs,
    request: Request,
) -> Response {
    let mut call = call_record(&context, "upload");
    call.appid = Some(caller.app.appid.clone());
    let media_type = query.get("type").unwrap_or_default();
    let uploaded = async {
        state.souk.admit_builtin(&caller.app, BuiltinApi::UploadMedia, &mut call).await?;
        domain::check_media_type(media_type)?;
        let bytes = read_media_part(request).await?;
        call.bytes_in = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let upload = sniff(&state, bytes).await?;
        state.souk.upload_temp_media(&caller.app.appid, media_type, upload).await
    }
    .await;
    let body = match uploaded {
        Ok(record) => json!({
            "errcode": 0,
            "errmsg": "ok",
            "type": record.media_type,
            "media_id": record.media_id,
            "created_at": record.created_at_ms / 1000,
        }),
        Err(failure) => noted_failure(&mut call, &failure, &context.request_id),
    };
    logged_wechat_json(&state, &context, call, &body).await
}

/// `GET /cgi-bin/media/get?access_token=&media_id=`: the bytes, or 40007.
pub async fn get(
    State(state): State<AppState>,
    context: RequestContext,
    WechatCaller(caller): WechatCaller,
    query: QueryPairs,
) -> Response {
    let mut call = call_record(&context, "get");
    call.appid = Some(caller.app.appid.clone());
    let media_id = query.get("media_id").unwrap_or_default();
    let opened = match state.souk.admit_builtin(&caller.app, BuiltinApi::GetMedia, &mut call).await {
        Ok(()) => state.souk.open_temp_media(&caller.app.appid, media_id).await,
        Err(failure) => Err(failure),
    };
    let response = match opened {
        Ok(media) => {
            call.bytes_out = media.record.size;
            let content_type = HeaderValue::from_str(&media.record.content_type).unwrap_or_else(|_| HeaderValue::from_static("image/jpeg"));
            // The id is `[0-9A-Za-z]` only (checked before the lookup), so it is safe in a header.
            let disposition = format!(
                "attachment; filename=\"{}.{}\"",
                media.record.media_id,
                domain::extension_of(&media.record.content_type)
            );
            let headers = [
                (header::CONTENT_TYPE, content_type),
                (header::CONTENT_LENGTH, HeaderValue::from(media.body.size)),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&disposition).unwrap_or_else(|_| HeaderValue::from_static("attachment")),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache, must-revalidate")),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            ];
            (headers, Body::from_stream(media.body.stream)).into_response()
        }
        Err(failure) => render::wechat_json(&noted_failure(&mut call, &failure, &context.request_id)),
    };
    state.log_call(call, &context).await;
    response
}

/// The bytes of the multipart part named `media`. No multipart body, no such part or an empty one is
/// 41005; more than [`MAX_IMAGE_BYTES`] is 40006, refused as soon as it arrives.
async fn read_media_part(request: Request) -> Result<Bytes, Failure> {
    let missing = |why: &str| Failure::new(Code::MediaDataMissing, why.to_owned());
    let too_large = || Failure::new(Code::MediaFileSizeInvalid, format!("an image is at most {MAX_IMAGE_BYTES} bytes"));
    let (parts, body) = request.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return Err(missing("the body is not multipart/form-data"));
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_IMAGE_BYTES + MULTIPART_OVERHEAD) {
        return Err(too_large());
    }
    let limits = multer::SizeLimit::new().whole_stream((MAX_IMAGE_BYTES + MULTIPART_OVERHEAD) as u64);
    let mut multipart =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, multer::Constraints::new().size_limit(limits));
    let read_failure = |err: multer::Error| match err {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => too_large(),
        other => Failure::new(Code::DataFormatError, format!("the multipart body could not be read: {other}")),
    };
    while let Some(mut field) = multipart.next_field().await.map_err(read_failure)? {
        if field.name() != Some("media") {
            continue;
        }
        let mut bytes = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(read_failure)? {
            if bytes.len() + chunk.len() > MAX_IMAGE_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Err(missing("the media part is empty"));
        }
        return Ok(bytes.freeze());
    }
    Err(missing("no multipart part named media"))
}

/// Sniffs the upload's format from its content (header only, on the CPU pool): not an image is 40005.
async fn sniff(state: &AppState, bytes: Bytes) -> Result<MediaUpload, Failure> {
    let limits = InputLimits {
        max_pixels: state.builtins.image_max_pixels,
        ..InputLimits::with_max_bytes(MAX_IMAGE_BYTES)
    };
    let probe_bytes = bytes.clone();
    let probed = state
        .cpu
        .run(move || image_input::probe(&probe_bytes, &limits))
        .await
        .map_err(|err| Failure::new(Code::CpuBusy, err.to_string()))?;
    match probed {
        Ok(info) => Ok(MediaUpload {
            bytes,
            content_type: info.kind.mime(),
        }),
        Err(InputError::Empty) => Err(Failure::new(Code::MediaDataMissing, "the media part is empty")),
        Err(err @ (InputError::TooLarge { .. } | InputError::TooManyPixels { .. })) => {
            Err(Failure::new(Code::MediaFileSizeInvalid, err.to_string()))
        }
        Err(err @ (InputError::NotAnImage | InputError::Corrupt(_))) => Err(Failure::new(Code::MediaFileTypeInvalid, err.to_string())),
    }
}
