//! The admin API: auth, validation with clear messages, CRUD, lists with cursors, the call log's
//! filters, and the OpenAPI document kept in step with the routes.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_server::admin::ADMIN_ROUTES;

use crate::common::{TestServer, Upstream};

#[tokio::test]
async fn admin_token_is_required() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        for auth in [None, Some("Bearer wrong"), Some("test-admin-token-0123456789")] {
            let mut request = server.http.get(format!("{}/souk/v1/admin/apps", server.base));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 401);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["errCode"], json!("AdminUnauthorized"));
            assert!(body["requestID"].as_str().is_some_and(|id| !id.is_empty()));
        }
    });
}

#[tokio::test]
async fn apps_crud_and_validation() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let created = server
            .admin_ok(
                "POST",
                "/apps",
                Some(json!({"name": "shop", "pages": ["pages/index/index"], "theme_color": "#112233"})),
                StatusCode::CREATED,
            )
            .await;
        let appid = created["appid"].as_str().unwrap().to_owned();
        assert!(
            appid.starts_with("wx") && appid.len() == 18 && appid[2..].bytes().all(|b| b.is_ascii_hexdigit()),
            "{appid}"
        );
        assert_eq!(created["secret"].as_str().unwrap().len(), 32);
        let shown = server.admin_ok("GET", &format!("/apps/{appid}"), None, StatusCode::OK).await;
        assert!(
            shown.get("secret").is_none() && shown.get("secret_hash").is_none(),
            "the secret is shown only once: {shown}"
        );
        assert_eq!(shown["type"], json!("miniprogram"));

        let rotated = server
            .admin_ok("POST", &format!("/apps/{appid}/secret"), None, StatusCode::OK)
            .await;
        let new_secret = rotated["secret"].as_str().unwrap();
        assert_ne!(new_secret, created["secret"].as_str().unwrap());
        let old = server
            .wechat_get(&format!(
                "/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={}",
                created["secret"].as_str().unwrap()
            ))
            .await;
        assert_eq!(old["errcode"], json!(40125));
        server.token(&appid, new_secret).await;

        let patched = server
            .admin_ok(
                "PATCH",
                &format!("/apps/{appid}"),
                Some(json!({"theme_color": null, "disabled": true})),
                StatusCode::OK,
            )
            .await;
        assert_eq!(patched["theme_color"], Value::Null);
        assert_eq!(patched["disabled"], json!(true));

        let bad = [
            (json!({"name": "x", "nmae": "typo"}), "unknown field"),
            (json!({"name": ""}), "name"),
            (json!({"name": "x", "theme_color": "red"}), "theme_color"),
            (json!({"name": "x", "message_url": "ftp://a"}), "message_url"),
            (json!({"name": "x", "pages": ["/index"]}), "pages"),
            (json!({"name": "x", "rate_limit": {"per_second": 0, "burst": 1}}), "rate_limit"),
        ];
        for (body, word) in bad {
            let (status, answer) = server.admin("POST", "/apps", Some(body.clone())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(answer["errMsg"].as_str().unwrap().contains(word), "{body}: {answer}");
        }
        let (status, answer) = server.admin("GET", "/apps/wx0000000000000000", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(answer["errCode"], json!("AdminNotFound"));
        let (status, _) = server.admin("POST", "/apps", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "an empty body is not JSON");
    });
}

#[tokio::test]
async fn lists_page_with_cursors() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let mut created = BTreeSet::new();
        for _ in 0..5 {
            created.insert(server.create_app().await.0);
        }
        let mut seen = BTreeSet::new();
        let mut cursor = String::new();
        loop {
            let page = server
                .admin_ok("GET", &format!("/apps?limit=2&cursor={cursor}"), None, StatusCode::OK)
                .await;
            for app in page["items"].as_array().unwrap() {
                seen.insert(app["appid"].as_str().unwrap().to_owned());
            }
            match page["next"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => break,
            }
        }
        assert_eq!(seen, created);
        let (status, answer) = server.admin("GET", "/apps?limit=0", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    });
}

