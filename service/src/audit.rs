//! The audit trail: one entry per state change, written with the change in the same
//! transaction (actor, action, target, request id, client address, and a before/after
//! summary), so there is never a change without its entry nor an entry without its change.
//! The table is append-only (V6: no UPDATE, DELETE or TRUNCATE privilege, and a trigger
//! that refuses them); the admin API reads it (`routes::admin`).

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

/// The statement that appends an entry (also run by `cargo xtask bench webhooks`' SQL peer).
pub const INSERT: &str = "INSERT INTO audit_log (actor_id, action, entity, entity_id, request_id, ip, data) \
     VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb)";

/// Writes `entry` in `tx`, with the request's id and client address: if it cannot be
/// written, the transaction fails with it.
pub async fn record(
    tx: &deadpool_postgres::Transaction<'_>,
    entry: Entry<'_>,
) -> Result<(), ApiError> {
    let request_id = crate::middleware::current_request_id();
    let ip = crate::middleware::current_client_ip();
    // Prepared once per connection: every change writes one, so it is worth the cache.
    let statement = tx.prepare_cached(INSERT).await?;
    tx.execute(
        &statement,
        &[
            &entry.actor,
            &entry.action,
            &entry.entity,
            &entry.entity_id,
            &request_id,
            &ip,
            &entry.data.to_string(),
        ],
    )
    .await?;
    Ok(())
}

/// The fields of `before` and `after` (two JSON objects) whose values differ, as
/// `{"before": {field: old}, "after": {field: new}}`, leaving out `ignore`d fields.
pub fn changes(before: &Value, after: &Value, ignore: &[&str]) -> Value {
    let (mut old, mut new) = (serde_json::Map::new(), serde_json::Map::new());
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (field, value) in a {
            let was = b.get(field).unwrap_or(&Value::Null);
            if was != value && !ignore.contains(&field.as_str()) {
                old.insert(field.clone(), was.clone());
                new.insert(field.clone(), value.clone());
            }
        }
    }
    serde_json::json!({"before": old, "after": new})
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn changes_name_only_what_differs() {
        let before = json!({"title": "Old", "price": "10.00", "updated_at": "a", "city": "Hue"});
        let after = json!({"title": "New", "price": "10.00", "updated_at": "b", "city": "Hue"});
        assert_eq!(
            super::changes(&before, &after, &["updated_at"]),
            json!({"before": {"title": "Old"}, "after": {"title": "New"}})
        );
    }
}
