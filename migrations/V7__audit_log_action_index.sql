-- no-transaction
-- V7: the audit log by action, newest first, for the admin API's filter
-- (GET /v1/admin/audit?action=…):
--   SELECT ... FROM audit_log WHERE action = $1 [AND id < $2] ORDER BY id DESC LIMIT $3
-- Built CONCURRENTLY, so outside a transaction (the directive above; see docs/db.md), so
-- writes to the log go on while it builds; IF NOT EXISTS lets a failed run be repeated.
-- Outside a transaction the time limits are the session's: they are reset after the build.
SET lock_timeout = '5s';
SET statement_timeout = '30min';
-- squawk assumes every file runs in a transaction (.squawk.toml); this one does not.
-- squawk-ignore ban-concurrent-index-creation-in-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_log_action_idx ON audit_log (action, id DESC);
RESET statement_timeout;
RESET lock_timeout;
