//! Operations several commands share. Commands parse their arguments and print; what they
//! do to the workspace (resolve its database, read its secrets, bring its stack up) lives
//! here once, so that `dev`, `db`, and the commands still to come (`backup`, `deploy`,
//! `ci`, `k6`) call the same functions instead of reaching into each other's modules.

pub mod database;
pub mod guard;
pub mod secrets;
