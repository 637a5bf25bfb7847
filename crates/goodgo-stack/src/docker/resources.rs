//! Networks, volumes and published ports: what must exist, or be free, before a container
//! is created.

use std::collections::HashMap;

use bollard::models::{
    ContainerSummary, EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkCreateRequest,
    VolumeCreateRequest,
};
use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};
use goodgo_compose::{MountKind, Project, Service};

use super::{DockerRuntime, engine, label};
use crate::{
    LABEL_MANAGED, LABEL_NETWORK, LABEL_PROJECT, LABEL_SERVICE, LABEL_VOLUME, PortClash,
    StackError, UpRequest, probe,
};

impl DockerRuntime {
    /// Fails before anything starts when a port a new container publishes is taken by
    /// something that is not this project's own container for that service.
    pub(super) async fn check_ports(
        &self,
        project: &Project,
        req: &UpRequest,
        ours: &[ContainerSummary],
    ) -> Result<(), StackError> {
        let mut clashes = Vec::new();
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
                clashes.push(PortClash::new(&service.name, &ip, published, who));
            }
        }
        if clashes.is_empty() {
            Ok(())
        } else {
            Err(StackError::PortTaken { clashes })
        }
    }

    pub(super) async fn container_on_port(&self, port: u16) -> Option<String> {
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

    pub(super) async fn ensure_networks(
        &self,
        project: &Project,
        req: &UpRequest,
    ) -> Result<(), StackError> {
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

    pub(super) async fn ensure_volumes(
        &self,
        project: &Project,
        req: &UpRequest,
    ) -> Result<(), StackError> {
        let mut seen = std::collections::HashSet::new();
        for service in crate::services(project, &req.waves) {
            for mount in &service.volumes {
                let (MountKind::Volume, Some(source)) = (&mount.kind, &mount.source) else {
                    continue;
                };
                if project.volumes.get(source).is_some_and(|v| v.external)
                    || !seen.insert(source.clone())
                {
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
}

/// A service's first network (the one its container is created on: `default` when it
/// uses it) and the others it joins before starting.
pub(super) fn service_networks(service: &Service) -> (&str, Vec<&str>) {
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
pub(super) fn endpoint(service: &Service, net: &str) -> EndpointSettings {
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

pub(super) fn network_name(project: &Project, name: &str, net: &str) -> String {
    match project.networks.get(net) {
        Some(def) if def.external => def.name.clone().unwrap_or_else(|| net.to_string()),
        Some(def) if def.name.is_some() => def.name.clone().unwrap_or_default(),
        _ => format!("{name}_{net}"),
    }
}

pub(super) fn volume_name(project: &Project, name: &str, vol: &str) -> String {
    match project.volumes.get(vol) {
        Some(def) if def.external => def.name.clone().unwrap_or_else(|| vol.to_string()),
        Some(def) if def.name.is_some() => def.name.clone().unwrap_or_default(),
        _ => format!("{name}_{vol}"),
    }
}
