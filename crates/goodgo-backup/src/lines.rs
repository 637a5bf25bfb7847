//! Format 5's table hash: the rows of a table as `COPY … TO STDOUT` prints them (text
//! format, a row a line), counted and hashed line by line.
//!
//! A table's hash is the sum, modulo 2^128, of XXH3-128 (seed 0) of each of its lines
//! (without the newline), written as 32 lowercase hexadecimal digits (big-endian); its row
//! count is the number of lines. A sum does not depend on the order of the rows, and
//! costs a few nanoseconds a row: a backup takes it from pg_dump's data files as it
//! packs them (no second read of any table), a restore from a `COPY … TO STDOUT` of the
//! restored table, under the settings pg_dump dumps with ([`COPY_SETTINGS`]).
//!
//! The lines end at the first line that is `\.` alone (the end of the data, in pg_dump's
//! files): no row prints so, a backslash being always followed by an escaped character.

use xxhash_rust::xxh3::xxh3_128;

/// The session settings of a connection that prints tables to hash them (each `COPY`
/// printing in the dump's encoding): pg_dump's own (`search_path` empty, ISO dates,
/// `postgres` intervals, exact floats, no row security), and the two goodgo gives pg_dump
/// through `PGOPTIONS` ([`PGDUMP_OPTIONS`]).
pub const COPY_SETTINGS: &str = "SELECT pg_catalog.set_config('search_path', '', false); SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3; SET row_security = off; SET TimeZone = 'UTC'; SET bytea_output = hex";

/// What goodgo adds to pg_dump's `PGOPTIONS` so that its data files print times with time
/// zone in UTC and binary strings in hex, whatever the server's, the database's or the
/// role's defaults.
pub const PGDUMP_OPTIONS: &str = "-c TimeZone=UTC -c bytea_output=hex";

/// `PGOPTIONS` for pg_dump: the environment's, then [`PGDUMP_OPTIONS`] (the last wins).
pub fn pgoptions(inherited: Option<&std::ffi::OsStr>) -> std::ffi::OsString {
    let mut options = std::ffi::OsString::new();
    if let Some(inherited) = inherited.filter(|o| !o.is_empty()) {
        options.push(inherited);
        options.push(" ");
    }
    options.push(PGDUMP_OPTIONS);
    options
}

/// A table's lines being counted and hashed, fed in pieces of any size.
#[derive(Debug, Default, Clone)]
pub struct LineHash {
    rows: u64,
    sum: u128,
    /// The start of a line not yet ended.
    partial: Vec<u8>,
    /// `\.` has been seen: the rest is not data.
    ended: bool,
}

impl LineHash {
    pub fn new() -> LineHash {
        LineHash::default()
    }

    /// Takes the next bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !self.ended && !bytes.is_empty() {
            let Some(end) = memchr::memchr(b'\n', bytes) else {
                self.partial.extend_from_slice(bytes);
                return;
            };
            if self.partial.is_empty() {
                self.line(&bytes[..end]);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&bytes[..end]);
                self.line(&line);
                line.clear();
                self.partial = line;
            }
            bytes = &bytes[end + 1..];
        }
    }

    fn line(&mut self, line: &[u8]) {
        if line == b"\\." {
            self.ended = true;
            return;
        }
        self.rows += 1;
        self.sum = self.sum.wrapping_add(xxh3_128(line));
    }

    /// Adds the lines of `other` (of the same table: its rows dealt out in pieces of whole
    /// lines), as if this one had taken them.
    pub fn absorb(&mut self, other: LineHash) {
        let (rows, sum) = other.totals();
        self.rows += rows;
        self.sum = self.sum.wrapping_add(sum);
    }

    /// The row count and the sum; a last line without a newline counts as a line.
    fn totals(mut self) -> (u64, u128) {
        if !self.ended && !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(&last);
        }
        (self.rows, self.sum)
    }

    /// The row count and the hash; a last line without a newline counts as a line.
    pub fn finish(self) -> (u64, String) {
        let (rows, sum) = self.totals();
        (rows, format!("{sum:032x}"))
    }
}

/// Reads through, hashing the lines read.
pub struct Hashing<R> {
    pub inner: R,
    pub lines: LineHash,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.lines.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(pieces: &[&[u8]]) -> (u64, String) {
        let mut h = LineHash::new();
        for p in pieces {
            h.update(p);
        }
        h.finish()
    }

    #[test]
    fn lines_are_hashed_whatever_the_pieces_and_their_order() {
        let whole = of(&[b"1\ta\n2\tb\\nc\n3\t\\N\n\\.\n\n\n"]);
        assert_eq!(whole.0, 3);
        assert_eq!(
            of(&[b"1\ta\n2\tb\\", b"nc\n3\t", b"\\N\n", b"\\.\n"]),
            whole
        );
        assert_eq!(of(&[b"3\t\\N\n1\ta\n", b"2\tb\\nc\n"]), whole);
        let one_byte_at_a_time: Vec<&[u8]> =
            b"2\tb\\nc\n1\ta\n3\t\\N".chunks(1).collect::<Vec<_>>();
        assert_eq!(of(&one_byte_at_a_time), whole);
        // Whole lines dealt out to several hashes, then added up: the same.
        let mut parts = LineHash::new();
        for piece in [&b"2\tb\\nc\n"[..], b"1\ta\n", b"3\t\\N"] {
            let mut part = LineHash::new();
            part.update(piece);
            parts.absorb(part);
        }
        assert_eq!(parts.finish(), whole);
        // Expected value: XXH3-128 of each line, summed.
        let sum = [&b"1\ta"[..], b"2\tb\\nc", b"3\t\\N"]
            .iter()
            .fold(0u128, |s, l| s.wrapping_add(xxh3_128(l)));
        assert_eq!(whole.1, format!("{sum:032x}"));
    }

    #[test]
    fn a_changed_duplicated_or_missing_row_changes_the_hash() {
        let base = of(&[b"1\ta\n2\tb\n"]);
        assert_ne!(of(&[b"1\ta\n2\tc\n"]).1, base.1);
        assert_ne!(of(&[b"1\ta\n2\tb\n2\tb\n"]), base);
        assert_ne!(of(&[b"1\ta\n"]), base);
        // Nothing after the end of the data counts; an empty table has a zero hash.
        assert_eq!(of(&[b"1\ta\n2\tb\n\\.\n3\tc\n"]), base);
        assert_eq!(of(&[b"\\.\n"]), (0, "0".repeat(32)));
        assert_eq!(of(&[]), (0, "0".repeat(32)));
        // An empty line is a row (a table of one column holding an empty string).
        assert_eq!(of(&[b"\n"]).0, 1);
    }
}
