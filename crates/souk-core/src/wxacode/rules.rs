//! The request rules of the three mini-program code APIs (`wire.md` §2 rows createQRCode, get,
//! getUnlimited; `wechat-wire.md` §6): a body is read into a [`CodeRequest`] or refused with the
//! platform's errcode. Pure: no store, no app (the registered-page check is the caller's, with
//! [`CodeRequest::check_path`]).
//!
//! Decisions where the platform is vague, all documented here once:
//! - an empty body is 44002; a body that is not a JSON object is 40159 (createwxaqrcode, getwxacode)
//!   or 40169 (getwxacodeunlimit), as the platform's messages say ("the data is not json string");
//! - a field of the wrong JSON type (`check_path: "false"`, `width: true`, `path: 1`) is 47001, as the
//!   community observed; `null` means "not given";
//! - `width` may be a whole number or a numeric string (lenient, like `line_color`); out of 280–1280
//!   is 40097;
//! - `line_color` is `{r, g, b}`, each a whole number or numeric string 0–255, a missing component
//!   being 0; anything else is 40097 (wechatpy sends strings, `{"r":"0","g":"0","b":"0"}`);
//! - getwxacode's `path` may be 1024 characters (NEW-DOC), createwxaqrcode's 128 bytes (OLD-DOC and
//!   NEW-DOC agree there);
//! - `scancode_time` is refused (85096) as a query key of `path`, and as a `key=value` key of `scene`.

use serde_json::{Map, Value};
use souk_types::Code;

use crate::error::Failure;

/// The smallest code width, in pixels.
pub const MIN_WIDTH: u32 = 280;
/// The largest code width, in pixels.
pub const MAX_WIDTH: u32 = 1280;
/// The width when none is given, in pixels.
pub const DEFAULT_WIDTH: u32 = 430;
/// createwxaqrcode's longest `path`, in bytes.
pub const QRCODE_PATH_MAX_BYTES: usize = 128;
/// getwxacode's longest `path`, in characters (NEW-DOC; the OLD-DOC said 128 bytes).
pub const GET_PATH_MAX_CHARS: usize = 1024;
/// getwxacodeunlimit's longest `scene`, in characters.
pub const SCENE_MAX_CHARS: usize = 32;
/// The punctuation a `scene` may hold besides `0-9A-Za-z`.
const SCENE_PUNCTUATION: &str = "!#$&'()*+,/:;=?@-._~";
/// The query parameter the platform reserves for itself.
const RESERVED_KEY: &str = "scancode_time";

/// Which API a code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeKind {
    /// `POST /cgi-bin/wxaapp/createwxaqrcode` (interface C): counted.
    QrCode,
    /// `POST /wxa/getwxacode` (interface A): counted.
    Get,
    /// `POST /wxa/getwxacodeunlimit` (interface B): not counted.
    Unlimited,
}

impl CodeKind {
    /// The name kept in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::QrCode => "qrcode",
            CodeKind::Get => "get",
            CodeKind::Unlimited => "unlimited",
        }
    }

    /// Whether codes of this kind count against the app's lifetime limit (45029).
    pub fn is_limited(self) -> bool {
        !matches!(self, CodeKind::Unlimited)
    }

    /// The errcode of a body that is not a JSON object.
    fn not_json(self) -> Code {
        match self {
            CodeKind::QrCode | CodeKind::Get => Code::CodePathInvalid,
            CodeKind::Unlimited => Code::CodeSceneLength,
        }
    }
}

/// What a code points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CodeTarget {
    /// A page with its query (createwxaqrcode, getwxacode).
    Path {
        /// The page and query, as given.
        path: String,
        /// `release`, `trial` or `develop` (getwxacode only).
        env_version: Option<String>,
    },
    /// A page and a scene (getwxacodeunlimit).
    Scene {
        /// The page, empty for the app's home page.
        page: String,
        /// The scene.
        scene: String,
        /// `release`, `trial` or `develop`.
        env_version: String,
    },
}

/// How a code is drawn, as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeLook {
    /// Side of the square image, pixels.
    pub width: u32,
    /// Use the app's theme colour.
    pub auto_color: bool,
    /// The colour of the lines when not `auto_color`.
    pub line_color: [u8; 3],
    /// Transparent background.
    pub is_hyaline: bool,
}

impl Default for CodeLook {
    fn default() -> Self {
        CodeLook {
            width: DEFAULT_WIDTH,
            auto_color: false,
            line_color: [0, 0, 0],
            is_hyaline: false,
        }
    }
}

/// A valid code request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeRequest {
    /// The API.
    pub kind: CodeKind,
    /// What the code points at.
    pub target: CodeTarget,
    /// How it is drawn.
    pub look: CodeLook,
    /// getwxacodeunlimit: the page must be one of the app's registered pages.
    pub check_path: bool,
}

