//! The SQL both backends run, written once.
//!
//! Each submodule holds one `macro_rules!` that expands a trait of [`souk_core::store`] for a
//! backend store. The backend file (`sqlite/<area>.rs`, `postgres/<area>.rs`) invokes it once and
//! hand-writes, next to the invocation, only what really differs between the databases.
//!
//! # Why a macro
//!
//! Generic functions over `sqlx::Database` were the alternative. They would need, on every
//! function, a `where` clause per bound or decoded type (`for<'q> i64: Encode<'q, DB> + Type<DB>`,
//! `for<'r> AppRow: FromRow<'r, DB::Row>`, `for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>`, ...),
//! longer than the statements they share; and the trait impls themselves could still not be written
//! once, because the traits belong to `souk-core` and a blanket impl over a generic store is refused
//! by the orphan rule. A macro expanded per backend sees the concrete types (`Sqlite`, `Postgres`),
//! so the shared bodies are ordinary sqlx code, type-checked once per backend.
//!
//! # How an invocation reads
//!
//! Every macro takes the same first parameters:
//!
//! - `store`: the store type (`SqliteStore`, `PgStore`);
//! - `db`: the sqlx database type (`Sqlite`, `Postgres`), for transactions and query builders;
//! - `read`: the pool field plain reads go to (SQLite: `reader`, the WAL readers; PostgreSQL: `pool`);
//! - `write`: the pool field single-statement writes go to (SQLite: `writer`, its one connection;
//!   PostgreSQL: `pool`);
//! - `begin`: the method starting a write transaction (SQLite: `begin_write`, a `BEGIN IMMEDIATE` on
//!   the writer; PostgreSQL: `begin`).
//!
//! and then the knobs and hooks of its area, each documented on the macro: SQL fragments that differ
//! (row-lock clauses, boolean literals, NULL ordering) and the names of functions of the invoking
//! file for the steps where the backends differ in more than a word (advisory locks, retry loops,
//! `SKIP LOCKED`). Both dialects accept `$1` placeholders, so everything else is shared
//! as written.
//!
//! The expansion is a private module `shared` inside the invoking file. It starts with
//! `use super::*`, so every name of the invocation means what it means in that file: the store type,
//! the backend's own `from_sqlx` (errors are translated per backend) and the hooks. Helpers that
//! other files of the backend need (the ledger's `reserve_in`, ...) are `pub(crate)` in it and
//! re-exported by the invoking file.

pub(crate) mod calls;
pub(crate) mod cdn;
pub(crate) mod clients;
pub(crate) mod cloud;
pub(crate) mod codes;
pub(crate) mod jobs;
pub(crate) mod ledger;
pub(crate) mod media;
pub(crate) mod messages;
pub(crate) mod payments;
pub(crate) mod registry;
pub(crate) mod tokens;
