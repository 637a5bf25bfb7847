-- V3: subscriptions and the payments that fund them. Payment providers deliver events at
-- least once, so every event id is stored and unique: a replayed webhook changes nothing.

-- Each migration runs in its own transaction (goodgo db migrate); bound how long it may
-- wait for locks and run, so a busy table fails the deploy instead of stalling it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

CREATE TABLE subscriptions (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id                  bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    plan                     text        NOT NULL CHECK (plan IN ('basic', 'pro', 'agency')),
    status                   text        NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'canceled')),
    provider                 text        NOT NULL,
    provider_subscription_id text        NOT NULL,
    current_period_end       timestamptz NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_subscription_id)
);

-- The user's current subscription: SELECT ... FROM subscriptions WHERE user_id = $1
-- ORDER BY current_period_end DESC LIMIT 1.
CREATE INDEX subscriptions_user_idx ON subscriptions (user_id, current_period_end DESC);

CREATE TABLE payments (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id           bigint         NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    subscription_id   bigint         REFERENCES subscriptions (id) ON DELETE SET NULL,
    provider          text           NOT NULL,
    provider_event_id text           NOT NULL,
    amount            numeric(12, 2) NOT NULL CHECK (amount > 0),
    currency          text           NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status            text           NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    created_at        timestamptz    NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_event_id)
);

-- Billing history: SELECT ... FROM payments WHERE user_id = $1 ORDER BY created_at DESC.
CREATE INDEX payments_user_idx ON payments (user_id, created_at DESC);
