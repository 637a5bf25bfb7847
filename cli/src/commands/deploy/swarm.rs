//! Target `swarm`: the API as a replicated swarm service, the proxy as a service routing to
//! its tasks, on the engine users already run (this engine a swarm manager).
//!
//! Swarm does the rollout itself: the API service's `update_config` says `start-first`
//! (a new task runs, healthy on `/readyz`, before an old one stops), `failure_action:
//! rollback` and a monitor window (`deploy.watch`); goodgo writes the new spec and follows
//! the update's state and the tasks of each replica ([`super::swarm_follow`]) until swarm
//! reports it completed, or rolled back (goodgo then exits 1 with the tasks' errors). The
//! services sit on an overlay network with `endpoint_mode: dnsrr`: no virtual IP and no
//! ingress routing mesh (both need IPVS, which not every kernel has). The proxy publishes
//! `deploy.port` in host mode on its node and resolves the API's tasks through Docker's
//! DNS (`tasks.{name}-api`), where a task appears only once healthy and leaves before it
//! stops. Secrets are swarm secrets named per release, mounted as files; the service's
//! environment only says where they are (`NAME_FILE=/run/secrets/NAME`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use goodgo_stack::LABEL_SERVICE;
use goodgo_stack::docker::{
    DockerRuntime, ObjectFile, Rollout, ServiceState, SwarmRole, SwarmService, TaskHealth,
};
use sha2::{Digest as _, Sha256};

use super::local::{LABEL_COMMIT, LABEL_IMAGE, LABEL_PORT, LABEL_RELEASE, PROXY_IMAGE, Target};
use super::proxy;
use super::swarm_follow::{self, Outcome};
use super::{Context, Stop};
use crate::args::DeployRunArgs;
use crate::error::UserError;
use crate::printer::Printer;

/// The release whose secrets a service uses (the history id of the deploy that made them).
pub const LABEL_OBJECTS: &str = "org.goodgo.deploy.objects";
/// The proxy configuration's swarm config.
const LABEL_CONFIG: &str = "org.goodgo.deploy.config";

/// The API's port inside its tasks.
const API_PORT: u16 = 8080;
/// The API image's user (`compose/images/api`), owner of the secret files.
const API_UID: &str = "10001";

/// The API's service name.
pub fn api_service(target: &Target) -> String {
    format!("{}-api", target.name)
}

/// The proxy's service name.
pub fn proxy_service(target: &Target) -> String {
    format!("{}-proxy", target.name)
}

/// What a swarm release runs.
pub struct Release<'a> {
    /// The history id of this deploy or rollback: its secrets are named after it.
    pub id: &'a str,
    /// The release the API says it is (`GoodGo-Release`): `id`, or for a rollback the
    /// release it serves again.
    pub serves: &'a str,
    pub image: &'a str,
    pub commit: Option<&'a str>,
    pub env: &'a [(String, String)],
}

/// What a deploy changed on the swarm so far, for undoing it after Ctrl-C.
#[derive(Debug, Default, Clone)]
enum Change {
    #[default]
    Nothing,
    /// The API service was created by this run.
    Created,
    /// The API service's spec was updated by this run; when the update before it started.
    Updated(Option<String>),
}

/// Refuses an engine that cannot manage swarm services (exit 2, saying how to get one).
pub async fn check_manager(docker: &DockerRuntime) -> Result<()> {
    match docker.swarm_role().await? {
        SwarmRole::Manager => Ok(()),
        SwarmRole::Worker => Err(UserError::input(
            "this Docker engine is a swarm worker: services are managed on a manager",
        )
        .with_hint("point DOCKER_HOST at a manager node (`docker node ls` there lists them)")
        .into()),
        SwarmRole::None(state) => Err(UserError::input(format!(
            "this Docker engine is not in a swarm (its swarm state is `{}`): --target swarm needs a manager",
            if state.is_empty() { "inactive" } else { &state }
        ))
        .with_hint("`docker swarm init` makes it a single-node swarm; or deploy with --target local")
        .into()),
    }
}

