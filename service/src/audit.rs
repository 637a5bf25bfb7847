//! The audit trail: one entry per state change, written with the change in the same
//! transaction (actor, action, target, request id, and a before/after summary), so there is
//! never a change without its entry nor an entry without its change.

use serde_json::Value;

use crate::error::ApiError;

/// What changed, on what, and by whom (`None`: the system, e.g. a provider's webhook).
pub struct Entry<'a> {
    pub actor: Option<i64>,
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: String,
    /// A short summary, e.g. `{"before": {...}, "after": {...}}`.
    pub data: Value,
}

/// Writes `entry` in `tx`: if it cannot be written, the transaction fails with it.
pub async fn record(
    tx: &deadpool_postgres::Transaction<'_>,
    entry: Entry<'_>,
) -> Result<(), ApiError> {
    let request_id = crate::middleware::current_request_id();
    tx.execute(
        "INSERT INTO audit_log (actor_id, action, entity, entity_id, request_id, data) \
         VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)",
        &[
            &entry.actor,
            &entry.action,
            &entry.entity,
            &entry.entity_id,
            &request_id,
            &entry.data.to_string(),
        ],
    )
    .await?;
    Ok(())
}
