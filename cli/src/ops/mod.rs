//! Operations several commands share, apart from any one command's arguments and output.
//!
//! A command module owns no shared step: it calls these, so that `dev`, `db`, and the
//! commands still to come (`backup`, `deploy`, `ci`, `k6`) do the same thing the same way
//! instead of reaching into each other's modules: [`stack`] loads the Compose project,
//! chooses a runtime, brings the stack up with progress, stops it and finds its database;
//! [`database`] resolves the database a command works on; [`secrets`] reads and writes the
//! workspace's `.env`; [`guard`] is the one check before anything destructive;
//! [`interrupt`] turns Ctrl-C into a future; [`lockfile`] is the one kind of lock file
//! (`dev`'s session, a deploy target's);
//! [`testdb`] copies test databases from a migrated template; [`seed`] loads the
//! development data; [`api`] finds the API `dev` runs and its settings; [`s3`] finds the
//! stack's S3 service and the API's photo settings for it; [`squawk`] lints migrations.

pub mod api;
pub mod database;
pub mod guard;
pub mod interrupt;
pub mod lockfile;
pub mod s3;
pub mod secrets;
pub mod seed;
pub mod squawk;
pub mod stack;
pub mod testdb;
