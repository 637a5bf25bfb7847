-- V1: accounts and sessions.
-- Users sign up as buyers or agents; admin is granted, never self-assigned (the API
-- enforces that; the schema only knows the three roles).

-- Each migration runs in its own transaction (goodgo db migrate); bound how long it may
-- wait for locks and run, so a busy table fails the deploy instead of stalling it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

CREATE TYPE user_role AS ENUM ('buyer', 'agent', 'admin');

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text        NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%' AND length(email) <= 254),
    password_hash text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role          user_role   NOT NULL DEFAULT 'buyer',
    display_name  text        NOT NULL DEFAULT '' CHECK (length(display_name) <= 100),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Login and register: SELECT ... FROM users WHERE email = $1 (emails are stored lower-case).
CREATE UNIQUE INDEX users_email_key ON users (email);

-- Refresh tokens are random; only their SHA-256 is stored. Each login starts a family;
-- every refresh rotates the token inside the family, and reusing a rotated token revokes
-- the whole family.
CREATE TABLE refresh_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid        NOT NULL,
    token_hash  bytea       NOT NULL CHECK (length(token_hash) = 32),
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Refresh: SELECT ... FROM refresh_tokens WHERE token_hash = $1.
CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash);
-- Reuse detection: UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1.
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
-- Logout everywhere / account deletion: ... WHERE user_id = $1.
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
