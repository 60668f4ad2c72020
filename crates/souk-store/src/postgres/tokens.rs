//! Access tokens and the stable-token force-refresh counter on PostgreSQL. A rotation takes a
//! transaction-scoped advisory lock keyed by app and kind, so racing rotations serialize and the
//! `expect_current` check sees the winner's token.

use async_trait::async_trait;
use souk_core::model::{ForceRefresh, Supersede, TokenKind, TokenRecord};
use souk_core::store::{StoreError, Tokens};

use super::{from_sqlx, xact_lock, PgStore};
use crate::rows::{TokenRow, TOKEN_COLUMNS};

fn rotation_key(appid: &str, kind: TokenKind) -> String {
    format!("souk.tokens:{}:{appid}", kind.as_str())
}

#[async_trait]
impl Tokens for PgStore {
    async fn issue_token(
        &self,
        token: &TokenRecord,
        supersede: Supersede,
        expect_current: Option<Option<&str>>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        xact_lock(&mut tx, &rotation_key(&token.appid, token.kind)).await?;
        if let Some(expected) = expect_current {
            let current: Option<String> = sqlx::query_scalar(
                "SELECT token_hash FROM tokens WHERE appid = $1 AND kind = $2 AND superseded = false \
                 ORDER BY issued_at_ms DESC, token_hash DESC LIMIT 1",
            )
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
            sqlx::query(
                "UPDATE tokens SET superseded = true, dies_at_ms = LEAST($3, expires_at_ms) \
                 WHERE appid = $1 AND kind = $2 AND superseded = false",
            )
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

    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        row.map(TokenRecord::try_from).transpose()
    }

    async fn current_token(&self, appid: &str, kind: TokenKind) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE appid = $1 AND kind = $2 AND superseded = false \
             ORDER BY issued_at_ms DESC, token_hash DESC LIMIT 1"
        ))
        .bind(appid)
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        row.map(TokenRecord::try_from).transpose()
    }

    async fn kill_tokens(&self, appid: &str, kind: TokenKind, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        xact_lock(&mut tx, &rotation_key(appid, kind)).await?;
        let done = sqlx::query(
            "UPDATE tokens SET superseded = true, dies_at_ms = $3 \
             WHERE appid = $1 AND kind = $2 AND (dies_at_ms IS NULL OR dies_at_ms > $3)",
        )
        .bind(appid)
        .bind(kind.as_str())
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn count_force_refresh(
        &self,
        appid: &str,
        day: i64,
        now_ms: i64,
        min_gap_ms: i64,
        max_per_day: u32,
    ) -> Result<ForceRefresh, StoreError> {
        let mut tx = self.begin().await?;
        // Make sure there is a row to lock; a fresh row (count 0, no last time) means "none yet".
        sqlx::query(
            "INSERT INTO force_refresh (appid, day, count, last_at_ms) VALUES ($1, $2, 0, NULL) \
             ON CONFLICT (appid) DO NOTHING",
        )
        .bind(appid)
        .bind(day)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let stored: (i64, i64, Option<i64>) =
            sqlx::query_as("SELECT day, count, last_at_ms FROM force_refresh WHERE appid = $1 FOR UPDATE")
                .bind(appid)
                .fetch_one(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        let count = match crate::rows::force_refresh_decision(Some(stored), day, now_ms, min_gap_ms, max_per_day) {
            Ok(count) => count,
            Err(refused) => return Ok(refused),
        };
        sqlx::query("UPDATE force_refresh SET day = $2, count = $3, last_at_ms = $4 WHERE appid = $1")
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
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }
}
