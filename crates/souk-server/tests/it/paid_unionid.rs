//! getPaidUnionId end to end (`wire.md` §2, `wechat-wire.md` §4): payments reported through the admin
//! API (idempotent per order), both lookup modes, the 5-minute window on souk's clock, one unionid per
//! person across the apps of an open account, and 40003, 89002, 89300 through HTTP.

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_store::conformance::Store;

use crate::common::TestServer;

on_both_backends! {
    paid_unionid_by_either_order_reference => sqlite_paid_unionid_by_either_order_reference, postgres_paid_unionid_by_either_order_reference;
    paid_unionid_errcodes => sqlite_paid_unionid_errcodes, postgres_paid_unionid_errcodes;
    payments_are_reported_once_per_order => sqlite_payments_are_reported_once_per_order, postgres_payments_are_reported_once_per_order;
}

/// An app (bound to `open_account` if given) with a token: `(appid, token)`.
async fn app(server: &TestServer, open_account: Option<&str>) -> (String, String) {
    let mut body = json!({"name": "paid app"});
    if let Some(open_account) = open_account {
        body["open_account"] = json!(open_account);
    }
    let created = server.admin_ok("POST", "/apps", Some(body), StatusCode::CREATED).await;
    let appid = created["appid"].as_str().unwrap().to_owned();
    let token = server.token(&appid, created["secret"].as_str().unwrap()).await;
    (appid, token)
}

