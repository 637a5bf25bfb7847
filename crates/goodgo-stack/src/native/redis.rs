//! Redis as a local process: `redis-server` with the service's options, ready when it
//! answers `PING`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use goodgo_compose::Service;

use super::logs::new_log;
use super::{Kind, NativeRuntime, spawn};
use crate::{StackError, probe};

impl NativeRuntime {
    pub(super) async fn start_redis(
        &self,
        service: &Service,
        dir: &Path,
        deadline: Instant,
    ) -> Result<(), StackError> {
        let program = self
            .redis_server
            .clone()
            .unwrap_or_else(|| PathBuf::from("redis-server"));
        let (ip, port) = Self::endpoint(service, 6379);
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(StackError::io("creating", &data))?;
        let log = new_log(dir)?;
        let log2 = log
            .try_clone()
            .map_err(StackError::io("opening the log in", dir))?;
        let mut cmd = Command::new(program);
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            &ip,
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ])
        .arg("--dir")
        .arg(&data);
        // `command: redis-server --appendonly yes` keeps its options.
        if let Some(argv) = service.command.as_ref().map(|c| c.to_argv()) {
            let rest: Vec<&String> = argv
                .iter()
                .skip_while(|a| a.ends_with("redis-server"))
                .collect();
            cmd.args(rest);
        }
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(spawn("redis-server"))?;
        Self::write_pid(dir, child.id(), Kind::Redis)?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(self.failed(service, &format!("exited ({status}) while starting")));
            }
            if probe::redis_ready(&ip, port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failed(service, "did not answer PING in time"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
