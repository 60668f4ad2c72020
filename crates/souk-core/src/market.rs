//! The service market's sync call (`wire.md` §3, §5): validate, rate-limit, reserve the units, sign and
//! send the provider request, read the envelope, commit or release, and keep the answer for retries.
//!
//! The phases follow the request path, as in pingora's proxy trait: `filter` (lookups, schema, limits)
//! → `reserve` → `upstream` → `settle`. Each phase fails with one public [`Code`].
//!
//! An `async: true` call takes the same checks, then reserves its units and stores its job in one
//! store call and answers at once; [`crate::jobs`] runs it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use souk_types::admin::{ApiMode, RateLimit};
use souk_types::market::{self, InvokeRequest};
use souk_types::Code;

use crate::error::Failure;
use crate::model::App;
use crate::model::{ReserveOutcome, ReserveRequest, Settlement};
use crate::provider::{signed_url, ProviderReply, ProviderRequest, SignedCall};
use crate::souk::{CachedApi, Souk};
use crate::store::DurableStore;

/// The most schema errors quoted in one message.
const MAX_SCHEMA_ERRORS: usize = 3;
/// How long past the API's timeout a duplicate waits for the first call's answer.
const DUPLICATE_GRACE_MS: u64 = 2_000;
/// How long a failed settlement is tried again in the background (far below the reaper's
/// `STALE_RESERVATION_MS`).
const SETTLE_RETRY_FOR: Duration = Duration::from_secs(60);

/// The answer of an invoke, whatever API shape renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvokeAnswer {
    /// The request id to report (the first call's, for a replay; an async job's key).
    pub request_id: String,
    /// The data or the acceptance of an async job, or the failure.
    pub outcome: Result<InvokeSuccess, StoredFailure>,
}

/// A successful invoke. Untagged, so answers kept for `client_msg_id` replays before async jobs
/// existed (`{"Ok": "<data>"}`) still read as [`InvokeSuccess::Data`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InvokeSuccess {
    /// A sync call's result: the provider's `data` as a JSON string.
    Data(String),
    /// An async call accepted as a durable job: the result is retrieved later with the answer's
    /// `request_id` ([`Souk::async_result`]).
    Accepted,
}

/// A failure as kept for `client_msg_id` replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFailure {
    /// The code's name.
    pub code: String,
    /// The detail.
    pub detail: String,
    /// Provider's error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_errcode: Option<String>,
    /// Provider's error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_errmsg: Option<String>,
}

impl StoredFailure {
    pub(crate) fn from_failure(failure: &Failure) -> Self {
        StoredFailure {
            code: failure.code.name().to_owned(),
            detail: failure.detail.clone(),
            provider_errcode: failure.provider_errcode.clone(),
            provider_errmsg: failure.provider_errmsg.clone(),
        }
    }

    /// Back to a [`Failure`]; an unknown code name (from a newer souk) reads as an internal error.
    pub fn to_failure(&self) -> Failure {
        let code = Code::ALL
            .iter()
            .copied()
            .find(|code| code.name() == self.code)
            .unwrap_or(Code::MarketInternal);
        Failure {
            code,
            detail: self.detail.clone(),
            provider_errcode: self.provider_errcode.clone(),
            provider_errmsg: self.provider_errmsg.clone(),
        }
    }
}

/// Who makes a service-market call, and who pays for it.
#[derive(Debug, Clone)]
pub struct Invoker {
    /// The app the call is made for (a plugin's host app): its rate limit applies, and `client_msg_id`s
    /// are scoped to it.
    pub app: Arc<App>,
    /// The app whose package pays: the same app, unless `consumeType: 2` names another.
    pub payer: Arc<App>,
    /// The end user, for client-API calls (sent to the provider as `openid`).
    pub openid: Option<String>,
    /// The plugin the call came from, if any (logged beside the host app).
    pub plugin_appid: Option<String>,
}

