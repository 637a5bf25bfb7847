//! The milestone task graph behind `goodgo plan`.
//!
//! - [`error`]: [`PlanError`], why a plan file could not be loaded.
//! - [`model`] reads a plan file (through goodgo's strict YAML loader) into a [`Plan`],
//!   keeping the position of every id and every dependency for messages.
//! - [`check`] validates it: references, duplicates, self-dependencies, cycles (the
//!   shortest one, with the line of each edge), and resolves it into a [`check::Resolved`]
//!   graph of task indices.
//! - [`graph`] is the pure scheduling core on indices: waves, critical path, readiness.
//! - [`render`] turns a resolved plan into Mermaid, DOT, JSON, HTML and Markdown.
//! - [`edit`] changes a task's status in the file's text, keeping comments and layout.
//!
//! Nothing here writes to a terminal; the CLI decides what to print.

pub mod check;
pub mod edit;
pub mod error;
pub use goodgo_graph as graph;
pub mod model;
pub mod render;

pub use check::{Diagnostic, Resolved, Severity};
pub use error::PlanError;
pub use model::{Plan, Status, Task};
