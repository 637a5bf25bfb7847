//! Comparing schemas: `pg_dump --schema-only` output, normalised so that only real
//! differences remain, and a unified diff of two of them.

use std::path::Path;
use std::process::Command;

use crate::DbError;
use crate::admin::Target;

/// Runs `pg_dump --schema-only` on `target` and returns its normalised text.
pub fn dump_schema(pg_dump: &Path, target: &Target) -> Result<String, DbError> {
    let (args, password) = target.libpq_args();
    let mut cmd = Command::new(pg_dump);
    cmd.args(["--schema-only", "--no-owner", "--no-privileges"])
        .args(args);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd.output().map_err(|source| DbError::Tool {
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
/// blank lines, and the dump tool's version banner.
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
        {
            continue;
        }
        out.push_str(t);
        out.push('\n');
    }
    out
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
    fn diff_shows_the_added_column() {
        let a = "CREATE TABLE t (\n    id integer\n);\n";
        let b = "CREATE TABLE t (\n    id integer,\n    extra text\n);\n";
        let d = diff(a, b, "migrations", "database").unwrap_or_default();
        assert!(d.contains("+    extra text"), "{d}");
        assert!(diff(a, a, "x", "y").is_none());
    }
}
