//! The command line, as data. Parsing only: nothing here touches the disk or the network.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod api;
mod deploy;
mod stack;

/// Where services run: one type for the flag, `GOODGO_RUNTIME` and goodgo.yaml's `runtime`.
pub use crate::config::Runtime;
pub use api::{ApiArgs, ApiCommand, WebhookCommand, WebhookEvent, WebhookSendArgs};
pub use deploy::{DeployArgs, DeployCommand, DeployRunArgs, Target};
pub use stack::{
    ComposeCommand, ComposeConfigArgs, ConfigFormat, DownArgs, LogsArgs, StackFileArgs, UpArgs,
};

/// goodgo runs the GoodGo platform's local stack, database, plan, CI and operations.
///
/// Run it anywhere inside a workspace (a folder with a goodgo.yaml, found by walking up
/// from the current directory). Settings come from built-in defaults, then goodgo.yaml,
/// then GOODGO_* environment variables, then flags.
#[derive(Debug, Parser)]
#[command(
    name = "goodgo",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Exit status: 0 success, 1 the check or job failed, 2 bad input, usage or configuration.\nDocs: docs/ in the repository; `goodgo config` shows the settings in force."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Run as if goodgo was started in DIR
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    /// Machine-readable output: JSON on stdout and nothing else there
    #[arg(long, global = true)]
    pub json: bool,

    /// Print only results and errors, no progress
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say more about what goodgo is doing (repeat for more)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// When to colour the output (NO_COLOR is honoured with `auto`)
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN", global = true)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that the tools the configured workflows need are installed and reachable
    #[command(
        long_about = "Check that the tools the configured workflows need are installed and reachable.\n\nOne row per check, with a fix for each failure. Exits 1 when something the configured runtime requires is missing."
    )]
    Doctor,

    /// Show the settings in force and where each one comes from
    Config,

    /// Work with the milestone task graph (docs/plan.yaml): check, order, render
    Plan(PlanArgs),

    /// Migrate, inspect, verify, seed and reset the GoodGo database
    Db(DbArgs),

    /// Back up the GoodGo database, prove backups by restoring them, restore, prune
    #[command(
        long_about = "Back up the GoodGo database, prove backups by restoring them, restore, prune.\n\nA backup is a folder: the real pg_dump's directory format, each data file compressed with zstd, and a manifest.json written last with every file's SHA-256 and every table's row count and content hash. A backup without its manifest does not exist: interrupted runs are never listed and are cleaned up by the next. See docs/backup.md for the format."
    )]
    Backup(BackupArgs),

    /// The development loop: stack up, database migrated and seeded, API built, running and reloaded on change
    #[command(
        long_about = "The development loop: stack up, database migrated and seeded, API built and running.\n\nPrints one panel with the API, docs and database addresses, then watches service/ and migrations/: a source change rebuilds and restarts the API (the old one serves until the new one has built), a new migration is applied, a build error is shown and the session goes on. Ctrl-C stops the API; the services keep running for the next `dev` (--down stops them too)."
    )]
    Dev(DevArgs),

    /// Load tests with the real k6: run scenarios, save baselines, catch regressions, draw trends
    #[command(
        long_about = "Load tests with the real k6: run scenarios, save baselines, catch regressions, draw trends.\n\nScenarios are the k6 scripts in ci/k6/ (smoke, search, auth, listings). Without --base-url, goodgo brings the stack up, migrates and seeds the database, builds the API in release and starts it on a free port, and stops what it started afterwards.\n\nExamples:\n  goodgo k6 run search --rate 50 --duration 20s\n  goodgo k6 baseline save search --runs 3\n  goodgo k6 compare search\n  goodgo k6 report"
    )]
    K6(K6Args),

    /// Helpers for working on the GoodGo API: send signed payment webhooks to the running API
    Api(ApiArgs),

    /// Create a new workspace with this project's shape (never overwrites without --force)
    Init {
        /// Where to create it [default: the current directory]
        dir: Option<PathBuf>,
        /// Project name [default: the folder's name]
        #[arg(long)]
        name: Option<String>,
        /// Overwrite existing template files (an existing .env is always kept)
        #[arg(long)]
        force: bool,
        /// Only report which template files differ from what init would write
        #[arg(long, conflicts_with = "force")]
        check: bool,
    },

    /// Manage the workspace's local secrets (.env)
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },

    /// Release the API with no dropped request: build, migrate, switch, watch, roll back
    #[command(
        long_about = "Release the API with no dropped request: build, migrate, start beside the old, switch, watch.\n\nOne deploy at a time per target (a second waits, naming the holder). Pending migrations run under the migration lock, and those squawk says would break the release still serving are refused unless --allow-breaking. The new release starts beside the old one and gets traffic only once /readyz answers 200; the proxy (HAProxy, switched through its runtime API) then drains the old one. For the watch window the new release's 5xx share is read from the proxy: above `deploy.max_error_rate` traffic goes back to the old release and the deploy exits 1 saying why. Every release is recorded in .goodgo/deploy/<target>/history.json.\n\nWith --target swarm (this engine a swarm manager) the API is a replicated service that swarm rolls out itself, start-first, one replica at a time, and rolls back when a new task fails within the watch window; goodgo follows each replica and exits 1 with the tasks' errors on a rollback. The proxy is a service publishing `deploy.port` in host mode.\n\nExamples:\n  goodgo deploy\n  goodgo deploy --target swarm\n  goodgo deploy --image goodgo-api:4f2c1d9e0a7b\n  goodgo deploy rollback\n  goodgo deploy status --json"
    )]
    Deploy(DeployArgs),

    /// Start the stack's services (and what they depend on), on Docker or natively
    #[command(
        long_about = "Start the stack's services (and what they depend on), on Docker or natively.\n\nServices start in dependency waves, independent ones in parallel, each after its depends_on conditions hold; `up` returns when every service is up and healthy. Re-running it with nothing changed touches nothing; a changed service is recreated alone."
    )]
    Up(UpArgs),

    /// Stop and remove the stack's services (and with --volumes their data)
    Down(DownArgs),

    /// The stack's services: runtime, state, health, ports, uptime
    Status(StackFileArgs),

    /// Show the services' logs, prefixed by service
    Logs(LogsArgs),

    /// Work with the Compose project itself: its resolved configuration
    Compose {
        #[command(subcommand)]
        command: ComposeCommand,
    },

    /// Run the CI pipeline (ci/pipeline.yaml): steps in dependency order, cached by content
    #[command(
        long_about = "Run the CI pipeline (ci/pipeline.yaml): steps in dependency order, cached by content.\n\nAt most -j steps run at once; a failed step skips what depends on it while independent steps go on. A step whose key (its definition, the contents of its inputs, its env values, tool versions and its dependencies' keys) is stored is not run: its log is replayed and its outputs restored. Exit status 1 when a step failed, 2 for a bad pipeline."
    )]
    Ci(CiArgs),

    /// Run the pipeline's lint steps (`lint: true`); --fix runs their fixers first
    Lint(LintArgs),

    /// Run the pipeline's test steps, each with a fresh copy of the migrated database
    #[command(
        long_about = "Run the pipeline's test steps (`test: true` in ci/pipeline.yaml, else the step named `test`), each with a database of its own.\n\nThe database is copied from a template migrated with the workspace's migrations (built once per set of migrations; a copy takes milliseconds), its URL in DATABASE_URL and GOODGO_DATABASE_URL, and dropped afterwards. The steps run without their pipeline dependencies and without the cache (unless --cached). Arguments after `--` go to the test command.\n\nExamples:\n  goodgo test\n  goodgo test -- search::        # only the tests whose names match\n  goodgo test --junit target/junit.xml"
    )]
    Test(TestArgs),

    /// Print a shell completion script
    #[command(
        long_about = "Print a shell completion script.\n\nExamples:\n  goodgo completions bash > ~/.local/share/bash-completion/completions/goodgo\n  goodgo completions zsh > \"${fpath[1]}/_goodgo\"\n  goodgo completions fish > ~/.config/fish/completions/goodgo.fish"
    )]
    Completions {
        /// The shell to write completions for
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan file [default: `plan_file` from goodgo.yaml, else docs/plan.yaml]
    #[arg(long, short = 'f', value_name = "PATH", global = true)]
    pub file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: PlanCommand,
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Check the plan: references, duplicates, self-dependencies, cycles; exit 2 on errors
    Check,
    /// List the tasks in topological waves (a task comes one wave after its latest dependency)
    Waves {
        /// Schedule only unfinished tasks, treating done ones as satisfied
        #[arg(long)]
        todo: bool,
    },
    /// Tasks ready to start now, most urgent first
    Next,
    /// The longest chain of unfinished work by summed estimate
    CriticalPath {
        /// Consider every task, done ones too
        #[arg(long)]
        all: bool,
    },
    /// One task: what it depends on, what it unblocks, and why it is blocked
    Show {
        /// Task id or code
        id: String,
    },
    /// Progress per milestone, with commits that name each task as evidence
    Status,
    /// Change a task's status in the file, keeping comments and layout
    Set {
        /// Task id or code
        id: String,
        /// The new status
        #[arg(value_enum)]
        status: PlanStatus,
    },
    /// Draw the graph as Mermaid, Graphviz DOT, normalised JSON or a self-contained HTML page
    Graph {
        /// The output format (the global --json always selects json)
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
        /// Write to PATH instead of stdout
        #[arg(long, short = 'o', value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Write docs/IMPLEMENTATION_PLAN.md from the plan (--check: exit 1 when it is stale)
    Render {
        /// Only compare; exit 1 when the committed file differs
        #[arg(long)]
        check: bool,
        /// The Markdown file [default: docs/IMPLEMENTATION_PLAN.md in the workspace]
        #[arg(
            long = "out",
            short = 'o',
            visible_alias = "output",
            value_name = "PATH"
        )]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// The database [default: GOODGO_DATABASE_URL, then `database_url` in goodgo.yaml]
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,

    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations, each in its own transaction, under an advisory lock
    #[command(
        long_about = "Apply pending migrations, each in its own transaction, under an advisory lock.\n\nConcurrent runners (CI jobs, replicas starting) queue on the lock: each migration is applied exactly once and the others find nothing to do. A migration the server rejects is reported at its line; the ones before it stay applied."
    )]
    Migrate {
        /// Print what would be applied and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Stop after this version
        #[arg(long, value_name = "VERSION")]
        target: Option<i32>,
    },
    /// Applied, pending, divergent (changed since applied) and missing migrations; exit 1 on the last two
    Status,
    /// Create the next migration, V<N>__NAME.sql, with a header comment
    New {
        /// What the migration does, e.g. "add listing views"
        name: String,
    },
    /// Compare the database's schema with a fresh database built from the migrations
    Verify,
    /// Drop and recreate the database, migrate and seed (in production only with --yes twice)
    Reset {
        /// Do not ask for confirmation (twice in a production workspace)
        #[arg(long, short = 'y', action = clap::ArgAction::Count)]
        yes: u8,
        /// Listings to seed afterwards
        #[arg(long, default_value_t = 1000, value_name = "N")]
        listings: u64,
        /// Do not seed after migrating
        #[arg(long)]
        no_seed: bool,
    },
    /// Load development data: the workspace's seeds/*.sql, else GoodGo's own into an empty database
    #[command(
        long_about = "Load development data.\n\nA workspace that ships seeds/*.sql (as `goodgo init` writes it) gets those files, run in name order in one transaction; they should be safe to run twice. Otherwise GoodGo's own deterministic accounts and listings are loaded into empty users and listings tables (see docs/db.md for the accounts).\n\nWith --if-empty, a database that already has rows is left as it is (exit 0), so `goodgo db migrate && goodgo db seed --if-empty` can run any number of times."
    )]
    Seed {
        /// How many listings for GoodGo's own seed (accounts scale with it)
        #[arg(long, default_value_t = 1000, value_name = "N")]
        listings: u64,
        /// Do nothing (and succeed) when a table already has rows
        #[arg(long)]
        if_empty: bool,
    },
    /// Development only: re-apply the last applied migration after its file changed
    #[command(
        long_about = "Development only: re-apply the last applied migration after its file changed.\n\nIn one transaction it runs your undo SQL, undo/V<N>__NAME.sql in the migrations folder (what reverts the migration as it was applied), then the migration as it is now, and records its new checksum. Nothing is reverted that the undo file does not say; any error rolls all of it back. Refused unless `env` is development; see docs/db.md."
    )]
    Redo,
    /// Lint pending migrations with squawk; exit 1 on findings
    Lint {
        /// Lint every migration, not only pending ones (needs no database)
        #[arg(long)]
        all: bool,
    },
    /// Open psql on the database
    Psql,
    /// Print the database URL
    Url,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Replace every secret in .env with a fresh random value (other lines are kept)
    Rotate,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where services run [default: `runtime` from goodgo.yaml, else auto]
    #[arg(long, value_enum, value_name = "RUNTIME")]
    pub runtime: Option<Runtime>,
    /// Do not seed an empty database
    #[arg(long)]
    pub no_seed: bool,
    /// Stop the services too when the session ends
    #[arg(long)]
    pub down: bool,
}

