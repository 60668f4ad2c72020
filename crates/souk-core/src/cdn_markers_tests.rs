//! Tests of `__cdn__` marker finding and replacing: one `check` per case, input data to the markers
//! found or the failure.

use serde_json::{json, Value};
use souk_types::Code;

use super::*;

const LIMIT: u64 = 16;

/// A marker found: its pointer, content type and bytes.
type Found<'a> = (&'a str, &'a str, &'a [u8]);

/// `expect`: `Ok([(pointer, content_type, bytes)])` or `Err((code, words the message must hold))`.
fn check(data: Value, expect: Result<&[Found<'_>], (Code, &str)>) {
    let got = find_markers(&data, LIMIT);
    match (got, expect) {
        (Ok(markers), Ok(want)) => {
            let got: Vec<Found<'_>> = markers
                .iter()
                .map(|m| (m.pointer.as_str(), m.content_type.as_str(), m.bytes.as_ref()))
                .collect();
            assert_eq!(got, want, "{data}");
            assert_eq!(has_markers(&data), !want.is_empty(), "{data}");
        }
        (Err(failure), Err((code, words))) => {
            assert_eq!(failure.code, code, "{data}: {}", failure.detail);
            assert!(failure.detail.contains(words), "{data}: {:?} lacks {words:?}", failure.detail);
        }
        (got, want) => panic!("{data}: got {got:?}, want {want:?}"),
    }
}

fn marker(kind: &str, value: &str) -> Value {
    json!({"__cdn__": {"type": kind, "value": value}})
}

#[test]
fn markers_are_found_anywhere_in_order() {
    check(json!({"a": 1, "b": [true, null, "x"]}), Ok(&[]));
    check(json!("just a string"), Ok(&[]));
    check(
        json!({
            "img_url": marker("base64", "aGk="),
            "list": [1, marker("text", "héllo"), {"deep": {"deeper": marker("base64", "AAEC")}}],
            "a/b~c": {"__cdn__": {"type": "text", "value": "", "content_type": "application/json"}},
        }),
        Ok(&[
            ("/a~1b~0c", "application/json", b""),
            ("/img_url", "application/octet-stream", b"hi"),
            ("/list/1", "text/plain; charset=utf-8", "héllo".as_bytes()),
            ("/list/2/deep/deeper", "application/octet-stream", &[0, 1, 2]),
        ]),
    );
    check(marker("text", "root"), Ok(&[("", "text/plain; charset=utf-8", b"root")]));
    check(marker("base64", "aGk"), Ok(&[("", "application/octet-stream", b"hi")]));
}

#[test]
fn bad_markers_name_the_problem_and_the_place() {
    let bad = |words| Err((Code::MarketBadInput, words));
    check(
        json!({"x": {"__cdn__": {"type": "file", "value": "a"}}}),
        bad("at /x has an unknown type \"file\""),
    );
    check(json!({"x": {"__cdn__": {"value": "a"}}}), bad("needs a type"));
    check(json!({"x": {"__cdn__": {"type": "text"}}}), bad("needs a string value"));
    check(json!({"x": {"__cdn__": {"type": "text", "value": 5}}}), bad("needs a string value"));
    check(json!({"x": {"__cdn__": "aGk="}}), bad("must be an object"));
    check(
        json!({"x": {"__cdn__": {"type": "text", "value": "a"}, "other": 1}}),
        bad("the only key"),
    );
    check(
        json!({"x": {"__cdn__": {"type": "text", "value": "a", "path": "/etc"}}}),
        bad("unknown field \"path\""),
    );
    check(json!([marker("base64", "not base64!")]), bad("at /0 is not valid base64"));
    check(
        json!({"x": {"__cdn__": {"type": "text", "value": "a", "content_type": "text/html\r\nX: y"}}}),
        bad("is not a content type"),
    );
    check(
        json!({"x": {"__cdn__": {"type": "text", "value": "a", "content_type": 3}}}),
        bad("content_type"),
    );
}

#[test]
fn markers_are_bounded() {
    let too_large = |words| Err((Code::CdnFileTooLarge, words));
    check(marker("text", &"x".repeat(17)), too_large("is larger than 16 bytes"));
    check(
        json!({"b": marker("base64", &"QUFB".repeat(6))}),
        too_large("at /b is larger than 16 bytes"),
    );
    check(json!({"b": marker("base64", &"QUFB".repeat(1_000_000))}), too_large("at /b"));
    check(
        marker("text", &"x".repeat(16)),
        Ok(&[("", "text/plain; charset=utf-8", &[b'x'; 16])]),
    );

    let many: Vec<Value> = (0..=MAX_MARKERS).map(|_| marker("text", "a")).collect();
    check(json!(many), Err((Code::MarketBadInput, "more than 16 __cdn__ markers")));

    let mut deep = marker("text", "a");
    for _ in 0..MAX_MARKER_DEPTH {
        deep = json!([deep]);
    }
    assert_eq!(find_markers(&deep, LIMIT).unwrap().len(), 1, "at the limit");
    check(json!({"d": deep}), Err((Code::MarketBadInput, "nested deeper than 32 levels")));
}

#[test]
fn replacing_puts_each_url_where_its_marker_was() {
    let mut data = json!({
        "img": marker("text", "a"),
        "list": [marker("text", "b"), 2],
        "k/ey": marker("text", "c"),
        "keep": {"n": 1},
    });
    let markers = find_markers(&data, LIMIT).unwrap();
    let urls = vec!["u1".to_owned(), "u2".to_owned(), "u3".to_owned()];
    replace_markers(&mut data, &markers, urls);
    assert_eq!(data, json!({"img": "u1", "k/ey": "u2", "list": ["u3", 2], "keep": {"n": 1}}));
    assert!(!has_markers(&data));

    let mut root = marker("text", "a");
    let markers = find_markers(&root, LIMIT).unwrap();
    replace_markers(&mut root, &markers, vec!["u".to_owned()]);
    assert_eq!(root, json!("u"));
}