/// The API's service spec for `release`, its secrets given.
fn api_spec(target: &Target, release: &Release, secrets: Vec<ObjectFile>) -> SwarmService {
    let mut env = vec![
        format!("GOODGO_API_ADDR=0.0.0.0:{API_PORT}"),
        format!("GOODGO_RELEASE={}", release.serves),
    ];
    env.extend(
        secrets
            .iter()
            .map(|s| format!("{}_FILE=/run/secrets/{}", s.target, s.target)),
    );
    let mut labels = HashMap::from([
        (LABEL_SERVICE.to_string(), "api".to_string()),
        (LABEL_RELEASE.to_string(), release.serves.to_string()),
        (LABEL_OBJECTS.to_string(), release.id.to_string()),
        (LABEL_IMAGE.to_string(), release.image.to_string()),
    ]);
    if let Some(c) = release.commit {
        labels.insert(LABEL_COMMIT.to_string(), c.to_string());
    }
    SwarmService {
        name: api_service(target),
        image: release.image.to_string(),
        project: target.project.clone(),
        labels,
        env,
        replicas: Some(u64::from(target.replicas)),
        network: target.project.clone(),
        dnsrr: true,
        secrets,
        configs: Vec::new(),
        health: Some(TaskHealth {
            test: vec!["CMD".into(), "goodgo-api-ready".into()],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            retries: 3,
            // Failed checks before this do not count; the first passing one makes it healthy.
            start_period: target.ready_timeout,
        }),
        rollout: Rollout {
            start_first: true,
            rollback_on_failure: true,
            monitor: target.watch.max(Duration::from_secs(1)),
        },
        stop_grace: target.drain_timeout,
        host_ports: Vec::new(),
    }
}

/// The API's settings and secrets as swarm secrets of this release (one per `GOODGO_*`
/// value, named `{project}_{KEY}_{release}`), mounted for the API's user only.
async fn write_secrets(
    docker: &DockerRuntime,
    target: &Target,
    release: &Release<'_>,
) -> Result<Vec<ObjectFile>> {
    let mut files = Vec::new();
    let labels = HashMap::from([(LABEL_OBJECTS.to_string(), release.id.to_string())]);
    for (key, value) in release.env {
        if !key.starts_with("GOODGO_") || key == "GOODGO_API_ADDR" || key == "GOODGO_RELEASE" {
            continue;
        }
        let name = format!("{}_{key}_{}", target.project, release.id);
        let id = docker
            .ensure_secret(&name, value.as_bytes(), &target.project, &labels)
            .await?;
        files.push(ObjectFile {
            id,
            object: name,
            target: key.clone(),
            uid: API_UID.into(),
            gid: API_UID.into(),
            mode: 0o400,
        });
    }
    Ok(files)
}

