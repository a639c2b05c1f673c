//! A [`KeyStore`](super::KeyStore) on PostgreSQL, for services that run several instances.
//!
//! [`PostgresKeyStore`] keeps [`ApiKeyRecord`](super::ApiKeyRecord)s in the table
//! `tollgate_api_keys`, with the same semantics as
//! [`InMemoryKeyStore`](super::InMemoryKeyStore):
//!
//! - **Lookups by digest** use a unique index on the `bytea` digest column: one index scan per
//!   cache miss, and a second key with the same digest is refused as a
//!   [`Conflict`](super::StoreErrorKind::Conflict).
//! - **Rotation is one transaction.** Concurrent rotations of one application's slot are
//!   serialised by a transaction-scoped advisory lock on (app, slot) (which, unlike
//!   `SELECT … FOR UPDATE`, also covers a slot that has no row yet), so each retires the
//!   key the previous one inserted, exactly as the in-memory store does.
//! - **Every query is bounded.** [`pool`] builds a pool whose connections carry a
//!   `statement_timeout` and whose waits (for a free connection, to connect, to recycle) all
//!   time out; the API-key layer's lookup timeout is a second guard, not the only one.
//!   Connection failures are [`Unavailable`](super::StoreErrorKind::Unavailable) (the layer
//!   answers 503, while keys already in its cache keep working until their TTL), timeouts are
//!   [`Timeout`](super::StoreErrorKind::Timeout).
//!
//! The schema ships with the crate as versioned SQL files (`migrations/*.sql`, see
//! [`MIGRATIONS`]); [`migrate`] applies the missing ones, idempotently and safely when several
//! instances start at once.
//!
//! Timestamps are stored as `timestamptz`, which keeps microseconds: a record read back has
//! its `created_at` and `expires_at` truncated to the microsecond.
//!
//! # Example
//!
//! ```no_run
//! use tollgate::api_key::postgres::{self, PostgresKeyStore};
//! use tollgate::api_key::{ApiKeyLayer, ApiKeys, NewKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = postgres::pool("postgres://tollgate@127.0.0.1/tollgate")?;
//! postgres::migrate(&pool).await?;
//!
//! let keys = ApiKeys::builder(PostgresKeyStore::new(pool)).build();
//! let created = keys.generate(NewKey::new("app-1", "Orders sync")).await?;
//! println!("your key, shown once: {}", created.key().expose());
//!
//! let layer = ApiKeyLayer::new(keys);
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! To use TLS or other pool settings, build a [`deadpool_postgres::Pool`] yourself (this module
//! re-exports the crate) and pass it to [`PostgresKeyStore::new`]; keep a `statement_timeout`
//! (`options=-c statement_timeout=5000` in the URL) and the pool's timeouts set.

mod migrate;
mod sql;
mod store;

pub use self::migrate::{MIGRATIONS, Migration, migrate};
pub use self::store::{PostgresKeyStore, pool};

/// The pool crate, re-exported so a pool built by hand has the version tollgate expects.
pub use deadpool_postgres;
/// The driver, re-exported for its `Config` and TLS connectors.
pub use tokio_postgres;
