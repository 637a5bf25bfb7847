//! Swarm services, secrets, configs and overlay networks: what `goodgo deploy --target
//! swarm` creates on a swarm manager.
//!
//! Why apart from `single`: a service is not a container. The engine's orchestrator owns its
//! tasks (replicas), rolls an update out by its `update_config` and rolls it back by itself;
//! goodgo only writes the desired spec and reads the service's update status and its tasks.
//! Secrets and configs are immutable objects named by the caller; each carries the project
//! label, as the network, the services and their task containers do, so `down` of the
//! project removes exactly them.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use bollard::models::{ConfigSpec, LocalNodeState, NetworkCreateRequest, SecretSpec};
use bollard::query_parameters::{
    ListConfigsOptions, ListNetworksOptions, ListSecretsOptions, ListServicesOptions,
    ListTasksOptions, UpdateServiceOptions,
};

use super::swarm_spec::{SwarmService, object_labels, to_spec};
use super::{DockerRuntime, engine, is_not_found};
use crate::{LABEL_PROJECT, StackError};

/// A service as the manager reports it.
#[derive(Debug, Clone, Default)]
pub struct ServiceState {
    pub id: String,
    pub name: String,
    pub version: u64,
    pub image: String,
    pub labels: HashMap<String, String>,
    pub env: Vec<String>,
    pub replicas: Option<u64>,
    /// The update's state (`updating`, `completed`, `rollback_completed`, …), when one ran.
    pub update_state: Option<String>,
    pub update_message: Option<String>,
    /// When that update started (the engine's timestamp, compared for equality only).
    pub update_started: Option<String>,
}

/// One task of a service.
#[derive(Debug, Clone, Default)]
pub struct TaskState {
    pub id: String,
    pub slot: Option<i64>,
    /// new, pending, preparing, starting, running, failed, shutdown, …
    pub state: String,
    pub desired: String,
    pub error: Option<String>,
    pub message: String,
    pub image: String,
    pub env: Vec<String>,
    /// Nanoseconds since the epoch (from the engine's RFC 3339 timestamp), for ordering.
    pub created: String,
}

impl TaskState {
    /// The value of `key` in the task's environment.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|e| e.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }
}

/// Whether this engine is a manager of an active swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmRole {
    Manager,
    /// In a swarm, but a worker: services cannot be managed from here.
    Worker,
    /// Not in a swarm (`inactive`, `pending`, `error`, …).
    None(String),
}

fn by_project(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_PROJECT}={project}")],
    )])
}

/// `2026-12-02T07:40:01.12345Z` as a string that sorts by time (the fraction padded to
/// nine digits).
fn sortable_time(t: &str) -> String {
    let t = t.trim_end_matches('Z');
    match t.split_once('.') {
        Some((secs, frac)) => format!("{secs}.{frac:0<9}"),
        None => format!("{t}.000000000"),
    }
}

