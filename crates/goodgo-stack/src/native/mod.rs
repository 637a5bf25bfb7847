//! The native runtime: the services goodgo knows, as local processes.
//!
//! PostgreSQL (initdb into `.goodgo/native/<project>/<service>/data`, honouring the official
//! image's `POSTGRES_USER`/`POSTGRES_PASSWORD`/`POSTGRES_DB` contract, run as the `postgres`
//! user when goodgo runs as root), Redis (`redis-server`) and S3 for MinIO images (`s3s-fs`
//! over the service's data folder, with MinIO's credentials). Each service lives in its own
//! folder with a pid file, a log (and the previous run's as `log.1`) and the hash of its
//! definition, so `status`, `logs` and `down` work across invocations and a changed
//! definition restarts only that service.
//!
//! Split by concern: `postgres`, `redis` and `s3` start their programs, `process` knows
//! pids and signals, `logs` keeps and reads the log files.

mod logs;
mod postgres;
mod process;
mod redis;
mod s3;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use goodgo_compose::{Condition, Project, Service, config_hash};

use postgres::postgres_args;
pub use postgres::{Credentials, credentials};
use process::{alive, is_root, parse_pid_file, program_of, runs, signal};
pub use s3::{PHOTO_BUCKET, S3_PORT, S3_REGION, S3Endpoint, s3_endpoint};

use crate::runtime::{BoxFuture, OnEvent, OnLine, Runtime, ServiceStarter};
use crate::{Action, Event, RunningDatabase, ServiceStatus, StackError, UpRequest, probe};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Redis,
    /// An S3 API server (MinIO's images), run as s3s-fs.
    S3,
}

impl Kind {
    /// The port the program listens on in its image, the one a service publishes.
    pub fn port(self) -> u16 {
        match self {
            Kind::Postgres => 5432,
            Kind::Redis => 6379,
            Kind::S3 => s3::S3_PORT,
        }
    }
}

/// Which native program runs `service`, from its image name.
pub fn kind(service: &Service) -> Result<Kind, StackError> {
    let image = service.image.as_deref().unwrap_or("");
    if let Some(kind) = image_kind(image) {
        Ok(kind)
    } else {
        Err(StackError::Unsupported {
            message: format!(
                "service `{}` (image `{}`) has no native runner: goodgo runs postgres, redis and minio (S3) images natively",
                service.name,
                if image.is_empty() { "none" } else { image }
            ),
            hint: Some(
                "use `--runtime docker`, or leave the service out (name the services to start)"
                    .into(),
            ),
        })
    }
}

/// Which program an image runs, from its name (`goodgo/postgres:15`, `redis:7-alpine`,
/// `registry:5000/postgres@sha256:…`): the native runtime's programs, else `None`.
pub fn image_kind(image: &str) -> Option<Kind> {
    let base = image.rsplit('/').next().unwrap_or(image);
    let base = base.split([':', '@']).next().unwrap_or(base);
    if base.contains("postgres") {
        Some(Kind::Postgres)
    } else if base.contains("redis") {
        Some(Kind::Redis)
    } else if base.contains("minio") || base.contains("s3") {
        Some(Kind::S3)
    } else {
        None
    }
}

/// The file in a PostgreSQL service's folder recording where it listens and as whom.
const ENDPOINT_FILE: &str = "endpoint.json";

/// Where the tools are and where state goes.
pub struct NativeRuntime {
    /// `<workspace>/.goodgo/native/<project>`.
    pub root: PathBuf,
    pub pg_bin_dir: Option<PathBuf>,
    pub redis_server: Option<PathBuf>,
    /// The S3 API server run for MinIO images ([`NativeRuntime::with_s3s_fs`]).
    pub s3s_fs: Option<PathBuf>,
    /// Run PostgreSQL as the `postgres` user (goodgo runs as root; PostgreSQL refuses root).
    pub as_postgres_user: bool,
}

impl NativeRuntime {
    pub fn new(
        workspace: &Path,
        project: &str,
        pg_bin_dir: Option<PathBuf>,
        redis_server: Option<PathBuf>,
    ) -> NativeRuntime {
        NativeRuntime {
            root: workspace.join(".goodgo/native").join(project),
            pg_bin_dir,
            redis_server,
            s3s_fs: None,
            as_postgres_user: is_root(),
        }
    }

    /// The runtime with `s3s-fs` (`cargo install s3s-fs --features binary`) for S3
    /// services; without it, they are refused with that hint.
    pub fn with_s3s_fs(mut self, program: Option<PathBuf>) -> NativeRuntime {
        self.s3s_fs = program;
        self
    }

