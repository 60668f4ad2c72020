//! The APIs souk serves itself (codes, image APIs, temp media, customer-service messages, paid unionid) go through the same policy step as a
//! service-market call before any work is done: the app's own rate limit (one budget over all its
//! calls, market and built-in alike), then the API's limit per calling app, then the call is logged
//! under the reserved service [`BUILTIN_SERVICE`] with the API's platform name, so `GET calls`,
//! `/metrics` and the call log report built-ins like any other call.
//!
//! A built-in's limit is set by the operator (config `[builtins.rate_limits]`, [`Souk::with_builtin_limits`]);
//! a refusal is WeChat's 45011 ("api minute-quota reach limit") with the wait in the message.

use std::collections::HashMap;

use souk_types::admin::RateLimit;
use souk_types::Code;

use crate::error::Failure;
use crate::market::RefusedBy;
use crate::model::{App, CallRecord};
use crate::souk::Souk;

/// The service id built-in calls are logged under.
pub const BUILTIN_SERVICE: &str = "souk";

/// One built-in API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinApi {
    /// `POST /cgi-bin/wxaapp/createwxaqrcode`.
    CreateQrCode,
    /// `POST /wxa/getwxacode`.
    GetCode,
    /// `POST /wxa/getwxacodeunlimit`.
    GetUnlimitedCode,
    /// `POST /cv/img/qrcode`.
    ScanQrCode,
    /// `POST /cv/img/aicrop`.
    AiCrop,
    /// `POST /cv/img/superresolution`.
    SuperResolution,
    /// `POST /cgi-bin/media/upload`.
    UploadMedia,
    /// `GET /cgi-bin/media/get`.
    GetMedia,
    /// `POST /cgi-bin/message/custom/send`.
    SendMessage,
    /// `POST /cgi-bin/message/custom/typing`.
    SetTyping,
    /// `GET /wxa/getpaidunionid`.
    GetPaidUnionId,
}

impl BuiltinApi {
    /// Every built-in API.
    pub const ALL: [BuiltinApi; 11] = [
        BuiltinApi::CreateQrCode,
        BuiltinApi::GetCode,
        BuiltinApi::GetUnlimitedCode,
        BuiltinApi::ScanQrCode,
        BuiltinApi::AiCrop,
        BuiltinApi::SuperResolution,
        BuiltinApi::UploadMedia,
        BuiltinApi::GetMedia,
        BuiltinApi::SendMessage,
        BuiltinApi::SetTyping,
        BuiltinApi::GetPaidUnionId,
    ];

    /// The platform's name of the API (the call log's `api`, the config's key).
    pub fn name(self) -> &'static str {
        match self {
            BuiltinApi::CreateQrCode => "wxacode.createQRCode",
            BuiltinApi::GetCode => "wxacode.get",
            BuiltinApi::GetUnlimitedCode => "wxacode.getUnlimited",
            BuiltinApi::ScanQrCode => "img.scanQRCode",
            BuiltinApi::AiCrop => "img.aiCrop",
            BuiltinApi::SuperResolution => "img.superresolution",
            BuiltinApi::UploadMedia => "customerServiceMessage.uploadTempMedia",
            BuiltinApi::GetMedia => "customerServiceMessage.getTempMedia",
            BuiltinApi::SendMessage => "customerServiceMessage.send",
            BuiltinApi::SetTyping => "customerServiceMessage.setTyping",
            BuiltinApi::GetPaidUnionId => "auth.getPaidUnionId",
        }
    }

    /// The API of a platform name.
    pub fn from_name(name: &str) -> Option<BuiltinApi> {
        BuiltinApi::ALL.into_iter().find(|api| api.name() == name)
    }
}

/// The operator's limits per built-in API, each applied per calling app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuiltinLimits(HashMap<BuiltinApi, RateLimit>);

impl BuiltinLimits {
    /// No limits beyond each app's own.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the limit of one API (per calling app).
    #[must_use]
    pub fn with(mut self, api: BuiltinApi, limit: RateLimit) -> Self {
        self.0.insert(api, limit);
        self
    }

    /// The limit of an API, if the operator set one.
    pub fn get(&self, api: BuiltinApi) -> Option<&RateLimit> {
        self.0.get(&api)
    }
}

impl Souk {
    /// Sets the operator's limits on built-in APIs.
    #[must_use]
    pub fn with_builtin_limits(mut self, limits: BuiltinLimits) -> Self {
        self.builtin_limits = limits;
        self
    }

    /// Notes the API in the call record and counts the call against the app's rate limit (shared with
    /// its service-market calls), then the API's limit for this app. Refused: 45011, nothing done.
    pub async fn admit_builtin(&self, app: &App, api: BuiltinApi, call: &mut CallRecord) -> Result<(), Failure> {
        call.service_id = Some(BUILTIN_SERVICE.to_owned());
        call.api = Some(api.name().to_owned());
        let api_key = format!("builtin\n{}\n{}", app.appid, api.name());
        let (refused_by, retry_after_ms) = match self.check_app_then_api(app, self.builtin_limits.get(api), &api_key).await {
            Ok(()) => return Ok(()),
            Err(refusal) => refusal,
        };
        let detail = match refused_by {
            RefusedBy::App => format!("app {} is over its rate limit; retry in {retry_after_ms} ms", app.appid),
            RefusedBy::Api => format!("{} is over its rate limit for this app; retry in {retry_after_ms} ms", api.name()),
        };
        Err(Failure::new(Code::ApiMinuteQuota, detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for api in BuiltinApi::ALL {
            assert_eq!(BuiltinApi::from_name(api.name()), Some(api));
        }
        assert_eq!(BuiltinApi::from_name("img.scanqrcode"), None);
    }
}
