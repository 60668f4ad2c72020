//! The signals' wire shape: nodes of one cluster exchange it, so it is pinned here. (Delivery between
//! real nodes is tested in `souk-redis/tests/signals.rs`.)

use serde_json::json;

use super::Signal;
use crate::messages::hub::HubEvent;
use crate::model::TokenKind;

#[test]
fn signals_have_a_stable_json_shape() {
    let cases = [
        (Signal::App { appid: "wx1".into() }, json!({"kind": "app", "appid": "wx1"})),
        (
            Signal::Api {
                service_id: "s".into(),
                name: "n".into(),
            },
            json!({"kind": "api", "service_id": "s", "name": "n"}),
        ),
        (
            Signal::tokens("wx1", TokenKind::Stable),
            json!({"kind": "tokens", "appid": "wx1", "stable": true}),
        ),
        (
            Signal::CloudApp { cloud_app_id: "c".into() },
            json!({"kind": "cloud_app", "cloud_app_id": "c"}),
        ),
        (
            Signal::Conversation(HubEvent::Typing {
                appid: "wx1".into(),
                openid: "o".into(),
                typing: true,
                until_ms: Some(5),
            }),
            json!({"kind": "typing", "appid": "wx1", "openid": "o", "typing": true, "until_ms": 5}),
        ),
        (
            Signal::Conversation(HubEvent::Message {
                appid: "wx1".into(),
                openid: "o".into(),
                seq: 7,
            }),
            json!({"kind": "message", "appid": "wx1", "openid": "o", "seq": 7}),
        ),
    ];
    for (signal, shape) in cases {
        assert_eq!(serde_json::to_value(&signal).unwrap(), shape);
        assert_eq!(serde_json::from_value::<Signal>(shape).unwrap(), signal);
    }
    assert!(serde_json::from_value::<Signal>(json!({"kind": "from_a_newer_node"})).is_err());
}
