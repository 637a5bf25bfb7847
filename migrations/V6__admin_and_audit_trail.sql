-- V6: the admin API and its audit trail: suspended accounts, moderated listings, the
-- client's address on every audit entry, and an audit log that nobody rewrites.

-- Each migration runs in its own transaction (goodgo db migrate); bound how long it may
-- wait for locks and run, so a busy table fails the deploy instead of stalling it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

-- A suspended account's tokens stop working at once: every authenticated request reads
-- the caller's row by its primary key (SELECT role, suspended_at FROM users WHERE id = $1).
ALTER TABLE users
    ADD COLUMN suspended_at      timestamptz,
    ADD COLUMN suspension_reason text CHECK (length(suspension_reason) <= 500);

-- Why an admin unpublished a listing, for its owner to read; publishing again clears it.
ALTER TABLE listings
    ADD COLUMN moderation_note text CHECK (length(moderation_note) <= 500);

-- Where the request that made the change came from (the peer, or the client a trusted
-- proxy names in X-Forwarded-For).
ALTER TABLE audit_log ADD COLUMN ip inet;

-- The log outlives the accounts it names: deleting a user would rewrite their entries
-- (ON DELETE SET NULL), which an append-only table must not allow. The id stays. No
-- client relies on the constraint: only the API writes the log, with the caller's id.
-- squawk-ignore ban-drop-constraint
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_id_fkey;

-- Append-only, twice over. First, privileges: nobody holding UPDATE, DELETE or TRUNCATE on
-- the log keeps it (the owner, who is also the API's role where one role migrates and
-- serves, included); a separate API role should be granted SELECT and INSERT only.
DO $$
DECLARE
    holder regrole;
BEGIN
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM CURRENT_USER;
    FOR holder IN
        SELECT DISTINCT a.grantee::regrole
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = 'audit_log'::regclass AND a.grantee <> 0
          AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
    LOOP
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM %s', holder);
    END LOOP;
END
$$;

-- Second, a trigger, which holds for superusers and a later GRANT too: any UPDATE, DELETE
-- or TRUNCATE of the log fails, whatever rows it would touch. Taking it away is an
-- ALTER TABLE, never a silent rewrite.
CREATE FUNCTION audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'audit entries are only ever inserted, with the change they record';
END
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
