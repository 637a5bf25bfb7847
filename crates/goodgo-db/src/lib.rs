//! GoodGo's database, as goodgo and the API use it.
//!
//! - [`migrations`]: the `V{n}__{name}.sql` files, read and validated (pure but for reading).
//! - [`runner`]: applying them with refinery under a PostgreSQL advisory lock, so that any
//!   number of concurrent runners apply each migration exactly once; and the status of a
//!   database against the files.
//! - [`outside`]: the migrations that run outside a transaction (`CREATE INDEX
//!   CONCURRENTLY`), statement by statement, recorded only after the last succeeds.
//! - [`admin`]: connecting, creating and dropping databases, arguments for libpq tools.
//! - [`scratch`]: throwaway databases for jobs and tests.
//! - [`schema`]: normalising `pg_dump --schema-only` output and diffing two schemas.
//! - [`seed`]: deterministic, realistic data loaded with COPY.
//! - [`search`]: the listing search query (shared with the API), built from filters.
//!
//! Errors are one type, [`DbError`], whose variants keep their cause; [`PgError`] shows
//! what PostgreSQL said in full.

pub mod admin;
pub mod migrations;
pub mod outside;
pub mod properties;
pub mod runner;
pub mod schema;
pub mod scratch;
pub mod search;
pub mod seed;

mod error;

pub use error::{DbError, OutsideFailure, PgError, describe};
