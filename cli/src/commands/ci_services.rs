//! `services: [postgres]` for `goodgo ci` and `goodgo test`: each run of such a step (never
//! a cache hit) gets a throwaway database on the workspace's PostgreSQL server (see
//! `ops::database::resolve`), copied from a template migrated with the workspace's
//! migrations (`ops::testdb`: built once per set of migrations, milliseconds a copy), its
//! URL in `DATABASE_URL` and `GOODGO_DATABASE_URL`; it is dropped when the step ends. The
//! template is looked up (or built) once per run, by the first step that needs it.

use std::sync::Mutex;

use anyhow::{Context as _, Result};
use goodgo_db::admin::Target;
use goodgo_db::migrations::{self, MigrationFile};
use goodgo_db::scratch::Scratch;

use super::Context;
use crate::ops::testdb::Template;

/// The server and migrations the steps' databases are made from.
pub struct Postgres {
    server: Target,
    files: Vec<MigrationFile>,
    workspace: String,
    /// The template, once the first provisioned step has made sure of it.
    template: Mutex<Option<Template>>,
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
        Ok(Postgres {
            server,
            files,
            workspace: ws.settings.name.value.clone(),
            template: Mutex::new(None),
        })
    }

    /// A new migrated database, and the environment that names it.
    pub fn provision(&self) -> Result<(Provisioned, Vec<(String, String)>)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let template = {
            // Held while the first step builds the template, so concurrent steps wait for it
            // rather than building their own.
            let mut slot = self.template.lock().unwrap_or_else(|e| e.into_inner());
            match &*slot {
                Some(template) => template.clone(),
                None => {
                    let template = runtime.block_on(Template::ensure(
                        &self.server,
                        &self.workspace,
                        &self.files,
                    ))?;
                    *slot = Some(template.clone());
                    template
                }
            }
        };
        let scratch = runtime.block_on(template.copy("goodgo_ci"))?;
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
