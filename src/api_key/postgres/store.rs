use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use crate::Quota;
use crate::api_key::{ApiKeyRecord, KeyDigest, KeyStore, StoreError};
use crate::identity::KeySlot;

/// The columns of a record, as a literal for `concat!`.
macro_rules! columns {
    () => {
        "id, app_id, app_name, digest, hint, scopes, slot, created_at, expires_at, active, \
         quota_limit, quota_window_ns, metadata"
    };
}

const FIND_BY_DIGEST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM tollgate_api_keys WHERE digest = $1"
);
const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM tollgate_api_keys WHERE app_id = $1 ORDER BY created_at DESC, id ASC"
);
const INSERT: &str = concat!(
    "INSERT INTO tollgate_api_keys (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);
/// Serialises rotations of one (app, slot), including its very first key, when there is no
/// row yet for `SELECT … FOR UPDATE` to lock. Held until commit or rollback.
const LOCK_SLOT: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('tollgate_api_keys/' || $1 || '/' || $2, 0))";
const RETIRE: &str = concat!(
    "UPDATE tollgate_api_keys SET expires_at = $3 ",
    "WHERE app_id = $1 AND slot = $2 AND active AND (expires_at IS NULL OR expires_at > $3) ",
    "RETURNING ",
    columns!()
);
const REVOKE: &str = concat!(
    "UPDATE tollgate_api_keys SET active = false WHERE id = $1 RETURNING ",
    columns!()
);

/// A [`KeyStore`] on PostgreSQL; see the [module docs](super).
///
/// Clones share the pool. Run [`migrate`](super::migrate) once before use.
#[derive(Clone)]
pub struct PostgresKeyStore {
    pool: Pool,
}

impl fmt::Debug for PostgresKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pool's configuration holds the connection string (and so a password): not shown.
        f.debug_struct("PostgresKeyStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// A connection pool for `url` (`postgres://user:password@host:port/database`, or the
/// `key=value` form) with every wait bounded, for [`PostgresKeyStore::new`] and
/// [`migrate`](super::migrate).
///
/// At most 16 connections; connecting, waiting for a free connection and recycling one each
/// time out after 2 seconds; every statement is cancelled by the server after 5 seconds
/// (`statement_timeout`, unless the URL's `options` already set one). Connections are made
/// lazily, on first use, without TLS; for TLS build the pool yourself.
///
/// # Errors
///
/// [`StoreErrorKind::Unavailable`](crate::api_key::StoreErrorKind::Unavailable) if `url`
/// does not parse.
pub fn pool(url: &str) -> Result<Pool, StoreError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(StoreError::unavailable)?;
    config.connect_timeout(Duration::from_secs(2));
    if config.get_application_name().is_none() {
        config.application_name("tollgate");
    }
    let options = match config.get_options() {
        Some(options) if options.contains("statement_timeout") => options.to_owned(),
        Some(options) => format!("{options} -c statement_timeout=5000"),
        None => "-c statement_timeout=5000".to_owned(),
    };
    config.options(options);
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(16)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(2)))
        .create_timeout(Some(Duration::from_secs(2)))
        .recycle_timeout(Some(Duration::from_secs(2)))
        .build()
        .map_err(StoreError::unavailable)
}

impl PostgresKeyStore {
    /// A store on `pool`, for example from [`pool`].
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// A store on a new [`pool`] for `url`.
    ///
    /// # Errors
    ///
    /// As [`pool`].
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        pool(url).map(Self::new)
    }

    /// The pool, to share with other stores or run [`migrate`](super::migrate).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

impl KeyStore for PostgresKeyStore {
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(FIND_BY_DIGEST)
            .await
            .map_err(pg_error)?;
        let digest: &[u8] = digest.as_bytes();
        let row = client
            .query_opt(&statement, &[&digest])
            .await
            .map_err(pg_error)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn insert(&self, record: ApiKeyRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        insert(&client, &record).await
    }

    async fn list(&self, app_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(LIST).await.map_err(pg_error)?;
        client
            .query(&statement, &[&app_id])
            .await
            .map_err(pg_error)?
            .iter()
            .map(record_from_row)
            .collect()
    }

    async fn rotate(
        &self,
        new: ApiKeyRecord,
        retire_at: SystemTime,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let slot = new.slot().as_str();
        let lock = tx.prepare_cached(LOCK_SLOT).await.map_err(pg_error)?;
        tx.execute(&lock, &[&new.app_id(), &slot])
            .await
            .map_err(pg_error)?;
        let retire = tx.prepare_cached(RETIRE).await.map_err(pg_error)?;
        let retired = tx
            .query(&retire, &[&new.app_id(), &slot, &retire_at])
            .await
            .map_err(pg_error)?
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // A conflict here rolls the retirements back with the transaction (dropped unused).
        insert(&tx, &new).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(retired)
    }

