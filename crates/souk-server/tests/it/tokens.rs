//! Access tokens through HTTP: every errcode, the overlap, expiry, and the stable token's rules.

use serde_json::{json, Value};

use crate::common::TestServer;

fn errcode(answer: &Value) -> i64 {
    answer["errcode"].as_i64().unwrap_or(0)
}

async fn probe(server: &TestServer, token: &str) -> i64 {
    // An unknown service is a cheap call that passes the token check first.
    let body = json!({"service": "nope", "api": "x"}).to_string();
    errcode(&server.wechat_post(&format!("/wxa/servicemarket?access_token={token}"), body).await)
}

#[tokio::test]
async fn get_token_errcodes() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret) = server.create_app().await;
        let cases = [
            (format!("/cgi-bin/token?appid={appid}&secret={secret}"), 40002),
            (format!("/cgi-bin/token?grant_type=password&appid={appid}&secret={secret}"), 40002),
            (format!("/cgi-bin/token?grant_type=client_credential&secret={secret}"), 41002),
            (format!("/cgi-bin/token?grant_type=client_credential&appid={appid}"), 41004),
            (
                format!("/cgi-bin/token?grant_type=client_credential&appid=wx0000000000000000&secret={secret}"),
                40013,
            ),
            (
                format!("/cgi-bin/token?grant_type=client_credential&appid={appid}&secret=wrong"),
                40125,
            ),
        ];
        for (path, expect) in cases {
            let answer = server.wechat_get(&path).await;
            assert_eq!(errcode(&answer), expect, "{path}: {answer}");
            assert!(answer["errmsg"].as_str().unwrap().contains(" rid: "), "{answer}");
        }
        let answer = server
            .wechat_get(&format!(
                "/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}"
            ))
            .await;
        assert_eq!(answer["expires_in"], json!(7200));
        assert!(answer.get("errcode").is_none());
        let wrong_method = server.wechat_post("/cgi-bin/token", "").await;
        assert_eq!(errcode(&wrong_method), 43001);
    });
}

#[tokio::test]
async fn missing_and_garbage_tokens() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let body = json!({"service": "s", "api": "a"}).to_string();
        assert_eq!(errcode(&server.wechat_post("/wxa/servicemarket", body.clone()).await), 41001);
        assert_eq!(
            errcode(&server.wechat_post("/wxa/servicemarket?access_token=", body.clone()).await),
            41001
        );
        assert_eq!(probe(&server, "garbage").await, 40014);
        assert_eq!(probe(&server, &"A".repeat(64)).await, 40014, "well-formed but never issued");
    });
}

#[tokio::test]
async fn superseded_token_overlaps_five_minutes_then_dies() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret) = server.create_app().await;
        let first = server.token(&appid, &secret).await;
        assert_eq!(probe(&server, &first).await, 9301001, "a fresh token works");
        server.clock.advance_ms(100_000);
        let second = server.token(&appid, &secret).await;
        assert_ne!(first, second);
        assert_eq!(probe(&server, &first).await, 9301001, "the old token works during the overlap");
        server.clock.advance_ms(299_000);
        assert_eq!(probe(&server, &first).await, 9301001, "still inside the 5 minutes");
        server.clock.advance_ms(1_000);
        assert_eq!(
            probe(&server, &first).await,
            40001,
            "past the overlap the old token is not the latest"
        );
        assert_eq!(probe(&server, &second).await, 9301001);
    });
}

#[tokio::test]
async fn tokens_expire_after_7200_seconds() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret) = server.create_app().await;
        let token = server.token(&appid, &secret).await;
        server.clock.advance_ms(7_199_000);
        assert_eq!(probe(&server, &token).await, 9301001);
        server.clock.advance_ms(1_000);
        assert_eq!(probe(&server, &token).await, 42001);
    });
}

#[tokio::test]
async fn disabled_app_loses_its_tokens() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret) = server.create_app().await;
        let token = server.token(&appid, &secret).await;
        server
            .admin_ok(
                "PATCH",
                &format!("/apps/{appid}"),
                Some(json!({"disabled": true})),
                axum::http::StatusCode::OK,
            )
            .await;
        assert_eq!(probe(&server, &token).await, 40013);
        let answer = server
            .wechat_get(&format!(
                "/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}"
            ))
            .await;
        assert_eq!(errcode(&answer), 40013);
    });
}

