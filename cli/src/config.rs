//! The workspace and its settings.
//!
//! A workspace is the nearest ancestor of the current directory holding `goodgo.yaml`
//! (or the current directory itself when there is none). Settings are layered: built-in
//! defaults < `goodgo.yaml` < `GOODGO_*` environment variables < command-line flags (which
//! each command applies on top). Every `GOODGO_*` variable is declared once, in
//! [`ENV_VARS`], which also feeds `goodgo config` and the generated reference.

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::UserError;

/// The file that marks a workspace.
pub const FILE_NAME: &str = "goodgo.yaml";

/// `goodgo.yaml`: every key is optional; an empty file means all defaults.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "goodgo.yaml",
    description = "goodgo workspace settings. Every key is optional; an empty file means all defaults."
)]
pub struct FileConfig {
    /// Project name, used to label containers, networks and volumes. Default: the workspace folder's name.
    pub name: Option<String>,
    /// Which kind of environment this workspace drives. `production` makes destructive commands refuse.
    pub env: Option<Environment>,
    /// How services are run: `docker` (the engine), `native` (local processes) or `auto` (Docker when usable).
    pub runtime: Option<Runtime>,
    /// The Compose file describing the local stack, relative to the workspace.
    pub compose_file: Option<PathBuf>,
    /// The milestone task graph read by `goodgo plan`, relative to the workspace.
    pub plan_file: Option<PathBuf>,
    /// The folder of `V{n}__{name}.sql` migrations, relative to the workspace.
    pub migrations_dir: Option<PathBuf>,
    /// The PostgreSQL database goodgo's `db` commands use (a `postgres://` URL).
    pub database_url: Option<String>,
    /// Where PostgreSQL's binaries (initdb, postgres, pg_dump, …) live; only this folder is searched when set. Default: the newest /usr/lib/postgresql/*/bin, then PATH.
    pub pg_bin_dir: Option<PathBuf>,
    /// Backups (`goodgo backup`): where they go, and which ones `backup prune` keeps.
    pub backup: Option<BackupConfig>,
    /// Releases of the API (`goodgo deploy`): the proxy's port, deadlines, the watch.
    pub deploy: Option<DeployConfig>,
}

/// The `deploy:` section of goodgo.yaml.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// The port the proxy publishes (clients connect here). Default: 8080.
    #[schemars(with = "Option<u16>")]
    pub port: Option<Port>,
    /// The address the proxy listens on. Default: 0.0.0.0 (every interface).
    pub bind: Option<String>,
    /// The file of the API's environment and secrets (`KEY=value`), relative to the workspace; its values reach the API as files, never as variables. Default: .env.
    pub env_file: Option<PathBuf>,
    /// Seconds a new release has to answer 200 on /readyz. Default: 60.
    pub ready_timeout: Option<u64>,
    /// Seconds the old release has to finish its in-flight requests after the switch. Default: 30.
    pub drain_timeout: Option<u64>,
    /// Seconds the new release is watched after the switch; 0 turns the watch off. Default: 30.
    pub watch: Option<u64>,
    /// The share of 5xx answers (0 to 1) during the watch above which the release is switched back. Default: 0.05.
    #[schemars(with = "Option<f64>")]
    pub max_error_rate: Option<Share>,
    /// How many previous releases' containers are kept (stopped) for `deploy rollback`. Default: 3.
    pub keep: Option<u32>,
    /// API replicas on the swarm target (`deploy --target swarm`), 1 or more. Default: 2.
    #[schemars(with = "Option<u32>")]
    pub replicas: Option<Replicas>,
}

/// A replica count, at least 1: refused at its position in goodgo.yaml otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct Replicas(pub u32);

impl TryFrom<u32> for Replicas {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        if n == 0 {
            Err("0 replicas would serve nothing: give 1 or more".into())
        } else {
            Ok(Replicas(n))
        }
    }
}

/// The `backup:` section of goodgo.yaml.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// Where backups are kept: a folder (relative to the workspace) or `s3://BUCKET/PREFIX` (settings from the AWS_* environment variables). Default: .goodgo/backups.
    pub to: Option<PathBuf>,
    /// Parallel pg_dump jobs and compression threads. Default: the CPU count.
    pub jobs: Option<usize>,
    /// Encrypt every backup to these age recipients (X25519 public keys, `age1…`); the identities stay out of the repository.
    pub recipients: Option<Vec<String>>,
    /// The recovery point objective in hours: `backup list` and `status` warn when the newest verified backup is older.
    pub rpo_hours: Option<u32>,
    /// Which backups `backup prune` keeps (grandfather-father-son).
    pub keep: Option<KeepConfig>,
}

