//! PostgreSQL unreachable or hung: souk on PostgreSQL through a TCP proxy written here that forwards,
//! swallows everything (a hung server or a black-holed network), swallows only the answers, or
//! refuses. `/readyz` turns 503 within its bound and back; market calls fail clearly, with a request
//! id, within a bound; after recovery and the reaper, the package's ledger is exact.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_store::{Migrations, StoreSettings};
use sqlx::{Connection, Executor, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::common::{Market, TestServer, Upstream};

/// What the proxy does with the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Both ways, as a network would.
    Forward,
    /// Accepts and keeps connections, forwards nothing, both ways.
    Blackhole,
    /// Forwards requests to PostgreSQL but drops its answers: statements run, nobody hears.
    Deaf,
    /// Closes every connection, open or new.
    Refuse,
}

/// A TCP proxy in front of PostgreSQL whose [`Mode`] the test switches.
struct Proxy {
    addr: std::net::SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Forward);
        let modes = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *modes.borrow() == Mode::Refuse {
                    continue;
                }
                tokio::spawn(pipe(client, upstream.clone(), modes.subscribe()));
            }
        });
        Proxy { addr, mode }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

/// One proxied connection: ends (closing both sides) when either side does or the mode is `Refuse`.
async fn pipe(client: TcpStream, upstream: String, mode: watch::Receiver<Mode>) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut refused = mode.clone();
    tokio::select! {
        () = copy(client_read, server_write, mode.clone(), |m| m == Mode::Forward || m == Mode::Deaf) => {}
        () = copy(server_read, client_write, mode, |m| m == Mode::Forward) => {}
        _ = refused.wait_for(|m| *m == Mode::Refuse) => {}
    }
}

/// Copies `from` to `to` while `passes(mode)`, dropping what arrives otherwise.
async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: watch::Receiver<Mode>,
    passes: fn(Mode) -> bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if passes(*mode.borrow()) && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// `url` with its host and port replaced by `addr`.
fn via(url: &str, addr: std::net::SocketAddr) -> String {
    let start = url.find("://").unwrap() + 3;
    let rest = &url[start..];
    let host_start = rest.find('@').map_or(0, |at| at + 1);
    let host_end = rest.find('/').unwrap_or(rest.len());
    format!("{}{}{addr}{}", &url[..start], &rest[..host_start], &rest[host_end..])
}

/// `host:port` of a `postgres://` URL.
fn host_port(url: &str) -> String {
    let rest = &url[url.find("://").unwrap() + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// Short bounds, so the outage shows within a test's patience.
const SETTINGS: StoreSettings = StoreSettings {
    acquire_timeout: Duration::from_millis(500),
    statement_timeout: Duration::from_millis(1000),
    idle_in_transaction_timeout: Duration::from_millis(2000),
};
/// The longest a market call may take during an outage with [`SETTINGS`]: a caller's wait for its
/// batch (two batches of acquire + statement + the client grace of 1 s) and its other store calls.
const CALL_BOUND: Duration = Duration::from_secs(8);

/// `/readyz`: its status and body, and how long it took (panics past 5 s: it must be bounded).
async fn readyz(server: &TestServer) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(5), server.http.get(format!("{}/readyz", server.base)).send())
        .await
        .expect("/readyz answers within 5 s")
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap(), started.elapsed())
}

