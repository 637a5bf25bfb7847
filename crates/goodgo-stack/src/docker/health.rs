//! Health: waiting until a container meets a `depends_on` condition, running its
//! healthcheck ourselves for a quick verdict, and saying why it failed.

use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecOptions};
use bollard::models::ContainerSummary;
use futures_util::StreamExt;
use goodgo_compose::Condition;

use super::{DockerRuntime, engine};
use crate::{StackError, UpRequest};

impl DockerRuntime {
    /// Waits until `service` meets `cond`. Health is polled tightly: besides the engine's
    /// own status (updated once per `interval`), goodgo runs the healthcheck's command in
    /// the container itself every ~50 ms, so readiness is seen within about 100 ms.
    pub(super) async fn wait_for(
        &self,
        req: &UpRequest,
        service: &str,
        cond: Condition,
        deadline: Instant,
    ) -> Result<(), StackError> {
        // A container this `up` left alone: its listed state may already meet `cond`.
        if let Some(c) = self.unchanged(&req.project, service)
            && listed_meets(&c, cond)
        {
            return Ok(());
        }
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
    pub(super) async fn run_check(&self, id: &str, test: &[String]) -> bool {
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

    pub(super) async fn failure(&self, id: &str, service: &str, what: &str) -> StackError {
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
}

/// Whether a listed running container meets `cond`: started, or healthy — by the engine's
/// health status (in the listing from API 1.52, else in the status text it has always
/// ended with: `Up 2 minutes (healthy)`), or without a healthcheck at all.
fn listed_meets(c: &ContainerSummary, cond: Condition) -> bool {
    let running = c.state.is_some_and(|s| s.to_string() == "running");
    if !running {
        return false;
    }
    let status = c.status.as_deref().unwrap_or_default();
    let health = c
        .health
        .as_ref()
        .and_then(|h| h.status)
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty() && s != "none")
        .or_else(|| {
            let (_, rest) = status.rsplit_once('(')?;
            let inside = rest.strip_suffix(')')?;
            Some(inside.trim_start_matches("health: ").to_string())
        });
    match cond {
        Condition::Started => true,
        Condition::Healthy => matches!(health.as_deref(), None | Some("healthy")),
        Condition::CompletedSuccessfully => false,
    }
}

/// The healthcheck test the engine runs in a container, if any.
pub(super) fn effective_check(
    info: &bollard::models::ContainerInspectResponse,
) -> Option<Vec<String>> {
    info.config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.clone())
        .filter(|t| t.first().is_some_and(|first| first != "NONE"))
}

#[cfg(test)]
mod tests {
    use bollard::models::ContainerSummaryStateEnum;

    use super::*;

    fn listed(state: ContainerSummaryStateEnum, status: &str) -> ContainerSummary {
        ContainerSummary {
            state: Some(state),
            status: Some(status.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_listed_container_meets_what_its_state_and_health_say() {
        use Condition::*;
        use ContainerSummaryStateEnum::{EXITED, RUNNING};
        let cases = [
            (RUNNING, "Up 2 minutes", Started, true),
            (RUNNING, "Up 2 minutes", Healthy, true),
            (RUNNING, "Up 2 minutes (healthy)", Healthy, true),
            (RUNNING, "Up 3 seconds (health: starting)", Healthy, false),
            (RUNNING, "Up 3 seconds (health: starting)", Started, true),
            (RUNNING, "Up 2 minutes (unhealthy)", Healthy, false),
            (EXITED, "Exited (0) 1 second ago", Started, false),
            (
                EXITED,
                "Exited (0) 1 second ago",
                CompletedSuccessfully,
                false,
            ),
        ];
        for (state, status, cond, meets) in cases {
            assert_eq!(
                listed_meets(&listed(state, status), cond),
                meets,
                "{status} {cond:?}"
            );
        }
        // The structured health of newer engines wins over the text.
        let mut c = listed(RUNNING, "Up 2 minutes");
        c.health = Some(bollard::models::ContainerSummaryHealth {
            status: Some(bollard::models::ContainerSummaryHealthStatusEnum::STARTING),
            failing_streak: None,
        });
        assert!(!listed_meets(&c, Healthy));
    }
}