/// Retention: each count keeps the newest backup of that many periods; unset counts take their defaults.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepConfig {
    /// The newest N backups. Default: 3.
    pub last: Option<u32>,
    /// The newest backup of each of the last N days (UTC) that have one. Default: 7.
    pub daily: Option<u32>,
    /// The newest backup of each of the last N ISO weeks that have one. Default: 4.
    pub weekly: Option<u32>,
    /// The newest backup of each of the last N months that have one. Default: 6.
    pub monthly: Option<u32>,
}

/// A TCP port, 1 to 65535: refused at its position in goodgo.yaml otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u16")]
pub struct Port(pub u16);

impl TryFrom<u16> for Port {
    type Error = String;
    fn try_from(port: u16) -> Result<Self, String> {
        if port == 0 {
            Err("0 is not a port: give one from 1 to 65535".into())
        } else {
            Ok(Port(port))
        }
    }
}

/// A share from 0 to 1 (`0.05` is 5%).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Share(pub f64);

impl TryFrom<f64> for Share {
    type Error = String;
    fn try_from(share: f64) -> Result<Self, String> {
        if (0.0..=1.0).contains(&share) {
            Ok(Share(share))
        } else {
            Err(format!("{share} is not a share from 0 to 1 (0.05 is 5%)"))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Staging,
    Production,
}

// Where services run; parsed from the command line (`--runtime`, clap), from goodgo.yaml
// and `GOODGO_RUNTIME` (serde), the same three names everywhere. (A plain comment: a doc
// comment would become the generated schema's description.)
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Auto,
    Docker,
    Native,
}

macro_rules! display_as_serde {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let value = serde_json::to_value(self).map_err(|_| fmt::Error)?;
                f.write_str(value.as_str().unwrap_or_default())
            }
        }
    )*};
}
display_as_serde!(Environment, Runtime);

/// A `GOODGO_*` environment variable: the setting it overrides and what it means.
pub struct EnvVar {
    pub name: &'static str,
    /// The `goodgo.yaml` key it overrides; empty for a variable that is not a workspace
    /// setting (read by one command only).
    pub key: &'static str,
    pub help: &'static str,
}

/// Every environment variable goodgo reads, declared once.
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "GOODGO_PROJECT",
        key: "name",
        help: "Project name (labels containers, networks, volumes).",
    },
    EnvVar {
        name: "GOODGO_ENV",
        key: "env",
        help: "development, staging or production; production makes destructive commands refuse.",
    },
    EnvVar {
        name: "GOODGO_RUNTIME",
        key: "runtime",
        help: "auto, docker or native: how services run.",
    },
    EnvVar {
        name: "GOODGO_COMPOSE_FILE",
        key: "compose_file",
        help: "The Compose file of the local stack.",
    },
    EnvVar {
        name: "GOODGO_PLAN_FILE",
        key: "plan_file",
        help: "The plan file read by `goodgo plan`.",
    },
    EnvVar {
        name: "GOODGO_MIGRATIONS_DIR",
        key: "migrations_dir",
        help: "The folder of SQL migrations.",
    },
    EnvVar {
        name: "GOODGO_DATABASE_URL",
        key: "database_url",
        help: "The PostgreSQL URL the `db` commands use.",
    },
    EnvVar {
        name: "GOODGO_PG_BIN_DIR",
        key: "pg_bin_dir",
        help: "Where PostgreSQL's binaries live; only this folder is searched when set.",
    },
    EnvVar {
        name: "GOODGO_API_ADDR",
        key: "",
        help: "The address the API listens on under `goodgo dev` (else `.env`, else 127.0.0.1:8080); passed on to the API.",
    },
    EnvVar {
        name: "GOODGO_PAYMENTS_WEBHOOK_SECRETS",
        key: "",
        help: "The API's payment webhook secrets, comma-separated, newest first (else `.env`); `goodgo api webhook send` signs with the first.",
    },
];

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Env(name) => f.write_str(name),
            Source::Flag(flag) => f.write_str(flag),
        }
    }
}

/// A setting's value and where it came from.
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Sourced<T> {
    fn new(value: T, source: Source) -> Self {
        Self { value, source }
    }

    /// Overrides the value from a command-line flag, when the flag was given.
    pub fn override_with(&mut self, flag: &'static str, value: Option<T>) {
        if let Some(value) = value {
            *self = Sourced::new(value, Source::Flag(flag));
        }
    }
}

/// The settings in force, after layering defaults, the file and the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: Sourced<String>,
    pub env: Sourced<Environment>,
    pub runtime: Sourced<Runtime>,
    pub compose_file: Sourced<PathBuf>,
    pub plan_file: Sourced<PathBuf>,
    pub migrations_dir: Sourced<PathBuf>,
    pub database_url: Sourced<Option<String>>,
    pub pg_bin_dir: Sourced<Option<PathBuf>>,
    pub backup: Sourced<BackupConfig>,
    pub deploy: Sourced<DeployConfig>,
}

