//! The top-level `volumes`, `networks` and `secrets` definitions, and a service's
//! references to secrets.
//!
//! Why its own module: these are the named resources services refer to; they are read
//! before the services, and a secret goodgo cannot provide (`environment`, `external`) is
//! an error only when a service uses it.

use std::collections::BTreeMap;

use goodgo_yaml::did_you_mean;

use super::keys::*;
use super::read::{join, normalize};
use super::{Defined, Loader, OddSecret, Result};
use crate::model::*;
use crate::yaml::{Node, Value};

impl Loader<'_> {
    pub(super) fn secret_ref(
        &mut self,
        node: &Node,
        path: &str,
        defined: &Defined,
    ) -> Result<SecretRef> {
        let (r, pos) = match &node.value {
            Value::Str(name) => (
                SecretRef {
                    source: name.clone(),
                    target: None,
                },
                node.pos,
            ),
            Value::Map(entries) => {
                let mut source = None;
                let mut target = None;
                for e in entries {
                    let p = join(path, &e.key);
                    match e.key.as_str() {
                        "source" => source = Some((self.string(&e.value, &p)?, e.value.pos)),
                        "target" => target = self.opt_string(&e.value, &p)?,
                        _ => self.other_key(e, path, SECRET_REF_KEYS, SECRET_REF_WARN, NO_PAIRS)?,
                    }
                }
                let Some((source, pos)) = source else {
                    return Err(self.fail(node.pos, format!("{path}: missing key `source`")));
                };
                (SecretRef { source, target }, pos)
            }
            _ => return Err(self.expected(node, path, "a secret name or a mapping")),
        };
        if !defined.secrets.contains(&r.source) {
            let hint = did_you_mean(&r.source, defined.secrets.iter().map(String::as_str))
                .map(|b| format!(" (did you mean `{b}`?)"))
                .unwrap_or_default();
            return Err(self.fail(
                pos,
                format!(
                    "{path}: the secret `{}` is not declared under the top-level `secrets`{hint}",
                    r.source
                ),
            ));
        }
        if let Some(odd) = self.odd_secrets.get_mut(&r.source) {
            odd.used = true;
            let key = odd.key;
            let why = if key == "external" {
                "an external secret lives in a Swarm cluster"
            } else {
                "a secret from `environment` is not written to a file"
            };
            return Err(self.fail(
                pos,
                format!(
                    "{path}: the secret `{}` uses `secrets.{}.{key}`, which goodgo does not support ({why}): ignoring it would change what runs (the service would lack {}); use `file:` instead, or run this file with `docker compose`",
                    r.source,
                    r.source,
                    r.mount_path()
                ),
            ));
        }
        Ok(r)
    }

    /// `external: true`, or the legacy `external: {name: x}`.
    pub(super) fn external(
        &mut self,
        node: &Node,
        path: &str,
        name: &mut Option<String>,
    ) -> Result<bool> {
        match &node.value {
            Value::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    match e.key.as_str() {
                        "name" => *name = self.opt_string(&e.value, &p)?,
                        _ => self.other_key(e, path, &["name"], NO_PAIRS, NO_PAIRS)?,
                    }
                }
                Ok(true)
            }
            Value::Null => Ok(false),
            _ => self.boolean(node, path),
        }
    }

    pub(super) fn volume_defs(&mut self, node: &Node) -> Result<BTreeMap<String, VolumeDef>> {
        let mut out = BTreeMap::new();
        for v in self.entries(node, "volumes")? {
            let path = format!("volumes.{}", v.key);
            let mut d = VolumeDef::default();
            let mut external_name = None;
            for e in self.entries(&v.value, &path)? {
                let p = join(&path, &e.key);
                match e.key.as_str() {
                    "driver" => d.driver = self.opt_string(&e.value, &p)?,
                    "driver_opts" => d.driver_opts = self.string_map(&e.value, &p)?,
                    "external" => d.external = self.external(&e.value, &p, &mut external_name)?,
                    "name" => d.name = self.opt_string(&e.value, &p)?,
                    "labels" => d.labels = self.string_map(&e.value, &p)?,
                    _ => self.other_key(e, &path, VOLUME_DEF_KEYS, NO_PAIRS, NO_PAIRS)?,
                }
            }
            d.name = d.name.or(external_name);
            out.insert(v.key.clone(), d);
        }
        Ok(out)
    }

    pub(super) fn network_defs(&mut self, node: &Node) -> Result<BTreeMap<String, NetworkDef>> {
        let mut out = BTreeMap::new();
        for n in self.entries(node, "networks")? {
            let path = format!("networks.{}", n.key);
            let mut d = NetworkDef::default();
            let mut external_name = None;
            for e in self.entries(&n.value, &path)? {
                let p = join(&path, &e.key);
                let v = &e.value;
                match e.key.as_str() {
                    "driver" => d.driver = self.opt_string(v, &p)?,
                    "driver_opts" => d.driver_opts = self.string_map(v, &p)?,
                    "external" => d.external = self.external(v, &p, &mut external_name)?,
                    "name" => d.name = self.opt_string(v, &p)?,
                    "labels" => d.labels = self.string_map(v, &p)?,
                    "internal" => {
                        d.internal = !matches!(v.value, Value::Null) && self.boolean(v, &p)?
                    }
                    "attachable" => {
                        d.attachable = !matches!(v.value, Value::Null) && self.boolean(v, &p)?
                    }
                    "enable_ipv6" => {
                        d.enable_ipv6 = match v.value {
                            Value::Null => None,
                            _ => Some(self.boolean(v, &p)?),
                        }
                    }
                    "ipam" => d.ipam = Some(self.ipam(v, &p)?),
                    _ => self.other_key(e, &path, NETWORK_DEF_KEYS, NETWORK_DEF_WARN, NO_PAIRS)?,
                }
            }
            d.name = d.name.or(external_name);
            out.insert(n.key.clone(), d);
        }
        Ok(out)
    }

    pub(super) fn ipam(&mut self, node: &Node, path: &str) -> Result<Ipam> {
        let mut ipam = Ipam::default();
        for e in self.entries(node, path)? {
            let p = join(path, &e.key);
            match e.key.as_str() {
                "driver" => ipam.driver = self.opt_string(&e.value, &p)?,
                "options" => ipam.options = self.string_map(&e.value, &p)?,
                "config" => {
                    for (i, item) in self.items(&e.value, &p)?.iter().enumerate() {
                        let ip = format!("{p}[{i}]");
                        let mut pool = IpamPool::default();
                        for c in self.entries(item, &ip)? {
                            let cp = join(&ip, &c.key);
                            match c.key.as_str() {
                                "subnet" => pool.subnet = self.opt_string(&c.value, &cp)?,
                                "ip_range" => pool.ip_range = self.opt_string(&c.value, &cp)?,
                                "gateway" => pool.gateway = self.opt_string(&c.value, &cp)?,
                                "aux_addresses" => {
                                    pool.aux_addresses = self.string_map(&c.value, &cp)?
                                }
                                _ => self.other_key(c, &ip, IPAM_POOL_KEYS, NO_PAIRS, NO_PAIRS)?,
                            }
                        }
                        ipam.config.push(pool);
                    }
                }
                _ => self.other_key(e, path, IPAM_KEYS, NO_PAIRS, NO_PAIRS)?,
            }
        }
        Ok(ipam)
    }

    pub(super) fn secret_defs(&mut self, node: &Node) -> Result<BTreeMap<String, SecretDef>> {
        let mut out = BTreeMap::new();
        for s in self.entries(node, "secrets")? {
            let path = format!("secrets.{}", s.key);
            let mut d = SecretDef::default();
            let mut external_name = None;
            for e in self.entries(&s.value, &path)? {
                let p = join(&path, &e.key);
                let v = &e.value;
                match e.key.as_str() {
                    "file" => {
                        d.file = self
                            .opt_string(v, &p)?
                            .map(|f| normalize(&self.dir.join(f)));
                    }
                    "environment" => d.environment = self.opt_string(v, &p)?,
                    "external" => d.external = self.external(v, &p, &mut external_name)?,
                    "name" => d.name = self.opt_string(v, &p)?,
                    _ => self.other_key(e, &path, SECRET_DEF_KEYS, SECRET_DEF_WARN, NO_PAIRS)?,
                }
            }
            d.name = d.name.or(external_name);
            if d.file.is_none() && d.environment.is_none() && !d.external {
                return Err(self.fail(
                    s.key_pos,
                    format!("{path}: a secret needs `file`, `environment` or `external: true`"),
                ));
            }
            if d.file.is_none() {
                let key = if d.external {
                    "external"
                } else {
                    "environment"
                };
                let pos = self
                    .entries(&s.value, &path)?
                    .iter()
                    .find(|e| e.key == key)
                    .map_or(s.key_pos, |e| e.key_pos);
                self.odd_secrets.insert(
                    s.key.clone(),
                    OddSecret {
                        pos,
                        key,
                        used: false,
                    },
                );
            }
            out.insert(s.key.clone(), d);
        }
        Ok(out)
    }
}
