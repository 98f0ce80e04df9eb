// The store's schema history: an append-only list of SQL migrations, applied by store.ts.

/** One step of the store's schema; applied once, in order, inside a transaction. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /**
   * The step for PostgreSQL where the SQLite text cannot be mapped to it (see `postgres/sql.ts`), such as
   * data fixes with SQLite's own functions for rows no PostgreSQL store can hold.
   */
  readonly postgres?: string;
}

/** Append only: never edit a migration that has shipped. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "meta",
    sql: `
      CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 2,
    name: "audit",
    sql: `
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,          -- epoch milliseconds
        kind TEXT NOT NULL,           -- sign_in, token_grant, consent, denial, reload, ...
        subject TEXT,                 -- the user or client it concerns, when there is one
        detail TEXT NOT NULL DEFAULT '{}'  -- JSON, never a secret
      ) STRICT;
      CREATE INDEX audit_at ON audit(at);
      CREATE INDEX audit_kind_at ON audit(kind, at);
    `,
  },
  {
    version: 3,
    name: "oauth",
    sql: `
      -- Clients registered dynamically (RFC 7591) or fetched from a client id metadata document.
      CREATE TABLE oauth_clients (
        client_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,                      -- dynamic | metadata_document
        metadata TEXT NOT NULL,                  -- JSON, RFC 7591 field names
        secret_hash TEXT,                        -- confidential clients only
        registration_token_hash TEXT,            -- RFC 7592
        created_at INTEGER NOT NULL,
        expires_at INTEGER                       -- cached metadata documents
      ) STRICT;

      -- People who sign in without a provider and are not in the registry (the first-start admin).
      CREATE TABLE local_users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        groups TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL
      ) STRICT;

      -- Browser sign-ins at the gateway (cookie holds the token; only its hash is kept).
      CREATE TABLE browser_sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        identity TEXT NOT NULL,                  -- JSON: name, email, groups, provider
        csrf TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE consents (
        user_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        granted_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, client_id)
      ) STRICT;

      CREATE TABLE authorization_codes (
        code_hash TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        identity TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT NOT NULL,
        resource TEXT NOT NULL,
        scope TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        family_id TEXT                            -- refresh family issued from it (revoked on replay)
      ) STRICT;

      CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        family_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        identity TEXT NOT NULL,
        resource TEXT NOT NULL,
        scope TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        revoked_at INTEGER
      ) STRICT;
      CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
      CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);
      CREATE INDEX refresh_tokens_client ON refresh_tokens(client_id);

      -- Access tokens revoked before they expire (RFC 7009), by jti.
      CREATE TABLE revoked_access_tokens (
        jti TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 4,
    name: "access_token_grants",
    sql: `
      -- The grant (code and refresh family) each access token came from, so that revoking the grant
      -- revokes its access tokens too (RFC 6749 §4.1.2, RFC 7009 §2.1).
      CREATE TABLE access_token_grants (
        jti TEXT PRIMARY KEY,
        family_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL             -- epoch seconds, as in revoked_access_tokens
      ) STRICT;
      CREATE INDEX access_token_grants_family ON access_token_grants(family_id);
    `,
  },
  {
    version: 5,
    name: "code_redirect_uri_given",
    sql: `
      -- Whether the authorization request named its redirect_uri (then /token must repeat it).
      ALTER TABLE authorization_codes ADD COLUMN redirect_uri_given INTEGER NOT NULL DEFAULT 1;
    `,
  },
  {
    version: 6,
    name: "service_tokens",
    sql: `
      -- Users' tokens for third-party services, encrypted (AES-256-GCM, user and service as AAD).
      CREATE TABLE service_tokens (
        user_id TEXT NOT NULL,
        service TEXT NOT NULL,
        sealed TEXT NOT NULL,                    -- base64url(iv || ciphertext): access and refresh token
        scope TEXT NOT NULL DEFAULT '',
        expires_at INTEGER,                      -- epoch ms of the access token, when the service said
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, service)
      ) STRICT;

      -- Consent links: single use, short-lived, bound to a user and a service; only the hash is kept.
      CREATE TABLE connect_tickets (
        ticket_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        service TEXT NOT NULL,
        elicitation_id TEXT,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
      ) STRICT;
    `,
  },
  {
    version: 7,
    name: "backend_lists",
    sql: `
      -- What a backend that needs a third-party token listed, as last seen: shown to users who have not
      -- connected that service yet (their own listing would only bring the consent link).
      CREATE TABLE backend_lists (
        backend TEXT NOT NULL,
        method TEXT NOT NULL,
        definition TEXT NOT NULL,                -- hash of the backend's definition when listed
        items TEXT NOT NULL,                     -- JSON array
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (backend, method)
      ) STRICT;
    `,
  },
  {
    version: 8,
    name: "access_token_owners",
    sql: `
      -- Every access token's user and client, so that revoking a user's or a client's tokens finds them all
      -- (client_credentials tokens too, which belong to no refresh family).
      ALTER TABLE access_token_grants ADD COLUMN client_id TEXT;
      ALTER TABLE access_token_grants ADD COLUMN user_id TEXT;
      CREATE INDEX access_token_grants_client ON access_token_grants(client_id);
      CREATE INDEX access_token_grants_user ON access_token_grants(user_id);
    `,
  },
  {
    version: 9,
    name: "provider_accounts",
    sql: `
      -- The provider's own, permanent account id behind each provider-qualified user id (a GitHub login can
      -- be renamed and then taken by someone else: that someone must not become the earlier user).
      CREATE TABLE provider_accounts (
        user_id TEXT PRIMARY KEY,                -- e.g. github:octocat
        account_id TEXT NOT NULL,                -- e.g. GitHub's numeric user id
        first_seen INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 10,
    name: "pending_logins",
    sql: `
      -- Sign-ins started at an upstream provider, waiting for its callback (RFC 6749 §10.12: bound to the
      -- browser that started them). Kept in the store so that nobody's flood can push out another's.
      CREATE TABLE pending_logins (
        state_hash TEXT PRIMARY KEY,             -- SHA-256 of the state sent to the provider
        provider TEXT NOT NULL,
        code_verifier TEXT NOT NULL,             -- RFC 7636
        nonce TEXT NOT NULL,                     -- OIDC Core §3.1.2.1
        return_to TEXT NOT NULL,
        binding_hash TEXT NOT NULL,              -- SHA-256 of the browser's binding cookie
        address TEXT NOT NULL,                   -- client network that started it (IPv6: its /64)
        created_at INTEGER NOT NULL,             -- epoch ms
        expires_at INTEGER NOT NULL              -- epoch ms
      ) STRICT;
      CREATE INDEX pending_logins_expires ON pending_logins(expires_at);
      CREATE INDEX pending_logins_binding ON pending_logins(binding_hash, created_at);
      CREATE INDEX pending_logins_address ON pending_logins(address, created_at);
    `,
  },
  {
    version: 11,
    name: "registration_bounds_and_consent_handles",
    sql: `
      -- Who registered a dynamic client (the client network, for the per-address throttle) and when it
      -- first obtained a grant (clients that never do expire).
      ALTER TABLE oauth_clients ADD COLUMN registered_from TEXT;
      ALTER TABLE oauth_clients ADD COLUMN first_grant_at INTEGER;   -- epoch ms
      CREATE INDEX oauth_clients_registered_from ON oauth_clients(registered_from, created_at);
      UPDATE oauth_clients SET first_grant_at = created_at
        WHERE client_id IN (SELECT client_id FROM refresh_tokens)
           OR client_id IN (SELECT client_id FROM access_token_grants WHERE client_id IS NOT NULL)
           OR client_id IN (SELECT client_id FROM authorization_codes WHERE used_at IS NOT NULL);
      -- The one validated authorization request a consent form stands for (RFC 6749 §3.1): the form
      -- carries only a handle, bound to the browser session that was shown the page.
      CREATE TABLE authorization_requests (
        handle_hash TEXT PRIMARY KEY,
        binding_hash TEXT NOT NULL,              -- SHA-256 of the browser session's CSRF token
        params TEXT NOT NULL,                    -- JSON object of the request's parameters
        expires_at INTEGER NOT NULL              -- epoch ms
      ) STRICT;
      CREATE INDEX authorization_requests_expires ON authorization_requests(expires_at);
    `,
  },
  {
    version: 12,
    name: "refresh_token_successors",
    sql: `
      -- A refresh whose answer was lost: its token is accepted again for a short while if the token its use
      -- issued was never used; that unused successor (and the access token issued with it) is then retired.
      ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT;   -- token_hash of the token its use issued
      ALTER TABLE refresh_tokens ADD COLUMN access_jti TEXT;       -- the access token issued with it
      ALTER TABLE refresh_tokens ADD COLUMN retired_at INTEGER;    -- epoch ms: replaced unused by a retry
    `,
  },
  {
    version: 13,
    name: "times_in_milliseconds",
    sql: `
      -- One time unit in the store: every time column is epoch milliseconds from now on. Only the access
      -- token tables held epoch seconds (a JWT's exp, which stays seconds in the token itself). The guard
      -- converts a value only while it reads as seconds (below 10^11: seconds until the year 5138,
      -- milliseconds before 1973), so that no value is ever multiplied twice.
      --   revoked_access_tokens.expires_at   epoch ms (was seconds)
      --   access_token_grants.expires_at     epoch ms (was seconds)
      -- Already epoch ms, unchanged: audit.at; oauth_clients.created_at, expires_at, first_grant_at;
      -- local_users.created_at; browser_sessions.created_at, expires_at; consents.granted_at;
      -- authorization_codes.expires_at, used_at; refresh_tokens.expires_at, used_at, revoked_at, retired_at;
      -- service_tokens.expires_at, updated_at; connect_tickets.expires_at, used_at; backend_lists.updated_at;
      -- provider_accounts.first_seen; pending_logins.created_at, expires_at;
      -- authorization_requests.expires_at.
      UPDATE revoked_access_tokens SET expires_at = expires_at * 1000 WHERE expires_at < 100000000000;
      UPDATE access_token_grants SET expires_at = expires_at * 1000 WHERE expires_at < 100000000000;
    `,
  },
  {
    version: 14,
    name: "identity_id",
    sql: `
      -- The identity JSON of codes, refresh tokens and browser sessions names the user "id" (as the one
      -- Caller type does) instead of "userId".
      UPDATE authorization_codes SET identity = json_set(json_remove(identity, '$.userId'), '$.id',
        json_extract(identity, '$.userId')) WHERE json_type(identity, '$.userId') IS NOT NULL;
      UPDATE refresh_tokens SET identity = json_set(json_remove(identity, '$.userId'), '$.id',
        json_extract(identity, '$.userId')) WHERE json_type(identity, '$.userId') IS NOT NULL;
      UPDATE browser_sessions SET identity = json_set(json_remove(identity, '$.userId'), '$.id',
        json_extract(identity, '$.userId')) WHERE json_type(identity, '$.userId') IS NOT NULL;
    `,
    // PostgreSQL stores began after this fix: every identity they hold was written with "id".
    postgres: "SELECT 1;",
  },
  {
    version: 15,
    name: "shared_state",
    sql: `
      -- What several replicas on one store share beyond the tables above.
      -- 2025-era MCP sessions, so that any replica can resume one it did not open (only the hash of the
      -- session id is kept; the caller must be the one who opened it).
      CREATE TABLE mcp_sessions (
        session_hash TEXT PRIMARY KEY,           -- SHA-256 of the Mcp-Session-Id
        endpoint TEXT NOT NULL,                  -- "" for /mcp, else the backend of /mcp/{backend}
        user_id TEXT NOT NULL,
        client_id TEXT,
        state TEXT NOT NULL,                     -- JSON: protocol version, client info and capabilities, ...
        created_at INTEGER NOT NULL,             -- epoch ms
        seen_at INTEGER NOT NULL                 -- epoch ms, written at most once a minute
      ) STRICT;
      CREATE INDEX mcp_sessions_seen ON mcp_sessions(seen_at);

      -- Rate-limit token buckets (limits:), shared by every replica: tokens left as of updated_at.
      CREATE TABLE rate_buckets (
        bucket TEXT PRIMARY KEY,                 -- limit, user (and backend)
        tokens REAL NOT NULL,
        updated_at INTEGER NOT NULL,             -- epoch ms
        reported_at INTEGER                      -- epoch ms: the last refusal written to the audit log
      ) STRICT;
      CREATE INDEX rate_buckets_updated ON rate_buckets(updated_at);

      -- Sign-in throttles: one row per counted attempt (failed password, provider start), and per key the
      -- last refusal written to the audit log (registrations are counted in oauth_clients).
      CREATE TABLE throttle_events (
        scope TEXT NOT NULL,                     -- which throttle (or its refusal reports)
        key TEXT NOT NULL,                       -- account name or client network
        at INTEGER NOT NULL                      -- epoch ms
      ) STRICT;
      CREATE INDEX throttle_events_key ON throttle_events(scope, key, at);

      -- Connections to a service waiting for its callback (the code flow's state and PKCE verifier), so that
      -- the callback may land on any replica. Only the hash of the state is kept; single use.
      CREATE TABLE pending_connects (
        state_hash TEXT PRIMARY KEY,             -- SHA-256 of the state sent to the service
        user_id TEXT NOT NULL,
        service TEXT NOT NULL,
        code_verifier TEXT NOT NULL,             -- RFC 7636
        elicitation_id TEXT,
        expires_at INTEGER NOT NULL              -- epoch ms
      ) STRICT;
      CREATE INDEX pending_connects_expires ON pending_connects(expires_at);

      -- Token signing keys when the store is shared (one key set for every replica); sealed with the
      -- vault key. The newest unretired key signs; every key listed here verifies.
      CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        sealed TEXT NOT NULL,                    -- base64url(iv || ciphertext) of the private JWK
        created_at INTEGER NOT NULL,             -- epoch ms
        retired_at INTEGER                       -- epoch ms: no longer signs, still verifies
      ) STRICT;
    `,
  },
  {
    version: 16,
    name: "upstream_clients_and_refresh_claims",
    sql: `
      -- Gatehouse as a client of OAuth-protected remote MCP servers' authorization servers, registered
      -- dynamically (RFC 7591) once per backend and authorization server, shared by every replica.
      CREATE TABLE upstream_clients (
        backend TEXT NOT NULL,                   -- the backend's name in the registry
        issuer TEXT NOT NULL,                    -- the authorization server's issuer identifier
        client_id TEXT NOT NULL,
        sealed_secret TEXT,                      -- vault.seal(secret, "gatehouse:upstream_client", issuer)
        secret_expires_at INTEGER,               -- epoch ms; NULL: the secret does not expire
        auth_method TEXT NOT NULL,               -- token_endpoint_auth_method as registered
        redirect_uri TEXT NOT NULL,              -- the callback registered (a new public_url registers again)
        registered_at INTEGER NOT NULL,          -- epoch ms
        PRIMARY KEY (backend, issuer)
      ) STRICT;

      -- A refresh of a user's service token in progress somewhere (one replica refreshes; the others wait
      -- for its result instead of spending the same refresh token, which a rotating server would refuse).
      ALTER TABLE service_tokens ADD COLUMN refresh_claimed_at INTEGER;   -- epoch ms; NULL: none
    `,
  },
];
