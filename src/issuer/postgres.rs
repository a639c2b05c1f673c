//! `PostgresRefreshStore`: a `RefreshTokenStore` on PostgreSQL (features `issuer` +
//! `postgres`), where the database itself enforces "one use, one successor".

use std::fmt;
use std::time::{Duration, SystemTime};

use deadpool_postgres::{GenericClient, Pool};
use tokio_postgres::Row;

use super::refresh::{
    FamilyId, RefreshRecord, RefreshState, RefreshTokenStore, RotateOutcome, StoreError,
    TokenDigest,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const COLUMNS: &str = "digest, family, subject, scopes, created_at, expires_at, state, \
                       rotated_at, successor, grace_used, seed, access_jti, access_expires_at, \
                       claims";

/// Serialises every rotation and revocation of one family (held until commit), taken before
/// any row lock so that rotations and revocations of a family always lock in the same order.
/// It also closes the gap a row lock cannot: a revocation racing a rotation would otherwise
/// miss the successor the rotation inserts.
const LOCK_FAMILY: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('tollgate_refresh_tokens/' || $1, 0))";

/// A [`RefreshTokenStore`] on PostgreSQL, in the table `tollgate_refresh_tokens` (migrations
/// 0002 and 0003, applied by [`migrate`](crate::api_key::postgres::migrate)).
///
/// [`rotate`](RefreshTokenStore::rotate) is one transaction: it takes a per-family advisory
/// lock, then the presented token's row `FOR UPDATE`, and applies the transition the trait
/// describes. Two instances refreshing with the same token at once are serialised on that
/// lock: the second sees the token already rotated, so exactly one successor exists.
///
/// Clones share the pool. Build the pool with
/// [`api_key::postgres::pool`](crate::api_key::postgres::pool) (bounded waits and a
/// statement timeout).
#[derive(Clone)]
pub struct PostgresRefreshStore {
    pool: Pool,
}

impl PostgresRefreshStore {
    /// A store on `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Deletes records that expired before `now` (rotated and revoked ones included: once
    /// expired, a reuse is refused as expired anyway). Returns how many went.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::new)?;
        client
            .execute(
                "DELETE FROM tollgate_refresh_tokens WHERE expires_at <= $1",
                &[&now],
            )
            .await
            .map_err(StoreError::new)
    }

    async fn rotate_tx(
        &self,
        presented: &TokenDigest,
        mut successor: RefreshRecord,
        now: SystemTime,
        grace: Duration,
    ) -> Result<RotateOutcome, BoxError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let digest = presented.as_bytes().as_slice();
        // A token's family never changes, so it can be read before locking the family.
        let Some(family) = tx
            .query_opt(
                "SELECT family FROM tollgate_refresh_tokens WHERE digest = $1",
                &[&digest],
            )
            .await?
        else {
            return Ok(RotateOutcome::Unknown);
        };
        let family: String = family.get(0);
        tx.execute(LOCK_FAMILY, &[&family]).await?;
        let select =
            format!("SELECT {COLUMNS} FROM tollgate_refresh_tokens WHERE digest = $1 FOR UPDATE");
        let Some(row) = tx.query_opt(&select, &[&digest]).await? else {
            return Ok(RotateOutcome::Unknown);
        };
        let old = record(&row);
        if old.state == RefreshState::Revoked {
            return Ok(RotateOutcome::Revoked);
        }
        if old.expires_at <= now {
            return Ok(RotateOutcome::Expired);
        }
        let outcome = match old.state {
            RefreshState::Active => {
                successor.family = old.family.clone();
                successor.state = RefreshState::Active;
                tx.execute(
                    "UPDATE tollgate_refresh_tokens SET state = 'rotated', rotated_at = $2, \
                     successor = $3, grace_used = false WHERE digest = $1",
                    &[&digest, &now, &successor.digest.as_bytes().as_slice()],
                )
                .await?;
                insert(&tx, &successor).await?;
                RotateOutcome::Rotated(successor)
            }
            RefreshState::Rotated {
                at,
                successor: next,
                grace_used,
            } => {
                let next = tx
                    .query_opt(&select, &[&next.as_bytes().as_slice()])
                    .await?
                    .map(|row| record(&row))
                    .filter(|n| n.is_usable(now));
                match next {
                    Some(next) if !grace_used && super::refresh::before(now, at, grace) => {
                        tx.execute(
                            "UPDATE tollgate_refresh_tokens SET grace_used = true WHERE digest = $1",
                            &[&digest],
                        )
                        .await?;
                        RotateOutcome::ReusedWithinGrace(next)
                    }
                    _ => RotateOutcome::Reused(revoke(&tx, &family).await?),
                }
            }
            RefreshState::Revoked => RotateOutcome::Revoked,
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

impl RefreshTokenStore for PostgresRefreshStore {
    async fn find(&self, digest: &TokenDigest) -> Result<Option<RefreshRecord>, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::new)?;
        let select = format!("SELECT {COLUMNS} FROM tollgate_refresh_tokens WHERE digest = $1");
        let row = client
            .query_opt(&select, &[&digest.as_bytes().as_slice()])
            .await
            .map_err(StoreError::new)?;
        Ok(row.map(|row| record(&row)))
    }

    async fn insert(&self, record: RefreshRecord) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(StoreError::new)?;
        insert(&client, &record).await.map_err(StoreError::new)
    }

    async fn rotate(
        &self,
        presented: &TokenDigest,
        successor: RefreshRecord,
        now: SystemTime,
        grace: Duration,
    ) -> Result<RotateOutcome, StoreError> {
        self.rotate_tx(presented, successor, now, grace)
            .await
            .map_err(StoreError::new)
    }

    async fn revoke_family(&self, family: &FamilyId) -> Result<Vec<RefreshRecord>, StoreError> {
        let mut client = self.pool.get().await.map_err(StoreError::new)?;
        let tx = client.transaction().await.map_err(StoreError::new)?;
        tx.execute(LOCK_FAMILY, &[&family.as_str()])
            .await
            .map_err(StoreError::new)?;
        let records = revoke(&tx, family.as_str())
            .await
            .map_err(StoreError::new)?;
        tx.commit().await.map_err(StoreError::new)?;
        Ok(records)
    }

    async fn family(&self, family: &FamilyId) -> Result<Vec<RefreshRecord>, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::new)?;
        let select = format!(
            "SELECT {COLUMNS} FROM tollgate_refresh_tokens WHERE family = $1 ORDER BY created_at"
        );
        let rows = client
            .query(&select, &[&family.as_str()])
            .await
            .map_err(StoreError::new)?;
        Ok(rows.iter().map(record).collect())
    }
}

