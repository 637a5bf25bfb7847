//! Target `local`: the proxy and the API's releases as containers on this host's engine.
//!
//! Every container runs in the host's network namespace: the database URL in `.env` means
//! the same to `goodgo` (which migrates) and to the API, each release listens on its own
//! loopback port, and the proxy publishes the configured port with no NAT hop on the way.
//! The proxy's two slots (see [`super::proxy`]) take turns: the new release starts beside
//! the serving one, gets the free slot once `/readyz` answers 200, the old slot drains, the
//! new one is watched, and only then is the old container stopped (kept for rollback). So a
//! switch back during the watch, or after Ctrl-C, is one runtime API call away.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use goodgo_stack::docker::{ContainerSpec, DockerRuntime, Found};
use goodgo_stack::{LABEL_SERVICE, StackError};

use super::proxy::{self, ProxyConfig, SLOTS};
use crate::error::UserError;
use crate::printer::Printer;

pub const LABEL_RELEASE: &str = "org.goodgo.deploy.release";
pub const LABEL_PORT: &str = "org.goodgo.deploy.port";
pub const LABEL_ADMIN: &str = "org.goodgo.deploy.admin";
pub const LABEL_IMAGE: &str = "org.goodgo.deploy.image";
pub const LABEL_COMMIT: &str = "org.goodgo.deploy.commit";

/// The proxy's image, built by `cargo xtask images` (compose/images/proxy).
pub const PROXY_IMAGE: &str = "goodgo/proxy:2.6";

/// Where a secret file is mounted in the API's container.
const SECRETS_DIR: &str = "/run/secrets";

/// The target's settings, resolved.
#[derive(Debug, Clone)]
pub struct Target {
    /// The workspace's name: containers are `{name}-api-{release}` and `{name}-proxy`.
    pub name: String,
    /// The project label of everything the target creates (`{name}-deploy`).
    pub project: String,
    /// `.goodgo/deploy/local`: lock, history, proxy configuration, secret files.
    pub dir: PathBuf,
    pub port: u16,
    pub bind: String,
    pub ready_timeout: Duration,
    pub drain_timeout: Duration,
    pub watch: Duration,
    pub max_error_rate: f64,
    pub keep: usize,
    /// The API's replicas (the swarm target).
    pub replicas: u32,
    pub kind: crate::args::Target,
}

impl Target {
    pub fn url(&self) -> String {
        let host = goodgo_stack::connect_host(Some(&self.bind));
        format!("http://{host}:{}", self.port)
    }

    fn proxy_dir(&self) -> PathBuf {
        self.dir.join("proxy")
    }

    fn secrets_dir(&self, release: &str) -> PathBuf {
        self.dir.join("run").join(release)
    }
}

/// The proxy container and its runtime API.
#[derive(Debug, Clone)]
pub struct ProxyInfo {
    pub container: Found,
    pub runtime: proxy::Runtime,
}

/// The release that serves now: its slot and container.
#[derive(Debug, Clone)]
pub struct Serving {
    pub slot: String,
    pub port: u16,
    pub container: Found,
}

impl Serving {
    pub fn release(&self) -> &str {
        self.container.label(LABEL_RELEASE).unwrap_or("?")
    }
}

/// What a deploy changed so far, for undoing it after Ctrl-C.
#[derive(Debug, Default)]
pub struct Progress {
    /// The new release's container, and whether this run created it (else it was a kept
    /// release started again, which is stopped rather than removed).
    pub new: Option<(String, bool)>,
    /// The slot the new release was switched into.
    pub switched: Option<String>,
    pub old: Option<Serving>,
    pub proxy: Option<proxy::Runtime>,
}

/// The API containers of the target, newest first.
pub async fn releases(docker: &DockerRuntime, target: &Target) -> Result<Vec<Found>> {
    Ok(docker
        .find(&target.project, &[format!("{LABEL_SERVICE}=api")])
        .await?)
}

/// The proxy container, when there is one.
pub async fn proxy_container(docker: &DockerRuntime, target: &Target) -> Result<Option<ProxyInfo>> {
    let found = docker
        .find(&target.project, &[format!("{LABEL_SERVICE}=proxy")])
        .await?;
    Ok(found.into_iter().next().and_then(|c| {
        let admin_port = c.label(LABEL_ADMIN)?.parse().ok()?;
        Some(ProxyInfo {
            container: c,
            runtime: proxy::Runtime { admin_port },
        })
    }))
}

