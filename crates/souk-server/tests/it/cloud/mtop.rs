//! The MTOP hop of the stock `@tbmp/mp-cloud-sdk` (`cloud-gateway.md` §4): driven with exactly the
//! request shape the SDK 1.5.x sends (`taobao-gateway.md` §3.1), in the three ways a `my.sendMtop`
//! shim may post it, and its answers unwrapped by a port of the SDK's own rule, checked against the
//! outcomes table of §3.3.

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_store::conformance::Store;

use super::upstream::DevService;
use super::{logged, Tenant};
use crate::common::TestServer;

on_both_backends! {
    the_stock_sdk_works_through_the_mtop_door => sqlite_the_stock_sdk_works_through_the_mtop_door, postgres_the_stock_sdk_works_through_the_mtop_door;
}

const MTOP_PATH: &str = "/souk/v1/mtop/mtop.miniapp.cloud.application.request/1.0";

/// The `data` of `my.sendMtop` as SDK 1.5.10 builds it: every object field JSON-stringified,
/// `options` = exts plus the SDK's init options.
fn sdk_data(tenant: &Tenant, origin: &str, path: &str, method: &str, cache: bool) -> Value {
    let mut options = json!({"cloudAppId": tenant.cloud_app_id, "timeout": 5000, "domain": origin, "env": "test"});
    if cache {
        options["cacheType"] = json!(1);
        options["cacheTime"] = json!(60);
    }
    json!({
        "path": path,
        "headers": json!({"X-Foo": "bar"}).to_string(),
        "body": json!({"k": "v"}).to_string(),
        "queryString": json!({"a": 1, "b": "x"}).to_string(),
        "method": method,
        "options": options.to_string(),
        "sdkVersion": "1.5.9",
        "protocols": json!({"Content-Type": "application/json", "mc-timestamp": "1700000000000", "mc-env": "test"}).to_string(),
    })
}

/// How a `my.sendMtop` shim posts the call.
#[derive(Debug, Clone, Copy)]
enum Shim {
    /// The `data` object as a JSON body.
    Json,
    /// `data=<JSON>` as a form, as MTOP clients send it.
    Form,
    /// The whole `my.sendMtop` options as a JSON body.
    Options,
}

async fn send_mtop(server: &TestServer, session: &str, data: &Value, shim: Shim) -> (Value, String) {
    let request = server.http.post(format!("{}{MTOP_PATH}", server.base)).bearer_auth(session);
    let request = match shim {
        Shim::Json => request.header("content-type", "application/json").body(data.to_string()),
        Shim::Form => {
            let form: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("data", &data.to_string())
                .finish();
            request
                .header("content-type", "application/x-www-form-urlencoded;charset=UTF-8")
                .body(form)
        }
        Shim::Options => {
            let options = json!({
                "api": "mtop.miniapp.cloud.application.request", "v": "1.0", "method": "POST",
                "needLogin": true, "sessionOption": "AutoLoginAndManualLogin", "data": data,
            });
            request.header("content-type", "application/json").body(options.to_string())
        }
    };
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "MTOP answers are HTTP 200");
    let request_id = response.headers().get("x-request-id").unwrap().to_str().unwrap().to_owned();
    (response.json().await.unwrap(), request_id)
}

/// What the SDK does with an MTOP answer.
#[derive(Debug, PartialEq)]
enum Sdk {
    /// The promise resolves with this value.
    Resolved(Value),
    /// The promise rejects with `.code` and `.msg`.
    Rejected { code: String, msg: String },
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(Value::Number(number)) => number.as_f64() != Some(0.0),
        Some(Value::String(text)) => !text.is_empty(),
        Some(_) => true,
    }
}

/// A port of SDK 1.5.10's unwrapping: an error iff the payload has `errCode`/`errorCode` or `ret`
/// is not SUCCESS, unless `payload.success` is truthy; the value is `payload.data || {}`.
fn sdk_unwrap(answer: &Value) -> Sdk {
    let ret = answer["ret"][0].as_str().unwrap_or_default();
    let (ret_code, ret_msg) = ret.split_once("::").unwrap_or((ret, ""));
    let payload = &answer["data"];
    let success = truthy(payload.get("success"));
    if ret_code != "SUCCESS" && !success {
        let code = if ret_code == "FAIL_SYS_SESSION_EXPIRED" { "904" } else { "500" };
        return Sdk::Rejected {
            code: code.to_owned(),
            msg: ret_msg.to_owned(),
        };
    }
    let code = [payload.get("errCode"), payload.get("errorCode")]
        .into_iter()
        .flatten()
        .find(|code| truthy(Some(code)));
    if let (Some(code), false) = (code, success) {
        let msg = ["errMessage", "errMsg", "errorMessage"]
            .iter()
            .find_map(|name| payload.get(*name).and_then(Value::as_str))
            .unwrap_or(ret_msg);
        return Sdk::Rejected {
            code: code.as_str().unwrap_or_default().to_owned(),
            msg: msg.to_owned(),
        };
    }
    Sdk::Resolved(if truthy(payload.get("data")) {
        payload["data"].clone()
    } else {
        json!({})
    })
}