impl Invoker {
    /// An app calling for itself from its server.
    pub fn for_app(app: Arc<App>) -> Self {
        Invoker {
            payer: app.clone(),
            app,
            openid: None,
            plugin_appid: None,
        }
    }
}

/// What an invoke did, for the call log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeTrace {
    /// The package charged (also set when the units went back).
    pub package_id: Option<String>,
    /// The answer is a replay of an earlier call with the same `client_msg_id`.
    pub replayed: bool,
    /// A rate limit refused the call: milliseconds until one more would fit.
    pub retry_after_ms: Option<u64>,
}

impl Souk {
    /// `POST /wxa/servicemarket` for an authenticated caller. Never fails as a Rust call: every
    /// failure is part of the answer, so that it can be kept for retries and logged.
    pub async fn invoke_service(&self, invoker: &Invoker, request: &InvokeRequest, request_id: &str) -> (InvokeAnswer, InvokeTrace) {
        let mut trace = InvokeTrace::default();
        // `__cdn__` markers become URLs first: the schema checks, and the provider gets, the URLs.
        let request = match self.with_cdn_urls(&invoker.app.appid, request).await {
            Ok(request) => request,
            Err(failure) => return (self.answer_failure(invoker, request, request_id, &failure).await, trace),
        };
        let request: &InvokeRequest = &request;
        let api = match self.filter_invoke(request).await {
            Ok(api) => api,
            Err(failure) => return (self.answer_failure(invoker, request, request_id, &failure).await, trace),
        };
        let reserve = ReserveRequest {
            request_id: request_id.to_owned(),
            payer_appid: invoker.payer.appid.clone(),
            caller_appid: invoker.app.appid.clone(),
            service_id: api.api.service_id.clone(),
            api: api.api.name.clone(),
            units: api.api.price,
            now_ms: self.now_ms(),
            client_msg_id: request.client_msg_id.clone(),
        };
        let overlap = !request.is_async && self.rate_limiter.is_remote() && !self.refusals.holds(&invoker.app.appid, reserve.now_ms);
        let reserved = if overlap {
            // The limiter's round trip runs beside the reservation's instead of before it. A call
            // refused while its units were being reserved gives them back (and its client_msg_id)
            // before it answers, so it costs nothing, but it held them for that moment. An app
            // refused lately is checked first (below) until its refusal passes: a flood over the
            // limit costs the store nothing.
            let (limited, reserved) = tokio::join!(self.check_rate_limits(invoker, &api, &mut trace), self.store.reserve(&reserve));
            if let Err(failure) = limited {
                if let Ok(ReserveOutcome::Reserved { .. }) = reserved {
                    self.cancel_reservation(request_id).await;
                }
                return (self.answer_failure(invoker, request, request_id, &failure).await, trace);
            }
            reserved
        } else {
            if let Err(failure) = self.check_rate_limits(invoker, &api, &mut trace).await {
                return (self.answer_failure(invoker, request, request_id, &failure).await, trace);
            }
            // An async call reserves and stores its job in one transaction; the job runs later.
            if request.is_async {
                self.submit_job(invoker, request, &reserve).await
            } else {
                self.store.reserve(&reserve).await
            }
        };
        let outcome = match reserved {
            Ok(outcome) => outcome,
            Err(err) => return (failed(request_id, &Failure::from_store(Code::MarketInternal, &err)), trace),
        };
        let package_id = match outcome {
            ReserveOutcome::Reserved { package_id } => package_id,
            ReserveOutcome::Duplicate(first) => {
                trace.replayed = true;
                let wait = Duration::from_millis(sync_timeout_ms(&api) + DUPLICATE_GRACE_MS);
                return (
                    self.wait_for_first_answer(invoker, request, first.request_id, first.answer, wait)
                        .await,
                    trace,
                );
            }
            ReserveOutcome::NoPackage => return (failed(request_id, &charge_failure(invoker, &api, "has no package for")), trace),
            ReserveOutcome::Exhausted => {
                return (
                    failed(request_id, &charge_failure(invoker, &api, "has used up its packages for")),
                    trace,
                )
            }
            ReserveOutcome::Expired => {
                return (
                    failed(request_id, &charge_failure(invoker, &api, "has only expired packages for")),
                    trace,
                )
            }
        };
        trace.package_id = Some(package_id);
        if request.is_async {
            return (crate::jobs::accepted(request_id), trace);
        }
        let outcome = self.call_provider(invoker, request, &api, request_id).await;
        let answer = InvokeAnswer {
            request_id: request_id.to_owned(),
            outcome: outcome
                .map(InvokeSuccess::Data)
                .map_err(|failure| StoredFailure::from_failure(&failure)),
        };
        self.settle(invoker, request, &answer).await;
        (answer, trace)
    }

