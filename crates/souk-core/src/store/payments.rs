//! Payments in storage (`wire.md` §2 getPaidUnionId, §6 `POST payments`): the [`Payments`] trait.
//! The operator's payment system reports each payment once or more; the store keeps the first
//! report of an order, named by its transaction id or by its merchant id and order number.

use async_trait::async_trait;

use super::StoreError;

/// One payment a user made to an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// souk's id.
    pub payment_id: String,
    /// The app paid.
    pub appid: String,
    /// The payer's openid in the app.
    pub openid: String,
    /// The transaction id (unique).
    pub transaction_id: Option<String>,
    /// The merchant id (with `out_trade_no`, unique).
    pub mch_id: Option<String>,
    /// The merchant's order number.
    pub out_trade_no: Option<String>,
    /// The amount.
    pub amount: Option<i64>,
    /// When the user paid.
    pub paid_at_ms: i64,
    /// When it was reported.
    pub created_at_ms: i64,
}

/// What [`Payments::record_payment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentInsert {
    /// A new payment, kept.
    Inserted(PaymentRecord),
    /// The order was reported before: that first report is answered and nothing changed.
    Existing(PaymentRecord),
}

/// Reported payments.
#[async_trait]
pub trait Payments: Send + Sync {
    /// Keeps a payment unless one with the same `transaction_id`, or the same `mch_id` and
    /// `out_trade_no`, is there (answered instead); racing reports of one order keep one.
    async fn record_payment(&self, payment: &PaymentRecord) -> Result<PaymentInsert, StoreError>;
    /// The payment with this transaction id.
    async fn find_payment_by_transaction(&self, transaction_id: &str) -> Result<Option<PaymentRecord>, StoreError>;
    /// The payment with this merchant id and order number.
    async fn find_payment_by_order(&self, mch_id: &str, out_trade_no: &str) -> Result<Option<PaymentRecord>, StoreError>;
}
