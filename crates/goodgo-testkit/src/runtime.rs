//! The two runtimes a stack runs on, for tests that run one body on each
//! ([`crate::stack_test!`]), and whether this machine has what each one needs.

use std::process::Command;

/// Where `goodgo up` runs the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// The Docker engine.
    Docker,
    /// PostgreSQL and Redis as local processes.
    Native,
}

impl Runtime {
    /// The name `--runtime` and the JSON output use.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Native => "native",
        }
    }

    /// Whether this machine can run a stack on this runtime: a Docker engine answering
    /// `docker info`, or PostgreSQL's server binaries and redis-server.
    pub fn available(self) -> bool {
        match self {
            Runtime::Docker => docker_available(),
            Runtime::Native => {
                std::path::Path::new("/usr/lib/postgresql").exists()
                    && which::which("redis-server").is_ok()
            }
        }
    }

    /// True when the runtime is available; otherwise a visible skip line for `test` and
    /// false. Under `cargo xtask test` the native tools must be there (it installs them);
    /// a Docker engine only where one exists.
    pub fn available_or_skip(self, test: &str) -> bool {
        if self.available() {
            return true;
        }
        match self {
            Runtime::Docker => crate::skip(
                test,
                "no Docker engine answers `docker info` on this machine",
            ),
            Runtime::Native => {
                assert!(
                    !crate::strict(),
                    "cargo xtask test installs postgresql-15 and redis-server"
                );
                crate::skip(test, "postgresql-15 or redis-server is not installed");
            }
        }
        false
    }
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// True when a Docker engine answers `docker info`.
pub fn docker_available() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}
