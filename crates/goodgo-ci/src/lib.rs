//! The CI pipeline behind `goodgo ci`.
//!
//! - [`model`] reads `ci/pipeline.yaml` through goodgo's strict YAML loader and checks it
//!   like a plan (unknown dependencies, cycles shown `a -> b -> a`, bad globs), resolving it
//!   into a graph of step indices.
//! - [`key`] computes a step's content-addressed cache key: its definition, the contents of
//!   its input files (walked gitignore-aware, hashed incrementally through a file index like
//!   git's), the named environment values, tool versions and its dependencies' keys.
//! - [`cache`] stores successful steps (log + outputs) with a lock per entry and atomic
//!   writes; a corrupted entry is a miss. [`key::explain`] says why a key changed.
//! - [`run`] runs one step's process (log captured, timeout, process group).
//! - [`report`] turns results into JUnit XML (one testcase per libtest test), GitHub
//!   annotations and a Markdown summary.
//!
//! Nothing here writes to a terminal; the CLI decides what to print.

pub mod cache;
pub mod key;
pub mod model;
pub mod report;
pub mod run;

pub use goodgo_graph as graph;
pub use model::{Pipeline, PipelineError, Step};
