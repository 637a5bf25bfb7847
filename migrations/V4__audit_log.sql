-- V4: an append-only audit log of security-relevant and administrative actions.

-- Each migration runs in its own transaction (goodgo db migrate); bound how long it may
-- wait for locks and run, so a busy table fails the deploy instead of stalling it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id    bigint      REFERENCES users (id) ON DELETE SET NULL,
    action      text        NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)*$'),
    entity      text        NOT NULL,
    entity_id   text,
    request_id  text,
    data        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- History of one record: SELECT ... FROM audit_log WHERE entity = $1 AND entity_id = $2
-- ORDER BY created_at DESC.
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id, created_at DESC);
-- What a user did: SELECT ... FROM audit_log WHERE actor_id = $1 ORDER BY created_at DESC.
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, created_at DESC);
