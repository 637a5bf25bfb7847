//! Row counts and content hashes of every table, computed by the server, so that a backup
//! is checked against the database it came from without a client-side copy of the data.
//!
//! A table's hash is `md5` of the decimal sum, over its rows, of the first 64 bits of
//! `md5(row::text)` read as a signed integer: it does not depend on row order (no sort, and
//! constant memory however big the table), changes when any row's text changes, and is
//! computed by any PostgreSQL with the one query in [`TABLE_HASH`].

use tokio_postgres::GenericClient;

use crate::BackupError;
use crate::manifest::TableEntry;

/// The tables whose rows a backup holds: ordinary tables (partitions included, partitioned
/// parents not, their rows being the partitions'), outside the system schemas.
const TABLES: &str = "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
    ORDER BY 1";

/// The query for one table (`{}` is the quoted name).
pub const TABLE_HASH: &str = "SELECT count(*)::bigint, md5(coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0)::text) FROM {} AS t";

/// Every table's count and hash, in name order.
pub async fn tables(client: &impl GenericClient) -> Result<Vec<TableEntry>, BackupError> {
    let pg = |doing: String| move |e: tokio_postgres::Error| crate::pg(doing, e);
    let names: Vec<String> = client
        .query(TABLES, &[])
        .await
        .map_err(pg("listing tables".into()))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let row = client
            .query_one(&TABLE_HASH.replace("{}", &name), &[])
            .await
            .map_err(pg(format!("hashing table {name}")))?;
        out.push(TableEntry {
            name,
            rows: row.get(0),
            hash: row.get(1),
        });
    }
    Ok(out)
}

/// Compares what a restored database holds with what the manifest records; the first
/// difference is the error.
pub fn compare(expected: &[TableEntry], found: &[TableEntry]) -> Result<(), BackupError> {
    for want in expected {
        let problem = match found.iter().find(|t| t.name == want.name) {
            None => "missing after the restore".to_string(),
            Some(got) if got.rows != want.rows => format!(
                "{} rows restored, the backup recorded {}",
                got.rows, want.rows
            ),
            Some(got) if got.hash != want.hash => format!(
                "content hash {} after the restore, the backup recorded {}",
                got.hash, want.hash
            ),
            Some(_) => continue,
        };
        return Err(BackupError::Mismatch {
            table: want.name.clone(),
            problem,
        });
    }
    if let Some(extra) = found
        .iter()
        .find(|t| !expected.iter().any(|w| w.name == t.name))
    {
        return Err(BackupError::Mismatch {
            table: extra.name.clone(),
            problem: "present after the restore but not in the backup".into(),
        });
    }
    Ok(())
}
