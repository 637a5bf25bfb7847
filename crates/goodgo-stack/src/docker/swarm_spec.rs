//! A swarm service as goodgo describes it ([`SwarmService`]: image, replicas, secrets and
//! configs as files, health check, rollout, host ports) and its translation into the
//! engine's `ServiceSpec`.
//!
//! Why apart from [`super::swarm`]: the spec is pure data with rules of its own (start-first
//! or stop-first, rollback or pause, dnsrr, host-mode ports), checked by unit tests without
//! an engine; `swarm` does the requests.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum,
    HealthConfig, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile,
    TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};

use crate::{LABEL_MANAGED, LABEL_PROJECT};

/// A file a task gets from a secret or a config object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFile {
    /// The object's id (the engine refuses a reference by name alone).
    pub id: String,
    /// The object's name.
    pub object: String,
    /// The file's name under `/run/secrets` (secrets) or its absolute path (configs).
    pub target: String,
    pub uid: String,
    pub gid: String,
    pub mode: u32,
}

/// A task's health check (`CMD` form) and its timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskHealth {
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: i64,
    pub start_period: Duration,
}

/// How an update rolls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// `start-first` (the new task runs, healthy, before the old one stops) or `stop-first`.
    pub start_first: bool,
    /// `rollback` on a failed task (else `pause`).
    pub rollback_on_failure: bool,
    /// How long each updated task is watched for failure.
    pub monitor: Duration,
}

/// A service to create or update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmService {
    pub name: String,
    pub image: String,
    pub project: String,
    /// Labels of the service and of its task containers (beside the project label).
    pub labels: HashMap<String, String>,
    pub env: Vec<String>,
    /// Replicas; `None` runs one task on every node (global mode).
    pub replicas: Option<u64>,
    pub network: String,
    /// `dnsrr`: no virtual IP, `tasks.NAME` (and `NAME`) resolve to the tasks' addresses.
    pub dnsrr: bool,
    pub secrets: Vec<ObjectFile>,
    pub configs: Vec<ObjectFile>,
    pub health: Option<TaskHealth>,
    pub rollout: Rollout,
    pub stop_grace: Duration,
    /// `(published, target)` TCP ports, published in host mode on the task's node.
    pub host_ports: Vec<(u16, u16)>,
}

fn secs_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

pub(super) fn object_labels(
    project: &str,
    extra: &HashMap<String, String>,
) -> HashMap<String, String> {
    let mut labels = extra.clone();
    labels.insert(LABEL_PROJECT.into(), project.into());
    labels.insert(LABEL_MANAGED.into(), "goodgo".into());
    labels
}

