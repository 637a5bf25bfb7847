//! The Docker runtime: services as containers, through the engine's API (bollard).
//!
//! Everything goodgo creates carries docker compose's own labels (project, service,
//! config hash), so `docker compose ls/ps` see it and goodgo finds it again. A container
//! whose config-hash label matches the service's current definition is left alone; a
//! changed definition replaces only that container.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecOptions};
use bollard::models::{
    ContainerCreateBody, ContainerSummary, EndpointIpamConfig, EndpointSettings, HealthConfig,
    HostConfig, Ipam, IpamConfig, Mount, MountType, NetworkCreateRequest, NetworkingConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, ListNetworksOptions,
    ListVolumesOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
    StopContainerOptions,
};
use futures_util::StreamExt;
use goodgo_compose::{Condition, MountKind, Project, Service, config_hash};

use crate::{
    Action, EngineError, Event, LABEL_HASH, LABEL_MANAGED, LABEL_NETWORK, LABEL_NUMBER,
    LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE, LABEL_VOLUME, ServiceReport, ServiceStatus,
    StackError, UpRequest, millis, probe,
};

/// A connection to the engine, at the API version both sides speak.
pub struct DockerRuntime {
    docker: Docker,
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

impl DockerRuntime {
    /// Connects (DOCKER_HOST or the local socket) and negotiates the API version.
    pub async fn connect() -> Result<DockerRuntime, StackError> {
        let connect = |source: EngineError| StackError::Connect { source };
        let docker = Docker::connect_with_local_defaults().map_err(|e| connect(e.into()))?;
        let docker = tokio::time::timeout(ENGINE_ANSWER_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| connect(EngineError::Timeout(ENGINE_ANSWER_TIMEOUT.as_secs())))?
            .map_err(|e| connect(e.into()))?;
        Ok(DockerRuntime { docker })
    }

