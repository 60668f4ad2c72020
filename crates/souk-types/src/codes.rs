//! The one closed table of public error codes.
//!
//! Each kind of failure souk can report has one row: the `errcode` the WeChat-compatible server APIs
//! answer (always with HTTP 200, as every WeChat SDK expects), the `errCode` of the client API
//! (seed 000's negative codes), the honest HTTP status used by souk's own APIs (client and admin), and
//! the message a person reads. A snapshot test pins the whole table, so any change to a public code is
//! a visible diff.

/// Declares [`Code`] and its table from one list, so no code is typed twice.
macro_rules! code_table {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident => { errcode: $errcode:expr, client: $client:expr, http: $http:expr, msg: $msg:expr }
    ),* $(,)?) => {
        /// A public error kind. See the module docs for what each column means.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The `errcode` of the WeChat-compatible server APIs.
            pub fn errcode(self) -> i64 {
                match self { $( Code::$variant => $errcode, )* }
            }

            /// The `errCode` of the client API (seed 000) and of souk's own JSON errors.
            pub fn client_code(self) -> i64 {
                match self { $( Code::$variant => $client, )* }
            }

            /// The HTTP status souk's own APIs (client and admin) answer with.
            pub fn http_status(self) -> u16 {
                match self { $( Code::$variant => $http, )* }
            }

            /// The default message, lowercase, as the public platform words it where it has one.
            pub fn message(self) -> &'static str {
                match self { $( Code::$variant => $msg, )* }
            }

            /// The variant's name, stable, used as the admin API's `errCode`.
            pub fn name(self) -> &'static str {
                match self { $( Code::$variant => stringify!($variant), )* }
            }
        }
    };
}

