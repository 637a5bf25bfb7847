//! The proxy in front of the API: HAProxy's configuration as goodgo writes it, and its
//! runtime API (a text protocol over a loopback TCP socket) to switch traffic without a
//! reload.
//!
//! Why HAProxy: its runtime API points a server slot at a new address (`set server … addr`),
//! takes it into service (`state ready`), drains a slot (no new requests, in-flight ones
//! finish; `state drain`) and reports each slot's health, sessions and answers by status
//! class (`show stat`): the switch and the watch need nothing else. The backend has two
//! slots, `blue` and `green`; a release runs in one while the other is free for the next.
//! The configuration file is rewritten on every switch with the serving slot enabled, so a
//! proxy restarted by the engine comes back serving the same release.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The two server slots of the backend.
pub const SLOTS: [&str; 2] = ["blue", "green"];

/// The backend the frontend sends every request to.
const BACKEND: &str = "api";

/// The other slot.
pub fn other(slot: &str) -> &'static str {
    if slot == SLOTS[0] { SLOTS[1] } else { SLOTS[0] }
}

/// Where the proxy listens and answers its runtime API; which slot serves which port.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub bind: String,
    pub port: u16,
    pub admin_port: u16,
    /// The serving slot and its API port, if any.
    pub serving: Option<(String, u16)>,
}

/// `haproxy.cfg` for `config`.
pub fn render(config: &ProxyConfig) -> String {
    let server = |slot: &str| match &config.serving {
        Some((s, port)) if s == slot => format!("    server {slot} 127.0.0.1:{port}\n"),
        // A free slot points nowhere until a release is switched into it.
        _ => format!("    server {slot} 127.0.0.1:9 disabled\n"),
    };
    format!(
        "# Written by `goodgo deploy` on every switch; edits are overwritten.\n\
         global\n\
         \x20   maxconn 4096\n\
         \x20   stats socket ipv4@127.0.0.1:{admin} level admin\n\
         \x20   log stdout format raw daemon notice\n\
         \n\
         defaults\n\
         \x20   mode http\n\
         \x20   log global\n\
         \x20   timeout connect 3s\n\
         \x20   timeout client 60s\n\
         \x20   timeout server 60s\n\
         \x20   timeout http-keep-alive 10s\n\
         \x20   # A request whose connection failed, or that got no answer at all, is sent to\n\
         \x20   # a healthy slot again: a release stopping under the switch drops nothing.\n\
         \x20   retries 3\n\
         \x20   retry-on conn-failure empty-response\n\
         \x20   option redispatch 1\n\
         \n\
         frontend public\n\
         \x20   bind {bind}:{port}\n\
         \x20   default_backend {BACKEND}\n\
         \n\
         backend {BACKEND}\n\
         \x20   option httpchk GET /readyz\n\
         \x20   http-check expect status 200\n\
         \x20   default-server check inter 2s fastinter 250ms downinter 1s rise 1 fall 2\n\
         {blue}{green}",
        admin = config.admin_port,
        bind = config.bind,
        port = config.port,
        blue = server(SLOTS[0]),
        green = server(SLOTS[1]),
    )
}

/// The port the proxy listens on inside its swarm task (published on `deploy.port`).
pub const SWARM_LISTEN: u16 = 8080;

