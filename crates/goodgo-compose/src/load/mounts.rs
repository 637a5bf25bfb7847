//! A service's `volumes` and `tmpfs`: the short (`./src:/app:ro`) and long (`type: bind`)
//! syntaxes to one [`Mount`] each.
//!
//! Why its own module: mounts have the most shapes of any service key, and each decides
//! between a named volume (checked against the top-level `volumes`), a host path (made
//! absolute) and a tmpfs.

use super::keys::*;
use super::read::{check_declared, join};
use super::{Defined, Loader, Result};
use crate::model::*;
use crate::syntax;
use crate::yaml::{At, Entry, Node, Value};

impl Loader<'_> {
    pub(super) fn named_volume(
        &self,
        name: &str,
        pos: At,
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
                    .map_err(|m| self.bad_value(node, format!("{path}: {m}")))?;
                let mut read_only = false;
                let mut options = MountOptions::default();
                for opt in &v.options {
                    match opt.as_str() {
                        "ro" => read_only = true,
                        "rw" => read_only = false,
                        "nocopy" => options.nocopy = true,
                        "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                            options.propagation = Some(opt.clone());
                        }
                        "z" | "Z" => options.selinux = Some(opt.clone()),
                        "cached" | "delegated" | "consistent" => self.warn(
                            node.pos,
                            format!("{path}: the `{opt}` option is not supported by goodgo and is ignored: mount consistency is a macOS performance hint"),
                        ),
                        _ => {
                            return Err(self.fail(
                                node.pos,
                                format!("{path}: unknown volume option `{opt}`; expected `ro`, `rw`, `z`, `Z`, `nocopy` or a propagation mode"),
                            ));
                        }
                    }
                }
                let (kind, source) = match v.source {
                    None => (MountKind::Volume, None),
                    Some(src) if syntax::is_host_path(&src) => {
                        (MountKind::Bind, Some(self.host_path(&src, node.pos, path)?))
                    }
                    Some(src) => {
                        self.named_volume(&src, node.pos, path, defined)?;
                        (MountKind::Volume, Some(src))
                    }
                };
                let misplaced = match kind {
                    MountKind::Bind => options.nocopy.then_some("nocopy"),
                    _ => options
                        .propagation
                        .as_deref()
                        .or(options.selinux.as_deref()),
                };
                if let Some(opt) = misplaced {
                    return Err(self.fail(
                        node.pos,
                        format!(
                            "{path}: the `{opt}` option applies to {} only",
                            if opt == "nocopy" {
                                "volumes"
                            } else {
                                "bind mounts"
                            }
                        ),
                    ));
                }
                Ok(Mount {
                    kind,
                    source,
                    target: v.target,
                    read_only,
                    options,
                })
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
        let mut source: Option<(String, At)> = None;
        let mut target = None;
        let mut read_only = false;
        let mut options = MountOptions::default();
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
                            "propagation" => {
                                let mode = self.string(&b.value, &bp)?;
                                let modes = [
                                    "shared", "rshared", "slave", "rslave", "private", "rprivate",
                                ];
                                if !modes.contains(&mode.as_str()) {
                                    return Err(self.bad_value(
                                        &b.value,
                                        format!("{bp}: unknown propagation `{mode}`; expected one of {}", modes.join(", ")),
                                    ));
                                }
                                options.propagation = Some(mode);
                            }
                            "selinux" => {
                                let label = self.string(&b.value, &bp)?;
                                if label != "z" && label != "Z" {
                                    return Err(self.bad_value(
                                        &b.value,
                                        format!("{bp}: unknown SELinux relabeling `{label}`; expected `z` (shared) or `Z` (private)"),
                                    ));
                                }
                                options.selinux = Some(label);
                            }
                            _ => self.other_key(b, &p, BIND_KEYS, NO_PAIRS, NO_PAIRS)?,
                        }
                    }
                }
                "volume" => {
                    for b in self.entries(v, &p)? {
                        match b.key.as_str() {
                            "nocopy" => {
                                options.nocopy = self.boolean(&b.value, &join(&p, "nocopy"))?
                            }
                            _ => {
                                self.other_key(b, &p, VOLUME_OPT_KEYS, NO_PAIRS, VOLUME_OPT_REFUSE)?
                            }
                        }
                    }
                }
                "tmpfs" => {
                    for b in self.entries(v, &p)? {
                        let bp = join(&p, &b.key);
                        match b.key.as_str() {
                            "size" => options.tmpfs_size = Some(self.bytes(&b.value, &bp)?),
                            "mode" => options.tmpfs_mode = Some(self.file_mode(&b.value, &bp)?),
                            _ => self.other_key(b, &p, TMPFS_KEYS, NO_PAIRS, NO_PAIRS)?,
                        }
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
            options,
        })
    }

    /// A file mode, octal as Compose files write it (`1777`, `0644`).
    fn file_mode(&self, node: &Node, path: &str) -> Result<u32> {
        let text = self.string(node, path)?;
        u32::from_str_radix(text.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| {
                self.bad_value(
                    node,
                    format!("{path}: expected an octal file mode like `1777`, found `{text}`"),
                )
            })
    }

    /// A `tmpfs` entry: `/path[:size=64m,mode=1777,…]`; the size and mode are applied,
    /// other options warn.
    pub(super) fn tmpfs_entry(&mut self, node: &Node, spec: &str, path: &str) -> Result<Mount> {
        let pos = node.pos;
        let (target, written) = spec.split_once(':').unwrap_or((spec, ""));
        if !target.starts_with('/') {
            return Err(self.bad_value(
                node,
                format!("{path}: `{target}` must be an absolute path in the container"),
            ));
        }
        let mut options = MountOptions::default();
        let mut ignored = Vec::new();
        for opt in written.split(',').filter(|o| !o.is_empty()) {
            match opt.split_once('=') {
                Some(("size", size)) => {
                    let bytes = crate::values::parse_bytes(size)
                        .map_err(|m| self.bad_value(node, format!("{path}: {m}")))?;
                    options.tmpfs_size = Some(bytes);
                }
                Some(("mode", mode)) => {
                    let m = u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777);
                    options.tmpfs_mode = Some(m.ok_or_else(|| {
                        self.bad_value(
                            node,
                            format!(
                                "{path}: expected an octal file mode like `1777`, found `{mode}`"
                            ),
                        )
                    })?);
                }
                _ => ignored.push(opt),
            }
        }
        if !ignored.is_empty() {
            self.warn(
                pos,
                format!("{path}: the tmpfs options `{}` are not supported by goodgo and are ignored: only `size` and `mode` are applied", ignored.join(",")),
            );
        }
        Ok(Mount {
            kind: MountKind::Tmpfs,
            source: None,
            target: target.to_string(),
            read_only: false,
            options,
        })
    }
}
