//! Comparing schemas: `pg_dump --schema-only` output, normalised so that only real
//! differences remain, and a unified diff of two of them; and [`verify`], which compares a
//! database with what its migrations build.
//!
//! Both sides of a comparison are dumped by the same `pg_dump` from the same server (the
//! expected side is a scratch database built there), so that nothing the server's or the
//! tool's build decides shows up as drift; [`normalize`] drops what still differs without
//! being schema (comments, session settings, per-column planner and compression options).

use std::path::Path;

use crate::DbError;
use crate::admin::{Scratch, Target};
use crate::migrations::MigrationFile;

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The normalised schema the migrations build.
    pub expected: String,
    /// The normalised schema of the database.
    pub actual: String,
}

impl Verified {
    /// A unified diff from the migrations' schema to the database's, or `None` when they
    /// are the same.
    pub fn drift(&self, database_name: &str) -> Option<String> {
        diff(
            &self.expected,
            &self.actual,
            "migrations (fresh database)",
            &format!("{database_name} (target)"),
        )
    }
}

/// Builds a scratch database from `files` on `target`'s server (with the same `pg_dump`,
/// so both dumps come from one server and one tool), dumps it and `target`, and drops the
/// scratch database again, also when a step failed.
pub async fn verify(
    pg_dump: &Path,
    target: &Target,
    files: &[MigrationFile],
) -> Result<Verified, DbError> {
    let scratch = Scratch::create(target, "goodgo_verify", None).await?;
    let outcome = async {
        let mut client = scratch.target.connect().await?;
        crate::runner::migrate(&mut client, files, None, &|_| {}).await?;
        drop(client);
        let expected = dump_schema(pg_dump, &scratch.target)?;
        let actual = dump_schema(pg_dump, target)?;
        Ok::<_, DbError>(Verified { expected, actual })
    }
    .await;
    let dropped = scratch.remove().await;
    let verified = outcome?;
    dropped?;
    Ok(verified)
}

/// Runs `pg_dump --schema-only` on `target` and returns its normalised text.
pub fn dump_schema(pg_dump: &Path, target: &Target) -> Result<String, DbError> {
    let out = target
        .libpq_command(pg_dump)
        .args(["--schema-only", "--no-owner", "--no-privileges"])
        .output()
        .map_err(|source| DbError::Tool {
            tool: pg_dump.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(DbError::ToolFailed {
            tool: "pg_dump".into(),
            url: target.redacted(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(normalize(&String::from_utf8_lossy(&out.stdout)))
}

/// Drops what differs between two dumps of the same schema: comments, session settings,
/// blank lines, the dump tool's banner and `\restrict` keys, and per-column options that
/// are not schema: planner options (`ALTER COLUMN … SET (n_distinct=…)`) and the
/// compression method, which builds of the same PostgreSQL set differently.
pub fn normalize(dump: &str) -> String {
    let mut out = String::new();
    for line in dump.lines() {
        let t = line.trim_end();
        if t.is_empty()
            || t.starts_with("--")
            || t.starts_with("SET ")
            || t.starts_with("SELECT pg_catalog.set_config(")
            || t.starts_with("\\restrict")
            || t.starts_with("\\unrestrict")
            || is_column_option(t)
        {
            continue;
        }
        out.push_str(t);
        out.push('\n');
    }
    out
}

/// `ALTER [FOREIGN] TABLE [ONLY] t ALTER COLUMN c SET (…)`, `RESET (…)` or
/// `SET COMPRESSION …`: how pg_dump writes a column's planner options and compression.
fn is_column_option(line: &str) -> bool {
    let Some(rest) = line
        .strip_prefix("ALTER TABLE ")
        .or_else(|| line.strip_prefix("ALTER FOREIGN TABLE "))
    else {
        return false;
    };
    let Some((_, action)) = rest.split_once(" ALTER COLUMN ") else {
        return false;
    };
    // The column's name may be quoted and contain spaces: the action follows its end.
    let action = match action.strip_prefix('"') {
        Some(quoted) => quoted_tail(quoted),
        None => action.split_once(' ').map_or("", |(_, tail)| tail),
    };
    action.starts_with("SET (")
        || action.starts_with("RESET (")
        || action.starts_with("SET COMPRESSION ")
}

/// What follows a double-quoted identifier whose opening quote is already consumed.
fn quoted_tail(s: &str) -> &str {
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            if chars.peek().is_some_and(|(_, n)| *n == '"') {
                chars.next();
                continue;
            }
            return s[i + 1..].trim_start();
        }
    }
    ""
}

/// A unified diff from `expected` to `actual`, or `None` when they are the same.
pub fn diff(
    expected: &str,
    actual: &str,
    expected_name: &str,
    actual_name: &str,
) -> Option<String> {
    if expected == actual {
        return None;
    }
    let diff = similar::TextDiff::from_lines(expected, actual);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(expected_name, actual_name)
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_drops_noise_only() {
        let dump = "--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\n\nCREATE TABLE t (\n    id integer\n);\n";
        assert_eq!(normalize(dump), "CREATE TABLE t (\n    id integer\n);\n");
    }

    #[test]
    fn column_options_are_not_schema() {
        let dump = "CREATE TABLE public.t (\n    id integer,\n    \"a \"\"b\" text\n);\n\
            ALTER TABLE ONLY public.t ALTER COLUMN id SET (n_distinct=100);\n\
            ALTER TABLE ONLY public.t ALTER COLUMN \"a \"\"b\" SET (n_distinct=-1);\n\
            ALTER TABLE ONLY public.t ALTER COLUMN \"a \"\"b\" SET COMPRESSION lz4;\n\
            ALTER TABLE ONLY public.t ALTER COLUMN id SET STATISTICS 500;\n\
            ALTER TABLE ONLY public.t ALTER COLUMN id SET DEFAULT 1;\n\
            ALTER TABLE ONLY public.t ALTER COLUMN \"SET (\" SET NOT NULL;\n";
        assert_eq!(
            normalize(dump),
            "CREATE TABLE public.t (\n    id integer,\n    \"a \"\"b\" text\n);\n\
            ALTER TABLE ONLY public.t ALTER COLUMN id SET STATISTICS 500;\n\
            ALTER TABLE ONLY public.t ALTER COLUMN id SET DEFAULT 1;\n\
            ALTER TABLE ONLY public.t ALTER COLUMN \"SET (\" SET NOT NULL;\n"
        );
    }

    #[test]
    fn diff_shows_the_added_column() {
        let a = "CREATE TABLE t (\n    id integer\n);\n";
        let b = "CREATE TABLE t (\n    id integer,\n    extra text\n);\n";
        let d = diff(a, b, "migrations", "database").unwrap_or_default();
        assert!(d.contains("+    extra text"), "{d}");
        assert!(diff(a, a, "x", "y").is_none());
    }
}
