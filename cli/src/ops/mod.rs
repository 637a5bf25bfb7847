//! Operations several commands share, apart from any one command's arguments and output.
//!
//! A command module parses nothing and owns no shared step: it calls these. `up`, `down`,
//! `status`, `logs`, `dev` and `db` use [`stack`] to load the Compose project, choose a
//! runtime, bring the stack up with progress, stop it, and find its database; `backup`,
//! `deploy` and `ci` will call these same functions rather than copy them.

pub mod stack;
