-- oauthd schema, version 4. Embedded in the binary and applied to an empty file at open.
-- Later versions add numbered migrations in src/store/migrate.rs; this file always shows
-- the newest whole schema. Times are Unix seconds (INTEGER). Secrets and tokens are stored
-- only as SHA-256 digests (BLOB, 32 bytes); passwords as PBKDF2 PHC strings.

-- Marks the file as an oauthd database, so a foreign SQLite file is never mistaken for ours.
CREATE TABLE oauthd_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
INSERT INTO oauthd_meta (key, value) VALUES ('application', 'oauthd');

CREATE TABLE users (
    id            TEXT PRIMARY KEY,                    -- UUID, the `sub` and `/api/me` id
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE, -- as given; identity is email_key
    name          TEXT,
    password_hash TEXT NOT NULL,                       -- $pbkdf2-sha256$i=…$salt$hash
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- The folded email (NFD, Unicode full case folding, NFC; src/email.rs): what lookups
    -- match. Last, because version 3 added it to existing tables.
    email_key     TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX users_by_email_key ON users (email_key);
-- email_key is unique for every account added or changed since version 3. Triggers
-- rather than a UNIQUE index, because accounts whose keys collided when version 3 folded
-- them are kept (not merged) until an admin resolves them; `oauthd check` lists them.
CREATE TRIGGER users_email_key_unique_on_insert BEFORE INSERT ON users
WHEN EXISTS (SELECT 1 FROM users WHERE email_key = NEW.email_key)
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: users.email_key'); END;
CREATE TRIGGER users_email_key_unique_on_update BEFORE UPDATE OF email_key ON users
WHEN EXISTS (SELECT 1 FROM users WHERE email_key = NEW.email_key AND id <> NEW.id)
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: users.email_key'); END;

CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,                       -- UUID
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
) STRICT;
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE brands (
    domain            TEXT PRIMARY KEY COLLATE NOCASE, -- Host header without port
    name              TEXT NOT NULL,
    color             TEXT,                            -- #rrggbb
    logo              BLOB,                            -- ≤ 512 KiB, checked by content
    logo_content_type TEXT,
    created_at        INTEGER NOT NULL,
    CHECK ((logo IS NULL) = (logo_content_type IS NULL))
) STRICT;

CREATE TABLE clients (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    secret_hash  BLOB,                                 -- NULL for public clients
    is_public    INTEGER NOT NULL CHECK (is_public IN (0, 1)),
    require_pkce INTEGER NOT NULL DEFAULT 0 CHECK (require_pkce IN (0, 1)),
    brand_domain TEXT REFERENCES brands (domain) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL,
    -- A resource server: may introspect every client's tokens, not only its own (v2).
    introspect_any INTEGER NOT NULL DEFAULT 0 CHECK (introspect_any IN (0, 1)),
    CHECK ((is_public = 1) = (secret_hash IS NULL))
) STRICT;
CREATE INDEX clients_by_brand ON clients (brand_domain);

CREATE TABLE client_redirect_uris (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    uri       TEXT NOT NULL,                           -- as registered
    position  INTEGER NOT NULL,                        -- registration order
    PRIMARY KEY (client_id, uri)
) STRICT;

-- One grant per authorization: the code and every token that descends from it.
-- Revoking a grant kills all of them at once (code replay, theft, logout).
CREATE TABLE grants (
    id                INTEGER PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id         TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope             TEXT,
    bound_secret_hash BLOB,                            -- seed rule: a public client's secret
    created_at        INTEGER NOT NULL,
    revoked_at        INTEGER
) STRICT;
CREATE INDEX grants_by_user ON grants (user_id);
CREATE INDEX grants_by_client ON grants (client_id);

CREATE TABLE authorization_codes (
    code_hash             BLOB PRIMARY KEY,
    grant_id              INTEGER NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    redirect_uri          TEXT NOT NULL,               -- as sent at authorization
    code_challenge        TEXT,
    code_challenge_method TEXT CHECK (code_challenge_method IN ('S256', 'plain')),
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    used_at               INTEGER                      -- kept after use to detect replay
) WITHOUT ROWID, STRICT;
CREATE INDEX authorization_codes_by_grant ON authorization_codes (grant_id);
CREATE INDEX authorization_codes_by_expiry ON authorization_codes (expires_at);

CREATE TABLE access_tokens (
    token_hash BLOB PRIMARY KEY,
    grant_id   INTEGER NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    scope      TEXT                                    -- narrowed at refresh; NULL: the grant's (v2)
) WITHOUT ROWID, STRICT;
-- (grant_id, expires_at): revocation by grant, and each issue deleting the grant's
-- expired tokens with a range seek.
CREATE INDEX access_tokens_by_grant ON access_tokens (grant_id, expires_at);