/// `haproxy.cfg` of the swarm target's proxy: no slots to switch, but `servers` server
/// templates filled from `tasks.{service}` by Docker's DNS (127.0.0.11), re-read every
/// second. A task is in that DNS answer only once its health check passed, and leaves it
/// before it is stopped; the proxy's own check on /readyz and the retries on a failed
/// connection cover the second in between.
pub fn render_swarm(service: &str, api_port: u16, servers: u32) -> String {
    format!(
        "# Written by `goodgo deploy --target swarm` (a swarm config); edits are overwritten.\n\
         global\n\
         \x20   maxconn 4096\n\
         \x20   log stdout format raw daemon notice\n\
         \n\
         resolvers docker\n\
         \x20   nameserver dns 127.0.0.11:53\n\
         \x20   resolve_retries 3\n\
         \x20   timeout resolve 1s\n\
         \x20   timeout retry 1s\n\
         \x20   hold valid 1s\n\
         \x20   hold other 1s\n\
         \x20   hold refused 1s\n\
         \x20   hold nx 1s\n\
         \x20   hold timeout 1s\n\
         \x20   hold obsolete 1s\n\
         \x20   accepted_payload_size 8192\n\
         \n\
         defaults\n\
         \x20   mode http\n\
         \x20   log global\n\
         \x20   timeout connect 3s\n\
         \x20   timeout client 60s\n\
         \x20   timeout server 60s\n\
         \x20   timeout http-keep-alive 10s\n\
         \x20   # A request whose connection failed, or that got no answer at all, is sent to\n\
         \x20   # another task again: a task stopping under the update drops nothing.\n\
         \x20   retries 3\n\
         \x20   retry-on conn-failure empty-response\n\
         \x20   option redispatch 1\n\
         \n\
         frontend public\n\
         \x20   bind :{listen}\n\
         \x20   default_backend {BACKEND}\n\
         \n\
         backend {BACKEND}\n\
         \x20   option httpchk GET /readyz\n\
         \x20   http-check expect status 200\n\
         \x20   default-server check inter 1s fastinter 250ms downinter 1s rise 1 fall 2 resolvers docker init-addr none resolve-prefer ipv4\n\
         \x20   server-template task 1-{servers} tasks.{service}:{api_port}\n",
        listen = SWARM_LISTEN,
    )
}

/// One slot as `show stat` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotStat {
    pub slot: String,
    /// UP, DOWN, MAINT, DRAIN, no check, …
    pub status: String,
    /// Requests being served now.
    pub current: u64,
    /// The API port the slot points at.
    pub port: Option<u16>,
    /// Answers so far by class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub answers: [u64; 6],
}

impl SlotStat {
    pub fn total(&self) -> u64 {
        self.answers.iter().sum()
    }

    pub fn errors(&self) -> u64 {
        self.answers[4]
    }
}

/// Parses `show stat`'s CSV into the backend's slots.
pub fn parse_stats(csv: &str) -> Vec<SlotStat> {
    let mut lines = csv.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let names: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let col = |name: &str| names.iter().position(|n| *n == name);
    let (Some(px), Some(sv), Some(status), Some(scur)) =
        (col("pxname"), col("svname"), col("status"), col("scur"))
    else {
        return Vec::new();
    };
    let classes = [
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
    ];
    let class_cols: Vec<Option<usize>> = classes.iter().map(|c| col(c)).collect();
    let addr = col("addr");
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.get(px) == Some(&BACKEND) && f.get(sv).is_some_and(|s| SLOTS.contains(s)))
        .map(|f| {
            let num = |i: Option<usize>| {
                i.and_then(|i| f.get(i))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let mut answers = [0; 6];
            for (a, c) in answers.iter_mut().zip(&class_cols) {
                *a = num(*c);
            }
            SlotStat {
                slot: f[sv].to_string(),
                status: f.get(status).copied().unwrap_or_default().to_string(),
                current: num(Some(scur)),
                port: addr
                    .and_then(|i| f.get(i))
                    .and_then(|a| a.rsplit_once(':'))
                    .and_then(|(_, p)| p.parse().ok()),
                answers,
            }
        })
        .collect()
}

/// A connection to the proxy's runtime API.
#[derive(Debug, Clone, Copy)]
pub struct Runtime {
    pub admin_port: u16,
}

