//! Single containers outside a Compose file's services: what `goodgo deploy` runs (the API's
//! releases, the proxy) and the image it builds from a ready-made context.
//!
//! Why apart from `containers`: a release container is not derived from a service
//! definition (no config hash, no replace-on-change); it is created once with exactly the
//! labels, environment and mounts the caller gives, started, stopped and removed by id, and
//! found again by its labels. Everything still carries the project label, so `down` of the
//! deploy project removes exactly it.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, Mount, MountType, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, ListContainersOptions, RemoveImageOptions,
    StopContainerOptions,
};
use futures_util::StreamExt;

use super::{DockerRuntime, engine, is_not_found};
use crate::{EngineError, LABEL_MANAGED, LABEL_PROJECT, StackError};

/// A container to create: image, name, labels, environment, read-only file mounts.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Labels beside the project label (added from `project`).
    pub labels: HashMap<String, String>,
    pub project: String,
    pub env: Vec<String>,
    /// `(host path, container path)`, mounted read-only.
    pub files: Vec<(String, String)>,
    /// `host`, a network's name, …; the engine's default when unset.
    pub network_mode: Option<String>,
    /// Overrides the image's CMD.
    pub cmd: Option<Vec<String>>,
    /// Seconds `docker stop` waits before SIGKILL.
    pub stop_timeout: Option<i64>,
    /// `unless-stopped` when true, so the engine restarts it after a reboot.
    pub restart: bool,
    /// An HTTP-free healthcheck command (`CMD` form), polled every `interval` seconds.
    pub healthcheck: Option<(Vec<String>, u64)>,
}

/// One container found by its labels.
#[derive(Debug, Clone)]
pub struct Found {
    pub id: String,
    pub name: String,
    pub image: String,
    /// running, exited, created, …
    pub state: String,
    pub labels: HashMap<String, String>,
    /// Seconds since the epoch of its creation.
    pub created: i64,
}

impl Found {
    pub fn running(&self) -> bool {
        self.state == "running"
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

impl DockerRuntime {
    /// Builds the image of a packed context (`tar`, holding its Dockerfile) and tags it
    /// `tag` with `labels`; the build's lines go to `on_line`. Returns the image id.
    pub async fn build_context(
        &self,
        tar: Vec<u8>,
        tag: &str,
        labels: HashMap<String, String>,
        on_line: &(dyn Fn(&str) + Sync),
    ) -> Result<String, StackError> {
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(tag.to_string()),
            labels: Some(labels),
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
        let failed = |output: &[String], source: EngineError| StackError::Build {
            service: tag.to_string(),
            logs: output.iter().rev().take(20).rev().cloned().collect(),
            source,
        };
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| failed(&output, e.into()))?;
            if let Some(text) = info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    on_line(line);
                    output.push(line.to_string());
                }
            }
            if let Some(err) = info.error_detail {
                return Err(failed(
                    &output,
                    EngineError::Reported(err.message.unwrap_or_default()),
                ));
            }
        }
        let image = self
            .docker
            .inspect_image(tag)
            .await
            .map_err(engine(format!("inspecting the built image {tag}")))?;
        Ok(image.id.unwrap_or_default())
    }

    /// The labels of a local image, or `None` when the engine has no such image.
    pub async fn image_labels(
        &self,
        image: &str,
    ) -> Result<Option<HashMap<String, String>>, StackError> {
        match self.docker.inspect_image(image).await {
            Ok(info) => Ok(Some(info.config.and_then(|c| c.labels).unwrap_or_default())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(engine(format!("inspecting image {image}"))(e)),
        }
    }

    /// Removes a local image by tag or id; a missing one is not an error, one a container
    /// still uses is left (and reported).
    pub async fn remove_image(&self, image: &str) -> Result<(), StackError> {
        match self
            .docker
            .remove_image(
                image,
                Some(RemoveImageOptions {
                    force: false,
                    noprune: false,
                    ..Default::default()
                }),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(engine(format!("removing image {image}"))(e)),
        }
    }

    /// Creates and starts the container of `spec`; its id.
    pub async fn run_container(&self, spec: &ContainerSpec) -> Result<String, StackError> {
        let mut labels = spec.labels.clone();
        labels.insert(LABEL_PROJECT.into(), spec.project.clone());
        labels.insert(LABEL_MANAGED.into(), "goodgo".into());
        let mounts = spec
            .files
            .iter()
            .map(|(host, target)| Mount {
                source: Some(host.clone()),
                target: Some(target.clone()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: spec.cmd.clone(),
            env: Some(spec.env.clone()),
            labels: Some(labels),
            stop_timeout: spec.stop_timeout,
            healthcheck: spec.healthcheck.as_ref().map(|(test, every)| {
                let every = i64::try_from(*every).unwrap_or(5) * 1_000_000_000;
                HealthConfig {
                    test: Some(test.clone()),
                    interval: Some(every),
                    timeout: Some(every),
                    retries: Some(3),
                    ..Default::default()
                }
            }),
            host_config: Some(HostConfig {
                mounts: Some(mounts),
                network_mode: spec.network_mode.clone(),
                restart_policy: spec.restart.then_some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(spec.name.clone()),
                    platform: String::new(),
                }),
                body,
            )
            .await
            .map_err(|e| match &e {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                } => StackError::NameTaken {
                    name: spec.name.clone(),
                    source: e.into(),
                },
                _ => engine(format!("creating container {}", spec.name))(e),
            })?;
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            let _ = self.remove_container(&created.id).await;
            return Err(engine(format!("starting container {}", spec.name))(e));
        }
        Ok(created.id)
    }

    /// Starts a stopped container again.
    pub async fn start(&self, id: &str) -> Result<(), StackError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(engine(format!("starting container {id}")))
    }

    /// Stops a container, waiting up to `timeout_s` after its stop signal.
    pub async fn stop(&self, id: &str, timeout_s: i32) -> Result<(), StackError> {
        match self
            .docker
            .stop_container(
                id,
                Some(StopContainerOptions {
                    t: Some(timeout_s),
                    signal: None,
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(engine(format!("stopping container {id}"))(e)),
        }
    }

    /// Stops (within the container's own timeout) and removes a container.
    pub async fn remove(&self, id: &str) -> Result<(), StackError> {
        self.remove_container(id).await
    }

    /// The last `n` lines a container wrote.
    pub async fn last_lines(&self, id: &str, n: usize) -> Vec<String> {
        self.tail(id, n).await
    }

    /// The containers of `project` (running or not) carrying every label of `labels`
    /// (`key=value`, or `key` for any value), newest first.
    pub async fn find(&self, project: &str, labels: &[String]) -> Result<Vec<Found>, StackError> {
        let mut wanted = vec![format!("{LABEL_PROJECT}={project}")];
        wanted.extend(labels.iter().cloned());
        let filters = HashMap::from([("label".to_string(), wanted)]);
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(engine(format!(
                "listing the containers of project {project}"
            )))?;
        let mut found: Vec<Found> = list
            .into_iter()
            .map(|c| Found {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                image: c.image.unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
                created: c.created.unwrap_or_default(),
            })
            .collect();
        found.sort_by(|a, b| b.created.cmp(&a.created).then(b.name.cmp(&a.name)));
        Ok(found)
    }

    /// The environment a container was created with, as the engine reports it (what
    /// `docker inspect` shows).
    pub async fn inspect_env(&self, id: &str) -> Result<Vec<String>, StackError> {
        let info = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(engine(format!("inspecting container {id}")))?;
        Ok(info.config.and_then(|c| c.env).unwrap_or_default())
    }
}