    async fn revoke(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(REVOKE).await.map_err(pg_error)?;
        let row = client
            .query_opt(&statement, &[&key_id])
            .await
            .map_err(pg_error)?;
        row.as_ref().map(record_from_row).transpose()
    }
}

async fn insert(
    client: &impl deadpool_postgres::GenericClient,
    record: &ApiKeyRecord,
) -> Result<(), StoreError> {
    let digest: &[u8] = record.digest().as_bytes();
    let (quota_limit, quota_window_ns) = match record.quota() {
        Some(quota) => (
            Some(i64::try_from(quota.limit()).unwrap_or(i64::MAX)),
            Some(i64::try_from(quota.window().as_nanos()).unwrap_or(i64::MAX)),
        ),
        None => (None, None),
    };
    let metadata = serde_json::Value::Object(
        record
            .metadata()
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    );
    let statement = client.prepare_cached(INSERT).await.map_err(pg_error)?;
    client
        .execute(
            &statement,
            &[
                &record.id(),
                &record.app_id(),
                &record.app_name(),
                &digest,
                &record.hint(),
                &record.scopes(),
                &record.slot().as_str(),
                &record.created_at(),
                &record.expires_at(),
                &record.is_active(),
                &quota_limit,
                &quota_window_ns,
                &metadata,
            ],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

fn record_from_row(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    let corrupt = |what: &str| StoreError::unavailable(format!("tollgate_api_keys: bad {what}"));
    let digest: &[u8] = row.try_get("digest").map_err(StoreError::unavailable)?;
    let digest = KeyDigest::from_bytes(digest.try_into().map_err(|_| corrupt("digest"))?);
    let slot: &str = row.try_get("slot").map_err(StoreError::unavailable)?;
    let slot: KeySlot = slot.parse().map_err(|_| corrupt("slot"))?;
    let limit: Option<i64> = row
        .try_get("quota_limit")
        .map_err(StoreError::unavailable)?;
    let window: Option<i64> = row
        .try_get("quota_window_ns")
        .map_err(StoreError::unavailable)?;
    let quota = match (limit, window) {
        (Some(limit), Some(window)) => Some(
            Quota::new(
                u64::try_from(limit).map_err(|_| corrupt("quota"))?,
                Duration::from_nanos(u64::try_from(window).map_err(|_| corrupt("quota"))?),
            )
            .ok_or_else(|| corrupt("quota"))?,
        ),
        _ => None,
    };
    let metadata: serde_json::Value = row.try_get("metadata").map_err(StoreError::unavailable)?;
    let metadata: BTreeMap<String, String> = match metadata {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        _ => return Err(corrupt("metadata")),
    };
    let get = |e| StoreError::unavailable(e);
    Ok(ApiKeyRecord::new(
        row.try_get::<_, String>("id").map_err(get)?,
        row.try_get::<_, String>("app_id").map_err(get)?,
        digest,
        row.try_get::<_, String>("hint").map_err(get)?,
        row.try_get::<_, SystemTime>("created_at").map_err(get)?,
    )
    .with_app_name(row.try_get::<_, String>("app_name").map_err(get)?)
    .with_scopes(row.try_get::<_, Vec<String>>("scopes").map_err(get)?)
    .with_slot(slot)
    .with_expires_at(row.try_get("expires_at").map_err(get)?)
    .with_active(row.try_get("active").map_err(get)?)
    .with_quota(quota)
    .with_metadata(metadata))
}

/// A driver error as a [`StoreError`]: unique violations are conflicts, cancelled statements
/// (`statement_timeout`) timeouts, everything else (refused connections, closed sockets,
/// server errors) unavailability.
pub(super) fn pg_error(error: tokio_postgres::Error) -> StoreError {
    match error.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::conflict(error),
        Some(code) if *code == SqlState::QUERY_CANCELED => StoreError::timeout(),
        _ => StoreError::unavailable(error),
    }
}

/// A pool error as a [`StoreError`]: a pool wait that timed out is a timeout.
pub(super) fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Timeout(_) => StoreError::timeout(),
        PoolError::Backend(error) => pg_error(error),
        other => StoreError::unavailable(other),
    }
}
