//! The top-level `volumes` and `networks` definitions, and the reading all top-level
//! definitions share (`external`, `name`).
//!
//! Why its own module: these are the named resources services refer to, read before the
//! services; secrets and configs, which are files, are `objects`'.

use std::collections::BTreeMap;

use super::keys::*;
use super::read::join;
use super::{Loader, Result};
use crate::model::*;
use crate::yaml::{Entry, Node, Value};

impl Loader<'_> {
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

    /// Reads the definitions under a top-level `section` (`volumes`, `networks` or
    /// `secrets`): `external` and `name` here (the legacy `external: {name: x}` names a
    /// definition when `name` does not), its other keys with `key` (given the definition's
    /// path and the key's), then `check` on the whole definition.
    pub(super) fn definitions<T: Definition>(
        &mut self,
        node: &Node,
        section: &str,
        key: fn(&mut Self, &mut T, &Entry, &str, &str) -> Result<()>,
        check: fn(&mut Self, &Entry, &str, &T) -> Result<()>,
    ) -> Result<BTreeMap<String, T>> {
        let mut out = BTreeMap::new();
        for def in self.entries(node, section)? {
            let path = format!("{section}.{}", def.key);
            let mut d = T::default();
            let mut external_name = None;
            for e in self.entries(&def.value, &path)? {
                let p = join(&path, &e.key);
                match e.key.as_str() {
                    "external" => {
                        *d.external_and_name().0 =
                            self.external(&e.value, &p, &mut external_name)?;
                    }
                    "name" => *d.external_and_name().1 = self.opt_string(&e.value, &p)?,
                    _ => key(self, &mut d, e, &path, &p)?,
                }
            }
            let name = d.external_and_name().1;
            *name = name.take().or(external_name);
            check(self, def, &path, &d)?;
            out.insert(def.key.clone(), d);
        }
        Ok(out)
    }

    /// `driver`, `driver_opts` and `labels`, which volumes and networks share; `false` for
    /// another key.
    fn driver_key(
        &self,
        e: &Entry,
        path: &str,
        driver: &mut Option<String>,
        opts: &mut BTreeMap<String, String>,
        labels: &mut BTreeMap<String, String>,
    ) -> Result<bool> {
        match e.key.as_str() {
            "driver" => *driver = self.opt_string(&e.value, path)?,
            "driver_opts" => *opts = self.string_map(&e.value, path)?,
            "labels" => *labels = self.string_map(&e.value, path)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub(super) fn volume_defs(&mut self, node: &Node) -> Result<BTreeMap<String, VolumeDef>> {
        self.definitions(node, "volumes", Self::volume_key, |_, _, _, _| Ok(()))
    }

    fn volume_key(&mut self, d: &mut VolumeDef, e: &Entry, path: &str, p: &str) -> Result<()> {
        if !self.driver_key(e, p, &mut d.driver, &mut d.driver_opts, &mut d.labels)? {
            self.other_key(e, path, VOLUME_DEF_KEYS, NO_PAIRS, NO_PAIRS)?;
        }
        Ok(())
    }

    pub(super) fn network_defs(&mut self, node: &Node) -> Result<BTreeMap<String, NetworkDef>> {
        self.definitions(node, "networks", Self::network_key, |_, _, _, _| Ok(()))
    }

    fn network_key(&mut self, d: &mut NetworkDef, e: &Entry, path: &str, p: &str) -> Result<()> {
        if self.driver_key(e, p, &mut d.driver, &mut d.driver_opts, &mut d.labels)? {
            return Ok(());
        }
        let v = &e.value;
        match e.key.as_str() {
            "internal" => d.internal = !matches!(v.value, Value::Null) && self.boolean(v, p)?,
            "attachable" => d.attachable = !matches!(v.value, Value::Null) && self.boolean(v, p)?,
            "enable_ipv6" => {
                d.enable_ipv6 = match v.value {
                    Value::Null => None,
                    _ => Some(self.boolean(v, p)?),
                }
            }
            "ipam" => d.ipam = Some(self.ipam(v, p)?),
            _ => self.other_key(e, path, NETWORK_DEF_KEYS, NETWORK_DEF_WARN, NO_PAIRS)?,
        }
        Ok(())
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
}

/// A top-level definition (a volume, network, secret or config): it has `external` and
/// `name`.
pub(super) trait Definition: Default {
    fn external_and_name(&mut self) -> (&mut bool, &mut Option<String>);
}

macro_rules! definition {
    ($($kind:ty),*) => {$(
        impl Definition for $kind {
            fn external_and_name(&mut self) -> (&mut bool, &mut Option<String>) {
                (&mut self.external, &mut self.name)
            }
        }
    )*};
}

definition!(VolumeDef, NetworkDef, FileObjectDef);