/// The proxy service, created (or updated when its configuration changed) and running.
async fn ensure_proxy(docker: &DockerRuntime, target: &Target, printer: &Printer) -> Result<()> {
    let servers = (target.replicas * 2 + 2).max(10);
    let text = proxy::render_swarm(&api_service(target), API_PORT, servers);
    let hash = hex(&Sha256::digest(text.as_bytes()))[..12].to_string();
    let config = format!("{}_haproxy_{hash}", target.project);
    let name = proxy_service(target);
    let current = docker.service(&name).await?;
    if current
        .as_ref()
        .is_some_and(|s| s.labels.get(LABEL_CONFIG) == Some(&config))
    {
        return Ok(());
    }
    if docker.image_labels(PROXY_IMAGE).await?.is_none() {
        return Err(UserError::input(format!(
            "the proxy's image {PROXY_IMAGE} is not present on this engine"
        ))
        .with_hint("`cargo xtask images` builds it from Debian's haproxy package; on several nodes, push it to a registry they reach")
        .into());
    }
    if current.is_none() && !goodgo_stack::probe::port_is_free("0.0.0.0", target.port) {
        return Err(UserError::input(format!(
            "deploy.port {} is already taken on this host: the swarm proxy publishes it",
            target.port
        ))
        .with_hint("stop whatever listens there, or set another `deploy.port` in goodgo.yaml")
        .into());
    }
    let config_id = docker
        .ensure_config(&config, text.as_bytes(), &target.project)
        .await?;
    let spec = SwarmService {
        name: name.clone(),
        image: PROXY_IMAGE.into(),
        project: target.project.clone(),
        labels: HashMap::from([
            (LABEL_SERVICE.to_string(), "proxy".to_string()),
            (LABEL_PORT.to_string(), target.port.to_string()),
            (LABEL_CONFIG.to_string(), config.clone()),
        ]),
        env: Vec::new(),
        // One proxy per node, each publishing the port on its own node.
        replicas: None,
        network: target.project.clone(),
        dnsrr: true,
        secrets: Vec::new(),
        configs: vec![ObjectFile {
            id: config_id,
            object: config,
            target: "/etc/haproxy/goodgo/haproxy.cfg".into(),
            uid: "0".into(),
            gid: "0".into(),
            mode: 0o444,
        }],
        health: None,
        // A port published in host mode is held by one task at a time on a node.
        rollout: Rollout {
            start_first: false,
            rollback_on_failure: true,
            monitor: Duration::from_secs(2),
        },
        stop_grace: Duration::from_secs(10),
        host_ports: vec![(target.port, proxy::SWARM_LISTEN)],
    };
    match &current {
        Some(s) => {
            printer.status(&format!(
                "updating the proxy service {name} (its configuration changed)"
            ));
            docker.update_service(s, &spec).await?;
        }
        None => {
            printer.status(&format!(
                "starting the proxy service {name} ({PROXY_IMAGE}) on port {}",
                target.port
            ));
            docker.create_service(&spec).await?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = docker.tasks(&name).await?;
        if tasks
            .iter()
            .any(|t| t.state == "running" && t.desired == "running")
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let errors = swarm_follow::task_errors(&tasks, None);
            anyhow::bail!("the proxy service {name} did not start within 60 s{errors}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A deploy (or a rollback's release) on the swarm: migrations, secrets, the proxy, the API
/// service created or updated and followed; Ctrl-C rolls the update back.
pub async fn deploy(
    ctx: &Context,
    docker: &DockerRuntime,
    target: &Target,
    args: &DeployRunArgs,
    release: &Release<'_>,
    url: Option<&str>,
    printer: &Printer,
) -> Result<()> {
    check_manager(docker).await?;
    let change = Mutex::new(Change::Nothing);
    let body = async {
        if let Some(url) = url {
            super::migrate(ctx, url, args.allow_breaking, printer).await?;
        }
        docker
            .ensure_overlay(&target.project, &target.project)
            .await?;
        ensure_proxy(docker, target, printer).await?;
        roll_out(docker, target, release, &change, printer).await?;
        served(target, release.serves).await
    };
    tokio::select! {
        outcome = body => outcome,
        _ = super::interrupted() => {
            printer.warn("interrupted: rolling the API service back to the release that served before");
            let what = change.lock().map(|c| c.clone()).unwrap_or_default();
            undo(docker, target, &what).await?;
            Err(Stop::Interrupted.into())
        }
    }
}

/// Creates or updates the API service and follows it to its end.
async fn roll_out(
    docker: &DockerRuntime,
    target: &Target,
    release: &Release<'_>,
    change: &Mutex<Change>,
    printer: &Printer,
) -> Result<()> {
    let name = api_service(target);
    let current = docker.service(&name).await?;
    let secrets = write_secrets(docker, target, release).await?;
    let spec = api_spec(target, release, secrets);
    let replicas = u64::from(target.replicas);
    let deadline = Instant::now()
        + target.ready_timeout * target.replicas
        + target.watch
        + Duration::from_secs(30);
    let Some(current) = current else {
        printer.status(&format!(
            "creating the API service {name}: release {} ({}), {replicas} replica(s)",
            release.serves, release.image
        ));
        docker.create_service(&spec).await?;
        set(change, Change::Created)?;
        let first = Instant::now() + target.ready_timeout + Duration::from_secs(10);
        return match swarm_follow::follow(
            docker,
            &name,
            release.serves,
            None,
            replicas,
            first,
            printer,
        )
        .await?
        {
            Outcome::Completed => {
                prune(docker, target, &[release.id]).await;
                Ok(())
            }
            Outcome::RolledBack(why) | Outcome::Stuck(why) => {
                docker.remove_service(&name).await?;
                Err(Stop::Failed(format!("it never turned ready ({why}); nothing serves")).into())
            }
        };
    };
    let before = current
        .labels
        .get(LABEL_RELEASE)
        .cloned()
        .unwrap_or_default();
    let old_objects = current
        .labels
        .get(LABEL_OBJECTS)
        .cloned()
        .unwrap_or_default();
    printer.status(&format!(
        "updating the API service {name}: release {} ({}) replaces {before}, one replica at a time, start-first",
        release.serves, release.image
    ));
    docker.update_service(&current, &spec).await?;
    set(change, Change::Updated(current.update_started.clone()))?;
    let outcome = swarm_follow::follow(
        docker,
        &name,
        release.serves,
        Some(current.update_started.clone()),
        replicas,
        deadline,
        printer,
    )
    .await?;
    match outcome {
        Outcome::Completed => {
            prune(docker, target, &[release.id, &old_objects]).await;
            Ok(())
        }
        Outcome::RolledBack(why) => Err(Stop::RolledBack(format!(
            "swarm rolled it back: {why}; release {before} serves again"
        ))
        .into()),
        Outcome::Stuck(why) => {
            printer.warn(&format!("{why}: rolling the API service back"));
            undo(
                docker,
                target,
                &Change::Updated(current.update_started.clone()),
            )
            .await?;
            Err(Stop::RolledBack(format!("{why}; release {before} serves again")).into())
        }
    }
}

/// Answers in a row from the new release that show the proxy serves only it: more than one
/// round of its balancing over any pool of tasks it may still hold.
const SERVED_IN_A_ROW: u32 = 8;

/// Waits (15 s at most) until the proxy answers only with `release`'s `GoodGo-Release`
/// header ([`SERVED_IN_A_ROW`] answers in a row): its DNS view of the tasks follows the
/// swarm's within a second or two, and until then one answer may come from an old task.
async fn served(target: &Target, release: &str) -> Result<()> {
    let client = crate::http::client(Duration::from_secs(2))?;
    let url = format!("{}/healthz", target.url());
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut in_a_row = 0;
    loop {
        let last = match client.get(&url).send().await {
            Ok(r) => {
                let header = r
                    .headers()
                    .get("goodgo-release")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if r.status().as_u16() == 200 && header == release {
                    in_a_row += 1;
                    if in_a_row >= SERVED_IN_A_ROW {
                        return Ok(());
                    }
                    continue;
                }
                in_a_row = 0;
                format!("{} from release `{header}`", r.status().as_u16())
            }
            Err(e) => {
                in_a_row = 0;
                e.to_string()
            }
        };
        if Instant::now() >= deadline {
            return Err(Stop::Failed(format!(
                "swarm runs release {release}, but the proxy at {url} does not serve it within 15 s (last: {last})"
            ))
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn set(change: &Mutex<Change>, to: Change) -> Result<()> {
    *change.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = to;
    Ok(())
}

/// Undoes a change: a created service is removed, an update is rolled back (and followed
/// until the previous release serves).
async fn undo(docker: &DockerRuntime, target: &Target, change: &Change) -> Result<()> {
    let name = api_service(target);
    match change {
        Change::Nothing => Ok(()),
        Change::Created => Ok(docker.remove_service(&name).await?),
        Change::Updated(before) => {
            let current = docker
                .service(&name)
                .await?
                .context("the API service vanished")?;
            let ours = current.update_started != *before;
            let state = current.update_state.as_deref().unwrap_or("");
            if !(ours && state.starts_with("rollback")) {
                docker.rollback_service(&current).await?;
            }
            swarm_follow::wait_rolled_back(docker, &name, before, Duration::from_secs(120)).await
        }
    }
}

/// Removes the target's secrets of releases other than `keep` (a service still using one
/// keeps it).
async fn prune(docker: &DockerRuntime, target: &Target, keep: &[&str]) {
    let Ok(secrets) = docker.secret_names(&target.project).await else {
        return;
    };
    for (id, name) in secrets {
        let ours = keep
            .iter()
            .any(|k| !k.is_empty() && name.ends_with(&format!("_{k}")));
        if !ours {
            let _ = docker.remove_object(&id, true).await;
        }
    }
}

/// `deploy rollback` on the swarm: the image of an earlier release (the one before the
/// serving release by default) rolled out again as that release, the same way as a deploy.
pub async fn rollback(
    ctx: &Context,
    target: &Target,
    release: Option<&str>,
    args: &DeployRunArgs,
    printer: &Printer,
) -> Result<crate::error::ExitStatus> {
    let (started, at) = (Instant::now(), super::history::now());
    let docker = super::connect().await?;
    check_manager(&docker).await?;
    let (env, _) = super::api_env(ctx)?;
    let _lock = super::take_lock(target, args, "goodgo deploy rollback", printer)?;
    let mut history = super::history::History::read(&target.dir)?;
    let serving = serving(&docker, target)
        .await?
        .and_then(|s| s.labels.get(LABEL_RELEASE).cloned())
        .ok_or_else(|| UserError::failed("nothing is deployed on this target: no API service"))?;
    let served = |r: &super::history::Release| r.serves.clone().unwrap_or_else(|| r.id.clone());
    let chosen = history.releases.iter().rev().find(|r| match release {
        Some(id) => r.id == id,
        None => r.result == "replaced" && served(r) != serving,
    });
    let Some(chosen) = chosen.cloned() else {
        let what = release.map_or("an earlier release".to_string(), |r| format!("release {r}"));
        return Err(
            UserError::input(format!("{what} is not in the history of this target"))
                .with_hint("`goodgo deploy history --target swarm` lists every release")
                .into(),
        );
    };
    if docker.image_labels(&chosen.image).await?.is_none() {
        return Err(UserError::input(format!(
            "release {}'s image {} is no longer on this engine",
            chosen.id, chosen.image
        ))
        .into());
    }
    let id = history.next_id();
    let serves = served(&chosen);
    let mut record = super::record(
        &id,
        "rollback",
        &chosen.image,
        chosen.commit.clone(),
        &at,
        started,
    );
    record.serves = Some(serves.clone());
    let rel = Release {
        id: &id,
        serves: &serves,
        image: &chosen.image,
        commit: chosen.commit.as_deref(),
        env: &env,
    };
    let outcome = deploy(ctx, &docker, target, args, &rel, None, printer).await;
    super::finish(&mut history, &mut record, outcome, target, started, printer)
}

/// The API service as it runs now.
pub async fn serving(docker: &DockerRuntime, target: &Target) -> Result<Option<ServiceState>> {
    Ok(docker.service(&api_service(target)).await?)
}

/// `deploy down` on the swarm: the services, secrets, configs and network of the target.
pub async fn down(
    docker: &DockerRuntime,
    target: &Target,
    printer: &Printer,
) -> Result<crate::error::ExitStatus> {
    check_manager(docker).await?;
    let removed = docker.swarm_down(&target.project).await?;
    printer.report(
        &format!(
            "removed {} object(s) of the swarm target; the history stays in {}\n",
            removed.len(),
            target.dir.join("history.json").display()
        ),
        &serde_json::json!({"removed": removed}),
    );
    Ok(crate::error::ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            name: "shop".into(),
            project: "shop-swarm".into(),
            dir: "/tmp/x".into(),
            port: 8080,
            bind: "0.0.0.0".into(),
            ready_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            watch: Duration::from_secs(0),
            max_error_rate: 0.05,
            keep: 3,
            replicas: 3,
            kind: crate::args::Target::Swarm,
        }
    }

    #[test]
    fn the_api_spec_points_at_secret_files_only() {
        let secrets = vec![ObjectFile {
            id: "s1".into(),
            object: "shop-swarm_GOODGO_JWT_SECRET_r4".into(),
            target: "GOODGO_JWT_SECRET".into(),
            uid: API_UID.into(),
            gid: API_UID.into(),
            mode: 0o400,
        }];
        let release = Release {
            id: "r4",
            serves: "r1",
            image: "shop-api:abc",
            commit: Some("abc"),
            env: &[],
        };
        let spec = api_spec(&target(), &release, secrets);
        assert_eq!(spec.name, "shop-api");
        assert_eq!(spec.replicas, Some(3));
        assert!(spec.dnsrr && spec.rollout.start_first && spec.rollout.rollback_on_failure);
        assert_eq!(spec.rollout.monitor, Duration::from_secs(1));
        assert!(spec.env.contains(&"GOODGO_RELEASE=r1".to_string()));
        assert!(
            spec.env
                .contains(&"GOODGO_JWT_SECRET_FILE=/run/secrets/GOODGO_JWT_SECRET".to_string())
        );
        assert_eq!(spec.labels[LABEL_OBJECTS], "r4");
        assert_eq!(spec.labels[LABEL_RELEASE], "r1");
        assert!(spec.host_ports.is_empty());
    }
}
