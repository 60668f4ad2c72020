//! The request rules, one line a case: a body and the errcode it earns (0: accepted).

use super::*;

fn check(kind: CodeKind, body: &str, errcode: i64) {
    let got = match parse_code_request(kind, body.as_bytes()) {
        Ok(_) => 0,
        Err(failure) => failure.code.errcode(),
    };
    assert_eq!(got, errcode, "{kind:?} {body}");
}

#[test]
fn createwxaqrcode() {
    use CodeKind::QrCode as K;
    check(K, r#"{"path":"pages/index?x=1","width":430}"#, 0);
    check(K, r#"{"path":"?foo=bar"}"#, 0);
    check(K, "", 44002);
    check(K, "  \n", 44002);
    check(K, "not json", 40159);
    check(K, "[1]", 40159);
    check(K, r#"{"path":""}"#, 40159);
    check(K, r#"{"width":430}"#, 40159);
    check(K, &format!(r#"{{"path":"{}"}}"#, "a".repeat(128)), 0);
    check(K, &format!(r#"{{"path":"{}"}}"#, "a".repeat(129)), 40159);
    // 43 three-byte characters: 129 bytes.
    check(K, &format!(r#"{{"path":"{}"}}"#, "页".repeat(43)), 40159);
    check(K, r#"{"path":"pages/a?scancode_time=1"}"#, 85096);
    check(K, r#"{"path":"pages/a?x=1&scancode_time"}"#, 85096);
    check(K, r#"{"path":"pages/a?my_scancode_time=1"}"#, 0);
    check(K, r#"{"path":"pages/a","width":279}"#, 40097);
    check(K, r#"{"path":"pages/a","width":1281}"#, 40097);
    check(K, r#"{"path":"pages/a","width":"500"}"#, 0);
    check(K, r#"{"path":"pages/a","width":430.5}"#, 40097);
    check(K, r#"{"path":"pages/a","width":true}"#, 47001);
    check(K, r#"{"path":7}"#, 47001);
}

#[test]
fn getwxacode() {
    use CodeKind::Get as K;
    // wechatpy's shape: every field, line_color as strings.
    check(
        K,
        r#"{"path":"pages/a","width":430,"auto_color":false,"line_color":{"r":"0","g":"0","b":"0"},"is_hyaline":false}"#,
        0,
    );
    check(
        K,
        r#"{"path":"pages/a","line_color":{"r":255,"g":"128","b":0},"env_version":"trial"}"#,
        0,
    );
    check(K, &format!(r#"{{"path":"{}"}}"#, "a".repeat(1024)), 0);
    check(K, &format!(r#"{{"path":"{}"}}"#, "a".repeat(1025)), 40159);
    check(K, r#"{"path":""}"#, 40159);
    check(K, "{", 40159);
    check(K, r#"{"path":"a?scancode_time=2"}"#, 85096);
    check(K, r#"{"path":"a","line_color":{"r":256,"g":0,"b":0}}"#, 40097);
    check(K, r#"{"path":"a","line_color":{"r":"-1","g":0,"b":0}}"#, 40097);
    check(K, r#"{"path":"a","line_color":{"r":"red","g":0,"b":0}}"#, 40097);
    check(K, r##"{"path":"a","line_color":"#ff0000"}"##, 40097);
    check(K, r#"{"path":"a","env_version":"beta"}"#, 40097);
    check(K, r#"{"path":"a","env_version":1}"#, 47001);
    check(K, r#"{"path":"a","auto_color":"false"}"#, 47001);
    check(K, r#"{"path":"a","is_hyaline":1}"#, 47001);
    check(K, r#"{"path":"a","width":2000}"#, 40097);
}

#[test]
fn getwxacodeunlimit() {
    use CodeKind::Unlimited as K;
    check(K, r#"{"scene":"a=1&b=2","page":"pages/index/index"}"#, 0);
    check(K, r#"{"scene":"0-9A-Za-z!#$&'()*+,/:;=?@-._~"}"#, 0);
    check(K, &format!(r#"{{"scene":"{}"}}"#, "s".repeat(32)), 0);
    check(K, &format!(r#"{{"scene":"{}"}}"#, "s".repeat(33)), 40169);
    check(K, r#"{"scene":""}"#, 40169);
    check(K, r#"{"page":"pages/a"}"#, 40169);
    check(K, "nope", 40169);
    check(K, "", 44002);
    check(K, r#"{"scene":"a%20b"}"#, 40129);
    check(K, r#"{"scene":"中文"}"#, 40129);
    check(K, r#"{"scene":"a b"}"#, 40129);
    check(K, r#"{"scene":"scancode_time=1"}"#, 85096);
    check(K, r#"{"scene":"x","page":"/pages/a"}"#, 41030);
    check(K, r#"{"scene":"x","page":"pages/a?x=1"}"#, 41030);
    check(K, r#"{"scene":"x","check_path":"false"}"#, 47001);
    check(K, r#"{"scene":"x","check_path":false}"#, 0);
    check(K, r#"{"scene":1}"#, 47001);
    check(K, r#"{"scene":"x","env_version":"develop","width":1280}"#, 0);
    check(K, r#"{"scene":"x","env_version":"prod"}"#, 40097);
    check(K, r#"{"scene":"x","width":100}"#, 40097);
}

#[test]
fn reads_every_field() {
    let body = r#"{"scene":"id=7","page":"pages/p","check_path":false,"env_version":"trial","width":"600",
        "auto_color":true,"line_color":{"r":"1","g":2,"b":"3"},"is_hyaline":true,"unknown":1}"#;
    let request = parse_code_request(CodeKind::Unlimited, body.as_bytes()).expect("valid");
    assert_eq!(
        request,
        CodeRequest {
            kind: CodeKind::Unlimited,
            target: CodeTarget::Scene {
                page: "pages/p".into(),
                scene: "id=7".into(),
                env_version: "trial".into()
            },
            look: CodeLook {
                width: 600,
                auto_color: true,
                line_color: [1, 2, 3],
                is_hyaline: true
            },
            check_path: false,
        }
    );
    let request = parse_code_request(CodeKind::QrCode, br#"{"path":"p","width":null}"#).expect("valid");
    assert_eq!(request.look, CodeLook::default());
    assert_eq!(
        request.target,
        CodeTarget::Path {
            path: "p".into(),
            env_version: None
        }
    );
}

#[test]
fn registered_pages() {
    let pages = vec!["/pages/index/index".to_owned(), "pages/about".to_owned()];
    assert!(is_registered_page(&pages, "pages/index/index"));
    assert!(is_registered_page(&pages, "pages/about"));
    assert!(!is_registered_page(&pages, "pages/other"));
    assert_eq!(home_page(&pages), Some("pages/index/index"));
    assert_eq!(home_page(&[]), None);
}
