//! Why loading or ordering failed.
//!
//! Why its own module: one error type for the whole crate, in goodgo's shape — a located
//! problem is a [`goodgo_yaml::YamlError`] (`path:line:col: message`), the same type every
//! other file goodgo reads reports, so the CLI renders and classifies them alike.

use std::path::{Path, PathBuf};

use goodgo_yaml::{Pos, YamlError};

/// Why a Compose file could not be loaded, or its services not ordered.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The Compose file or its `.env` could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A problem at a place in a file: `path:line:col: message`.
    #[error(transparent)]
    Invalid(#[from] YamlError),
    /// A file the Compose file names (an `env_file`) could not be read: located where it
    /// is named, with the read error as its cause.
    #[error("{at}")]
    UnreadableAt {
        at: YamlError,
        #[source]
        source: std::io::Error,
    },
    /// A service named by the caller (not in a file) does not exist.
    #[error("no service `{name}` in {}{}", file.display(), suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownService {
        name: String,
        file: PathBuf,
        suggestion: Option<String>,
    },
}

impl ComposeError {
    pub(crate) fn at(path: &Path, pos: Pos, message: impl Into<String>) -> Self {
        ComposeError::Invalid(YamlError {
            path: path.to_path_buf(),
            pos,
            message: message.into(),
        })
    }

    /// `at` (a located error from [`ComposeError::at`]) caused by a failed read.
    pub(crate) fn unreadable(at: ComposeError, source: std::io::Error) -> Self {
        match at {
            ComposeError::Invalid(at) => ComposeError::UnreadableAt { at, source },
            other => other,
        }
    }

    /// The located problem, if this error is one.
    pub fn located(&self) -> Option<&YamlError> {
        match self {
            ComposeError::Invalid(e) | ComposeError::UnreadableAt { at: e, .. } => Some(e),
            _ => None,
        }
    }
}

impl goodgo_diag::Diagnostic for ComposeError {
    /// Every way loading fails is about the file or the names the user gave.
    fn class(&self) -> Option<goodgo_diag::Class> {
        Some(goodgo_diag::Class::Input)
    }

    fn location(&self) -> Option<goodgo_diag::Location<'_>> {
        self.located().and_then(goodgo_diag::Diagnostic::location)
    }
}
