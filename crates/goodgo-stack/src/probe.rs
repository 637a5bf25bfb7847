//! Ports and readiness, shared by both runtimes: is a port free (and if not, who holds
//! it), and does a Redis, PostgreSQL or HTTP (S3) server answer yet.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// True when nothing listens on `ip:port` (we could bind it ourselves).
pub fn port_is_free(ip: &str, port: u16) -> bool {
    let ip = if ip.is_empty() { "0.0.0.0" } else { ip };
    TcpListener::bind((ip, port)).is_ok()
}

/// Who listens on `port`: `"postgres (pid 1234)"`. From `ss` when it is installed, else
/// from `/proc/net/tcp{,6}` and the processes' open sockets.
pub fn port_holder(port: u16) -> Option<String> {
    holder_from_ss(port).or_else(|| holder_from_proc(port))
}

fn holder_from_ss(port: u16) -> Option<String> {
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

/// The socket inodes listening on `port`, from a `/proc/net/tcp`-format table.
fn listening_inodes(table: &str, port: u16) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let local_port = f.get(1)?.rsplit(':').next()?;
            let listening = *f.get(3)? == "0A";
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| f.get(9).map(|i| (*i).to_string()))
                .flatten()
        })
        .collect()
}

fn holder_from_proc(port: u16) -> Option<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        inodes.extend(listening_inodes(
            &std::fs::read_to_string(table).unwrap_or_default(),
            port,
        ));
    }
    let wanted: Vec<String> = inodes
        .iter()
        .filter(|i| *i != "0")
        .map(|i| format!("socket:[{i}]"))
        .collect();
    if wanted.is_empty() {
        return None;
    }
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| wanted.iter().any(|w| target.as_os_str() == w.as_str()))
        });
        if holds {
            let name = std::fs::read_to_string(proc_entry.path().join("comm")).ok()?;
            return Some(format!("{} (pid {pid})", name.trim_end()));
        }
    }
    None
}

/// How long `redis_ready` waits for the answer to its `PING`.
const REDIS_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

fn addr(ip: &str, port: u16) -> Option<SocketAddr> {
    let ip = if ip.is_empty() || ip == "0.0.0.0" {
        "127.0.0.1"
    } else {
        ip
    };
    (ip, port).to_socket_addrs().ok()?.next()
}

/// Redis answers `PING` with `+PONG`. One attempt; the answer may take up to
/// `REDIS_ANSWER_TIMEOUT` (a server busy loading its data set answers late).
pub fn redis_ready(ip: &str, port: u16) -> bool {
    let Some(addr) = addr(ip, port) else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(REDIS_ANSWER_TIMEOUT));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// An HTTP server answers on `ip:port`: a request line no server routes gets a status
/// line back (the HTTP layer's `400`), so the probe never reaches the server's handlers
/// and its log stays free of refused probes (s3s-fs logs every unsigned request as an
/// error). One attempt.
pub fn http_answers(ip: &str, port: u16) -> bool {
    let Some(addr) = addr(ip, port) else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"PROBE\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"HTTP/"))
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
        let me = format!("(pid {})", std::process::id());
        let held = holder_from_proc(port).unwrap_or_default();
        assert!(held.ends_with(&me), "{held:?}");
        assert_eq!(port_holder(port).as_deref(), Some(held.as_str()));
        drop(listener);
        assert!(port_is_free("127.0.0.1", port));
        assert!(!redis_ready("127.0.0.1", port));
        assert_eq!(holder_from_proc(port), None);
    }

    /// A port that accepts and stays silent is no HTTP server. (The answering case is
    /// proven against the real s3s-fs, which `up --profile s3` waits for with this probe:
    /// cli/tests/it/stack_s3.rs.)
    #[test]
    fn a_silent_port_is_no_http_server() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let server = std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf);
        });
        assert!(!http_answers("127.0.0.1", port));
        let _ = server.join();
    }

    #[test]
    fn proc_net_tcp_rows_are_read() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 31337 1 0\n   1: 0100007F:1538 0100007F:9C40 01 00000000:00000000 00:00000000 00000000   105        0 4242 1 0\n";
        assert_eq!(listening_inodes(table, 5432), ["31337"]);
        assert!(listening_inodes(table, 5433).is_empty());
    }
}
