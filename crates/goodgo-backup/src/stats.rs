//! Row counts and content hashes of every table, computed by the server, so that a backup
//! is checked against the database it came from without a client-side copy of the data.
//!
//! Two ways of hashing a table exist, chosen by the backup's format version
//! ([`TableHash::of_format`]); both are order-independent sums over the rows (no sort,
//! constant memory however big the table) and both are documented in docs/backup.md so
//! that anyone can recompute them with psql:
//!
//! - [`TableHash::RowText`] (formats 1 and 2): `md5` of the decimal sum, over the rows, of
//!   the first 64 bits of `md5(row::text)`, with the one query [`ROW_TEXT_HASH`]. Turning
//!   every row into text and taking its md5 costs PostgreSQL several times a `COPY` of the
//!   table.
//! - [`TableHash::Columns`] (format 3): every column of a row is hashed with PostgreSQL's
//!   64-bit hash functions (`hashint4extended`, `hashtextextended`…, seeded with the
//!   column's rank by name), the column hashes of a row are combined with XOR, and the
//!   table's hash is `md5` of the decimal sum of the row hashes. Integers, text, uuids and
//!   times are hashed as they are stored, without being printed; any other type is hashed
//!   through its text form under fixed session settings ([`COLUMNS_SETTINGS`]). It costs
//!   less than a `COPY` of the table.
//! - [`TableHash::ColumnsAndLargeObjects`] (format 4): format 3's, and the large objects,
//!   when the database has any, as one more entry, [`LARGE_OBJECTS`] ([`LARGE_OBJECTS_HASH`]).
//! - [`TableHash::CopyLines`] (format 5): the lines of the table's `COPY … TO STDOUT`,
//!   counted and hashed by goodgo ([`crate::lines`]): a backup takes them from pg_dump's
//!   data files as it packs them, so no table is read twice; a restore prints the
//!   restored tables ([`copy_lines`]). The large objects are format 4's entry.
//!
//! Tables are hashed on several connections at once, largest first: in a backup, each
//! connection imports the dump's snapshot, so hashes and dump see the same rows.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use futures_util::future::try_join_all;
use goodgo_db::admin::Target;
use tokio_postgres::{Client, GenericClient};

use crate::BackupError;
use crate::lines::{self, LineHash};
use crate::load::Copy;
use crate::manifest::TableEntry;

/// How a backup's table hashes are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableHash {
    /// Formats 1 and 2: `md5(row::text)`, summed.
    RowText,
    /// Format 3: per-column 64-bit hashes, XORed per row, summed.
    Columns,
    /// Format 4: as format 3, and the large objects as one more entry.
    ColumnsAndLargeObjects,
    /// Format 5: the lines of each table's `COPY`, and format 4's large objects entry.
    CopyLines,
}

impl TableHash {
    /// The table hash of manifest format `version`.
    pub fn of_format(version: u32) -> TableHash {
        match version {
            0..=2 => TableHash::RowText,
            3 => TableHash::Columns,
            4 => TableHash::ColumnsAndLargeObjects,
            _ => TableHash::CopyLines,
        }
    }

    /// Whether the large objects are an entry of their own.
    fn large_objects(self) -> bool {
        matches!(
            self,
            TableHash::ColumnsAndLargeObjects | TableHash::CopyLines
        )
    }
}

/// The entry that stands for the database's large objects (format 4, when it has any):
/// its `rows` are how many there are.
pub const LARGE_OBJECTS: &str = "pg_catalog.pg_largeobject";

/// Format 4: the count and hash of the large objects: `md5` of the decimal sum, over the
/// large objects, of their OID's 64-bit hash (seed 1) XOR the first 64 bits of the `md5` of
/// their content.
pub const LARGE_OBJECTS_HASH: &str = "SELECT pg_catalog.count(*)::bigint, pg_catalog.md5(coalesce(pg_catalog.sum(pg_catalog.hashoidextended(m.oid, 1) OPERATOR(pg_catalog.#) ('x' OPERATOR(pg_catalog.||) pg_catalog.left(pg_catalog.md5(pg_catalog.lo_get(m.oid)), 16))::pg_catalog.bit(64)::pg_catalog.int8), 0)::pg_catalog.text) FROM pg_catalog.pg_largeobject_metadata AS m";