    fn dir(&self, service: &str) -> PathBuf {
        self.root.join(service)
    }

    /// The service's process, when its pid file names a live process running the
    /// service's program. A stale pid file (dead process, or a pid now reused by another
    /// program) is removed, and the service counts as stopped.
    fn pid(&self, service: &str) -> Option<u32> {
        let path = self.dir(service).join("pid");
        let text = std::fs::read_to_string(&path).ok()?;
        let ok = parse_pid_file(&text).filter(|(pid, program)| {
            alive(*pid)
                && match program {
                    Some(p) => runs(*pid, p),
                    None => runs(*pid, "postgres") || runs(*pid, "redis-server"),
                }
        });
        if ok.is_none() {
            let _ = std::fs::remove_file(&path);
        }
        ok.map(|(pid, _)| pid)
    }

    /// Records the started process and the program it runs.
    fn write_pid(dir: &Path, pid: u32, kind: Kind) -> Result<(), StackError> {
        std::fs::write(dir.join("pid"), format!("{pid}\n{}\n", program_of(kind)))
            .map_err(StackError::io("writing the pid file in", dir))
    }

    /// Every service of the request can run natively, and its program is installed.
    pub fn check(&self, project: &Project, req: &UpRequest) -> Result<(), StackError> {
        for service in crate::services(project, &req.waves) {
            match kind(service)? {
                Kind::Postgres
                    if self
                        .pg_bin_dir
                        .as_ref()
                        .is_none_or(|d| !d.join("postgres").is_file()) =>
                {
                    return Err(StackError::Unsupported {
                        message: "PostgreSQL's server binaries (initdb, postgres) are not installed".into(),
                        hint: Some("`apt-get install postgresql-15`, or set GOODGO_PG_BIN_DIR; `goodgo doctor` checks".into()),
                    });
                }
                Kind::Redis if self.redis_server.is_none() => {
                    return Err(StackError::Unsupported {
                        message: "redis-server is not installed".into(),
                        hint: Some("`apt-get install redis-server`".into()),
                    });
                }
                Kind::S3 if self.s3s_fs.is_none() => {
                    return Err(StackError::Unsupported {
                        message: format!(
                            "s3s-fs is not installed: the native runtime serves `{}` (S3) with it",
                            service.name
                        ),
                        hint: Some("`cargo install s3s-fs --features binary` (an S3 API server over a folder); or `--runtime docker` for the MinIO image".into()),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Everything before the first service starts: the programs are installed, no service
    /// waits for another to complete (a one-off needs the Docker runtime), and no port a
    /// stopped service will listen on is taken.
    fn prepare(&self, project: &Project, req: &UpRequest) -> Result<(), StackError> {
        self.check(project, req)?;
        for service in crate::services(project, &req.waves) {
            for (dep, cond) in &service.depends_on {
                if *cond == Condition::CompletedSuccessfully {
                    return Err(StackError::Unsupported {
                        message: format!(
                            "`{}` waits for `{dep}` to complete: one-off services need `--runtime docker`",
                            service.name
                        ),
                        hint: None,
                    });
                }
            }
        }
        // Ports something else holds are named, all of them, before anything starts.
        let mut clashes = Vec::new();
        for service in crate::services(project, &req.waves) {
            if self.pid(&service.name).is_some() {
                continue;
            }
            let (ip, port) = Self::endpoint(service, kind(service)?.port());
            if !probe::port_is_free(&ip, port) {
                let who = probe::port_holder(port);
                clashes.push(crate::PortClash::new(&service.name, &ip, port, who));
            }
        }
        if clashes.is_empty() {
            Ok(())
        } else {
            Err(StackError::PortTaken { clashes })
        }
    }

    async fn ensure(
        &self,
        service: &Service,
        deadline: Instant,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<Action, StackError> {
        let dir = self.dir(&service.name);
        let hash = config_hash(service);
        let old_hash = std::fs::read_to_string(dir.join("hash")).unwrap_or_default();
        let marker = dir.join(SETUP_MARKER);
        let mut action = if dir.join("data").exists() {
            Action::Started
        } else {
            Action::Created
        };
        if let Some(pid) = self.pid(&service.name) {
            // Without the marker, the last `up` was interrupted before setup finished:
            // the process may run, but its database may be missing. Set it up again.
            if old_hash.trim() == hash && marker.exists() {
                return Ok(Action::Unchanged);
            }
            self.stop(&service.name, pid).await;
            action = Action::Recreated;
        }
        let kind = kind(service)?;
        for message in unsupported(service, kind) {
            on_event(Event::Warning {
                service: service.name.clone(),
                message,
            });
        }
        std::fs::create_dir_all(&dir).map_err(StackError::io("creating", &dir))?;
        let _ = std::fs::remove_file(&marker);
        std::fs::write(dir.join("hash"), &hash)
            .map_err(StackError::io("writing the definition hash in", &dir))?;
        let _ = std::fs::remove_file(dir.join(ENDPOINT_FILE));
        match kind {
            Kind::Postgres => {
                self.start_postgres(service, &dir, deadline).await?;
                self.write_endpoint(service, &dir)?;
            }
            Kind::Redis => self.start_redis(service, &dir, deadline).await?,
            Kind::S3 => self.start_s3(service, &dir, deadline).await?,
        }
        std::fs::write(&marker, "")
            .map_err(StackError::io("marking the setup complete in", &dir))?;
        Ok(action)
    }

    /// Records where a started PostgreSQL listens and the credentials it was set up with
    /// (readable by its owner only: it holds the password), for [`Self::database`].
    fn write_endpoint(&self, service: &Service, dir: &Path) -> Result<(), StackError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let (ip, port) = Self::endpoint(service, 5432);
        let Credentials { user, password, db } = credentials(service);
        let running = RunningDatabase {
            service: service.name.clone(),
            runtime: "native".into(),
            host: crate::connect_host(Some(&ip)),
            port,
            user,
            password,
            db,
        };
        let path = dir.join(ENDPOINT_FILE);
        let text = serde_json::to_vec_pretty(&running).unwrap_or_default();
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(&text))
            .map_err(StackError::io("writing", &path))
    }

    /// The project's running PostgreSQL: a service whose process is alive and whose
    /// endpoint was recorded when it started.
    pub fn database(&self) -> Option<RunningDatabase> {
        self.known_services().into_iter().find_map(|name| {
            self.pid(&name)?;
            let text = std::fs::read(self.dir(&name).join(ENDPOINT_FILE)).ok()?;
            serde_json::from_slice(&text).ok()
        })
    }

    fn endpoint(service: &Service, default_port: u16) -> (String, u16) {
        let port = service
            .ports
            .iter()
            .find(|p| p.target == default_port)
            .or_else(|| service.ports.first());
        let ip = port
            .and_then(|p| p.host_ip.clone())
            .filter(|ip| !ip.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into());
        let published = port.and_then(|p| p.published).unwrap_or(default_port);
        (ip, published)
    }

    fn failed(&self, service: &Service, what: &str) -> StackError {
        StackError::Failed {
            message: format!("service `{}` {what}", service.name),
            logs: self.tail(&service.name, 20),
            hint: None,
        }
    }

    async fn stop(&self, service: &str, pid: u32) {
        // SIGINT is PostgreSQL's fast shutdown; Redis saves and exits on SIGTERM, and
        // s3s-fs (each object written whole before it answers) exits on it.
        let is_pg = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.contains("postgres"));
        signal(
            pid,
            if is_pg {
                rustix::process::Signal::INT
            } else {
                rustix::process::Signal::TERM
            },
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if alive(pid) {
            signal(pid, rustix::process::Signal::KILL);
        }
        let _ = std::fs::remove_file(self.dir(service).join("pid"));
    }

    fn known_services(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Stops every service of the project; with `volumes` also deletes their data.
    pub async fn down(&self, volumes: bool) -> Result<Vec<String>, StackError> {
        let mut stopped = Vec::new();
        for name in self.known_services() {
            if let Some(pid) = self.pid(&name) {
                self.stop(&name, pid).await;
                stopped.push(name.clone());
            }
            if volumes {
                let dir = self.dir(&name);
                std::fs::remove_dir_all(&dir).map_err(StackError::io("removing", &dir))?;
            }
        }
        if volumes && self.root.exists() && self.known_services().is_empty() {
            let _ = std::fs::remove_dir(&self.root);
        }
        Ok(stopped)
    }

    pub fn status(&self, project: Option<&Project>) -> Vec<ServiceStatus> {
        self.known_services()
            .into_iter()
            .map(|name| {
                let pid = self.pid(&name);
                let service = project.and_then(|p| p.services.get(&name));
                let (state, health, ports) = match (pid, service) {
                    (Some(_), Some(s)) => {
                        let k = kind(s).ok();
                        let (ip, port) = Self::endpoint(s, k.map_or(5432, Kind::port));
                        let healthy = match k {
                            Some(Kind::Redis) => probe::redis_ready(&ip, port),
                            Some(Kind::S3) => probe::http_answers(&ip, port),
                            _ => probe::tcp_open(&ip, port),
                        };
                        (
                            "running".to_string(),
                            if healthy { "healthy" } else { "unhealthy" }.to_string(),
                            vec![format!("{ip}:{port}")],
                        )
                    }
                    (Some(_), None) => ("running".into(), "unknown".into(), Vec::new()),
                    (None, _) => ("stopped".into(), "none".into(), Vec::new()),
                };
                let uptime = pid.and_then(|_| {
                    let modified = std::fs::metadata(self.dir(&name).join("pid"))
                        .ok()?
                        .modified()
                        .ok()?;
                    modified.elapsed().ok().map(|d| d.as_secs())
                });
                ServiceStatus {
                    service: name,
                    runtime: "native",
                    state,
                    health,
                    ports,
                    uptime_s: uptime,
                    id: pid.map(|p| p.to_string()).unwrap_or_default(),
                }
            })
            .collect()
    }
}

impl ServiceStarter for NativeRuntime {
    fn prepare<'a>(
        &'a self,
        project: &'a Project,
        req: &'a UpRequest,
        _on_event: OnEvent<'a>,
    ) -> BoxFuture<'a, Result<(), StackError>> {
        Box::pin(async move { NativeRuntime::prepare(self, project, req) })
    }

    fn start<'a>(
        &'a self,
        _project: &'a Project,
        _req: &'a UpRequest,
        service: &'a Service,
        deadline: Instant,
        on_event: OnEvent<'a>,
    ) -> BoxFuture<'a, Result<Action, StackError>> {
        Box::pin(self.ensure(service, deadline, on_event))
    }

    fn ready_on_start(&self) -> bool {
        true
    }

    /// A service of an earlier wave was ready when its start returned; one-off services
    /// (completion) were refused by `prepare`.
    fn wait_for<'a>(
        &'a self,
        _req: &'a UpRequest,
        service: &'a str,
        cond: Condition,
        _deadline: Instant,
    ) -> BoxFuture<'a, Result<(), StackError>> {
        Box::pin(async move {
            match cond {
                Condition::CompletedSuccessfully => Err(StackError::Unsupported {
                    message: format!(
                        "waiting for `{service}` to complete: one-off services need `--runtime docker`"
                    ),
                    hint: None,
                }),
                _ => Ok(()),
            }
        })
    }
}

