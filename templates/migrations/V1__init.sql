-- V1: the first table of {{name}}. Applied by `goodgo db migrate` in one transaction;
-- never edit a migration once applied: add the next one with `goodgo db new NAME`.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

CREATE TABLE notes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body       text        NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    created_at timestamptz NOT NULL DEFAULT now()
);
