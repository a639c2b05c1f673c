-- tollgate 0002: refresh-token records (see tollgate::issuer::PostgresRefreshStore).
-- Only the SHA-256 digest of a refresh token is stored, never the token.
CREATE TABLE tollgate_refresh_tokens (
    digest            bytea       PRIMARY KEY CHECK (octet_length(digest) = 32),
    family            text        NOT NULL,
    subject           text        NOT NULL,
    scopes            text[]      NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    state             text        NOT NULL CHECK (state IN ('active', 'rotated', 'revoked')),
    rotated_at        timestamptz,
    successor         bytea,
    grace_used        boolean     NOT NULL DEFAULT false,
    seed              bytea       NOT NULL CHECK (octet_length(seed) = 32),
    access_jti        text        NOT NULL,
    access_expires_at timestamptz NOT NULL,
    CHECK ((state = 'rotated') = (rotated_at IS NOT NULL AND successor IS NOT NULL)
           OR state = 'revoked')
);

-- Revoking or listing a family (logout, reuse detection).
CREATE INDEX tollgate_refresh_tokens_family_idx ON tollgate_refresh_tokens (family, created_at);

-- Sweeping expired records.
CREATE INDEX tollgate_refresh_tokens_expires_idx ON tollgate_refresh_tokens (expires_at);
