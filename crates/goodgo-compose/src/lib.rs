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
//! - Values the engine would refuse (image references, durations, sizes, ports, restart
//!   policies) are errors at their position — at the unset variable that emptied one.
//! - Several files make one project ([`load_files`]) by the Compose merge rules, with
//!   `include` and `extends`; every value keeps the file it is written in.
//!
//! Modules: [`canonical`] (the project as `docker compose config` prints it), `yaml`
//! (positioned tree from `granit-parser` events), `merge` (the merge
//! rules), `interp` (interpolation), `dotenv` (`.env` / `env_file`, and [`read_env_file`]
//! for any `.env`), `syntax` (ports, volumes, durations, shell words), [`values`] (image
//! references, byte sizes), `load` (files to model, the key lists, one submodule per
//! section), `order` (profiles, selection, waves), `hash` ([`config_hash`]), `model` (the
//! types), `error` ([`ComposeError`]).

pub mod canonical;
mod dotenv;
mod error;
mod hash;
mod interp;
mod load;
mod merge;
mod model;
mod order;
pub mod syntax;
pub mod values;
mod yaml;

pub use dotenv::read_env_file;
pub use error::ComposeError;
pub use goodgo_yaml::Pos;
pub use hash::config_hash;
pub use load::{compose_file_list, load, load_files, load_str, override_file};
pub use model::*;
pub use order::{is_enabled, waves};
