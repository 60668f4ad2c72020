//! Customer-service messages on the wire (`wire.md` §2 rows "custom send" and "typing", §4 `messages`;
//! `wechat-wire.md` §5.1–§5.2): the bodies apps and users send, parsed strictly with a message that
//! names the field at fault, and the one JSON shape a message has in storage, in history and on the
//! client stream.
//!
//! What needs the store (does the media exist, is the page registered, is the user there) is the
//! domain's; this module checks shapes and lengths only.

use serde_json::{json, Map, Value};

use crate::market::BadRequest;
use crate::Code;

/// The longest text message, in UTF-8 bytes (the platform's 2048-byte limit for text).
pub const MAX_TEXT_BYTES: usize = 2048;
/// The longest link or mini-program card title, in characters (souk's choice: the platform shows
/// about this much and documents no number).
pub const MAX_TITLE_CHARS: usize = 64;
/// The longest link description, in characters (souk's choice, as for titles).
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// The longest URL (link `url`, `thumb_url`), in bytes.
pub const MAX_URL_BYTES: usize = 1024;
/// The longest `pagepath`, in bytes (as a code's path: 128).
pub const MAX_PAGEPATH_BYTES: usize = 128;
/// The one event a user sends: they opened the customer-service chat.
pub const USER_ENTER_EVENT: &str = "user_enter_tempsession";

/// What a message says: one of the kinds of `wechat-wire.md` §5.1, or the user's "entered" event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageContent {
    /// `{msgtype: "text", text: {content}}`.
    Text {
        /// The text.
        content: String,
    },
    /// `{msgtype: "image", image: {media_id}}`: a temp media id of the app.
    Image {
        /// The media id.
        media_id: String,
    },
    /// `{msgtype: "link", link: {title, description, url, thumb_url}}` (app to user only).
    Link {
        /// Title.
        title: String,
        /// Description (may be empty).
        description: String,
        /// Where it leads (http or https).
        url: String,
        /// Its picture (http or https).
        thumb_url: String,
    },
    /// `{msgtype: "miniprogrampage", miniprogrampage: {title, pagepath, thumb_media_id}}`.
    MiniProgramPage {
        /// Title.
        title: String,
        /// A registered page of the app, with an optional query.
        pagepath: String,
        /// The card's picture: a temp media id of the app.
        thumb_media_id: String,
    },
    /// `{msgtype: "event", event: "user_enter_tempsession"}` (user to app only).
    Event {
        /// The event's name.
        event: String,
    },
}

impl MessageContent {
    /// The `msgtype`.
    pub fn msgtype(&self) -> &'static str {
        match self {
            MessageContent::Text { .. } => "text",
            MessageContent::Image { .. } => "image",
            MessageContent::Link { .. } => "link",
            MessageContent::MiniProgramPage { .. } => "miniprogrampage",
            MessageContent::Event { .. } => "event",
        }
    }

    /// The message in the shape it was sent in (`custom/send` without `touser`), as stored and as the
    /// client API shows it.
    pub fn to_json(&self) -> Value {
        match self {
            MessageContent::Text { content } => json!({"msgtype": "text", "text": {"content": content}}),
            MessageContent::Image { media_id } => json!({"msgtype": "image", "image": {"media_id": media_id}}),
            MessageContent::Link {
                title,
                description,
                url,
                thumb_url,
            } => json!({"msgtype": "link", "link": {"title": title, "description": description, "url": url, "thumb_url": thumb_url}}),
            MessageContent::MiniProgramPage {
                title,
                pagepath,
                thumb_media_id,
            } => {
                json!({"msgtype": "miniprogrampage", "miniprogrampage": {"title": title, "pagepath": pagepath, "thumb_media_id": thumb_media_id}})
            }
            MessageContent::Event { event } => json!({"msgtype": "event", "event": event}),
        }
    }

    /// Reads back what [`MessageContent::to_json`] wrote (any kind, no rule checked).
    pub fn from_json(value: &Value) -> Option<MessageContent> {
        let field = |object: &str, name: &str| value.get(object)?.get(name)?.as_str().map(str::to_owned);
        Some(match value.get("msgtype")?.as_str()? {
            "text" => MessageContent::Text {
                content: field("text", "content")?,
            },
            "image" => MessageContent::Image {
                media_id: field("image", "media_id")?,
            },
            "link" => MessageContent::Link {
                title: field("link", "title")?,
                description: field("link", "description")?,
                url: field("link", "url")?,
                thumb_url: field("link", "thumb_url")?,
            },
            "miniprogrampage" => MessageContent::MiniProgramPage {
                title: field("miniprogrampage", "title")?,
                pagepath: field("miniprogrampage", "pagepath")?,
                thumb_media_id: field("miniprogrampage", "thumb_media_id")?,
            },
            "event" => MessageContent::Event {
                event: value.get("event")?.as_str()?.to_owned(),
            },
            _ => return None,
        })
    }
}