/// A found (or assumed) workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The folder holding goodgo.yaml, or the start folder when there is none.
    pub root: PathBuf,
    /// The folder goodgo was started in (after `-C`); paths in messages are shown relative to it.
    pub cwd: PathBuf,
    /// The goodgo.yaml that was read, if any.
    pub config_file: Option<PathBuf>,
    pub settings: Settings,
}

/// Reads the process environment; tests pass their own lookup instead.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Workspace {
    /// Finds the workspace from `start` and layers its settings with `env`.
    pub fn discover(start: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let config_file = start
            .ancestors()
            .map(|dir| dir.join(FILE_NAME))
            // `exists`, not `is_file`: a goodgo.yaml that cannot be read (a folder, no
            // permission) is a broken configuration to report, not a reason to look higher.
            .find(|candidate| candidate.exists());
        let root = config_file
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(start)
            .to_path_buf();
        let shown = config_file.as_deref().map(|path| display_path(start, path));
        let file = match (&config_file, &shown) {
            (Some(path), Some(shown)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    UserError::input(format!("cannot read {}: {e}", shown.display())).with_hint(
                        "goodgo.yaml must be a readable file (an empty one means all defaults)",
                    )
                })?;
                goodgo_yaml::from_str::<FileConfig>(shown, &text)?
            }
            _ => FileConfig::default(),
        };
        let settings = Settings::layer(&root, shown.as_deref(), file, env)?;
        Ok(Self {
            root,
            cwd: start.to_path_buf(),
            config_file,
            settings,
        })
    }

    /// A path inside the workspace, as it should appear in messages: relative to where
    /// goodgo was started when it lies below it.
    pub fn display_path(&self, path: &Path) -> PathBuf {
        display_path(&self.cwd, path)
    }

    /// Resolves a setting's path against the workspace root.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.root.join(path)
    }
}

/// `path` relative to `cwd` when one lies inside the other (`goodgo.yaml`, `../goodgo.yaml`),
/// else as it is.
fn display_path(cwd: &Path, path: &Path) -> PathBuf {
    if let Ok(rel) = path.strip_prefix(cwd) {
        return rel.to_path_buf();
    }
    for (up, ancestor) in cwd.ancestors().enumerate().skip(1).take(8) {
        if let Ok(rel) = path.strip_prefix(ancestor) {
            let mut out: PathBuf = std::iter::repeat_n("..", up).collect();
            out.push(rel);
            return out;
        }
    }
    path.to_path_buf()
}

impl Settings {
    /// Layers defaults < file < environment.
    pub fn layer(
        root: &Path,
        file_path: Option<&Path>,
        file: FileConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, UserError> {
        let from_file = || Source::File(file_path.map(Path::to_path_buf).unwrap_or_default());
        fn pick<T>(default: T, file: Option<T>, file_src: impl Fn() -> Source) -> Sourced<T> {
            match file {
                Some(v) => Sourced::new(v, file_src()),
                None => Sourced::new(default, Source::Default),
            }
        }
        let default_name = root
            .file_name()
            .map(|n| sanitize_name(&n.to_string_lossy()))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "goodgo".to_string());
        let mut s = Settings {
            name: pick(default_name, file.name, from_file),
            env: pick(Environment::Development, file.env, from_file),
            runtime: pick(Runtime::Auto, file.runtime, from_file),
            compose_file: pick(
                PathBuf::from("compose/compose.yaml"),
                file.compose_file,
                from_file,
            ),
            plan_file: pick(PathBuf::from("docs/plan.yaml"), file.plan_file, from_file),
            migrations_dir: pick(PathBuf::from("migrations"), file.migrations_dir, from_file),
            database_url: pick(None, file.database_url.map(Some), from_file),
            pg_bin_dir: pick(None, file.pg_bin_dir.map(Some), from_file),
            backup: pick(BackupConfig::default(), file.backup, from_file),
            deploy: pick(DeployConfig::default(), file.deploy, from_file),
        };
        for var in ENV_VARS {
            let Some(raw) = env(var.name).filter(|v| !v.is_empty()) else {
                continue;
            };
            let src = Source::Env(var.name);
            match var.key {
                "name" => s.name = Sourced::new(raw, src),
                "env" => s.env = Sourced::new(parse_enum(var.name, &raw)?, src),
                "runtime" => s.runtime = Sourced::new(parse_enum(var.name, &raw)?, src),
                "compose_file" => s.compose_file = Sourced::new(raw.into(), src),
                "plan_file" => s.plan_file = Sourced::new(raw.into(), src),
                "migrations_dir" => s.migrations_dir = Sourced::new(raw.into(), src),
                "database_url" => s.database_url = Sourced::new(Some(raw), src),
                "pg_bin_dir" => s.pg_bin_dir = Sourced::new(Some(raw.into()), src),
                // Every key of ENV_VARS is matched above (see `every_env_var_overrides_its_setting`).
                _ => {}
            }
        }
        Ok(s)
    }

