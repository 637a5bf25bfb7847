//! Reading the migrations folder: `V{n}__{name}.sql`, versions unique, in version order.

use std::path::{Path, PathBuf};

use refinery_core::Migration;

use crate::DbError;

/// One migration file.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    /// Where it is, as shown in messages.
    pub path: PathBuf,
    pub version: i32,
    pub name: String,
    pub sql: String,
    /// refinery's view of it (name, version, checksum).
    pub migration: Migration,
}

impl MigrationFile {
    /// The checksum refinery records when applying it.
    pub fn checksum(&self) -> u64 {
        self.migration.checksum()
    }

    /// `V{n}__{name}`.
    pub fn label(&self) -> String {
        format!("V{}__{}", self.version, self.name)
    }
}

/// Reads every `*.sql` file of `dir` (shown as `shown` in messages). Other files are
/// ignored; a `.sql` file with another name, or two files with one version, is an error.
/// A missing folder is an empty list.
pub fn load(dir: &Path, shown: &Path) -> Result<Vec<MigrationFile>, DbError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(DbError::Read {
                path: shown.to_path_buf(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| DbError::Read {
            path: shown.to_path_buf(),
            source,
        })?;
        let file_name = entry.file_name().to_string_lossy().to_string();
        let Some(stem) = file_name.strip_suffix(".sql") else {
            continue;
        };
        let path = shown.join(&file_name);
        let (version, name) = parse_name(stem).map_err(|message| DbError::File {
            path: path.clone(),
            line: 1,
            col: 1,
            message,
        })?;
        let sql = std::fs::read_to_string(entry.path()).map_err(|source| DbError::Read {
            path: path.clone(),
            source,
        })?;
        let migration = Migration::unapplied(stem, &sql).map_err(|source| DbError::Refused {
            path: path.clone(),
            message: source.to_string(),
            source,
        })?;
        files.push(MigrationFile {
            path,
            version,
            name,
            sql,
            migration,
        });
    }
    files.sort_by_key(|f| f.version);
    for pair in files.windows(2) {
        if pair[0].version == pair[1].version {
            return Err(DbError::File {
                path: pair[1].path.clone(),
                line: 1,
                col: 1,
                message: format!(
                    "version {} is also used by {}",
                    pair[1].version,
                    pair[0].path.display()
                ),
            });
        }
    }
    Ok(files)
}

/// `V12__add_index` → `(12, "add_index")`.
pub fn parse_name(stem: &str) -> Result<(i32, String), String> {
    let bad = || {
        format!(
            "`{stem}.sql` is not named V{{version}}__{{name}}.sql (for example V3__add_photos.sql)"
        )
    };
    let rest = stem.strip_prefix('V').ok_or_else(bad)?;
    let (version, name) = rest.split_once("__").ok_or_else(bad)?;
    let version: i32 = version.parse().map_err(|_| bad())?;
    if version <= 0
        || name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(bad());
    }
    Ok((version, name.to_string()))
}

/// The file name for a new migration after `files`: `V{max+1}__{name}.sql`. `name` is
/// turned into lower snake case; an empty result is an error.
pub fn next_file_name(files: &[MigrationFile], name: &str) -> Result<String, String> {
    let mut slug = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
    }
    let slug = slug.trim_end_matches('_').to_string();
    if slug.is_empty() {
        return Err(format!(
            "`{name}` has no letters or digits to name a migration with"
        ));
    }
    let next = files.iter().map(|f| f.version).max().unwrap_or(0) + 1;
    Ok(format!("V{next}__{slug}.sql"))
}

/// The 1-based line and column of character offset `pos` (1-based, as PostgreSQL reports
/// error positions) in `sql`.
pub fn line_col(sql: &str, pos: usize) -> (u32, u32) {
    let mut line = 1u32;
    let mut col = 1u32;
    for c in sql.chars().take(pos.saturating_sub(1)) {
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_name("V12__add_index"), Ok((12, "add_index".into())));
        for bad in [
            "12__x",
            "V__x",
            "Vx__y",
            "V1_x",
            "V1__",
            "V0__x",
            "V1__with-dash",
        ] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_names() {
        assert_eq!(
            next_file_name(&[], "Add listing photos!"),
            Ok("V1__add_listing_photos.sql".into())
        );
        assert!(next_file_name(&[], " -- ").is_err());
    }

    #[test]
    fn positions() {
        let sql = "SELECT 1;\nCREATE TABL x;\n";
        assert_eq!(line_col(sql, 1), (1, 1));
        assert_eq!(line_col(sql, 18), (2, 8));
    }
}
