//! getPaidUnionId over HTTP (`wire.md` §2, `wechat-wire.md` §4): `GET /wxa/getpaidunionid?access_token=
//! &openid=&transaction_id=` or `&mch_id=&out_trade_no=` → `{unionid, errcode: 0, errmsg: "ok"}`.

use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use souk_core::builtin::BuiltinApi;
use souk_core::paid_unionid::OrderRef;

use crate::context::RequestContext;
use crate::extract::{call_record, QueryPairs, WechatCaller};
use crate::routes::{logged_wechat_json, noted_failure};
use crate::state::AppState;

/// `GET /wxa/getpaidunionid`.
pub async fn get_paid_unionid(
    State(state): State<AppState>,
    context: RequestContext,
    WechatCaller(caller): WechatCaller,
    query: QueryPairs,
) -> Response {
    let mut call = call_record(&context, "getpaidunionid");
    call.appid = Some(caller.app.appid.clone());
    let openid = query.get("openid");
    call.openid = openid.filter(|openid| !openid.is_empty()).map(str::to_owned);
    let present = |name: &str| query.get(name).filter(|value| !value.is_empty());
    let order = match (present("transaction_id"), present("mch_id"), present("out_trade_no")) {
        (Some(transaction_id), _, _) => Some(OrderRef::Transaction(transaction_id)),
        (None, Some(mch_id), Some(out_trade_no)) => Some(OrderRef::MerchantOrder { mch_id, out_trade_no }),
        _ => None,
    };
    let found = match state.souk.admit_builtin(&caller.app, BuiltinApi::GetPaidUnionId, &mut call).await {
        Ok(()) => state.souk.paid_unionid(&caller, openid, order).await,
        Err(failure) => Err(failure),
    };
    let body = match found {
        Ok(unionid) => json!({"unionid": unionid, "errcode": 0, "errmsg": "ok"}),
        Err(failure) => noted_failure(&mut call, &failure, &context.request_id),
    };
    logged_wechat_json(&state, &context, call, &body).await
}