#[derive(Debug, Args)]
pub struct K6Args {
    #[command(subcommand)]
    pub command: K6Command,
}

#[derive(Debug, Subcommand)]
pub enum K6Command {
    /// Run scenarios (default: smoke) and print a table per endpoint; a crossed threshold exits 1
    Run {
        /// Scenarios: names of the scripts in ci/k6/ (smoke, search, auth, listings)
        #[arg(value_name = "SCENARIO")]
        scenarios: Vec<String>,
        #[command(flatten)]
        load: K6Load,
    },
    /// Save baselines
    Baseline {
        #[command(subcommand)]
        command: K6BaselineCommand,
    },
    /// Run a scenario again and fail when p95 or the error rate is worse than its baseline
    Compare {
        /// The scenario [default: search]
        #[arg(value_name = "SCENARIO")]
        scenario: Option<String>,
        /// Allowed slowdown of p95, in percent, when the baseline's own noise is smaller
        #[arg(long, value_name = "PCT", default_value_t = 15.0)]
        tolerance: f64,
        /// Compare even though the baseline was measured on another machine
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        load: K6Load,
    },
    /// Write one self-contained HTML page with each scenario's trends and the latest histogram
    Report {
        /// Where to write it [default: .goodgo/k6/report.html]
        #[arg(long, short = 'o', value_name = "PATH")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum K6BaselineCommand {
    /// Run a scenario N times and store the median of each metric with its spread in docs/perf/baselines/
    Save {
        /// The scenario [default: search]
        #[arg(value_name = "SCENARIO")]
        scenario: Option<String>,
        /// How many runs the medians come from
        #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
        runs: u32,
        #[command(flatten)]
        load: K6Load,
    },
}

/// How hard a k6 run pushes, and at what.
#[derive(Debug, Args, Clone, Default)]
pub struct K6Load {
    #[command(flatten)]
    pub knobs: K6Knobs,
    /// A running API to test instead of starting one
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// More variables for the script, as k6's -e (repeatable), e.g. P95_MS=300
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
}

/// The knobs every scenario script reads: given as flags, and stored with a baseline (which
/// `compare` reuses for the flags not given).
#[derive(Debug, Args, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K6Knobs {
    /// Virtual users (the script's VUS knob)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub vus: Option<u32>,
    /// How long to run, e.g. 10s or 1m (the script's DURATION knob)
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// Arrival rate, iterations per second (the script's RATE knob)
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub rate: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanStatus {
    Todo,
    Doing,
    Done,
    Blocked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
    Json,
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

/// The clap command tree, for completions, the man page and the CLI reference.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        super::command().debug_assert();
    }
}

