//! Customer-service messages end to end (`wire.md` §2 rows "custom send" and "typing", §4 `messages`):
//! a real app server on port 0 receiving signed pushes of every inbound kind, failed pushes retried
//! with backoff and logged, a client reading the SSE stream (resumed with `Last-Event-ID`) and the
//! history, the reply and typing rules on souk's manual clock, and every errcode through HTTP.

use std::io::Cursor;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use souk_store::conformance::{with_sqlite, Store};

use crate::common::TestServer;

on_both_backends! {
    inbound_kinds_are_pushed_signed => sqlite_inbound_kinds_are_pushed_signed, postgres_inbound_kinds_are_pushed_signed;
    failed_pushes_retry_with_backoff_and_are_logged => sqlite_failed_pushes_retry_with_backoff_and_are_logged, postgres_failed_pushes_retry_with_backoff_and_are_logged;
    outbound_kinds_arrive_on_the_stream_in_order => sqlite_outbound_kinds_arrive_on_the_stream_in_order, postgres_outbound_kinds_arrive_on_the_stream_in_order;
    reply_window_and_count => sqlite_reply_window_and_count, postgres_reply_window_and_count;
    typing_rules => sqlite_typing_rules, postgres_typing_rules;
}

const PUSH_TOKEN: &str = "app-push-token-42";
const PAGES: [&str; 2] = ["pages/index/index", "pages/shop/item"];
const BOUNDARY: &str = "souk-messages-boundary";

/// One push the app server received.
#[derive(Debug, Clone)]
struct Push {
    query: Vec<(String, String)>,
    body: Value,
}

impl Push {
    fn param(&self, name: &str) -> &str {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("no {name} in the push query"))
    }
}

/// A real app server: `POST /push` records every push and answers the status it is told to.
struct AppServer {
    base: String,
    pushes: Arc<Mutex<Vec<Push>>>,
    status: Arc<AtomicU16>,
}

type AppServerState = (Arc<Mutex<Vec<Push>>>, Arc<AtomicU16>);

async fn receive_push(State((pushes, status)): State<AppServerState>, RawQuery(query): RawQuery, body: Bytes) -> StatusCode {
    let query = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    pushes.lock().unwrap().push(Push { query, body });
    StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap()
}

