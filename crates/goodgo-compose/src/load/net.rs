//! How a service meets the network: `ports`, `networks` (with aliases and addresses) and
//! `extra_hosts`.
//!
//! Why its own module: the short and long syntaxes of ports and network attachments are
//! the largest value parsers after mounts, and each checks names against the top-level
//! `networks`.

use super::keys::*;
use super::read::{check_declared, join};
use super::{Defined, Loader, Result};
use crate::model::*;
use crate::syntax;
use crate::yaml::{At, Node, Value};

impl Loader<'_> {
    pub(super) fn port(&mut self, node: &Node, path: &str) -> Result<Vec<Port>> {
        match &node.value {
            Value::Str(spec) => {
                syntax::parse_ports(spec).map_err(|m| self.bad_value(node, format!("{path}: {m}")))
            }
            Value::Map(entries) => {
                let mut target = None;
                let mut published = None;
                let mut host_ip = None;
                let mut protocol = "tcp".to_string();
                for e in entries {
                    let p = join(path, &e.key);
                    let v = &e.value;
                    match e.key.as_str() {
                        "target" => target = Some(self.container_port(v, &p)?),
                        "published" => published = self.published_port(v, &p)?,
                        "host_ip" => host_ip = self.opt_string(v, &p)?,
                        "protocol" => {
                            let t = self.string(v, &p)?;
                            protocol = syntax::protocol(&t)
                                .map_err(|m| self.fail(v.pos, format!("{p}: {m}")))?;
                        }
                        // `host` or `ingress`: a Swarm routing mode; on one engine both
                        // publish the port on the host, so either runs the same.
                        "mode" => {
                            let m = self.string(v, &p)?;
                            if m != "host" && m != "ingress" {
                                return Err(self.fail(
                                    v.pos,
                                    format!("{p}: expected `host` or `ingress`, found `{m}`"),
                                ));
                            }
                        }
                        _ => self.other_key(e, path, PORT_KEYS, PORT_WARN, NO_PAIRS)?,
                    }
                }
                let Some(target) = target else {
                    return Err(self.fail(node.pos, format!("{path}: missing key `target`")));
                };
                Ok(vec![Port {
                    host_ip,
                    published,
                    target,
                    protocol,
                }])
            }
            _ => Err(self.expected(node, path, "a string or number, or a mapping")),
        }
    }

    /// A long-syntax port's `target`: one container port.
    fn container_port(&self, node: &Node, path: &str) -> Result<u16> {
        let t = self.string(node, path)?;
        let ports =
            syntax::parse_ports(&t).map_err(|m| self.bad_value(node, format!("{path}: {m}")))?;
        match ports.as_slice() {
            [one]
                if one.published.is_none()
                    && one.host_ip.is_none()
                    && one.protocol == "tcp"
                    && !t.contains('/') =>
            {
                Ok(one.target)
            }
            _ => Err(self.bad_value(node, format!("{path}: expected a port number, found `{t}`"))),
        }
    }

    /// A long-syntax port's `published`: one host port, if any.
    fn published_port(&self, node: &Node, path: &str) -> Result<Option<u16>> {
        let Some(t) = self.opt_string(node, path)? else {
            return Ok(None);
        };
        match t.parse::<u16>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ if t.contains('-') => Err(self.bad_value(
                node,
                format!("{path}: the published port range `{t}` is not supported by goodgo: give one port"),
            )),
            _ => Err(self.bad_value(
                node,
                format!("{path}: expected a port number from 1 to 65535, found `{t}`"),
            )),
        }
    }

    pub(super) fn service_networks(
        &mut self,
        node: &Node,
        path: &str,
        defined: &Defined,
        s: &mut Service,
    ) -> Result<()> {
        let check = |me: &Self, name: &str, pos: At| -> Result<()> {
            if name == "default" {
                return Ok(());
            }
            check_declared(name, "networks", &defined.networks)
                .map_err(|m| me.fail(pos, format!("{path}: {m}")))
        };
        match &node.value {
            Value::Seq(_) => {
                for (name, pos) in self.strings(node, path, false)? {
                    check(self, &name, pos)?;
                    if !s.networks.contains(&name) {
                        s.networks.push(name);
                    }
                }
            }
            Value::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    check(self, &e.key, e.key_pos)?;
                    let mut attach = NetworkAttachment::default();
                    for a in self.entries(&e.value, &p)? {
                        let ap = join(&p, &a.key);
                        match a.key.as_str() {
                            "aliases" => attach.aliases = self.string_list(&a.value, &ap)?,
                            "ipv4_address" => {
                                attach.ipv4_address = self.opt_string(&a.value, &ap)?
                            }
                            "ipv6_address" => {
                                attach.ipv6_address = self.opt_string(&a.value, &ap)?
                            }
                            _ => {
                                self.other_key(a, &p, NET_ATTACH_KEYS, NET_ATTACH_WARN, NO_PAIRS)?
                            }
                        }
                    }
                    s.networks.push(e.key.clone());
                    if attach != NetworkAttachment::default() {
                        s.network_settings.insert(e.key.clone(), attach);
                    }
                }
            }
            _ => return Err(self.expected(node, path, "a list or a mapping of networks")),
        }
        Ok(())
    }

    pub(super) fn extra_hosts(&self, node: &Node, path: &str) -> Result<Vec<HostEntry>> {
        let mut out = Vec::new();
        match &node.value {
            Value::Seq(_) => {
                for (i, (text, pos)) in self.strings(node, path, false)?.into_iter().enumerate() {
                    let (host, ip) = syntax::parse_host_entry(&text)
                        .map_err(|m| self.fail(pos, format!("{path}[{i}]: {m}")))?;
                    out.push(HostEntry { host, ip });
                }
            }
            Value::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    for (ip, _) in self.strings(&e.value, &p, true)? {
                        out.push(HostEntry {
                            host: e.key.clone(),
                            ip,
                        });
                    }
                }
            }
            _ => return Err(self.expected(node, path, "a list of `host:ip` or a mapping")),
        }
        Ok(out)
    }
}
