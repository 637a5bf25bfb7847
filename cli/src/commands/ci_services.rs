//! `services: [postgres]` for `goodgo ci`: each run of such a step (never a cache hit) gets
//! a throwaway database on the workspace's PostgreSQL server (see `ops::database::resolve`),
//! migrated with the workspace's migrations, its URL in `DATABASE_URL` and
//! `GOODGO_DATABASE_URL`; it is dropped when the step ends.

use anyhow::{Context as _, Result};
use goodgo_db::admin::Target;
use goodgo_db::migrations::{self, MigrationFile};
use goodgo_db::scratch::Scratch;

use super::Context;

/// The server and migrations the steps' databases are made from.
pub struct Postgres {
    server: Target,
    files: Vec<MigrationFile>,
}

/// A provisioned database; [`Provisioned::remove`] drops it.
pub struct Provisioned {
    runtime: tokio::runtime::Runtime,
    scratch: Scratch,
}

impl Postgres {
    pub fn prepare(ctx: &Context) -> Result<Postgres> {
        let (server, _) = crate::ops::database::resolve(ctx, None)
            .context("a step of the pipeline needs `services: [postgres]`")?;
        let ws = &ctx.workspace;
        let dir = ws.resolve(&ws.settings.migrations_dir.value);
        let files = migrations::load(&dir, &ws.display_path(&dir))?;
        Ok(Postgres { server, files })
    }

    /// A new migrated database, and the environment that names it.
    pub fn provision(&self) -> Result<(Provisioned, Vec<(String, String)>)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let scratch = runtime.block_on(async {
            let scratch = Scratch::create(&self.server, "goodgo_ci", None).await?;
            let migrated = async {
                let mut client = scratch.target.connect().await?;
                goodgo_db::runner::migrate(&mut client, &self.files, None, &|_| {}).await
            }
            .await;
            match migrated {
                Ok(_) => Ok(scratch),
                Err(e) => {
                    let _ = scratch.remove().await;
                    Err(e)
                }
            }
        })?;
        let url = scratch.target.url.clone();
        let env = vec![
            ("DATABASE_URL".to_string(), url.clone()),
            ("GOODGO_DATABASE_URL".to_string(), url),
        ];
        Ok((Provisioned { runtime, scratch }, env))
    }
}

impl Provisioned {
    pub fn remove(self) {
        let Provisioned { runtime, scratch } = self;
        let _ = runtime.block_on(scratch.remove());
    }
}