    /// Whether `image` is present locally.
    pub async fn has_image(&self, image: &str) -> Result<bool, StackError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(engine(format!("inspecting image {image}"))(e)),
        }
    }

    async fn containers(
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

    /// Starts the request's services wave by wave, each wave in parallel, each service
    /// after its dependencies meet their conditions; returns when every service is up
    /// (and healthy where it has a healthcheck).
    pub async fn up(
        &self,
        project: &Project,
        req: &UpRequest,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<Vec<ServiceReport>, StackError> {
        let start = Instant::now();
        let deadline = start + req.timeout;
        self.check_ports(project, req).await?;
        check_secrets(project, req)?;
        // Images first: a missing one that cannot be built or pulled stops `up` before
        // anything carries the project's label.
        let mut images = HashMap::new();
        for service in crate::services(project, &req.waves) {
            let image = self.ensure_image(&req.project, service, on_event).await?;
            images.insert(service.name.clone(), image);
        }
        self.ensure_networks(project, req).await?;
        self.ensure_volumes(project, req).await?;
        let mut reports = Vec::new();
        for wave in &req.waves {
            let jobs = wave
                .iter()
                .filter_map(|name| project.services.get(name))
                .map(|service| async {
                    // Wait for what this service depends on.
                    for (dep, cond) in &service.depends_on {
                        on_event(Event::Waiting {
                            service: dep.clone(),
                            condition: condition_name(*cond),
                        });
                        self.wait_for(project, req, dep, *cond, deadline).await?;
                    }
                    let image = images.get(&service.name).cloned().unwrap_or_default();
                    let action = self.ensure_service(project, req, service, &image).await?;
                    on_event(Event::Acting {
                        service: service.name.clone(),
                        action,
                    });
                    Ok::<_, StackError>((service.name.clone(), action))
                });
            for result in futures_util::future::join_all(jobs).await {
                let (service, action) = result?;
                reports.push(ServiceReport {
                    service,
                    action,
                    ready_ms: 0,
                });
            }
        }
        // Every service whose container has a healthcheck (written in the file or inherited
        // from the image) must be healthy before `up` returns; the others running.
        // A one-off service that others wait to complete is done when it exits 0.
        let needed = crate::needed_conditions(project, &req.waves);
        let waits = reports.iter_mut().map(|report| async {
            let cond = match needed.get(&report.service) {
                Some(Condition::CompletedSuccessfully) => Condition::CompletedSuccessfully,
                _ => Condition::Healthy,
            };
            self.wait_for(project, req, &report.service, cond, deadline)
                .await?;
            report.ready_ms = millis(start.elapsed());
            on_event(Event::Ready {
                service: report.service.clone(),
                after: start.elapsed(),
            });
            Ok::<_, StackError>(())
        });
        for result in futures_util::future::join_all(waits).await {
            result?;
        }
        Ok(reports)
    }

    /// Fails before anything starts when a port a new container publishes is taken by
    /// something that is not this project's own container for that service.
    async fn check_ports(&self, project: &Project, req: &UpRequest) -> Result<(), StackError> {
        let ours = self.containers(&req.project, None).await?;
        for service in crate::services(project, &req.waves) {
            for port in &service.ports {
                let Some(published) = port.published else {
                    continue;
                };
                let held_by_us = ours.iter().any(|c| {
                    label(c, LABEL_SERVICE) == Some(service.name.as_str())
                        && c.ports
                            .iter()
                            .flatten()
                            .any(|p| p.public_port == Some(published))
                });
                let ip = port.host_ip.clone().unwrap_or_default();
                if held_by_us || probe::port_is_free(&ip, published) {
                    continue;
                }
                let who = self
                    .container_on_port(published)
                    .await
                    .or_else(|| probe::port_holder(published));
                let shown_ip = if ip.is_empty() {
                    "0.0.0.0".to_string()
                } else {
                    ip
                };
                return Err(StackError::PortTaken {
                    message: format!(
                        "port {published} on {shown_ip} for service `{}` is already taken{}",
                        service.name,
                        who.map(|w| format!(" by {w}")).unwrap_or_default()
                    ),
                    hint: "stop whatever holds it, or publish another port (the stack file interpolates its ports, e.g. POSTGRES_PORT=5433 goodgo up)".into(),
                });
            }
        }
        Ok(())
    }

    async fn container_on_port(&self, port: u16) -> Option<String> {
        let all = self
            .docker
            .list_containers(None::<ListContainersOptions>)
            .await
            .ok()?;
        all.iter()
            .find(|c| {
                c.ports
                    .iter()
                    .flatten()
                    .any(|p| p.public_port == Some(port))
            })
            .map(|c| {
                let name = c
                    .names
                    .iter()
                    .flatten()
                    .next()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default();
                match label(c, LABEL_PROJECT) {
                    Some(p) => format!("container {name} (project {p})"),
                    None => format!("container {name}"),
                }
            })
    }

    async fn ensure_networks(&self, project: &Project, req: &UpRequest) -> Result<(), StackError> {
        let mut wanted: Vec<String> = Vec::new();
        for service in crate::services(project, &req.waves) {
            for n in &service.networks {
                if !wanted.contains(n) {
                    wanted.push(n.clone());
                }
            }
        }
        let existing = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(HashMap::from([(
                    "label".to_string(),
                    vec![format!("{LABEL_PROJECT}={}", req.project)],
                )])),
            }))
            .await
            .map_err(engine(format!(
                "listing the networks of project {}",
                req.project
            )))?;
        for net in &wanted {
            let name = network_name(project, &req.project, net);
            if project.networks.get(net).is_some_and(|n| n.external) {
                continue;
            }
            if existing
                .iter()
                .any(|n| n.name.as_deref() == Some(name.as_str()))
            {
                continue;
            }
            let def = project.networks.get(net).cloned().unwrap_or_default();
            let mut labels: HashMap<String, String> = def.labels.clone().into_iter().collect();
            labels.insert(LABEL_PROJECT.to_string(), req.project.clone());
            labels.insert(LABEL_NETWORK.to_string(), net.clone());
            labels.insert(LABEL_MANAGED.to_string(), "goodgo".to_string());
            let ipam = def.ipam.as_ref().map(|i| Ipam {
                driver: i.driver.clone(),
                config: Some(
                    i.config
                        .iter()
                        .map(|c| IpamConfig {
                            subnet: c.subnet.clone(),
                            ip_range: c.ip_range.clone(),
                            gateway: c.gateway.clone(),
                            auxiliary_addresses: (!c.aux_addresses.is_empty())
                                .then(|| c.aux_addresses.clone().into_iter().collect()),
                        })
                        .collect(),
                ),
                options: (!i.options.is_empty()).then(|| i.options.clone().into_iter().collect()),
            });
            match self
                .docker
                .create_network(NetworkCreateRequest {
                    name: name.clone(),
                    driver: Some(def.driver.clone().unwrap_or_else(|| "bridge".into())),
                    internal: def.internal.then_some(true),
                    attachable: def.attachable.then_some(true),
                    enable_ipv6: def.enable_ipv6,
                    ipam,
                    options: (!def.driver_opts.is_empty())
                        .then(|| def.driver_opts.clone().into_iter().collect()),
                    labels: Some(labels),
                    ..Default::default()
                })
                .await
            {
                Ok(_) => {}
                // Created meanwhile by a concurrent `up`: fine.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => {}
                Err(e) => return Err(engine(format!("creating network {name}"))(e)),
            }
        }
        Ok(())
    }

    async fn ensure_volumes(&self, project: &Project, req: &UpRequest) -> Result<(), StackError> {
        for service in crate::services(project, &req.waves) {
            for mount in &service.volumes {
                let (MountKind::Volume, Some(source)) = (&mount.kind, &mount.source) else {
                    continue;
                };
                if project.volumes.get(source).is_some_and(|v| v.external) {
                    continue;
                }
                let name = volume_name(project, &req.project, source);
                if self.docker.inspect_volume(&name).await.is_ok() {
                    continue;
                }
                let def = project.volumes.get(source).cloned().unwrap_or_default();
                let mut labels: HashMap<String, String> = def.labels.into_iter().collect();
                labels.insert(LABEL_PROJECT.to_string(), req.project.clone());
                labels.insert(LABEL_VOLUME.to_string(), source.clone());
                labels.insert(LABEL_MANAGED.to_string(), "goodgo".to_string());
                let doing = format!("creating volume {name}");
                self.docker
                    .create_volume(VolumeCreateRequest {
                        name: Some(name),
                        driver: def.driver,
                        driver_opts: (!def.driver_opts.is_empty())
                            .then(|| def.driver_opts.into_iter().collect()),
                        labels: Some(labels),
                        ..Default::default()
                    })
                    .await
                    .map_err(engine(doing))?;
            }
        }
        Ok(())
    }

    /// Pulls `image` (for `service`) from its registry, reporting progress through
    /// `on_event`; an error names the image and says how to build it instead.
    pub async fn pull(
        &self,
        service: &str,
        image: &str,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StackError> {
        on_event(Event::Pulling {
            service: service.to_string(),
            image: image.to_string(),
        });
        let (name, tag) = split_tag(image);
        let mut stream = self.docker.create_image(
            Some(CreateImageOptions {
                from_image: Some(name.to_string()),
                tag: Some(tag.to_string()),
                ..Default::default()
            }),
            None,
            None,
        );
        let cannot_pull = |source: EngineError| StackError::Pull {
            service: service.to_string(),
            image: image.to_string(),
            source,
        };
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| cannot_pull(e.into()))?;
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                return Err(cannot_pull(EngineError::Reported(err)));
            }
            if let Some(status) = info.status {
                let detail = info.progress_detail.unwrap_or_default();
                on_event(Event::PullProgress {
                    image: image.to_string(),
                    layer: info.id,
                    status,
                    current: detail.current.and_then(|c| u64::try_from(c).ok()),
                    total: detail.total.and_then(|t| u64::try_from(t).ok()),
                });
            }
        }
        if !self.has_image(image).await? {
            return Err(cannot_pull(EngineError::Reported(
                "the engine reported no error, yet has no such image".into(),
            )));
        }
        Ok(())
    }

    /// The image a service runs: present, built from its `build` context when missing
    /// (tagged with `image`, or `{project}-{service}`), or pulled.
    async fn ensure_image(
        &self,
        project: &str,
        service: &Service,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<String, StackError> {
        let image = match (&service.image, &service.build) {
            (Some(image), _) => image.clone(),
            (None, Some(_)) => format!("{project}-{}", service.name),
            (None, None) => {
                return Err(StackError::Unsupported {
                    message: format!("service `{}` has neither image nor build", service.name),
                    hint: None,
                });
            }
        };
        if self.has_image(&image).await? {
            return Ok(image);
        }
        if service.build.is_some() {
            self.build(service, &image, on_event).await?;
            return Ok(image);
        }
        self.pull(&service.name, &image, on_event).await?;
        Ok(image)
    }

    async fn ensure_service(
        &self,
        project: &Project,
        req: &UpRequest,
        service: &Service,
        image: &str,
    ) -> Result<Action, StackError> {
        let hash = config_hash(service);
        let existing = self.containers(&req.project, Some(&service.name)).await?;
        let (primary, extra) = service_networks(service);
        let wanted: BTreeSet<String> = std::iter::once(primary)
            .chain(extra.iter().copied())
            .map(|n| network_name(project, &req.project, n))
            .collect();
        let mut action = Action::Created;
        for c in &existing {
            let id = c.id.clone().unwrap_or_default();
            let running = c.state.as_ref().is_some_and(|s| s.to_string() == "running");
            // A container left by an interrupted `up` may lack networks it should join.
            let joined: BTreeSet<String> = c
                .network_settings
                .as_ref()
                .and_then(|n| n.networks.as_ref())
                .map(|n| n.keys().cloned().collect())
                .unwrap_or_default();
            if label(c, LABEL_HASH) == Some(hash.as_str()) && joined == wanted {
                if running {
                    return Ok(Action::Unchanged);
                }
                self.docker
                    .start_container(&id, None)
                    .await
                    .map_err(engine(format!(
                        "service `{}` could not start",
                        service.name
                    )))?;
                return Ok(Action::Started);
            }
            action = Action::Recreated;
            self.remove_container(&id).await?;
        }
        let body = container_body(project, &req.project, service, image, &hash);
        let name = container_name(&req.project, service);
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    platform: service.platform.clone().unwrap_or_default(),
                }),
                body,
            )
            .await
            .map_err(|e| match &e {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                } => StackError::NameTaken {
                    name: name.clone(),
                    source: e.into(),
                },
                _ => engine(format!("creating container {name}"))(e),
            })?;
        // Created on its first network (the engine takes one at create time); the others
        // are joined before it starts.
        for net in extra {
            self.docker
                .connect_network(
                    &network_name(project, &req.project, net),
                    bollard::models::NetworkConnectRequest {
                        container: created.id.clone(),
                        endpoint_config: Some(endpoint(service, net)),
                    },
                )
                .await
                .map_err(engine(format!(
                    "service `{}` could not join network `{net}`",
                    service.name
                )))?;
        }
        self.docker
            .start_container(&created.id, None)
            .await
            .map_err(engine(format!(
                "service `{}` could not start",
                service.name
            )))?;
        Ok(action)
    }

    /// Builds `service`'s context through the engine and tags it `tag`.
    async fn build(
        &self,
        service: &Service,
        tag: &str,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StackError> {
        let Some(build) = &service.build else {
            return Ok(());
        };
        on_event(Event::Building {
            service: service.name.clone(),
        });
        let context = build.context.clone();
        let tar = tokio::task::spawn_blocking(move || crate::tarball::pack(&context))
            .await
            .map_err(|e| StackError::Engine {
                doing: format!("packing the build context of `{}`", service.name),
                source: e.into(),
            })?
            .map_err(|source| StackError::Context {
                service: service.name.clone(),
                source,
            })?;
        let options = bollard::query_parameters::BuildImageOptions {
            dockerfile: build
                .dockerfile
                .clone()
                .unwrap_or_else(|| "Dockerfile".into()),
            t: Some(tag.to_string()),
            target: build.target.clone().unwrap_or_default(),
            buildargs: Some(build.args.clone().into_iter().collect()),
            rm: true,
            forcerm: true,
            ..Default::default()
        };
        let mut stream = self.docker.build_image(
            options,
            None,
            Some(bollard::body_full(bytes::Bytes::from(tar))),
        );
        let mut output: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| StackError::Build {
                service: service.name.clone(),
                logs: output.iter().rev().take(20).rev().cloned().collect(),
                source: e.into(),
            })?;
            if let Some(text) = info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    on_event(Event::PullProgress {
                        image: tag.to_string(),
                        layer: None,
                        status: line.to_string(),
                        current: None,
                        total: None,
                    });
                    output.push(line.to_string());
                }
            }
            if let Some(err) = info.error_detail {
                return Err(StackError::Build {
                    service: service.name.clone(),
                    logs: output.iter().rev().take(20).rev().cloned().collect(),
                    source: EngineError::Reported(err.message.unwrap_or_default()),
                });
            }
        }
        if !self.has_image(tag).await? {
            return Err(StackError::Failed {
                message: format!("the build of `{}` produced no image {tag}", service.name),
                logs: output,
                hint: None,
            });
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<(), StackError> {
        let _ = self
            .docker
            .stop_container(
                id,
                // No `t`: the engine waits the container's own stop timeout, which is the
                // service's `stop_grace_period` (10 s when unset).
                Some(StopContainerOptions {
                    t: None,
                    signal: None,
                }),
            )
            .await;
        match self
            .docker
            .remove_container(
                id,
                // `v`: its anonymous volumes (an image's VOLUME with no named volume over
                // it) go with it; a new container could never mount them again.
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    link: false,
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(engine(format!("removing container {id}"))(e)),
        }
    }

    /// Waits until `service` meets `cond`. Health is polled tightly: besides the engine's
    /// own status (updated once per `interval`), goodgo runs the healthcheck's command in
    /// the container itself every ~50 ms, so readiness is seen within about 100 ms.
    async fn wait_for(
        &self,
        _project: &Project,
        req: &UpRequest,
        service: &str,
        cond: Condition,
        deadline: Instant,
    ) -> Result<(), StackError> {
        let containers = self.containers(&req.project, Some(service)).await?;
        let Some(id) = containers.first().and_then(|c| c.id.clone()) else {
            return Err(StackError::Failed {
                message: format!("service `{service}` has no container"),
                logs: Vec::new(),
                hint: None,
            });
        };
        loop {
            let info = self
                .docker
                .inspect_container(&id, None)
                .await
                .map_err(engine(format!("inspecting the container of `{service}`")))?;
            // The container's healthcheck as the engine runs it: written in the file, or
            // inherited from the image (the engine merges the two at create time).
            let test = effective_check(&info);
            let state = info.state.unwrap_or_default();
            let running = state.running.unwrap_or(false);
            let exit_code = state.exit_code.unwrap_or(0);
            let health = state
                .health
                .as_ref()
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .unwrap_or_default();
            match cond {
                Condition::Started if running => return Ok(()),
                Condition::CompletedSuccessfully
                    if !running
                        && state
                            .finished_at
                            .as_deref()
                            .is_some_and(|f| !f.starts_with("0001")) =>
                {
                    if exit_code == 0 {
                        return Ok(());
                    }
                    return Err(self
                        .failure(&id, service, &format!("exited with code {exit_code}"))
                        .await);
                }
                Condition::Healthy if health == "healthy" => return Ok(()),
                Condition::Healthy if health == "unhealthy" => {
                    return Err(self
                        .failure(&id, service, "is unhealthy: its healthcheck keeps failing")
                        .await);
                }
                Condition::Healthy if running && test.is_none() => return Ok(()),
                _ => {}
            }
            if !running
                && cond != Condition::CompletedSuccessfully
                && state
                    .finished_at
                    .as_deref()
                    .is_some_and(|f| !f.starts_with("0001"))
            {
                return Err(self
                    .failure(
                        &id,
                        service,
                        &format!("exited with code {exit_code} while starting"),
                    )
                    .await);
            }
            if cond == Condition::Healthy
                && running
                && let Some(test) = &test
                && self.run_check(&id, test).await
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let what = match cond {
                    Condition::Started => "to start",
                    Condition::Healthy => "to become healthy",
                    Condition::CompletedSuccessfully => "to complete",
                };
                return Err(self
                    .failure(
                        &id,
                        service,
                        &format!("took longer than {:?} {what}", req.timeout),
                    )
                    .await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a healthcheck test (`["CMD", …]` or `["CMD-SHELL", "…"]`) in the container;
    /// true when it exits 0.
    async fn run_check(&self, id: &str, test: &[String]) -> bool {
        let cmd: Vec<String> = match test.first().map(String::as_str) {
            Some("CMD") => test[1..].to_vec(),
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
            _ => return false,
        };
        let Ok(exec) = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(cmd),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
        else {
            return false;
        };
        if let Ok(bollard::exec::StartExecResults::Attached { mut output, .. }) = self
            .docker
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: None,
                }),
            )
            .await
        {
            while output.next().await.is_some() {}
        }
        self.docker
            .inspect_exec(&exec.id)
            .await
            .ok()
            .and_then(|i| i.exit_code)
            == Some(0)
    }

    async fn failure(&self, id: &str, service: &str, what: &str) -> StackError {
        let logs = self.tail(id, 20).await;
        let mut hint = None;
        if let Ok(info) = self.docker.inspect_container(id, None).await
            && let Some(last) = info
                .state
                .and_then(|s| s.health)
                .and_then(|h| h.log)
                .and_then(|l| l.last().cloned())
        {
            let output = last.output.unwrap_or_default();
            hint = Some(format!(
                "last healthcheck (exit {}): {}",
                last.exit_code.unwrap_or(-1),
                output.trim()
            ));
        }
        StackError::Failed {
            message: format!("service `{service}` {what}"),
            logs,
            hint,
        }
    }

    async fn tail(&self, id: &str, n: usize) -> Vec<String> {
        let mut stream = self.docker.logs(
            id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                tail: n.to_string(),
                ..Default::default()
            }),
        );
        let mut lines = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            lines.extend(
                String::from_utf8_lossy(&chunk.into_bytes())
                    .lines()
                    .map(str::to_string),
            );
        }
        lines
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

    pub async fn status(&self, project: &str) -> Result<Vec<ServiceStatus>, StackError> {
        let containers = self.containers(project, None).await?;
        let mut rows = Vec::new();
        for c in containers {
            let id = c.id.clone().unwrap_or_default();
            let info = self
                .docker
                .inspect_container(&id, None)
                .await
                .map_err(engine(format!("inspecting container {id}")))?;
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

    /// Streams the logs of the project's containers (all, or `services`), each line handed
    /// to `on_line(service, line)`. With `follow` it runs until the containers stop.
    pub async fn logs(
        &self,
        project: &str,
        services: &[String],
        follow: bool,
        tail: Option<usize>,
        on_line: &(dyn Fn(&str, &str) + Sync),
    ) -> Result<(), StackError> {
        let containers = self.containers(project, None).await?;
        let chosen: Vec<(String, String)> = containers
            .iter()
            .filter_map(|c| Some((label(c, LABEL_SERVICE)?.to_string(), c.id.clone()?)))
            .filter(|(s, _)| services.is_empty() || services.contains(s))
            .collect();
        let streams = chosen.iter().map(|(service, id)| async move {
            let options = LogsOptions {
                stdout: true,
                stderr: true,
                follow,
                tail: tail.map_or("all".to_string(), |n| n.to_string()),
                ..Default::default()
            };
            let mut stream = self.docker.logs(id, Some(options));
            let mut pending = String::new();
            while let Some(item) = stream.next().await {
                let chunk = item.map_err(engine(format!("reading the logs of `{service}`")))?;
                pending.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                while let Some(i) = pending.find('\n') {
                    let line: String = pending.drain(..=i).collect();
                    on_line(service, line.trim_end());
                }
            }
            if !pending.is_empty() {
                on_line(service, pending.trim_end());
            }
            Ok::<_, StackError>(())
        });
        for r in futures_util::future::join_all(streams).await {
            r?;
        }
        Ok(())
    }
}

/// The healthcheck test the engine runs in a container, if any.
fn effective_check(info: &bollard::models::ContainerInspectResponse) -> Option<Vec<String>> {
    info.config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.clone())
        .filter(|t| t.first().is_some_and(|first| first != "NONE"))
}

