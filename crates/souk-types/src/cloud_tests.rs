//! Tests of the gateway request parsers: one `check` helper per shape, every rule's code.

use serde_json::{json, Value};

use super::*;

const EXTS: &str = r#"{"cloudAppId":"1000000000000001","domain":"https://Example.COM:443/"}"#;

fn with_exts(mut request: Value) -> Vec<u8> {
    if request.get("exts").is_none() {
        request["exts"] = serde_json::from_str(EXTS).unwrap();
    }
    request.to_string().into_bytes()
}

/// Parses a door body (exts filled in when absent) and answers the request or the code.
fn door(request: Value) -> Result<CloudRequest, Code> {
    parse_request(&with_exts(request)).map_err(|bad| bad.code)
}

fn refused(request: Value) -> Code {
    door(request).expect_err("should be refused")
}

#[test]
fn a_full_request() {
    let request = door(json!({
        "path": "/welcome",
        "method": "POST",
        "headers": {"Content-Type": "application/json;charset=UTF-8", "X-Foo": "bar", "Host": "evil", "top-sign-list": "x"},
        "params": {"name": "hanruo", "action": "test", "n": 1, "f": 1.5, "b": true, "nothing": null, "empty": ""},
        "body": {"xftest": "hhh", "id": "1234"},
        "exts": {"cloudAppId": "12345", "timeout": 4000, "domain": "HTTPS://www.Taobao.com", "cacheType": 1, "cacheTime": 60, "env": "online"}
    }))
    .unwrap();
    assert_eq!(request.path, "/welcome");
    assert_eq!(request.method, CloudMethod::Post);
    let params: Vec<(&str, &str)> = request.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for pair in [("name", "hanruo"), ("action", "test"), ("n", "1"), ("f", "1.5"), ("b", "true")] {
        assert!(params.contains(&pair), "{pair:?} in {params:?}");
    }
    assert_eq!(params.len(), 5, "null and empty values are left out: {params:?}");
    assert_eq!(request.headers, vec![("X-Foo".to_owned(), "bar".to_owned())]);
    let body: Value = serde_json::from_slice(request.body.as_ref().unwrap()).unwrap();
    assert_eq!(body, json!({"xftest": "hhh", "id": "1234"}));
    assert_eq!(
        request.exts,
        CloudExts {
            cloud_app_id: "12345".into(),
            domain: "https://www.taobao.com".into(),
            timeout_ms: 4000,
            cache: Some(CacheRule {
                cache_type: CacheType::App,
                ttl_secs: 60
            }),
        }
    );
}

#[test]
fn defaults() {
    let request = door(json!({"path": "/a"})).unwrap();
    assert_eq!(request.method, CloudMethod::Post);
    assert_eq!(request.exts.timeout_ms, DEFAULT_TIMEOUT_MS);
    assert_eq!(request.exts.cache, None);
    assert_eq!(request.exts.domain, "https://example.com");
    assert_eq!(request.body, None);
    let cached = door(json!({"path": "/a", "exts": {"cloudAppId": 7, "domain": "http://a.b", "cacheType": "0"}})).unwrap();
    assert_eq!(cached.exts.cloud_app_id, "7");
    assert_eq!(
        cached.exts.cache,
        Some(CacheRule {
            cache_type: CacheType::AppUser,
            ttl_secs: DEFAULT_CACHE_SECS
        })
    );
}

#[test]
fn methods() {
    assert_eq!(door(json!({"path": "/a", "method": "GET"})).unwrap().method, CloudMethod::Get);
    for method in ["get", "Post", "PUT", "DELETE", ""] {
        assert_eq!(
            refused(json!({"path": "/a", "method": method})),
            Code::CloudMethodNotAllowed,
            "{method}"
        );
    }
    assert_eq!(refused(json!({"path": "/a", "method": 1})), Code::CloudInvalidRequest);
}

