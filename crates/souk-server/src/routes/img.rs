//! The image APIs (`/cv/img/*`, `wire.md` §2, `wechat-wire.md` §7): one input reader for all of
//! them ([`read_image_input`]: a multipart `img` part, or `img_url` in the query fetched through the
//! guarded [`crate::image_fetch`], with the other form fields kept for the API), decoding with limits
//! on the CPU pool ([`decode_image`]), `img.scanQRCode` (`POST /cv/img/qrcode`), `img.aiCrop`
//! (`POST /cv/img/aicrop`) and `img.superresolution` (`POST /cv/img/superresolution`).
//!
//! Errors: 101000 for a bad, refused or unreachable `img_url` (or no input at all), 101002 for data
//! that is not a decodable image under 2 MB; `-1` when the CPU pool is busy.

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use image::DynamicImage;
use serde_json::{json, Value};
use souk_builtins::crop;
use souk_builtins::image_input::{self, ImageInfo, InputLimits, MAX_INPUT_BYTES};
use souk_builtins::scan::{self, Corners, Pixel};
use souk_builtins::superres;
use souk_core::builtin::BuiltinApi;
use souk_core::media::{MediaUpload, IMAGE_TYPE};
use souk_core::model::App;
use souk_core::model::CallRecord;
use souk_core::Failure;
use souk_types::Code;

use crate::context::RequestContext;
use crate::extract::{call_record, read_limited, QueryPairs, WechatCaller};
use crate::routes::{logged_wechat_json, noted_failure};
use crate::state::AppState;

/// Room for boundaries, part headers and the small text fields around the `img` part.
const MULTIPART_OVERHEAD: usize = 64 * 1024;
/// The longest text form field kept (`ratios` and the like).
const MAX_FIELD_BYTES: usize = 4 * 1024;

/// An image input as the caller sent it: the bytes (not yet decoded) and the other form fields.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImageInput {
    /// The image's bytes, from the `img` part or `img_url`.
    pub bytes: Bytes,
    /// Text form fields other than `img` (`ratios` for aiCrop), in order.
    pub fields: Vec<(String, String)>,
}

