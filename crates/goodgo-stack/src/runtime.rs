//! One interface for the Docker and native runtimes, and the one start loop on top of it.
//!
//! A runtime knows how to prepare a request (ports, images, networks), start one service,
//! wait until one meets a `depends_on` condition, and stop, list and tail its services.
//! [`up`] is written once over those operations: wave by wave, each wave in parallel,
//! each service after its dependencies meet their conditions, then every service ready.
//! It needs only the start half ([`ServiceStarter`]); [`Runtime`] adds stopping, listing
//! and logs, which commands call.
//!
//! Why a trait object with boxed futures rather than generics: the runtime is chosen at
//! run time (flag, settings, or whether the engine answers), and commands (`up`, `dev`,
//! and later `ci` and `deploy`) hold it as one `Box<dyn Runtime>` instead of matching an
//! enum in every place. The cost, one allocation per call of a service-level operation,
//! is nothing next to the engine round trips and process starts behind it.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use goodgo_compose::{Condition, Project, Service};

use crate::{
    Action, Event, RunningDatabase, ServiceReport, ServiceStatus, StackError, UpRequest, millis,
};

/// A future a runtime returns, boxed so the trait can be used as `dyn Runtime`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where progress goes: the caller decides what a person sees.
pub type OnEvent<'a> = &'a (dyn Fn(Event) + Sync);

/// Where log lines go: `(service, line)`.
pub type OnLine<'a> = &'a (dyn Fn(&str, &str) + Sync);

/// What [`up`] asks of a runtime: the start half of [`Runtime`], apart so that the loop
/// (and a fake runtime testing it) needs nothing else.
pub trait ServiceStarter: Send + Sync {
    /// Everything checked or made before the first service starts: free ports, tools,
    /// images, networks, volumes. A request that cannot run fails here, with nothing started.
    fn prepare<'a>(
        &'a self,
        project: &'a Project,
        req: &'a UpRequest,
        on_event: OnEvent<'a>,
    ) -> BoxFuture<'a, Result<(), StackError>>;

    /// Creates, replaces or starts one service (or leaves it alone when it runs as defined).
    fn start<'a>(
        &'a self,
        project: &'a Project,
        req: &'a UpRequest,
        service: &'a Service,
        deadline: Instant,
        on_event: OnEvent<'a>,
    ) -> BoxFuture<'a, Result<Action, StackError>>;

    /// True when [`start`](Self::start) returns only once the service is ready, so it is
    /// reported ready at once rather than waited for after the last wave.
    fn ready_on_start(&self) -> bool;

    /// Waits until `service` meets `cond`, or fails at `deadline`.
    fn wait_for<'a>(
        &'a self,
        req: &'a UpRequest,
        service: &'a str,
        cond: Condition,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<(), StackError>>;
}

/// What runs a project's services: the Docker engine or local processes.
pub trait Runtime: ServiceStarter {
    /// `docker` or `native`, as `status` and `up` name it.
    fn name(&self) -> &'static str;

    /// Stops the project's services (their data too with `volumes`); the names stopped.
    fn down<'a>(
        &'a self,
        project: &'a str,
        volumes: bool,
    ) -> BoxFuture<'a, Result<Vec<String>, StackError>>;

    /// One row per service of the project this runtime knows.
    fn status<'a>(
        &'a self,
        project: &'a str,
        model: Option<&'a Project>,
    ) -> BoxFuture<'a, Result<Vec<ServiceStatus>, StackError>>;

    /// The services' logs (all, or `services`), the last `tail` lines; with `follow`,
    /// until the services stop or the caller drops the future.
    fn logs<'a>(
        &'a self,
        project: &'a str,
        services: &'a [String],
        follow: bool,
        tail: Option<usize>,
        on_line: OnLine<'a>,
    ) -> BoxFuture<'a, Result<(), StackError>>;

    /// The project's PostgreSQL as it runs now (published address, credentials it was
    /// started with), or `None` when this runtime runs none for the project.
    fn database<'a>(
        &'a self,
        project: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunningDatabase>, StackError>>;
}

