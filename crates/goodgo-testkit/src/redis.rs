//! A real Redis for one test: `redis-server` (Debian's `redis-server`, which `cargo xtask
//! test` provisions) on a free loopback port, stopped when the test ends; it can be killed
//! and started again on the same port. It saves only when told (`SAVE`), into a folder of
//! its own, and a restart loads what was saved: empty unless a test saved.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{ChildGuard, free_port, skip, strict, wait_until};

/// A running (or killed) `redis-server`.
pub struct RedisServer {
    pub port: u16,
    program: PathBuf,
    dir: tempfile::TempDir,
    server: Option<ChildGuard>,
}

impl RedisServer {
    /// Starts redis-server. `None` (with a visible skip line) only outside `cargo xtask
    /// test`, when it is not installed.
    pub fn start(test: &str) -> Option<RedisServer> {
        let Ok(program) = which::which("redis-server") else {
            assert!(!strict(), "cargo xtask test installs redis-server");
            skip(
                test,
                "redis-server is not installed (`apt-get install redis-server`)",
            );
            return None;
        };
        let mut server = RedisServer {
            port: free_port(),
            program,
            dir: tempfile::tempdir().unwrap(),
            server: None,
        };
        server.restart();
        Some(server)
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(ChildGuard::id)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits until it is gone.
    pub fn kill(&mut self) {
        drop(self.server.take());
        wait_until("redis-server to stop", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", self.port)).is_err()
        });
    }

    /// Starts the server (again) on its port, empty, and waits until it answers PING.
    pub fn restart(&mut self) {
        drop(self.server.take());
        let child = Command::new(&self.program)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.server = Some(ChildGuard::new(child));
        wait_until("redis-server to answer", Duration::from_secs(30), || {
            self.command(&["PING"]).is_some_and(|r| r == "+PONG")
        });
    }

    /// One command in RESP, its first reply line (`+OK`, `:3`, `$5`…); `None` without an
    /// answer.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(req.as_bytes()).ok()?;
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        text.lines().next().map(str::to_string)
    }
}