-- Rotation (public clients): presenting a live token sets rotated_at and creates its
-- successor; the rotated-out token is remembered to allow a grace retry or detect theft.
CREATE TABLE refresh_tokens (
    token_hash     BLOB PRIMARY KEY,
    grant_id       INTEGER NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER,                            -- NULL: never expires
    rotated_at     INTEGER,                            -- NULL: live
    successor_hash BLOB
) WITHOUT ROWID, STRICT;
CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (grant_id);

-- Never holds a secret: events, who, which client, from where.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    event       TEXT NOT NULL,                         -- e.g. login_ok, token_issue, user_add
    user_email  TEXT,
    client_id   TEXT,
    remote_addr TEXT,
    detail      TEXT
) STRICT;
-- No index on `at`: rows are appended in time order, so `--since` alone scans the table
-- (an admin command), and every token issue writes one index page fewer.
CREATE INDEX audit_log_by_user ON audit_log (user_email COLLATE NOCASE, at);
CREATE INDEX audit_log_by_client ON audit_log (client_id, at);

-- ---- v4: every kind of client (migrate.rs CLIENT_KINDS_STEP) ----
-- clients.grant_types: the grant types it may use, space-separated;
-- clients.allowed_scopes: space-separated, NULL = no restriction.
ALTER TABLE clients ADD COLUMN
    grant_types TEXT NOT NULL DEFAULT 'authorization_code refresh_token';
