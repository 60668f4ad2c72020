//! Access tokens, shared: issuing (with the optional `expect_current` check and the superseding of
//! the current tokens) is one transaction; lookups and the sweep are single statements.

/// Expands [`Tokens`](souk_core::store::Tokens) for a backend store (common parameters: see
/// [`crate::shared`]), with `supersede_all`, `pub(crate)` in the generated module: the statement
/// killing every live token of an app and kind, on any executor; and `issue_in_transaction`.
///
/// Knobs, the SQL spelling of what differs: `sql_true` and `sql_false`, the literals compared with
/// the boolean `superseded` column; `least`, the function answering the smaller of two values; and
/// `save_force_refresh`, the statement writing the force-refresh counter back (`$1` appid, `$2` day,
/// `$3` count, `$4` now), in the transaction that read it.
///
/// Hooks, functions of the invoking file:
/// - `lock_rotation(tx, appid, kind) -> Result<(), StoreError>`: serializes the rotations of one app
///   and kind from the start of `issue_token`'s transaction, so the `expect_current` check sees the
///   winner's token;
/// - `read_force_refresh(tx, appid, day) -> Result<Option<(i64, i64, Option<i64>)>, StoreError>`:
///   the app's `(day, count, last_at_ms)`, kept from concurrent writers until commit;
/// - `kill_tokens(&store, appid, kind, now_ms) -> Result<u64, StoreError>`: the whole
///   [`Tokens::kill_tokens`](souk_core::store::Tokens::kill_tokens);
/// - `issue_token(&store, token, supersede, expect_current) -> Result<bool, StoreError>`: the whole
///   [`Tokens::issue_token`](souk_core::store::Tokens::issue_token), the generated
///   `issue_in_transaction` (one transaction of its own) or the backend's own (SQLite group-commits it).
macro_rules! impl_tokens {
    (
        store: $store:ident,
        db: $db:ident,
        read: $read:ident,
        write: $write:ident,
        begin: $begin:ident,
        sql_true: $true:literal,
        sql_false: $false:literal,
        least: $least:literal,
        save_force_refresh: $save_force_refresh:literal,
        lock_rotation: $lock_rotation:ident,
        kill_tokens: $kill_tokens:ident,
        read_force_refresh: $read_force_refresh:ident,
        issue_token: $issue:ident $(,)?
    ) => {
        mod shared {
            use super::*;

            use async_trait::async_trait;
            use souk_core::model::{ForceRefresh, Supersede, TokenKind, TokenRecord};
            use souk_core::store::{StoreError, Tokens};
            use $crate::rows::{self, TokenRow, TOKEN_COLUMNS};

            #[async_trait]
            impl Tokens for $store {
                async fn issue_token(
                    &self,
                    token: &TokenRecord,
                    supersede: Supersede,
                    expect_current: Option<Option<&str>>,
                ) -> Result<bool, StoreError> {
                    $issue(self, token, supersede, expect_current).await
                }

                async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
                    let row: Option<TokenRow> = sqlx::query_as(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = $1"))
                        .bind(token_hash)
                        .fetch_optional(&self.$read)
                        .await
                        .map_err(from_sqlx)?;
                    row.map(TokenRecord::try_from).transpose()
                }

                async fn current_token(&self, appid: &str, kind: TokenKind) -> Result<Option<TokenRecord>, StoreError> {
                    let row: Option<TokenRow> = sqlx::query_as(&format!(
                        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE appid = $1 AND kind = $2 AND superseded = {sql_false} \
                         ORDER BY issued_at_ms DESC, token_hash DESC LIMIT 1",
                        sql_false = $false
                    ))
                    .bind(appid)
                    .bind(kind.as_str())
                    .fetch_optional(&self.$read)
                    .await
                    .map_err(from_sqlx)?;
                    row.map(TokenRecord::try_from).transpose()
                }

                async fn kill_tokens(&self, appid: &str, kind: TokenKind, now_ms: i64) -> Result<u64, StoreError> {
                    $kill_tokens(self, appid, kind, now_ms).await
                }

                async fn count_force_refresh(
                    &self,
                    appid: &str,
                    day: i64,
                    now_ms: i64,
                    min_gap_ms: i64,
                    max_per_day: u32,
                ) -> Result<ForceRefresh, StoreError> {
                    let mut tx = self.$begin().await?;
                    let stored = $read_force_refresh(&mut tx, appid, day).await?;
                    let count = match rows::force_refresh_decision(stored, day, now_ms, min_gap_ms, max_per_day) {
                        Ok(count) => count,
                        Err(refused) => return Ok(refused),
                    };
                    sqlx::query($save_force_refresh)
                        .bind(appid)
                        .bind(day)
                        .bind(count)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(ForceRefresh::Allowed)
                }

                async fn sweep_tokens(&self, before_ms: i64) -> Result<u64, StoreError> {
                    let done = sqlx::query("DELETE FROM tokens WHERE expires_at_ms < $1")
                        .bind(before_ms)
                        .execute(&self.$write)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(done.rows_affected())
                }
            }

            /// [`Tokens::issue_token`] as one transaction of its own.
            #[allow(dead_code)] // A backend that group-commits token issues has no use for it.
            pub(crate) async fn issue_in_transaction(
                store: &$store,
                token: &TokenRecord,
                supersede: Supersede,
                expect_current: Option<Option<&str>>,
            ) -> Result<bool, StoreError> {
                let mut tx = store.$begin().await?;
                $lock_rotation(&mut tx, &token.appid, token.kind).await?;
                if let Some(expected) = expect_current {
                    let current: Option<String> = sqlx::query_scalar(concat!(
                        "SELECT token_hash FROM tokens WHERE appid = $1 AND kind = $2 AND superseded = ",
                        $false,
                        " ORDER BY issued_at_ms DESC, token_hash DESC LIMIT 1"
                    ))
                    .bind(&token.appid)
                    .bind(token.kind.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    if current.as_deref() != expected {
                        return Ok(false);
                    }
                }
                if let Supersede::Overlap { dies_at_ms } = supersede {
                    sqlx::query(concat!(
                        "UPDATE tokens SET superseded = ",
                        $true,
                        ", dies_at_ms = ",
                        $least,
                        "($3, expires_at_ms) WHERE appid = $1 AND kind = $2 AND superseded = ",
                        $false
                    ))
                    .bind(&token.appid)
                    .bind(token.kind.as_str())
                    .bind(dies_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                }
                sqlx::query(&format!(
                    "INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(&token.token_hash)
                .bind(&token.appid)
                .bind(token.kind.as_str())
                .bind(&token.plaintext)
                .bind(token.issued_at_ms)
                .bind(token.expires_at_ms)
                .bind(token.superseded)
                .bind(token.dies_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
                tx.commit().await.map_err(from_sqlx)?;
                Ok(true)
            }

            /// Kills every token of `appid` and `kind` still alive at `now_ms` (superseded, dying
            /// now); answers how many.
            pub(crate) async fn supersede_all<'c, E>(executor: E, appid: &str, kind: TokenKind, now_ms: i64) -> Result<u64, StoreError>
            where
                E: sqlx::Executor<'c, Database = sqlx::$db>,
            {
                let done = sqlx::query(concat!(
                    "UPDATE tokens SET superseded = ",
                    $true,
                    ", dies_at_ms = $3 WHERE appid = $1 AND kind = $2 AND (dies_at_ms IS NULL OR dies_at_ms > $3)"
                ))
                .bind(appid)
                .bind(kind.as_str())
                .bind(now_ms)
                .execute(executor)
                .await
                .map_err(from_sqlx)?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use impl_tokens;