/// The serving release as the proxy says: the slot in service and the running container
/// listening on the port that slot points at.
pub async fn serving(
    docker: &DockerRuntime,
    target: &Target,
    proxy: &ProxyInfo,
) -> Result<Option<Serving>> {
    if !proxy.container.running() {
        return Ok(None);
    }
    let stats = proxy.runtime.stats().await?;
    let apis = releases(docker, target).await?;
    for stat in stats.iter().filter(|s| !s.status.starts_with("MAINT")) {
        let Some(port) = stat.port else { continue };
        let container = apis
            .iter()
            .find(|c| c.running() && c.label(LABEL_PORT) == Some(port.to_string().as_str()));
        if let Some(container) = container {
            return Ok(Some(Serving {
                slot: stat.slot.clone(),
                port,
                container: container.clone(),
            }));
        }
    }
    Ok(None)
}

/// Writes the proxy's configuration with `serving` enabled.
pub fn write_proxy_config(
    target: &Target,
    admin_port: u16,
    serving: Option<(&str, u16)>,
) -> Result<()> {
    let dir = target.proxy_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = proxy::render(&ProxyConfig {
        bind: target.bind.clone(),
        port: target.port,
        admin_port,
        serving: serving.map(|(s, p)| (s.to_string(), p)),
    });
    let path = dir.join("haproxy.cfg");
    let tmp = dir.join("haproxy.cfg.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))
}

/// The running proxy, started (with no release in service) when there is none.
pub async fn ensure_proxy(
    docker: &DockerRuntime,
    target: &Target,
    printer: &Printer,
) -> Result<ProxyInfo> {
    if let Some(p) = proxy_container(docker, target).await?
        && p.container.running()
    {
        wait_runtime(&p).await?;
        return Ok(p);
    }
    // A stopped proxy (the host rebooted, someone stopped it) starts again with its
    // configuration file, which names the release that served last.
    if let Some(stopped) = proxy_container(docker, target).await? {
        if docker.start(&stopped.container.id).await.is_ok() && wait_runtime(&stopped).await.is_ok()
        {
            printer.status(&format!(
                "started the stopped proxy {}",
                stopped.container.name
            ));
            return proxy_container(docker, target)
                .await?
                .context("the proxy container vanished");
        }
        docker.remove(&stopped.container.id).await?;
    }
    if docker.image_labels(PROXY_IMAGE).await?.is_none() {
        return Err(UserError::input(format!(
            "the proxy's image {PROXY_IMAGE} is not present locally"
        ))
        .with_hint("`cargo xtask images` builds it from Debian's haproxy package")
        .into());
    }
    if !goodgo_stack::probe::port_is_free(&target.bind, target.port) {
        return Err(UserError::input(format!(
            "deploy.port {} on {} is already taken: the proxy publishes it",
            target.port, target.bind
        ))
        .with_hint("stop whatever listens there, or set another `deploy.port` in goodgo.yaml")
        .into());
    }
    let admin_port = free_port()?;
    write_proxy_config(target, admin_port, None)?;
    printer.status(&format!(
        "starting the proxy ({PROXY_IMAGE}) on {}:{}",
        target.bind, target.port
    ));
    let spec = ContainerSpec {
        name: format!("{}-proxy", target.name),
        image: PROXY_IMAGE.into(),
        project: target.project.clone(),
        labels: HashMap::from([
            (LABEL_SERVICE.to_string(), "proxy".to_string()),
            (LABEL_PORT.to_string(), target.port.to_string()),
            (LABEL_ADMIN.to_string(), admin_port.to_string()),
        ]),
        files: vec![(
            target.proxy_dir().display().to_string(),
            "/etc/haproxy/goodgo".into(),
        )],
        network_mode: Some("host".into()),
        restart: true,
        stop_timeout: Some(10),
        ..Default::default()
    };
    let id = docker.run_container(&spec).await?;
    let info = ProxyInfo {
        container: docker
            .find(&target.project, &[format!("{LABEL_SERVICE}=proxy")])
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .context("the proxy container vanished")?,
        runtime: proxy::Runtime { admin_port },
    };
    if let Err(e) = wait_runtime(&info).await {
        let lines = docker.last_lines(&id, 20).await;
        return Err(e.context(format!("the proxy did not start:\n{}", lines.join("\n"))));
    }
    Ok(info)
}

async fn wait_runtime(proxy: &ProxyInfo) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !proxy.runtime.answers().await {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the proxy's runtime API (127.0.0.1:{}) does not answer",
                proxy.runtime.admin_port
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A loopback port nobody listens on now.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts release `id` of `image` on a free loopback port, its secrets as files: the
/// container's id and port.
pub async fn start_release(
    docker: &DockerRuntime,
    target: &Target,
    id: &str,
    image: &str,
    commit: Option<&str>,
    env: &[(String, String)],
) -> Result<(String, u16)> {
    let port = free_port()?;
    let dir = target.secrets_dir(id);
    let _ = std::fs::remove_dir_all(&dir);
    create_private_dir(&dir)?;
    let mut vars = vec![
        format!("GOODGO_API_ADDR=127.0.0.1:{port}"),
        format!("GOODGO_RELEASE={id}"),
    ];
    let mut files = Vec::new();
    for (key, value) in env {
        if !key.starts_with("GOODGO_") || key == "GOODGO_API_ADDR" || key == "GOODGO_RELEASE" {
            continue;
        }
        let path = dir.join(key);
        write_readable(&path, value)?;
        files.push((path.display().to_string(), format!("{SECRETS_DIR}/{key}")));
        vars.push(format!("{key}_FILE={SECRETS_DIR}/{key}"));
    }
    let mut labels = HashMap::from([
        (LABEL_SERVICE.to_string(), "api".to_string()),
        (LABEL_RELEASE.to_string(), id.to_string()),
        (LABEL_PORT.to_string(), port.to_string()),
        (LABEL_IMAGE.to_string(), image.to_string()),
    ]);
    if let Some(c) = commit {
        labels.insert(LABEL_COMMIT.to_string(), c.to_string());
    }
    let spec = ContainerSpec {
        name: format!("{}-api-{id}", target.name),
        image: image.to_string(),
        project: target.project.clone(),
        labels,
        env: vars,
        files,
        network_mode: Some("host".into()),
        restart: true,
        stop_timeout: Some(i64::try_from(target.drain_timeout.as_secs()).unwrap_or(30)),
        ..Default::default()
    };
    let container = docker.run_container(&spec).await?;
    Ok((container, port))
}

/// A folder only its owner may enter (the secret files inside are readable by the
/// container's user through their bind mounts alone).
fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("protecting {}", dir.display()))
}

