//! The statements of `PostgresKeyStore`.

/// The columns of a record, as a literal for `concat!`: the key's (`k`), then its
/// application's (`a`, from a left join).
macro_rules! columns {
    () => {
        "k.id, k.app_id, k.app_name, k.digest, k.hint, k.scopes, k.slot, k.created_at, \
         k.expires_at, k.active, k.quota_limit, k.quota_window_ns, k.metadata, k.revoked_at, \
         k.last_used_at, k.uses_authenticated, k.uses_revoked, k.uses_expired, k.uses_inactive, \
         k.uses_app_disabled, k.uses_rate_limited, a.id AS a_id, a.name AS a_name, \
         a.quota_limit AS a_quota_limit, a.quota_window_ns AS a_quota_window_ns, \
         a.enabled AS a_enabled, a.created_at AS a_created_at"
    };
}

/// Selects records from `k` (the table, or a CTE of updated rows) joined to their application.
macro_rules! select_joined {
    ($from:literal, $rest:literal) => {
        concat!(
            "SELECT ",
            columns!(),
            " FROM ",
            $from,
            " k LEFT JOIN tollgate_apps a ON a.id = k.app_id ",
            $rest
        )
    };
}

pub(super) const FIND_BY_DIGEST: &str = select_joined!("tollgate_api_keys", "WHERE k.digest = $1");
pub(super) const LIST: &str = select_joined!(
    "tollgate_api_keys",
    "WHERE k.app_id = $1 ORDER BY k.created_at DESC, k.id ASC"
);
pub(super) const ALL: &str =
    select_joined!("tollgate_api_keys", "ORDER BY k.created_at DESC, k.id ASC");
pub(super) const INSERT: &str = "INSERT INTO tollgate_api_keys (id, app_id, app_name, digest, hint, scopes, \
     slot, created_at, expires_at, active, quota_limit, quota_window_ns, metadata) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
/// Serialises rotations of one (app, slot), including its very first key, when there is no
/// row yet for `SELECT … FOR UPDATE` to lock. Held until commit or rollback.
pub(super) const LOCK_SLOT: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('tollgate_api_keys/' || $1 || '/' || $2, 0))";
pub(super) const RETIRE: &str = concat!(
    "WITH changed AS (UPDATE tollgate_api_keys SET expires_at = $3 ",
    "WHERE app_id = $1 AND slot = $2 AND active AND (expires_at IS NULL OR expires_at > $3) ",
    "RETURNING *) ",
    select_joined!("changed", "")
);
pub(super) const REVOKE: &str = concat!(
    "WITH changed AS (UPDATE tollgate_api_keys SET active = false, ",
    "revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING *) ",
    select_joined!("changed", "")
);
/// A revoked key stays inactive.
pub(super) const ACTIVATE: &str = concat!(
    "WITH changed AS (UPDATE tollgate_api_keys SET active = (revoked_at IS NULL) ",
    "WHERE id = $1 RETURNING *) ",
    select_joined!("changed", "")
);
/// One statement for a whole batch: counts added, the later last use kept.
pub(super) const RECORD_USAGE: &str = "UPDATE tollgate_api_keys k SET \
     uses_authenticated = k.uses_authenticated + d.authenticated, \
     uses_revoked = k.uses_revoked + d.revoked, \
     uses_expired = k.uses_expired + d.expired, \
     uses_inactive = k.uses_inactive + d.inactive, \
     uses_app_disabled = k.uses_app_disabled + d.app_disabled, \
     uses_rate_limited = k.uses_rate_limited + d.rate_limited, \
     last_used_at = GREATEST(k.last_used_at, d.last_used_at) \
     FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], \
     $7::int8[], $8::timestamptz[]) \
     AS d(id, authenticated, revoked, expired, inactive, app_disabled, rate_limited, last_used_at) \
     WHERE k.id = d.id";
pub(super) const PUT_APP: &str = "INSERT INTO tollgate_apps (id, name, quota_limit, quota_window_ns, \
     enabled, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
     name = EXCLUDED.name, quota_limit = EXCLUDED.quota_limit, \
     quota_window_ns = EXCLUDED.quota_window_ns, enabled = EXCLUDED.enabled";
/// The application columns, under the names `app_from_row` reads.
macro_rules! app_columns {
    () => {
        "SELECT id AS a_id, name AS a_name, quota_limit AS a_quota_limit, \
         quota_window_ns AS a_quota_window_ns, enabled AS a_enabled, created_at AS a_created_at \
         FROM tollgate_apps "
    };
}
pub(super) const FIND_APP: &str = concat!(app_columns!(), "WHERE id = $1");
pub(super) const LIST_APPS: &str = concat!(app_columns!(), "ORDER BY id");
