//! Migrations that run outside a transaction: `CREATE INDEX CONCURRENTLY` (which squawk,
//! run by `goodgo db lint`, asks for on tables with data) and the other statements
//! PostgreSQL refuses inside a transaction block.
//!
//! A migration runs this way when its first line is the directive `-- no-transaction`
//! (sqlx's spelling; dbmate's `transaction:false` is the same idea) or when one of its
//! statements is one PostgreSQL refuses in a transaction. Its statements are sent one by
//! one (a query string of several statements is itself an implicit transaction block), still
//! under the migration lock, and the migration is recorded in the history only after the
//! last one succeeded. Without a transaction, a failure cannot be rolled back: the error
//! says how many statements ran and names any invalid index a failed concurrent build
//! left, with the statement that removes it.
//!
//! Splitting needs to know where a statement ends: at a `;` outside quotes (`'…'`, `"…"`,
//! `E'…'`), dollar quotes (`$tag$…$tag$`) and comments (`--`, nested `/* */`). That small
//! lexer is here rather than a SQL parser crate, which would have to understand every
//! statement PostgreSQL does to find the same semicolons.

use tokio_postgres::Client;

use crate::error::OutsideFailure;
use crate::migrations::MigrationFile;
use crate::{DbError, PgError};

/// The first-line directive that declares a migration to run outside a transaction.
pub const DIRECTIVE: &str = "-- no-transaction";

/// One statement of a migration: its text (without the `;`) and its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    pub text: &'a str,
    pub offset: usize,
}

/// True when `sql` must run outside a transaction: declared by its first line, or holding
/// a statement PostgreSQL refuses in a transaction block.
pub fn needed(sql: &str) -> bool {
    declared(sql) || statements(sql).iter().any(|s| refuses_transaction(s.text))
}

/// The first line is the directive (case and surrounding blanks aside).
pub fn declared(sql: &str) -> bool {
    sql.lines()
        .next()
        .is_some_and(|l| l.trim().eq_ignore_ascii_case(DIRECTIVE))
}

/// The statements of `sql`, split at top-level semicolons; blank or comment-only pieces
/// are left out.
pub fn statements(sql: &str) -> Vec<Statement<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut push = |from: usize, to: usize| {
        let text = &sql[from..to];
        if has_code(text) {
            out.push(Statement { text, offset: from });
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = block_comment_end(bytes, i),
            b'\'' | b'"' => i = quoted_end(bytes, i, bytes[i]),
            b'$' => match dollar_tag(sql, i) {
                Some(tag) => {
                    let body = i + tag.len();
                    i = sql[body..]
                        .find(tag)
                        .map_or(bytes.len(), |n| body + n + tag.len());
                }
                None => i += 1,
            },
            b';' => {
                push(start, i);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push(start, bytes.len());
    out
}

/// The index just past a nested `/* … */` comment starting at `i`.
fn block_comment_end(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The index just past a quoted string or identifier starting at `i` (a doubled quote is
/// one quote; in an `E'…'` string a backslash escapes the next byte).
fn quoted_end(bytes: &[u8], i: usize, quote: u8) -> usize {
    let escapes = quote == b'\'' && i > 0 && bytes[i - 1].eq_ignore_ascii_case(&b'e');
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if escapes => j += 2,
            b if b == quote && bytes.get(j + 1) == Some(&quote) => j += 2,
            b if b == quote => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

/// `$tag$` (or `$$`) starting at `i`, when it opens a dollar-quoted string.
fn dollar_tag(sql: &str, i: usize) -> Option<&str> {
    let rest = &sql[i + 1..];
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let ok = tag.is_empty()
        || (tag.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !tag.starts_with(|c: char| c.is_ascii_digit()));
    ok.then(|| &sql[i..i + end + 2])
}

/// The byte offset of the first character that is neither blank nor in a comment.
fn code_start(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b if b.is_ascii_whitespace() => i += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = block_comment_end(bytes, i),
            _ => return i,
        }
    }
    i
}

/// Something other than blanks and comments.
fn has_code(text: &str) -> bool {
    !without_comments(text).trim().is_empty()
}

/// The statement's words, upper-cased, comments left out.
fn words(statement: &str) -> Vec<String> {
    without_comments(statement)
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect()
}

/// `text` with its comments replaced by a space; quoted text is kept as it is.
fn without_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let next = match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                out.push(' ');
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                out.push(' ');
                i = block_comment_end(bytes, i);
                continue;
            }
            b'\'' | b'"' => quoted_end(bytes, i, bytes[i]),
            _ => text[i..].chars().next().map_or(i + 1, |c| i + c.len_utf8()),
        };
        out.push_str(&text[i..next]);
        i = next;
    }
    out
}