impl Runtime for NativeRuntime {
    fn name(&self) -> &'static str {
        "native"
    }

    fn down<'a>(
        &'a self,
        _project: &'a str,
        volumes: bool,
    ) -> BoxFuture<'a, Result<Vec<String>, StackError>> {
        Box::pin(NativeRuntime::down(self, volumes))
    }

    fn status<'a>(
        &'a self,
        _project: &'a str,
        model: Option<&'a Project>,
    ) -> BoxFuture<'a, Result<Vec<ServiceStatus>, StackError>> {
        Box::pin(async move { Ok(NativeRuntime::status(self, model)) })
    }

    fn logs<'a>(
        &'a self,
        _project: &'a str,
        services: &'a [String],
        follow: bool,
        tail: Option<usize>,
        on_line: OnLine<'a>,
    ) -> BoxFuture<'a, Result<(), StackError>> {
        Box::pin(NativeRuntime::logs(self, services, follow, tail, on_line))
    }

    fn database<'a>(
        &'a self,
        _project: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunningDatabase>, StackError>> {
        Box::pin(async move { Ok(NativeRuntime::database(self)) })
    }
}

/// Written in a service's folder once its setup (initdb, database creation) is complete.
pub(super) const SETUP_MARKER: &str = "setup-complete";

/// What of a service's definition the native runtime does not honour, each named.
pub(super) fn unsupported(service: &Service, kind: Kind) -> Vec<String> {
    let mut out = Vec::new();
    let native = "the native runtime keeps the service's data under .goodgo/native";
    for m in &service.volumes {
        out.push(format!(
            "`volumes` entry for {} is ignored: {native}",
            m.target
        ));
    }
    for r in &service.secrets {
        out.push(format!(
            "secret `{}` is not provided at {}: the native runtime runs no container",
            r.source,
            r.secret_path()
        ));
    }
    for r in &service.configs {
        out.push(format!(
            "config `{}` is not provided at {}: the native runtime runs no container",
            r.source,
            r.config_path()
        ));
    }
    if service.entrypoint.is_some() {
        out.push("`entrypoint` is ignored: the native runtime runs the program itself".into());
    }
    let host = "the native runtime runs the program as a process of this host, not in a container";
    if let Some(mode) = &service.network_mode {
        out.push(format!(
            "`network_mode: {}` is ignored: {host}, on the host's network",
            mode.as_compose()
        ));
    }
    let mut keys: Vec<&str> = service.host.keys();
    keys.extend(
        [
            ("cap_add", !service.cap_add.is_empty()),
            ("cap_drop", !service.cap_drop.is_empty()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k)),
    );
    for key in keys {
        out.push(format!("`{key}` is ignored: {host}"));
    }
    out.extend(crate::swarm_warnings(service));
    if kind == Kind::Postgres {
        for key in service.environment.keys() {
            let why = if key == "PGDATA" {
                Some(native)
            } else if key == "POSTGRES_INITDB_WALDIR" {
                Some("the WAL stays inside the data folder")
            } else if key.ends_with("_FILE") {
                Some("the file names a path inside a container")
            } else {
                None
            };
            if let Some(why) = why {
                out.push(format!("environment variable {key} is ignored: {why}"));
            }
        }
        let (_, other) = postgres_args(service);
        if !other.is_empty() {
            out.push(format!(
                "`command` arguments other than server settings (`-c key=value`) are ignored: {}",
                other.join(" ")
            ));
        }
    }
    if kind == Kind::S3 && service.command.is_some() {
        out.push(
            "`command` is ignored: the native runtime serves the S3 API with s3s-fs (no MinIO console)"
                .into(),
        );
    }
    out
}

