-- V5: plans as data, checkouts (pending payments the provider's events settle by their
-- reference), and the webhook events already received (a delivered event id is stored once:
-- a replay changes nothing).

-- Each migration runs in its own transaction (goodgo db migrate); bound how long it may
-- wait for locks and run, so a busy table fails the deploy instead of stalling it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

CREATE TABLE plans (
    id            text           PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_-]{0,31}$'),
    name          text           NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    price         numeric(12, 2) NOT NULL CHECK (price >= 0),
    currency      text           NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- How long one paid period lasts; period ends are computed from it in SQL.
    period        interval       NOT NULL DEFAULT '1 month' CHECK (period > '0'::interval),
    -- How many listings an agent on this plan may have active at once.
    listing_quota bigint         NOT NULL CHECK (listing_quota >= 0),
    -- Inactive plans are not offered any more; existing subscriptions keep them.
    active        boolean        NOT NULL DEFAULT true,
    position      smallint       NOT NULL DEFAULT 0
);

INSERT INTO plans (id, name, price, currency, listing_quota, active, position) VALUES
    ('free',   'Free',   0,     'USD', 3,   true,  0),
    ('pro',    'Pro',    29.00, 'USD', 25,  true,  1),
    ('agency', 'Agency', 99.00, 'USD', 250, true,  2),
    -- V3's 'basic' plan: kept for the subscriptions that have it, no longer offered.
    ('basic',  'Basic',  9.00,  'USD', 10,  false, 9);

-- Subscriptions keep V3's check of their plan (the paid plans; the free plan needs none).

-- A checkout is a pending payment; its provider_event_id is the checkout's reference, the
-- id the provider's events name (unique per provider since V3). Its amount and currency
-- come from the plan, never from the client.
ALTER TABLE payments
    ADD COLUMN plan       text CHECK (length(plan) <= 32),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Every event applied, by the provider's id: INSERT ... ON CONFLICT DO NOTHING is the
-- idempotency check, inside the transaction that applies the event.
CREATE TABLE webhook_events (
    provider    text        NOT NULL,
    event_id    text        NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    type        text        NOT NULL CHECK (length(type) BETWEEN 1 AND 100),
    payment_id  bigint      REFERENCES payments (id) ON DELETE SET NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('applied', 'ignored')),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);