fn write_readable(path: &std::path::Path, value: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, value.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Waits for `GET /readyz` on the release's port to answer 200, until `deadline`; an
/// error says why not (the container exited, or what /readyz said last).
pub async fn wait_ready(
    docker: &DockerRuntime,
    target: &Target,
    container: &str,
    port: u16,
    deadline: Instant,
) -> Result<()> {
    let client = crate::http::client(Duration::from_secs(2))?;
    let url = format!("http://127.0.0.1:{port}/readyz");
    let mut last = "nothing answered".to_string();
    let mut checked = Instant::now();
    loop {
        match client.get(&url).send().await {
            Ok(r) if r.status().as_u16() == 200 => return Ok(()),
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                last = format!("/readyz answered {status}: {}", body.trim());
            }
            Err(_) => {}
        }
        if checked.elapsed() >= Duration::from_secs(1) {
            checked = Instant::now();
            let running = releases(docker, target)
                .await?
                .into_iter()
                .any(|c| c.id == container && c.running());
            if !running {
                anyhow::bail!("its container exited");
            }
        }
        if Instant::now() >= deadline {
            anyhow::bail!("{last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Watches `slot` for `window`: the reason to switch back, if its 5xx share goes over
/// `max_rate` or the proxy's health check sees it down.
pub async fn watch(
    rt: &proxy::Runtime,
    slot: &str,
    window: Duration,
    max_rate: f64,
) -> Result<Option<String>> {
    let start = rt.slot(slot).await?;
    let end = Instant::now() + window;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = rt.slot(slot).await?;
        if now.status.starts_with("DOWN") {
            return Ok(Some(
                "the proxy's health check saw it DOWN (/readyz stopped answering 200)".into(),
            ));
        }
        let total = now.total().saturating_sub(start.total());
        let errors = now.errors().saturating_sub(start.errors());
        let over = total > 0 && errors as f64 / total as f64 > max_rate;
        let finished = Instant::now() >= end;
        if over && (total >= 20 || (finished && errors >= 3)) {
            return Ok(Some(format!(
                "{errors} of its {total} answers were 5xx ({:.1}%, more than the {:.1}% allowed by deploy.max_error_rate)",
                100.0 * errors as f64 / total as f64,
                100.0 * max_rate
            )));
        }
        if finished {
            return Ok(None);
        }
    }
}

/// Puts `to` (a running release on `port`) in service in `slot`, then drains `from`.
pub async fn switch(
    proxy: &ProxyInfo,
    target: &Target,
    slot: &str,
    port: u16,
    from: Option<&Serving>,
) -> Result<()> {
    proxy
        .runtime
        .enable(slot, port, Instant::now() + Duration::from_secs(15))
        .await?;
    write_proxy_config(target, proxy.runtime.admin_port, Some((slot, port)))?;
    if let Some(old) = from {
        let left = proxy
            .runtime
            .drain(&old.slot, Instant::now() + target.drain_timeout)
            .await?;
        if left > 0 {
            anyhow::bail!(
                "{left} request(s) still in flight on release {} after the drain timeout",
                old.release()
            );
        }
    }
    Ok(())
}

/// Removes the stopped releases beyond the newest `keep` (and their secret files).
pub async fn prune(docker: &DockerRuntime, target: &Target) -> Result<Vec<String>> {
    let stopped: Vec<Found> = releases(docker, target)
        .await?
        .into_iter()
        .filter(|c| !c.running())
        .collect();
    let mut removed = Vec::new();
    for c in stopped.into_iter().skip(target.keep) {
        docker.remove(&c.id).await?;
        if let Some(id) = c.label(LABEL_RELEASE) {
            let _ = std::fs::remove_dir_all(target.secrets_dir(id));
            removed.push(id.to_string());
        }
    }
    Ok(removed)
}

/// Undoes what an interrupted deploy changed: the old release serves again, the new one is
/// stopped (removed when this run created it).
pub async fn undo(
    docker: &DockerRuntime,
    target: &Target,
    progress: &Mutex<Progress>,
) -> Result<()> {
    let (new, switched, old, rt) = {
        let p = progress
            .lock()
            .map_err(|_| anyhow::anyhow!("progress lock poisoned"))?;
        (p.new.clone(), p.switched.clone(), p.old.clone(), p.proxy)
    };
    if let (Some(slot), Some(old), Some(rt)) = (switched, old, rt) {
        rt.enable(
            &old.slot,
            old.port,
            Instant::now() + Duration::from_secs(15),
        )
        .await?;
        write_proxy_config(target, rt.admin_port, Some((&old.slot, old.port)))?;
        rt.drain(&slot, Instant::now() + target.drain_timeout)
            .await?;
    }
    if let Some((id, created)) = new {
        if created {
            docker.remove(&id).await?;
        } else {
            docker.stop(&id, 10).await?;
        }
    }
    Ok(())
}

/// An engine error in a deploy, said with the engine's address when it cannot be reached.
pub fn engine_error(err: StackError) -> anyhow::Error {
    match err {
        StackError::Connect { source } => UserError::input(format!(
            "cannot reach the Docker engine at {}: {source}",
            goodgo_stack::docker::engine_host(),
        ))
        .with_hint("start the engine (`goodgo doctor` checks it), or point DOCKER_HOST at it")
        .into(),
        other => other.into(),
    }
}

/// The slot a new release goes into: the one not serving.
pub fn free_slot(serving: Option<&Serving>) -> &'static str {
    match serving {
        Some(s) => proxy::other(&s.slot),
        None => SLOTS[0],
    }
}
