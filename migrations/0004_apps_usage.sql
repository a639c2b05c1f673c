-- tollgate 0004: applications as records of their own, revocation apart from inactivity,
-- and per-key usage (flushed in batches; see tollgate::usage).
CREATE TABLE tollgate_apps (
    id              text        PRIMARY KEY,
    name            text        NOT NULL DEFAULT '',
    quota_limit     bigint      CHECK (quota_limit > 0),
    quota_window_ns bigint      CHECK (quota_window_ns > 0),
    enabled         boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL,
    CHECK ((quota_limit IS NULL) = (quota_window_ns IS NULL))
);

ALTER TABLE tollgate_api_keys
    ADD COLUMN revoked_at         timestamptz,
    ADD COLUMN last_used_at       timestamptz,
    ADD COLUMN uses_authenticated bigint NOT NULL DEFAULT 0,
    ADD COLUMN uses_revoked       bigint NOT NULL DEFAULT 0,
    ADD COLUMN uses_expired       bigint NOT NULL DEFAULT 0,
    ADD COLUMN uses_inactive      bigint NOT NULL DEFAULT 0,
    ADD COLUMN uses_app_disabled  bigint NOT NULL DEFAULT 0,
    ADD COLUMN uses_rate_limited  bigint NOT NULL DEFAULT 0;

-- Before 0004 the only way to deactivate a key was to revoke it.
UPDATE tollgate_api_keys SET revoked_at = created_at WHERE NOT active;