impl AppServer {
    async fn start() -> AppServer {
        let pushes: Arc<Mutex<Vec<Push>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let router = Router::new()
            .route("/push", post(receive_push))
            .with_state((pushes.clone(), status.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        AppServer { base, pushes, status }
    }

    fn pushes(&self) -> Vec<Push> {
        self.pushes.lock().unwrap().clone()
    }

    /// Waits (real time, bounded) until `n` pushes arrived.
    async fn wait_for(&self, n: usize) -> Vec<Push> {
        for _ in 0..200 {
            let pushes = self.pushes();
            if pushes.len() >= n {
                return pushes;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} pushes, got {:?}", self.pushes());
    }
}

/// The platform's signature, computed here independently of souk.
fn expected_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [token, timestamp, nonce];
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

/// An app with a push URL, pages, a token, and a user with a client session.
struct Chat {
    server: TestServer,
    app: AppServer,
    appid: String,
    secret: String,
    token: String,
    session: String,
    openid: String,
}

impl Chat {
    async fn start(store: Store) -> Chat {
        let server = TestServer::start(store).await;
        let app = AppServer::start().await;
        let created = server
            .admin_ok(
                "POST",
                "/apps",
                Some(json!({
                    "name": "chat app",
                    "pages": PAGES,
                    "message_url": format!("{}/push", app.base),
                    "message_token": PUSH_TOKEN,
                })),
                StatusCode::CREATED,
            )
            .await;
        let appid = created["appid"].as_str().unwrap().to_owned();
        let secret = created["secret"].as_str().unwrap().to_owned();
        let token = server.token(&appid, &secret).await;
        let (session, openid) = mint(&server, &token, "alice").await;
        Chat {
            server,
            app,
            appid,
            secret,
            token,
            session,
            openid,
        }
    }

    /// A fresh token and session (after the clock moved past their 2 hours); the openid stays.
    async fn refresh(&mut self) {
        self.token = self.server.token(&self.appid, &self.secret).await;
        let (session, openid) = mint(&self.server, &self.token, "alice").await;
        assert_eq!(openid, self.openid);
        self.session = session;
    }

    /// The user's `POST messages`: status and body.
    async fn user_says(&self, body: Value) -> (StatusCode, Value) {
        let response = self
            .server
            .http
            .post(format!("{}/souk/v1/client/messages", self.server.base))
            .bearer_auth(&self.session)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap())
    }

    /// A user's text that must be accepted; answers its item.
    async fn user_text(&self, text: &str) -> Value {
        let (status, item) = self.user_says(json!({"msgtype": "text", "text": {"content": text}})).await;
        assert_eq!(status, StatusCode::OK, "{item}");
        item
    }

    /// `custom/send` with `touser` set to the user unless the body has one.
    async fn send(&self, mut body: Value) -> Value {
        if body.get("touser").is_none() {
            body["touser"] = json!(self.openid);
        }
        self.server
            .wechat_post(
                &format!("/cgi-bin/message/custom/send?access_token={}", self.token),
                body.to_string(),
            )
            .await
    }

    async fn send_text(&self, text: &str) -> Value {
        self.send(json!({"msgtype": "text", "text": {"content": text}})).await
    }

    async fn typing(&self, command: &str) -> Value {
        let body = json!({"touser": self.openid, "command": command});
        self.server
            .wechat_post(
                &format!("/cgi-bin/message/custom/typing?access_token={}", self.token),
                body.to_string(),
            )
            .await
    }

    async fn upload_image(&self, token: &str) -> String {
        let image = ImageBuffer::from_fn(8, 8, |x, y| Rgb([(x * 30) as u8, (y * 30) as u8, 99]));
        let mut png = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image).write_to(&mut png, ImageFormat::Png).unwrap();
        let mut body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&png.into_inner());
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let answer: Value = self
            .server
            .http
            .post(format!("{}/cgi-bin/media/upload?access_token={token}&type=image", self.server.base))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["media_id"]
            .as_str()
            .unwrap_or_else(|| panic!("upload failed: {answer}"))
            .to_owned()
    }

    /// `GET messages?since=`.
    async fn history(&self, since: &str) -> (StatusCode, Value) {
        let response = self
            .server
            .http
            .get(format!("{}/souk/v1/client/messages?since={since}", self.server.base))
            .bearer_auth(&self.session)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap())
    }

    async fn open_stream(&self, last_event_id: Option<&str>) -> SseReader {
        let mut request = self
            .server
            .http
            .get(format!("{}/souk/v1/client/messages/stream", self.server.base))
            .bearer_auth(&self.session);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        SseReader {
            response,
            buffer: String::new(),
        }
    }
}

