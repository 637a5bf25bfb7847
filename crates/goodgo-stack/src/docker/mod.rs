//! The Docker runtime: services as containers, through the engine's API (bollard).
//!
//! Everything goodgo creates carries docker compose's own labels (project, service,
//! config hash), so `docker compose ls/ps` see it and goodgo finds it again. A container
//! whose config-hash label matches the service's current definition is left alone; a
//! changed definition replaces only that container.
//!
//! The runtime is split by what it manages: `images` (present, pulled, built, by the
//! service's `pull_policy`), `resources` (networks, volumes, ports), `files` (secrets and
//! configs: mounted, or written into the created container), `containers` (create,
//! replace, remove), `host` (privileges, namespaces, limits and mount options as the
//! engine takes them), `health` (waiting for conditions) and `logs`;
//! `single` runs containers that are not a Compose service's (`goodgo deploy`'s releases);
//! `swarm` the services, secrets, configs and overlay network of `deploy --target swarm`
//! (`swarm_spec`: the service as goodgo describes it, translated into the engine's spec).

mod containers;
mod files;
mod health;
mod host;
mod images;
mod logs;
mod resources;
mod single;
mod swarm;
mod swarm_spec;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerSummary};
use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions, RemoveVolumeOptions,
};
use goodgo_compose::{Condition, Project, Service};

pub use containers::container_name;
pub use single::{ContainerSpec, Found};
pub use swarm::{ServiceState, SwarmRole, TaskState};
pub use swarm_spec::{ObjectFile, Rollout, SwarmService, TaskHealth};

use crate::runtime::{BoxFuture, OnEvent, OnLine, Runtime, ServiceStarter};
use crate::{
    Action, EngineError, LABEL_PROJECT, LABEL_SERVICE, RunningDatabase, ServiceStatus, StackError,
    UpRequest,
};

/// A connection to the engine, at the API version both sides speak.
pub struct DockerRuntime {
    docker: Docker,
    /// What `up` learned of the project's containers in one list call while preparing.
    listing: Mutex<Option<Listing>>,
}

/// The project's containers as listed once per `up` (in `prepare`), so a warm `up` does
/// not ask the engine about each service again: `ensure_service` compares each service's
/// container with this, and `wait_for` reads the state and health of a container `up`
/// left alone from it.
struct Listing {
    project: String,
    containers: Vec<ContainerSummary>,
    /// Services whose container this `up` found as defined and running.
    unchanged: HashSet<String>,
}

fn engine(doing: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> StackError {
    StackError::engine(doing)
}

fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// How long the engine may take to answer the first request; a daemon busy building
/// images can take several seconds.
const ENGINE_ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// What the engine says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    pub version: String,
    pub api_version: String,
}

/// Where the engine is: `DOCKER_HOST` (`unix://…` or `tcp://…`), else the local socket.
pub fn engine_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

/// A client for the engine at [`engine_host`]; `up`, `status` and `doctor` all use it.
/// A unix socket that is not there is named with the system's own error.
fn client() -> Result<Docker, EngineError> {
    let host = engine_host();
    if let Some(path) = host.strip_prefix("unix://") {
        std::fs::metadata(path).map_err(|source| EngineError::Socket {
            path: path.into(),
            source,
        })?;
    }
    Ok(Docker::connect_with_host(&host)?)
}

fn connect(source: EngineError) -> StackError {
    StackError::Connect { source }
}

/// The engine's answer to the first request of a connection, within `timeout`; no answer
/// or an error is a failure to connect.
async fn first_answer<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, StackError> {
    tokio::time::timeout(timeout, request)
        .await
        .map_err(|_| connect(EngineError::Timeout(timeout.as_secs())))?
        .map_err(|e| connect(e.into()))
}

/// Asks the engine at [`engine_host`] for its version, within `timeout`.
pub async fn engine_version(timeout: Duration) -> Result<EngineVersion, StackError> {
    let docker = client().map_err(connect)?;
    let answer = first_answer(timeout, docker.version()).await?;
    let known = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
    Ok(EngineVersion {
        version: known(answer.version),
        api_version: known(answer.api_version),
    })
}

