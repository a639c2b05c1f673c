use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use super::sql::{
    ACTIVATE, ALL, FIND_APP, FIND_BY_DIGEST, INSERT, LIST, LIST_APPS, LOCK_SLOT, PUT_APP,
    RECORD_USAGE, RETIRE, REVOKE,
};
use crate::Quota;
use crate::api_key::{ApiKeyRecord, Application, KeyDigest, KeyStore, StoreError};
use crate::identity::KeySlot;
use crate::usage::{KeyUsage, UsageCounts, UsageDelta};

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

    async fn revoke(
        &self,
        key_id: &str,
        at: SystemTime,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.one(REVOKE, &[&key_id, &at]).await
    }

    async fn activate(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.one(ACTIVATE, &[&key_id]).await
    }

    async fn all(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(ALL).await.map_err(pg_error)?;
        client
            .query(&statement, &[])
            .await
            .map_err(pg_error)?
            .iter()
            .map(record_from_row)
            .collect()
    }

    async fn record_usage(&self, batch: &[UsageDelta]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let count = |f: fn(&UsageCounts) -> u64| -> Vec<i64> {
            batch
                .iter()
                .map(|d| i64::try_from(f(&d.counts)).unwrap_or(i64::MAX))
                .collect()
        };
        let ids: Vec<&str> = batch.iter().map(|d| d.key_id.as_str()).collect();
        let last: Vec<Option<SystemTime>> = batch.iter().map(|d| d.last_used_at).collect();
        let client = self.client().await?;
        let statement = client
            .prepare_cached(RECORD_USAGE)
            .await
            .map_err(pg_error)?;
        client
            .execute(
                &statement,
                &[
                    &ids,
                    &count(|c| c.authenticated),
                    &count(|c| c.revoked),
                    &count(|c| c.expired),
                    &count(|c| c.inactive),
                    &count(|c| c.app_disabled),
                    &count(|c| c.rate_limited),
                    &last,
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn put_app(&self, app: Application) -> Result<(), StoreError> {
        let (limit, window) = quota_columns(app.quota());
        let client = self.client().await?;
        let statement = client.prepare_cached(PUT_APP).await.map_err(pg_error)?;
        client
            .execute(
                &statement,
                &[
                    &app.id(),
                    &app.name(),
                    &limit,
                    &window,
                    &app.is_enabled(),
                    &app.created_at(),
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn find_app(&self, app_id: &str) -> Result<Option<Application>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(FIND_APP).await.map_err(pg_error)?;
        let row = client
            .query_opt(&statement, &[&app_id])
            .await
            .map_err(pg_error)?;
        match row {
            Some(row) => app_from_row(&row),
            None => Ok(None),
        }
    }

    async fn list_apps(&self) -> Result<Vec<Application>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(LIST_APPS).await.map_err(pg_error)?;
        let mut out = Vec::new();
        for row in client.query(&statement, &[]).await.map_err(pg_error)? {
            out.extend(app_from_row(&row)?);
        }
        Ok(out)
    }
}

impl PostgresKeyStore {
    /// Runs `sql` returning at most one record.
    async fn one(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
        let row = client
            .query_opt(&statement, params)
            .await
            .map_err(pg_error)?;
        row.as_ref().map(record_from_row).transpose()
    }
}

/// A quota as its two columns.
fn quota_columns(quota: Option<Quota>) -> (Option<i64>, Option<i64>) {
    match quota {
        Some(quota) => (
            Some(i64::try_from(quota.limit()).unwrap_or(i64::MAX)),
            Some(i64::try_from(quota.window().as_nanos()).unwrap_or(i64::MAX)),
        ),
        None => (None, None),
    }
}

/// A quota from its two columns (`prefix` names them).
fn quota_from(row: &Row, limit: &str, window: &str) -> Result<Option<Quota>, StoreError> {
    let corrupt = || StoreError::unavailable("tollgate: bad quota columns");
    let limit: Option<i64> = row.try_get(limit).map_err(StoreError::unavailable)?;
    let window: Option<i64> = row.try_get(window).map_err(StoreError::unavailable)?;
    match (limit, window) {
        (Some(limit), Some(window)) => Ok(Some(
            Quota::new(
                u64::try_from(limit).map_err(|_| corrupt())?,
                Duration::from_nanos(u64::try_from(window).map_err(|_| corrupt())?),
            )
            .ok_or_else(corrupt)?,
        )),
        _ => Ok(None),
    }
}

/// The application columns (`a_…`) of a row, `None` when the join found no record.
fn app_from_row(row: &Row) -> Result<Option<Application>, StoreError> {
    let get = |e| StoreError::unavailable(e);
    let Some(id) = row.try_get::<_, Option<String>>("a_id").map_err(get)? else {
        return Ok(None);
    };
    Ok(Some(
        Application::new(
            id,
            row.try_get::<_, String>("a_name").map_err(get)?,
            row.try_get::<_, SystemTime>("a_created_at").map_err(get)?,
        )
        .with_quota(quota_from(row, "a_quota_limit", "a_quota_window_ns")?)
        .with_enabled(row.try_get("a_enabled").map_err(get)?),
    ))
}

async fn insert(
    client: &impl deadpool_postgres::GenericClient,
    record: &ApiKeyRecord,
) -> Result<(), StoreError> {
    let digest: &[u8] = record.digest().as_bytes();
    let (quota_limit, quota_window_ns) = quota_columns(record.quota());
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
    let quota = quota_from(row, "quota_limit", "quota_window_ns")?;
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
    let uses = |column: &str| -> Result<u64, StoreError> {
        let n: i64 = row.try_get(column).map_err(StoreError::unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    let usage = KeyUsage {
        counts: UsageCounts {
            authenticated: uses("uses_authenticated")?,
            revoked: uses("uses_revoked")?,
            expired: uses("uses_expired")?,
            inactive: uses("uses_inactive")?,
            app_disabled: uses("uses_app_disabled")?,
            rate_limited: uses("uses_rate_limited")?,
        },
        last_used_at: row.try_get("last_used_at").map_err(get)?,
    };
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
    .with_metadata(metadata)
    .with_revoked_at(row.try_get("revoked_at").map_err(get)?)
    .with_usage(usage)
    .with_application(app_from_row(row)?))
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