/// The pipeline `ci` and `lint` run, and how many of its steps at once.
#[derive(Debug, Args, Clone)]
pub struct PipelineArgs {
    /// The pipeline file [default: ci/pipeline.yaml in the workspace]
    #[arg(long, short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// How many steps may run at once [default: the number of cores]
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct CiArgs {
    /// Steps to run, with what they depend on [default: every step]
    #[arg(value_name = "STEP")]
    pub steps: Vec<String>,

    #[command(flatten)]
    pub pipeline: PipelineArgs,

    /// Print the order and which steps would come from the cache; run nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Say why STEP will run: which input file, env value, tool version or dependency changed
    #[arg(long, value_name = "STEP", conflicts_with = "dry_run")]
    pub explain: Option<String>,

    /// Write a JUnit XML report (one test case per step, per test for `junit: libtest` steps)
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,

    #[command(flatten)]
    pub affected: AffectedArgs,

    #[command(flatten)]
    pub cache: CacheArgs,
}

/// `--affected [--base REF]`: only what the changes since a base touch.
#[derive(Debug, Args, Clone, Default)]
pub struct AffectedArgs {
    /// Run only the steps whose inputs changed since the merge base with --base, and their dependants
    #[arg(long)]
    pub affected: bool,

    /// The base for --affected [default: origin/$GITHUB_BASE_REF on GitHub, else main]
    #[arg(long, value_name = "REF", requires = "affected")]
    pub base: Option<String>,
}

/// Where `ci` keeps its cache, and whether it uses it.
#[derive(Debug, Args, Default)]
pub struct CacheArgs {
    /// The cache folder [default: $GOODGO_CI_CACHE, else .goodgo/cache/ci]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Run every step; read and write no cache entry
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Run each lint step's `fix` command first (e.g. `cargo fmt --all`)
    #[arg(long)]
    pub fix: bool,