impl DockerRuntime {
    /// Whether this engine manages a swarm.
    pub async fn swarm_role(&self) -> Result<SwarmRole, StackError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(engine("asking the engine about its swarm"))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm.local_node_state.unwrap_or(LocalNodeState::EMPTY);
        Ok(match state {
            LocalNodeState::ACTIVE if swarm.control_available == Some(true) => SwarmRole::Manager,
            LocalNodeState::ACTIVE => SwarmRole::Worker,
            other => SwarmRole::None(other.to_string()),
        })
    }

    /// Creates the overlay network `name` of `project` unless it exists.
    pub async fn ensure_overlay(&self, name: &str, project: &str) -> Result<(), StackError> {
        let existing = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(HashMap::from([(
                    "name".to_string(),
                    vec![name.to_string()],
                )])),
            }))
            .await
            .map_err(engine(format!("listing networks named {name}")))?;
        if existing.iter().any(|n| n.name.as_deref() == Some(name)) {
            return Ok(());
        }
        self.docker
            .create_network(NetworkCreateRequest {
                name: name.to_string(),
                driver: Some("overlay".into()),
                attachable: Some(false),
                labels: Some(object_labels(project, &HashMap::new())),
                ..Default::default()
            })
            .await
            .map_err(engine(format!("creating the overlay network {name}")))?;
        Ok(())
    }

    /// The names of `project`'s secrets.
    pub async fn secret_names(&self, project: &str) -> Result<Vec<(String, String)>, StackError> {
        let list = self
            .docker
            .list_secrets(Some(ListSecretsOptions {
                filters: Some(by_project(project)),
            }))
            .await
            .map_err(engine(format!("listing the secrets of project {project}")))?;
        Ok(list
            .into_iter()
            .filter_map(|s| Some((s.id?, s.spec?.name?)))
            .collect())
    }

    /// The names of `project`'s configs.
    pub async fn config_names(&self, project: &str) -> Result<Vec<(String, String)>, StackError> {
        let list = self
            .docker
            .list_configs(Some(ListConfigsOptions {
                filters: Some(by_project(project)),
            }))
            .await
            .map_err(engine(format!("listing the configs of project {project}")))?;
        Ok(list
            .into_iter()
            .filter_map(|s| Some((s.id?, s.spec?.name?)))
            .collect())
    }

    /// Creates secret `name` holding `data` unless one of that name exists (secrets are
    /// immutable: a new value takes a new name); its id.
    pub async fn ensure_secret(
        &self,
        name: &str,
        data: &[u8],
        project: &str,
        labels: &HashMap<String, String>,
    ) -> Result<String, StackError> {
        if let Some((id, _)) = self
            .secret_names(project)
            .await?
            .into_iter()
            .find(|(_, n)| n == name)
        {
            return Ok(id);
        }
        let created = self
            .docker
            .create_secret(SecretSpec {
                name: Some(name.to_string()),
                labels: Some(object_labels(project, labels)),
                data: Some(base64::engine::general_purpose::STANDARD.encode(data)),
                ..Default::default()
            })
            .await
            .map_err(engine(format!("creating secret {name}")))?;
        Ok(created.id)
    }

    /// Creates config `name` holding `data` unless one of that name exists; its id.
    pub async fn ensure_config(
        &self,
        name: &str,
        data: &[u8],
        project: &str,
    ) -> Result<String, StackError> {
        if let Some((id, _)) = self
            .config_names(project)
            .await?
            .into_iter()
            .find(|(_, n)| n == name)
        {
            return Ok(id);
        }
        let created = self
            .docker
            .create_config(ConfigSpec {
                name: Some(name.to_string()),
                labels: Some(object_labels(project, &HashMap::new())),
                data: Some(base64::engine::general_purpose::STANDARD.encode(data)),
                ..Default::default()
            })
            .await
            .map_err(engine(format!("creating config {name}")))?;
        Ok(created.id)
    }

    /// Removes a secret or config by id; one a service still uses is left (`false`).
    pub async fn remove_object(&self, id: &str, secret: bool) -> Result<bool, StackError> {
        let result = if secret {
            self.docker.delete_secret(id).await
        } else {
            self.docker.delete_config(id).await
        };
        match result {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 400, ..
            }) => Ok(false),
            Err(e) => Err(engine(format!("removing {id}"))(e)),
        }
    }

    /// The service `name`, when it exists.
    pub async fn service(&self, name: &str) -> Result<Option<ServiceState>, StackError> {
        let service = match self.docker.inspect_service(name, None).await {
            Ok(s) => s,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(engine(format!("inspecting service {name}"))(e)),
        };
        let spec = service.spec.unwrap_or_default();
        let container = spec
            .task_template
            .and_then(|t| t.container_spec)
            .unwrap_or_default();
        let update = service.update_status.unwrap_or_default();
        Ok(Some(ServiceState {
            id: service.id.unwrap_or_default(),
            name: spec.name.unwrap_or_default(),
            version: service.version.and_then(|v| v.index).unwrap_or(0),
            image: container.image.unwrap_or_default(),
            labels: spec.labels.unwrap_or_default(),
            env: container.env.unwrap_or_default(),
            replicas: spec
                .mode
                .and_then(|m| m.replicated)
                .and_then(|r| r.replicas)
                .and_then(|n| u64::try_from(n).ok()),
            update_state: update
                .state
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty()),
            update_message: update.message,
            update_started: update.started_at,
        }))
    }

    /// The services of `project`.
    pub async fn services(&self, project: &str) -> Result<Vec<String>, StackError> {
        let list = self
            .docker
            .list_services(Some(ListServicesOptions {
                filters: Some(by_project(project)),
                ..Default::default()
            }))
            .await
            .map_err(engine(format!("listing the services of project {project}")))?;
        Ok(list.into_iter().filter_map(|s| s.spec?.name).collect())
    }

    /// Creates `service`; its id.
    pub async fn create_service(&self, service: &SwarmService) -> Result<String, StackError> {
        let created = self
            .docker
            .create_service(to_spec(service), None)
            .await
            .map_err(engine(format!("creating service {}", service.name)))?;
        Ok(created.id.unwrap_or_default())
    }

    /// Replaces the spec of `current` with `service`: the engine rolls the change out by
    /// the spec's update config.
    pub async fn update_service(
        &self,
        current: &ServiceState,
        service: &SwarmService,
    ) -> Result<(), StackError> {
        self.docker
            .update_service(
                &current.id,
                to_spec(service),
                UpdateServiceOptions {
                    version: i32::try_from(current.version).unwrap_or(i32::MAX),
                    ..Default::default()
                },
                None,
            )
            .await
            .map_err(engine(format!("updating service {}", service.name)))?;
        Ok(())
    }

    /// Asks the engine to roll `current` back to its previous spec.
    pub async fn rollback_service(&self, current: &ServiceState) -> Result<(), StackError> {
        let service = self
            .docker
            .inspect_service(&current.id, None)
            .await
            .map_err(engine(format!("inspecting service {}", current.name)))?;
        self.docker
            .update_service(
                &current.id,
                service.spec.unwrap_or_default(),
                UpdateServiceOptions {
                    version: i32::try_from(service.version.and_then(|v| v.index).unwrap_or(0))
                        .unwrap_or(i32::MAX),
                    rollback: Some("previous".into()),
                    ..Default::default()
                },
                None,
            )
            .await
            .map_err(engine(format!("rolling service {} back", current.name)))?;
        Ok(())
    }

    /// The tasks of service `name` (every state), newest first.
    pub async fn tasks(&self, name: &str) -> Result<Vec<TaskState>, StackError> {
        let list = self
            .docker
            .list_tasks(Some(ListTasksOptions {
                filters: Some(HashMap::from([(
                    "service".to_string(),
                    vec![name.to_string()],
                )])),
            }))
            .await
            .map_err(engine(format!("listing the tasks of service {name}")))?;
        let mut tasks: Vec<TaskState> = list
            .into_iter()
            .map(|t| {
                let status = t.status.unwrap_or_default();
                let container = t.spec.and_then(|s| s.container_spec).unwrap_or_default();
                TaskState {
                    id: t.id.unwrap_or_default(),
                    slot: t.slot,
                    state: status.state.map(|s| s.to_string()).unwrap_or_default(),
                    desired: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
                    error: status.err.filter(|e| !e.is_empty()),
                    message: status.message.unwrap_or_default(),
                    image: container.image.unwrap_or_default(),
                    env: container.env.unwrap_or_default(),
                    created: sortable_time(&t.created_at.unwrap_or_default()),
                }
            })
            .collect();
        tasks.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(tasks)
    }

    /// Removes service `name` (its tasks stop within their grace period); a missing one is
    /// not an error.
    pub async fn remove_service(&self, name: &str) -> Result<(), StackError> {
        match self.docker.delete_service(name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(engine(format!("removing service {name}"))(e)),
        }
    }

    /// Removes everything of `project` on the swarm: services, then (once their task
    /// containers are gone) secrets, configs and networks. The names of what went.
    pub async fn swarm_down(&self, project: &str) -> Result<Vec<String>, StackError> {
        let mut removed = Vec::new();
        for name in self.services(project).await? {
            self.remove_service(&name).await?;
            removed.push(name);
        }
        // Tasks shut down after their service is gone; their containers hold the network
        // and their secrets until then.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !self.containers(project, None).await?.is_empty()
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        for (id, name) in self.secret_names(project).await? {
            if self.remove_object(&id, true).await? {
                removed.push(format!("secret {name}"));
            }
        }
        for (id, name) in self.config_names(project).await? {
            if self.remove_object(&id, false).await? {
                removed.push(format!("config {name}"));
            }
        }
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(by_project(project)),
            }))
            .await
            .map_err(engine(format!("listing the networks of project {project}")))?;
        for n in networks {
            let Some(id) = n.id else { continue };
            // An overlay network lingers a moment after its last task left.
            let mut tries = 0;
            loop {
                match self.docker.remove_network(&id).await {
                    Ok(()) => break,
                    Err(e) if is_not_found(&e) => break,
                    Err(e) if tries < 40 => {
                        let _ = e;
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => return Err(engine(format!("removing network {id}"))(e)),
                }
            }
            removed.push(format!("network {}", n.name.unwrap_or(id)));
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_sort_whatever_their_fraction() {
        let a = sortable_time("2026-12-02T07:40:01.5Z");
        let b = sortable_time("2026-12-02T07:40:01.123456789Z");
        assert!(a > b, "{a} {b}");
        assert!(sortable_time("2026-12-02T07:40:02Z") > a);
    }
}