impl Runtime {
    /// Sends one command and returns the whole answer (the API closes after it).
    pub async fn command(&self, command: &str) -> Result<String> {
        let addr = ("127.0.0.1", self.admin_port);
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream.write_all(format!("{command}\n").as_bytes()).await?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .map_err(|_| anyhow::anyhow!("no answer in 5 s"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| {
                format!(
                    "asking the proxy's runtime API (127.0.0.1:{}) `{command}`",
                    self.admin_port
                )
            })?;
        Ok(answer)
    }

    /// A command whose answer must be empty (or a plain acknowledgement).
    async fn act(&self, command: &str) -> Result<()> {
        let answer = self.command(command).await?;
        let answer = answer.trim();
        // HAProxy acknowledges an address change ("… port changed from '9' to '41000' …",
        // or "no need to change the addr, no need to change the port" when it points there
        // already) and answers nothing to a state change; anything else is a refusal.
        if !answer.is_empty()
            && !answer.contains("changed")
            && !answer.contains("no need to change")
        {
            bail!("the proxy refused `{command}`: {answer}");
        }
        Ok(())
    }

    /// Whether the runtime API answers.
    pub async fn answers(&self) -> bool {
        self.command("show info")
            .await
            .is_ok_and(|a| a.contains("Name: HAProxy"))
    }

    pub async fn stats(&self) -> Result<Vec<SlotStat>> {
        Ok(parse_stats(&self.command("show stat").await?))
    }

    pub async fn slot(&self, slot: &str) -> Result<SlotStat> {
        self.stats()
            .await?
            .into_iter()
            .find(|s| s.slot == slot)
            .with_context(|| format!("the proxy has no server `{slot}`"))
    }

    /// Points `slot` at the API on `port` and takes it into service; returns once the
    /// proxy's own check sees it UP (within `deadline`).
    pub async fn enable(&self, slot: &str, port: u16, deadline: Instant) -> Result<()> {
        self.act(&format!(
            "set server {BACKEND}/{slot} addr 127.0.0.1 port {port}"
        ))
        .await?;
        self.act(&format!("set server {BACKEND}/{slot} state ready"))
            .await?;
        loop {
            let stat = self.slot(slot).await?;
            if stat.status.starts_with("UP") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the proxy's health check does not see slot {slot} (port {port}) up: {}",
                    stat.status
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops new requests to `slot` and waits (until `deadline`) for its in-flight ones;
    /// then puts it in maintenance. Returns the requests still in flight at the deadline.
    pub async fn drain(&self, slot: &str, deadline: Instant) -> Result<u64> {
        self.act(&format!("set server {BACKEND}/{slot} state drain"))
            .await?;
        let mut left;
        loop {
            left = self.slot(slot).await?.current;
            if left == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.act(&format!("set server {BACKEND}/{slot} state maint"))
            .await?;
        Ok(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_read_by_column_name() {
        let csv = "# pxname,svname,qcur,scur,status,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,addr\n\
                   public,FRONTEND,,3,OPEN,0,10,0,0,0,0,\n\
                   api,blue,0,2,UP,0,90,0,1,9,0,127.0.0.1:41000\n\
                   api,green,0,0,MAINT,0,0,0,0,0,0,127.0.0.1:9\n\
                   api,BACKEND,0,2,UP,0,90,0,1,9,0,\n";
        let stats = parse_stats(csv);
        assert_eq!(stats.len(), 2);
        assert_eq!(stats[0].slot, "blue");
        assert_eq!(
            (stats[0].current, stats[0].total(), stats[0].errors()),
            (2, 100, 9)
        );
        assert_eq!(stats[1].status, "MAINT");
        assert_eq!((stats[0].port, stats[1].port), (Some(41000), Some(9)));
        assert!(parse_stats("").is_empty());
    }

    #[test]
    fn the_swarm_proxy_resolves_the_tasks_by_dns() {
        let cfg = render_swarm("shop-api", 8080, 10);
        assert!(cfg.contains("nameserver dns 127.0.0.11:53"));
        assert!(cfg.contains("server-template task 1-10 tasks.shop-api:8080\n"));
        assert!(cfg.contains("bind :8080\n"));
        assert!(cfg.contains("resolvers docker init-addr none"));
    }

    #[test]
    fn the_serving_slot_is_enabled_in_the_file() {
        let cfg = render(&ProxyConfig {
            bind: "0.0.0.0".into(),
            port: 8080,
            admin_port: 9999,
            serving: Some(("green".into(), 41000)),
        });
        assert!(cfg.contains("bind 0.0.0.0:8080"));
        assert!(cfg.contains("stats socket ipv4@127.0.0.1:9999 level admin"));
        assert!(cfg.contains("server blue 127.0.0.1:9 disabled\n"));
        assert!(cfg.contains("server green 127.0.0.1:41000\n"));
        assert_eq!(other("blue"), "green");
        assert_eq!(other("green"), "blue");
    }
}
