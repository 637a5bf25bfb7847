//! `manifest.json`: what a backup holds, written last. Its format is documented in
//! docs/backup.md and versioned by [`FORMAT_VERSION`]; a reader refuses a version it does
//! not know rather than guess.

use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::BackupError;
pub use goodgo_db::admin::TextSettings;

/// The manifest's file name, inside the backup's folder.
pub const MANIFEST: &str = "manifest.json";
/// The verification record's file name, inside the backup's folder.
pub const VERIFIED: &str = "verified.json";
/// The format this version writes, the newest it reads: 2 is 1 plus `encryption`; 3 hashes
/// tables another way ([`crate::stats::TableHash`]), encrypted or not; 4 is 3 plus
/// `locale`; 5 hashes the tables' `COPY` lines ([`crate::lines`]). Older backups are read
/// (and their tables hashed) as their version says.
pub const FORMAT_VERSION: u32 = 5;
/// The oldest format this version reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `"goodgo-backup"`.
    pub format: String,
    pub format_version: u32,
    /// `YYYYMMDDTHHMMSSZ-xxxxxx`: the start time (UTC) and six random hex digits.
    pub id: String,
    pub database: String,
    /// `SHOW server_version` of the dumped server.
    pub server_version: String,
    /// `pg_dump --version` of the program that made the dump.
    pub pg_dump_version: String,
    /// The git commit of the workspace the backup was made from, when it is a repository.
    pub git_commit: Option<String>,
    /// The newest applied migration (`V{n}__{name}`), when the database has any.
    pub migration_head: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    /// How data files are compressed: `"zstd"`, each `NNNN.dat` stored as `NNNN.dat.zst`.
    pub compression: String,
    /// Format 2: how every file is encrypted (after compression), and to whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Formats 4 and 5: the dumped database's encoding and locale, which the database a restore
    /// creates is given (its text is then restored byte for byte, and hashes the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<TextSettings>,
    /// Every file of the backup but the manifest itself, sorted by path.
    pub files: Vec<FileEntry>,
    /// Every table of the dumped database, sorted by name.
    pub tables: Vec<TableEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the backup's folder, `/`-separated.
    pub path: String,
    /// Bytes as stored.
    pub size: u64,
    /// SHA-256 of the bytes as stored, lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    /// `schema.table`, as `quote_ident` writes each part.
    pub name: String,
    pub rows: i64,
    /// The table's content hash, computed by the server (see [`crate::stats`]).
    pub hash: String,
}

/// How a backup's files are encrypted: `age`, each stored file `F` as the age file
/// `F.age`, to every recipient listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// Always `"age"`.
    pub scheme: String,
    /// The X25519 public keys (`age1…`) any of whose identities opens every file.
    pub recipients: Vec<String>,
}

/// `verified.json`: the last successful verification of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    pub verified_at: String,
    /// Whether it was restored (row counts and table hashes compared) or only checksummed.
    pub restored: bool,
    pub took_ms: u64,
    /// What `goodgo db status` found in the restored database (verifications by restore
    /// given the workspace's migrations; absent in older `verified.json` files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrations: Option<MigrationCheck>,
}

/// The restored database's migration history against the workspace's migration files,
/// as `goodgo db status` compares them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationCheck {
    /// The newest applied migration (`V{n}__{name}`) in the restored database.
    pub head: Option<String>,
    pub applied: usize,
    /// In the workspace, not in the backup (the backup is older than the workspace).
    pub pending: usize,
    /// Applied in the backup from a file that has changed since (`V{n}__{name}`).
    pub divergent: Vec<String>,
    /// Applied in the backup, without a file in the workspace (`V{n}__{name}`).
    pub missing: Vec<String>,
}

impl MigrationCheck {
    /// Whether the workspace's migrations can run against the restored database as they
    /// would against the source (nothing divergent or missing).
    pub fn consistent(&self) -> bool {
        self.divergent.is_empty() && self.missing.is_empty()
    }
}

