//! PostgreSQL as a local process: initdb honouring the official image's `POSTGRES_*`
//! contract, the server with the service's settings, and its database created.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use goodgo_compose::Service;

use super::logs::new_log;
use super::{Kind, NativeRuntime, spawn};
use crate::{StackError, probe};

/// The superuser and database the official postgres image sets up from a service's
/// environment; the native runtime honours the same contract, and callers that connect
/// to the service read it here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `POSTGRES_USER`, else `postgres`.
    pub user: String,
    /// `POSTGRES_PASSWORD`, when set.
    pub password: Option<String>,
    /// `POSTGRES_DB`, else the user's name.
    pub db: String,
}

/// The [`Credentials`] of a postgres `service`.
pub fn credentials(service: &Service) -> Credentials {
    Credentials::from_env(|k| service.environment.get(k).cloned())
}

impl Credentials {
    /// The credentials an official-image environment (`POSTGRES_*`) sets up.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Credentials {
        let user = env("POSTGRES_USER").unwrap_or_else(|| "postgres".into());
        Credentials {
            password: env("POSTGRES_PASSWORD"),
            db: env("POSTGRES_DB").unwrap_or_else(|| user.clone()),
            user,
        }
    }
}

impl NativeRuntime {
    pub(super) fn as_postgres(&self, program: PathBuf) -> Command {
        if self.as_postgres_user {
            let mut cmd = Command::new("setpriv");
            cmd.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    pub(super) fn chown_postgres(&self, path: &Path) -> Result<(), StackError> {
        if !self.as_postgres_user {
            return Ok(());
        }
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(())
        } else {
            Err(StackError::Failed {
                message: format!("cannot hand {} to the postgres user", path.display()),
                logs: Vec::new(),
                hint: None,
            })
        }
    }

    /// A folder for the server's unix socket: the service folder when its path is short
    /// enough for a socket name (107 bytes), else one under /tmp.
    pub(super) fn socket_dir(dir: &Path) -> PathBuf {
        if dir.as_os_str().len() < 80 {
            return dir.to_path_buf();
        }
        // A content hash (sha2), not `DefaultHasher`: the name must stay the same across
        // goodgo builds, or a server started by an older one could not be reached.
        use sha2::Digest;
        use std::os::unix::ffi::OsStrExt;
        let digest = sha2::Sha256::digest(dir.as_os_str().as_bytes());
        let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        std::env::temp_dir().join(format!("goodgo-sock-{short}"))
    }

    pub(super) async fn start_postgres(
        &self,
        service: &Service,
        dir: &Path,
        deadline: Instant,
    ) -> Result<(), StackError> {
        let bin = self.pg_bin_dir.clone().unwrap_or_default();
        let env = &service.environment;
        let Credentials { user, password, db } = credentials(service);
        let password = password.unwrap_or_default();
        let trust = env
            .get("POSTGRES_HOST_AUTH_METHOD")
            .is_some_and(|m| m == "trust");
        if password.is_empty() && !trust {
            return Err(StackError::Unsupported {
                message: format!("service `{}` sets no POSTGRES_PASSWORD (the postgres image refuses to start without one)", service.name),
                hint: Some("set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust for a throwaway database".into()),
            });
        }
        let data = dir.join("data");
        let sock = Self::socket_dir(dir);
        std::fs::create_dir_all(&sock).map_err(StackError::io("creating", &sock))?;
        self.chown_postgres(dir)?;
        self.chown_postgres(&sock)?;
        let fresh = !data.join("PG_VERSION").exists();
        if fresh {
            // initdb writes into a side folder renamed into place when complete, so an
            // interrupted initdb leaves nothing the next `up` would mistake for a cluster.
            let staging = dir.join("data.init");
            if staging.exists() {
                std::fs::remove_dir_all(&staging).map_err(StackError::io("removing", &staging))?;
            }
            if data.exists() {
                std::fs::remove_dir_all(&data).map_err(StackError::io("removing", &data))?;
            }
            let extra = initdb_args(env).map_err(|m| StackError::Unsupported {
                message: format!("service `{}`: POSTGRES_INITDB_ARGS: {m}", service.name),
                hint: None,
            })?;
            let pwfile = dir.join("pwfile");
            std::fs::write(&pwfile, format!("{password}\n"))
                .map_err(StackError::io("writing", &pwfile))?;
            self.chown_postgres(&pwfile)?;
            let auth = if trust { "trust" } else { "scram-sha-256" };
            let out = self
                .as_postgres(bin.join("initdb"))
                .arg("-D")
                .arg(&staging)
                .args([
                    "-U",
                    &user,
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                    "--auth-local=trust",
                    &format!("--auth-host={auth}"),
                ])
                .arg(format!("--pwfile={}", pwfile.display()))
                .args(&extra)
                .output()
                .map_err(spawn("initdb"))?;
            let _ = std::fs::remove_file(&pwfile);
            if !out.status.success() {
                return Err(StackError::Failed {
                    message: format!("initdb for `{}` failed", service.name),
                    logs: String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .map(str::to_string)
                        .collect(),
                    hint: None,
                });
            }
            std::fs::rename(&staging, &data)
                .map_err(StackError::io("moving the new cluster to", &data))?;
        }
        let (ip, port) = Self::endpoint(service, 5432);
        let log = new_log(dir)?;
        let log2 = log
            .try_clone()
            .map_err(StackError::io("opening the log in", dir))?;
        let listen = if ip == "0.0.0.0" {
            "*".to_string()
        } else {
            ip.clone()
        };
        let mut cmd = self.as_postgres(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                &format!("listen_addresses={listen}"),
            ])
            .arg("-k")
            .arg(&sock)
            // `command: postgres -c key=value …`: the server settings pass through.
            .args(postgres_args(service).0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(spawn("postgres"))?;
        Self::write_pid(dir, child.id(), Kind::Postgres)?;
        let ready = || {
            Command::new(bin.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    &sock.display().to_string(),
                    "-p",
                    &port.to_string(),
                ])
                .status()
                .is_ok_and(|s| s.success())
        };
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(self.failed(service, &format!("exited ({status}) while starting")));
            }
            if ready() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(self.failed(service, "did not accept connections in time"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Not only when fresh: an `up` interrupted before this step left no marker, and the
        // next one comes back here with the cluster already made.
        if db != "postgres" {
            ensure_database(&sock, port, &user, &db)
                .await
                .map_err(|source| StackError::Database {
                    service: service.name.clone(),
                    database: db.clone(),
                    source,
                })?;
        }
        // The TCP side too, where clients connect.
        while !probe::tcp_open(&ip, port) {
            if Instant::now() >= deadline {
                return Err(self.failed(service, &format!("does not listen on {ip}:{port}")));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }
}

/// Creates database `db` unless it exists, through the server's unix socket (trusted for
/// local connections, so no password) and `goodgo_db::admin`; no `psql` is spawned.
async fn ensure_database(
    sock: &Path,
    port: u16,
    user: &str,
    db: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(sock)
        .port(port)
        .user(user)
        .dbname("postgres")
        .application_name("goodgo")
        .connect_timeout(Duration::from_secs(10));
    let server = goodgo_db::admin::Target {
        config,
        url: format!(
            "postgres://{user}@localhost:{port}/postgres?host={}",
            sock.display()
        ),
    };
    let client = server.connect().await?;
    let found = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await?;
    if found.is_none() {
        goodgo_db::admin::create_database(&server, db, None).await?;
    }
    Ok(())
}

/// `POSTGRES_INITDB_ARGS`, split like a shell splits words.
pub(super) fn initdb_args(
    env: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    match env.get("POSTGRES_INITDB_ARGS") {
        Some(text) => goodgo_compose::syntax::shlex_split(text),
        None => Ok(Vec::new()),
    }
}

/// The server settings in a postgres service's `command` (`-c key=value`, `-ckey=value`,
/// `--key=value`, after the program name if written), as `-c` arguments; and the other
/// arguments, which the native runtime does not pass on.
pub(super) fn postgres_args(service: &Service) -> (Vec<String>, Vec<String>) {
    let argv = service
        .command
        .as_ref()
        .map(|c| c.to_argv())
        .unwrap_or_default();
    let (mut settings, mut other) = (Vec::new(), Vec::new());
    let mut args = argv.iter().skip_while(|a| a.ends_with("postgres"));
    while let Some(a) = args.next() {
        let value = if a == "-c" {
            args.next().cloned()
        } else if let Some(v) = a.strip_prefix("-c") {
            Some(v.to_string())
        } else {
            a.strip_prefix("--")
                .filter(|v| v.contains('='))
                .map(str::to_string)
        };
        match value {
            Some(v) if v.contains('=') => settings.extend(["-c".to_string(), v]),
            _ => other.push(a.clone()),
        }
    }
    (settings, other)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::native::unsupported;
    use goodgo_compose::CommandLine;

    #[test]
    fn postgres_command_settings_pass_through_and_the_rest_is_named() {
        let service = Service {
            name: "db".into(),
            image: Some("postgres:16".into()),
            command: Some(CommandLine::Exec(
                [
                    "postgres",
                    "-c",
                    "max_connections=200",
                    "-cfsync=off",
                    "--shared_buffers=64MB",
                    "-N",
                    "50",
                ]
                .map(String::from)
                .to_vec(),
            )),
            environment: [
                ("POSTGRES_PASSWORD_FILE", "/run/secrets/pw"),
                ("PGDATA", "/var/lib/postgresql/data/pgdata"),
                ("POSTGRES_INITDB_ARGS", "--data-checksums -A 'md5'"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Service::default()
        };
        let (settings, other) = postgres_args(&service);
        assert_eq!(
            settings,
            [
                "-c",
                "max_connections=200",
                "-c",
                "fsync=off",
                "-c",
                "shared_buffers=64MB"
            ]
        );
        assert_eq!(other, ["-N", "50"]);
        assert_eq!(
            initdb_args(&service.environment).unwrap(),
            ["--data-checksums", "-A", "md5"]
        );
        let warned = unsupported(&service, Kind::Postgres);
        assert_eq!(warned.len(), 3, "{warned:?}");
        assert!(warned[0].starts_with("environment variable PGDATA is ignored"));
        assert!(warned[1].starts_with("environment variable POSTGRES_PASSWORD_FILE is ignored"));
        assert!(warned[2].ends_with("are ignored: -N 50"), "{warned:?}");
    }
}