ALTER TABLE clients ADD COLUMN allowed_scopes TEXT;
-- Browser origins (scheme://host[:port]) allowed to call the token endpoints (CORS).
CREATE TABLE client_origins (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    origin    TEXT NOT NULL,
    PRIMARY KEY (client_id, origin)
) WITHOUT ROWID, STRICT;
CREATE INDEX client_origins_by_origin ON client_origins (origin);
-- Client-credentials tokens: a client acting as itself, with no user and no grant.
CREATE TABLE client_access_tokens (
    token_hash BLOB PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope      TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
CREATE INDEX client_access_tokens_by_client ON client_access_tokens (client_id);
CREATE INDEX client_access_tokens_by_expiry ON client_access_tokens (expires_at);
-- Device authorizations (RFC 8628) until redeemed, denied and polled, or expired. Polling
-- never writes here; last-poll times are kept in memory.
CREATE TABLE device_codes (
    device_code_hash BLOB PRIMARY KEY,
    user_code_hash   BLOB NOT NULL UNIQUE,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope            TEXT,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    interval_secs    INTEGER NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'approved', 'denied')),
    user_id          TEXT REFERENCES users (id) ON DELETE CASCADE,
    CHECK ((status = 'approved') = (user_id IS NOT NULL))
) WITHOUT ROWID, STRICT;
CREATE INDEX device_codes_by_expiry ON device_codes (expires_at);
-- ---- end v4 ----
-- ---- v5: browser sessions (SSO) and post-logout redirect URIs --------------------------
-- A session is the browser's cookie id, stored as its SHA-256. A sign-in always makes a
-- new one (fixation protection); `user disable`/`passwd` and logout delete them.
-- auth_time: when the user typed the password (the session's creation); last_seen is
-- updated coarsely (not on every request), for the idle timeout.
CREATE TABLE sessions (
    id_hash    BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time  INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
-- RP-initiated logout: where a client may send the browser back to (exact match).
CREATE TABLE client_post_logout_uris (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    uri       TEXT NOT NULL,
    PRIMARY KEY (client_id, uri)
) STRICT;
-- ---- end v5 -----------------------------------------------------------------------------
-- ---- v6: OpenID Connect core (migrate.rs OIDC_CORE_STEP) ----------------------------
-- Per client: the id_token algorithm (allowed_scopes came in v4) and whether it is first-party (no consent screen).
ALTER TABLE clients ADD COLUMN first_party INTEGER NOT NULL DEFAULT 1 CHECK (first_party IN (0, 1));
ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256'
    CHECK (id_token_alg IN ('RS256', 'ES256', 'EdDSA'));
-- The authorization request's nonce, bound to its code; the sign-in time of the grant.
ALTER TABLE authorization_codes ADD COLUMN nonce TEXT;
ALTER TABLE grants ADD COLUMN auth_time INTEGER;
-- id_token signing keys: published from created_at, signing from signs_from, kept while
-- an id_token they signed may be valid (src/oauth/signing_keys.rs). The private key is
-- PKCS#8 DER and never leaves the database except to sign.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,                    -- RFC 7638 thumbprint
    alg           TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256', 'EdDSA')),
    private_pkcs8 BLOB NOT NULL,
    public_jwk    TEXT NOT NULL,                       -- JSON, without kid/alg/use
    created_at    INTEGER NOT NULL,
    signs_from    INTEGER NOT NULL
) STRICT;
-- ---- end v6 ---------------------------------------------------------------------------
-- ---- v7: consents (migrate.rs CONSENT_STEP) --------------------------------------------
-- What a user allowed a third-party client (first_party = 0): the scope names granted.
-- Asked again for a scope beyond them; revoking the app on /account deletes the row.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) WITHOUT ROWID, STRICT;
CREATE INDEX consents_by_client ON consents (client_id);
-- ---- end v7 ---------------------------------------------------------------------------
-- ---- v8: the link doctor (migrate.rs CLIENT_LOG_STEP) ---------------------------------
-- The last token-endpoint attempts per client (`oauthd client log`), at most 200 per
-- client (pruned on insert). Never a secret, code or token: only reason codes, the
-- registered redirect URI and the presented one cut to 200 characters.
CREATE TABLE client_attempts (
    id         INTEGER PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    endpoint   TEXT NOT NULL,
    grant_type TEXT,
    outcome    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    registered TEXT,
    presented  TEXT
) STRICT;
CREATE INDEX client_attempts_by_client ON client_attempts (client_id, id);
-- ---- end v8 ---------------------------------------------------------------------------
-- ---- v9: device approval time (migrate.rs DEVICE_APPROVED_AT_STEP) -------------------
-- When the user approved on /device: the id_token's auth_time for the device's tokens.
ALTER TABLE device_codes ADD COLUMN approved_at INTEGER;
-- ---- end v9 ---------------------------------------------------------------------------
-- ---- v10: disabled users' tokens (migrate.rs DISABLED_TOKENS_STEP) ---------------------
-- Hashes only, of the refresh tokens and codes a user's unrevoked grants held when disabled, so
-- `oauthd client log` says `user_disabled` when a client presents one later. Rows go
-- once their token would have expired.
CREATE TABLE disabled_user_tokens (
    token_hash BLOB PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    expires_at INTEGER                                 -- NULL: the token never expired
) WITHOUT ROWID, STRICT;
-- ---- end v10 --------------------------------------------------------------------------
-- ---- v11: ACME (migrate.rs ACME_STEP) ------------------------------------------------
-- The ACME account per directory URL (instant-acme's credentials JSON, holding the account
-- key) and, per set of domains (space-separated, sorted), the certificate chain and its key
-- as PEM with its validity and the state of its renewal (the next attempt, consecutive
-- failures, the last error). A backup of the database restores a working HTTPS server.
CREATE TABLE acme_accounts (
    directory   TEXT PRIMARY KEY,
    credentials TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
CREATE TABLE acme_certificates (
    domains       TEXT PRIMARY KEY,
    chain_pem     TEXT,
    key_pem       TEXT,
    issuer        TEXT,
    not_before    INTEGER,
    not_after     INTEGER,
    issued_at     INTEGER,
    next_attempt  INTEGER,
    failures      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
) WITHOUT ROWID, STRICT;
-- ---- end v11 --------------------------------------------------------------------------
-- ---- v12: shared state of several instances (migrate.rs SHARED_STATE_STEP) -------------
-- Server secrets by name (the CSRF key: 32 random bytes), created once by the first
-- instance and read by every other, never logged or shown. Login failure counters per
-- keyed hash of an account or a client address (no emails, no addresses), shared by
-- several PostgreSQL instances; on SQLite the one server counts in memory and this table
-- stays empty. `lockout_noted`: a refusal during the current lockout was audited (one entry
-- per lockout); `version` lets a writer update only the row it read.
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
CREATE TABLE login_failures (
    key             BLOB PRIMARY KEY,
    failures        INTEGER NOT NULL,
    lockouts        INTEGER NOT NULL,
    last_failure_ms INTEGER NOT NULL,
    locked_until_ms INTEGER,
    lockout_noted   INTEGER NOT NULL CHECK (lockout_noted IN (0, 1)),
    version         INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
-- ---- end v12 --------------------------------------------------------------------------
-- ---- v13: PostgreSQL's email key unique by an index (migrate.rs EMAIL_KEY_INDEX_STEP) ----
-- Nothing here: SQLite's one writer makes the email_key triggers above safe.
-- ---- end v13 --------------------------------------------------------------------------
-- ---- v14: ACME across several instances (migrate.rs ACME_SHARED_STEP) ------------------
-- The ACME challenge answers being offered (kind 'http-01' by token, 'tls-alpn-01' by
-- domain; the key authorization is public, sent to the CA), so whichever instance the CA
-- reaches answers; and the lease one instance holds while it orders for a set of domains.
CREATE TABLE acme_challenges (
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    key_authorization TEXT NOT NULL,
    expires_at        INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID, STRICT;
CREATE TABLE acme_order_leases (
    domains     TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    held_until  INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
-- ---- end v14 --------------------------------------------------------------------------