/// A program that could not be started.
pub(super) fn spawn(program: &str) -> impl FnOnce(std::io::Error) -> StackError {
    let program = program.to_string();
    move |source| StackError::Spawn { program, source }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A runtime in a temporary workspace, and the folder of its `service`, created.
    pub(super) fn with_service(service: &str) -> (tempfile::TempDir, NativeRuntime, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let rt = NativeRuntime::new(tmp.path(), "p", None, None);
        let dir = rt.dir(service);
        std::fs::create_dir_all(&dir).unwrap();
        (tmp, rt, dir)
    }

    #[test]
    fn a_pid_file_naming_another_program_is_stale_and_removed() {
        let (_tmp, rt, dir) = with_service("db");
        // This test process is alive, but it is not postgres: never signalled, and the
        // pid file goes.
        let me = std::process::id();
        for text in [format!("{me}\npostgres\n"), format!("{me}\n")] {
            std::fs::write(dir.join("pid"), &text).unwrap();
            assert_eq!(rt.pid("db"), None, "{text:?}");
            assert!(!dir.join("pid").exists());
        }
        // A live process running the named program is the service.
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        std::fs::write(dir.join("pid"), format!("{me}\n{}\n", comm.trim_end())).unwrap();
        assert_eq!(rt.pid("db"), Some(me));
        // A dead pid is stale too.
        std::fs::write(dir.join("pid"), "999999999\npostgres\n").unwrap();
        assert_eq!(rt.pid("db"), None);
        assert!(!dir.join("pid").exists());
        assert_eq!(
            parse_pid_file("12\nredis-server\n"),
            Some((12, Some("redis-server")))
        );
        assert_eq!(parse_pid_file("garbage"), None);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod host_key_tests {
    use super::*;

    #[test]
    fn host_and_swarm_keys_are_named() {
        let text = "services:\n  db:\n    image: postgres:15\n    network_mode: host\n    privileged: true\n    ulimits: {nofile: 10}\n    cap_add: [NET_ADMIN]\n    deploy:\n      placement: {constraints: [node.role == manager]}\n";
        let p = goodgo_compose::load_str(text, Path::new("/p"), Path::new("c.yaml"), &|_| None)
            .unwrap();
        let host =
            "the native runtime runs the program as a process of this host, not in a container";
        assert_eq!(
            unsupported(&p.services["db"], Kind::Postgres),
            [
                format!("`network_mode: host` is ignored: {host}, on the host's network"),
                format!("`privileged` is ignored: {host}"),
                format!("`ulimits` is ignored: {host}"),
                format!("`cap_add` is ignored: {host}"),
                "`deploy.placement` is kept for a Swarm deploy and not applied: a single engine has no orchestrator".to_string(),
            ]
        );
    }
}