    #[command(flatten)]
    pub pipeline: PipelineArgs,

    /// Write a JUnit XML report
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,

    /// Write a JUnit XML report (one test case per test for `junit: libtest` steps)
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,

    #[command(flatten)]
    pub affected: AffectedArgs,

    /// Give the tests no database
    #[arg(long)]
    pub no_db: bool,

    /// Use the CI cache: a test step whose key is stored is replayed, not run
    #[arg(long)]
    pub cached: bool,

    /// Arguments for the test command, e.g. a test name filter
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The database [default: GOODGO_DATABASE_URL, then `database_url` in goodgo.yaml, then the running stack's]
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,

    /// Where backups are kept: a folder or s3://BUCKET/PREFIX (settings from AWS_* variables) [default: `backup.to` in goodgo.yaml, then .goodgo/backups]
    #[arg(long, value_name = "DEST", global = true)]
    pub to: Option<String>,

    #[command(subcommand)]
    pub command: BackupCommand,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Dump the database into a new backup (pg_dump --jobs, zstd, checksummed manifest last)
    #[command(
        long_about = "Dump the database into a new backup (pg_dump --jobs, zstd, checksummed manifest last).\n\nEvery table's rows are counted and hashed from pg_dump's own files as it writes them, in the same pass as their compression and checksum: no table is read twice. With age recipients (--encrypt-to, or `backup.recipients` in goodgo.yaml) every file is encrypted after compression; only public keys are needed here, the identity is needed to restore."
    )]
    Create {
        /// Parallel pg_dump jobs and compression threads [default: `backup.jobs`, then the CPU count]
        #[arg(long, short = 'j', value_name = "N")]
        jobs: Option<usize>,
        /// Encrypt to this age recipient (a public key `age1…`; repeatable) [default: `backup.recipients`]
        #[arg(long, value_name = "RECIPIENT")]
        encrypt_to: Vec<String>,
    },
    /// The backups at the destination, newest first: id, database, age, size, tables, verified
    List,
    /// Check every file of a backup against its manifest; with --restore, prove it by restoring it
    #[command(
        long_about = "Check every file of a backup against its manifest; with --restore, prove it by restoring it.\n\nWith --restore the backup is restored into a scratch database (created and dropped by goodgo), every table's row count and content hash is compared with the manifest, and the verification is recorded in the backup's verified.json. A bad file is named and nothing is restored (exit 1). An encrypted backup is restored (and, without --restore, also decrypted) with its identity: --identity FILE or GOODGO_BACKUP_IDENTITY; a missing or wrong identity is refused before anything is read (exit 2)."
    )]
    Verify {
        /// The backup's id [default: the newest]
        id: Option<String>,
        /// Also restore it into a scratch database and compare every table
        #[arg(long)]
        restore: bool,
        /// Parallel checksum threads and pg_restore jobs (and connections loading each big table) [default: the CPU count]
        #[arg(long, short = 'j', value_name = "N")]
        jobs: Option<usize>,
        /// The age identity file that opens an encrypted backup [default: GOODGO_BACKUP_IDENTITY]
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
    },
    /// Restore a backup into a database (created when missing), then check every table
    #[command(
        long_about = "Restore a backup into a database (created when missing), then check every table.\n\nEvery file is checked (and, for an encrypted backup, opened with --identity FILE or GOODGO_BACKUP_IDENTITY) before any database is touched. The backup is restored with pg_restore --jobs into a new database, created with the backup's encoding and locale (a table whose data is over 32 MiB is loaded by goodgo on --jobs connections at once, beside pg_restore), and every table's row count and content hash is compared with the manifest; only then does that database take the target's name. A target that already holds tables is replaced only with --yes (twice in a production workspace); a failed restore leaves it as it was."
    )]
    Restore {
        /// The backup's id (`goodgo backup list`)
        id: String,
        /// The database to restore into: a name on the same server, or a postgres:// URL
        #[arg(long, value_name = "NAME")]
        to_database: String,
        /// Replace a database that holds tables (twice in a production workspace)
        #[arg(long, short = 'y', action = clap::ArgAction::Count)]
        yes: u8,
        /// Parallel pg_restore jobs, and connections loading each big table [default: the CPU count]
        #[arg(long, short = 'j', value_name = "N")]
        jobs: Option<usize>,
        /// The age identity file that opens an encrypted backup [default: GOODGO_BACKUP_IDENTITY]
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// Make every object the connecting user's and leave out the backup's GRANTs: for a
        /// server without the roles that own the dumped objects (pg_restore --no-owner
        /// --no-privileges)
        #[arg(long)]
        no_owner: bool,
    },
    /// Delete the backups the retention policy (`backup.keep` in goodgo.yaml) does not keep
    #[command(
        long_about = "Delete the backups the retention policy (`backup.keep` in goodgo.yaml) does not keep.\n\nGrandfather-father-son: the newest `last` backups, and the newest of each of the most recent `daily` days, `weekly` ISO weeks and `monthly` months (UTC). The newest verified backup and the newest backup are always kept. Prints what goes and why the rest stays."
    )]
    Prune {
        /// Print what would be deleted and delete nothing
        #[arg(long)]
        dry_run: bool,
        /// Confirm in a production workspace (give it twice)
        #[arg(long, short = 'y', action = clap::ArgAction::Count)]
        yes: u8,
    },
}
