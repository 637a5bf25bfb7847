//! The native runtime: the services goodgo knows, as local processes.
//!
//! PostgreSQL (initdb into `.goodgo/native/<project>/<service>/data`, honouring the official
//! image's `POSTGRES_USER`/`POSTGRES_PASSWORD`/`POSTGRES_DB` contract, run as the `postgres`
//! user when goodgo runs as root) and Redis (`redis-server`). Each service lives in its own
//! folder with a pid file, a log (and the previous run's as `log.1`) and the hash of its
//! definition, so `status`, `logs` and `down` work across invocations and a changed
//! definition restarts only that service.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use goodgo_compose::{Condition, Project, Service, config_hash};

use crate::{Action, Event, ServiceReport, ServiceStatus, StackError, UpRequest, millis, probe};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Redis,
}

/// Which native program runs `service`, from its image name.
pub fn kind(service: &Service) -> Result<Kind, StackError> {
    let image = service.image.as_deref().unwrap_or("");
    let base = image.rsplit('/').next().unwrap_or(image);
    let base = base.split(':').next().unwrap_or(base);
    if base.contains("postgres") {
        Ok(Kind::Postgres)
    } else if base.contains("redis") {
        Ok(Kind::Redis)
    } else {
        Err(StackError::Unsupported {
            message: format!(
                "service `{}` (image `{}`) has no native runner: goodgo runs postgres and redis images natively",
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

/// Where the tools are and where state goes.
pub struct NativeRuntime {
    /// `<workspace>/.goodgo/native/<project>`.
    pub root: PathBuf,
    pub pg_bin_dir: Option<PathBuf>,
    pub redis_server: Option<PathBuf>,
    /// Run PostgreSQL as the `postgres` user (goodgo runs as root; PostgreSQL refuses root).
    pub as_postgres_user: bool,
}

fn is_root() -> bool {
    // The owner of /proc/self is our effective user.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the `(comm)`.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

/// The program a service's process runs, as `/proc/<pid>/comm` names it.
fn program_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Postgres => "postgres",
        Kind::Redis => "redis-server",
    }
}

/// Whether process `pid` runs `program` (its `comm`, which exec sets and no process title
/// changes). A pid file can outlive its process, and the pid be reused by another program.
fn runs(pid: u32, program: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == program)
}

/// Reads a pid file: the pid, and the program on the second line (absent in older files).
fn parse_pid_file(text: &str) -> Option<(u32, Option<&str>)> {
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    Some((pid, lines.next().map(str::trim).filter(|p| !p.is_empty())))
}

/// Sends `sig` to process `pid`; a process already gone is not an error worth reporting.
fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
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
            as_postgres_user: is_root(),
        }
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
                _ => {}
            }
        }
        Ok(())
    }

    /// Starts the request's services in dependency order and waits until each is ready.
    pub async fn up(
        &self,
        project: &Project,
        req: &UpRequest,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<Vec<ServiceReport>, StackError> {
        self.check(project, req)?;
        // A port something else holds is named before anything starts.
        for service in crate::services(project, &req.waves) {
            if self.pid(&service.name).is_some() {
                continue;
            }
            let default = if kind(service)? == Kind::Redis {
                6379
            } else {
                5432
            };
            let (ip, port) = Self::endpoint(service, default);
            if !probe::port_is_free(&ip, port) {
                let who = probe::port_holder(port)
                    .map(|w| format!(" by {w}"))
                    .unwrap_or_default();
                return Err(StackError::PortTaken {
                    message: format!("port {port} on {ip} for service `{}` is already taken{who}", service.name),
                    hint: "stop whatever holds it, or publish another port (the stack file interpolates its ports, e.g. POSTGRES_PORT=5433 goodgo up)".into(),
                });
            }
        }
        let start = Instant::now();
        let deadline = start + req.timeout;
        let mut reports = Vec::new();
        for wave in &req.waves {
            let jobs = wave.iter().filter_map(|n| project.services.get(n)).map(|service| async move {
                for (dep, cond) in &service.depends_on {
                    if *cond == Condition::CompletedSuccessfully {
                        return Err(StackError::Unsupported {
                            message: format!("`{}` waits for `{dep}` to complete: one-off services need `--runtime docker`", service.name),
                            hint: None,
                        });
                    }
                }
                let action = self.ensure(service, deadline, on_event).await?;
                on_event(Event::Acting { service: service.name.clone(), action });
                on_event(Event::Ready { service: service.name.clone(), after: start.elapsed() });
                Ok::<_, StackError>(ServiceReport { service: service.name.clone(), action, ready_ms: millis(start.elapsed()) })
            });
            for r in futures_util::future::join_all(jobs).await {
                reports.push(r?);
            }
        }
        Ok(reports)
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
        match kind {
            Kind::Postgres => self.start_postgres(service, &dir, deadline).await?,
            Kind::Redis => self.start_redis(service, &dir, deadline).await?,
        }
        std::fs::write(&marker, "")
            .map_err(StackError::io("marking the setup complete in", &dir))?;
        Ok(action)
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

    fn as_postgres(&self, program: PathBuf) -> Command {
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

    fn chown_postgres(&self, path: &Path) -> Result<(), StackError> {
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
    fn socket_dir(dir: &Path) -> PathBuf {
        if dir.as_os_str().len() < 80 {
            return dir.to_path_buf();
        }
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        dir.hash(&mut h);
        std::env::temp_dir().join(format!("goodgo-sock-{:x}", h.finish()))
    }

    async fn start_postgres(
        &self,
        service: &Service,
        dir: &Path,
        deadline: Instant,
    ) -> Result<(), StackError> {
        let bin = self.pg_bin_dir.clone().unwrap_or_default();
        let env = &service.environment;
        let user = env
            .get("POSTGRES_USER")
            .cloned()
            .unwrap_or_else(|| "postgres".into());
        let password = env.get("POSTGRES_PASSWORD").cloned().unwrap_or_default();
        let db = env
            .get("POSTGRES_DB")
            .cloned()
            .unwrap_or_else(|| user.clone());
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
        if db != "postgres" && !self.database_exists(&bin, &sock, port, &user, &db) {
            let out = self
                .as_postgres(bin.join("psql"))
                .args([
                    "-X",
                    "-q",
                    "-h",
                    &sock.display().to_string(),
                    "-p",
                    &port.to_string(),
                    "-U",
                    &user,
                    "-d",
                    "postgres",
                    "-c",
                ])
                .arg(format!("CREATE DATABASE \"{}\"", db.replace('"', "\"\"")))
                .output()
                .map_err(spawn("psql"))?;
            if !out.status.success() {
                return Err(StackError::Failed {
                    message: format!("creating database {db} for `{}` failed", service.name),
                    logs: String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .map(str::to_string)
                        .collect(),
                    hint: None,
                });
            }
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

    fn database_exists(&self, bin: &Path, sock: &Path, port: u16, user: &str, db: &str) -> bool {
        self.as_postgres(bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-h",
                &sock.display().to_string(),
                "-p",
                &port.to_string(),
                "-U",
                user,
                "-d",
                "postgres",
                "-c",
                &format!(
                    "SELECT 1 FROM pg_database WHERE datname = '{}'",
                    db.replace('\'', "''")
                ),
            ])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "1")
    }

    async fn start_redis(
        &self,
        service: &Service,
        dir: &Path,
        deadline: Instant,
    ) -> Result<(), StackError> {
        let program = self
            .redis_server
            .clone()
            .unwrap_or_else(|| PathBuf::from("redis-server"));
        let (ip, port) = Self::endpoint(service, 6379);
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(StackError::io("creating", &data))?;
        let log = new_log(dir)?;
        let log2 = log
            .try_clone()
            .map_err(StackError::io("opening the log in", dir))?;
        let mut cmd = Command::new(program);
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            &ip,
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ])
        .arg("--dir")
        .arg(&data);
        // `command: redis-server --appendonly yes` keeps its options.
        if let Some(argv) = service.command.as_ref().map(|c| c.to_argv()) {
            let rest: Vec<&String> = argv
                .iter()
                .skip_while(|a| a.ends_with("redis-server"))
                .collect();
            cmd.args(rest);
        }
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(spawn("redis-server"))?;
        Self::write_pid(dir, child.id(), Kind::Redis)?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(self.failed(service, &format!("exited ({status}) while starting")));
            }
            if probe::redis_ready(&ip, port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failed(service, "did not answer PING in time"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn failed(&self, service: &Service, what: &str) -> StackError {
        StackError::Failed {
            message: format!("service `{}` {what}", service.name),
            logs: self.tail(&service.name, 20),
            hint: None,
        }
    }

    fn tail(&self, service: &str, n: usize) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir(service).join("log")).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }

    async fn stop(&self, service: &str, pid: u32) {
        // SIGINT is PostgreSQL's fast shutdown; Redis saves and exits on SIGTERM.
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
                        let (ip, port) =
                            Self::endpoint(s, if k == Some(Kind::Redis) { 6379 } else { 5432 });
                        let healthy = match k {
                            Some(Kind::Redis) => probe::redis_ready(&ip, port),
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

    /// The last `tail` lines of each service's log (all lines without `tail`); with
    /// `follow`, keeps printing new lines until interrupted.
    pub async fn logs(
        &self,
        services: &[String],
        follow: bool,
        tail: Option<usize>,
        on_line: &(dyn Fn(&str, &str) + Sync),
    ) -> Result<(), StackError> {
        let names: Vec<String> = self
            .known_services()
            .into_iter()
            .filter(|s| services.is_empty() || services.contains(s))
            .collect();
        // Per service: the log file's identity and how much of it was shown.
        let mut seen = Vec::new();
        for name in &names {
            let (id, text) = read_log(&self.dir(name).join("log"));
            let lines: Vec<&str> = text.lines().collect();
            let from = tail.map_or(0, |n| lines.len().saturating_sub(n));
            for line in &lines[from..] {
                on_line(name, line);
            }
            seen.push((id, text.len()));
        }
        if !follow {
            return Ok(());
        }
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for (name, (id, offset)) in names.iter().zip(seen.iter_mut()) {
                let (now, text) = read_log(&self.dir(name).join("log"));
                // A restart starts a new log (or a truncated one): read it from its start.
                if now != *id || text.len() < *offset {
                    *id = now;
                    *offset = 0;
                }
                if text.len() > *offset {
                    // Whole lines only; a partial last line waits for its end.
                    let fresh = &text[*offset..];
                    let upto = fresh.rfind('\n').map_or(0, |i| i + 1);
                    for line in fresh[..upto].lines() {
                        on_line(name, line);
                    }
                    *offset += upto;
                }
            }
        }
    }
}

/// A new, empty log file for a (re)started service: a new file rather than the old one
/// truncated, so `logs -f` sees the change even when the new log quickly grows past the
/// old one's length. The previous log is kept as `log.1` (replacing an older one) rather
/// than deleted: while it exists its inode cannot be reused by the new file, so the new
/// log always has another identity.
fn new_log(dir: &Path) -> Result<std::fs::File, StackError> {
    let path = dir.join("log");
    match std::fs::rename(&path, dir.join("log.1")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StackError::io("keeping the previous log", &path)(e)),
    }
    std::fs::File::create(&path).map_err(StackError::io("creating the log in", dir))
}

/// A log's identity (device, inode), to notice when it is replaced, and its text; both
/// from one open file, so the text is always that file's.
fn read_log(path: &Path) -> (Option<(u64, u64)>, String) {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let Ok(mut file) = std::fs::File::open(path) else {
        return (None, String::new());
    };
    let id = file.metadata().ok().map(|m| (m.dev(), m.ino()));
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return (id, String::new());
    }
    (id, String::from_utf8_lossy(&bytes).into_owned())
}

