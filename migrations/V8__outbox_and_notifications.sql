-- V8: what users must hear about, and how it reaches them. A change that users must hear
-- about (an account, a listing published or unpublished by a moderator, a payment, a
-- subscription ending) writes a notification, and the work of telling them (an e-mail) to
-- the outbox, in the transaction of the change: no change without its notice, no notice of
-- a change that was rolled back. The API's outbox worker delivers pending rows.

-- Each migration runs in its own transaction (goodgo db migrate); bound how long it may
-- wait for locks and run, so a busy table fails the deploy instead of stalling it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

-- The language of a user's e-mails (set from Accept-Language at registration, changed in
-- PUT /v1/me/notifications/settings), and the e-mail kinds they turned off.
ALTER TABLE users
    ADD COLUMN locale          text   NOT NULL DEFAULT 'en' CHECK (locale IN ('en', 'vi')),
    ADD COLUMN email_muted     text[] NOT NULL DEFAULT '{}' CHECK (cardinality(email_muted) <= 32);

-- Work to do after a commit, generic over its topic (`email` today; a handler per topic in
-- the API's dispatcher). `key` is the row's idempotency key: an e-mail's Message-ID derives
-- from it, so a message sent again after a crash is recognisably the same message.
CREATE TABLE outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic           text        NOT NULL CHECK (topic ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    key             uuid        NOT NULL,
    payload         jsonb       NOT NULL DEFAULT '{}',
    -- pending → sent; skipped (the handler found nothing to do: an e-mail turned off
    -- since); failed after the last attempt.
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'skipped', 'failed')),
    attempts        smallint    NOT NULL DEFAULT 0 CHECK (attempts BETWEEN 0 AND 1000),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text        CHECK (length(last_error) <= 1000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz
);

CREATE UNIQUE INDEX outbox_key_key ON outbox (key);
-- The worker: SELECT ... FROM outbox WHERE status = 'pending' AND next_attempt_at <= now()
-- ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED.
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at, id) WHERE status = 'pending';

-- What a user was told, for GET /v1/me/notifications (newest first); `outbox_id` is the
-- e-mail that tells them too (none when that kind of e-mail is turned off).
CREATE TABLE notifications (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    data       jsonb       NOT NULL DEFAULT '{}',
    outbox_id  bigint      REFERENCES outbox (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
CREATE INDEX notifications_outbox_idx ON notifications (outbox_id);