/// The tables whose rows a backup holds: ordinary tables (partitions included, partitioned
/// parents not, their rows being the partitions'), outside the system schemas; each with
/// its size on disk (to hash the largest first) and its columns, by name (bytewise), with
/// their types.
const TABLES: &str = "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name,
       pg_relation_size(c.oid) AS bytes,
       coalesce(array_agg(quote_ident(a.attname) ORDER BY a.attname COLLATE \"C\") FILTER (WHERE a.attnum IS NOT NULL), '{}') AS columns,
       coalesce(array_agg(a.atttypid ORDER BY a.attname COLLATE \"C\") FILTER (WHERE a.attnum IS NOT NULL), '{}') AS types,
       c.oid,
       EXISTS (SELECT FROM pg_depend d
               WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') AS extension
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relkind = 'r'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
    GROUP BY n.nspname, c.relname, c.oid
    ORDER BY 1";

/// Formats 1 and 2: the query for one table (`{}` is the quoted name).
pub const ROW_TEXT_HASH: &str = "SELECT count(*)::bigint, md5(coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0)::text) FROM {} AS t";

/// Format 3: the session settings under which a column is printed to be hashed, so that
/// its text does not depend on the server's or the user's defaults.
pub const COLUMNS_SETTINGS: &str = "SET search_path = pg_catalog; SET extra_float_digits = 1; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; SET bytea_output = 'hex'; SET lc_monetary = 'C'";

/// A table to hash.
#[derive(Debug, Clone)]
pub struct Table {
    /// `schema.table`, quoted.
    pub name: String,
    /// Bytes on disk (its main fork).
    pub bytes: i64,
    /// Its OID (0 for the large objects).
    pub oid: u32,
    /// Whether it belongs to an extension (which makes its rows; pg_dump dumps those the
    /// extension's configuration asks for, if any).
    pub extension: bool,
    /// Its columns, quoted, ordered by name (bytewise), and their types' OIDs.
    columns: Vec<(String, u32)>,
    /// Whether this is the [`LARGE_OBJECTS`] entry.
    large_objects: bool,
}

impl Table {
    /// The query giving this table's row count and hash.
    pub fn query(&self, hash: TableHash) -> String {
        if self.large_objects {
            return LARGE_OBJECTS_HASH.to_string();
        }
        match hash {
            TableHash::RowText => ROW_TEXT_HASH.replace("{}", &self.name),
            // Format 5 hashes its tables' lines, not by a query; a query for it is format
            // 4's, the closest.
            TableHash::Columns | TableHash::ColumnsAndLargeObjects | TableHash::CopyLines => {
                format!(
                    "SELECT pg_catalog.count(*)::bigint, pg_catalog.md5(coalesce(pg_catalog.sum({}), 0)::pg_catalog.text) FROM ONLY {} AS t",
                    row_hash(&self.columns),
                    self.name
                )
            }
        }
    }
}

/// Format 3's hash of a row: its columns' hashes combined with XOR (`0` for no column).
fn row_hash(columns: &[(String, u32)]) -> String {
    if columns.is_empty() {
        return "0::pg_catalog.int8".into();
    }
    columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| column_hash(&format!("t.{name}"), *ty, i + 1))
        .collect::<Vec<_>>()
        .join(" OPERATOR(pg_catalog.#) ")
}

/// Format 3's hash of column `c` of type `ty` (an OID), the `seed`-th by name: the type's
/// own 64-bit hash where equal values are identical (integers, text, uuids, times), else
/// the hash of its text; a NULL hashes to `-seed`.
fn column_hash(c: &str, ty: u32, seed: usize) -> String {
    let hash = match ty {
        // int2, int4, int8, oid
        21 => format!("pg_catalog.hashint2extended({c}, {seed})"),
        23 => format!("pg_catalog.hashint4extended({c}, {seed})"),
        20 => format!("pg_catalog.hashint8extended({c}, {seed})"),
        26 => format!("pg_catalog.hashoidextended({c}, {seed})"),
        // bool
        16 => format!("pg_catalog.hashint4extended({c}::pg_catalog.int4, {seed})"),
        // char(n): its padding is not part of its value
        1042 => format!("pg_catalog.hashbpcharextended({c} COLLATE \"C\", {seed})"),
        // uuid
        2950 => format!("pg_catalog.uuid_hash_extended({c}, {seed})"),
        // timestamp, timestamptz (as UTC), date (as a timestamp)
        1114 => format!("pg_catalog.timestamp_hash_extended({c}, {seed})"),
        1184 => format!("pg_catalog.timestamp_hash_extended({c} AT TIME ZONE 'UTC', {seed})"),
        1082 => format!("pg_catalog.timestamp_hash_extended({c}::pg_catalog.timestamp, {seed})"),
        // text, varchar, name, and any other type through its text
        _ => format!("pg_catalog.hashtextextended({c}::pg_catalog.text COLLATE \"C\", {seed})"),
    };
    format!("coalesce({hash}, -{seed})")
}

/// Every table of the database `client` is connected to (in its snapshot), by name; with
/// `hash` of format 4, and large objects there, the [`LARGE_OBJECTS`] entry too.
pub async fn list(client: &impl GenericClient, hash: TableHash) -> Result<Vec<Table>, BackupError> {
    let rows = client
        .query(TABLES, &[])
        .await
        .map_err(|e| crate::pg("listing tables".into(), e))?;
    let mut tables: Vec<Table> = rows
        .iter()
        .map(|r| {
            let names: Vec<String> = r.get(2);
            let types: Vec<u32> = r.get(3);
            Table {
                name: r.get(0),
                bytes: r.get(1),
                oid: r.get(4),
                extension: r.get(5),
                columns: names.into_iter().zip(types).collect(),
                large_objects: false,
            }
        })
        .collect();
    if hash.large_objects() {
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_largeobject_metadata),
                        pg_catalog.pg_relation_size('pg_catalog.pg_largeobject')",
                &[],
            )
            .await
            .map_err(|e| crate::pg("looking for large objects".into(), e))?;
        if row.get(0) {
            tables.push(Table {
                name: LARGE_OBJECTS.into(),
                bytes: row.get(1),
                oid: 0,
                extension: false,
                columns: Vec::new(),
                large_objects: true,
            });
        }
    }
    Ok(tables)
}

/// `n` connections to `db` ready to hash with `hash` (its session settings made); with a
/// `snapshot` (a backup's), each in a read-only repeatable-read transaction that imported
/// it, and without parallel workers.
pub async fn connect(
    db: &Target,
    n: usize,
    hash: TableHash,
    snapshot: Option<&str>,
) -> Result<Vec<Client>, BackupError> {
    try_join_all((0..n.max(1)).map(|_| async move {
        let client = db.connect().await?;
        let mut setup = String::new();
        if matches!(hash, TableHash::Columns | TableHash::ColumnsAndLargeObjects) {
            setup.push_str(COLUMNS_SETTINGS);
            setup.push(';');
        }
        if let Some(id) = snapshot {
            // In a backup, pg_dump's jobs keep the cores busy: a parallel scan only adds
            // workers that compete with them, for about 10% more CPU time for the same
            // hash (pgbench's 3 million accounts: 1.10-1.15 CPU-seconds with 2 workers,
            // 1.02-1.05 without). A restore's check keeps them: they use the time the
            // index builds leave idle (restores were 0.3 s slower without).
            setup.push_str("SET max_parallel_workers_per_gather = 0;");
            setup.push_str(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}';",
                id.replace('\'', "''")
            ));
        }
        if !setup.is_empty() {
            client
                .batch_execute(&setup)
                .await
                .map_err(|e| crate::pg("preparing a connection to hash tables".into(), e))?;
        }
        Ok::<_, BackupError>(client)
    }))
    .await
}

