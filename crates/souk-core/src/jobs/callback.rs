//! The provider's callback (`wire.md` §5): `POST /souk/v1/provider/async-results/{request_id}` with the
//! envelope, signed with the service's secret by the recipe of `cloud-gateway.md` §3 (every query
//! parameter but `sign`, then the body). The first result finishes the job; later ones are ignored.

use souk_types::sign::{self, SignMethod};
use souk_types::Code;

use super::worker::FinishedBy;
use crate::error::Failure;
use crate::market::envelope_outcome;
use crate::souk::Souk;

/// A callback whose `timestamp` is further than this from souk's clock is refused (the recipe's
/// 10 minutes), so a captured callback cannot be replayed later.
pub const CALLBACK_CLOCK_SKEW_MS: i64 = 10 * 60_000;

/// What a verified callback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackReceipt {
    /// `true`: this result finished the job; `false`: the job had already finished and this result
    /// was ignored.
    pub recorded: bool,
    /// The job's app.
    pub appid: String,
    /// The job's service.
    pub service_id: String,
    /// The job's API.
    pub api: String,
}

impl Souk {
    /// Verifies and applies a provider's async result. `params` are the decoded query pairs (with
    /// `timestamp`, `sign` and optionally `sign_method`), `body` the raw envelope.
    ///
    /// Refusals: an unknown job is 9301014 (HTTP 404); a missing or wrong signature, an unknown
    /// `sign_method` or a `timestamp` more than 10 minutes off is `ProviderUnauthorized` (401); a
    /// body that is not the envelope is 9301001 (400); a storage failure is 9301003 (500), so the
    /// provider posts again.
    pub async fn accept_provider_result(
        &self,
        request_id: &str,
        params: &[(String, String)],
        body: &[u8],
    ) -> Result<CallbackReceipt, Failure> {
        let job = self
            .store
            .get_job(request_id)
            .await
            .map_err(|err| Failure::from_store(Code::MarketInternal, &err))?
            .ok_or_else(|| Failure::new(Code::MarketUnknownRequest, format!("no async job {request_id}")))?;
        let service = self
            .find_service(&job.service_id)
            .await
            .map_err(|err| Failure::from_store(Code::MarketInternal, &err))?
            .ok_or_else(|| Failure::new(Code::ProviderUnauthorized, format!("the job's service {} is gone", job.service_id)))?;
        self.check_callback_signature(&service.secret, params, body)?;
        let outcome = envelope_outcome(body)
            .map_err(|why| Failure::new(Code::MarketBadInput, format!("the body is not the provider envelope: {why}")))?;
        let recorded = !job.state.is_finished()
            && self
                .finish_job(&job, outcome, FinishedBy::Callback)
                .await
                // A 500 makes the provider post again later; the job is still unfinished.
                .map_err(|err| Failure::from_store(Code::MarketInternal, &err))?;
        if !recorded {
            tracing::warn!(request_id, service_id = %job.service_id, api = %job.api, "a provider result arrived for a finished async job; ignored");
        }
        Ok(CallbackReceipt {
            recorded,
            appid: job.appid,
            service_id: job.service_id,
            api: job.api,
        })
    }

    fn check_callback_signature(&self, secret: &str, params: &[(String, String)], body: &[u8]) -> Result<(), Failure> {
        let refuse = |detail: &str| Failure::new(Code::ProviderUnauthorized, detail);
        let param = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
        let given = param("sign")
            .filter(|sign| !sign.is_empty())
            .ok_or_else(|| refuse("sign is missing"))?;
        let method = match param("sign_method") {
            None | Some("") => SignMethod::Md5,
            Some(name) => SignMethod::parse(name).ok_or_else(|| refuse("sign_method must be md5, hmac or hmac-sha256"))?,
        };
        let stamp = param("timestamp")
            .and_then(sign::parse_timestamp)
            .ok_or_else(|| refuse("timestamp is missing or not yyyy-MM-dd HH:mm:ss (UTC+8)"))?;
        if (stamp - self.now_ms()).abs() > CALLBACK_CLOCK_SKEW_MS {
            return Err(refuse("timestamp is more than 10 minutes off"));
        }
        if !sign::verify(method, secret, params, Some(body), given) {
            return Err(refuse("the signature does not match (secret, parameters or body)"));
        }
        Ok(())
    }
}