/// What a backup holds, for people: its tables and their rows, and its large objects
/// (the [`LARGE_OBJECTS`](crate::stats::LARGE_OBJECTS) entry is not a table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contents {
    pub tables: usize,
    pub rows: i64,
    pub large_objects: i64,
}

impl std::fmt::Display for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: i64| if n == 1 { "" } else { "s" };
        let tables = self.tables as i64;
        write!(
            f,
            "{tables} table{}, {} row{}",
            plural(tables),
            self.rows,
            plural(self.rows)
        )?;
        if self.large_objects > 0 {
            let n = self.large_objects;
            write!(f, ", {n} large object{}", plural(n))?;
        }
        Ok(())
    }
}

impl Manifest {
    /// Its tables, rows and large objects.
    pub fn contents(&self) -> Contents {
        let (objects, tables): (Vec<&TableEntry>, Vec<&TableEntry>) = self
            .tables
            .iter()
            .partition(|t| t.name == crate::stats::LARGE_OBJECTS);
        Contents {
            tables: tables.len(),
            rows: tables.iter().map(|t| t.rows).sum(),
            large_objects: objects.iter().map(|t| t.rows).sum(),
        }
    }

    /// Every byte stored, the manifest aside.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    pub fn read(path: &Path) -> Result<Manifest, BackupError> {
        let text = std::fs::read(path).map_err(|e| {
            BackupError::read_failed(path, e, |path| BackupError::Manifest {
                path,
                message: "the file is missing".into(),
            })
        })?;
        Manifest::parse(path, &text)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest, BackupError> {
        let bad = |message: String| BackupError::Manifest {
            path: path.to_path_buf(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64);
        if value.get("format").and_then(serde_json::Value::as_str) != Some("goodgo-backup") {
            return Err(bad("`format` is not \"goodgo-backup\"".into()));
        }
        let known = u64::from(OLDEST_FORMAT_VERSION)..=u64::from(FORMAT_VERSION);
        if !version.is_some_and(|v| known.contains(&v)) {
            return Err(bad(format!(
                "format_version {} is not one this goodgo reads ({OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})",
                version.map_or("missing".into(), |v| v.to_string())
            )));
        }
        let manifest: Manifest = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        if !manifest.consistent() {
            let (field, present) = if manifest.locale.is_some() != (manifest.format_version >= 4) {
                ("locale", manifest.locale.is_some())
            } else {
                ("encryption", manifest.encryption.is_some())
            };
            return Err(bad(format!(
                "format_version {} with{} `{field}`",
                manifest.format_version,
                if present { "" } else { "out" }
            )));
        }
        Ok(manifest)
    }

    /// Whether `format_version` agrees with what the manifest holds: version 1 has no
    /// `encryption`, version 2 always has one, version 3 either; only version 4 has (and
    /// always has) `locale`.
    pub fn consistent(&self) -> bool {
        let encryption = match self.format_version {
            1 => self.encryption.is_none(),
            2 => self.encryption.is_some(),
            _ => true,
        };
        encryption && self.locale.is_some() == (self.format_version >= 4)
    }

    /// How this backup's table hashes were computed.
    pub fn table_hash(&self) -> crate::stats::TableHash {
        crate::stats::TableHash::of_format(self.format_version)
    }

    /// The manifest as stored: pretty JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn started(&self) -> Option<OffsetDateTime> {
        parse_time(&self.started_at)
    }
}

/// A new backup id for a backup started at `at`: `20261201T223515Z-3fa9c1`.
pub fn new_id(at: OffsetDateTime) -> String {
    let mut random = [0u8; 3];
    // The time already orders ids; the random part only separates concurrent runs, and a
    // clash is caught when the folder is renamed into place.
    let _ = getrandom::fill(&mut random);
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:02x}{:02x}{:02x}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        random[0],
        random[1],
        random[2]
    )
}

