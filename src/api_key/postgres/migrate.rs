use super::store::{pg_error, pool_error};
use crate::api_key::StoreError;

/// One versioned schema change shipped with tollgate (a file under `migrations/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

impl Migration {
    /// Its version: migrations apply in increasing order, each once.
    pub fn version(&self) -> i32 {
        self.version
    }

    /// Its name (the file name without the version and extension).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its SQL, for review or for applying with another migration tool.
    pub fn sql(&self) -> &'static str {
        self.sql
    }
}

/// Every migration tollgate ships, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "api_keys",
        sql: include_str!("../../../migrations/0001_api_keys.sql"),
    },
    // Shipped with every feature set, so a database's schema does not depend on which
    // features the instance that migrated it had.
    Migration {
        version: 2,
        name: "refresh_tokens",
        sql: include_str!("../../../migrations/0002_refresh_tokens.sql"),
    },
    Migration {
        version: 3,
        name: "refresh_token_claims",
        sql: include_str!("../../../migrations/0003_refresh_token_claims.sql"),
    },
    Migration {
        version: 4,
        name: "apps_usage",
        sql: include_str!("../../../migrations/0004_apps_usage.sql"),
    },
];

/// The key of the advisory lock that serialises concurrent [`migrate`] runs ("tollgate" in
/// ASCII).
const MIGRATION_LOCK: i64 = 0x746f_6c6c_6761_7465;

/// Applies the [`MIGRATIONS`] the database lacks, and returns the versions it applied (empty
/// when the schema is up to date).
///
/// Applied versions are recorded in the table `tollgate_schema_migrations`. Everything runs
/// in one transaction holding an advisory lock, so instances starting together apply each
/// migration once (the others wait, then find nothing to do), and a failed migration leaves
/// the schema as it was. Its statements may each take up to five minutes (`SET LOCAL
/// statement_timeout`), whatever the pool's setting.
///
/// # Errors
///
/// The database's error, as a [`StoreError`]; nothing is applied then.
pub async fn migrate(pool: &deadpool_postgres::Pool) -> Result<Vec<i32>, StoreError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(pg_error)?;
    // A schema change (or waiting for another instance's) may take longer than the pool's
    // statement timeout meant for lookups; it is still bounded.
    tx.batch_execute("SET LOCAL statement_timeout = '5min'")
        .await
        .map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tollgate_schema_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg_error)?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM tollgate_schema_migrations", &[])
        .await
        .map_err(pg_error)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        tx.batch_execute(migration.sql).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO tollgate_schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(pg_error)?;
        applied.push(migration.version);
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(applied)
}