/// Counts and hashes `tables` on `clients` at once (each takes the largest table left);
/// the entries in name order. Once `stop` is set, no further table is started.
pub async fn hash(
    clients: &[Client],
    tables: Vec<Table>,
    hash: TableHash,
    stop: &AtomicBool,
) -> Result<Vec<TableEntry>, BackupError> {
    let mut out = largest_first(
        clients,
        tables,
        |t| t.bytes,
        async |client, table| {
            if stop.load(Ordering::Relaxed) {
                return Err(BackupError::Input("stopped".into()));
            }
            let row = client
                .query_one(&table.query(hash), &[])
                .await
                .map_err(|e| crate::pg(format!("hashing table {}", table.name), e))?;
            Ok(TableEntry {
                name: table.name,
                rows: row.get(0),
                hash: row.get(1),
            })
        },
    )
    .await?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Runs `work` on each of `items` on `clients` at once, each client taking the largest
/// item left (by `size`) as soon as it is free; the entries in no particular order.
async fn largest_first<T, K: Ord>(
    clients: &[Client],
    mut items: Vec<T>,
    size: impl Fn(&T) -> K,
    work: impl AsyncFn(&Client, T) -> Result<TableEntry, BackupError>,
) -> Result<Vec<TableEntry>, BackupError> {
    items.sort_by_key(size);
    let queue = Mutex::new(items);
    let (queue, work) = (&queue, &work);
    let done = try_join_all(clients.iter().map(|client| async move {
        let mut out = Vec::new();
        while let Some(item) = queue.lock().map(|mut q| q.pop()).unwrap_or(None) {
            out.push(work(client, item).await?);
        }
        Ok::<_, BackupError>(out)
    }))
    .await?;
    Ok(done.into_iter().flatten().collect())
}

/// Every table's count and hash in database `db` (nobody writing to it), on `jobs`
/// connections, in name order.
pub async fn tables(
    db: &Target,
    jobs: usize,
    hash: TableHash,
) -> Result<Vec<TableEntry>, BackupError> {
    let clients = connect(db, jobs, hash, None).await?;
    let tables = match clients.first() {
        Some(client) => list(client, hash).await?,
        None => Vec::new(),
    };
    let jobs = jobs.clamp(1, tables.len().max(1));
    self::hash(&clients[..jobs], tables, hash, &AtomicBool::new(false)).await
}

/// Format 5: the count and hash of each table of `copies` in database `db` (nobody writing
/// to it), printed on `jobs` connections, largest first; with the large objects' entry when
/// there are any; in name order.
pub async fn copy_lines(
    db: &Target,
    jobs: usize,
    copies: &[Copy],
) -> Result<Vec<TableEntry>, BackupError> {
    let jobs = jobs.clamp(1, copies.len().max(1));
    let clients = try_join_all((0..jobs).map(|_| async {
        let client = db.connect().await?;
        client
            .batch_execute(lines::COPY_SETTINGS)
            .await
            .map_err(|e| crate::pg("preparing a connection to hash tables".into(), e))?;
        Ok::<_, BackupError>(client)
    }))
    .await?;
    let queue: Vec<&Copy> = copies.iter().collect();
    let mut out = largest_first(
        &clients,
        queue,
        |c| c.size,
        async |client, copy| {
            let failed = |e| crate::pg(format!("hashing table {}", copy.table), e);
            let stream = client
                .copy_out(copy.statement.as_str())
                .await
                .map_err(failed)?;
            let mut stream = std::pin::pin!(stream);
            let mut lines = LineHash::new();
            while let Some(chunk) = stream.next().await {
                lines.update(&chunk.map_err(failed)?);
            }
            let (rows, hash) = lines.finish();
            Ok(TableEntry {
                name: copy.table.clone(),
                rows: i64::try_from(rows).unwrap_or(i64::MAX),
                hash,
            })
        },
    )
    .await?;
    if let Some(client) = clients.first() {
        let row = client
            .query_one(LARGE_OBJECTS_HASH, &[])
            .await
            .map_err(|e| crate::pg("hashing the large objects".into(), e))?;
        let rows: i64 = row.get(0);
        if rows > 0 {
            out.push(TableEntry {
                name: LARGE_OBJECTS.into(),
                rows,
                hash: row.get(1),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `text` (a pg_restore script) in `encoding`, in UTF-8: converted by `db`'s server when
/// it is not UTF-8 already.
pub async fn to_utf8(db: &Target, text: Vec<u8>, encoding: &str) -> Result<String, BackupError> {
    let text = match String::from_utf8(text) {
        Ok(utf8) if utf8.is_ascii() || encoding.eq_ignore_ascii_case("UTF8") => return Ok(utf8),
        Ok(utf8) => utf8.into_bytes(),
        Err(e) => e.into_bytes(),
    };
    let client = db.connect().await?;
    let row = client
        .query_one(
            "SELECT pg_catalog.convert_from($1, $2)",
            &[&text, &encoding],
        )
        .await
        .map_err(|e| crate::pg(format!("reading pg_restore's script in {encoding}"), e))?;
    Ok(row.get(0))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_hash_names_every_column_with_its_rank_as_seed() {
        let table = Table {
            name: "public.t".into(),
            bytes: 0,
            oid: 1,
            extension: false,
            columns: vec![("a".into(), 23), ("\"B c\"".into(), 25), ("d".into(), 1184)],
            large_objects: false,
        };
        let q = table.query(TableHash::Columns);
        assert!(
            q.contains("coalesce(pg_catalog.hashint4extended(t.a, 1), -1)"),
            "{q}"
        );
        assert!(
            q.contains("pg_catalog.hashtextextended(t.\"B c\"::pg_catalog.text COLLATE \"C\", 2)"),
            "{q}"
        );
        assert!(q.contains("t.d AT TIME ZONE 'UTC', 3"), "{q}");
        assert!(q.ends_with("FROM ONLY public.t AS t"), "{q}");
        let empty = Table {
            columns: Vec::new(),
            ..table.clone()
        };
        assert!(
            empty
                .query(TableHash::Columns)
                .contains("sum(0::pg_catalog.int8)")
        );
        assert_eq!(
            table.query(TableHash::RowText),
            ROW_TEXT_HASH.replace("{}", "public.t")
        );
        assert_eq!(TableHash::of_format(1), TableHash::RowText);
        assert_eq!(TableHash::of_format(2), TableHash::RowText);
        assert_eq!(TableHash::of_format(3), TableHash::Columns);
        assert_eq!(TableHash::of_format(4), TableHash::ColumnsAndLargeObjects);
        assert_eq!(TableHash::of_format(5), TableHash::CopyLines);
    }
}
