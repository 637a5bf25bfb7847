//! Which database a command works on.
//!
//! Why here: `db`, `dev` and, next, `backup`, `k6` and `ci` all need "the database of this
//! workspace" and must agree on it: the flag, `GOODGO_DATABASE_URL`, `database_url` in
//! goodgo.yaml, or the running stack's PostgreSQL, in that order.

use anyhow::Result;
use goodgo_db::admin::Target;

use crate::commands::Context;
use crate::error::UserError;

/// The database to use and where its URL came from (`--database-url`, the environment
/// variable, goodgo.yaml, or the running stack). `flag` is `--database-url` when the
/// command has one.
pub fn resolve(ctx: &Context, flag: Option<&str>) -> Result<(Target, String)> {
    configured_or_running(ctx, flag)?.ok_or_else(|| {
        UserError::input("no database configured and no running stack")
            .with_hint("start the stack with `goodgo up`, or pass --database-url, set GOODGO_DATABASE_URL, or add `database_url:` to goodgo.yaml")
            .into()
    })
}

/// As [`resolve`], but `None` when no database is configured and no stack runs one (for
/// commands that start the stack themselves then).
pub fn configured_or_running(
    ctx: &Context,
    flag: Option<&str>,
) -> Result<Option<(Target, String)>> {
    let mut setting = ctx.workspace.settings.database_url.clone();
    setting.override_with("--database-url", flag.map(|f| Some(f.to_string())));
    let (url, source) = match setting.value {
        Some(url) => (url, setting.source.to_string()),
        None => match super::stack::running_database(ctx)? {
            Some(found) => found,
            None => return Ok(None),
        },
    };
    let target = Target::parse(&url)?;
    Ok(Some((target, source)))
}