async fn stable(server: &TestServer, appid: &str, secret: &str, force_refresh: bool) -> Value {
    let body = json!({"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force_refresh});
    server.wechat_post("/cgi-bin/stable_token", body.to_string()).await
}

#[tokio::test]
async fn stable_token_normal_mode_and_rotation() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret) = server.create_app().await;
        let first = stable(&server, &appid, &secret, false).await;
        let token = first["access_token"].as_str().unwrap().to_owned();
        assert_eq!(first["expires_in"], json!(7200));
        server.clock.advance_ms(1_000_000);
        let again = stable(&server, &appid, &secret, false).await;
        assert_eq!(again["access_token"].as_str().unwrap(), token, "normal mode answers the same token");
        assert_eq!(again["expires_in"], json!(6200));
        let plain = server.token(&appid, &secret).await;
        assert_eq!(
            probe(&server, &token).await,
            9301001,
            "a /cgi-bin/token fetch does not touch the stable token"
        );
        assert_eq!(probe(&server, &plain).await, 9301001);

        // In the last 5 minutes a new token comes; the old one lives out its time.
        server.clock.advance_ms(5_950_000);
        let rotated = stable(&server, &appid, &secret, false).await;
        let new_token = rotated["access_token"].as_str().unwrap().to_owned();
        assert_ne!(new_token, token);
        assert_eq!(rotated["expires_in"], json!(7200));
        assert_eq!(probe(&server, &token).await, 9301001, "the old stable token overlaps");
        server.clock.advance_ms(250_000);
        assert_ne!(probe(&server, &token).await, 9301001, "and dies at its own expiry");
        assert_eq!(probe(&server, &new_token).await, 9301001);
    });
}

#[tokio::test]
async fn stable_token_force_refresh_rules() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        // Noon in UTC+8, so the 21 refreshes below stay within one day.
        server.clock.set_ms(1_767_240_000_000);
        let (appid, secret) = server.create_app().await;
        let first = stable(&server, &appid, &secret, false).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let forced = stable(&server, &appid, &secret, true).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(first, forced);
        assert_eq!(probe(&server, &first).await, 40001, "force_refresh kills the old token at once");
        server.clock.advance_ms(10_000);
        let too_soon = stable(&server, &appid, &secret, true).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(too_soon, forced, "within 30 s a force refresh does not refresh");
        // 19 more force refreshes 31 s apart make 20 today; the 21st is refused.
        for _ in 0..19 {
            server.clock.advance_ms(31_000);
            let answer = stable(&server, &appid, &secret, true).await;
            assert!(answer["access_token"].is_string(), "{answer}");
        }
        server.clock.advance_ms(31_000);
        let refused = stable(&server, &appid, &secret, true).await;
        assert_eq!(errcode(&refused), 45009, "{refused}");
        server.clock.advance_ms(86_400_000);
        assert!(
            stable(&server, &appid, &secret, true).await["access_token"].is_string(),
            "a new day resets the count"
        );
    });
}

#[tokio::test]
async fn stable_token_bad_requests() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret) = server.create_app().await;
        assert_eq!(errcode(&server.wechat_get("/cgi-bin/stable_token").await), 43002);
        assert_eq!(errcode(&server.wechat_post("/cgi-bin/stable_token", "").await), 44002);
        assert_eq!(errcode(&server.wechat_post("/cgi-bin/stable_token", "{nope").await), 47001);
        let wrong_type = json!({"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": "yes"});
        assert_eq!(
            errcode(&server.wechat_post("/cgi-bin/stable_token", wrong_type.to_string()).await),
            47001
        );
        let cases = [
            (json!({"appid": appid, "secret": secret}), 40002),
            (json!({"grant_type": "client_credential", "secret": secret}), 41002),
            (json!({"grant_type": "client_credential", "appid": appid}), 41004),
            (
                json!({"grant_type": "client_credential", "appid": "wx0000000000000000", "secret": secret}),
                40013,
            ),
            (json!({"grant_type": "client_credential", "appid": appid, "secret": "nope"}), 40125),
        ];
        for (body, expect) in cases {
            assert_eq!(
                errcode(&server.wechat_post("/cgi-bin/stable_token", body.to_string()).await),
                expect,
                "{body}"
            );
        }
    });
}
