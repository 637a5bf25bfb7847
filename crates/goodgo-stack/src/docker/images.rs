//! Images: present locally, pulled from a registry, or built from a service's context
//! (with its inline Dockerfile), as the service's `pull_policy` says.

use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;
use goodgo_compose::{PullPolicy, Service};

use super::{DockerRuntime, engine, is_not_found};
use crate::{EngineError, Event, StackError};

/// The image a service runs: its `image`, or `{project}-{service}` for one built from its
/// `build` section.
pub(super) fn image_of(project: &str, service: &Service) -> Result<String, StackError> {
    match (&service.image, &service.build) {
        (Some(image), _) => Ok(image.clone()),
        (None, Some(_)) => Ok(format!("{project}-{}", service.name)),
        (None, None) => Err(StackError::Unsupported {
            message: format!("service `{}` has neither image nor build", service.name),
            hint: None,
        }),
    }
}

impl DockerRuntime {
    /// Whether `image` is present locally.
    pub async fn has_image(&self, image: &str) -> Result<bool, StackError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(engine(format!("inspecting image {image}"))(e)),
        }
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
    /// (tagged with `image`, or `{project}-{service}`), or pulled — or, by its
    /// `pull_policy`, pulled (`always`) or built (`build`) every time, or never pulled.
    pub(super) async fn ensure_image(
        &self,
        project: &str,
        service: &Service,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(), StackError> {
        let image = image_of(project, service)?;
        let policy = service.pull_policy.unwrap_or(PullPolicy::Missing);
        match policy {
            PullPolicy::Build if service.build.is_some() => {
                return self.build(service, &image, on_event).await;
            }
            PullPolicy::Always if service.image.is_some() => {
                return self.pull(&service.name, &image, on_event).await;
            }
            _ => {}
        }
        if self.has_image(&image).await? {
            return Ok(());
        }
        if service.build.is_some() {
            return self.build(service, &image, on_event).await;
        }
        if policy == PullPolicy::Never {
            return Err(StackError::Failed {
                message: format!(
                    "image {image} for service `{}` is not present locally, and its `pull_policy: never` forbids pulling it",
                    service.name
                ),
                logs: Vec::new(),
                hint: Some(
                    "build or load it (`docker load`), or change the service's `pull_policy`; `docker image ls` lists what is here"
                        .into(),
                ),
            });
        }
        self.pull(&service.name, &image, on_event).await
    }

    /// Builds `service`'s context through the engine and tags it `tag`.
    pub(super) async fn build(
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
        let inline = build.dockerfile_inline.clone();
        let tar = tokio::task::spawn_blocking(move || {
            let extra = inline.as_deref().map(|d| (INLINE_DOCKERFILE, d.as_bytes()));
            crate::tarball::pack_with(&context, extra)
        })
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
            dockerfile: match (&build.dockerfile_inline, &build.dockerfile) {
                (Some(_), _) => INLINE_DOCKERFILE.into(),
                (None, Some(d)) => d.clone(),
                (None, None) => "Dockerfile".into(),
            },
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
}

/// Where a service's `dockerfile_inline` goes in its build context's archive.
const INLINE_DOCKERFILE: &str = ".goodgo.inline.Dockerfile";

pub(super) fn split_tag(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}
