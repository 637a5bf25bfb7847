//! Containers: created from a service's definition, left alone while that definition is
//! unchanged (and while the container it shares a network stack with is the same one),
//! replaced when it changes.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, Mount, MountType, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, StopContainerOptions,
};
use goodgo_compose::{MountKind, Project, Service};

use super::resources::{endpoint, network_name, service_networks, volume_name};
use super::{DockerRuntime, engine, is_not_found, label};
use super::{files, host};
use crate::{
    Action, LABEL_HASH, LABEL_MANAGED, LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE,
    StackError, UpRequest,
};

impl DockerRuntime {
    pub(super) async fn ensure_service(
        &self,
        project: &Project,
        req: &UpRequest,
        service: &Service,
        image: &str,
    ) -> Result<Action, StackError> {
        let hash = files::hash(service)?;
        let existing = match self.listed(&req.project, &service.name) {
            Some(listed) => listed,
            None => self.containers(&req.project, Some(&service.name)).await?,
        };
        let (primary, extra) = service_networks(service);
        let project_networks = std::iter::once(primary)
            .chain(extra.iter().copied())
            .map(|n| network_name(project, &req.project, n))
            .collect();
        let wanted: BTreeSet<String> = host::joined_networks(service, project_networks)
            .into_iter()
            .collect();
        let wanted_mode = self
            .engine_network_mode(project, &req.project, service)
            .await;
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
            let mode = c
                .host_config
                .as_ref()
                .and_then(|h| h.network_mode.as_deref());
            if label(c, LABEL_HASH) == Some(hash.as_str())
                && joined == wanted
                && mode == Some(wanted_mode.as_str())
            {
                if running {
                    self.mark_unchanged(&req.project, &service.name);
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
        // are joined before it starts. A container with a `network_mode` joins none.
        let extra = if service.network_mode.is_some() {
            Vec::new()
        } else {
            extra
        };
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
        self.copy_files(&created.id, service).await?;
        self.docker
            .start_container(&created.id, None)
            .await
            .map_err(engine(format!(
                "service `{}` could not start",
                service.name
            )))?;
        Ok(action)
    }

    /// The `NetworkMode` the engine reports for the service's container once created:
    /// another container's by its id (the engine resolves names), so a dependent whose
    /// namespace owner was replaced is replaced too.
    async fn engine_network_mode(
        &self,
        project: &Project,
        name: &str,
        service: &Service,
    ) -> String {
        let (primary, _) = service_networks(service);
        let Some(mode) = host::network_mode(project, name, service) else {
            return network_name(project, name, primary);
        };
        let Some(target) = mode.strip_prefix("container:") else {
            return mode;
        };
        match self.docker.inspect_container(target, None).await {
            Ok(info) => format!("container:{}", info.id.unwrap_or_default()),
            Err(_) => mode,
        }
    }

    pub(super) async fn remove_container(&self, id: &str) -> Result<(), StackError> {
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
}

/// `{project}-{service}-1`, or the service's `container_name`.
pub fn container_name(project: &str, service: &Service) -> String {
    service
        .container_name
        .clone()
        .unwrap_or_else(|| format!("{project}-{}-1", service.name))
}

pub(super) fn nanos(d: Option<Duration>) -> Option<i64> {
    d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

pub(super) fn container_body(
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
    // Bind mounts relabeled for SELinux go as `binds` (`src:dst:ro,z`): the engine's
    // mount API has no relabel option.
    let (relabeled, mounted): (Vec<_>, Vec<_>) = service
        .volumes
        .iter()
        .partition(|m| m.kind == MountKind::Bind && m.options.selinux.is_some());
    let binds: Vec<String> = relabeled.iter().map(|m| host::bind_spec(m)).collect();
    let mut mounts: Vec<Mount> = mounted
        .iter()
        .map(|m| {
            let (tmpfs_options, bind_options, volume_options) =
                host::mount_options(m.kind, &m.options);
            Mount {
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
                tmpfs_options,
                bind_options,
                volume_options,
                ..Default::default()
            }
        })
        .collect();
    // Secrets and configs from host files: read-only bind mounts (the others are copied
    // into the created container).
    mounts.extend(files::mounts(service));
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
    let mode = host::network_mode(project, name, service);
    // With a `network_mode`, the container joins no network of the project.
    let endpoints = match mode {
        Some(_) => HashMap::new(),
        None => HashMap::from([(
            network_name(project, name, primary),
            endpoint(service, primary),
        )]),
    };
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
    let mut host_config = HostConfig {
        port_bindings: Some(bindings),
        mounts: Some(mounts),
        binds: (!binds.is_empty()).then_some(binds),
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
        network_mode: Some(mode.unwrap_or_else(|| network_name(project, name, primary))),
        ..Default::default()
    };
    host::apply(project, name, &service.host, &mut host_config);
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
        domainname: service.host.domainname.clone(),
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    }
}