/// `POST /cgi-bin/message/custom/send` `{touser, msgtype, ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomSend {
    /// The user's openid.
    pub touser: String,
    /// The message.
    pub content: MessageContent,
}

/// The two typing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypingCommand {
    /// `Typing`: show "typing..." to the user.
    Typing,
    /// `CancelTyping`: stop showing it.
    CancelTyping,
}

/// `POST /cgi-bin/message/custom/typing` `{touser, command}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypingRequest {
    /// The user's openid.
    pub touser: String,
    /// The command.
    pub command: TypingCommand,
}

fn bad(code: Code, detail: impl Into<String>) -> BadRequest {
    BadRequest {
        code,
        detail: detail.into(),
    }
}

fn object(body: &[u8]) -> Result<Map<String, Value>, BadRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(Code::EmptyPostData, "the request body is empty"));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(bad(Code::DataFormatError, "the body must be a JSON object")),
        Err(err) => Err(bad(Code::DataFormatError, format!("the body is not JSON: {err}"))),
    }
}

/// A string field of `object` (named `path` in messages): `None` when absent or null.
fn optional_text(object: &Map<String, Value>, name: &str, path: &str) -> Result<Option<String>, BadRequest> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(bad(Code::DataFormatError, format!("{path} must be a string"))),
    }
}

/// A required string field; missing is `missing_code`.
fn required_text(object: &Map<String, Value>, name: &str, path: &str, missing_code: Code) -> Result<String, BadRequest> {
    optional_text(object, name, path)?.ok_or_else(|| bad(missing_code, format!("{path} is missing")))
}

/// The object named `msgtype` inside the body (`text: {...}`, ...).
fn inner<'a>(fields: &'a Map<String, Value>, msgtype: &str) -> Result<&'a Map<String, Value>, BadRequest> {
    match fields.get(msgtype) {
        Some(Value::Object(object)) => Ok(object),
        None | Some(Value::Null) => Err(bad(Code::DataFormatError, format!("{msgtype} is missing"))),
        Some(_) => Err(bad(Code::DataFormatError, format!("{msgtype} must be an object"))),
    }
}

fn check_title(title: &str, path: &str) -> Result<(), BadRequest> {
    if title.trim().is_empty() {
        return Err(bad(Code::DataFormatError, format!("{path} is empty")));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(bad(
            Code::MessageContentTooLong,
            format!("{path} is longer than {MAX_TITLE_CHARS} characters"),
        ));
    }
    Ok(())
}

fn check_url(url: &str, path: &str) -> Result<(), BadRequest> {
    if url.len() > MAX_URL_BYTES {
        return Err(bad(
            Code::MessageContentTooLong,
            format!("{path} is longer than {MAX_URL_BYTES} bytes"),
        ));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(bad(Code::DataFormatError, format!("{path} must be an http or https URL")));
    };
    if rest.is_empty() || rest.starts_with('/') || url.chars().any(char::is_whitespace) {
        return Err(bad(
            Code::DataFormatError,
            format!("{path} must be an http or https URL with a host"),
        ));
    }
    Ok(())
}

fn parse_text(fields: &Map<String, Value>) -> Result<MessageContent, BadRequest> {
    let text = inner(fields, "text")?;
    let content = required_text(text, "content", "text.content", Code::MessageContentEmpty)?;
    if content.is_empty() {
        return Err(bad(Code::MessageContentEmpty, "text.content is empty"));
    }
    if content.len() > MAX_TEXT_BYTES {
        return Err(bad(
            Code::MessageContentTooLong,
            format!("text.content is {} bytes, more than {MAX_TEXT_BYTES}", content.len()),
        ));
    }
    Ok(MessageContent::Text { content })
}

fn parse_image(fields: &Map<String, Value>) -> Result<MessageContent, BadRequest> {
    let image = inner(fields, "image")?;
    let media_id = required_text(image, "media_id", "image.media_id", Code::MediaIdInvalid)?;
    if media_id.is_empty() {
        return Err(bad(Code::MediaIdInvalid, "image.media_id is empty"));
    }
    Ok(MessageContent::Image { media_id })
}