pub fn format_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_differ() {
        let t = OffsetDateTime::from_unix_timestamp(1_796_000_000).expect("time");
        let a = new_id(t);
        let b = new_id(t);
        assert!(a.starts_with("20261130T"), "{a}");
        assert_eq!(a.len(), "20261201T223515Z-3fa9c1".len());
        assert_eq!(a[..17], b[..17]);
        let later = new_id(t + time::Duration::seconds(1));
        assert!(later > a);
    }

    #[test]
    fn truncated_and_foreign_manifests_are_refused() {
        let path = Path::new("b/manifest.json");
        let err = Manifest::parse(path, b"{\"format\": \"goodgo-backup\", \"format_ver")
            .expect_err("truncated");
        assert!(err.to_string().starts_with("b/manifest.json: "), "{err}");
        let err = Manifest::parse(path, br#"{"format":"goodgo-backup","format_version":9}"#)
            .expect_err("future");
        assert!(err.to_string().contains("format_version 9"), "{err}");
    }

    fn sample(version: u32, encrypted: bool) -> Manifest {
        let encryption = encrypted.then(|| Encryption {
            scheme: "age".into(),
            recipients: vec!["age1x".into()],
        });
        Manifest {
            format: "goodgo-backup".into(),
            format_version: version,
            id: "20260101T000000Z-aaaaaa".into(),
            database: "app".into(),
            server_version: "15".into(),
            pg_dump_version: "pg_dump 15".into(),
            git_commit: None,
            migration_head: None,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            finished_at: "2026-01-01T00:00:01.000Z".into(),
            compression: "zstd".into(),
            encryption,
            locale: (version >= 4).then(|| TextSettings {
                encoding: "UTF8".into(),
                lc_collate: "C".into(),
                lc_ctype: "C.UTF-8".into(),
                provider: None,
                provider_locale: None,
            }),
            files: Vec::new(),
            tables: Vec::new(),
        }
    }

    #[test]
    fn every_version_reads_back_and_says_how_its_tables_were_hashed() {
        use crate::stats::TableHash;
        let path = Path::new("manifest.json");
        for (version, encrypted, hash) in [
            (1, false, TableHash::RowText),
            (2, true, TableHash::RowText),
            (3, false, TableHash::Columns),
            (3, true, TableHash::Columns),
            (4, false, TableHash::ColumnsAndLargeObjects),
            (4, true, TableHash::ColumnsAndLargeObjects),
            (5, false, TableHash::CopyLines),
            (5, true, TableHash::CopyLines),
        ] {
            let m = sample(version, encrypted);
            let text = String::from_utf8(m.to_bytes()).expect("utf-8");
            assert!(
                text.contains(&format!("\"format_version\": {version}")),
                "{text}"
            );
            assert_eq!(text.contains("encryption"), encrypted, "{text}");
            let read = Manifest::parse(path, text.as_bytes()).expect("reads");
            assert_eq!(read, m);
            assert_eq!(read.table_hash(), hash);
        }
        // A version that does not match what the manifest holds is refused.
        let err = Manifest::parse(path, &sample(1, true).to_bytes()).expect_err("v1 encrypted");
        assert!(err.to_string().contains("with `encryption`"), "{err}");
        let err = Manifest::parse(path, &sample(2, false).to_bytes()).expect_err("v2 plain");
        assert!(err.to_string().contains("without `encryption`"), "{err}");
        let mut v3_with_locale = sample(4, false);
        v3_with_locale.format_version = 3;
        let err = Manifest::parse(path, &v3_with_locale.to_bytes()).expect_err("v3 locale");
        assert!(
            err.to_string().contains("format_version 3 with `locale`"),
            "{err}"
        );
        let mut v4_without = sample(4, false);
        v4_without.locale = None;
        let err = Manifest::parse(path, &v4_without.to_bytes()).expect_err("v4 no locale");
        assert!(
            err.to_string()
                .contains("format_version 4 without `locale`"),
            "{err}"
        );
        let mut future = sample(5, false);
        future.format_version = 6;
        let err = Manifest::parse(path, &future.to_bytes()).expect_err("future");
        assert!(err.to_string().contains("format_version 6"), "{err}");
    }
}
