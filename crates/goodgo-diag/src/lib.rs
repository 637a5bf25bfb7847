//! What goodgo's one error renderer asks of an error besides its message.
//!
//! Why its own crate: every library crate returns typed errors (thiserror, with their
//! `#[source]` chain intact) and none of them may print or pick an exit status. Each error
//! type says three things about itself through [`Diagnostic`]: whether it is bad input
//! (exit 2) or a failed job (exit 1), a hint for what to do next, and where in a file the
//! problem is. The CLI's `error::render` walks the cause chain once, asks each link, and is
//! the only place that turns the answers into text and an exit status. Modelled on uv's
//! `Hint` trait and its single chain renderer.
//!
//! The crate has no dependencies, so the lowest crates (the YAML loader, the graph) can
//! implement it without pulling anything in.

use std::path::Path;

/// Whose fault an error is, which decides the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Bad input, usage or configuration: the user must change something (exit 2).
    Input,
    /// The job ran and failed: a service did not start, a check found a problem (exit 1).
    Failed,
}

/// A problem at a place in a file, rendered as `path:line:col: error: message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location<'a> {
    pub path: &'a Path,
    /// 1-based line.
    pub line: u32,
    /// 1-based character column.
    pub col: u32,
    /// What is wrong there, without the position.
    pub message: &'a str,
}

/// What an error says about itself besides its message. Every method has a default, so an
/// error type implements only what it knows; `None` lets a cause further down the chain
/// decide.
pub trait Diagnostic: std::error::Error {
    /// Bad input or a failed job; `None` to let the cause decide (a failed job when none does).
    fn class(&self) -> Option<Class> {
        None
    }

    /// One sentence naming a step that works: a flag to pass, a command to run.
    fn hint(&self) -> Option<String> {
        None
    }

    /// Where in a file the problem is, when it is a problem in a file.
    fn location(&self) -> Option<Location<'_>> {
        None
    }
}
