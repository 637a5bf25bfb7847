//! The arguments of the stack's commands: `up`, `down`, `status`, `logs` and `compose`,
//! and the Compose files and project name they share.
//!
//! Why a module of its own: these commands share their file and project flags, and the
//! command line's one file would be too long with them.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::Runtime;

/// Where the stack is described, and what it is called.
#[derive(Debug, Args, Clone)]
pub struct StackFileArgs {
    /// A Compose file; repeat it to merge later files over earlier ones [default: the files COMPOSE_FILE lists, else `compose_file` from goodgo.yaml (compose/compose.yaml) and the `.override` file beside it]
    #[arg(long = "file", short = 'f', value_name = "PATH")]
    pub file: Vec<PathBuf>,
    /// Project name (labels containers, networks, volumes) [default: from goodgo.yaml or the Compose file]
    #[arg(long, short = 'p', value_name = "NAME")]
    pub project: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Services to start (with their dependencies) [default: all active ones]
    pub services: Vec<String>,
    #[command(flatten)]
    pub stack: StackFileArgs,
    /// Where services run [default: `runtime` from goodgo.yaml, else auto]
    #[arg(long, value_enum, value_name = "RUNTIME")]
    pub runtime: Option<Runtime>,
    /// Print the plan (runtime, waves, services) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for every service to be up and healthy
    #[arg(long, default_value_t = 120, value_name = "S")]
    pub timeout: u64,
    /// Enable services of this Compose profile (repeatable)
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub stack: StackFileArgs,
    /// Also delete the services' volumes and data (in production only with --yes twice)
    #[arg(long)]
    pub volumes: bool,
    /// Confirm --volumes in a production workspace (give it twice)
    #[arg(long, short = 'y', action = clap::ArgAction::Count)]
    pub yes: u8,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Services to show [default: all]
    pub services: Vec<String>,
    /// A Compose file; repeat it to merge later files over earlier ones [default: as for `up`]
    #[arg(long = "file", value_name = "PATH")]
    pub file: Vec<PathBuf>,
    /// Project name [default: from goodgo.yaml or the Compose file]
    #[arg(long, short = 'p', value_name = "NAME")]
    pub project: Option<String>,
    /// Keep printing new lines until interrupted
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the last N lines of each service
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
}

impl StackFileArgs {
    /// The Compose files and project flags, as the stack commands take them.
    pub fn which(&self) -> (&[PathBuf], Option<&String>) {
        (&self.file, self.project.as_ref())
    }
}

impl LogsArgs {
    /// The Compose files and project flags, as the stack commands take them.
    pub fn which(&self) -> (&[PathBuf], Option<&String>) {
        (&self.file, self.project.as_ref())
    }
}

#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Print the resolved project as `docker compose config` does
    #[command(
        long_about = "Print the resolved project as `docker compose config` does.\n\nThe files merged (-f, COMPOSE_FILE, or the workspace's Compose file and its `.override` file), variables interpolated, `include` and `extends` applied, short syntax expanded and defaults filled, in Compose's canonical form — so it can be diffed with `docker compose config`. Warnings go to stderr; a broken file is `file:line:col: error` and exit 2.\n\nExamples:\n  goodgo compose config\n  goodgo compose config -f compose.yaml -f compose.prod.yaml --format json"
    )]
    Config(ComposeConfigArgs),
}

#[derive(Debug, Args)]
pub struct ComposeConfigArgs {
    #[command(flatten)]
    pub stack: StackFileArgs,
    /// Output format (`--json` is `--format json`)
    #[arg(long, value_enum, default_value_t = ConfigFormat::Yaml, value_name = "FORMAT")]
    pub format: ConfigFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigFormat {
    Yaml,
    Json,
}