code_table! {
    /// Anything souk did not expect; the detail is in souk's log under the request id.
    SystemError => { errcode: -1, client: -2, http: 500, msg: "system error" },
    /// A path souk does not serve.
    InvalidUrl => { errcode: 40066, client: -1, http: 404, msg: "invalid url" },
    /// The HTTP method is not the one the API takes (POST expected).
    RequirePost => { errcode: 43002, client: -1, http: 405, msg: "require POST method" },
    /// The HTTP method is not the one the API takes (GET expected).
    RequireGet => { errcode: 43001, client: -1, http: 405, msg: "require GET method" },
    /// A POST that needs a body came without one.
    EmptyPostData => { errcode: 44002, client: -1, http: 400, msg: "empty post data" },
    /// The body is not JSON, or a field has the wrong type.
    DataFormatError => { errcode: 47001, client: -1, http: 400, msg: "data format error" },
    /// The request body is larger than souk accepts for this API.
    RequestTooLarge => { errcode: 47001, client: -1, http: 413, msg: "request body too large" },

    /// No `access_token` in the query string.
    AccessTokenMissing => { errcode: 41001, client: -1, http: 401, msg: "access_token missing" },
    /// The `access_token` is unknown or malformed.
    AccessTokenInvalid => { errcode: 40014, client: -1, http: 401, msg: "invalid access_token" },
    /// The `access_token` is past its 7200 s.
    AccessTokenExpired => { errcode: 42001, client: -1, http: 401, msg: "access_token expired" },
    /// The `access_token` was superseded by a newer one and its 5-minute overlap is over.
    AccessTokenNotLatest => { errcode: 40001, client: -1, http: 401, msg: "invalid credential, access_token is invalid or not latest" },
    /// `grant_type` is not `client_credential`.
    InvalidGrantType => { errcode: 40002, client: -1, http: 400, msg: "invalid grant_type" },
    /// The appid is unknown or disabled.
    InvalidAppid => { errcode: 40013, client: -6, http: 403, msg: "invalid appid" },
    /// The secret does not belong to the app.
    InvalidAppSecret => { errcode: 40125, client: -1, http: 401, msg: "invalid appsecret" },
    /// No `appid` given.
    AppidMissing => { errcode: 41002, client: -1, http: 400, msg: "appid missing" },
    /// No `secret` given.
    AppSecretMissing => { errcode: 41004, client: -1, http: 400, msg: "appsecret missing" },
    /// A daily quota is used up (stable token force refreshes: 20 a day).
    DailyQuotaReached => { errcode: 45009, client: -11, http: 429, msg: "reach max api daily quota limit" },
    /// A built-in API's rate limit (the app's own, or the operator's per-API one) is used up.
    ApiMinuteQuota => { errcode: 45011, client: -11, http: 429, msg: "api minute-quota reach limit" },

    /// Service market: a missing or malformed field, `data` failing the API's schema, a wrong `async`.
    MarketBadInput => { errcode: 9301001, client: -1, http: 400, msg: "invalid parameter" },
    /// Service market: the provider could not be reached, answered an HTTP error or not the envelope.
    MarketCallFailed => { errcode: 9301002, client: -2, http: 502, msg: "call api service failed" },
    /// Service market: the provider did not answer within the API's timeout.
    MarketProviderTimeout => { errcode: 9301012, client: -2, http: 504, msg: "service timeout" },
    /// Service market: the provider answered `success: false`.
    MarketProviderFailed => { errcode: 9301002, client: -3, http: 502, msg: "service logic failure" },
    /// Service market: the calling app is disabled or may not make this call.
    MarketAppidError => { errcode: 40013, client: -6, http: 403, msg: "invalid appid" },
    /// Service market: no such service.
    MarketUnknownService => { errcode: 9301001, client: -7, http: 404, msg: "invalid parameter: unknown service" },
    /// Service market: the service has no such API.
    MarketUnknownApi => { errcode: 9301001, client: -8, http: 404, msg: "invalid parameter: unknown api" },
    /// Service market: no package, package used up or expired, payer not allowed.
    MarketChargeFailed => { errcode: 9301010, client: -10, http: 402, msg: "consumption failure" },
    /// Service market: the API's or app's rate limit was hit.
    MarketRateLimited => { errcode: 9301011, client: -11, http: 429, msg: "frequency limit" },
    /// Service market: souk itself failed (storage unreachable, ...).
    MarketInternal => { errcode: 9301003, client: -2, http: 500, msg: "internal exception" },
    /// Service market: the request id is unknown or belongs to another app.
    MarketUnknownRequest => { errcode: 9301014, client: -1, http: 404, msg: "invalid request_id" },
    /// Service market: the async job has not finished yet.
    MarketPending => { errcode: 9301015, client: 1, http: 202, msg: "backend not processed yet" },
    /// Provider API: an async result's signature is missing or wrong, or its timestamp is too far off.
    ProviderUnauthorized => { errcode: 40001, client: -1, http: 401, msg: "provider signature missing or wrong" },

    /// CDN files: the upload (or a `__cdn__` marker's value) is larger than the operator allows.
    CdnFileTooLarge => { errcode: 9301001, client: -1, http: 413, msg: "invalid parameter: file too large" },
    /// CDN files: no such file, or it expired.
    CdnFileNotFound => { errcode: 40066, client: -1, http: 404, msg: "cdn file not found or expired" },

    /// Mini-program codes: `path` empty or too long, or the body is not a JSON object.
    CodePathInvalid => { errcode: 40159, client: -1, http: 400, msg: "invalid length for path, or the data is not json string" },
    /// Mini-program codes: `path` or `page` carries the reserved `scancode_time` parameter.
    CodeScancodeTime => { errcode: 85096, client: -1, http: 400, msg: "not allow include scancode_time field" },
    /// Mini-program codes: `width` out of 280–1280, a bad `line_color` or `env_version`.
    CodeInvalidArgs => { errcode: 40097, client: -1, http: 400, msg: "invalid args" },
    /// Mini-program codes: `scene` has a character outside `0-9A-Za-z!#$&'()*+,/:;=?@-._~`.
    CodeSceneInvalid => { errcode: 40129, client: -1, http: 400, msg: "invalid scene" },
    /// Mini-program codes: `scene` empty or over 32 characters, or the body is not a JSON object.
    CodeSceneLength => { errcode: 40169, client: -1, http: 400, msg: "invalid length for scene, or the data is not json string" },
    /// Mini-program codes: `page` has a leading `/` or a query, or is not a registered page of the app.
    CodePageInvalid => { errcode: 41030, client: -1, http: 400, msg: "invalid page" },
    /// Mini-program codes: the app's lifetime count of codes (createwxaqrcode and getwxacode) is used up.
    CodeCountOutOfLimit => { errcode: 45029, client: -11, http: 429, msg: "qrcode count out of limit" },
    /// Mini-program codes: no code has this short id.
    CodeNotFound => { errcode: 40066, client: -1, http: 404, msg: "code not found" },

    /// Temp media: `type` is not `image` (the only type a mini-program uploads).
    MediaTypeInvalid => { errcode: 40004, client: -1, http: 400, msg: "invalid media type" },
    /// Temp media: the upload is not a PNG, JPEG, GIF, BMP or WebP image by its content.
    MediaFileTypeInvalid => { errcode: 40005, client: -1, http: 415, msg: "invalid file type" },
    /// Temp media: the upload is larger than the image limit (10 MB).
    MediaFileSizeInvalid => { errcode: 40006, client: -1, http: 413, msg: "invalid file size" },
    /// Temp media: no `media` part, or an empty one (wechatpy's retries send it empty).
    MediaDataMissing => { errcode: 41005, client: -1, http: 400, msg: "media data missing" },
    /// Temp media: the `media_id` is unknown, expired (3 days) or another app's.
    MediaIdInvalid => { errcode: 40007, client: -1, http: 404, msg: "invalid media_id" },

    /// Image APIs: `img_url` is not http(s), refused (private address), unreachable, too large, or
    /// neither `img_url` nor an `img` part was given.
    ImageUrlInvalid => { errcode: 101000, client: -1, http: 400, msg: "invalid image url" },
    /// Image APIs: the image is not a decodable PNG, JPEG, GIF, BMP or WebP within the limits.
    ImageDataInvalid => { errcode: 101002, client: -1, http: 400, msg: "invalid image data" },
    /// Image APIs: aiCrop's `ratios` has more than 5 items, or an item that is not a number in
    /// 0.05..=20 (the platform documents no code for it; 40097 is its general "invalid args").
    ImageRatiosInvalid => { errcode: 40097, client: -1, http: 400, msg: "invalid args" },
    /// Image APIs: the CPU pool had no free worker in time, or the work ran past its time cap.
    CpuBusy => { errcode: -1, client: -2, http: 503, msg: "system busy, retry later" },

    /// Customer-service messages: `touser` (or `openid`) is not a user of the app.
    InvalidOpenid => { errcode: 40003, client: -1, http: 404, msg: "invalid openid" },
    /// Customer-service messages: `msgtype` is missing or not one souk sends (`text`, `image`, `link`,
    /// `miniprogrampage`; the user side also `event`).
    MessageTypeInvalid => { errcode: 40008, client: -1, http: 400, msg: "invalid message type" },
    /// Customer-service messages: the text is empty.
    MessageContentEmpty => { errcode: 44004, client: -1, http: 400, msg: "empty content" },
    /// Customer-service messages: the text (or a title, description or URL) is longer than its limit.
    MessageContentTooLong => { errcode: 45002, client: -1, http: 400, msg: "content size out of limit" },
    /// Customer-service messages: `pagepath` is not a registered page of the app.
    MessagePagepathInvalid => { errcode: 40165, client: -1, http: 400, msg: "invalid weapp pagepath" },
    /// Customer-service messages: the user never wrote, or wrote last more than 48 h ago.
    MessageOutOfTime => { errcode: 45015, client: -1, http: 403, msg: "response out of time limit or subscription is canceled" },
    /// Customer-service messages: 5 replies were sent since the user's last message.
    MessageReplyLimit => { errcode: 45047, client: -11, http: 429, msg: "out of response count limit" },
    /// Typing: `command` is not `Typing` or `CancelTyping`.
    TypingCommandInvalid => { errcode: 45072, client: -1, http: 400, msg: "command invalid" },
    /// Typing: no message went either way between the app and the user in the last 30 s.
    TypingNoRecentExchange => { errcode: 45080, client: -1, http: 403, msg: "has not sent message to user in 30 seconds" },
    /// Typing: the app is already typing to this user.
    TypingAlready => { errcode: 45081, client: -1, http: 409, msg: "already typing" },
    /// getPaidUnionId: the app is not bound to an open account.
    OpenAccountMissing => { errcode: 89002, client: -1, http: 400, msg: "open not exists" },
    /// getPaidUnionId: no such order, it is another user's, or it was paid more than 5 minutes ago.
    PaidOrderInvalid => { errcode: 89300, client: -1, http: 404, msg: "invalid trade" },

    /// Client API: no `Authorization: Bearer <session>`.
    ClientSessionMissing => { errcode: 41001, client: -1, http: 401, msg: "client session missing" },
    /// Client API: the session is unknown, revoked or expired.
    ClientSessionInvalid => { errcode: 40014, client: -1, http: 401, msg: "invalid client session" },
    /// Client API: the page's origin is not among the app's allowed origins.
    ClientOriginNotAllowed => { errcode: 40013, client: -1, http: 403, msg: "origin not allowed" },

    /// Admin API: no or wrong admin token.
    AdminUnauthorized => { errcode: 40001, client: -1, http: 401, msg: "admin token missing or wrong" },
    /// Admin API: the request is malformed.
    AdminInvalidRequest => { errcode: 47001, client: -1, http: 400, msg: "invalid request" },
    /// Admin API: the object does not exist.
    AdminNotFound => { errcode: 40066, client: -1, http: 404, msg: "not found" },
    /// Admin API: the object already exists.
    AdminConflict => { errcode: 47001, client: -1, http: 409, msg: "already exists" },

    /// Cloud gateway: the request breaks a rule of `cloud-gateway.md` §2 (a field missing or of the
    /// wrong type, a bad `path`, `timeout`, `cacheType` or `cacheTime`, a GET with a body, ...).
    CloudInvalidRequest => { errcode: 9302001, client: -1, http: 400, msg: "invalid cloud request" },
    /// Cloud gateway: `method` is not `GET` or `POST` (upper case).
    CloudMethodNotAllowed => { errcode: 9302002, client: -1, http: 405, msg: "method not allowed: GET or POST only" },
    /// Cloud gateway: a POST whose caller headers ask for a content type other than `application/json`.
    CloudContentTypeRefused => { errcode: 9302003, client: -1, http: 415, msg: "content type refused: POST sends application/json only" },
    /// Cloud gateway: path, query and body together are larger than 128 KB.
    CloudRequestTooLarge => { errcode: 9302004, client: -1, http: 413, msg: "cloud request too large" },
    /// Cloud gateway: no cloud app of the calling app has this `cloudAppId`.
    CloudAppNotFound => { errcode: 9302005, client: -1, http: 404, msg: "cloud app not found" },
    /// Cloud gateway: the cloud app is disabled.
    CloudAppDisabled => { errcode: 9302006, client: -1, http: 403, msg: "cloud app disabled" },
    /// Cloud gateway: `exts.domain` is not on the cloud app's whitelist.
    CloudOriginNotWhitelisted => { errcode: 9302007, client: -1, http: 403, msg: "domain not on the cloud app's whitelist" },
    /// Cloud gateway: no complete answer within `timeout`; the upstream call was cancelled.
    CloudUpstreamTimeout => { errcode: 9302010, client: -2, http: 504, msg: "upstream timeout" },
    /// Cloud gateway: the upstream could not be reached (refused, reset, DNS, TLS, ...).
    CloudUpstreamConnectError => { errcode: 9302011, client: -2, http: 502, msg: "upstream connection failed" },
    /// Cloud gateway: the upstream answered an HTTP status other than 2xx.
    CloudUpstreamHttpStatus => { errcode: 9302012, client: -2, http: 502, msg: "upstream answered an http error" },
    /// Cloud gateway: the upstream's answer is not the JSON envelope `{success, data, errorCode, errorMessage}`.
    CloudUpstreamNotEnvelope => { errcode: 9302013, client: -2, http: 502, msg: "upstream answer is not the envelope" },
    /// Cloud gateway: `success: true` with `data` of `0`, `false`, `""`, `null` or missing.
    CloudUpstreamFalsyData => { errcode: 9302014, client: -2, http: 502, msg: "upstream success without data" },
    /// Cloud gateway: the domain resolves to an address the operator does not allow (loopback,
    /// private, link-local, metadata); nothing was sent.
    CloudUpstreamAddressRefused => { errcode: 9302015, client: -2, http: 403, msg: "upstream address refused" },
    /// Cloud gateway: the upstream redirected to another origin (or more than 3 times); souk does not
    /// follow it.
    CloudUpstreamRedirect => { errcode: 9302016, client: -2, http: 502, msg: "upstream redirect refused" },
    /// Cloud gateway: the upstream's answer is larger than souk reads.
    CloudUpstreamTooLarge => { errcode: 9302017, client: -2, http: 502, msg: "upstream answer too large" },
}

