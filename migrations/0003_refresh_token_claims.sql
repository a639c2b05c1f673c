-- tollgate 0003: the custom claims a refresh-token session's access tokens carry
-- (see tollgate::issuer::TokenService::issue_grant). Existing sessions carry none.
ALTER TABLE tollgate_refresh_tokens
    ADD COLUMN claims jsonb NOT NULL DEFAULT '{}'::jsonb
        CHECK (jsonb_typeof(claims) = 'object');
