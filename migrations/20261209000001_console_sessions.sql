-- The web console's sign-ins (src/console/session.rs, src/console/oidc.rs).

-- A signed-in person. The cookie holds a random secret; only its SHA-256 is stored, so a copy of
-- this table signs nobody in. `identity` is who the identity provider said the person is, read
-- through the API's claim mapping (subject, role, program codes, names, e-mail): the programs a
-- coordinator may see are still read from the programs' streams on every page. Rows end at
-- `expires_at` (absolute) or after `idle_until` passes without a request; sign-out and the
-- erasure of a student delete them.
CREATE TABLE console_sessions (
    token_hash   bytea PRIMARY KEY,
    subject      text        NOT NULL,
    identity     jsonb       NOT NULL,
    -- The token every form of this session carries (the synchroniser-token pattern).
    csrf_token   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    idle_until   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_subject ON console_sessions (subject);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- A sign-in in progress with the identity provider: what the callback needs to finish it (the
-- OpenID Connect `state` it must see again, the ID token's `nonce`, the PKCE verifier) and where
-- to go afterwards. Taken (deleted) by the callback, so a `state` is used at most once; rows of
-- abandoned sign-ins are deleted after an hour. `browser_hash` is the SHA-256 of the starting
-- browser's pre-session cookie: only that browser can finish the sign-in, so a callback link
-- handed to someone else cannot sign them in as another person (login CSRF).
CREATE TABLE console_signins (
    state         text PRIMARY KEY,
    browser_hash  bytea       NOT NULL,
    nonce         text        NOT NULL,
    pkce_verifier text        NOT NULL,
    return_to     text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
