//! Databases for test runs and CI steps, copied from a migrated template.
//!
//! Migrating a fresh database for every run costs as much as the migrations do; copying a
//! database that is already migrated (`CREATE DATABASE … TEMPLATE`) costs milliseconds. The
//! template is named by the workspace and a SHA-256 of its migrations (version, name,
//! checksum), so a changed migration makes a new template and an unchanged one is reused
//! across runs. It is built under a throwaway name and renamed into place only once
//! migrated: a run interrupted while building leaves no template that looks complete, and
//! of two runs building at once, the second to finish keeps the first's and drops its own.
//! Templates of the same workspace for older migrations are dropped when not in use.

use anyhow::{Context as _, Result};
use goodgo_db::admin::{Target, ident};
use goodgo_db::migrations::MigrationFile;
use goodgo_db::scratch::Scratch;
use sha2::{Digest, Sha256};

/// The migrated template of a workspace's migrations on one server.
#[derive(Clone)]
pub struct Template {
    server: Target,
    /// The template database's name.
    pub name: String,
}

/// SQLSTATE `duplicate_database`.
const DUPLICATE_DATABASE: &str = "42P04";

/// `goodgo_tmpl_{workspace}_{hash}`, within PostgreSQL's 63 bytes.
fn template_name(workspace: &str, files: &[MigrationFile]) -> String {
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(format!("{}\0{}\0{}\n", f.version, f.name, f.checksum()).as_bytes());
    }
    let hash: String = hasher.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}_{hash}", prefix(workspace))
}

/// What the names of `workspace`'s templates start with: `goodgo_tmpl_{workspace}`, the
/// workspace's name lower-cased, other characters than letters and digits as `_`.
fn prefix(workspace: &str) -> String {
    let ws: String = workspace
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    format!("goodgo_tmpl_{ws}")
}

impl Template {
    /// The template for `files` on `server`'s server, built now when it does not exist.
    pub async fn ensure(
        server: &Target,
        workspace: &str,
        files: &[MigrationFile],
    ) -> Result<Template> {
        let name = template_name(workspace, files);
        let template = Template {
            server: server.maintenance(&name),
            name,
        };
        if !goodgo_db::admin::database_exists(&template.server, &template.name).await? {
            template.build(files).await?;
        }
        template.drop_stale(workspace).await;
        Ok(template)
    }

    /// Migrates a throwaway database and renames it to the template's name.
    async fn build(&self, files: &[MigrationFile]) -> Result<()> {
        let scratch = Scratch::create(&self.server, "goodgo_tmpl_build", None).await?;
        let migrated = async {
            let mut client = scratch.target.connect().await?;
            goodgo_db::runner::migrate(&mut client, files, None, &|_| {}).await
            // The client is dropped here: a template must have no sessions to be copied.
        }
        .await;
        if let Err(e) = migrated {
            let _ = scratch.remove().await;
            return Err(anyhow::Error::new(e).context("migrating the test template database"));
        }
        // A template is kept: no longer a scratch database another run may sweep.
        if let Err(e) = scratch.unmark().await {
            let _ = scratch.remove().await;
            return Err(anyhow::Error::new(e).context("keeping the test template database"));
        }
        let client = self.server.connect().await?;
        let renamed = client
            .batch_execute(&format!(
                "ALTER DATABASE {} RENAME TO {}",
                ident(&scratch.name()),
                ident(&self.name)
            ))
            .await;
        match renamed {
            Ok(()) => Ok(()),
            // Another run finished the same template first: keep theirs.
            Err(e) if e.code().is_some_and(|c| c.code() == DUPLICATE_DATABASE) => {
                let _ = scratch.remove().await;
                Ok(())
            }
            Err(e) => {
                let _ = scratch.remove().await;
                Err(e).context(format!("naming the test template database {}", self.name))
            }
        }
    }

    /// Drops this workspace's templates of other migrations; one in use stays.
    async fn drop_stale(&self, workspace: &str) {
        let Ok(client) = self.server.connect().await else {
            return;
        };
        let like = format!("{}\\_%", prefix(workspace).replace('_', "\\_"));
        let Ok(rows) = client
            .query(
                "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> $2",
                &[&like, &self.name],
            )
            .await
        else {
            return;
        };
        for row in rows {
            let stale: String = row.get(0);
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {}", ident(&stale)))
                .await;
        }
    }

    /// A new database copied from the template, named `{prefix}_…`.
    pub async fn copy(&self, prefix: &str) -> Result<Scratch> {
        Scratch::create(&self.server, prefix, Some(&self.name))
            .await
            .with_context(|| format!("copying the test template database {}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(sql: &str) -> Vec<MigrationFile> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("V1__init.sql"), sql).unwrap();
        goodgo_db::migrations::load(dir.path(), std::path::Path::new("migrations")).unwrap()
    }

    #[test]
    fn the_name_follows_the_migrations_and_fits_postgres() {
        let a = files("CREATE TABLE t (x int);");
        let b = files("CREATE TABLE t (x bigint);");
        let name = template_name("Shop App", &a);
        assert!(name.starts_with("goodgo_tmpl_shop_app_"), "{name}");
        assert_eq!(name, template_name("Shop App", &a));
        assert_ne!(name, template_name("Shop App", &b));
        assert!(template_name(&"x".repeat(100), &a).len() <= 63);
    }
}
