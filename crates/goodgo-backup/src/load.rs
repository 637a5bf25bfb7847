//! A restore's largest tables, loaded on several connections at once.
//!
//! `pg_restore --jobs` loads each table in one `COPY`, on one connection: a database that is
//! mostly one big table restores no faster with more jobs. A data file of pg_dump's is the
//! text of a `COPY … FROM stdin`, a row a line; so the rows of a big table are dealt out,
//! a few megabytes of whole lines at a time, to `--jobs` connections that each run that
//! same `COPY`, while pg_restore loads every other table. The statement and its session
//! settings are pg_restore's own: it prints them for the table's entry from a copy of the
//! dump whose data file is empty. A table whose statement is not in the plain form this
//! expects (a `COPY` preceded by `SET`s), or whose data is not in UTF-8, stays pg_restore's.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use futures_util::future::try_join_all;
use goodgo_db::admin::Target;

use crate::lines::LineHash;
use crate::{BackupError, Tools, tool_output};

/// A table's data file at least this large is loaded on several connections.
pub const SPLIT_BYTES: u64 = 32 << 20;
/// How many bytes of whole rows a connection is handed at a time.
const CHUNK: usize = 1 << 20;

/// A table whose rows goodgo loads itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigTable {
    /// Its line in `pg_restore --list`.
    pub line: String,
    /// The data file's dump id (`ID.dat`).
    pub id: String,
    /// The data file, decompressed.
    pub path: PathBuf,
    pub size: u64,
}

/// What pg_restore runs to load a table: its session settings, then the `COPY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub settings: String,
    pub copy: String,
}

impl Script {
    /// The table the `COPY` loads, as the statement names it (quoted where needed).
    pub fn table(&self) -> &str {
        let target = self.copy.strip_prefix("COPY ").unwrap_or(&self.copy);
        let mut quoted = false;
        for (i, c) in target.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ' ' if !quoted => return &target[..i],
                _ => {}
            }
        }
        target
    }
}

/// A `TABLE DATA` entry of a `pg_restore --list`: a table's data file, `ID.dat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEntry {
    /// Its line in the list.
    pub line: String,
    /// The dump id.
    pub id: String,
    /// The table's OID in the database it was dumped from.
    pub oid: u32,
}

/// The `TABLE DATA` entries of `list` (pg_restore's `--list`), in its order.
pub fn data_entries(list: &str) -> Vec<DataEntry> {
    list.lines()
        .filter_map(|line| {
            let (id, rest) = line.split_once(';')?;
            let id = id.trim();
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // `ID; CATALOG-OID OID TABLE DATA SCHEMA NAME OWNER`
            let mut words = rest.split_whitespace().skip(1);
            let oid = words.next()?.parse().ok()?;
            if (words.next(), words.next()) != (Some("TABLE"), Some("DATA")) {
                return None;
            }
            Some(DataEntry {
                line: line.to_string(),
                id: id.to_string(),
                oid,
            })
        })
        .collect()
}

/// The `TABLE DATA` entries of `list` (pg_restore's `--list` of the dump in `dump`) whose
/// data file is at least [`SPLIT_BYTES`], largest first.
pub fn big_tables(list: &str, dump: &Path) -> Vec<BigTable> {
    let mut big: Vec<BigTable> = data_entries(list)
        .into_iter()
        .filter_map(|entry| {
            let path = dump.join(format!("{}.dat", entry.id));
            let size = std::fs::metadata(&path).ok().filter(|m| m.is_file())?.len();
            (size >= SPLIT_BYTES).then_some(BigTable {
                line: entry.line,
                id: entry.id,
                path,
                size,
            })
        })
        .collect();
    big.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));
    big
}

/// A table's `COPY … TO STDOUT`, with the columns its data file has, in its order, in the
/// dump's encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// `schema.table`, quoted where needed.
    pub table: String,
    pub statement: String,
    /// Its data file's size (0 when unknown): the largest are hashed first.
    pub size: u64,
}

