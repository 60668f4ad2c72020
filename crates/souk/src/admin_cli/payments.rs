//! `souk admin payments ...`: report payments users made to apps, as the operator's payment system
//! does, so getPaidUnionId can answer for them within 5 minutes.

use clap::Subcommand;
use souk_sdk::types::admin::NewPayment;
use souk_sdk::AdminClient;

use super::output::{format_time_s, Output};
use super::CliError;

#[derive(Debug, Subcommand)]
pub(super) enum PaymentsCommand {
    /// Report a payment; the order is named by --transaction-id, or by --mch-id and --out-trade-no.
    Add {
        /// The app paid.
        #[arg(long)]
        appid: String,
        /// The payer's openid in that app.
        #[arg(long)]
        openid: String,
        /// The transaction id.
        #[arg(long)]
        transaction_id: Option<String>,
        /// The merchant id.
        #[arg(long)]
        mch_id: Option<String>,
        /// The merchant's order number.
        #[arg(long)]
        out_trade_no: Option<String>,
        /// The amount, in the smallest currency unit.
        #[arg(long)]
        amount: Option<i64>,
        /// Unix seconds of the payment (default now).
        #[arg(long)]
        paid_at: Option<i64>,
    },
}

/// Runs one `payments` subcommand.
pub(super) async fn run(client: &AdminClient, out: Output, command: PaymentsCommand) -> Result<(), CliError> {
    match command {
        PaymentsCommand::Add {
            appid,
            openid,
            transaction_id,
            mch_id,
            out_trade_no,
            amount,
            paid_at,
        } => {
            let payment = client
                .create_payment(&NewPayment {
                    appid,
                    openid,
                    transaction_id,
                    mch_id,
                    out_trade_no,
                    amount,
                    paid_at,
                })
                .await?;
            out.line(&payment, || {
                format!(
                    "payment {} of {} to {} recorded, paid {}",
                    payment.payment_id,
                    payment.openid,
                    payment.appid,
                    format_time_s(payment.paid_at)
                )
            })
        }
    }
}
