//! The `codes` row as both backends read it, and its mapping to [`CodeRecord`].

use souk_core::store::codes::CodeRecord;

/// Columns of `codes`, in table order.
pub(crate) const CODE_COLUMNS: &str = "code_id, appid, kind, params_hash, counted, path, page, scene, env_version, created_at_ms";

/// A row of `codes`.
#[derive(sqlx::FromRow)]
pub(crate) struct CodeRow {
    code_id: String,
    appid: String,
    kind: String,
    params_hash: String,
    counted: bool,
    path: Option<String>,
    page: Option<String>,
    scene: Option<String>,
    env_version: Option<String>,
    created_at_ms: i64,
}

impl From<CodeRow> for CodeRecord {
    fn from(row: CodeRow) -> Self {
        CodeRecord {
            code_id: row.code_id,
            appid: row.appid,
            kind: row.kind,
            params_hash: row.params_hash,
            counted: row.counted,
            path: row.path,
            page: row.page,
            scene: row.scene,
            env_version: row.env_version,
            created_at_ms: row.created_at_ms,
        }
    }
}