/// Written in a service's folder once its setup (initdb, database creation) is complete.
const SETUP_MARKER: &str = "setup-complete";

/// `POSTGRES_INITDB_ARGS`, split like a shell splits words.
fn initdb_args(env: &std::collections::BTreeMap<String, String>) -> Result<Vec<String>, String> {
    match env.get("POSTGRES_INITDB_ARGS") {
        Some(text) => goodgo_compose::syntax::shlex_split(text),
        None => Ok(Vec::new()),
    }
}

/// The server settings in a postgres service's `command` (`-c key=value`, `-ckey=value`,
/// `--key=value`, after the program name if written), as `-c` arguments; and the other
/// arguments, which the native runtime does not pass on.
fn postgres_args(service: &Service) -> (Vec<String>, Vec<String>) {
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

/// What of a service's definition the native runtime does not honour, each named.
fn unsupported(service: &Service, kind: Kind) -> Vec<String> {
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
            r.mount_path()
        ));
    }
    if service.entrypoint.is_some() {
        out.push("`entrypoint` is ignored: the native runtime runs the program itself".into());
    }
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
    out
}

/// A program that could not be started.
fn spawn(program: &str) -> impl FnOnce(std::io::Error) -> StackError {
    let program = program.to_string();
    move |source| StackError::Spawn { program, source }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use goodgo_compose::CommandLine;

    fn runtime(root: &Path) -> NativeRuntime {
        NativeRuntime::new(root, "p", None, None)
    }

    #[test]
    fn a_pid_file_naming_another_program_is_stale_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let rt = runtime(tmp.path());
        let dir = rt.dir("db");
        std::fs::create_dir_all(&dir).unwrap();
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

    #[test]
    fn a_restart_starts_a_new_log_and_keeps_the_previous_one() {
        let tmp = tempfile::tempdir().unwrap();
        let rt = runtime(tmp.path());
        let dir = rt.dir("cache");
        std::fs::create_dir_all(&dir).unwrap();
        let mut first = new_log(&dir).unwrap();
        std::io::Write::write_all(&mut first, b"old run\n").unwrap();
        let (old_id, _) = read_log(&dir.join("log"));
        // The same length, so only the file's identity tells the two apart.
        let mut second = new_log(&dir).unwrap();
        std::io::Write::write_all(&mut second, b"new run\n").unwrap();
        let (new_id, text) = read_log(&dir.join("log"));
        assert!(old_id.is_some() && new_id.is_some());
        assert_ne!(old_id, new_id, "the new log is another file");
        assert_eq!(text, "new run\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("log.1")).unwrap(),
            "old run\n"
        );
        // `logs` shows the current log only.
        let shown = std::sync::Mutex::new(Vec::new());
        let on_line = |service: &str, line: &str| {
            shown.lock().unwrap().push(format!("{service} | {line}"));
        };
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(rt.logs(&[], false, None, &on_line))
            .unwrap();
        assert_eq!(*shown.lock().unwrap(), ["cache | new run"]);
        // A third run replaces the kept one.
        drop(new_log(&dir).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.join("log.1")).unwrap(),
            "new run\n"
        );
    }

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
