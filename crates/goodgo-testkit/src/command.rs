//! Running a binary the way a user would, in a clean environment, and what one run
//! produced: exit code, stdout and stderr.

use std::path::Path;
use std::process::Command;

/// What one run of a command produced.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Exit code, stdout and stderr in one block: what a snapshot records.
    pub fn report(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Fails the test (showing stderr) unless the run exited with `code` and its stderr
    /// holds every one of `texts`.
    #[track_caller]
    pub fn assert_stderr(&self, code: i32, texts: &[&str]) -> &Run {
        assert_eq!(self.code, code, "{}", self.stderr);
        assert_has(&self.stderr, texts);
        self
    }

    /// Stdout parsed as JSON; fails the test (showing stdout) when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl From<std::process::Output> for Run {
    /// What a finished process wrote (`-1` for a process killed by a signal).
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `cmd` to its end and collects what it wrote.
pub fn run(cmd: &mut Command) -> Run {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
        .into()
}

/// `bin` started in `cwd`, with no GOODGO_* (other than GOODGO_TEST_*) or colour settings
/// inherited from the environment the tests run in.
pub fn clean_command(bin: &Path, cwd: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("GOODGO_") && !key.starts_with("GOODGO_TEST_") {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "dumb");
    cmd
}

/// Fails the test (showing `output`) unless it holds every one of `texts`.
#[track_caller]
pub fn assert_has(output: &str, texts: &[&str]) {
    for text in texts {
        assert!(output.contains(text), "want {text:?} in:\n{output}");
    }
}