#[tokio::test]
async fn services_apis_and_packages() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let service = server
            .admin_ok(
                "POST",
                "/services",
                Some(json!({"service_id": "wx79ac3de8be320b71", "name": "ocr"})),
                StatusCode::CREATED,
            )
            .await;
        assert_eq!(service["service_id"], json!("wx79ac3de8be320b71"));
        assert!(service["secret"].as_str().unwrap().len() >= 16, "a secret is generated");
        let (status, _) = server
            .admin(
                "POST",
                "/services",
                Some(json!({"service_id": "wx79ac3de8be320b71", "name": "again"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);

        let path = "/services/wx79ac3de8be320b71/apis";
        let api = json!({"name": "OcrAllInOne", "upstream_url": format!("{}/echo", upstream.base), "mode": "sync"});
        let created = server.admin_ok("POST", path, Some(api.clone()), StatusCode::CREATED).await;
        assert_eq!(
            (created["timeout_ms"].as_u64(), created["price"].as_i64()),
            (Some(10_000), Some(1)),
            "defaults"
        );
        let (status, _) = server.admin("POST", path, Some(api)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        for (body, word) in [
            (json!({"name": "A", "upstream_url": "not a url", "mode": "sync"}), "upstream_url"),
            (json!({"name": "A", "upstream_url": "http://a", "mode": "sometimes"}), "mode"),
            (
                json!({"name": "A", "upstream_url": "http://a", "mode": "sync", "timeout_ms": 600_000}),
                "timeout_ms",
            ),
            (
                json!({"name": "A", "upstream_url": "http://a", "mode": "sync", "schema": {"type": 12}}),
                "schema",
            ),
            (
                json!({"name": "A", "upstream_url": "http://a", "mode": "sync", "price": -1}),
                "price",
            ),
            (json!({"name": "a b", "upstream_url": "http://a", "mode": "sync"}), "name"),
        ] {
            let (status, answer) = server.admin("POST", path, Some(body.clone())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert!(answer["errMsg"].as_str().unwrap().contains(word), "{body}: {answer}");
        }
        let (status, _) = server
            .admin(
                "POST",
                "/services/nope/apis",
                Some(json!({"name": "A", "upstream_url": "http://a", "mode": "sync"})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let changed = server
            .admin_ok(
                "PATCH",
                &format!("{path}/OcrAllInOne"),
                Some(json!({"upstream_url": format!("{}/fail", upstream.base)})),
                StatusCode::OK,
            )
            .await;
        assert!(changed["upstream_url"].as_str().unwrap().ends_with("/fail"));
        let list = server.admin_ok("GET", path, None, StatusCode::OK).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        server
            .admin_ok("DELETE", &format!("{path}/OcrAllInOne"), None, StatusCode::NO_CONTENT)
            .await;
        let (status, _) = server.admin("GET", &format!("{path}/OcrAllInOne"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (appid, _) = server.create_app().await;
        for (body, word) in [
            (json!({"appid": appid, "service_id": "wx79ac3de8be320b71", "units": 0}), "units"),
            (json!({"appid": "wxnope", "service_id": "wx79ac3de8be320b71", "units": 1}), "appid"),
            (json!({"appid": appid, "service_id": "nope", "units": 1}), "service_id"),
            (
                json!({"appid": appid, "service_id": "wx79ac3de8be320b71", "units": 1, "expires_at": 1}),
                "past",
            ),
        ] {
            let (status, answer) = server.admin("POST", "/packages", Some(body.clone())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert!(answer["errMsg"].as_str().unwrap().contains(word), "{body}: {answer}");
        }
        let package = server
            .admin_ok(
                "POST",
                "/packages",
                Some(json!({"appid": appid, "service_id": "wx79ac3de8be320b71", "units": 3})),
                StatusCode::CREATED,
            )
            .await;
        let listed = server
            .admin_ok("GET", &format!("/packages?appid={appid}"), None, StatusCode::OK)
            .await;
        assert_eq!(listed["items"][0]["package_id"], package["package_id"]);
        assert_eq!(listed["items"][0]["units_left"], json!(3));
    });
}

#[tokio::test]
async fn call_log_filters() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/echo", upstream.base), 2).await;
        for _ in 0..3 {
            server.invoke(&market, "Echo", json!({}), None).await;
        }
        let all = server.calls(&format!("appid={}", market.appid)).await;
        assert_eq!(all.len(), 4, "a token fetch and three invokes: {all:?}");
        let failures = server.calls(&format!("appid={}&errcode=9301010", market.appid)).await;
        assert_eq!(failures.len(), 1);
        let by_id = server
            .calls(&format!("request_id={}", failures[0]["request_id"].as_str().unwrap()))
            .await;
        assert_eq!(by_id.len(), 1);
        let at: Vec<i64> = all.iter().map(|call| call["at_ms"].as_i64().unwrap()).collect();
        assert!(at.windows(2).all(|pair| pair[0] >= pair[1]), "newest first");
        let first_page = server
            .admin_ok("GET", &format!("/calls?appid={}&limit=3", market.appid), None, StatusCode::OK)
            .await;
        let next = first_page["next"].as_str().unwrap();
        let second_page = server
            .admin_ok(
                "GET",
                &format!("/calls?appid={}&limit=3&cursor={next}", market.appid),
                None,
                StatusCode::OK,
            )
            .await;
        assert_eq!(second_page["items"].as_array().unwrap().len(), 1);
        let (status, _) = server.admin("GET", "/calls?since=yesterday", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(server.calls("since=2000-01-01T00:00:00Z&limit=1000").await.len(), 4);
    });
}

fn openapi_routes(document: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

#[tokio::test]
async fn openapi_describes_every_admin_route() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let document: Value = server
            .http
            .get(format!("{}/souk/v1/openapi.json", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let declared: BTreeSet<(String, String)> = ADMIN_ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
        assert_eq!(
            openapi_routes(&document),
            declared,
            "the OpenAPI document and ADMIN_ROUTES disagree"
        );
        for (method, path) in ADMIN_ROUTES {
            let concrete = path
                .replace("{appid}", "wx0")
                .replace("{service_id}", "s0")
                .replace("{name}", "n0")
                .replace("{package_id}", "p0");
            let (status, body) = server.admin(method, &concrete, Some(json!({}))).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is not routed");
            assert!(
                !body["errMsg"].as_str().unwrap_or_default().contains("no such admin route"),
                "{method} {path} is not routed"
            );
        }
        for (_, item) in document["components"]["schemas"].as_object().unwrap() {
            assert!(item.is_object());
        }
    });
}