/// Mints a session for `user`: `(session, openid)`.
async fn mint(server: &TestServer, token: &str, user: &str) -> (String, String) {
    let answer: Value = server
        .http
        .post(format!("{}/souk/v1/client-sessions?access_token={token}", server.base))
        .body(json!({"user": user}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        answer["session"].as_str().unwrap().to_owned(),
        answer["openid"].as_str().unwrap().to_owned(),
    )
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
struct SseEvent {
    id: Option<String>,
    event: String,
    data: Value,
}

/// Reads events from a streaming answer, skipping comments (keep-alives).
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(Duration::from_secs(5), self.read_event())
            .await
            .expect("an event within 5 s")
    }

    async fn read_event(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, "message".to_owned(), String::new());
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("event:") {
                        event = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment
                }
                return SseEvent {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let chunk = self.response.chunk().await.unwrap().expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

fn errcode(answer: &Value) -> i64 {
    answer["errcode"].as_i64().unwrap_or_else(|| panic!("no errcode: {answer}"))
}

async fn inbound_kinds_are_pushed_signed(store: Store) {
    let chat = Chat::start(store).await;
    let workers = chat.server.start_job_workers();
    let media_id = chat.upload_image(&chat.token).await;
    let bodies = [
        json!({"msgtype": "event", "event": "user_enter_tempsession"}),
        json!({"msgtype": "text", "text": {"content": "你好, is my order shipped?"}}),
        json!({"msgtype": "image", "image": {"media_id": media_id}}),
        json!({"msgtype": "miniprogrampage", "miniprogrampage": {"title": "this one", "pagepath": "pages/shop/item?id=7", "thumb_media_id": media_id}}),
    ];
    for (n, body) in bodies.iter().enumerate() {
        let (status, item) = chat.user_says(body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{item}");
        assert_eq!(item["id"], json!(n + 1));
        assert_eq!(item["direction"], "in");
        assert_eq!(item["msgtype"], body["msgtype"]);
    }
    let pushes = chat.app.wait_for(4).await;
    let now_s = chat.server.clock_now() / 1000;
    let mut msg_ids = Vec::new();
    for push in &pushes {
        let (timestamp, nonce) = (push.param("timestamp"), push.param("nonce"));
        assert_eq!(
            push.param("signature"),
            expected_signature(PUSH_TOKEN, timestamp, nonce),
            "{push:?}"
        );
        assert!((timestamp.parse::<i64>().unwrap() - now_s).abs() <= 1);
        let body = &push.body;
        assert_eq!(body["ToUserName"], json!(chat.appid));
        assert_eq!(body["FromUserName"], json!(chat.openid));
        assert!((body["CreateTime"].as_i64().unwrap() - now_s).abs() <= 1);
        msg_ids.push(body["MsgId"].as_i64().expect("MsgId is a number"));
        match body["MsgType"].as_str().unwrap() {
            "text" => assert_eq!(body["Content"], "你好, is my order shipped?"),
            "image" => assert_eq!(body["MediaId"], json!(media_id)),
            "miniprogrampage" => {
                assert_eq!(body["Title"], "this one");
                assert_eq!(body["PagePath"], "pages/shop/item?id=7");
                assert_eq!(body["ThumbMediaId"], json!(media_id));
                assert_eq!(body["AppId"], json!(chat.appid));
            }
            "event" => assert_eq!(body["Event"], "user_enter_tempsession"),
            other => panic!("unexpected MsgType {other}"),
        }
    }
    msg_ids.sort_unstable();
    msg_ids.dedup();
    assert_eq!(msg_ids.len(), 4, "each push has its own MsgId");
    let mut kinds: Vec<String> = pushes.iter().map(|p| p.body["MsgType"].as_str().unwrap().to_owned()).collect();
    kinds.sort();
    assert_eq!(kinds, ["event", "image", "miniprogrampage", "text"]);

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(chat.app.pushes().len(), 4, "each message is pushed once");
    let logged = chat.server.calls(&format!("appid={}", chat.appid)).await;
    let push_calls: Vec<&Value> = logged.iter().filter(|call| call["route"] == "message_push").collect();
    assert_eq!(push_calls.len(), 4);
    assert!(push_calls
        .iter()
        .all(|call| call["errcode"] == 0 && call["openid"] == json!(chat.openid)));
    workers.abort();
}

async fn failed_pushes_retry_with_backoff_and_are_logged(store: Store) {
    let chat = Chat::start(store).await;
    chat.app.status.store(500, Ordering::SeqCst);
    chat.user_text("anyone there?").await;
    let souk = &chat.server.souk;
    assert_eq!(souk.run_due_message_pushes().await, 1);
    assert_eq!(chat.app.pushes().len(), 1);
    assert_eq!(souk.run_due_message_pushes().await, 0, "the retry waits for its backoff");
    chat.server.clock.advance_ms(5_000);
    assert_eq!(souk.run_due_message_pushes().await, 1, "first retry after 5 s");
    chat.server.clock.advance_ms(5_000);
    assert_eq!(souk.run_due_message_pushes().await, 0, "the second retry waits 10 s");
    chat.app.status.store(204, Ordering::SeqCst);
    chat.server.clock.advance_ms(5_000);
    assert_eq!(souk.run_due_message_pushes().await, 1);
    chat.server.clock.advance_ms(3_600_000);
    assert_eq!(souk.run_due_message_pushes().await, 0, "delivered: never pushed again");
    let pushes = chat.app.pushes();
    assert_eq!(pushes.len(), 3);
    let msg_id = &pushes[0].body["MsgId"];
    assert!(
        pushes.iter().all(|push| &push.body["MsgId"] == msg_id),
        "the same message each time"
    );

    let logged = chat.server.calls("limit=100").await;
    let mut attempts: Vec<&Value> = logged.iter().filter(|call| call["route"] == "message_push").collect();
    attempts.reverse(); // oldest first
    let codes: Vec<i64> = attempts.iter().map(|call| call["errcode"].as_i64().unwrap()).collect();
    assert_eq!(codes, [-1, -1, 0]);
    let first = attempts[0]["message"].as_str().unwrap();
    assert!(first.contains("HTTP 500") && first.contains("will retry"), "{first}");
}

async fn outbound_kinds_arrive_on_the_stream_in_order(store: Store) {
    let chat = Chat::start(store).await;
    chat.user_text("hello").await;
    let media_id = chat.upload_image(&chat.token).await;
    let mut stream = chat.open_stream(None).await;
    let first = stream.next().await;
    assert_eq!((first.id.as_deref(), first.event.as_str()), (Some("1"), "message"));
    assert_eq!(first.data["direction"], "in");
    assert_eq!(first.data["text"]["content"], "hello");

    let outbound = [
        json!({"msgtype": "text", "text": {"content": "hi, how can we help?"}}),
        json!({"msgtype": "image", "image": {"media_id": media_id}}),
        json!({"msgtype": "link", "link": {"title": "Returns", "description": "How to send it back", "url": "https://shop.example/returns", "thumb_url": "https://shop.example/r.png"}}),
        json!({"msgtype": "miniprogrampage", "miniprogrampage": {"title": "Your order", "pagepath": "pages/shop/item?id=7", "thumb_media_id": media_id}}),
    ];
    for body in &outbound {
        assert_eq!(errcode(&chat.send(body.clone()).await), 0);
    }
    for (n, body) in outbound.iter().enumerate() {
        let event = stream.next().await;
        assert_eq!(event.id, Some((n + 2).to_string()), "{event:?}");
        assert_eq!(event.data["direction"], "out");
        let msgtype = body["msgtype"].as_str().unwrap();
        assert_eq!(event.data["msgtype"], msgtype);
        assert_eq!(event.data[msgtype], body[msgtype]);
    }

    assert_eq!(errcode(&chat.typing("Typing").await), 0);
    let typing = stream.next().await;
    assert_eq!((typing.id, typing.event.as_str()), (None, "typing"));
    assert_eq!(typing.data, json!({"typing": true, "expires_in": 15}));
    assert_eq!(errcode(&chat.typing("CancelTyping").await), 0);
    assert_eq!(stream.next().await.data, json!({"typing": false}));
    drop(stream);

    // Offline: nothing is lost; the client resumes from the last id it saw.
    assert_eq!(errcode(&chat.send_text("are you still there?").await), 0);
    let mut resumed = chat.open_stream(Some("3")).await;
    for id in ["4", "5", "6"] {
        assert_eq!(resumed.next().await.id.as_deref(), Some(id));
    }
    chat.user_text("yes").await;
    let live = resumed.next().await;
    assert_eq!((live.id.as_deref(), &live.data["direction"]), (Some("7"), &json!("in")));
    assert_eq!(errcode(&chat.typing("Typing").await), 0);
    assert_eq!(resumed.next().await.data["typing"], true);
    assert_eq!(errcode(&chat.send_text("found it").await), 0);
    assert_eq!(resumed.next().await.id.as_deref(), Some("8"));
    assert_eq!(resumed.next().await.data, json!({"typing": false}), "a message ends typing");

    let (status, all) = chat.history("0").await;
    assert_eq!(status, StatusCode::OK);
    let items = all["items"].as_array().unwrap();
    assert_eq!(
        items.iter().map(|item| item["id"].as_i64().unwrap()).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    let directions: Vec<&str> = items.iter().map(|item| item["direction"].as_str().unwrap()).collect();
    assert_eq!(directions, ["in", "out", "out", "out", "out", "out", "in", "out"]);
    assert_eq!(items[3]["link"], outbound[2]["link"]);
    let (_, later) = chat.history("5").await;
    assert_eq!(later["items"].as_array().unwrap().len(), 3);
    let (status, bad) = chat.history("-1").await;
    assert_eq!((status, &bad["errCode"]), (StatusCode::BAD_REQUEST, &json!(-1)));

    // Shutdown ends open streams, so they do not hold the graceful shutdown.
    chat.server.souk.close_message_streams();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = resumed.response.chunk().await.unwrap() {
            assert!(String::from_utf8_lossy(&chunk).starts_with(':'), "only keep-alives are left");
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ended");
}

async fn reply_window_and_count(store: Store) {
    let mut chat = Chat::start(store).await;
    let answer = chat.send_text("hello?").await;
    assert_eq!(errcode(&answer), 45015, "the user never wrote: {answer}");
    chat.user_text("help").await;
    for n in 0..5 {
        assert_eq!(errcode(&chat.send_text(&format!("reply {n}")).await), 0);
    }
    let answer = chat.send_text("one more").await;
    assert_eq!(errcode(&answer), 45047, "{answer}");
    assert!(answer["errmsg"].as_str().unwrap().contains("out of response count limit"));
    chat.user_text("still need help").await;
    assert_eq!(errcode(&chat.send_text("on it").await), 0, "a new user message allows 5 more");
    chat.server.clock.advance_ms(48 * 3_600_000);
    chat.refresh().await;
    assert_eq!(errcode(&chat.send_text("48 h on the dot").await), 0);
    chat.server.clock.advance_ms(1_000);
    let answer = chat.send_text("too late").await;
    assert_eq!(errcode(&answer), 45015, "{answer}");
    assert!(answer["errmsg"].as_str().unwrap().contains("response out of time limit"));
    chat.user_text("back again").await;
    assert_eq!(errcode(&chat.send_text("welcome back").await), 0);

    let unknown = chat
        .send(json!({"touser": "oNOBODY", "msgtype": "text", "text": {"content": "x"}}))
        .await;
    assert_eq!(errcode(&unknown), 40003);
    let (_, other_openid) = mint(&chat.server, &chat.token, "bob").await;
    let bob = chat
        .send(json!({"touser": other_openid, "msgtype": "text", "text": {"content": "x"}}))
        .await;
    assert_eq!(errcode(&bob), 45015, "the window is per user");
}

async fn typing_rules(store: Store) {
    let chat = Chat::start(store).await;
    let answer = chat.typing("Typing").await;
    assert_eq!(errcode(&answer), 45080, "no exchange yet: {answer}");
    chat.user_text("hi").await;
    assert_eq!(errcode(&chat.typing("Typing").await), 0);
    let answer = chat.typing("Typing").await;
    assert_eq!(errcode(&answer), 45081, "{answer}");
    chat.server.clock.advance_ms(15_000);
    assert_eq!(errcode(&chat.typing("Typing").await), 0, "typing ended by itself after 15 s");
    assert_eq!(errcode(&chat.typing("CancelTyping").await), 0);
    assert_eq!(errcode(&chat.typing("Typing").await), 0, "cancelled");
    assert_eq!(errcode(&chat.send_text("here you go").await), 0);
    assert_eq!(errcode(&chat.typing("Typing").await), 0, "a message ends typing");
    chat.server.clock.advance_ms(30_001);
    assert_eq!(errcode(&chat.typing("Typing").await), 45080, "the last exchange is over 30 s old");
    assert_eq!(errcode(&chat.typing("typing").await), 45072);
    let missing = chat
        .server
        .wechat_post(
            &format!("/cgi-bin/message/custom/typing?access_token={}", chat.token),
            json!({"touser": chat.openid}).to_string(),
        )
        .await;
    assert_eq!(errcode(&missing), 45072);
    let unknown = chat
        .server
        .wechat_post(
            &format!("/cgi-bin/message/custom/typing?access_token={}", chat.token),
            json!({"touser": "oNOBODY", "command": "Typing"}).to_string(),
        )
        .await;
    assert_eq!(errcode(&unknown), 40003);
}

#[tokio::test]
async fn every_field_answers_its_errcode() {
    with_sqlite(|store| async move {
        let chat = Chat::start(store).await;
        chat.user_text("hi").await;
        let media_id = chat.upload_image(&chat.token).await;
        let (other_appid, other_secret) = chat.server.create_app().await;
        let other_token = chat.server.token(&other_appid, &other_secret).await;
        let foreign_media = chat.upload_image(&other_token).await;
        let long = "长".repeat(700);
        let link = |url: &str| json!({"msgtype": "link", "link": {"title": "t", "description": "d", "url": url, "thumb_url": "https://a.example/t.png"}});
        let card = |page: &str, thumb: &str| json!({"msgtype": "miniprogrampage", "miniprogrampage": {"title": "t", "pagepath": page, "thumb_media_id": thumb}});
        let cases = [
            (json!({"msgtype": "voice", "voice": {"media_id": media_id}}), 40008, "msgtype"),
            (json!({"text": {"content": "x"}}), 40008, "msgtype is missing"),
            (json!({"msgtype": "text"}), 47001, "text is missing"),
            (json!({"msgtype": "text", "text": {"content": ""}}), 44004, "text.content is empty"),
            (json!({"msgtype": "text", "text": {"content": long}}), 45002, "text.content"),
            (json!({"msgtype": "image", "image": {}}), 40007, "image.media_id is missing"),
            (json!({"msgtype": "image", "image": {"media_id": "nope"}}), 40007, "image.media_id"),
            (json!({"msgtype": "image", "image": {"media_id": foreign_media}}), 40007, "image.media_id"),
            (link("javascript:alert(1)"), 47001, "link.url"),
            (json!({"msgtype": "link", "link": {"title": "t", "url": "https://a.example"}}), 47001, "link.description is missing"),
            (card("pages/secret/admin", &media_id), 40165, "not a registered page"),
            (card("pages/index/index", "nope"), 40007, "thumb_media_id"),
            (json!({"touser": "", "msgtype": "text", "text": {"content": "x"}}), 40003, "touser is missing"),
        ];
        for (body, code, words) in cases {
            let answer = chat.send(body.clone()).await;
            assert_eq!(errcode(&answer), code, "{body}: {answer}");
            let errmsg = answer["errmsg"].as_str().unwrap();
            assert!(errmsg.contains(words) && errmsg.contains("rid: "), "{errmsg}");
        }
        let path = format!("/cgi-bin/message/custom/send?access_token={}", chat.token);
        assert_eq!(errcode(&chat.server.wechat_post(&path, "").await), 44002);
        assert_eq!(errcode(&chat.server.wechat_post(&path, "{not json").await), 47001);
        assert_eq!(errcode(&chat.server.wechat_get(&path).await), 43002);
        assert_eq!(errcode(&chat.server.wechat_post("/cgi-bin/message/custom/send", "{}").await), 41001);
        let refused = chat.server.calls("limit=100").await;
        assert!(refused.iter().any(|call| call["route"] == "send" && call["errcode"] == 40165));

        let (status, answer) = chat.user_says(json!({"msgtype": "link", "link": {}})).await;
        assert_eq!((status, &answer["errCode"]), (StatusCode::BAD_REQUEST, &json!(-1)), "users send no links");
        let (status, answer) = chat.user_says(json!({"msgtype": "image", "image": {"media_id": foreign_media}})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        let card = json!({"msgtype": "miniprogrampage", "miniprogrampage": {"title": "t", "pagepath": "pages/nope", "thumb_media_id": media_id}});
        let (status, answer) = chat.user_says(card).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["errMsg"].as_str().unwrap().contains("not a registered page"));
        let (status, _) = chat.user_says(json!({"msgtype": "event", "event": "subscribe"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let anonymous = chat
            .server
            .http
            .get(format!("{}/souk/v1/client/messages/stream", chat.server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status().as_u16(), 401);
    })
    .await;
}
