//! Tests of the upstream request: context parameters, encoding, and the §3 signature vectors through
//! the builder.

use serde_json::json;
use souk_types::cloud::parse_request;

use super::*;

const BODY: &[u8] = br#"{"xftest":"hhh","id":"1234"}"#;
const NOW_MS: i64 = 1_367_819_523_000; // 2013-05-06 13:52:03 in UTC+8

fn cloud_app(sign_method: SignMethod) -> CloudApp {
    CloudApp {
        cloud_app_id: "1000000000000001".into(),
        appid: "3000000012345678".into(),
        app_key: "12345678".into(),
        secret: "testsecret".into(),
        env: "online".into(),
        whitelist: vec!["https://www.taobao.com".into()],
        sign_method,
        disabled: false,
        created_at_ms: 0,
    }
}

fn caller() -> CloudCaller {
    CloudCaller {
        appid: "3000000012345678".into(),
        openid: Some("AAHk5d-test-openid".into()),
        user_nick: Some("tb_user".into()),
    }
}

/// The seed's example call (`{"name":"hanruo","action":"test"}`, body `{"xftest":"hhh","id":"1234"}`).
fn request(method: &str, extra_params: serde_json::Value) -> CloudRequest {
    let mut params = json!({"name": "hanruo", "action": "test"});
    for (key, value) in extra_params.as_object().unwrap() {
        params[key] = value.clone();
    }
    let body = (method == "POST").then(|| json!({"xftest": "hhh", "id": "1234"}));
    let mut request = json!({
        "path": "/welcome",
        "method": method,
        "params": params,
        "exts": {"cloudAppId": "1000000000000001", "domain": "https://www.taobao.com", "timeout": 4000}
    });
    if let Some(body) = body {
        request["body"] = body;
    }
    let mut request = parse_request(request.to_string().as_bytes()).unwrap();
    if request.body.is_some() {
        // The parser writes objects with sorted keys; the vectors keep the seed's key order.
        request.body = Some(BODY.to_vec());
    }
    request
}

fn vector_context() -> Context<'static> {
    // No request id: the vectors predate it (an empty value is left out, like any other).
    Context {
        request_id: "",
        now_ms: NOW_MS,
        mix_nick: Some("t01abcMixNick"),
    }
}

/// The builder's parameters minus the ones the §3 vectors do not have, signed by the builder.
fn vector_signature(sign_method: SignMethod, method: &str) -> String {
    let app = cloud_app(sign_method);
    let request = request(method, json!({}));
    let mut params = unsigned_params(&app, &caller(), &request, &vector_context());
    params.retain(|(name, _)| name != "timestamp" && name != "sign_method");
    let body = (method == "POST").then_some(BODY);
    add_signature(&app, body, &mut params);
    params.pop().unwrap().1
}

#[test]
fn signatures_match_the_section_3_vectors() {
    assert_eq!(vector_signature(SignMethod::Md5, "POST"), "26E9C1E0588E9844E56DE8C835053583");
    assert_eq!(vector_signature(SignMethod::Md5, "GET"), "8E3C507A81096DDD2404F010840FDD37");
    assert_eq!(vector_signature(SignMethod::Hmac, "POST"), "BBB9FE23B3B7532A9C9EC809BD71E884");
    assert_eq!(
        vector_signature(SignMethod::HmacSha256, "POST"),
        "9F9D56B48F7D0AA7C88CABB8566EF802FDD133401E1306269CE690CEB09C3EF6"
    );
}

/// Decodes the URL's query strictly (percent-decoding only) and form-style; they must agree.
fn query_of(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').unwrap().1;
    let form: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let strict: Vec<(String, String)> = query
        .split('&')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            let decode = |text: &str| percent_encoding::percent_decode_str(text).decode_utf8().unwrap().into_owned();
            (decode(key), decode(value))
        })
        .collect();
    assert_eq!(form, strict, "no form-only encoding ('+') is used");
    form
}

fn value<'a>(params: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
}

