//! Translation of backend failures into [`StoreError`]: the parts both backends share. Each backend's
//! own `from_sqlx` handles its database error codes and defers the rest to [`other`].
//!
//! Messages are for logs and stay short; they never carry SQL text or connection URLs.

use souk_core::store::StoreError;
use sqlx::migrate::MigrateError;

/// A failure that is not a database error: transport, pool, decoding.
pub(crate) fn other(backend: &'static str, err: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match err {
        E::RowNotFound => StoreError::NotFound,
        E::PoolTimedOut => StoreError::Unavailable(format!("{backend}: connection pool timed out")),
        E::PoolClosed => StoreError::Unavailable(format!("{backend}: connection pool closed")),
        E::WorkerCrashed => StoreError::Unavailable(format!("{backend}: connection worker crashed")),
        E::Io(io) => StoreError::Unavailable(format!("{backend}: {io}")),
        E::Tls(tls) => StoreError::Unavailable(format!("{backend}: tls: {tls}")),
        E::Protocol(_) => StoreError::Unavailable(format!("{backend}: protocol error")),
        E::Configuration(cfg) => StoreError::Internal(format!("{backend}: bad configuration: {cfg}")),
        E::ColumnNotFound(column) => StoreError::Internal(format!("{backend}: column {column} not found")),
        E::ColumnDecode { index, .. } => StoreError::Internal(format!("{backend}: cannot decode column {index}")),
        E::Decode(_) => StoreError::Internal(format!("{backend}: cannot decode a value")),
        E::TypeNotFound { type_name } => StoreError::Internal(format!("{backend}: type {type_name} not found")),
        E::Database(db) => StoreError::Internal(format!("{backend}: {}", db.message())),
        // The rest (`BeginFailed`, `InvalidArgument`, driver-specific errors) carry no SQL text or
        // URL: their own words say what went wrong.
        other => StoreError::Internal(format!("{backend}: {other}")),
    }
}

/// A migration failure; database errors inside it go through the backend's `from_sqlx`.
pub(crate) fn migrate(backend: &'static str, err: MigrateError, from_sqlx: fn(sqlx::Error) -> StoreError) -> StoreError {
    match err {
        MigrateError::Execute(err) => from_sqlx(err),
        MigrateError::ExecuteMigration(err, version) => match from_sqlx(err) {
            StoreError::Internal(msg) => StoreError::Internal(format!("migration {version}: {msg}")),
            other => other,
        },
        other => StoreError::Internal(format!("{backend}: migrations: {other}")),
    }
}

/// A stored JSON column that does not parse.
pub(crate) fn bad_json(column: &str, err: &serde_json::Error) -> StoreError {
    StoreError::Internal(format!("stored {column} is not valid JSON: {err}"))
}

/// A stored value outside its domain (an unknown enum name, a negative unsigned).
pub(crate) fn bad_value(column: &str) -> StoreError {
    StoreError::Internal(format!("stored {column} has an invalid value"))
}

/// Whether the applied migrations (`versions`, from `_sqlx_migrations`; `None` when that table is
/// missing) are exactly `migrator`'s: a clear refusal naming what to do otherwise.
pub(crate) fn require_current(
    backend: &'static str,
    migrator: &sqlx::migrate::Migrator,
    versions: Option<Vec<i64>>,
) -> Result<(), StoreError> {
    let Some(applied) = versions else {
        return Err(StoreError::Internal(format!(
            "{backend}: the database has no souk schema; run `souk migrate` first (or start without --no-migrate)"
        )));
    };
    let known: Vec<i64> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect();
    let missing: Vec<String> = known.iter().filter(|v| !applied.contains(v)).map(i64::to_string).collect();
    if !missing.is_empty() {
        return Err(StoreError::Internal(format!(
            "{backend}: the database lacks migration(s) {}; run `souk migrate` first (or start without --no-migrate)",
            missing.join(", ")
        )));
    }
    let unknown: Vec<String> = applied.iter().filter(|v| !known.contains(v)).map(i64::to_string).collect();
    if !unknown.is_empty() {
        return Err(StoreError::Internal(format!(
            "{backend}: the database has migration(s) {} this souk does not know: it was migrated by a newer souk",
            unknown.join(", ")
        )));
    }
    Ok(())
}