    /// Lookups, mode and schema: what can refuse a call before it counts against a limit or costs.
    async fn filter_invoke(&self, request: &InvokeRequest) -> Result<Arc<CachedApi>, Failure> {
        let internal = |err: crate::store::StoreError| Failure::from_store(Code::MarketInternal, &err);
        let service = self.find_service(&request.service).await.map_err(internal)?;
        if service.is_none_or(|service| service.disabled) {
            return Err(Failure::new(Code::MarketUnknownService, format!("no service {}", request.service)));
        }
        let api = self.find_api(&request.service, &request.api).await.map_err(internal)?;
        let api = api.ok_or_else(|| {
            Failure::new(
                Code::MarketUnknownApi,
                format!("service {} has no api {}", request.service, request.api),
            )
        })?;
        match (api.api.mode, request.is_async) {
            (ApiMode::Sync, true) => {
                return Err(Failure::new(
                    Code::MarketBadInput,
                    format!("api {} is sync only: do not set async", request.api),
                ))
            }
            (ApiMode::Async, false) => {
                return Err(Failure::new(
                    Code::MarketBadInput,
                    format!("api {} is async only: set async to true", request.api),
                ))
            }
            _ => {}
        }
        if let Some(validator) = &api.validator {
            let errors: Vec<String> = validator
                .iter_errors(&request.data)
                .take(MAX_SCHEMA_ERRORS)
                .map(|err| format!("{} at '{}'", err, err.instance_path))
                .collect();
            if !errors.is_empty() {
                return Err(Failure::new(
                    Code::MarketBadInput,
                    format!("data does not match the api's schema: {}", errors.join("; ")),
                ));
            }
        }
        Ok(api)
    }

    /// The app's limit over all its calls, then the API's limit per calling app. A refusal says in
    /// the trace when a call would fit again.
    async fn check_rate_limits(&self, invoker: &Invoker, api: &CachedApi, trace: &mut InvokeTrace) -> Result<(), Failure> {
        let api_key = format!("api\n{}\n{}\n{}", invoker.app.appid, api.api.service_id, api.api.name);
        let (refused_by, retry_after_ms) = match self.check_app_then_api(&invoker.app, api.api.rate_limit.as_ref(), &api_key).await {
            Ok(()) => return Ok(()),
            Err(refusal) => refusal,
        };
        trace.retry_after_ms = Some(retry_after_ms);
        if self.rate_limiter.is_remote() {
            // Only a remote check runs beside the reservation; the record decides when it may.
            self.refusals.note(&invoker.app.appid, self.now_ms(), retry_after_ms);
        }
        let detail = match refused_by {
            RefusedBy::App => format!("app {} is over its rate limit; retry in {retry_after_ms} ms", invoker.app.appid),
            RefusedBy::Api => format!(
                "api {} is over its rate limit for this app; retry in {retry_after_ms} ms",
                api.api.name
            ),
        };
        Err(Failure::new(Code::MarketRateLimited, detail))
    }

