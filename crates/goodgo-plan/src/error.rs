//! Why a plan file could not be loaded.
//!
//! Why its own module: the plan's loading error says, through [`goodgo_diag::Diagnostic`],
//! what the CLI's one renderer needs: bad input (exit 2), where in the file the problem is,
//! and for a file that cannot be read, where the plan's path comes from.

use goodgo_yaml::{LoadError, YamlError};

/// Why a plan file could not be loaded: it cannot be read, or it is not a valid plan.
///
/// Its message is its cause's, a [`LoadError`], which it keeps as its source (so a problem
/// in the file is still `path:line:col: message`); it adds the hint for a plan file that
/// cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct PlanError {
    #[from]
    source: LoadError,
}

impl PlanError {
    /// The cause: a read failure, or a located problem in the file.
    pub fn load_error(&self) -> &LoadError {
        &self.source
    }

    /// The located problem, if this error is one.
    pub fn located(&self) -> Option<&YamlError> {
        match &self.source {
            LoadError::Invalid(e) => Some(e),
            LoadError::Read { .. } => None,
        }
    }
}

impl From<YamlError> for PlanError {
    fn from(e: YamlError) -> Self {
        LoadError::Invalid(e).into()
    }
}

impl goodgo_diag::Diagnostic for PlanError {
    fn class(&self) -> Option<goodgo_diag::Class> {
        Some(goodgo_diag::Class::Input)
    }

    fn hint(&self) -> Option<String> {
        match self.source {
            LoadError::Read { .. } => {
                Some("set `plan_file` in goodgo.yaml, GOODGO_PLAN_FILE, or pass --file".into())
            }
            LoadError::Invalid(_) => None,
        }
    }

    fn location(&self) -> Option<goodgo_diag::Location<'_>> {
        self.located().and_then(goodgo_diag::Diagnostic::location)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use goodgo_diag::{Class, Diagnostic};

    use crate::Plan;

    #[test]
    fn a_missing_file_is_bad_input_with_a_hint() {
        let e = Plan::load(
            Path::new("/nonexistent/goodgo/plan.yaml"),
            Path::new("docs/plan.yaml"),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("cannot read docs/plan.yaml: "),
            "{e}"
        );
        assert_eq!(e.class(), Some(Class::Input));
        assert!(e.hint().unwrap().contains("plan_file"));
        assert!(e.location().is_none());
        // The read error stays in the chain, below the loader's error.
        let load = std::error::Error::source(&e).unwrap();
        assert!(load.downcast_ref::<goodgo_yaml::LoadError>().is_some());
        let io = std::error::Error::source(load).unwrap();
        assert!(io.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn a_problem_in_the_file_is_located() {
        let yaml =
            Plan::parse(Path::new("p.yaml"), "tasks:\n  - id: A\n    colour: red\n").unwrap_err();
        let e = super::PlanError::from(yaml.clone());
        assert_eq!(e.to_string(), yaml.to_string());
        assert_eq!(e.class(), Some(Class::Input));
        assert!(e.hint().is_none());
        let loc = e.location().unwrap();
        assert_eq!((loc.path, loc.line), (Path::new("p.yaml"), yaml.pos.line));
        assert_eq!(loc.message, yaml.message);
    }
}