fn parse_link(fields: &Map<String, Value>) -> Result<MessageContent, BadRequest> {
    let link = inner(fields, "link")?;
    let title = required_text(link, "title", "link.title", Code::DataFormatError)?;
    check_title(&title, "link.title")?;
    let description = required_text(link, "description", "link.description", Code::DataFormatError)?;
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(bad(
            Code::MessageContentTooLong,
            format!("link.description is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    let url = required_text(link, "url", "link.url", Code::DataFormatError)?;
    check_url(&url, "link.url")?;
    let thumb_url = required_text(link, "thumb_url", "link.thumb_url", Code::DataFormatError)?;
    check_url(&thumb_url, "link.thumb_url")?;
    Ok(MessageContent::Link {
        title,
        description,
        url,
        thumb_url,
    })
}

fn parse_card(fields: &Map<String, Value>) -> Result<MessageContent, BadRequest> {
    let card = inner(fields, "miniprogrampage")?;
    let title = required_text(card, "title", "miniprogrampage.title", Code::DataFormatError)?;
    check_title(&title, "miniprogrampage.title")?;
    let pagepath = required_text(card, "pagepath", "miniprogrampage.pagepath", Code::MessagePagepathInvalid)?;
    if pagepath.is_empty() || pagepath.len() > MAX_PAGEPATH_BYTES {
        return Err(bad(
            Code::MessagePagepathInvalid,
            format!("miniprogrampage.pagepath must be 1 to {MAX_PAGEPATH_BYTES} bytes"),
        ));
    }
    let thumb_media_id = required_text(card, "thumb_media_id", "miniprogrampage.thumb_media_id", Code::MediaIdInvalid)?;
    if thumb_media_id.is_empty() {
        return Err(bad(Code::MediaIdInvalid, "miniprogrampage.thumb_media_id is empty"));
    }
    Ok(MessageContent::MiniProgramPage {
        title,
        pagepath,
        thumb_media_id,
    })
}

/// The `msgtype` and its object, for the kinds `allowed` lists.
fn parse_content(fields: &Map<String, Value>, allowed: &[&str]) -> Result<MessageContent, BadRequest> {
    let msgtype = optional_text(fields, "msgtype", "msgtype")?.ok_or_else(|| {
        bad(
            Code::MessageTypeInvalid,
            format!("msgtype is missing (one of {})", allowed.join(", ")),
        )
    })?;
    if !allowed.contains(&msgtype.as_str()) {
        return Err(bad(
            Code::MessageTypeInvalid,
            format!("msgtype {msgtype:?} is not one of {}", allowed.join(", ")),
        ));
    }
    match msgtype.as_str() {
        "text" => parse_text(fields),
        "image" => parse_image(fields),
        "link" => parse_link(fields),
        "miniprogrampage" => parse_card(fields),
        _ => {
            let event = optional_text(fields, "event", "event")?.unwrap_or_default();
            if event != USER_ENTER_EVENT {
                return Err(bad(Code::MessageTypeInvalid, format!("event {event:?} is not {USER_ENTER_EVENT}")));
            }
            Ok(MessageContent::Event { event })
        }
    }
}

/// The openid a body names in `touser` (missing or empty: 40003).
fn touser(fields: &Map<String, Value>) -> Result<String, BadRequest> {
    optional_text(fields, "touser", "touser")?
        .filter(|openid| !openid.is_empty())
        .ok_or_else(|| bad(Code::InvalidOpenid, "touser is missing"))
}

/// Parses a `custom/send` body. Fields souk does not use (`customservice`, ...) are ignored, as
/// SDKs add them.
pub fn parse_custom_send(body: &[u8]) -> Result<CustomSend, BadRequest> {
    let fields = object(body)?;
    let touser = touser(&fields)?;
    let content = parse_content(&fields, &["text", "image", "link", "miniprogrampage"])?;
    Ok(CustomSend { touser, content })
}

/// Parses a user's `POST messages` body (the `custom/send` shape without `touser`; `link` is the
/// app's only, `event` the user's).
pub fn parse_user_message(body: &[u8]) -> Result<MessageContent, BadRequest> {
    let fields = object(body)?;
    parse_content(&fields, &["text", "image", "miniprogrampage", "event"])
}

/// Parses a `custom/typing` body: `command` other than `Typing` or `CancelTyping` is 45072.
pub fn parse_typing(body: &[u8]) -> Result<TypingRequest, BadRequest> {
    let fields = object(body)?;
    let touser = touser(&fields)?;
    let command = match optional_text(&fields, "command", "command") {
        Ok(Some(command)) if command == "Typing" => TypingCommand::Typing,
        Ok(Some(command)) if command == "CancelTyping" => TypingCommand::CancelTyping,
        Ok(Some(command)) => {
            return Err(bad(
                Code::TypingCommandInvalid,
                format!("command {command:?} is not Typing or CancelTyping"),
            ))
        }
        Ok(None) | Err(_) => return Err(bad(Code::TypingCommandInvalid, "command must be Typing or CancelTyping")),
    };
    Ok(TypingRequest { touser, command })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_code(body: Value) -> Code {
        parse_custom_send(body.to_string().as_bytes()).unwrap_err().code
    }

    #[test]
    fn every_kind_round_trips() {
        let bodies = [
            json!({"msgtype": "text", "text": {"content": "你好"}}),
            json!({"msgtype": "image", "image": {"media_id": "m1"}}),
            json!({"msgtype": "link", "link": {"title": "t", "description": "", "url": "https://a.example/x", "thumb_url": "http://a.example/t.png"}}),
            json!({"msgtype": "miniprogrampage", "miniprogrampage": {"title": "t", "pagepath": "pages/index?a=1", "thumb_media_id": "m2"}}),
        ];
        for body in bodies {
            let mut with_user = body.clone();
            with_user["touser"] = json!("o1");
            with_user["customservice"] = json!({"kf_account": "x"});
            let parsed = parse_custom_send(with_user.to_string().as_bytes()).unwrap();
            assert_eq!(parsed.touser, "o1");
            assert_eq!(parsed.content.to_json(), body);
            assert_eq!(MessageContent::from_json(&body), Some(parsed.content));
        }
        let event = parse_user_message(br#"{"msgtype":"event","event":"user_enter_tempsession"}"#).unwrap();
        assert_eq!(MessageContent::from_json(&event.to_json()), Some(event));
    }

    #[test]
    fn each_field_has_its_code() {
        assert_eq!(parse_custom_send(b"  ").unwrap_err().code, Code::EmptyPostData);
        assert_eq!(parse_custom_send(b"{").unwrap_err().code, Code::DataFormatError);
        assert_eq!(send_code(json!({"msgtype": "text", "text": {"content": "x"}})), Code::InvalidOpenid);
        assert_eq!(send_code(json!({"touser": "o", "msgtype": "voice"})), Code::MessageTypeInvalid);
        assert_eq!(send_code(json!({"touser": "o"})), Code::MessageTypeInvalid);
        assert_eq!(send_code(json!({"touser": "o", "msgtype": "text"})), Code::DataFormatError);
        assert_eq!(
            send_code(json!({"touser": "o", "msgtype": "text", "text": {"content": ""}})),
            Code::MessageContentEmpty
        );
        assert_eq!(
            send_code(json!({"touser": "o", "msgtype": "text", "text": {"content": 5}})),
            Code::DataFormatError
        );
        let long = "好".repeat(MAX_TEXT_BYTES / 3 + 1);
        assert_eq!(
            send_code(json!({"touser": "o", "msgtype": "text", "text": {"content": long}})),
            Code::MessageContentTooLong
        );
        assert_eq!(
            send_code(json!({"touser": "o", "msgtype": "image", "image": {}})),
            Code::MediaIdInvalid
        );
        let link = |url: &str| json!({"touser": "o", "msgtype": "link", "link": {"title": "t", "description": "d", "url": url, "thumb_url": "https://a.example/t"}});
        assert_eq!(send_code(link("ftp://a.example")), Code::DataFormatError);
        assert_eq!(send_code(link("https://")), Code::DataFormatError);
        assert_eq!(
            send_code(link(&format!("https://a.example/{}", "x".repeat(MAX_URL_BYTES)))),
            Code::MessageContentTooLong
        );
        let card = |title: &str, page: &str| json!({"touser": "o", "msgtype": "miniprogrampage", "miniprogrampage": {"title": title, "pagepath": page, "thumb_media_id": "m"}});
        assert_eq!(send_code(card("", "pages/a")), Code::DataFormatError);
        assert_eq!(
            send_code(card(&"t".repeat(MAX_TITLE_CHARS + 1), "pages/a")),
            Code::MessageContentTooLong
        );
        assert_eq!(send_code(card("t", "")), Code::MessagePagepathInvalid);
        assert_eq!(
            parse_user_message(br#"{"msgtype":"link","link":{}}"#).unwrap_err().code,
            Code::MessageTypeInvalid,
            "users send no links"
        );
        assert_eq!(
            parse_user_message(br#"{"msgtype":"event","event":"x"}"#).unwrap_err().code,
            Code::MessageTypeInvalid
        );
    }

    #[test]
    fn typing_commands() {
        let typing = parse_typing(br#"{"touser":"o","command":"Typing"}"#).unwrap();
        assert_eq!(typing.command, TypingCommand::Typing);
        let cancel = parse_typing(br#"{"touser":"o","command":"CancelTyping"}"#).unwrap();
        assert_eq!(cancel.command, TypingCommand::CancelTyping);
        for bad in [
            r#"{"touser":"o","command":"typing"}"#,
            r#"{"touser":"o"}"#,
            r#"{"touser":"o","command":1}"#,
        ] {
            assert_eq!(parse_typing(bad.as_bytes()).unwrap_err().code, Code::TypingCommandInvalid, "{bad}");
        }
        assert_eq!(parse_typing(br#"{"command":"Typing"}"#).unwrap_err().code, Code::InvalidOpenid);
    }
}