    /// Counts a call against the app's own limit (one budget over all its calls, market and
    /// built-in alike), then against `api_limit` under `api_key`. The first that refuses answers
    /// which it was and the milliseconds until one more call would fit.
    pub(crate) async fn check_app_then_api(&self, app: &App, api_limit: Option<&RateLimit>, api_key: &str) -> Result<(), (RefusedBy, u64)> {
        let now_ms = self.now_ms();
        let app_key = format!("app\n{}", app.appid);
        let limits = [
            (app.rate_limit.as_ref(), app_key.as_str(), RefusedBy::App),
            (api_limit, api_key, RefusedBy::Api),
        ];
        let (checks, refused_by): (Vec<(&str, &RateLimit)>, Vec<RefusedBy>) = limits
            .into_iter()
            .filter_map(|(limit, key, refused_by)| Some(((key, limit?), refused_by)))
            .unzip();
        match self.rate_limiter.check_in_order(&checks, now_ms).await {
            None => Ok(()),
            Some((index, decision)) => Err((refused_by[index], decision.retry_after_ms)),
        }
    }

    /// A refusal before any charge. A retry of a call that already has an answer still gets that
    /// answer (so a retry refused by the rate limit does not hide the first call's result).
    async fn answer_failure(&self, invoker: &Invoker, request: &InvokeRequest, request_id: &str, failure: &Failure) -> InvokeAnswer {
        if let Some(client_msg_id) = &request.client_msg_id {
            // A first call this node answered a moment ago may still be committing its answer.
            self.commits.settled_through_now().await;
            if let Ok(Some(first)) = self.store.find_idempotent(&invoker.app.appid, client_msg_id).await {
                if let Some(answer) = first.answer.and_then(|body| serde_json::from_str::<InvokeAnswer>(&body).ok()) {
                    return answer;
                }
            }
        }
        failed(request_id, failure)
    }

    /// Signs, sends and reads the provider's answer.
    async fn call_provider(
        &self,
        invoker: &Invoker,
        request: &InvokeRequest,
        api: &CachedApi,
        request_id: &str,
    ) -> Result<String, Failure> {
        let service = self.find_service(&api.api.service_id).await.ok().flatten();
        let Some(service) = service else {
            return Err(Failure::new(
                Code::MarketUnknownService,
                format!("no service {}", api.api.service_id),
            ));
        };
        let body = serde_json::to_vec(&request.data).unwrap_or_default();
        let url = signed_url(
            &SignedCall {
                upstream_url: &api.api.upstream_url,
                secret: &service.secret,
                request_id,
                service_id: &service.service_id,
                api: &api.api.name,
                appid: &invoker.app.appid,
                openid: invoker.openid.as_deref(),
                is_async: false,
                now_ms: self.now_ms(),
            },
            &body,
        );
        let timeout_ms = sync_timeout_ms(api);
        let timeout = Duration::from_millis(timeout_ms);
        let reply = self.transport.post(ProviderRequest { url, body, timeout }).await;
        read_provider_reply(reply, timeout_ms)
    }

    /// Commits or releases the units and keeps the answer for retries. A release (a failed call)
    /// is done before this returns, so a failure is answered with its units already back; a commit
    /// (a successful call, whose units were taken at its reservation) is left running in the
    /// background, so the answer does not wait for it ([`crate::settling`]).
    async fn settle(&self, invoker: &Invoker, request: &InvokeRequest, answer: &InvokeAnswer) {
        let kept = request.client_msg_id.as_ref().map(|client_msg_id| {
            let body = serde_json::to_string(answer).unwrap_or_default();
            (invoker.app.appid.clone(), client_msg_id.clone(), body)
        });
        let settlement = Settlement {
            request_id: answer.request_id.clone(),
            commit: answer.outcome.is_ok(),
            now_ms: self.now_ms(),
            answer: kept,
        };
        let store = self.store.clone();
        let settling = settle_with_retries(store, settlement);
        if answer.outcome.is_ok() {
            // Counted from now, so a ledger read after this call's answer waits for it.
            let ticket = self.commits.start();
            tokio::spawn(async move {
                settling.await;
                drop(ticket);
            });
        } else {
            settling.await;
        }
    }