/// A service's first network (the one its container is created on: `default` when it
/// uses it) and the others it joins before starting.
fn service_networks(service: &Service) -> (&str, Vec<&str>) {
    let primary = if service.networks.iter().any(|n| n == "default") {
        "default"
    } else {
        service.networks.first().map_or("default", String::as_str)
    };
    let extra = service
        .networks
        .iter()
        .map(String::as_str)
        .filter(|n| *n != primary)
        .collect();
    (primary, extra)
}

/// How a service joins `net`: reachable by its name and its aliases, at its fixed address.
fn endpoint(service: &Service, net: &str) -> EndpointSettings {
    let settings = service.network_settings.get(net);
    let mut aliases = vec![service.name.clone()];
    aliases.extend(settings.iter().flat_map(|s| s.aliases.iter().cloned()));
    let ipam = settings
        .filter(|s| s.ipv4_address.is_some() || s.ipv6_address.is_some())
        .map(|s| EndpointIpamConfig {
            ipv4_address: s.ipv4_address.clone(),
            ipv6_address: s.ipv6_address.clone(),
            ..Default::default()
        });
    EndpointSettings {
        aliases: Some(aliases),
        ipam_config: ipam,
        ..Default::default()
    }
}

/// Every `file` secret a service of the request uses exists, before anything is created.
fn check_secrets(project: &Project, req: &UpRequest) -> Result<(), StackError> {
    for service in crate::services(project, &req.waves) {
        for r in &service.secrets {
            let Some(file) = project.secrets.get(&r.source).and_then(|d| d.file.as_ref()) else {
                continue;
            };
            if !file.is_file() {
                return Err(StackError::Unsupported {
                    message: format!(
                        "the secret `{}` of service `{}` is read from {}, which does not exist",
                        r.source,
                        service.name,
                        file.display()
                    ),
                    hint: Some(
                        "create the file (it is mounted read-only at the secret's target)".into(),
                    ),
                });
            }
        }
    }
    Ok(())
}