impl DockerRuntime {
    /// Connects (DOCKER_HOST or the local socket) and negotiates the API version.
    pub async fn connect() -> Result<DockerRuntime, StackError> {
        let docker = client().map_err(connect)?;
        let docker = first_answer(ENGINE_ANSWER_TIMEOUT, docker.negotiate_version()).await?;
        Ok(DockerRuntime {
            docker,
            listing: Mutex::new(None),
        })
    }

    /// The containers of `service` as `prepare` listed them for `project`; `None` when no
    /// listing of that project is at hand.
    fn listed(&self, project: &str, service: &str) -> Option<Vec<ContainerSummary>> {
        let listing = self.listing.lock().ok()?;
        let listing = listing.as_ref().filter(|l| l.project == project)?;
        Some(
            listing
                .containers
                .iter()
                .filter(|c| label(c, LABEL_SERVICE) == Some(service))
                .cloned()
                .collect(),
        )
    }

    /// Notes that this `up` left `service`'s container alone.
    fn mark_unchanged(&self, project: &str, service: &str) {
        if let Ok(mut listing) = self.listing.lock()
            && let Some(l) = listing.as_mut().filter(|l| l.project == project)
        {
            l.unchanged.insert(service.to_string());
        }
    }

    /// The listed container of `service` when this `up` left it alone.
    fn unchanged(&self, project: &str, service: &str) -> Option<ContainerSummary> {
        let listing = self.listing.lock().ok()?;
        let l = listing.as_ref().filter(|l| l.project == project)?;
        if !l.unchanged.contains(service) {
            return None;
        }
        l.containers
            .iter()
            .find(|c| label(c, LABEL_SERVICE) == Some(service))
            .cloned()
    }

    pub(super) async fn containers(
        &self,
        project: &str,
        service: Option<&str>,
    ) -> Result<Vec<ContainerSummary>, StackError> {
        let mut labels = vec![format!("{LABEL_PROJECT}={project}")];
        if let Some(s) = service {
            labels.push(format!("{LABEL_SERVICE}={s}"));
        }
        let filters = HashMap::from([("label".to_string(), labels)]);
        self.docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(engine(format!(
                "listing the containers of project {project}"
            )))
    }

    /// Everything before the first container: free ports, secret and config files, images (a missing
    /// one that cannot be built or pulled stops `up` before anything carries the project's
    /// label), networks and volumes.
    async fn prepare(
        &self,
        project: &Project,
        req: &UpRequest,
        on_event: OnEvent<'_>,
    ) -> Result<(), StackError> {
        let ours = self.containers(&req.project, None).await?;
        self.check_ports(project, req, &ours).await?;
        files::check(project, req)?;
        if let Ok(mut listing) = self.listing.lock() {
            *listing = Some(Listing {
                project: req.project.clone(),
                containers: ours,
                unchanged: HashSet::new(),
            });
        }
        for service in crate::services(project, &req.waves) {
            for message in crate::swarm_warnings(service) {
                on_event(crate::Event::Warning {
                    service: service.name.clone(),
                    message,
                });
            }
        }
        // An image several services run is looked at once, unless a service builds or
        // pulls it by its policy.
        let mut present = HashSet::new();
        for service in crate::services(project, &req.waves) {
            let image = images::image_of(&req.project, service)?;
            let plain = service.build.is_none()
                && matches!(
                    service.pull_policy,
                    None | Some(goodgo_compose::PullPolicy::Missing)
                );
            if plain && present.contains(&image) {
                continue;
            }
            self.ensure_image(&req.project, service, on_event).await?;
            present.insert(image);
        }
        self.ensure_networks(project, req).await?;
        self.ensure_volumes(project, req).await
    }