    /// Takes back the reservation of a call a rate limit refused (units and `client_msg_id` claim)
    /// before the refusal is answered, trying again in the background if the store fails: what is
    /// still reserved then is released by the reaper, like any reservation left unsettled.
    async fn cancel_reservation(&self, request_id: &str) {
        let store = self.store.clone();
        let request_id = request_id.to_owned();
        retry_in_background("cancelling a reservation", request_id.clone(), move || {
            let (store, request_id) = (store.clone(), request_id.clone());
            async move { store.cancel_reservation(&request_id).await }
        })
        .await;
    }

    /// A duplicate `client_msg_id`: the first call's answer, waiting for it if that call is in flight.
    async fn wait_for_first_answer(
        &self,
        invoker: &Invoker,
        request: &InvokeRequest,
        first_request_id: String,
        mut answer: Option<String>,
        wait: Duration,
    ) -> InvokeAnswer {
        let deadline = tokio::time::Instant::now() + wait;
        let mut delay = Duration::from_millis(10);
        let client_msg_id = request.client_msg_id.as_deref().unwrap_or_default();
        loop {
            if let Some(body) = answer.as_deref() {
                return serde_json::from_str(body).unwrap_or_else(|_| {
                    failed(
                        &first_request_id,
                        &Failure::new(Code::MarketInternal, "the first answer could not be read"),
                    )
                });
            }
            if tokio::time::Instant::now() >= deadline {
                let failure = Failure::new(
                    Code::MarketCallFailed,
                    "the first call with this client_msg_id is still running; retry later",
                );
                return failed(&first_request_id, &failure);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(200));
            answer = match self.store.find_idempotent(&invoker.app.appid, client_msg_id).await {
                Ok(Some(record)) => record.answer,
                // The first call was reaped (its process died): this retry may run it again.
                Ok(None) => {
                    let failure = Failure::new(
                        Code::MarketCallFailed,
                        "the first call with this client_msg_id was interrupted; retry",
                    );
                    return failed(&first_request_id, &failure);
                }
                Err(_) => None,
            };
        }
    }
}

fn failed(request_id: &str, failure: &Failure) -> InvokeAnswer {
    InvokeAnswer {
        request_id: request_id.to_owned(),
        outcome: Err(StoredFailure::from_failure(failure)),
    }
}

fn charge_failure(invoker: &Invoker, api: &CachedApi, what: &str) -> Failure {
    Failure::new(
        Code::MarketChargeFailed,
        format!("app {} {what} service {}", invoker.payer.appid, api.api.service_id),
    )
}

/// Which of a call's two rate limits refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusedBy {
    /// The app's own limit, over all its calls.
    App,
    /// The API's limit for this app.
    Api,
}

/// How long a sync call waits for the provider: the API's timeout, but at most the sync limit even
/// for an API that also runs async (whose timeout may be longer), so the reaper's
/// `STALE_RESERVATION_MS` still outlasts every sync call.
fn sync_timeout_ms(api: &CachedApi) -> u64 {
    api.api.timeout_ms.min(crate::registry::MAX_TIMEOUT_MS)
}

/// A provider's envelope as an outcome: `Ok(Ok(data))` on `success: true`, `Ok(Err(failure))` with the
/// provider's code and message on `success: false`, `Err(why)` when the body is not the envelope.
pub(crate) fn envelope_outcome(body: &[u8]) -> Result<Result<String, Failure>, String> {
    let envelope = market::parse_envelope(body)?;
    if envelope.success {
        return Ok(Ok(market::data_as_json_string(&envelope.data)));
    }
    let message = envelope
        .error_message
        .clone()
        .unwrap_or_else(|| "provider reported a failure".to_owned());
    let mut failure = Failure::new(Code::MarketProviderFailed, message);
    failure.provider_errcode = envelope.error_code;
    failure.provider_errmsg = envelope.error_message;
    Ok(Err(failure))
}