/// Starts the request's services wave by wave, each wave in parallel, each service after
/// its dependencies meet their conditions; returns when every service is up (healthy where
/// it has a healthcheck, exited 0 where others wait for it to complete).
pub async fn up(
    rt: &dyn ServiceStarter,
    project: &Project,
    req: &UpRequest,
    on_event: OnEvent<'_>,
) -> Result<Vec<ServiceReport>, StackError> {
    let start = Instant::now();
    let deadline = start + req.timeout;
    rt.prepare(project, req, on_event).await?;
    let ready_on_start = rt.ready_on_start();
    let mut reports = Vec::new();
    for wave in &req.waves {
        let jobs = wave
            .iter()
            .filter_map(|name| project.services.get(name))
            .map(|service| async move {
                for (dep, cond) in &service.depends_on {
                    on_event(Event::Waiting {
                        service: dep.clone(),
                        condition: condition_name(*cond),
                    });
                    rt.wait_for(req, dep, *cond, deadline).await?;
                }
                let action = rt.start(project, req, service, deadline, on_event).await?;
                on_event(Event::Acting {
                    service: service.name.clone(),
                    action,
                });
                let mut ready_ms = 0;
                if ready_on_start {
                    ready_ms = millis(start.elapsed());
                    on_event(Event::Ready {
                        service: service.name.clone(),
                        after: start.elapsed(),
                    });
                }
                Ok::<_, StackError>(ServiceReport {
                    service: service.name.clone(),
                    action,
                    ready_ms,
                })
            });
        for result in futures_util::future::join_all(jobs).await {
            reports.push(result?);
        }
    }
    if ready_on_start {
        return Ok(reports);
    }
    // Every service whose container has a healthcheck (written in the file or inherited
    // from the image) must be healthy before `up` returns; the others running. A one-off
    // service that others wait to complete is done when it exits 0.
    let needed = crate::needed_conditions(project, &req.waves);
    let waits = reports.iter_mut().map(|report| async {
        let cond = match needed.get(&report.service) {
            Some(Condition::CompletedSuccessfully) => Condition::CompletedSuccessfully,
            _ => Condition::Healthy,
        };
        rt.wait_for(req, &report.service, cond, deadline).await?;
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

fn condition_name(c: Condition) -> &'static str {
    match c {
        Condition::Started => "started",
        Condition::Healthy => "healthy",
        Condition::CompletedSuccessfully => "completed",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// A runtime that records what the loop asks of it.
    struct Fake {
        ready_on_start: bool,
        calls: Mutex<Vec<String>>,
    }

    impl Fake {
        fn log(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    impl ServiceStarter for Fake {
        fn prepare<'a>(
            &'a self,
            _: &'a Project,
            _: &'a UpRequest,
            _: OnEvent<'a>,
        ) -> BoxFuture<'a, Result<(), StackError>> {
            self.log("prepare".into());
            Box::pin(async { Ok(()) })
        }
        fn start<'a>(
            &'a self,
            _: &'a Project,
            _: &'a UpRequest,
            service: &'a Service,
            _: Instant,
            _: OnEvent<'a>,
        ) -> BoxFuture<'a, Result<Action, StackError>> {
            self.log(format!("start {}", service.name));
            Box::pin(async { Ok(Action::Created) })
        }
        fn ready_on_start(&self) -> bool {
            self.ready_on_start
        }
        fn wait_for<'a>(
            &'a self,
            _: &'a UpRequest,
            service: &'a str,
            cond: Condition,
            _: Instant,
        ) -> BoxFuture<'a, Result<(), StackError>> {
            self.log(format!("wait {service} {}", condition_name(cond)));
            Box::pin(async { Ok(()) })
        }
    }

    fn project() -> (Project, UpRequest) {
        let mut project = Project::default();
        let service = |name: &str, deps: &[(&str, Condition)]| Service {
            name: name.into(),
            depends_on: deps.iter().map(|(d, c)| (d.to_string(), *c)).collect(),
            ..Service::default()
        };
        for s in [
            service("db", &[]),
            service("migrate", &[("db", Condition::Healthy)]),
            service("api", &[("migrate", Condition::CompletedSuccessfully)]),
        ] {
            project.services.insert(s.name.clone(), s);
        }
        let req = UpRequest {
            project: "p".into(),
            waves: vec![
                vec!["db".into()],
                vec!["migrate".into()],
                vec!["api".into()],
            ],
            timeout: Duration::from_secs(5),
        };
        (project, req)
    }

    /// What the loop asks of a fake runtime and the services it reports ready, in order.
    fn run(ready_on_start: bool) -> Vec<String> {
        let fake = Fake {
            ready_on_start,
            calls: Mutex::new(Vec::new()),
        };
        let (project, req) = project();
        let events = Mutex::new(Vec::new());
        let on_event = |e: Event| {
            if let Event::Ready { service, .. } = e {
                events.lock().unwrap().push(format!("ready {service}"));
            }
        };
        let reports = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(up(&fake, &project, &req, &on_event))
            .unwrap();
        assert_eq!(reports.len(), 3);
        let mut calls = fake.calls.into_inner().unwrap();
        calls.extend(events.into_inner().unwrap());
        calls
    }

    /// Either way, each service starts after its dependencies meet their conditions; what
    /// the loop asks `then` differs.
    fn assert_up(ready_on_start: bool, then: &[&str]) {
        let calls = run(ready_on_start);
        let starts = [
            "prepare",
            "start db",
            "wait db healthy",
            "start migrate",
            "wait migrate completed",
            "start api",
        ];
        assert_eq!(calls[..starts.len()], starts);
        assert_eq!(calls[starts.len()..], *then);
    }

    #[test]
    fn services_start_after_their_dependencies_then_are_waited_for() {
        assert_up(
            false,
            &[
                // After the last wave: each service ready, a one-off one completed.
                "wait db healthy",
                "wait migrate completed",
                "wait api healthy",
                "ready db",
                "ready migrate",
                "ready api",
            ],
        );
    }

    #[test]
    fn a_runtime_that_starts_services_ready_is_not_waited_for_again() {
        assert_up(true, &["ready db", "ready migrate", "ready api"]);
    }
}