impl Code {
    /// Whether a failure of this kind is souk's fault rather than the caller's or a provider's.
    pub fn is_internal(self) -> bool {
        matches!(self, Code::SystemError | Code::MarketInternal)
    }

    /// Whether this is one of the cloud gateway's own codes (`Cloud...`), answered with an [`error_code`](Code::error_code).
    pub fn is_cloud(self) -> bool {
        self.name().starts_with("Cloud")
    }

    /// The stable `errorCode` string of the cloud gateway (`cloud-gateway.md` §2): the variant's name
    /// without the `Cloud` prefix in SCREAMING_SNAKE_CASE (`CloudUpstreamTimeout` → `UPSTREAM_TIMEOUT`).
    /// Other codes answer their whole name the same way (`SystemError` → `SYSTEM_ERROR`).
    pub fn error_code(self) -> String {
        let name = self.name();
        let name = name.strip_prefix("Cloud").unwrap_or(name);
        let mut out = String::with_capacity(name.len() + 4);
        for (idx, ch) in name.chars().enumerate() {
            if ch.is_ascii_uppercase() && idx > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_uppercase());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    /// Pins every public code: changing one must show up as a snapshot diff in review.
    #[test]
    fn code_table_snapshot() {
        let table: Vec<String> = Code::ALL
            .iter()
            .map(|code| {
                format!(
                    "{:<22} errcode={:<8} client={:<4} http={} msg={:?}",
                    code.name(),
                    code.errcode(),
                    code.client_code(),
                    code.http_status(),
                    code.message()
                )
            })
            .collect();
        insta::assert_snapshot!(table.join("\n"));
    }

    /// The gateway's `errorCode`s are public too; pinned with the table.
    #[test]
    fn cloud_error_codes_snapshot() {
        let table: Vec<String> = Code::ALL
            .iter()
            .filter(|code| code.is_cloud())
            .map(|code| format!("{:<28} {}", code.name(), code.error_code()))
            .collect();
        insta::assert_snapshot!(table.join("\n"));
    }

    #[test]
    fn error_codes_are_screaming_snake_case_and_unique() {
        assert_eq!(Code::CloudUpstreamTimeout.error_code(), "UPSTREAM_TIMEOUT");
        assert_eq!(Code::CloudAppNotFound.error_code(), "APP_NOT_FOUND");
        assert_eq!(Code::SystemError.error_code(), "SYSTEM_ERROR");
        // The gateway answers its own codes, and `SYSTEM_ERROR` when souk itself fails.
        let mut codes: Vec<String> = Code::ALL
            .iter()
            .filter(|c| c.is_cloud() || **c == Code::SystemError)
            .map(|c| c.error_code())
            .collect();
        assert!(codes.iter().all(|c| c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')));
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(before, codes.len());
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
