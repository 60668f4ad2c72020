//! getPaidUnionId (`wire.md` §2, `wechat-wire.md` §4): an app learns the unionid of a user who paid
//! it in the last 5 minutes, by the payment's transaction id or by its merchant id and order number.
//!
//! souk is not a payment system: the operator's payment system reports each payment through the admin
//! API (`POST /souk/v1/admin/payments`), idempotently per order. The unionid is the person's id in the
//! app's open account, the one client sessions answer, so it is equal across the apps of one open
//! account.

use souk_types::admin::NewPayment;
use souk_types::Code;

use crate::clients::new_person_id;
use crate::error::{Failure, Result};
use crate::ids;
use crate::souk::Souk;
use crate::store::payments::{PaymentInsert, PaymentRecord};
use crate::store::StoreError;
use crate::tokens::Caller;

/// A payment answers getPaidUnionId this long after it was paid (`wechat-wire.md` §4: 5 minutes).
pub const PAID_WINDOW_MS: i64 = 5 * 60_000;
/// The longest order field (`transaction_id`, `mch_id`, `out_trade_no`) souk keeps.
pub const MAX_ORDER_FIELD_LEN: usize = 64;

/// How getPaidUnionId names the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderRef<'a> {
    /// `transaction_id`.
    Transaction(&'a str),
    /// `mch_id` and `out_trade_no`.
    MerchantOrder {
        /// The merchant id.
        mch_id: &'a str,
        /// The merchant's order number.
        out_trade_no: &'a str,
    },
}

fn internal(err: &StoreError) -> Failure {
    Failure::from_store(Code::SystemError, err)
}

fn bad(detail: impl Into<String>) -> Failure {
    Failure::new(Code::AdminInvalidRequest, detail)
}

/// An optional order field of a report: empty is absent; longer than [`MAX_ORDER_FIELD_LEN`] refused.
fn order_field(value: Option<&String>, name: &str) -> Result<Option<String>> {
    match value.map(|value| value.trim()).filter(|value| !value.is_empty()) {
        Some(value) if value.len() > MAX_ORDER_FIELD_LEN => Err(bad(format!("{name} is longer than {MAX_ORDER_FIELD_LEN} bytes"))),
        Some(value) => Ok(Some(value.to_owned())),
        None => Ok(None),
    }
}

impl Souk {
    /// `POST /souk/v1/admin/payments`: keeps a payment; reporting an order again answers the first
    /// report (`false`: nothing new). The openid must be a user of the app.
    pub async fn record_payment(&self, new: &NewPayment) -> Result<(PaymentRecord, bool)> {
        let app = self
            .get_app(&new.appid)
            .await
            .map_err(|_| bad(format!("{} is not a registered app", new.appid)))?;
        let user = self.store.find_user(&app.appid, &new.openid).await.map_err(|err| internal(&err))?;
        if user.is_none() {
            return Err(bad(format!("openid {:?} is not a user of app {}", new.openid, app.appid)));
        }
        let transaction_id = order_field(new.transaction_id.as_ref(), "transaction_id")?;
        let mch_id = order_field(new.mch_id.as_ref(), "mch_id")?;
        let out_trade_no = order_field(new.out_trade_no.as_ref(), "out_trade_no")?;
        if transaction_id.is_none() && (mch_id.is_none() || out_trade_no.is_none()) {
            return Err(bad("give transaction_id, or both mch_id and out_trade_no"));
        }
        if mch_id.is_some() != out_trade_no.is_some() {
            return Err(bad("mch_id and out_trade_no go together"));
        }
        if new.amount.is_some_and(|amount| amount < 0) {
            return Err(bad("amount must not be negative"));
        }
        let now_ms = self.now_ms();
        let paid_at_ms = match new.paid_at {
            Some(seconds) if !(0..=i64::MAX / 1000).contains(&seconds) => return Err(bad("paid_at must be Unix seconds")),
            Some(seconds) => seconds * 1000,
            None => now_ms,
        };
        let payment = PaymentRecord {
            payment_id: format!("pay_{}", &ids::new_token()[..24]),
            appid: app.appid.clone(),
            openid: new.openid.clone(),
            transaction_id,
            mch_id,
            out_trade_no,
            amount: new.amount,
            paid_at_ms,
            created_at_ms: now_ms,
        };
        match self.store.record_payment(&payment).await.map_err(|err| internal(&err))? {
            PaymentInsert::Inserted(payment) => Ok((payment, true)),
            PaymentInsert::Existing(first) if first.appid == payment.appid && first.openid == payment.openid => Ok((first, false)),
            PaymentInsert::Existing(_) => Err(Failure::new(Code::AdminConflict, "this order was reported for another app or user")),
        }
    }

    /// `GET /wxa/getpaidunionid`: the unionid of `openid` when they paid the order within the last 5
    /// minutes. 40003 for an unknown openid, 89002 when the app has no open account, 89300 for an
    /// order that is unknown, another user's or older than 5 minutes.
    pub async fn paid_unionid(&self, caller: &Caller, openid: Option<&str>, order: Option<OrderRef<'_>>) -> Result<String> {
        let app = &caller.app;
        let openid = openid
            .filter(|openid| !openid.is_empty())
            .ok_or_else(|| Failure::new(Code::InvalidOpenid, "openid is missing"))?;
        let user = self
            .store
            .find_user(&app.appid, openid)
            .await
            .map_err(|err| internal(&err))?
            .ok_or_else(|| Failure::new(Code::InvalidOpenid, format!("{openid:?} is not a user of the app")))?;
        let open_account = app
            .open_account
            .as_deref()
            .ok_or_else(|| Failure::new(Code::OpenAccountMissing, "the app is not bound to an open account"))?;
        let order = order.ok_or_else(|| Failure::new(Code::PaidOrderInvalid, "give transaction_id, or mch_id and out_trade_no"))?;
        let payment = match order {
            OrderRef::Transaction(transaction_id) => self.store.find_payment_by_transaction(transaction_id).await,
            OrderRef::MerchantOrder { mch_id, out_trade_no } => self.store.find_payment_by_order(mch_id, out_trade_no).await,
        }
        .map_err(|err| internal(&err))?;
        let payment = payment
            .filter(|payment| payment.appid == app.appid && payment.openid == openid)
            .ok_or_else(|| Failure::new(Code::PaidOrderInvalid, "no such order of this user in this app"))?;
        if self.now_ms() - payment.paid_at_ms > PAID_WINDOW_MS {
            return Err(Failure::new(Code::PaidOrderInvalid, "the order was paid more than 5 minutes ago"));
        }
        self.store
            .get_or_create_unionid(open_account, &user.user, &new_person_id())
            .await
            .map_err(|err| internal(&err))
    }
}
