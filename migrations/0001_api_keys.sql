-- tollgate 0001: API-key records (see tollgate::api_key::postgres).
-- Only the SHA-256 digest of a key is stored, never the key.
CREATE TABLE tollgate_api_keys (
    id              text        PRIMARY KEY,
    app_id          text        NOT NULL,
    app_name        text        NOT NULL DEFAULT '',
    digest          bytea       NOT NULL CHECK (octet_length(digest) = 32),
    hint            text        NOT NULL DEFAULT '',
    scopes          text[]      NOT NULL DEFAULT '{}',
    slot            text        NOT NULL DEFAULT 'primary' CHECK (slot IN ('primary', 'secondary')),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz,
    active          boolean     NOT NULL DEFAULT true,
    quota_limit     bigint      CHECK (quota_limit > 0),
    quota_window_ns bigint      CHECK (quota_window_ns > 0),
    metadata        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    CHECK ((quota_limit IS NULL) = (quota_window_ns IS NULL))
);

-- Every request's cache miss looks a key up by digest: unique, so a digest names one key.
CREATE UNIQUE INDEX tollgate_api_keys_digest_key ON tollgate_api_keys (digest);

-- Listing an application's keys and rotating one of its slots.
CREATE INDEX tollgate_api_keys_app_slot_idx ON tollgate_api_keys (app_id, slot, created_at DESC);
