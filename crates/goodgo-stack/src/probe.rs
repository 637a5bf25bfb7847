//! Ports and readiness, shared by both runtimes: is a port free (and if not, who holds
//! it), and does a Redis or PostgreSQL server answer yet.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// True when nothing listens on `ip:port` (we could bind it ourselves).
pub fn port_is_free(ip: &str, port: u16) -> bool {
    let ip = if ip.is_empty() { "0.0.0.0" } else { ip };
    TcpListener::bind((ip, port)).is_ok()
}

/// Who listens on `port`, from `ss` when it is installed: `"postgres (pid 1234)"`.
pub fn port_holder(port: u16) -> Option<String> {
    let out = std::process::Command::new("ss")
        .args(["-Hltnp", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    // users:(("postgres",pid=1234,fd=7))
    let users = line.split("users:((").nth(1)?;
    let name = users.split('"').nth(1)?;
    let pid = users
        .split("pid=")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?;
    Some(format!("{name} (pid {pid})"))
}

fn addr(ip: &str, port: u16) -> Option<SocketAddr> {
    let ip = if ip.is_empty() || ip == "0.0.0.0" {
        "127.0.0.1"
    } else {
        ip
    };
    (ip, port).to_socket_addrs().ok()?.next()
}

/// Redis answers `PING` with `+PONG`.
pub fn redis_ready(ip: &str, port: u16) -> bool {
    let Some(addr) = addr(ip, port) else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// Something accepts TCP connections on `ip:port`.
pub fn tcp_open(ip: &str, port: u16) -> bool {
    addr(ip, port)
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_not_free_and_answers_tcp() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        assert!(!port_is_free("127.0.0.1", port));
        assert!(tcp_open("127.0.0.1", port));
        drop(listener);
        assert!(port_is_free("127.0.0.1", port));
        assert!(!redis_ready("127.0.0.1", port));
    }
}