    /// Stops and removes the project's containers and networks; its volumes too with `volumes`.
    pub async fn down(&self, project: &str, volumes: bool) -> Result<Vec<String>, StackError> {
        let containers = self.containers(project, None).await?;
        let removals = containers.iter().map(|c| async {
            let id = c.id.clone().unwrap_or_default();
            self.remove_container(&id).await?;
            Ok::<_, StackError>(label(c, LABEL_SERVICE).unwrap_or("?").to_string())
        });
        let mut removed = Vec::new();
        for r in futures_util::future::join_all(removals).await {
            removed.push(r?);
        }
        let by_project = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_PROJECT}={project}")],
        )]);
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(by_project.clone()),
            }))
            .await
            .map_err(engine(format!("listing the networks of project {project}")))?;
        for n in networks {
            if let Some(id) = n.id {
                match self.docker.remove_network(&id).await {
                    Ok(()) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(engine(format!("removing network {id}"))(e)),
                }
            }
        }
        if volumes {
            let list = self
                .docker
                .list_volumes(Some(ListVolumesOptions {
                    filters: Some(by_project),
                }))
                .await
                .map_err(engine(format!("listing the volumes of project {project}")))?;
            for v in list.volumes.unwrap_or_default() {
                match self
                    .docker
                    .remove_volume(&v.name, Some(RemoveVolumeOptions { force: true }))
                    .await
                {
                    Ok(()) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(engine(format!("removing volume {}", v.name))(e)),
                }
            }
        }
        removed.sort();
        Ok(removed)
    }

    /// The project's containers, each with what the engine says of it in full.
    async fn inspected(
        &self,
        project: &str,
    ) -> Result<Vec<(ContainerSummary, String, ContainerInspectResponse)>, StackError> {
        let mut all = Vec::new();
        for c in self.containers(project, None).await? {
            let id = c.id.clone().unwrap_or_default();
            let info = self
                .docker
                .inspect_container(&id, None)
                .await
                .map_err(engine(format!("inspecting container {id}")))?;
            all.push((c, id, info));
        }
        Ok(all)
    }

    pub async fn status(&self, project: &str) -> Result<Vec<ServiceStatus>, StackError> {
        let mut rows = Vec::new();
        for (c, id, info) in self.inspected(project).await? {
            let state = info.state.unwrap_or_default();
            let mut health = state
                .health
                .as_ref()
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none");
            // The engine re-checks once per interval; until its first verdict, run the
            // check ourselves rather than report a service as merely "starting".
            if health.as_deref() == Some("starting")
                && let Some(test) = info
                    .config
                    .as_ref()
                    .and_then(|c| c.healthcheck.as_ref())
                    .and_then(|h| h.test.clone())
                && self.run_check(&id, &test).await
            {
                health = Some("healthy".into());
            }
            let uptime = state
                .started_at
                .as_deref()
                .filter(|_| state.running.unwrap_or(false))
                .and_then(seconds_since);
            let mut ports: Vec<String> = c
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    p.public_port.map(|pp| {
                        format!(
                            "{}:{}->{}",
                            p.ip.clone().unwrap_or_default(),
                            pp,
                            p.private_port
                        )
                    })
                })
                .collect();
            ports.sort();
            ports.dedup();
            rows.push(ServiceStatus {
                service: label(&c, LABEL_SERVICE).unwrap_or("?").to_string(),
                runtime: "docker",
                state: state
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                health: health.unwrap_or_else(|| "none".into()),
                ports,
                uptime_s: uptime,
                id: id.chars().take(12).collect(),
            });
        }
        rows.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(rows)
    }
}

impl DockerRuntime {
    /// The project's running PostgreSQL container (its image names postgres, its port 5432
    /// is published): the address and credentials come from the container itself.
    pub async fn database(&self, project: &str) -> Result<Option<RunningDatabase>, StackError> {
        for (c, _, info) in self.inspected(project).await? {
            let running = info.state.as_ref().and_then(|s| s.running);
            let config = info.config.unwrap_or_default();
            let image = config.image.as_deref().unwrap_or_default();
            if running != Some(true)
                || crate::native::image_kind(image) != Some(crate::native::Kind::Postgres)
            {
                continue;
            }
            let binding = info
                .network_settings
                .and_then(|n| n.ports)
                .and_then(|mut ports| ports.remove("5432/tcp").flatten())
                .and_then(|bindings| bindings.into_iter().find(|b| b.host_port.is_some()));
            let Some(binding) = binding else { continue };
            let Some(port) = binding.host_port.and_then(|p| p.parse().ok()) else {
                continue;
            };
            let env: HashMap<&str, &str> = config
                .env
                .iter()
                .flatten()
                .filter_map(|e| e.split_once('='))
                .collect();
            let crate::native::Credentials { user, password, db } =
                crate::native::Credentials::from_env(|k| env.get(k).map(|v| v.to_string()));
            return Ok(Some(RunningDatabase {
                service: label(&c, LABEL_SERVICE).unwrap_or("?").to_string(),
                runtime: "docker".into(),
                host: crate::connect_host(binding.host_ip.as_deref()),
                port,
                user,
                password,
                db,
            }));
        }
        Ok(None)
    }
}