/// The engine's spec of `service`.
pub(super) fn to_spec(s: &SwarmService) -> ServiceSpec {
    let labels = object_labels(&s.project, &s.labels);
    let container = TaskSpecContainerSpec {
        image: Some(s.image.clone()),
        labels: Some(labels.clone()),
        env: Some(s.env.clone()),
        stop_signal: Some("SIGTERM".into()),
        stop_grace_period: Some(secs_ns(s.stop_grace)),
        health_check: s.health.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: Some(secs_ns(h.interval)),
            timeout: Some(secs_ns(h.timeout)),
            retries: Some(h.retries),
            start_period: Some(secs_ns(h.start_period)),
            ..Default::default()
        }),
        secrets: Some(
            s.secrets
                .iter()
                .map(|f| TaskSpecContainerSpecSecrets {
                    file: Some(TaskSpecContainerSpecFile {
                        name: Some(f.target.clone()),
                        uid: Some(f.uid.clone()),
                        gid: Some(f.gid.clone()),
                        mode: Some(f.mode),
                    }),
                    secret_id: Some(f.id.clone()),
                    secret_name: Some(f.object.clone()),
                })
                .collect(),
        ),
        configs: Some(
            s.configs
                .iter()
                .map(|f| TaskSpecContainerSpecConfigs {
                    file: Some(TaskSpecContainerSpecFile1 {
                        name: Some(f.target.clone()),
                        uid: Some(f.uid.clone()),
                        gid: Some(f.gid.clone()),
                        mode: Some(f.mode),
                    }),
                    config_id: Some(f.id.clone()),
                    config_name: Some(f.object.clone()),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    };
    let order = |start_first| {
        if start_first {
            ServiceSpecUpdateConfigOrderEnum::START_FIRST
        } else {
            ServiceSpecUpdateConfigOrderEnum::STOP_FIRST
        }
    };
    ServiceSpec {
        name: Some(s.name.clone()),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(secs_ns(Duration::from_secs(1))),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(s.network.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(match s.replicas {
            Some(n) => ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(i64::try_from(n).unwrap_or(1)),
                }),
                ..Default::default()
            },
            None => ServiceSpecMode {
                global: Some(HashMap::new()),
                ..Default::default()
            },
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(if s.rollout.rollback_on_failure {
                ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK
            } else {
                ServiceSpecUpdateConfigFailureActionEnum::PAUSE
            }),
            monitor: Some(secs_ns(s.rollout.monitor)),
            max_failure_ratio: Some(0.0),
            order: Some(order(s.rollout.start_first)),
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(secs_ns(s.rollout.monitor)),
            max_failure_ratio: Some(0.0),
            order: Some(if s.rollout.start_first {
                ServiceSpecRollbackConfigOrderEnum::START_FIRST
            } else {
                ServiceSpecRollbackConfigOrderEnum::STOP_FIRST
            }),
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(if s.dnsrr {
                EndpointSpecModeEnum::DNSRR
            } else {
                EndpointSpecModeEnum::VIP
            }),
            ports: Some(
                s.host_ports
                    .iter()
                    .map(|(published, target)| EndpointPortConfig {
                        target_port: Some(i64::from(*target)),
                        published_port: Some(i64::from(*published)),
                        publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                        ..Default::default()
                    })
                    .collect(),
            ),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> SwarmService {
        SwarmService {
            name: "shop-api".into(),
            image: "shop-api:abc".into(),
            project: "shop-swarm".into(),
            labels: HashMap::from([("org.goodgo.deploy.release".into(), "r2".into())]),
            env: vec!["GOODGO_JWT_SECRET_FILE=/run/secrets/GOODGO_JWT_SECRET".into()],
            replicas: Some(2),
            network: "shop-swarm".into(),
            dnsrr: true,
            secrets: vec![ObjectFile {
                id: "s1".into(),
                object: "shop-swarm_GOODGO_JWT_SECRET_r2".into(),
                target: "GOODGO_JWT_SECRET".into(),
                uid: "10001".into(),
                gid: "10001".into(),
                mode: 0o400,
            }],
            configs: Vec::new(),
            health: None,
            rollout: Rollout {
                start_first: true,
                rollback_on_failure: true,
                monitor: Duration::from_secs(5),
            },
            stop_grace: Duration::from_secs(30),
            host_ports: vec![(8080, 8080)],
        }
    }

    #[test]
    fn the_spec_says_start_first_rollback_dnsrr_and_host_ports() {
        let spec = serde_json::to_value(to_spec(&service())).unwrap_or_default();
        let update = &spec["UpdateConfig"];
        assert_eq!(update["Order"], "start-first");
        assert_eq!(update["FailureAction"], "rollback");
        assert_eq!(update["Monitor"], 5_000_000_000_i64);
        assert_eq!(spec["EndpointSpec"]["Mode"], "dnsrr");
        assert_eq!(spec["EndpointSpec"]["Ports"][0]["PublishMode"], "host");
        assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 2);
        let container = &spec["TaskTemplate"]["ContainerSpec"];
        assert_eq!(container["Secrets"][0]["File"]["Mode"], 0o400);
        assert_eq!(
            container["Secrets"][0]["SecretName"],
            "shop-swarm_GOODGO_JWT_SECRET_r2"
        );
        assert_eq!(container["Labels"][LABEL_PROJECT], "shop-swarm");
        assert_eq!(spec["Labels"]["org.goodgo.deploy.release"], "r2");
    }
}