/// PostgreSQL refuses it in a transaction block (`PreventInTransactionBlock`).
fn refuses_transaction(statement: &str) -> bool {
    let w = words(statement);
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    let concurrently = w.contains(&"CONCURRENTLY");
    match w.as_slice() {
        ["CREATE", "INDEX", ..] | ["CREATE", "UNIQUE", "INDEX", ..] => concurrently,
        ["DROP", "INDEX", ..] | ["REINDEX", ..] => concurrently,
        ["ALTER", "TABLE", ..] => concurrently && w.contains(&"DETACH"),
        ["CREATE", "DATABASE", ..]
        | ["DROP", "DATABASE", ..]
        | ["CREATE", "TABLESPACE", ..]
        | ["DROP", "TABLESPACE", ..]
        | ["ALTER", "SYSTEM", ..]
        | ["VACUUM", ..] => true,
        _ => false,
    }
}

/// Runs `file` statement by statement, outside any transaction, then records it in the
/// history with the checksum refinery would. The caller holds the migration lock.
pub async fn apply(client: &Client, file: &MigrationFile) -> Result<(), DbError> {
    let all = statements(&file.sql);
    for (n, statement) in all.iter().enumerate() {
        if let Err(e) = client.batch_execute(statement.text).await {
            // The server's position is a character of the statement; without one, the
            // statement's first word is the place.
            let in_statement = match e.as_db_error().and_then(|d| d.position()) {
                Some(tokio_postgres::error::ErrorPosition::Original(p)) => *p as usize,
                _ => statement.text[..code_start(statement.text)].chars().count() + 1,
            };
            let before = file.sql[..statement.offset].chars().count();
            let (line, col) = crate::migrations::line_col(&file.sql, before + in_statement);
            let invalid = invalid_indexes(client).await;
            let source = PgError::from(e);
            return Err(DbError::OutsideTransaction(Box::new(OutsideFailure {
                path: file.path.clone(),
                line,
                col,
                migration: file.label(),
                ran: n,
                total: all.len(),
                invalid,
                message: source.to_string(),
                source,
            })));
        }
    }
    crate::runner::record(client, file).await
}

/// Indexes a failed `CREATE INDEX CONCURRENTLY` left behind: present, but invalid.
async fn invalid_indexes(client: &Client) -> Vec<String> {
    client
        .query(
            "SELECT i.indexrelid::regclass::text FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             ORDER BY 1",
            &[],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        statements(sql)
            .into_iter()
            .map(|s| s.text.trim().to_string())
            .collect()
    }

    #[test]
    fn semicolons_in_quotes_comments_and_dollar_bodies_do_not_split() {
        let sql = "-- no-transaction\n\
                   CREATE INDEX CONCURRENTLY a ON t (x); -- one; still a comment\n\
                   /* a; /* nested; */ still; */\n\
                   INSERT INTO t VALUES ('it''s; fine', E'back\\'slash;', \"we;ird\");\n\
                   CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                   DO $$ BEGIN PERFORM 1; END $$;\n\
                   SELECT $1;\n";
        assert_eq!(
            texts(sql),
            [
                "-- no-transaction\nCREATE INDEX CONCURRENTLY a ON t (x)",
                "-- one; still a comment\n/* a; /* nested; */ still; */\nINSERT INTO t VALUES ('it''s; fine', E'back\\'slash;', \"we;ird\")",
                "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
                "DO $$ BEGIN PERFORM 1; END $$",
                "SELECT $1",
            ]
        );
        assert!(texts("-- only a comment\n;\n  ;").is_empty());
        assert_eq!(texts("/* c */ SELECT 1; /* only */"), ["/* c */ SELECT 1"]);
        assert_eq!(code_start("\n -- x\n /* y */ SELECT"), 16);
    }

    #[test]
    fn declared_or_detected() {
        assert!(declared("-- no-transaction\nSELECT 1;"));
        assert!(declared("  -- No-Transaction  \nSELECT 1;"));
        assert!(!declared("SELECT 1;\n-- no-transaction\n"));
        assert!(needed(
            "CREATE UNIQUE INDEX\n  CONCURRENTLY users_email ON users (email);"
        ));
        assert!(needed("DROP INDEX CONCURRENTLY IF EXISTS x;"));
        assert!(needed("REINDEX INDEX CONCURRENTLY x;"));
        assert!(needed("VACUUM ANALYZE listings;"));
        assert!(!needed("CREATE INDEX listings_city ON listings (city);"));
        assert!(!needed(
            "-- CREATE INDEX CONCURRENTLY in a comment\nSELECT 'CREATE INDEX CONCURRENTLY';"
        ));
        assert!(!needed("REFRESH MATERIALIZED VIEW CONCURRENTLY v;"));
        assert!(needed("/* why */ CREATE INDEX CONCURRENTLY x ON t (y);"));
    }
}