impl ServiceStarter for DockerRuntime {
    fn prepare<'a>(
        &'a self,
        project: &'a Project,
        req: &'a UpRequest,
        on_event: OnEvent<'a>,
    ) -> BoxFuture<'a, Result<(), StackError>> {
        Box::pin(DockerRuntime::prepare(self, project, req, on_event))
    }

    fn start<'a>(
        &'a self,
        project: &'a Project,
        req: &'a UpRequest,
        service: &'a Service,
        _deadline: Instant,
        _on_event: OnEvent<'a>,
    ) -> BoxFuture<'a, Result<Action, StackError>> {
        Box::pin(async move {
            let image = images::image_of(&req.project, service)?;
            self.ensure_service(project, req, service, &image).await
        })
    }

    fn ready_on_start(&self) -> bool {
        false
    }

    fn wait_for<'a>(
        &'a self,
        req: &'a UpRequest,
        service: &'a str,
        cond: Condition,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<(), StackError>> {
        Box::pin(DockerRuntime::wait_for(self, req, service, cond, deadline))
    }
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn down<'a>(
        &'a self,
        project: &'a str,
        volumes: bool,
    ) -> BoxFuture<'a, Result<Vec<String>, StackError>> {
        Box::pin(DockerRuntime::down(self, project, volumes))
    }

    fn status<'a>(
        &'a self,
        project: &'a str,
        _model: Option<&'a Project>,
    ) -> BoxFuture<'a, Result<Vec<ServiceStatus>, StackError>> {
        Box::pin(DockerRuntime::status(self, project))
    }

    fn logs<'a>(
        &'a self,
        project: &'a str,
        services: &'a [String],
        follow: bool,
        tail: Option<usize>,
        on_line: OnLine<'a>,
    ) -> BoxFuture<'a, Result<(), StackError>> {
        Box::pin(DockerRuntime::logs(
            self, project, services, follow, tail, on_line,
        ))
    }

    fn database<'a>(
        &'a self,
        project: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunningDatabase>, StackError>> {
        Box::pin(DockerRuntime::database(self, project))
    }
}

fn label<'a>(c: &'a ContainerSummary, key: &str) -> Option<&'a str> {
    c.labels.as_ref()?.get(key).map(String::as_str)
}

/// Seconds since an RFC 3339 time like `2026-11-25T16:51:11.219Z`.
fn seconds_since(rfc3339: &str) -> Option<u64> {
    let (date, time) = rfc3339.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split(['+', '.']).next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let y_adj = if m <= 2 { y - 1 } else { y };
    let era = y_adj.div_euclid(400);
    let yoe = y_adj - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let then = days * 86_400 + hh * 3600 + mm * 60 + ss;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    u64::try_from(then)
        .ok()
        .map(|then| now.saturating_sub(then))
}

/// Service name → its `depends_on`, for callers that show the plan.
pub fn dependency_map(
    project: &Project,
    waves: &[Vec<String>],
) -> BTreeMap<String, BTreeMap<String, Condition>> {
    crate::services(project, waves)
        .into_iter()
        .map(|s| (s.name.clone(), s.depends_on.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use images::split_tag;

    #[test]
    fn uptime_parses_engine_times() {
        let secs = seconds_since("2020-01-01T00:00:00.123456789Z").unwrap_or(0);
        assert!(secs > 5 * 365 * 86_400, "{secs}");
        assert_eq!(split_tag("goodgo/postgres:15"), ("goodgo/postgres", "15"));
        assert_eq!(
            split_tag("localhost:5000/img"),
            ("localhost:5000/img", "latest")
        );
    }
}