#[test]
fn content_types() {
    for ok in ["application/json", "APPLICATION/JSON; charset=utf-8", " application/json "] {
        assert!(door(json!({"path": "/a", "headers": {"content-type": ok}})).is_ok(), "{ok}");
    }
    for wrong in ["text/plain", "application/x-www-form-urlencoded", "application/jsonp", ""] {
        assert_eq!(
            refused(json!({"path": "/a", "headers": {"CONTENT-TYPE": wrong}})),
            Code::CloudContentTypeRefused,
            "{wrong}"
        );
    }
    // A GET sends no body, so its content type does not matter; it is not passed on.
    let get = door(json!({"path": "/a", "method": "GET", "headers": {"Content-Type": "text/plain"}})).unwrap();
    assert!(get.headers.is_empty());
}

#[test]
fn bodies() {
    assert_eq!(
        refused(json!({"path": "/a", "method": "GET", "body": {"a": 1}})),
        Code::CloudInvalidRequest
    );
    for empty in [json!({}), json!(""), Value::Null] {
        assert_eq!(door(json!({"path": "/a", "method": "GET", "body": empty})).unwrap().body, None);
    }
    assert_eq!(door(json!({"path": "/a", "body": {}})).unwrap().body.unwrap(), b"{}");
    assert_eq!(door(json!({"path": "/a", "body": "text"})).unwrap().body.unwrap(), br#""text""#);
}

#[test]
fn params_and_headers() {
    assert_eq!(refused(json!({"path": "/a", "params": {"a": {"b": 1}}})), Code::CloudInvalidRequest);
    assert_eq!(refused(json!({"path": "/a", "params": {"a": [1]}})), Code::CloudInvalidRequest);
    assert_eq!(refused(json!({"path": "/a", "params": {"": "x"}})), Code::CloudInvalidRequest);
    assert_eq!(refused(json!({"path": "/a", "params": "a=b"})), Code::CloudInvalidRequest);
    // Context names are kept by the parser; the gateway drops them (and the cache key ignores them).
    let request = door(json!({"path": "/a", "params": {"open_id": "forged"}})).unwrap();
    assert_eq!(request.params, vec![("open_id".to_owned(), "forged".to_owned())]);
    assert_eq!(
        refused(json!({"path": "/a", "headers": {"bad name": "x"}})),
        Code::CloudInvalidRequest
    );
    assert_eq!(
        refused(json!({"path": "/a", "headers": {"x": "a\r\nb: c"}})),
        Code::CloudInvalidRequest
    );
    assert_eq!(
        refused(json!({"path": "/a", "headers": {"x": {"y": 1}}})),
        Code::CloudInvalidRequest
    );
    assert_eq!(
        refused(json!({"path": "/a", "headers": {"x": "v".repeat(MAX_HEADER_BYTES)}})),
        Code::CloudRequestTooLarge
    );
}

#[test]
fn paths() {
    assert_eq!(door(json!({"path": "/a b/é"})).unwrap().path, "/a%20b/%C3%A9");
    assert_eq!(door(json!({"path": "/a/%7Eb/c:d@e"})).unwrap().path, "/a/%7Eb/c:d@e");
    assert_eq!(door(json!({"path": "/"})).unwrap().path, "/");
    for bad in [
        "",
        "a",
        "//evil.example/x",
        "https://evil.example/x",
        "/a?b=c",
        "/a#f",
        "/a/../b",
        "/..",
        "/a/./b",
        "/a/%2e%2E/b",
        "/a/%2E",
        "/a%2fb",
        "/a%5cb",
        "/a%00",
        "/a\\b",
        "/a\nb",
        "/a%zz",
        "/a%4",
    ] {
        assert_eq!(refused(json!({"path": bad})), Code::CloudInvalidRequest, "{bad:?}");
    }
    assert_eq!(refused(json!({"method": "GET"})), Code::CloudInvalidRequest);
    assert_eq!(refused(json!({"path": 1})), Code::CloudInvalidRequest);
    let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
    assert_eq!(refused(json!({"path": long})), Code::CloudInvalidRequest);
}

#[test]
fn exts_rules() {
    let exts = |extra: Value| {
        let mut exts = json!({"cloudAppId": "1", "domain": "https://a.example"});
        for (key, value) in extra.as_object().unwrap() {
            exts[key] = value.clone();
        }
        json!({"path": "/a", "exts": exts})
    };
    assert_eq!(door(exts(json!({"timeout": 10000}))).unwrap().exts.timeout_ms, 10_000);
    assert_eq!(door(exts(json!({"timeout": 1.0}))).unwrap().exts.timeout_ms, 1);
    assert_eq!(door(exts(json!({"timeout": "5000"}))).unwrap().exts.timeout_ms, 5_000);
    for timeout in [json!(0), json!(10001), json!(-1), json!(1.5), json!("5s"), json!(true)] {
        assert_eq!(refused(exts(json!({"timeout": timeout}))), Code::CloudInvalidRequest, "{timeout}");
    }
    for cache_type in [json!(4), json!(-1), json!("x")] {
        assert_eq!(refused(exts(json!({"cacheType": cache_type}))), Code::CloudInvalidRequest);
    }
    assert_eq!(
        door(exts(json!({"cacheType": 3, "cacheTime": 3600})))
            .unwrap()
            .exts
            .cache
            .unwrap()
            .ttl_secs,
        3600
    );
    for cache_time in [json!(0), json!(3601)] {
        assert_eq!(
            refused(exts(json!({"cacheType": 3, "cacheTime": cache_time}))),
            Code::CloudInvalidRequest
        );
    }
    assert_eq!(
        refused(exts(json!({"cacheTime": 0}))),
        Code::CloudInvalidRequest,
        "checked without cacheType too"
    );
    assert_eq!(refused(exts(json!({"domian": "typo"}))), Code::CloudInvalidRequest);
    assert_eq!(refused(exts(json!({"cloudAppId": "a/b"}))), Code::CloudInvalidRequest);
    assert_eq!(refused(exts(json!({"cloudAppId": ""}))), Code::CloudInvalidRequest);
    assert_eq!(refused(exts(json!({"domain": "example.com"}))), Code::CloudInvalidRequest);
    assert_eq!(
        refused(json!({"path": "/a", "exts": {"domain": "https://a.example"}})),
        Code::CloudInvalidRequest
    );
    assert_eq!(
        refused(json!({"path": "/a", "exts": {"cloudAppId": "1"}})),
        Code::CloudInvalidRequest
    );
    assert_eq!(parse_request(br#"{"path":"/a"}"#).unwrap_err().code, Code::CloudInvalidRequest);
}

#[test]
fn malformed_bodies() {
    for body in [&b""[..], b"  ", b"[]", b"{", b"\"x\""] {
        assert_eq!(parse_request(body).unwrap_err().code, Code::CloudInvalidRequest);
        assert_eq!(parse_mtop_request(body).unwrap_err().code, Code::CloudInvalidRequest);
    }
    assert_eq!(refused(json!({"path": "/a", "pth": "/b"})), Code::CloudInvalidRequest);
}

#[test]
fn size_limit() {
    let fits = "x".repeat(MAX_REQUEST_BYTES - 100);
    assert!(door(json!({"path": "/a", "body": fits})).is_ok());
    let big = "x".repeat(MAX_REQUEST_BYTES);
    assert_eq!(refused(json!({"path": "/a", "body": big})), Code::CloudRequestTooLarge);
    // Query values count encoded: 50 000 spaces are 150 000 bytes on the wire.
    let spaces = " ".repeat(50_000);
    assert_eq!(refused(json!({"path": "/a", "params": {"q": spaces}})), Code::CloudRequestTooLarge);
}

#[test]
fn mtop_shape() {
    // What `@tbmp/mp-cloud-sdk` 1.5.x puts in `data` (taobao-gateway.md §3.1).
    let data = json!({
        "path": "/api/hello",
        "headers": "{\"X-Foo\":\"bar\",\"Content-Type\":\"application/json\"}",
        "body": "{\"k\":\"v\"}",
        "queryString": "{\"a\":1,\"b\":\"x\"}",
        "method": "POST",
        "options": "{\"cloudAppId\":\"12345\",\"timeout\":5000,\"domain\":\"https://example.com\",\"cacheType\":1,\"cacheTime\":60,\"env\":\"test\",\"appKey\":\"k\"}",
        "sdkVersion": "1.5.9",
        "protocols": "{\"Content-Type\":\"application/json\",\"mc-timestamp\":\"1\",\"mc-env\":\"test\"}"
    });
    let request = parse_mtop_request(data.to_string().as_bytes()).unwrap();
    let door_request = door(json!({
        "path": "/api/hello",
        "headers": {"X-Foo": "bar", "Content-Type": "application/json"},
        "body": {"k": "v"},
        "params": {"a": 1, "b": "x"},
        "method": "POST",
        "exts": {"cloudAppId": "12345", "timeout": 5000, "domain": "https://example.com", "cacheType": 1, "cacheTime": 60}
    }))
    .unwrap();
    assert_eq!(request, door_request, "both shapes parse to the same request");

    // A raw string body is sent as a JSON string; objects are taken where strings are expected.
    let raw = json!({"path": "/a", "body": "plain text", "options": {"cloudAppId": "1", "domain": "http://a.b"}});
    let request = parse_mtop_request(raw.to_string().as_bytes()).unwrap();
    assert_eq!(request.body.unwrap(), br#""plain text""#);
    // SDK 1.3/1.4 send no method: POST.
    assert_eq!(request.method, CloudMethod::Post);

    let bad_options = json!({"path": "/a", "options": "{not json"});
    assert_eq!(
        parse_mtop_request(bad_options.to_string().as_bytes()).unwrap_err().code,
        Code::CloudInvalidRequest
    );
    let lower = json!({"path": "/a", "method": "get", "options": {"cloudAppId": "1", "domain": "http://a.b"}});
    assert_eq!(
        parse_mtop_request(lower.to_string().as_bytes()).unwrap_err().code,
        Code::CloudMethodNotAllowed
    );
    let form =
        json!({"path": "/a", "headers": "{\"content-type\":\"text/plain\"}", "options": {"cloudAppId": "1", "domain": "http://a.b"}});
    assert_eq!(
        parse_mtop_request(form.to_string().as_bytes()).unwrap_err().code,
        Code::CloudContentTypeRefused
    );
}

#[test]
fn origins() {
    let check = |text: &str, expect: Option<&str>| assert_eq!(normalize_origin(text).as_deref(), expect, "{text:?}");
    check("https://example.com", Some("https://example.com"));
    check("HTTPS://Example.COM/", Some("https://example.com"));
    check("https://example.com:443", Some("https://example.com"));
    check("http://example.com:80", Some("http://example.com"));
    check("http://example.com:443", Some("http://example.com:443"));
    check("https://example.com:08443", Some("https://example.com:8443"));
    check("http://127.0.0.1:8080", Some("http://127.0.0.1:8080"));
    check("http://[::1]:9000", Some("http://[::1]:9000"));
    check("http://[FE80::1]", Some("http://[fe80::1]"));
    check("https://xn--fiqs8s.example", Some("https://xn--fiqs8s.example"));
    for bad in [
        "example.com",
        "ftp://example.com",
        "https://",
        "https://example.com/path",
        "https://example.com?q",
        "https://example.com#f",
        "https://user@example.com",
        "https://example.com:",
        "https://example.com:0",
        "https://example.com:65536",
        "https://example.com:+1",
        "https://exa mple.com",
        "https://例子.com",
        "https://example..com",
        "https://example.com.",
        "https://-a.example",
        "https://a_b.example",
        "http://[::1",
        "http://[]",
        "http://[::1]x",
        "https://example.com//",
        " https://example.com",
    ] {
        check(bad, None);
    }
}
