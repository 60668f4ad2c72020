//! Reported payments, shared: a report is `INSERT ... ON CONFLICT DO NOTHING` (on either unique key:
//! the transaction id, or the merchant id with the order number), then a read of the order's row, in
//! one transaction; a racing report of the same order waits for the first to commit and reads it.

/// Expands [`Payments`](souk_core::store::payments::Payments) for a backend store (common parameters:
/// see [`crate::shared`]).
macro_rules! impl_payments {
    (
        store: $store:ident,
        read: $read:ident,
        begin: $begin:ident $(,)?
    ) => {
        mod shared {
            use super::*;

            use async_trait::async_trait;
            use souk_core::store::payments::{PaymentInsert, PaymentRecord, Payments};
            use souk_core::store::StoreError;
            use $crate::message_rows::{PaymentRow, PAYMENT_COLUMNS};

            #[async_trait]
            impl Payments for $store {
                async fn record_payment(&self, payment: &PaymentRecord) -> Result<PaymentInsert, StoreError> {
                    let mut tx = self.$begin().await?;
                    let inserted = sqlx::query(&format!(
                        "INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
                    ))
                    .bind(&payment.payment_id)
                    .bind(&payment.appid)
                    .bind(&payment.openid)
                    .bind(&payment.transaction_id)
                    .bind(&payment.mch_id)
                    .bind(&payment.out_trade_no)
                    .bind(payment.amount)
                    .bind(payment.paid_at_ms)
                    .bind(payment.created_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?
                    .rows_affected();
                    if inserted == 1 {
                        tx.commit().await.map_err(from_sqlx)?;
                        return Ok(PaymentInsert::Inserted(payment.clone()));
                    }
                    let existing: Option<PaymentRow> = sqlx::query_as(&format!(
                        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE transaction_id = $1 OR (mch_id = $2 AND out_trade_no = $3) \
                         ORDER BY created_at_ms, payment_id LIMIT 1"
                    ))
                    .bind(&payment.transaction_id)
                    .bind(&payment.mch_id)
                    .bind(&payment.out_trade_no)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    match existing {
                        Some(row) => Ok(PaymentInsert::Existing(row.into())),
                        // Only the payment id itself can have clashed.
                        None => Err(StoreError::AlreadyExists),
                    }
                }

                async fn find_payment_by_transaction(&self, transaction_id: &str) -> Result<Option<PaymentRecord>, StoreError> {
                    let row: Option<PaymentRow> =
                        sqlx::query_as(&format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE transaction_id = $1"))
                            .bind(transaction_id)
                            .fetch_optional(&self.$read)
                            .await
                            .map_err(from_sqlx)?;
                    Ok(row.map(PaymentRecord::from))
                }

                async fn find_payment_by_order(&self, mch_id: &str, out_trade_no: &str) -> Result<Option<PaymentRecord>, StoreError> {
                    let row: Option<PaymentRow> = sqlx::query_as(&format!(
                        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE mch_id = $1 AND out_trade_no = $2"
                    ))
                    .bind(mch_id)
                    .bind(out_trade_no)
                    .fetch_optional(&self.$read)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(row.map(PaymentRecord::from))
                }
            }
        }
    };
}

pub(crate) use impl_payments;
