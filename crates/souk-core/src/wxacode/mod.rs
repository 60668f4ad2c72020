//! Mini-program codes (`wire.md` §2 rows createQRCode, get, getUnlimited): the domain side. A request
//! is checked ([`rules`]), its page checked against the app's registered pages, counted against the
//! app's lifetime limit when it is of a limited kind (createwxaqrcode and getwxacode share 100,000
//! codes; identical parameters count once), and given a short id. The code then holds the souk URL
//! `<public_url>/souk/v1/codes/<short id>`, which tells whoever scans it what the code points at.
//!
//! Drawing the image is not here (it is CPU work, in `souk-builtins`); [`IssuedCode`] says what to draw.

pub mod rules;

use rand::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use souk_types::Code;

use crate::error::Failure;
use crate::model::App;
use crate::souk::Souk;
use crate::store::codes::{CodeCount, CodeRecord};
use rules::{home_page, is_registered_page, parse_code_request, CodeKind, CodeRequest, CodeTarget};

/// The platform's lifetime limit of codes of the limited kinds per app.
pub const DEFAULT_LIMIT: u64 = 100_000;
/// The path code URLs are served under, after the public URL.
pub const CODES_PATH: &str = "/souk/v1/codes/";
/// Characters of a short id: 12 of base62 (71 bits, unguessable enough for a link anyone who sees
/// the code can read anyway, and short enough for a small code).
const CODE_ID_LEN: usize = 12;
const CODE_ID_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The operator's code settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSettings {
    /// The URL souk is reached at (`public_url`), without a trailing slash.
    pub public_url: String,
    /// Codes of the limited kinds an app may make in its lifetime (45029 past it).
    pub limit: u64,
}

impl CodeSettings {
    /// The defaults (the platform's 100,000) for a souk at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        CodeSettings {
            public_url: public_url.into(),
            limit: DEFAULT_LIMIT,
        }
    }
}

/// A code to draw: its URL and how it looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// The code's short id.
    pub code_id: String,
    /// The text the code holds: `<public_url>/souk/v1/codes/<code_id>`.
    pub url: String,
    /// Side of the square image, pixels.
    pub width: u32,
    /// Colour of the lines: the app's theme colour for `auto_color`, else `line_color`.
    pub color: [u8; 3],
    /// Transparent background.
    pub hyaline: bool,
}

impl Souk {
    /// Enables the code APIs with these settings.
    pub fn with_codes(mut self, mut settings: CodeSettings) -> Self {
        settings.public_url = settings.public_url.trim_end_matches('/').to_owned();
        self.codes = Some(settings);
        self
    }

    /// The code settings, when the code APIs are enabled.
    pub fn code_settings(&self) -> Option<&CodeSettings> {
        self.codes.as_ref()
    }

    /// Checks, counts and names a code `app` asks for with `body` (the raw request body of `kind`'s API).
    pub async fn issue_code(&self, app: &App, kind: CodeKind, body: &[u8]) -> Result<IssuedCode, Failure> {
        let settings = self
            .codes
            .as_ref()
            .ok_or_else(|| Failure::new(Code::SystemError, "mini-program codes are not enabled on this souk"))?;
        let mut request = parse_code_request(kind, body)?;
        resolve_page(app, &mut request)?;
        let record = new_record(app, &request, self.now_ms());
        let record = match self.store.count_code(&record, settings.limit).await {
            Ok(CodeCount::Counted(record) | CodeCount::AlreadyCounted(record)) => record,
            Ok(CodeCount::LimitReached) => {
                return Err(Failure::new(
                    Code::CodeCountOutOfLimit,
                    format!("at most {} codes per app", settings.limit),
                ));
            }
            Err(err) => return Err(Failure::from_store(Code::SystemError, &err)),
        };
        let look = request.look;
        let theme = app.theme_color.as_deref().and_then(parse_hex_color);
        Ok(IssuedCode {
            url: format!("{}{CODES_PATH}{}", settings.public_url, record.code_id),
            code_id: record.code_id,
            width: look.width,
            color: if look.auto_color {
                theme.unwrap_or([0, 0, 0])
            } else {
                look.line_color
            },
            hyaline: look.is_hyaline,
        })
    }

