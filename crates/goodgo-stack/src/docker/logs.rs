//! Logs: the last lines of a failed container, and `logs` (optionally followed) for the
//! project's containers.

use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;

use super::{DockerRuntime, engine, label};
use crate::{LABEL_SERVICE, StackError};

impl DockerRuntime {
    pub(super) async fn tail(&self, id: &str, n: usize) -> Vec<String> {
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