/// Polls `/readyz` until it answers `status` (at most `within`).
async fn until_ready_is(server: &TestServer, status: u16, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (now, body, _) = readyz(server).await;
        if now == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz still {now} ({body}), expected {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A market call that must answer within [`CALL_BOUND`]; its answer and duration.
async fn bounded_invoke(server: &TestServer, market: &Market) -> (Value, Duration) {
    let started = Instant::now();
    let answer = tokio::time::timeout(CALL_BOUND, server.invoke(market, "Echo", json!({"n": 1}), None))
        .await
        .unwrap_or_else(|_| panic!("a market call hung past {CALL_BOUND:?}"));
    (answer, started.elapsed())
}

/// An error answer with a request id and no database words.
fn assert_clear_failure(answer: &Value) {
    assert_ne!(answer["errcode"], json!(0), "{answer}");
    let errmsg = answer["errmsg"].as_str().unwrap_or_default();
    assert!(errmsg.contains(" rid: "), "{answer}");
    assert!(!errmsg.to_lowercase().contains("postgres"), "{answer}");
}

/// The package's charges by state, read straight from the database: (state, count, units).
async fn charges(direct: &mut PgConnection, package_id: &str) -> Vec<(String, i64, i64)> {
    sqlx::query_as(
        "SELECT state, COUNT(*), COALESCE(SUM(units), 0)::BIGINT FROM charges WHERE package_id = $1 GROUP BY state ORDER BY state",
    )
    .bind(package_id)
    .fetch_all(direct)
    .await
    .unwrap()
}

fn count_in(charges: &[(String, i64, i64)], state: &str) -> (i64, i64) {
    charges
        .iter()
        .find(|(s, _, _)| s == state)
        .map_or((0, 0), |(_, n, units)| (*n, *units))
}

/// Lets the reaper release what is still reserved, then checks that nothing is left reserved and that
/// the package's units left are its 100 minus the committed ones; answers the ledger.
async fn reap_and_check_units(server: &TestServer, direct: &mut PgConnection, market: &Market) -> Vec<(String, i64, i64)> {
    server.clock.advance_ms(souk_core::maintenance::STALE_RESERVATION_MS + 1);
    server.souk.run_maintenance().await;
    let ledger = charges(direct, &market.package_id).await;
    assert_eq!(count_in(&ledger, "reserved"), (0, 0), "{ledger:?}");
    let committed_units = count_in(&ledger, "committed").1;
    assert_eq!(server.units_left(&market.package_id).await, 100 - committed_units);
    ledger
}

/// Starts souk on a fresh PostgreSQL database behind a proxy, with a market whose API calls the
/// upstream's `path`; answers the pieces.
async fn behind_proxy(url: &str, path: &str) -> (Proxy, TestServer, Upstream, Market, PgConnection) {
    let proxy = Proxy::start(host_port(url)).await;
    let store = souk_store::open_with_settings(&via(url, proxy.addr), Migrations::Apply, SETTINGS)
        .await
        .unwrap();
    let server = TestServer::start(store).await;
    let upstream = Upstream::start().await;
    let market = server.market(&format!("{}{path}", upstream.base), 100).await;
    let direct = PgConnection::connect(url).await.unwrap();
    (proxy, server, upstream, market, direct)
}

/// Black-holed, then refused, then back: `/readyz` follows within its bound, calls fail clearly and
/// in bounded time without reaching the provider, and afterwards units committed are exactly the
/// successful calls, with nothing left reserved once the reaper has run.
#[tokio::test]
async fn postgres_outage_is_bounded_and_charges_stay_exact() {
    souk_store::conformance::with_postgres_url(|url| async move {
        let (proxy, server, upstream, market, mut direct) = behind_proxy(&url, "/echo").await;
        let mut succeeded = 0;
        for _ in 0..3 {
            let (answer, _) = bounded_invoke(&server, &market).await;
            assert_eq!(answer["errcode"], json!(0), "{answer}");
            succeeded += 1;
        }
        // Their commits follow the answers (souk_core::settling): landed before the outage.
        server.souk.pending_commits().settled_through_now().await;
        assert_eq!(readyz(&server).await.0, 200);

        for mode in [Mode::Blackhole, Mode::Refuse] {
            proxy.set(mode);
            let (status, body, took) = readyz(&server).await;
            assert_eq!(status, 503, "{mode:?}: {body}");
            assert_eq!(body["not_ready"], json!(["database"]), "{body}");
            assert!(
                took < souk_server::routes::ops::READY_TIMEOUT + Duration::from_millis(500),
                "{mode:?}: {took:?}"
            );
            let provider_calls = upstream.count();
            for _ in 0..3 {
                let (answer, took) = bounded_invoke(&server, &market).await;
                assert_clear_failure(&answer);
                assert!(took < CALL_BOUND, "{mode:?}: {took:?}");
            }
            assert_eq!(upstream.count(), provider_calls, "{mode:?}: no provider call without a reservation");
        }

        proxy.set(Mode::Forward);
        until_ready_is(&server, 200, Duration::from_secs(10)).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut after = 0;
        while after < 3 {
            let (answer, _) = bounded_invoke(&server, &market).await;
            if answer["errcode"] == json!(0) {
                after += 1;
            } else {
                assert!(Instant::now() < deadline, "calls keep failing after recovery: {answer}");
            }
        }
        succeeded += after;
        assert_eq!(upstream.count(), succeeded, "the provider saw exactly the successful calls");

        let ledger = reap_and_check_units(&server, &mut direct, &market).await;
        assert_eq!(count_in(&ledger, "committed").0, succeeded as i64, "{ledger:?}");
    })
    .await;
}

/// With the default bounds (a connection wait longer than the probe's), `/readyz` still answers 503
/// within its own bound while PostgreSQL answers nothing.
#[tokio::test]
async fn readyz_answers_within_its_bound_with_default_settings() {
    souk_store::conformance::with_postgres_url(|url| async move {
        let proxy = Proxy::start(host_port(&url)).await;
        let store = souk_store::open(&via(&url, proxy.addr)).await.unwrap();
        let server = TestServer::start(store).await;
        assert_eq!(readyz(&server).await.0, 200);
        proxy.set(Mode::Blackhole);
        let (status, body, took) = readyz(&server).await;
        assert_eq!((status, &body["not_ready"]), (503, &json!(["database"])), "{body}");
        assert!(
            took < souk_server::routes::ops::READY_TIMEOUT + Duration::from_millis(500),
            "{took:?}"
        );
        proxy.set(Mode::Forward);
        until_ready_is(&server, 200, Duration::from_secs(10)).await;
    })
    .await;
}

/// A reservation stuck behind a row lock ends at PostgreSQL's `statement_timeout`: the caller gets
/// an error, nothing is reserved even once the lock goes, and the batch task serves the next call.
#[tokio::test]
async fn a_reservation_stuck_on_a_lock_ends_at_the_statement_timeout() {
    souk_store::conformance::with_postgres_url(|url| async move {
        let (_proxy, server, upstream, market, mut direct) = behind_proxy(&url, "/echo").await;
        let mut locker = PgConnection::connect(&url).await.unwrap();
        locker.execute("BEGIN").await.unwrap();
        sqlx::query("SELECT 1 FROM packages WHERE package_id = $1 FOR UPDATE")
            .bind(&market.package_id)
            .execute(&mut locker)
            .await
            .unwrap();
        let (answer, took) = bounded_invoke(&server, &market).await;
        assert_clear_failure(&answer);
        assert!(took < CALL_BOUND, "{took:?}");
        locker.execute("COMMIT").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ledger = charges(&mut direct, &market.package_id).await;
        assert!(ledger.is_empty(), "the cancelled statement kept nothing: {ledger:?}");
        assert_eq!(upstream.count(), 0);

        let (answer, _) = bounded_invoke(&server, &market).await;
        assert_eq!(answer["errcode"], json!(0), "the batch task goes on: {answer}");
        // The commit follows the answer (souk_core::settling).
        server.souk.pending_commits().settled_through_now().await;
        let ledger = charges(&mut direct, &market.package_id).await;
        assert_eq!(count_in(&ledger, "committed").0, 1, "{ledger:?}");
    })
    .await;
}

/// A reservation PostgreSQL commits but whose answer never arrives: the caller gives up within its
/// bound and answers an error, the provider is not called, and the unit (reserved in the database)
/// is released by the reaper, never committed.
#[tokio::test]
async fn a_reservation_whose_answer_is_lost_is_released_never_charged() {
    souk_store::conformance::with_postgres_url(|url| async move {
        let (proxy, server, upstream, market, mut direct) = behind_proxy(&url, "/echo").await;
        let (answer, _) = bounded_invoke(&server, &market).await;
        assert_eq!(answer["errcode"], json!(0), "{answer}");
        server.souk.pending_commits().settled_through_now().await;

        // Hold the package row so that the next reservation waits inside PostgreSQL.
        let mut locker = PgConnection::connect(&url).await.unwrap();
        locker.execute("BEGIN").await.unwrap();
        sqlx::query("SELECT 1 FROM packages WHERE package_id = $1 FOR UPDATE")
            .bind(&market.package_id)
            .execute(&mut locker)
            .await
            .unwrap();
        let server = Arc::new(server);
        let task = tokio::spawn({
            let (server, market) = (server.clone(), market.clone());
            async move { bounded_invoke(&server, &market).await }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE '%souk_reserve_batch%'",
            )
            .fetch_one(&mut direct)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the reservation never reached PostgreSQL");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Its answer will be lost; then the reservation commits.
        proxy.set(Mode::Deaf);
        locker.execute("COMMIT").await.unwrap();
        let (answer, took) = task.await.unwrap();
        assert_clear_failure(&answer);
        assert!(took < CALL_BOUND, "{took:?}");
        assert_eq!(upstream.count(), 1, "the provider is not called without a known reservation");
        let ledger = charges(&mut direct, &market.package_id).await;
        assert_eq!(
            count_in(&ledger, "reserved").0,
            1,
            "the lost answer's reservation was committed by PostgreSQL: {ledger:?}"
        );

        proxy.set(Mode::Forward);
        until_ready_is(&server, 200, Duration::from_secs(10)).await;
        let ledger = reap_and_check_units(&server, &mut direct, &market).await;
        assert_eq!(
            count_in(&ledger, "committed").0,
            1,
            "only the successful call is charged: {ledger:?}"
        );
        assert_eq!(count_in(&ledger, "released").0, 1, "{ledger:?}");
    })
    .await;
}

/// Starts a call of `Echo` and returns once the provider has it (a `/delay` market then leaves
/// time between the reservation and the settlement); the task answers the call's answer.
async fn invoke_until_the_provider_has_it(
    server: &Arc<TestServer>,
    market: &Market,
    upstream: &Upstream,
) -> tokio::task::JoinHandle<Value> {
    let call = tokio::spawn({
        let (server, market) = (server.clone(), market.clone());
        async move { server.invoke(&market, "Echo", json!({}), None).await }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while upstream.count() == 0 {
        assert!(Instant::now() < deadline, "the provider was never called");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    call
}

/// A settlement that fails after a successful provider call (PostgreSQL refuses connections just
/// then) is tried again in the background: once PostgreSQL is back the unit is committed, not left
/// for the reaper to release (a successful call would otherwise go uncharged).
#[tokio::test]
async fn a_settlement_that_fails_is_tried_again_until_it_commits() {
    souk_store::conformance::with_postgres_url(|url| async move {
        // The provider answers after 300 ms: time to cut PostgreSQL off between reservation and settlement.
        let (proxy, server, upstream, market, mut direct) = behind_proxy(&url, "/delay").await;
        let server = Arc::new(server);
        let call = invoke_until_the_provider_has_it(&server, &market, &upstream).await;
        proxy.set(Mode::Refuse);
        let answer = call.await.unwrap();
        assert_eq!(answer["errcode"], json!(0), "the provider succeeded: {answer}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            count_in(&charges(&mut direct, &market.package_id).await, "committed").0,
            0,
            "the settlement could not have reached PostgreSQL yet"
        );

        proxy.set(Mode::Forward);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ledger = charges(&mut direct, &market.package_id).await;
            if count_in(&ledger, "committed") == (1, 1) && count_in(&ledger, "reserved").0 == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the settlement was not tried again: {ledger:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// A successful call answers before its commit (souk_core::settling): while the commit waits
/// (here on a row lock held on the charge), the charge reads `reserved`, the node counts the commit
/// in flight and a ledger read through the node waits for it; once it lands the ledger reads
/// `committed`, with the units taken once.
#[tokio::test]
async fn a_ledger_read_waits_for_the_commit_of_an_answered_call() {
    souk_store::conformance::with_postgres_url(|url| async move {
        // The provider answers after 300 ms: time to lock the charge between reservation and commit.
        let (_proxy, server, upstream, market, mut direct) = behind_proxy(&url, "/delay").await;
        let server = Arc::new(server);
        let call = invoke_until_the_provider_has_it(&server, &market, &upstream).await;
        let request_id = upstream.seen.lock().unwrap()[0].param("request_id").unwrap().to_owned();
        let mut locker = PgConnection::connect(&url).await.unwrap();
        locker.execute("BEGIN").await.unwrap();
        sqlx::query("SELECT 1 FROM charges WHERE request_id = $1 FOR UPDATE")
            .bind(&request_id)
            .fetch_one(&mut locker)
            .await
            .unwrap();

        let answer = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("the answer does not wait for the commit")
            .unwrap();
        assert_eq!(answer["errcode"], json!(0), "{answer}");
        assert_eq!(server.souk.pending_commits().len(), 1, "the commit is in flight");
        assert_eq!(count_in(&charges(&mut direct, &market.package_id).await, "reserved"), (1, 1));
        assert_eq!(
            server.units_left(&market.package_id).await,
            99,
            "the unit was taken at the reservation"
        );

        let read = tokio::spawn({
            let (server, market) = (server.clone(), market.clone());
            async move {
                server
                    .admin_ok("GET", &format!("/packages/{}/ledger", market.package_id), None, StatusCode::OK)
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!read.is_finished(), "the ledger read did not wait for the commit in flight");
        locker.execute("COMMIT").await.unwrap();
        let ledger = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("the ledger read ends once the commit lands")
            .unwrap();
        assert_eq!(ledger["items"][0]["state"], json!("committed"), "{ledger}");
        assert_eq!(ledger["items"][0]["request_id"], json!(request_id), "{ledger}");
        assert!(server.souk.pending_commits().is_empty());
        assert_eq!(server.units_left(&market.package_id).await, 99);
    })
    .await;
}