impl ImageInput {
    /// The first form field named `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// Reads the image of a `/cv/img/*` request: a non-empty multipart `img` part wins, else `img_url`
/// from the query is fetched (a POST with an empty body is fine then). Neither is 101000.
pub(crate) async fn read_image_input(state: &AppState, query: &QueryPairs, request: Request) -> Result<ImageInput, Failure> {
    let mut input = read_multipart(request).await?;
    if !input.bytes.is_empty() {
        return Ok(input);
    }
    let Some(url) = query.get("img_url").filter(|url| !url.is_empty()) else {
        return Err(Failure::new(Code::ImageUrlInvalid, "neither img_url nor an img part was given"));
    };
    let fetcher = state
        .images
        .as_ref()
        .ok_or_else(|| Failure::new(Code::ImageUrlInvalid, "image fetching is not available"))?;
    input.bytes = fetcher.fetch(url).await?;
    Ok(input)
}

/// Decodes an input with the `/cv/img/*` limits on the CPU pool: 101002 if it is not an image.
pub(crate) async fn decode_image(state: &AppState, bytes: Bytes) -> Result<(ImageInfo, DynamicImage), Failure> {
    let limits = InputLimits {
        max_pixels: state.builtins.image_max_pixels,
        ..InputLimits::default()
    };
    state
        .cpu
        .run(move || image_input::decode(&bytes, &limits))
        .await
        .map_err(|err| Failure::new(Code::CpuBusy, err.to_string()))?
        .map_err(|err| Failure::new(Code::ImageDataInvalid, err.to_string()))
}

/// The `img` part and the text fields of a multipart body; an empty input for any other body.
async fn read_multipart(request: Request) -> Result<ImageInput, Failure> {
    let (parts, body) = request.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return Ok(ImageInput::default());
    };
    let too_large = || Failure::new(Code::ImageDataInvalid, format!("the image is larger than {MAX_INPUT_BYTES} bytes"));
    let limits = multer::SizeLimit::new().whole_stream((MAX_INPUT_BYTES + MULTIPART_OVERHEAD) as u64);
    let mut multipart =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, multer::Constraints::new().size_limit(limits));
    let read_failure = |err: multer::Error| match err {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => too_large(),
        other => Failure::new(Code::ImageDataInvalid, format!("the multipart body could not be read: {other}")),
    };
    let mut input = ImageInput::default();
    while let Some(mut field) = multipart.next_field().await.map_err(read_failure)? {
        let name = field.name().unwrap_or_default().to_owned();
        let cap = if name == "img" { MAX_INPUT_BYTES } else { MAX_FIELD_BYTES };
        let mut bytes = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(read_failure)? {
            if bytes.len() + chunk.len() > cap {
                return Err(if name == "img" {
                    too_large()
                } else {
                    Failure::new(Code::DataFormatError, format!("form field {name} is too long"))
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        if name == "img" {
            if input.bytes.is_empty() {
                input.bytes = bytes.freeze();
            }
        } else {
            input.fields.push((name, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    Ok(input)
}

/// `POST /cv/img/qrcode?access_token=[&img_url=]` (img.scanQRCode): every code in the image.
pub async fn scan_qrcode(
    State(state): State<AppState>,
    context: RequestContext,
    WechatCaller(caller): WechatCaller,
    query: QueryPairs,
    request: Request,
) -> Response {
    let mut call = call_record(&context, "qrcode");
    call.appid = Some(caller.app.appid.clone());
    let body = match scan_request(&state, &mut call, &caller.app, &query, request).await {
        Ok(found) => scan_answer(&found),
        Err(failure) => noted_failure(&mut call, &failure, &context.request_id),
    };
    logged_wechat_json(&state, &context, call, &body).await
}

async fn scan_request(
    state: &AppState,
    call: &mut CallRecord,
    app: &App,
    query: &QueryPairs,
    request: Request,
) -> Result<scan::Scan, Failure> {
    state.souk.admit_builtin(app, BuiltinApi::ScanQrCode, call).await?;
    let input = read_image_input(state, query, request).await?;
    call.bytes_in = i64::try_from(input.bytes.len()).unwrap_or(i64::MAX);
    let (_, image) = decode_image(state, input.bytes).await?;
    state
        .cpu
        .run(move || scan::scan(&image))
        .await
        .map_err(|err| Failure::new(Code::CpuBusy, err.to_string()))
}

fn scan_answer(found: &scan::Scan) -> Value {
    let point = |pixel: Pixel| json!({ "x": pixel.x, "y": pixel.y });
    let pos = |corners: Corners| {
        json!({
            "left_top": point(corners.left_top),
            "right_top": point(corners.right_top),
            "right_bottom": point(corners.right_bottom),
            "left_bottom": point(corners.left_bottom),
        })
    };
    let results: Vec<Value> = found
        .codes
        .iter()
        .map(|code| {
            let mut result = json!({ "type_name": code.type_name, "data": code.data });
            if let Some(corners) = code.pos {
                result["pos"] = pos(corners);
            }
            result
        })
        .collect();
    json!({
        "errcode": 0,
        "errmsg": "ok",
        "code_results": results,
        "img_size": { "w": found.width, "h": found.height },
    })
}

/// `POST /cv/img/aicrop?access_token=[&img_url=]` (img.aiCrop), form field `ratios`: one crop per ratio,
/// or the best ones when `ratios` is empty (`souk_builtins::crop`). Bad `ratios` is 40097, checked
/// before the image is decoded. The crop itself runs on the CPU pool.
pub async fn ai_crop(
    State(state): State<AppState>,
    context: RequestContext,
    WechatCaller(caller): WechatCaller,
    query: QueryPairs,
    request: Request,
) -> Response {
    let mut call = call_record(&context, "aicrop");
    call.appid = Some(caller.app.appid.clone());
    let body = match crop_request(&state, &mut call, &caller.app, &query, request).await {
        Ok((info, crops)) => crop_answer(&info, &crops),
        Err(failure) => noted_failure(&mut call, &failure, &context.request_id),
    };
    logged_wechat_json(&state, &context, call, &body).await
}

async fn crop_request(
    state: &AppState,
    call: &mut CallRecord,
    app: &App,
    query: &QueryPairs,
    request: Request,
) -> Result<(ImageInfo, Vec<crop::Crop>), Failure> {
    state.souk.admit_builtin(app, BuiltinApi::AiCrop, call).await?;
    let (request, form) = take_urlencoded_form(request).await?;
    let input = read_image_input(state, query, request).await?;
    call.bytes_in = i64::try_from(input.bytes.len()).unwrap_or(i64::MAX);
    // A multipart field, as documented; with `img_url`, clients also send it as a url-encoded body
    // (`ratios=1,2.35`) or in the query string.
    let from_form = form.iter().find(|(key, _)| key == "ratios").map(|(_, value)| value.as_str());
    let ratios = input
        .field("ratios")
        .or(from_form)
        .or_else(|| query.get("ratios"))
        .unwrap_or_default();
    let ratios = crop::parse_ratios(ratios).map_err(|err| Failure::new(Code::ImageRatiosInvalid, err.to_string()))?;
    let (info, image) = decode_image(state, input.bytes).await?;
    let crops = state
        .cpu
        .run(move || crop::smart_crop_image(&image, &ratios))
        .await
        .map_err(|err| Failure::new(Code::CpuBusy, err.to_string()))?;
    Ok((info, crops))
}

/// The fields of a url-encoded body (at most [`MAX_FIELD_BYTES`]), and the request left with an empty
/// body for [`read_image_input`]; any other body is left as it is.
async fn take_urlencoded_form(request: Request) -> Result<(Request, Vec<(String, String)>), Failure> {
    let urlencoded = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !urlencoded {
        return Ok((request, Vec::new()));
    }
    let (parts, body) = request.into_parts();
    let body = read_limited(body, MAX_FIELD_BYTES).await?;
    let form = form_urlencoded::parse(&body).into_owned().collect();
    Ok((Request::from_parts(parts, axum::body::Body::empty()), form))
}

fn crop_answer(info: &ImageInfo, crops: &[crop::Crop]) -> Value {
    let results: Vec<Value> = crops
        .iter()
        .map(|crop| {
            json!({
                "crop_left": crop.left,
                "crop_top": crop.top,
                "crop_right": crop.right,
                "crop_bottom": crop.bottom,
            })
        })
        .collect();
    json!({
        "errcode": 0,
        "errmsg": "ok",
        "results": results,
        "img_size": { "w": info.width, "h": info.height },
    })
}

/// `POST /cv/img/superresolution?access_token=[&img_url=]` (img.superresolution): the image at twice its
/// width and height ([`superres`], on the CPU pool), kept as the caller's temp media and answered as
/// `{media_id}`, fetched with `GET /cgi-bin/media/get` (`wechat-wire.md` §7.3).
pub async fn superresolution(
    State(state): State<AppState>,
    context: RequestContext,
    WechatCaller(caller): WechatCaller,
    query: QueryPairs,
    request: Request,
) -> Response {
    let mut call = call_record(&context, "superresolution");
    call.appid = Some(caller.app.appid.clone());
    let body = match superres_request(&state, &mut call, &caller.app, &query, request).await {
        Ok(media_id) => json!({ "errcode": 0, "errmsg": "ok", "media_id": media_id }),
        Err(failure) => noted_failure(&mut call, &failure, &context.request_id),
    };
    logged_wechat_json(&state, &context, call, &body).await
}

async fn superres_request(
    state: &AppState,
    call: &mut CallRecord,
    app: &App,
    query: &QueryPairs,
    request: Request,
) -> Result<String, Failure> {
    state.souk.admit_builtin(app, BuiltinApi::SuperResolution, call).await?;
    let input = read_image_input(state, query, request).await?;
    call.bytes_in = i64::try_from(input.bytes.len()).unwrap_or(i64::MAX);
    let (info, image) = decode_image(state, input.bytes).await?;
    superres::check_size(info.width, info.height).map_err(|err| Failure::new(Code::ImageDataInvalid, err.to_string()))?;
    let model_max_pixels = state.builtins.superres_model_max_pixels;
    let upscaled = state
        .cpu
        .run(move || superres::superresolve(&image, model_max_pixels))
        .await
        .map_err(|err| Failure::new(Code::CpuBusy, err.to_string()))?
        .map_err(|err| Failure::new(Code::ImageDataInvalid, err.to_string()))?;
    let upload = MediaUpload {
        bytes: Bytes::from(upscaled.bytes),
        content_type: upscaled.content_type,
    };
    let record = state.souk.upload_temp_media(&app.appid, IMAGE_TYPE, upload).await?;
    Ok(record.media_id)
}