/// Reads and checks a body of one of the three APIs.
pub fn parse_code_request(kind: CodeKind, body: &[u8]) -> Result<CodeRequest, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Failure::new(Code::EmptyPostData, ""));
    }
    let fields = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => fields,
        _ => return Err(Failure::new(kind.not_json(), "the body is not a json object")),
    };
    let fields = Fields(&fields);
    let width = fields.width()?;
    match kind {
        CodeKind::QrCode => {
            let path = fields.string("path")?.unwrap_or_default();
            check_path(&path, path.len() <= QRCODE_PATH_MAX_BYTES, "1 to 128 bytes")?;
            let look = CodeLook {
                width,
                ..CodeLook::default()
            };
            Ok(CodeRequest {
                kind,
                target: CodeTarget::Path { path, env_version: None },
                look,
                check_path: false,
            })
        }
        CodeKind::Get => {
            let path = fields.string("path")?.unwrap_or_default();
            check_path(&path, path.chars().count() <= GET_PATH_MAX_CHARS, "1 to 1024 characters")?;
            let look = fields.look(width)?;
            let env_version = Some(fields.env_version()?);
            Ok(CodeRequest {
                kind,
                target: CodeTarget::Path { path, env_version },
                look,
                check_path: false,
            })
        }
        CodeKind::Unlimited => {
            let scene = fields.string("scene")?.unwrap_or_default();
            check_scene(&scene)?;
            let page = fields.string("page")?.unwrap_or_default();
            if page.starts_with('/') || page.contains('?') {
                return Err(Failure::new(Code::CodePageInvalid, "page has a leading / or a query"));
            }
            let check_path = fields.bool("check_path")?.unwrap_or(true);
            let look = fields.look(width)?;
            let env_version = fields.env_version()?;
            Ok(CodeRequest {
                kind,
                target: CodeTarget::Scene { page, scene, env_version },
                look,
                check_path,
            })
        }
    }
}

/// Whether `page` is one of the app's registered pages (registered with or without a leading `/`).
pub fn is_registered_page(pages: &[String], page: &str) -> bool {
    pages.iter().any(|registered| registered.trim_start_matches('/') == page)
}

/// The app's home page: its first registered page, without a leading `/`.
pub fn home_page(pages: &[String]) -> Option<&str> {
    pages.first().map(|page| page.trim_start_matches('/'))
}

fn check_path(path: &str, short_enough: bool, limit: &str) -> Result<(), Failure> {
    if path.is_empty() || !short_enough {
        return Err(Failure::new(Code::CodePathInvalid, format!("path must be {limit}")));
    }
    let query = path.split_once('?').map_or("", |(_, query)| query);
    if query.split('&').any(|pair| pair.split('=').next() == Some(RESERVED_KEY)) {
        return Err(Failure::new(Code::CodeScancodeTime, ""));
    }
    Ok(())
}

fn check_scene(scene: &str) -> Result<(), Failure> {
    let length = scene.chars().count();
    if length == 0 || length > SCENE_MAX_CHARS {
        return Err(Failure::new(Code::CodeSceneLength, "scene must be 1 to 32 characters"));
    }
    if let Some(bad) = scene
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !SCENE_PUNCTUATION.contains(*c))
    {
        return Err(Failure::new(Code::CodeSceneInvalid, format!("scene may not hold {bad:?}")));
    }
    if scene.split('&').any(|pair| pair.split('=').next() == Some(RESERVED_KEY)) {
        return Err(Failure::new(Code::CodeScancodeTime, ""));
    }
    Ok(())
}

/// A body's fields, read with the type rules of the module docs.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    fn string(&self, name: &str) -> Result<Option<String>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(wrong_type(name, "a string")),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(wrong_type(name, "a boolean")),
        }
    }

    fn width(&self) -> Result<u32, Failure> {
        let Some(value) = self.get("width") else {
            return Ok(DEFAULT_WIDTH);
        };
        if !(value.is_number() || value.is_string()) {
            return Err(wrong_type("width", "a number"));
        }
        whole_number(value)
            .and_then(|width| u32::try_from(width).ok())
            .filter(|width| (MIN_WIDTH..=MAX_WIDTH).contains(width))
            .ok_or_else(|| Failure::new(Code::CodeInvalidArgs, "width must be a whole number from 280 to 1280"))
    }

    fn look(&self, width: u32) -> Result<CodeLook, Failure> {
        let line_color = match self.get("line_color") {
            None => [0, 0, 0],
            Some(value) => {
                line_color(value).ok_or_else(|| Failure::new(Code::CodeInvalidArgs, "line_color must be {r, g, b} of 0 to 255"))?
            }
        };
        Ok(CodeLook {
            width,
            auto_color: self.bool("auto_color")?.unwrap_or(false),
            line_color,
            is_hyaline: self.bool("is_hyaline")?.unwrap_or(false),
        })
    }

    fn env_version(&self) -> Result<String, Failure> {
        let version = self.string("env_version")?.unwrap_or_else(|| "release".to_owned());
        if !matches!(version.as_str(), "release" | "trial" | "develop") {
            return Err(Failure::new(Code::CodeInvalidArgs, "env_version must be release, trial or develop"));
        }
        Ok(version)
    }
}

fn wrong_type(name: &str, expected: &str) -> Failure {
    Failure::new(Code::DataFormatError, format!("{name} must be {expected}"))
}

/// A JSON number or numeric string that is a whole number.
fn whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64)),
        Value::String(text) => text.trim().parse::<i64>().ok(),
        _ => None,
    }
}

fn line_color(value: &Value) -> Option<[u8; 3]> {
    let fields = value.as_object()?;
    let channel = |name: &str| match fields.get(name) {
        None | Some(Value::Null) => Some(0),
        Some(value) => whole_number(value).and_then(|n| u8::try_from(n).ok()),
    };
    Some([channel("r")?, channel("g")?, channel("b")?])
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