#[test]
fn the_url_carries_context_parameters_and_verifies() {
    let app = cloud_app(SignMethod::Md5);
    let request = request(
        "POST",
        json!({"open_id": "forged", "sign": "x", "mix_nick": "m", "user_id": "1", "q": "a b+c=d&e/é"}),
    );
    let context = Context {
        request_id: "rid-1",
        now_ms: NOW_MS,
        mix_nick: Some("t01abcMixNick"),
    };
    let upstream = upstream_request(&app, &caller(), &request, &context);
    assert_eq!(upstream.origin, "https://www.taobao.com");
    assert!(upstream.url.starts_with("https://www.taobao.com/welcome?"), "{}", upstream.url);
    assert!(upstream.url.contains("q=a%20b%2Bc%3Dd%26e%2F%C3%A9"), "{}", upstream.url);
    assert!(upstream.url.contains("timestamp=2013-05-06%2013%3A52%3A03"), "{}", upstream.url);
    assert_eq!(upstream.body.as_deref(), Some(BODY));
    assert_eq!(upstream.timeout, Duration::from_millis(4000));
    assert_eq!(upstream.method, CloudMethod::Post);

    let params = query_of(&upstream.url);
    assert_eq!(
        value(&params, "open_id"),
        ["AAHk5d-test-openid"],
        "the caller's open_id is dropped, souk's sent"
    );
    assert_eq!(value(&params, "mix_nick"), ["t01abcMixNick"]);
    assert_eq!(
        value(&params, "user_id"),
        Vec::<&str>::new(),
        "a reserved name is dropped even without a value"
    );
    assert_eq!(value(&params, "sign").len(), 1);
    assert_eq!(value(&params, "mini_app_id"), ["3000000012345678"]);
    assert_eq!(value(&params, "app_key"), ["12345678"]);
    assert_eq!(value(&params, "env"), ["online"]);
    assert_eq!(value(&params, "request_id"), ["rid-1"]);
    assert_eq!(value(&params, "user_nick"), ["tb_user"]);
    assert_eq!(value(&params, "sign_method"), Vec::<&str>::new(), "md5 is not announced");
    assert_eq!(value(&params, "q"), ["a b+c=d&e/é"]);
    let given = value(&params, "sign")[0];
    assert!(sign::verify(SignMethod::Md5, "testsecret", &params, Some(BODY), given));
    assert!(!sign::verify(SignMethod::Md5, "testsecret", &params, Some(b"{}"), given));
}

#[test]
fn empty_values_are_left_out_and_other_methods_announced() {
    let app = cloud_app(SignMethod::HmacSha256);
    let server_caller = CloudCaller::for_app("3000000012345678");
    let request = request("GET", json!({"open_id": "forged"}));
    let context = Context {
        request_id: "rid",
        now_ms: NOW_MS,
        mix_nick: None,
    };
    let upstream = upstream_request(&app, &server_caller, &request, &context);
    assert_eq!(upstream.body, None);
    let params = query_of(&upstream.url);
    for absent in ["open_id", "mix_nick", "user_nick"] {
        assert!(value(&params, absent).is_empty(), "{absent} has no value and is not sent");
    }
    assert!(params.iter().all(|(_, v)| !v.is_empty()));
    assert_eq!(value(&params, "sign_method"), ["hmac-sha256"]);
    let given = value(&params, "sign")[0];
    assert!(sign::verify(SignMethod::HmacSha256, "testsecret", &params, None, given));
}

#[test]
fn mix_nicks_are_stable_per_app_and_hide_the_openid() {
    let key = b"0123456789abcdef0123456789abcdef";
    let nick = mix_nick(key, "wxa", "o-user-1");
    assert!(nick.starts_with("t01") && nick.len() == 3 + MIX_NICK_LEN, "{nick}");
    assert!(nick.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert!(!nick.contains("o-user-1"));
    assert_eq!(nick, mix_nick(key, "wxa", "o-user-1"), "stable");
    assert_ne!(nick, mix_nick(key, "wxb", "o-user-1"), "per app");
    assert_ne!(nick, mix_nick(key, "wxa", "o-user-2"), "per user");
    assert_ne!(nick, mix_nick(b"another key", "wxa", "o-user-1"), "per server key");
    // Length prefixes: moving a character between appid and openid changes the pseudonym.
    assert_ne!(mix_nick(key, "wxa1", "2"), mix_nick(key, "wxa", "12"));
}