    /// Every setting as `(key, value, source)`, in declaration order.
    pub fn rows(&self) -> Vec<(&'static str, String, &Source)> {
        fn row<'a, T>(
            key: &'static str,
            setting: &'a Sourced<T>,
            show: impl Fn(&T) -> String,
        ) -> (&'static str, String, &'a Source) {
            (key, show(&setting.value), &setting.source)
        }
        let path = |p: &PathBuf| p.display().to_string();
        vec![
            row("name", &self.name, String::clone),
            row("env", &self.env, ToString::to_string),
            row("runtime", &self.runtime, ToString::to_string),
            row("compose_file", &self.compose_file, path),
            row("plan_file", &self.plan_file, path),
            row("migrations_dir", &self.migrations_dir, path),
            row("database_url", &self.database_url, |o| {
                o.clone().unwrap_or_default()
            }),
            row("pg_bin_dir", &self.pg_bin_dir, |o| {
                o.as_ref().map(path).unwrap_or_default()
            }),
        ]
    }
}

fn parse_enum<T: serde::de::DeserializeOwned>(var: &str, raw: &str) -> Result<T, UserError> {
    serde_json::from_value(serde_json::Value::String(raw.to_string())).map_err(|_| {
        let choices: Vec<String> = match var {
            "GOODGO_ENV" => vec!["development".into(), "staging".into(), "production".into()],
            _ => vec!["auto".into(), "docker".into(), "native".into()],
        };
        let mut msg = format!("{var}: unknown value `{raw}`");
        if let Some(best) = goodgo_yaml::did_you_mean(raw, choices.iter().map(String::as_str)) {
            msg.push_str(&format!(" (did you mean `{best}`?)"));
        }
        UserError::input(msg).with_hint(format!("{var} takes one of: {}", choices.join(", ")))
    })
}

/// A project name usable in container and volume names: lowercase letters, digits, `-`, `_`.
pub fn sanitize_name(raw: &str) -> String {
    raw.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn layer(file: &str, env: &[(&str, &str)]) -> Result<Settings, UserError> {
        let cfg: FileConfig = goodgo_yaml::from_str(Path::new("goodgo.yaml"), file).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Settings::layer(
            Path::new("/w/My Shop"),
            Some(Path::new("goodgo.yaml")),
            cfg,
            &lookup,
        )
    }

    #[test]
    fn defaults_then_file_then_env() {
        let s = layer("", &[]).unwrap();
        assert_eq!(s.name.value, "my-shop");
        assert_eq!(s.runtime.value, Runtime::Auto);
        assert_eq!(s.runtime.source, Source::Default);

        let s = layer("runtime: native\nname: shop\n", &[]).unwrap();
        assert_eq!(s.runtime.value, Runtime::Native);
        assert_eq!(s.runtime.source, Source::File("goodgo.yaml".into()));

        let s = layer("runtime: native\n", &[("GOODGO_RUNTIME", "docker")]).unwrap();
        assert_eq!(s.runtime.value, Runtime::Docker);
        assert_eq!(s.runtime.source, Source::Env("GOODGO_RUNTIME"));

        let mut s = layer("", &[("GOODGO_PLAN_FILE", "a.yaml")]).unwrap();
        s.plan_file.override_with("--file", Some("b.yaml".into()));
        assert_eq!(s.plan_file.value, PathBuf::from("b.yaml"));
        assert_eq!(s.plan_file.source, Source::Flag("--file"));
    }

    #[test]
    fn bad_env_value_is_input_error_with_suggestion() {
        let err = layer("", &[("GOODGO_ENV", "prodution")]).unwrap_err();
        assert_eq!(err.status, crate::ExitStatus::Error);
        assert!(
            err.message.contains("did you mean `production`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn every_env_var_overrides_its_setting() {
        let settings: Vec<&EnvVar> = ENV_VARS.iter().filter(|v| !v.key.is_empty()).collect();
        assert_eq!(
            layer("", &[]).unwrap().rows().len(),
            settings.len(),
            "one variable per setting"
        );
        for var in settings {
            let value = match var.key {
                "env" => "production",
                "runtime" => "native",
                _ => "x",
            };
            let s = layer("", &[(var.name, value)]).unwrap();
            let row = s.rows().into_iter().find(|r| r.0 == var.key);
            let (_, shown, source) = row.unwrap_or_else(|| panic!("{} names no setting", var.name));
            assert_eq!(
                (shown.as_str(), source),
                (value, &Source::Env(var.name)),
                "{}",
                var.name
            );
        }
    }
}