/// A copy of a dump whose data files are all empty, in a scratch folder of goodgo's
/// (removed with it): pg_restore prints from it the script of any entry, its settings and
/// its `COPY`, without reading a row.
pub struct EmptyDump {
    scratch: tempfile::TempDir,
    dir: PathBuf,
}

impl EmptyDump {
    /// The empty copy of the dump in `dump`, `list` being its `pg_restore --list`.
    pub fn new(dump: &Path, list: &str) -> Result<EmptyDump, BackupError> {
        let scratch = tempfile::Builder::new()
            .prefix(".goodgo-restore-")
            .tempdir()
            .map_err(|e| BackupError::io("creating a folder in", std::env::temp_dir(), e))?;
        let dir = scratch.path().join("empty");
        std::fs::create_dir_all(&dir).map_err(|e| BackupError::io("creating", &dir, e))?;
        let toc = dir.join("toc.dat");
        std::fs::copy(dump.join("toc.dat"), &toc)
            .map_err(|e| BackupError::io("creating", &toc, e))?;
        for entry in data_entries(list) {
            let file = dir.join(format!("{}.dat", entry.id));
            std::fs::write(&file, b"").map_err(|e| BackupError::io("creating", &file, e))?;
        }
        Ok(EmptyDump { scratch, dir })
    }

    /// The scratch folder, for goodgo's other files.
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// pg_restore's script of the entries `lines` (lines of the dump's `--list`), in the
    /// dump's encoding.
    fn script<'a>(
        &self,
        tools: &Tools,
        lines: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<u8>, BackupError> {
        let mut only = String::new();
        for line in lines {
            only.push_str(line);
            only.push('\n');
        }
        let listed = self.scratch().join("entries.list");
        std::fs::write(&listed, only).map_err(|e| BackupError::io("creating", &listed, e))?;
        let mut command = std::process::Command::new(&tools.pg_restore);
        command
            .arg("--file=-")
            .arg("--use-list")
            .arg(&listed)
            .arg(&self.dir);
        tool_output(command, "pg_restore")
    }
}

/// pg_restore's script of the `COPY … FROM stdin` of every table of the dump whose empty
/// copy is `empty` (`list` being its `pg_restore --list`), in the dump's encoding; with the
/// entries, in the order the script has them.
pub fn copy_script(
    tools: &Tools,
    empty: &EmptyDump,
    list: &str,
) -> Result<(Vec<u8>, Vec<DataEntry>), BackupError> {
    let entries = data_entries(list);
    let script = empty.script(tools, entries.iter().map(|e| e.line.as_str()))?;
    Ok((script, entries))
}

/// The encoding a pg_restore script sets (`SET client_encoding = '…';`), UTF8 if none.
pub fn script_encoding(script: &[u8]) -> String {
    script
        .split(|b| *b == b'\n')
        .find_map(|line| {
            let e = line.strip_prefix(b"SET client_encoding = '")?;
            let e = e.strip_suffix(b"';")?;
            std::str::from_utf8(e).ok().map(str::to_string)
        })
        .unwrap_or_else(|| "UTF8".into())
}

/// How each table of `script` (from [`copy_script`], in UTF-8, for `entries` of the dump in
/// `dump` whose encoding is `encoding`) prints its rows as its data file holds them: each
/// `COPY … FROM stdin` becomes a `COPY … TO STDOUT` printing in that encoding, as pg_dump
/// did.
pub fn copies(
    script: &str,
    entries: &[DataEntry],
    dump: &Path,
    encoding: &str,
) -> Result<Vec<Copy>, BackupError> {
    let statements = parse_copies(script, encoding);
    if statements.len() != entries.len() {
        return Err(BackupError::Tool {
            program: "pg_restore".into(),
            message: format!(
                "printed {} COPY statements for the dump's {} tables' data",
                statements.len(),
                entries.len()
            ),
        });
    }
    // pg_restore follows the list's order.
    Ok(entries
        .iter()
        .zip(statements)
        .map(|(entry, (table, statement))| Copy {
            table,
            statement,
            size: std::fs::metadata(dump.join(format!("{}.dat", entry.id))).map_or(0, |m| m.len()),
        })
        .collect())
}