    /// A code by its short id (40066 when there is none).
    pub async fn find_code(&self, code_id: &str) -> Result<CodeRecord, Failure> {
        let looks_right = code_id.len() == CODE_ID_LEN && code_id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !looks_right {
            return Err(Failure::new(Code::CodeNotFound, ""));
        }
        match self.store.get_code(code_id).await {
            Ok(Some(record)) => Ok(record),
            Ok(None) => Err(Failure::new(Code::CodeNotFound, "")),
            Err(err) => Err(Failure::from_store(Code::SystemError, &err)),
        }
    }
}

/// What a code points at, as `GET /souk/v1/codes/{id}` answers it: `{appid, path}` (plus
/// `env_version` for getwxacode) or `{appid, page, scene, env_version}`.
pub fn code_json(record: &CodeRecord) -> Value {
    let mut answer = json!({ "appid": record.appid });
    for (name, value) in [
        ("path", &record.path),
        ("page", &record.page),
        ("scene", &record.scene),
        ("env_version", &record.env_version),
    ] {
        if let Some(value) = value {
            answer[name] = json!(value);
        }
    }
    answer
}

/// getwxacodeunlimit: an omitted page is the home page; with `check_path` the page must be registered.
fn resolve_page(app: &App, request: &mut CodeRequest) -> Result<(), Failure> {
    let CodeTarget::Scene { page, .. } = &mut request.target else {
        return Ok(());
    };
    if page.is_empty() {
        *page = home_page(&app.pages).unwrap_or_default().to_owned();
    }
    if request.check_path && !is_registered_page(&app.pages, page) {
        return Err(Failure::new(
            Code::CodePageInvalid,
            format!("{page:?} is not a registered page of the app"),
        ));
    }
    Ok(())
}

fn new_record(app: &App, request: &CodeRequest, now_ms: i64) -> CodeRecord {
    let (path, page, scene, env_version) = match &request.target {
        CodeTarget::Path { path, env_version } => (Some(path.clone()), None, None, env_version.clone()),
        CodeTarget::Scene { page, scene, env_version } => (None, Some(page.clone()), Some(scene.clone()), Some(env_version.clone())),
    };
    let look = request.look;
    // Every parameter that changes the image: identical requests are one code.
    let params = json!([
        request.kind.as_str(),
        path,
        page,
        scene,
        env_version,
        look.width,
        look.auto_color,
        look.line_color,
        look.is_hyaline
    ]);
    CodeRecord {
        code_id: new_code_id(),
        appid: app.appid.clone(),
        kind: request.kind.as_str().to_owned(),
        params_hash: hex::encode(Sha256::digest(params.to_string().as_bytes())),
        counted: request.kind.is_limited(),
        path,
        page,
        scene,
        env_version,
        created_at_ms: now_ms,
    }
}

fn new_code_id() -> String {
    let mut rng = rand::rng();
    (0..CODE_ID_LEN)
        .map(|_| char::from(CODE_ID_ALPHABET[rng.random_range(0..CODE_ID_ALPHABET.len())]))
        .collect()
}

/// An app's theme colour, `#rrggbb`; `None` when it is not that.
fn parse_hex_color(text: &str) -> Option<[u8; 3]> {
    let hex = text.trim().strip_prefix('#').unwrap_or(text.trim());
    if hex.len() != 6 || !hex.is_ascii() {
        return None;
    }
    let channel = |at: usize| u8::from_str_radix(&hex[at..at + 2], 16).ok();
    Some([channel(0)?, channel(2)?, channel(4)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_colours() {
        assert_eq!(parse_hex_color("#0754B4"), Some([7, 84, 180]));
        assert_eq!(parse_hex_color("ff0000"), Some([255, 0, 0]));
        for bad in ["", "#fff", "#gg0000", "#0754b4ff", "#ééé"] {
            assert_eq!(parse_hex_color(bad), None, "{bad}");
        }
    }

    #[test]
    fn short_ids() {
        let id = new_code_id();
        assert_eq!(id.len(), CODE_ID_LEN);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, new_code_id());
    }

    #[test]
    fn answers_what_a_code_points_at() {
        let record = CodeRecord {
            code_id: "abc".into(),
            appid: "wx1".into(),
            kind: "unlimited".into(),
            params_hash: "h".into(),
            counted: false,
            path: None,
            page: Some("pages/a".into()),
            scene: Some("x=1".into()),
            env_version: Some("release".into()),
            created_at_ms: 0,
        };
        assert_eq!(
            code_json(&record),
            json!({"appid": "wx1", "page": "pages/a", "scene": "x=1", "env_version": "release"})
        );
    }
}
