//! A service's `volumes` and `tmpfs`: the short (`./src:/app:ro`) and long (`type: bind`)
//! syntaxes to one [`Mount`] each.
//!
//! Why its own module: mounts have the most shapes of any service key, and each decides
//! between a named volume (checked against the top-level `volumes`), a host path (made
//! absolute) and a tmpfs.

use goodgo_yaml::Pos;

use super::keys::*;
use super::read::{check_declared, join};
use super::{Defined, Loader, Result};
use crate::model::*;
use crate::syntax;
use crate::yaml::{Entry, Node, Value};

impl Loader<'_> {
    pub(super) fn named_volume(
        &self,
        name: &str,
        pos: Pos,
        path: &str,
        defined: &Defined,
    ) -> Result<()> {
        check_declared(name, "volumes", &defined.volumes).map_err(|m| {
            self.fail(
                pos,
                format!("{path}: {m}; a host path starts with `/`, `./` or `~`"),
            )
        })
    }

    pub(super) fn mount(&mut self, node: &Node, path: &str, defined: &Defined) -> Result<Mount> {
        match &node.value {
            Value::Str(spec) => {
                let v = syntax::parse_volume(spec)
                    .map_err(|m| self.fail(node.pos, format!("{path}: {m}")))?;
                let mut read_only = false;
                for opt in &v.options {
                    match opt.as_str() {
                        "ro" => read_only = true,
                        "rw" => read_only = false,
                        "z" | "Z" => self.warn(
                            node.pos,
                            format!("{path}: the `{opt}` option is not supported by goodgo and is ignored: the mount is not relabeled for SELinux"),
                        ),
                        "cached" | "delegated" | "consistent" => self.warn(
                            node.pos,
                            format!("{path}: the `{opt}` option is not supported by goodgo and is ignored: mount consistency is a macOS performance hint"),
                        ),
                        "nocopy" => self.warn(
                            node.pos,
                            format!("{path}: the `nocopy` option is not supported by goodgo and is ignored: the volume may be filled from the image on first use"),
                        ),
                        "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => self.warn(
                            node.pos,
                            format!("{path}: the `{opt}` option is not supported by goodgo and is ignored: the mount uses the default propagation"),
                        ),
                        _ => {
                            return Err(self.fail(
                                node.pos,
                                format!("{path}: unknown volume option `{opt}`; expected `ro`, `rw`, `z`, `Z`, `nocopy` or a propagation mode"),
                            ));
                        }
                    }
                }
                match v.source {
                    None => Ok(Mount {
                        kind: MountKind::Volume,
                        source: None,
                        target: v.target,
                        read_only,
                    }),
                    Some(src) if syntax::is_host_path(&src) => Ok(Mount {
                        kind: MountKind::Bind,
                        source: Some(self.host_path(&src, node.pos, path)?),
                        target: v.target,
                        read_only,
                    }),
                    Some(src) => {
                        self.named_volume(&src, node.pos, path, defined)?;
                        Ok(Mount {
                            kind: MountKind::Volume,
                            source: Some(src),
                            target: v.target,
                            read_only,
                        })
                    }
                }
            }
            Value::Map(entries) => self.long_mount(node, entries, path, defined),
            _ => Err(self.expected(node, path, "a string or a mapping")),
        }
    }

    /// A long-syntax mount's `type`.
    fn mount_kind(&self, node: &Node, path: &str) -> Result<MountKind> {
        let t = self.string(node, path)?;
        match t.as_str() {
            "volume" => Ok(MountKind::Volume),
            "bind" => Ok(MountKind::Bind),
            "tmpfs" => Ok(MountKind::Tmpfs),
            "npipe" | "cluster" | "image" => Err(self.fail(
                node.pos,
                format!("`{path}: {t}` is not supported by goodgo: ignoring it would change what runs (the mount would be missing)"),
            )),
            _ => Err(self.fail(
                node.pos,
                format!("{path}: unknown mount type `{t}`; expected `volume`, `bind` or `tmpfs`"),
            )),
        }
    }

    pub(super) fn long_mount(
        &mut self,
        node: &Node,
        entries: &[Entry],
        path: &str,
        defined: &Defined,
    ) -> Result<Mount> {
        let mut kind = None;
        let mut source: Option<(String, Pos)> = None;
        let mut target = None;
        let mut read_only = false;
        for e in entries {
            let p = join(path, &e.key);
            let v = &e.value;
            match e.key.as_str() {
                "type" => kind = Some(self.mount_kind(v, &p)?),
                "source" => source = self.opt_string(v, &p)?.map(|s| (s, v.pos)),
                "target" => {
                    let t = self.string(v, &p)?;
                    if !t.starts_with('/') {
                        return Err(self.fail(
                            v.pos,
                            format!("{p}: `{t}` must be an absolute path in the container"),
                        ));
                    }
                    target = Some(t);
                }
                "read_only" => read_only = self.boolean(v, &p)?,
                "bind" => {
                    for b in self.entries(v, &p)? {
                        let bp = join(&p, &b.key);
                        match b.key.as_str() {
                            // Creating a missing host folder is the engine's default; `false`
                            // only turns that into an error.
                            "create_host_path" => {
                                self.boolean(&b.value, &bp)?;
                            }
                            _ => self.other_key(b, &p, BIND_KEYS, BIND_WARN, NO_PAIRS)?,
                        }
                    }
                }
                "volume" => {
                    for b in self.entries(v, &p)? {
                        self.other_key(b, &p, &[], VOLUME_OPT_WARN, VOLUME_OPT_REFUSE)?;
                    }
                }
                "tmpfs" => {
                    for b in self.entries(v, &p)? {
                        self.other_key(b, &p, &[], TMPFS_WARN, NO_PAIRS)?;
                    }
                }
                _ => self.other_key(e, path, MOUNT_KEYS, MOUNT_WARN, NO_PAIRS)?,
            }
        }
        let Some(kind) = kind else {
            return Err(self.fail(
                node.pos,
                format!("{path}: missing key `type` (`volume`, `bind` or `tmpfs`)"),
            ));
        };
        let Some(target) = target else {
            return Err(self.fail(node.pos, format!("{path}: missing key `target`")));
        };
        let source = match (kind, source) {
            (MountKind::Volume, Some((s, pos))) => {
                self.named_volume(&s, pos, &join(path, "source"), defined)?;
                Some(s)
            }
            (MountKind::Volume, None) => None,
            (MountKind::Bind, Some((s, pos))) => {
                Some(self.host_path(&s, pos, &join(path, "source"))?)
            }
            (MountKind::Bind, None) => {
                return Err(self.fail(node.pos, format!("{path}: a bind mount needs `source`")));
            }
            (MountKind::Tmpfs, Some((_, pos))) => {
                return Err(self.fail(pos, format!("{path}.source: a tmpfs mount has no source")));
            }
            (MountKind::Tmpfs, None) => None,
        };
        Ok(Mount {
            kind,
            source,
            target,
            read_only,
        })
    }

    pub(super) fn tmpfs_entry(&mut self, spec: &str, pos: Pos, path: &str) -> Result<Mount> {
        let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
        if !target.starts_with('/') {
            return Err(self.fail(
                pos,
                format!("{path}: `{target}` must be an absolute path in the container"),
            ));
        }
        if !options.is_empty() {
            self.warn(
                pos,
                format!("{path}: the tmpfs options `{options}` are not supported by goodgo and are ignored: the tmpfs keeps the default size and mode"),
            );
        }
        Ok(Mount {
            kind: MountKind::Tmpfs,
            source: None,
            target: target.to_string(),
            read_only: false,
        })
    }
}