/// A client session for `user`: the mint answer (`openid`, `unionid`).
async fn user(server: &TestServer, token: &str, user: &str) -> Value {
    server
        .http
        .post(format!("{}/souk/v1/client-sessions?access_token={token}", server.base))
        .body(json!({"user": user}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn lookup(server: &TestServer, token: &str, query: &str) -> Value {
    server
        .wechat_get(&format!("/wxa/getpaidunionid?access_token={token}&{query}"))
        .await
}

fn errcode(answer: &Value) -> i64 {
    answer["errcode"].as_i64().unwrap_or_else(|| panic!("no errcode: {answer}"))
}

async fn paid_unionid_by_either_order_reference(store: Store) {
    let server = TestServer::start(store).await;
    let (app_a, token_a) = app(&server, Some("oa-shop")).await;
    let (app_b, token_b) = app(&server, Some("oa-shop")).await;
    let alice_a = user(&server, &token_a, "alice").await;
    let alice_b = user(&server, &token_b, "alice").await;
    let (openid_a, openid_b) = (alice_a["openid"].as_str().unwrap(), alice_b["openid"].as_str().unwrap());
    assert_ne!(openid_a, openid_b);

    let paid = json!({"appid": app_a, "openid": openid_a, "transaction_id": "4200001", "amount": 990});
    server.admin_ok("POST", "/payments", Some(paid), StatusCode::CREATED).await;
    let by_tx = lookup(&server, &token_a, &format!("openid={openid_a}&transaction_id=4200001")).await;
    assert_eq!(errcode(&by_tx), 0, "{by_tx}");
    assert_eq!(by_tx["errmsg"], "ok");
    assert_eq!(by_tx["unionid"], alice_a["unionid"], "the unionid the session answered");

    let paid = json!({"appid": app_b, "openid": openid_b, "mch_id": "1900000109", "out_trade_no": "order-77"});
    server.admin_ok("POST", "/payments", Some(paid), StatusCode::CREATED).await;
    let by_order = lookup(
        &server,
        &token_b,
        &format!("openid={openid_b}&mch_id=1900000109&out_trade_no=order-77"),
    )
    .await;
    assert_eq!(errcode(&by_order), 0, "{by_order}");
    assert_eq!(
        by_order["unionid"], by_tx["unionid"],
        "one person, one unionid across the open account's apps"
    );

    server.clock.advance_ms(5 * 60_000);
    let at_five = lookup(&server, &token_a, &format!("openid={openid_a}&transaction_id=4200001")).await;
    assert_eq!(errcode(&at_five), 0, "5 minutes on the dot still answers");
    server.clock.advance_ms(1_000);
    let late = lookup(&server, &token_a, &format!("openid={openid_a}&transaction_id=4200001")).await;
    assert_eq!(errcode(&late), 89300, "{late}");
    assert!(late["errmsg"].as_str().unwrap().contains("more than 5 minutes ago"));

    let calls = server.calls(&format!("appid={app_a}")).await;
    let logged: Vec<i64> = calls
        .iter()
        .filter(|call| call["route"] == "getpaidunionid")
        .map(|call| call["errcode"].as_i64().unwrap())
        .collect();
    assert_eq!(logged, [89300, 0, 0], "newest first");
}

async fn paid_unionid_errcodes(store: Store) {
    let server = TestServer::start(store).await;
    let (appid, token) = app(&server, Some("oa-1")).await;
    let alice = user(&server, &token, "alice").await["openid"].as_str().unwrap().to_owned();
    let bob = user(&server, &token, "bob").await["openid"].as_str().unwrap().to_owned();
    let paid = json!({"appid": appid, "openid": alice, "transaction_id": "tx-1", "mch_id": "m", "out_trade_no": "o-1"});
    server.admin_ok("POST", "/payments", Some(paid), StatusCode::CREATED).await;

    for (query, code) in [
        ("transaction_id=tx-1".to_owned(), 40003),
        ("openid=&transaction_id=tx-1".to_owned(), 40003),
        ("openid=oNOBODY&transaction_id=tx-1".to_owned(), 40003),
        (format!("openid={bob}&transaction_id=tx-1"), 89300),
        (format!("openid={alice}&transaction_id=tx-unknown"), 89300),
        (format!("openid={alice}&mch_id=m&out_trade_no=o-2"), 89300),
        (format!("openid={alice}&mch_id=m"), 89300),
        (format!("openid={alice}"), 89300),
    ] {
        let answer = lookup(&server, &token, &query).await;
        assert_eq!(errcode(&answer), code, "{query}: {answer}");
    }
    assert_eq!(
        errcode(&lookup(&server, &token, &format!("openid={alice}&mch_id=m&out_trade_no=o-1")).await),
        0
    );

    let (other_appid, other_token) = app(&server, Some("oa-1")).await;
    let other_alice = user(&server, &other_token, "alice").await["openid"].as_str().unwrap().to_owned();
    let answer = lookup(&server, &other_token, &format!("openid={other_alice}&transaction_id=tx-1")).await;
    assert_eq!(errcode(&answer), 89300, "another app's order: {answer}");
    assert_ne!(other_appid, appid);

    let (_, lone_token) = app(&server, None).await;
    let lone_alice = user(&server, &lone_token, "alice").await["openid"].as_str().unwrap().to_owned();
    let answer = lookup(&server, &lone_token, &format!("openid={lone_alice}&transaction_id=tx-1")).await;
    assert_eq!(errcode(&answer), 89002, "{answer}");
    assert!(answer["errmsg"].as_str().unwrap().contains("open not exists"));

    let wrong_method = server
        .wechat_post(
            &format!("/wxa/getpaidunionid?access_token={token}&openid={alice}&transaction_id=tx-1"),
            "",
        )
        .await;
    assert_eq!(errcode(&wrong_method), 43001);
    assert_eq!(errcode(&server.wechat_get("/wxa/getpaidunionid?openid=x").await), 41001);
}

async fn payments_are_reported_once_per_order(store: Store) {
    let server = TestServer::start(store).await;
    let (appid, token) = app(&server, Some("oa-2")).await;
    let alice = user(&server, &token, "alice").await["openid"].as_str().unwrap().to_owned();
    let bob = user(&server, &token, "bob").await["openid"].as_str().unwrap().to_owned();
    let paid_at = server.clock_now() / 1000 - 60;
    let report = json!({"appid": appid, "openid": alice, "transaction_id": "tx-9", "amount": 100, "paid_at": paid_at});
    let first = server
        .admin_ok("POST", "/payments", Some(report.clone()), StatusCode::CREATED)
        .await;
    assert_eq!(first["paid_at"], json!(paid_at));
    assert_eq!(first["amount"], 100);
    let again = server.admin_ok("POST", "/payments", Some(report), StatusCode::OK).await;
    assert_eq!(again, first, "the same order again answers the first report");

    for (body, status) in [
        (
            json!({"appid": appid, "openid": bob, "transaction_id": "tx-9"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"appid": "wx0000000000000000", "openid": alice, "transaction_id": "tx-1"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"appid": appid, "openid": "oNOBODY", "transaction_id": "tx-1"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"appid": appid, "openid": alice}), StatusCode::BAD_REQUEST),
        (json!({"appid": appid, "openid": alice, "mch_id": "m"}), StatusCode::BAD_REQUEST),
        (
            json!({"appid": appid, "openid": alice, "transaction_id": "t", "amount": -1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"appid": appid, "openid": alice, "transaction_id": "x".repeat(65)}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"appid": appid, "openid": alice, "transaction_id": "t", "surprise": 1}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, answer) = server.admin("POST", "/payments", Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["errMsg"].is_string());
    }
    let answer = lookup(&server, &token, &format!("openid={alice}&transaction_id=tx-9")).await;
    assert_eq!(errcode(&answer), 0, "paid 1 minute ago: {answer}");
}