/// Classifies a provider reply by source: transport, HTTP, envelope, provider logic.
pub(crate) fn read_provider_reply(reply: ProviderReply, timeout_ms: u64) -> Result<String, Failure> {
    let (status, body) = match reply {
        ProviderReply::Answered { status, body } => (status, body),
        ProviderReply::TimedOut => {
            return Err(Failure::new(
                Code::MarketProviderTimeout,
                format!("provider did not answer within {timeout_ms} ms"),
            ))
        }
        ProviderReply::Failed(why) => return Err(Failure::new(Code::MarketCallFailed, format!("provider unreachable: {why}"))),
    };
    if !(200..300).contains(&status) {
        return Err(Failure::new(Code::MarketCallFailed, format!("provider answered HTTP {status}")));
    }
    envelope_outcome(&body).map_err(|why| Failure::new(Code::MarketCallFailed, why))?
}

/// Settles; a settlement that fails is tried again in the background for `SETTLE_RETRY_FOR` (a
/// settlement changes a charge only while it is reserved, so a retry can never apply twice), well
/// before the reaper releases what is still reserved after `STALE_RESERVATION_MS`: a unit is never
/// spent without a successful call, and a successful call's unit is lost only if the store stays
/// unreachable all that time. Ends with the first try.
async fn settle_with_retries(store: Arc<dyn DurableStore>, settlement: Settlement) {
    let request_id = settlement.request_id.clone();
    let settlement = Arc::new(settlement);
    retry_in_background("settling a charge", request_id, move || {
        let (store, settlement) = (store.clone(), settlement.clone());
        async move { store.settle(&settlement).await }
    })
    .await;
}

/// Runs a ledger change that applies at most once (it changes a charge only while it is `reserved`)
/// and, if it fails, runs it again in the background for `SETTLE_RETRY_FOR`. Ends with the first try.
async fn retry_in_background<Run, Ran>(what: &'static str, request_id: String, run: Run)
where
    Run: Fn() -> Ran + Send + 'static,
    Ran: std::future::Future<Output = Result<bool, crate::store::StoreError>> + Send,
{
    let Err(err) = run().await else { return };
    tracing::warn!(%request_id, error = %err, "{what} failed; trying again in the background");
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            tokio::time::sleep(pause).await;
            match run().await {
                Ok(_) => {
                    tracing::info!(%request_id, "{what} succeeded on a later try");
                    return;
                }
                Err(err) if started.elapsed() >= SETTLE_RETRY_FOR => {
                    tracing::error!(%request_id, error = %err, "{what} failed for good; the reaper will release the charge");
                    return;
                }
                Err(_) => pause = (pause * 2).min(Duration::from_secs(5)),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(reply: ProviderReply, expect: Result<&str, Code>) {
        let got = read_provider_reply(reply, 100);
        match (got, expect) {
            (Ok(data), Ok(want)) => assert_eq!(data, want),
            (Err(failure), Err(code)) => assert_eq!(failure.code, code, "{}", failure.detail),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    fn answered(status: u16, body: &str) -> ProviderReply {
        ProviderReply::Answered {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn replies_are_classified_by_source() {
        check(answered(200, r#"{"success":true,"data":{"a":1},"x":2}"#), Ok(r#"{"a":1}"#));
        check(
            answered(200, r#"{"success":false,"errorCode":"E1","errorMessage":"bad"}"#),
            Err(Code::MarketProviderFailed),
        );
        check(answered(500, r#"{"success":true,"data":1}"#), Err(Code::MarketCallFailed));
        check(answered(200, "<html>"), Err(Code::MarketCallFailed));
        check(ProviderReply::TimedOut, Err(Code::MarketProviderTimeout));
        check(ProviderReply::Failed("refused".into()), Err(Code::MarketCallFailed));
    }

    #[test]
    fn stored_failures_round_trip() {
        let mut failure = Failure::new(Code::MarketProviderFailed, "bad");
        failure.provider_errcode = Some("E1".into());
        let stored = StoredFailure::from_failure(&failure);
        assert_eq!(stored.to_failure(), failure);
    }
}
