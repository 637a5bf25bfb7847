//! The arguments of `goodgo deploy` and its subcommands (build, rollback, status, history,
//! down).
//!
//! Why a module of its own: the deploy flags (target, image, deadlines, the lock) are shared
//! by a run and a rollback, and the command line's one file would be too long with them.

use clap::{Args, Subcommand, ValueEnum};

/// Where a release goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Target {
    /// This host's engine: the proxy and the API as containers beside each other
    #[default]
    Local,
    /// A Docker swarm (this engine a manager): the API a replicated service rolled out start-first, the proxy a service routing to its tasks
    Swarm,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Local => "local",
            Target::Swarm => "swarm",
        }
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DeployArgs {
    #[command(subcommand)]
    pub command: Option<DeployCommand>,
    #[command(flatten)]
    pub run: DeployRunArgs,
}

/// How a release is rolled out (a deploy or a rollback).
#[derive(Debug, Args, Clone)]
pub struct DeployRunArgs {
    /// Where to deploy (also given after a subcommand: `goodgo deploy status --target swarm`)
    #[arg(long, value_enum, default_value_t = Target::Local, global = true)]
    pub target: Target,
    /// Deploy this already built image instead of building one (`goodgo deploy build`, or an earlier release's)
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Apply pending migrations even when squawk says they break the release still serving
    #[arg(long)]
    pub allow_breaking: bool,
    /// Seconds to wait for another deploy of the target to finish [default: 600]
    #[arg(long, value_name = "S", global = true)]
    pub lock_timeout: Option<u64>,
    /// Seconds the new release has to turn ready [default: `deploy.ready_timeout`, else 60]
    #[arg(long, value_name = "S")]
    pub ready_timeout: Option<u64>,
    /// Seconds to watch the new release after the switch; 0 skips the watch [default: `deploy.watch`, else 30]
    #[arg(long, value_name = "S")]
    pub watch: Option<u64>,
    /// Use this goodgo-api binary for the image instead of building it with cargo
    #[arg(long, value_name = "PATH")]
    pub binary: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Build the API's release image (tagged with the git commit) and deploy nothing
    #[command(
        long_about = "Build the API's release image and deploy nothing.\n\nThe release binary (`cargo build --release -p goodgo-api`, or --binary) and compose/images/api/ are sent to the engine as the build context; the image is tagged {project}-api:{commit} (with -dirty-{hash} for a tree with uncommitted changes) and labelled with the commit, the build time and the newest migration."
    )]
    Build {
        /// Use this goodgo-api binary instead of building it with cargo
        #[arg(long, value_name = "PATH")]
        binary: Option<std::path::PathBuf>,
    },
    /// Switch back to an earlier release (kept stopped), with the same zero-downtime switch
    Rollback {
        /// The release id (`goodgo deploy history`) [default: the one before the serving release]
        release: Option<String>,
        /// Seconds the release has to turn ready [default: `deploy.ready_timeout`, else 60]
        #[arg(long, value_name = "S")]
        ready_timeout: Option<u64>,
    },
    /// The serving release, its public URL, the kept releases and the proxy's health
    Status,
    /// Every release of the target: id, image, commit, who, when, result, duration
    History,
    /// Remove the target's proxy and API containers (the history is kept)
    Down,
}