/// The `COPY … FROM stdin` statements of a pg_restore script as `(table, COPY … TO STDOUT
/// (ENCODING 'encoding'))`.
fn parse_copies(script: &str, encoding: &str) -> Vec<(String, String)> {
    let encoding = encoding.replace('\'', "''");
    script
        .lines()
        .filter_map(|line| {
            let copy = line.strip_prefix("COPY ")?.strip_suffix(" FROM stdin;")?;
            let script = Script {
                settings: String::new(),
                copy: format!("COPY {copy}"),
            };
            Some((
                script.table().to_string(),
                format!("COPY {copy} TO STDOUT (ENCODING '{encoding}')"),
            ))
        })
        .collect()
}

/// `list` with the entries of `big` commented out, for `pg_restore --use-list`.
pub fn without<'a>(list: &str, big: impl IntoIterator<Item = &'a BigTable>) -> String {
    let big: Vec<&str> = big.into_iter().map(|b| b.line.as_str()).collect();
    let mut out = String::with_capacity(list.len() + big.len());
    for line in list.lines() {
        if big.contains(&line) {
            out.push(';');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The settings and `COPY` of pg_restore's script for one table's data (its `--file -`
/// output for that entry alone, the data file being empty); `None` unless it is only
/// `SET`s (and `set_config`s), in UTF-8, then one `COPY … FROM stdin;`.
pub fn parse_script(script: &str) -> Option<Script> {
    let mut settings = String::new();
    for line in script.lines() {
        let line = line.trim_end();
        // Comments, blank lines and psql's meta-commands (`\restrict`…).
        if line.is_empty() || line.starts_with("--") || line.starts_with('\\') {
            continue;
        }
        if line.starts_with("COPY ") && line.ends_with(" FROM stdin;") {
            let copy = line.strip_suffix(';')?.to_string();
            return Some(Script { settings, copy });
        }
        let setting = line.starts_with("SET ") || line.starts_with("SELECT pg_catalog.set_config(");
        if !setting || !line.ends_with(';') {
            return None;
        }
        if let Some(encoding) = line.strip_prefix("SET client_encoding = ") {
            // Connections speak UTF-8; data in another encoding stays pg_restore's.
            if !encoding.eq_ignore_ascii_case("'UTF8';") {
                return None;
            }
            continue;
        }
        settings.push_str(line);
        settings.push('\n');
    }
    None
}

/// pg_restore's script for each of `big`, printed from the dump's empty copy `empty`; the
/// tables it has none for in the expected form are left out.
pub fn scripts(
    tools: &Tools,
    empty: &EmptyDump,
    big: Vec<BigTable>,
) -> Result<Vec<(BigTable, Script)>, BackupError> {
    let mut found = Vec::new();
    for table in big {
        let output = empty.script(tools, [table.line.as_str()])?;
        if let Some(script) = std::str::from_utf8(&output).ok().and_then(parse_script) {
            found.push((table, script));
        }
    }
    Ok(found)
}

/// Loads the rows of `table` into `target` with `script` on `connections` connections at
/// once: how many rows the server took (the sum of its `COPY` counts), and the count and
/// hash (format 5's, [`LineHash`]) of the lines each connection sent.
pub async fn load(
    target: &Target,
    table: &BigTable,
    script: &Script,
    connections: usize,
) -> Result<(u64, LineHash), BackupError> {
    let connections = connections.max(1);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(connections * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let path = table.path.clone();
    let reader = tokio::task::spawn_blocking(move || deal(&path, &tx));
    let place = &table.path;
    let loaders = (0..connections).map(|_| {
        let rx = Arc::clone(&rx);
        async move {
            let failed = |e| crate::pg(format!("loading the rows of {}", place.display()), e);
            let client = target.connect().await?;
            client
                .batch_execute(&script.settings)
                .await
                .map_err(failed)?;
            let sink = client
                .copy_in::<_, Bytes>(script.copy.as_str())
                .await
                .map_err(failed)?;
            let mut sink = std::pin::pin!(sink);
            let mut lines = LineHash::new();
            loop {
                let next = rx.lock().await.recv().await;
                match next {
                    Some(Ok(chunk)) => {
                        // Whole lines: each connection's count and hash stand alone.
                        lines.update(&chunk);
                        sink.send(chunk).await.map_err(failed)?
                    }
                    // The file could not be read: the rows of this connection are not
                    // committed (its COPY ends with the connection).
                    Some(Err(e)) => return Err(BackupError::io("reading", place, e)),
                    None => break,
                }
            }
            let rows = sink.as_mut().finish().await.map_err(failed)?;
            Ok::<_, BackupError>((rows, lines))
        }
    });
    let loaded = try_join_all(loaders).await;
    // The reader stops once every connection has stopped taking its chunks.
    let _ = reader.await;
    let mut rows = 0;
    let mut lines = LineHash::new();
    for (taken, sent) in loaded? {
        rows += taken;
        lines.absorb(sent);
    }
    Ok((rows, lines))
}

/// Reads the data file at `path` in chunks of whole lines up to its end-of-data line
/// (`\.`), and sends them (or the read's failure) to `tx` until it is closed.
fn deal(path: &Path, tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) {
    let fail = |e| {
        let _ = tx.blocking_send(Err(e));
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let mut carry = BytesMut::new();
    let mut ended = false;
    while !ended {
        let mut buf = BytesMut::with_capacity(CHUNK + carry.len());
        buf.extend_from_slice(&carry);
        let start = buf.len();
        buf.resize(start + CHUNK, 0);
        let mut filled = start;
        // Fill the buffer (a read may return less than asked).
        loop {
            match file.read(&mut buf[filled..]) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return fail(e),
            }
        }
        buf.truncate(filled);
        // Whole lines only; the rest goes with the next chunk.
        carry = match (ended, memchr::memrchr(b'\n', &buf)) {
            (false, Some(last)) => buf.split_off(last + 1),
            _ => BytesMut::new(),
        };
        if let Some(end) = end_of_data(&buf) {
            buf.truncate(end);
            ended = true;
        }
        if !buf.is_empty() && tx.blocking_send(Ok(buf.freeze())).is_err() {
            return;
        }
    }
}

/// Where the end-of-data line (`\.`) starts in `lines` (whole lines of a data file), if it
/// is there. A row's line never is `\.`: a backslash in a value is written `\\`.
fn end_of_data(lines: &[u8]) -> Option<usize> {
    if lines == b"\\." || lines.starts_with(b"\\.\n") || lines.starts_with(b"\\.\r\n") {
        return Some(0);
    }
    let finder = memchr::memmem::find_iter(lines, b"\n\\.");
    for at in finder {
        let rest = &lines[at + 3..];
        if rest.is_empty() || rest.starts_with(b"\n") || rest.starts_with(b"\r\n") {
            return Some(at + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_data_line_is_found_and_nothing_else() {
        assert_eq!(end_of_data(b"1\ta\n2\tb\n\\.\n\n"), Some(8));
        assert_eq!(end_of_data(b"\\.\n"), Some(0));
        assert_eq!(end_of_data(b"1\ta\n\\."), Some(4));
        // An escaped backslash followed by a dot is a value, not the end.
        assert_eq!(end_of_data(b"1\t\\\\.\n2\t\\.x\n"), None);
        assert_eq!(end_of_data(b"1\ta\n"), None);
    }

    #[test]
    fn only_big_table_data_entries_are_taken_largest_first() {
        let dir = tempfile::tempdir().unwrap();
        let sized = |name: &str, len: u64| {
            let f = std::fs::File::create(dir.path().join(name)).unwrap();
            f.set_len(len).unwrap();
        };
        sized("3358.dat", SPLIT_BYTES + 10);
        sized("3359.dat", SPLIT_BYTES * 2);
        sized("3356.dat", 100);
        sized("3360.dat", SPLIT_BYTES * 3);
        let list = ";\n; Archive created at 2026-12-02\n\
            217; 1259 16390 TABLE public pgbench_accounts postgres\n\
            3356; 0 16385 TABLE DATA public pgbench_history postgres\n\
            3358; 0 16391 TABLE DATA public pgbench_accounts postgres\n\
            3359; 0 16394 TABLE DATA public \"odd name\" postgres\n\
            ;3360; 0 16395 TABLE DATA public commented postgres\n\
            3361; 0 16396 TABLE DATA public missing postgres\n";
        let big = big_tables(list, dir.path());
        let ids: Vec<&str> = big.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["3359", "3358"]);
        let rest = without(list, &big);
        assert!(rest.contains("\n;3358; 0 16391 TABLE DATA public pgbench_accounts"));
        assert!(rest.contains("\n;3359; 0 16394 TABLE DATA public \"odd name\""));
        assert!(rest.contains("\n3356; 0 16385 TABLE DATA public pgbench_history"));
        assert_eq!(rest.lines().count(), list.lines().count());
    }

    #[test]
    fn every_copy_of_a_script_becomes_a_copy_to_stdout() {
        let script = "SET client_encoding = 'LATIN1';\nSET standard_conforming_strings = on;\n\
            --\n-- Data for Name: t\n--\n\n\
            COPY public.t (a, \"b c\") FROM stdin;\n\\.\n\n\
            COPY \"odd schema\".\"x y\"  FROM stdin;\n\\.\n";
        assert_eq!(script_encoding(script.as_bytes()), "LATIN1");
        assert_eq!(script_encoding(b"COPY t FROM stdin;\n"), "UTF8");
        assert_eq!(
            parse_copies(script, "LATIN1"),
            [
                (
                    "public.t".to_string(),
                    "COPY public.t (a, \"b c\") TO STDOUT (ENCODING 'LATIN1')".to_string()
                ),
                (
                    "\"odd schema\".\"x y\"".to_string(),
                    "COPY \"odd schema\".\"x y\"  TO STDOUT (ENCODING 'LATIN1')".to_string()
                )
            ]
        );
        let entries = data_entries(
            "217; 1259 16390 TABLE public t postgres\n3356; 0 16385 TABLE DATA public t postgres\n;3357; 0 16386 TABLE DATA public u postgres\n",
        );
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].id.as_str(), entries[0].oid), ("3356", 16385));
    }

    #[test]
    fn pg_restore_s_script_gives_settings_and_copy_or_nothing() {
        let script = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n\
            SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n\
            SELECT pg_catalog.set_config('search_path', '', false);\nSET row_security = off;\n\n\
            --\n-- Data for Name: t; Type: TABLE DATA\n--\n\n\
            COPY public.t (a, \"b c\") FROM stdin;\n\\.\n\n\\unrestrict abc\n";
        let parsed = parse_script(script).unwrap();
        assert_eq!(parsed.copy, "COPY public.t (a, \"b c\") FROM stdin");
        assert_eq!(parsed.table(), "public.t");
        let spaced = Script {
            settings: String::new(),
            copy: "COPY \"my schema\".\"a \"\"b\"\" c\" (x) FROM stdin".into(),
        };
        assert_eq!(spaced.table(), "\"my schema\".\"a \"\"b\"\" c\"");
        assert_eq!(
            parsed.settings,
            "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\nSET row_security = off;\n"
        );
        let latin = script.replace("'UTF8'", "'LATIN1'");
        assert_eq!(parse_script(&latin), None);
        let other = script.replace("SET row_security = off;", "TRUNCATE public.t;");
        assert_eq!(parse_script(&other), None);
        assert_eq!(parse_script("SET a = 1;\n"), None);
    }
}
