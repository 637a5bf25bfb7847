//! goodgo's own reading of Compose files: a pure model of what to run.
//!
//! Why a crate of its own: goodgo runs Compose projects two ways — through the Docker
//! engine's API, and as native processes — and both need the same resolved, checked
//! description of the services, their order and a hash of each definition. Keeping that
//! here, free of processes and sockets, makes every rule testable on plain files.
//!
//! What it promises:
//! - Every problem is `path:line:col: message` (a [`goodgo_yaml::YamlError`]) naming the key
//!   by its full path, e.g. `services.db.ports[1]: expected a string or number, found a list`.
//! - No key is silently dropped: a key goodgo does not act on is a warning in
//!   [`Project::diagnostics`] when the service runs as meant without it, and an error when
//!   ignoring it would change what runs (see `load.rs` for the lists and their reasons).
//! - Values are interpolated like Compose does (`$VAR`, `${VAR:-default}`, `${VAR:?error}`,
//!   `$$`…), from the caller's environment first and the `.env` beside the file second.
//!
//! Modules: `yaml` (positioned tree from `granit-parser` events), `interp` (interpolation),
//! `dotenv` (`.env` / `env_file`, and [`read_env_file`] for any `.env`), `syntax` (ports,
//! volumes, durations, shell words), `load` (tree to model, the key lists, one submodule per
//! section), `order` (profiles, selection, waves), `hash` ([`config_hash`]), `model` (the
//! types), `error` ([`ComposeError`]).

mod dotenv;
mod error;
mod hash;
mod interp;
mod load;
mod model;
mod order;
pub mod syntax;
mod yaml;

pub use dotenv::read_env_file;
pub use error::ComposeError;
pub use goodgo_yaml::Pos;
pub use hash::config_hash;
pub use load::{load, load_str};
pub use model::*;
pub use order::{is_enabled, waves};