impl fmt::Debug for PostgresRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pool's configuration holds the connection string (and so a password): not shown.
        f.debug_struct("PostgresRefreshStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

async fn insert(
    client: &impl GenericClient,
    r: &RefreshRecord,
) -> Result<(), tokio_postgres::Error> {
    let insert = format!(
        "INSERT INTO tollgate_refresh_tokens ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, 'active', NULL, NULL, false, $7, $8, $9, $10)"
    );
    client
        .execute(
            &insert,
            &[
                &r.digest.as_bytes().as_slice(),
                &r.family.as_str(),
                &r.subject,
                &r.scopes,
                &r.created_at,
                &r.expires_at,
                &r.seed.as_slice(),
                &r.access_jti,
                &r.access_expires_at,
                &serde_json::Value::Object(r.claims.clone()),
            ],
        )
        .await
        .map(drop)
}

async fn revoke(
    client: &impl GenericClient,
    family: &str,
) -> Result<Vec<RefreshRecord>, tokio_postgres::Error> {
    let update = format!(
        "UPDATE tollgate_refresh_tokens SET state = 'revoked' WHERE family = $1 RETURNING {COLUMNS}"
    );
    let mut records: Vec<_> = client
        .query(&update, &[&family])
        .await?
        .iter()
        .map(record)
        .collect();
    records.sort_by_key(|r| r.created_at);
    Ok(records)
}

/// A row as a record. The schema's CHECK constraints guarantee the shapes read here; a row
/// that still breaks them (edited by hand) reads as revoked rather than panicking.
fn record(row: &Row) -> RefreshRecord {
    let bytes32 = |index: usize| -> Option<[u8; 32]> {
        row.get::<_, Option<Vec<u8>>>(index)?.try_into().ok()
    };
    let state = match row.get::<_, &str>(6) {
        "active" => RefreshState::Active,
        "rotated" => match (row.get::<_, Option<SystemTime>>(7), bytes32(8)) {
            (Some(at), Some(successor)) => RefreshState::Rotated {
                at,
                successor: TokenDigest::from_bytes(successor),
                grace_used: row.get(9),
            },
            _ => RefreshState::Revoked,
        },
        _ => RefreshState::Revoked,
    };
    RefreshRecord {
        digest: TokenDigest::from_bytes(bytes32(0).unwrap_or_default()),
        family: FamilyId::new(row.get::<_, String>(1)),
        subject: row.get(2),
        scopes: row.get(3),
        created_at: row.get(4),
        expires_at: row.get(5),
        state,
        seed: bytes32(10).unwrap_or_default(),
        access_jti: row.get(11),
        access_expires_at: row.get(12),
        claims: match row.get(13) {
            serde_json::Value::Object(claims) => claims,
            _ => serde_json::Map::new(),
        },
    }
}