fn rejected(code: &str) -> impl Fn(&Sdk) -> bool + '_ {
    move |outcome| matches!(outcome, Sdk::Rejected { code: got, .. } if got == code)
}

async fn the_stock_sdk_works_through_the_mtop_door(store: Store) {
    let server = TestServer::start(store).await;
    let service = DevService::start().await;
    let tenant = Tenant::create(&server, &service, None).await;
    let (session, openid) = tenant.session(&server, "alice").await;
    let origin = service.origin.as_str();

    // §3.1 exactly, each way a shim may post it.
    for shim in [Shim::Json, Shim::Form, Shim::Options] {
        let (answer, request_id) = send_mtop(&server, &session, &sdk_data(&tenant, origin, "/hello", "POST", false), shim).await;
        assert_eq!(answer["ret"], json!(["SUCCESS::调用成功"]), "{shim:?}: {answer}");
        let Sdk::Resolved(value) = sdk_unwrap(&answer) else {
            panic!("{shim:?}: {answer}");
        };
        assert_eq!(value["hello"], json!("world"));
        let seen = service.last();
        assert!(seen.sign_ok, "{shim:?}");
        assert_eq!(
            (seen.method.as_str(), seen.param("a"), seen.param("b")),
            ("POST", Some("1"), Some("x"))
        );
        assert_eq!(seen.body, br#"{"k":"v"}"#);
        assert_eq!(seen.headers.get("x-foo").map(String::as_str), Some("bar"));
        assert_eq!(seen.param("open_id"), Some(openid.as_str()));
        assert_eq!(seen.param("env"), Some("online"), "the cloud app's env, not the SDK's init option");
        let call = logged(&server, &request_id).await;
        assert_eq!((call["route"].clone(), call["errcode"].clone()), (json!("cloud_mtop"), json!(0)));
    }

    // §3.3, row by row, as souk's answers reach the SDK.
    let (srv, tenant_ref, session_ref) = (&server, &tenant, session.as_str());
    let outcome = move |path: &str| {
        let data = sdk_data(tenant_ref, origin, path, "POST", false);
        async move { sdk_unwrap(&send_mtop(srv, session_ref, &data, Shim::Form).await.0) }
    };
    assert_eq!(outcome("/array").await, Sdk::Resolved(json!([1, 2])));
    assert_eq!(outcome("/extra").await, Sdk::Resolved(json!({"a": 1})), "extra fields never arrive");
    assert_eq!(
        outcome("/fail").await,
        Sdk::Rejected {
            code: "BIZ_ERR".into(),
            msg: "bad thing".into()
        }
    );
    assert_eq!(
        outcome("/fail-msg").await,
        Sdk::Resolved(json!({})),
        "no code: the SDK resolves {{}}"
    );
    // Where souk is stricter than the SDK alone: falsy data and a missing `success` are upstream
    // contract errors, rejected with souk's code instead of resolving `{}` or the data.
    assert!(rejected("UPSTREAM_FALSY_DATA")(&outcome("/falsy-zero").await));
    assert!(rejected("UPSTREAM_NOT_ENVELOPE")(&outcome("/no-success").await));
    assert!(rejected("UPSTREAM_HTTP_STATUS")(&outcome("/status500").await));

    // A gateway refusal is `{errCode, errMessage}` with the request id in the message.
    let mut unknown = sdk_data(&tenant, origin, "/hello", "POST", false);
    unknown["options"] = json!(json!({"cloudAppId": "9999999999999999", "domain": origin}).to_string());
    let (answer, request_id) = send_mtop(&server, &session, &unknown, Shim::Json).await;
    assert_eq!(answer["data"]["errCode"], json!("APP_NOT_FOUND"), "{answer}");
    assert!(answer["data"]["errMessage"].as_str().unwrap().ends_with(&request_id));
    assert!(rejected("APP_NOT_FOUND")(&sdk_unwrap(&answer)));

    // exts caching through `options`, and hits logged.
    let cached = sdk_data(&tenant, origin, "/count", "POST", true);
    let (first, _) = send_mtop(&server, &session, &cached, Shim::Form).await;
    let (second, request_id) = send_mtop(&server, &session, &cached, Shim::Form).await;
    assert_eq!(sdk_unwrap(&first), sdk_unwrap(&second));
    assert_eq!(logged(&server, &request_id).await["cache_hit"], json!(true));

    // No session: MTOP's own session failure, which the SDK reports as 904.
    let (answer, _) = send_mtop(&server, "expired", &sdk_data(&tenant, origin, "/hello", "POST", false), Shim::Form).await;
    assert!(rejected("904")(&sdk_unwrap(&answer)), "{answer}");

    // A body that is not the call at all.
    let response = server
        .http
        .post(format!("{}{MTOP_PATH}", server.base))
        .bearer_auth(&session)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(StatusCode::from_u16(response.status().as_u16()).unwrap(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert!(rejected("INVALID_REQUEST")(&sdk_unwrap(&answer)), "{answer}");
}