fn condition_name(c: Condition) -> &'static str {
    match c {
        Condition::Started => "started",
        Condition::Healthy => "healthy",
        Condition::CompletedSuccessfully => "completed",
    }
}

fn label<'a>(c: &'a ContainerSummary, key: &str) -> Option<&'a str> {
    c.labels.as_ref()?.get(key).map(String::as_str)
}

fn split_tag(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

/// `{project}-{service}-1`, or the service's `container_name`.
pub fn container_name(project: &str, service: &Service) -> String {
    service
        .container_name
        .clone()
        .unwrap_or_else(|| format!("{project}-{}-1", service.name))
}

fn network_name(project: &Project, name: &str, net: &str) -> String {
    match project.networks.get(net) {
        Some(def) if def.external => def.name.clone().unwrap_or_else(|| net.to_string()),
        Some(def) if def.name.is_some() => def.name.clone().unwrap_or_default(),
        _ => format!("{name}_{net}"),
    }
}

fn volume_name(project: &Project, name: &str, vol: &str) -> String {
    match project.volumes.get(vol) {
        Some(def) if def.external => def.name.clone().unwrap_or_else(|| vol.to_string()),
        Some(def) if def.name.is_some() => def.name.clone().unwrap_or_default(),
        _ => format!("{name}_{vol}"),
    }
}

fn nanos(d: Option<Duration>) -> Option<i64> {
    d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn container_body(
    project: &Project,
    name: &str,
    service: &Service,
    image: &str,
    hash: &str,
) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = service.labels.clone().into_iter().collect();
    labels.insert(LABEL_PROJECT.into(), name.to_string());
    labels.insert(LABEL_SERVICE.into(), service.name.clone());
    labels.insert(LABEL_HASH.into(), hash.to_string());
    labels.insert(LABEL_NUMBER.into(), "1".into());
    labels.insert(LABEL_ONEOFF.into(), "False".into());
    labels.insert(LABEL_MANAGED.into(), "goodgo".into());
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let mut exposed: Vec<String> = Vec::new();
    for p in &service.ports {
        let key = format!("{}/{}", p.target, p.protocol);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        if let Some(published) = p.published {
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.host_ip.clone(),
                    host_port: Some(published.to_string()),
                });
        }
    }
    for e in &service.expose {
        let key = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        if !exposed.contains(&key) {
            exposed.push(key);
        }
    }
    let mut mounts: Vec<Mount> = service
        .volumes
        .iter()
        .map(|m| Mount {
            target: Some(m.target.clone()),
            source: match m.kind {
                MountKind::Volume => m.source.as_ref().map(|s| volume_name(project, name, s)),
                _ => m.source.clone(),
            },
            typ: Some(match m.kind {
                MountKind::Volume => MountType::VOLUME,
                MountKind::Bind => MountType::BIND,
                MountKind::Tmpfs => MountType::TMPFS,
            }),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect();
    // `file` secrets: the file, read-only, at /run/secrets/<name> or the given target.
    for r in &service.secrets {
        if let Some(file) = project.secrets.get(&r.source).and_then(|d| d.file.as_ref()) {
            mounts.push(Mount {
                target: Some(r.mount_path()),
                source: Some(file.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            });
        }
    }
    let restart = service.restart.as_deref().map(|r| RestartPolicy {
        name: Some(match r {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            r if r.starts_with("on-failure") => RestartPolicyNameEnum::ON_FAILURE,
            _ => RestartPolicyNameEnum::NO,
        }),
        // `on-failure:N`: at most N restarts.
        maximum_retry_count: r
            .strip_prefix("on-failure:")
            .and_then(|n| n.parse::<i64>().ok()),
    });
    let (primary, _) = service_networks(service);
    let endpoints = HashMap::from([(
        network_name(project, name, primary),
        endpoint(service, primary),
    )]);
    let health = service.healthcheck.as_ref().map(|h| HealthConfig {
        test: Some(if h.disable {
            vec!["NONE".into()]
        } else {
            h.test.clone()
        }),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        retries: h.retries.map(i64::from),
        start_period: nanos(h.start_period),
        // Needs engine API 1.44; goodgo polls the check itself while a service starts.
        start_interval: None,
    });
    let env: Vec<String> = service
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: service.command.as_ref().map(|c| c.to_argv()),
        entrypoint: service.entrypoint.as_ref().map(|c| c.to_argv()),
        env: Some(env),
        labels: Some(labels),
        exposed_ports: Some(exposed),
        healthcheck: health,
        hostname: service.hostname.clone(),
        user: service.user.clone(),
        working_dir: service.working_dir.clone(),
        stop_signal: service.stop_signal.clone(),
        stop_timeout: service
            .stop_grace_period
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        tty: service.tty.then_some(true),
        open_stdin: service.stdin_open.then_some(true),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            mounts: Some(mounts),
            restart_policy: restart,
            cap_add: (!service.cap_add.is_empty()).then(|| service.cap_add.clone()),
            cap_drop: (!service.cap_drop.is_empty()).then(|| service.cap_drop.clone()),
            init: service.init,
            extra_hosts: (!service.extra_hosts.is_empty()).then(|| {
                service
                    .extra_hosts
                    .iter()
                    .map(|h| format!("{}:{}", h.host, h.ip))
                    .collect()
            }),
            network_mode: Some(network_name(project, name, primary)),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    }
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
