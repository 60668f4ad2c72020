//! Property tests of the parsers souk writes itself: whatever bytes arrive, they answer with a code
//! and never panic; what a well-behaved client sends is read back exactly.

use proptest::prelude::*;
use serde_json::{json, Value};
use souk_types::market::{parse_envelope, parse_invoke_request};
use souk_types::message::{parse_custom_send, parse_typing, parse_user_message};
use souk_types::sign::{self, SignMethod};
use souk_types::Code;

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn invoke_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(bad) = parse_invoke_request(&bytes) {
            prop_assert!([Code::EmptyPostData, Code::DataFormatError, Code::MarketBadInput].contains(&bad.code));
            prop_assert!(!bad.detail.is_empty());
        }
    }

    #[test]
    fn invoke_parser_never_panics_on_json(value in json_value()) {
        let _ = parse_invoke_request(value.to_string().as_bytes());
    }

    #[test]
    fn invoke_requests_round_trip(
        service in "[a-z0-9]{1,20}",
        api in "[A-Za-z]{1,20}",
        data in prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..5),
        client_msg_id in proptest::option::of("[a-zA-Z0-9_-]{1,64}"),
        is_async in any::<bool>(),
        data_as_string in any::<bool>(),
    ) {
        let data = Value::Object(data.into_iter().collect());
        let wire_data = if data_as_string { Value::String(data.to_string()) } else { data.clone() };
        let body = json!({"service": service, "api": api, "data": wire_data, "client_msg_id": client_msg_id, "async": is_async});
        let parsed = parse_invoke_request(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(parsed.service, service);
        prop_assert_eq!(parsed.api, api);
        prop_assert_eq!(parsed.data, data);
        prop_assert_eq!(parsed.client_msg_id, client_msg_id);
        prop_assert_eq!(parsed.is_async, is_async);
    }

    #[test]
    fn envelope_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), value in json_value()) {
        let _ = parse_envelope(&bytes);
        let _ = parse_envelope(value.to_string().as_bytes());
    }

    #[test]
    fn envelopes_keep_their_four_fields(success in any::<bool>(), data in json_value(), code in proptest::option::of("[A-Z0-9]{1,8}"), extra in json_value()) {
        let body = json!({"success": success, "data": data, "errorCode": code, "errorMessage": "m", "extra": extra});
        let envelope = parse_envelope(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(envelope.success, success);
        prop_assert_eq!(envelope.data, data);
        prop_assert_eq!(envelope.error_code, code);
        prop_assert_eq!(envelope.error_message.as_deref(), Some("m"));
    }

    #[test]
    fn signatures_verify_and_detect_changes(
        params in prop::collection::vec(("[a-z_]{1,10}", ".{0,12}"), 0..10),
        body in proptest::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        secret in "[ -~]{1,32}",
        method in prop_oneof![Just(SignMethod::Md5), Just(SignMethod::Hmac), Just(SignMethod::HmacSha256)],
    ) {
        let signature = sign::sign(method, &secret, &params, body.as_deref());
        prop_assert!(sign::verify(method, &secret, &params, body.as_deref(), &signature));
        let mut tampered = params.clone();
        tampered.push(("zz_added".to_owned(), "1".to_owned()));
        prop_assert!(!sign::verify(method, &secret, &tampered, body.as_deref(), &signature));
    }

    #[test]
    fn timestamps_round_trip(seconds in 0i64..4_102_444_800) {
        let text = sign::format_timestamp(seconds * 1000);
        prop_assert_eq!(sign::parse_timestamp(&text), Some(seconds * 1000));
    }

    #[test]
    fn timestamp_parser_never_panics(text in ".{0,40}") {
        let _ = sign::parse_timestamp(&text);
    }

    #[test]
    fn message_parsers_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_custom_send(&bytes);
        let _ = parse_user_message(&bytes);
        let _ = parse_typing(&bytes);
    }

    /// Bodies shaped like real ones (a known or unknown `msgtype`, its object with arbitrary fields)
    /// are answered with a code, never a panic.
    #[test]
    fn message_parsers_never_panic_on_near_misses(
        msgtype in prop_oneof![
            Just("text".to_owned()),
            Just("image".to_owned()),
            Just("link".to_owned()),
            Just("miniprogrampage".to_owned()),
            Just("event".to_owned()),
            ".{0,10}",
        ],
        touser in json_value(),
        command in json_value(),
        content in json_value(),
    ) {
        let mut body = json!({"touser": touser, "msgtype": msgtype, "command": command, "event": content.clone()});
        body[msgtype.as_str()] = content;
        let text = body.to_string();
        let _ = parse_custom_send(text.as_bytes());
        let _ = parse_user_message(text.as_bytes());
        let _ = parse_typing(text.as_bytes());
    }
}
