//! `payments`: the operator's payment system reports payments users made to apps, so getPaidUnionId
//! can answer for them. Reporting an order again answers the first report (200 instead of 201).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use souk_core::store::payments::PaymentRecord;
use souk_types::admin::{NewPayment, PaymentView};

use crate::context::RequestContext;
use crate::extract::{AdminAuth, AdminJson};
use crate::render;
use crate::state::AppState;

fn view(payment: PaymentRecord) -> PaymentView {
    PaymentView {
        payment_id: payment.payment_id,
        appid: payment.appid,
        openid: payment.openid,
        transaction_id: payment.transaction_id,
        mch_id: payment.mch_id,
        out_trade_no: payment.out_trade_no,
        amount: payment.amount,
        paid_at: payment.paid_at_ms.div_euclid(1000),
        created_at: payment.created_at_ms.div_euclid(1000),
    }
}

/// `POST payments {appid, openid, transaction_id?, mch_id?, out_trade_no?, amount?, paid_at?}`.
pub async fn create(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    AdminJson(new): AdminJson<NewPayment>,
) -> Response {
    match state.souk.record_payment(&new).await {
        Ok((payment, inserted)) => {
            let status = if inserted { StatusCode::CREATED } else { StatusCode::OK };
            (status, axum::Json(view(payment))).into_response()
        }
        Err(failure) => render::souk_failure(&failure, &context.request_id),
    }
}
