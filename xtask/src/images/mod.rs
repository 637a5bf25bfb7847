//! `cargo xtask images`: builds the Docker images the services run on, without a registry.
//!
//! Machines that build goodgo may reach the Debian package mirror but no image registry,
//! so `FROM debian` cannot be pulled. Instead, `goodgo/base:bookworm` is a Debian root
//! filesystem made by `mmdebstrap` (with PostgreSQL 15 and Redis already installed) and
//! loaded with `docker import`; `goodgo/postgres:15` and `goodgo/redis:7` are then built
//! from `compose/images/*/Dockerfile` on top of it, with no `apt-get` in any Dockerfile.
//! `goodgo/proxy-base:bookworm` is a second, small root filesystem with only HAProxy, under
//! `goodgo/proxy:2.6`, the reverse proxy of `goodgo deploy` (`compose/images/proxy`).
//!
//! The mirror comes from this machine's apt sources at run time, so no package host is
//! written in the repository. Each image carries a label with a hash of its recipe; an image
//! whose label matches is left alone, so a second run costs a few `docker image inspect`s.
//! The apt sources are read and rewritten in [`sources`].

mod sources;

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Output};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use xshell::{Cmd, Shell, cmd};

use crate::provision::{on_path, privileged};
use sources::{debian_sources, render_sources};

/// The image label holding the recipe hash.
const HASH_LABEL: &str = "org.goodgo.images.hash";

/// The Debian release the images are built from (`postgresql-15` is bookworm's PostgreSQL).
const SUITE: &str = "bookworm";

const BASE_TAG: &str = "goodgo/base:bookworm";

/// What mmdebstrap installs beyond the minimal base (`--variant=minbase`).
const PACKAGES: &[&str] = &["postgresql-15", "redis-server", "ca-certificates", "procps"];

/// Files dpkg does not unpack: documentation, translations, and PostgreSQL's JIT (LLVM and
/// Z3 are about 130 MB; without `llvmjit.so` PostgreSQL silently runs without JIT).
const DPKG_OPTIONS: &[&str] = &[
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/i18n/charmaps/*",
    "path-exclude=/usr/share/i18n/locales/*",
    "path-exclude=/usr/lib/postgresql/15/lib/bitcode/*",
    "path-exclude=/usr/lib/postgresql/15/lib/llvmjit*",
    "path-exclude=/usr/lib/*/libLLVM-*",
    "path-exclude=/usr/lib/*/libz3.so*",
];

/// Run in the finished root filesystem: the cluster Debian's postinst creates is dropped
/// (the postgres image's entrypoint makes its own in `$PGDATA`).
const CUSTOMIZE_HOOK: &str =
    r#"rm -rf "$1/var/lib/postgresql/15" "$1/etc/postgresql/15" "$1/run/adduser""#;

/// `docker import --change` instructions for the base image.
const IMPORT_CHANGES: &[&str] = &[
    "ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    r#"CMD ["bash"]"#,
];

/// A Debian root filesystem made by mmdebstrap and loaded with `docker import`.
struct Rootfs {
    tag: &'static str,
    /// The first part of its recipe hash (the base's is unchanged since its first version,
    /// so existing images stay current).
    recipe: &'static str,
    packages: &'static [&'static str],
    hook: &'static str,
    changes: &'static [&'static str],
}

const BASE: Rootfs = Rootfs {
    tag: BASE_TAG,
    recipe: "goodgo base image, recipe 1",
    packages: PACKAGES,
    hook: CUSTOMIZE_HOOK,
    changes: IMPORT_CHANGES,
};

/// HAProxy alone: the proxy needs none of the base's PostgreSQL and Redis.
const PROXY_BASE: Rootfs = Rootfs {
    tag: "goodgo/proxy-base:bookworm",
    recipe: "goodgo proxy base image, recipe 1",
    packages: &["haproxy", "ca-certificates"],
    hook: r#"rm -rf "$1/run/adduser""#,
    changes: &[
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        r#"CMD ["bash"]"#,
    ],
};

const ROOTFS: &[&Rootfs] = &[&BASE, &PROXY_BASE];

/// An image built by `docker build` from a folder of the repository, on a root filesystem.
struct Derived {
    tag: &'static str,
    dir: &'static str,
    from: &'static Rootfs,
}

const DERIVED: &[Derived] = &[
    Derived {
        tag: "goodgo/postgres:15",
        dir: "compose/images/postgres",
        from: &BASE,
    },
    Derived {
        tag: "goodgo/redis:7",
        dir: "compose/images/redis",
        from: &BASE,
    },
    Derived {
        tag: "goodgo/proxy:2.6",
        dir: "compose/images/proxy",
        from: &PROXY_BASE,
    },
];

/// `cargo xtask images [--force]`.
pub fn run(force: bool) -> Result<ExitCode> {
    if !docker_answers() {
        bail!(
            "the Docker engine does not answer (`docker info` failed): start it, or check that \
             this user may use its socket"
        );
    }
    build_all(force)?;
    Ok(ExitCode::SUCCESS)
}

/// Builds whatever image is missing or stale; for `cargo xtask test`. Does nothing (and says
/// so) when there is no Docker engine, like the Docker tests themselves.
pub fn ensure() -> Result<()> {
    if !docker_answers() {
        eprintln!("SKIPPED images: the Docker engine does not answer (`docker info`)");
        return Ok(());
    }
    build_all(false)
}

/// Whether the Docker engine answers `docker info`.
pub fn docker_answers() -> bool {
    let format = "{{.ServerVersion}}";
    Shell::new().is_ok_and(|sh| {
        cmd!(sh, "docker info --format {format}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
    })
}

fn build_all(force: bool) -> Result<()> {
    let started = Instant::now();
    let root = crate::root();
    // Images replaced by this run, removed at the end: children first, then the old base.
    let mut replaced = Vec::new();

    // Each root filesystem: its recipe hash, and whether it was built now.
    let mut roots: Vec<(&str, String, bool)> = Vec::new();
    for rootfs in ROOTFS {
        let hash = rootfs_hash(rootfs);
        let tag = rootfs.tag;
        let built = if !force && label(tag).as_deref() == Some(hash.as_str()) {
            eprintln!("{tag}: current, skipped");
            false
        } else {
            let old = image_id(tag);
            let t = Instant::now();
            build_base(rootfs, &hash).with_context(|| format!("building {tag}"))?;
            eprintln!("{tag}: built in {:.1?}, {}", t.elapsed(), size(tag));
            replaced.extend(old);
            true
        };
        roots.push((tag, hash, built));
    }

    // What to build, then built side by side: the classic builder spends about a second on
    // every Dockerfile instruction, so two builds at once halve the wait.
    let mut todo = Vec::new();
    for image in DERIVED {
        let dir = root.join(image.dir);
        let (base_hash, base_built) = roots
            .iter()
            .find(|(tag, _, _)| *tag == image.from.tag)
            .map(|(_, hash, built)| (hash.clone(), *built))
            .ok_or_else(|| anyhow!("{} is built on an unknown image", image.tag))?;
        let hash = derived_hash(&base_hash, image, &dir)?;
        if !force && !base_built && label(image.tag).as_deref() == Some(hash.as_str()) {
            eprintln!("{}: current, skipped", image.tag);
        } else {
            eprintln!("{}: building from {}", image.tag, image.dir);
            todo.push((image, dir, hash));
        }
    }
    for (image, _, _) in &todo {
        if let Some(id) = image_id(image.tag) {
            replaced.insert(0, id);
        }
    }
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let builds: Vec<_> = todo
            .iter()
            .map(|(image, dir, hash)| {
                scope.spawn(move || {
                    let t = Instant::now();
                    docker_build(image.tag, hash, dir, force)?;
                    eprintln!(
                        "{}: built in {:.1?}, {}",
                        image.tag,
                        t.elapsed(),
                        size(image.tag)
                    );
                    Ok(())
                })
            })
            .collect();
        builds
            .into_iter()
            .map(|b| {
                b.join()
                    .unwrap_or_else(|_| Err(anyhow!("a build thread panicked")))
            })
            .collect()
    });
    // On failure the replaced images stay: the old postgres or redis may still be tagged.
    results.into_iter().collect::<Result<()>>()?;
    remove_replaced(&replaced);

    eprintln!(
        "images ready in {:.1?}: {}",
        started.elapsed(),
        ROOTFS
            .iter()
            .map(|r| r.tag)
            .chain(DERIVED.iter().map(|d| d.tag))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// A root filesystem image: mmdebstrap into a tarball, then `docker import`.
fn build_base(rootfs: &Rootfs, hash: &str) -> Result<()> {
    let tag = rootfs.tag;
    let packages = rootfs.packages;
    let sources = debian_sources()?;
    ensure_mmdebstrap()?;

    let tmp = TempDir::new()?;
    let sources_file = tmp.0.join("goodgo.sources");
    std::fs::write(&sources_file, render_sources(&sources))
        .with_context(|| format!("writing {}", sources_file.display()))?;
    let tarball = tmp.0.join("base.tar");

    let mirrors: Vec<&str> = sources
        .iter()
        .flat_map(|s| s.uris.iter())
        .map(String::as_str)
        .collect();
    eprintln!(
        "{tag}: building with mmdebstrap (Debian {SUITE} from {}; {}): about a minute",
        mirrors.join(", "),
        packages.join(" ")
    );
    let t = Instant::now();
    let sh = Shell::new()?;
    let include = format!("--include={}", packages.join(","));
    let dpkg = DPKG_OPTIONS.iter().map(|o| format!("--dpkgopt={o}"));
    let hook = format!("--customize-hook={}", rootfs.hook);
    let out = output(
        privileged(&sh, "mmdebstrap")
            .arg("--variant=minbase")
            .arg(include)
            .args(dpkg)
            .arg("--aptopt=Acquire::Retries \"3\"")
            .arg(hook)
            .arg(SUITE)
            .arg(&tarball)
            .arg(&sources_file),
    )?;
    if !out.status.success() {
        bail!(
            "mmdebstrap failed ({}):\n{}",
            out.status,
            tail(&out.stderr, 40)
        );
    }
    let tar_size = std::fs::metadata(&tarball)
        .with_context(|| format!("mmdebstrap wrote no {}", tarball.display()))?
        .len();
    eprintln!(
        "{tag}: root filesystem in {:.1?} ({} MB tarball), importing",
        t.elapsed(),
        tar_size / 1_000_000
    );

    let changes = rootfs
        .changes
        .iter()
        .map(|c| c.to_string())
        .chain([format!("LABEL {HASH_LABEL}={hash}")])
        .flat_map(|c| ["--change".to_string(), c]);
    let message = format!("{tag}: mmdebstrap {SUITE} minbase + {}", packages.join(" "));
    let out = output(cmd!(
        sh,
        "docker import {changes...} --message {message} {tarball} {tag}"
    ))?;
    if !out.status.success() {
        bail!(
            "docker import failed ({}):\n{}",
            out.status,
            tail(&out.stderr, 20)
        );
    }
    Ok(())
}

/// `docker build` of `dir`; `no_cache` for `--force` (otherwise the build cache would hand
/// back the very same image).
fn docker_build(tag: &str, hash: &str, dir: &Path, no_cache: bool) -> Result<()> {
    if !dir.join("Dockerfile").is_file() {
        bail!("{} is missing", dir.join("Dockerfile").display());
    }
    let sh = Shell::new()?;
    let label = format!("{HASH_LABEL}={hash}");
    let no_cache = no_cache.then_some("--no-cache");
    let out = output(cmd!(
        sh,
        "docker build --label {label} --tag {tag} {no_cache...} {dir}"
    ))?;
    if !out.status.success() {
        let mut text = out.stdout.clone();
        text.extend_from_slice(&out.stderr);
        bail!(
            "docker build of {tag} failed ({}):\n{}",
            out.status,
            tail(&text, 40)
        );
    }
    Ok(())
}

/// Removes the images this run replaced (untagged by now). Removing an old postgres or
/// redis image also removes its untagged parents, usually the old base with them; an image
/// a container still uses stays, and a note says why.
fn remove_replaced(ids: &[String]) {
    let current: Vec<String> = ROOTFS
        .iter()
        .map(|r| r.tag)
        .chain(DERIVED.iter().map(|d| d.tag))
        .filter_map(image_id)
        .collect();
    let mut removed = 0;
    for id in ids.iter().filter(|id| !current.contains(id)) {
        if inspect(id, "{{.Id}}").is_none() {
            // Gone already, with a child removed before it.
            removed += 1;
            continue;
        }
        let short = id.trim_start_matches("sha256:").get(..12).unwrap_or(id);
        let rm = Shell::new()
            .map_err(anyhow::Error::from)
            .and_then(|sh| output(cmd!(sh, "docker image rm {id}")));
        match rm {
            Ok(out) if out.status.success() => removed += 1,
            Ok(out) => eprintln!(
                "kept the replaced image {short}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(err) => eprintln!("kept the replaced image {short}: {err:#}"),
        }
    }
    if removed > 0 {
        eprintln!("removed {removed} replaced image(s)");
    }
}

// ---------------------------------------------------------------------------------------
// Recipe hashes

/// A root filesystem's recipe: everything that decides what goes into it (the mirror does
/// not: any mirror serves the same packages).
fn rootfs_hash(rootfs: &Rootfs) -> String {
    let mut h = RecipeHash::new();
    h.part(rootfs.recipe);
    h.part(SUITE);
    h.part("minbase");
    rootfs.packages.iter().for_each(|p| h.part(p));
    DPKG_OPTIONS.iter().for_each(|o| h.part(o));
    h.part(rootfs.hook);
    rootfs.changes.iter().for_each(|c| h.part(c));
    h.hex()
}

/// A derived image: the base recipe and every file of its folder (names and contents).
fn derived_hash(base_hash: &str, image: &Derived, dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    list_files(dir, dir, &mut files)
        .with_context(|| format!("reading the files of {}", dir.display()))?;
    files.sort();
    let mut h = RecipeHash::new();
    h.part(base_hash);
    h.part(image.tag);
    for name in files {
        let bytes = std::fs::read(dir.join(&name))
            .with_context(|| format!("reading {}", dir.join(&name).display()))?;
        h.part(&name);
        h.part(bytes);
    }
    Ok(h.hex())
}

/// Paths (relative to `root`, with `/`) of the files under `dir`.
fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            list_files(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let parts: Vec<_> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

/// SHA-256 over length-prefixed parts, so that ("ab", "c") and ("a", "bc") differ.
struct RecipeHash(Sha256);

impl RecipeHash {
    fn new() -> Self {
        RecipeHash(Sha256::new())
    }

    fn part(&mut self, part: impl AsRef<[u8]>) {
        let part = part.as_ref();
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part);
    }

    fn hex(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Docker queries

/// `docker image inspect --format TEMPLATE TAG`, or None when there is no such image.
fn inspect(tag: &str, template: &str) -> Option<String> {
    let sh = Shell::new().ok()?;
    let text = cmd!(sh, "docker image inspect --format {template} {tag}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()?;
    let text = text.trim().to_string();
    (!text.is_empty() && text != "<no value>").then_some(text)
}

fn label(tag: &str) -> Option<String> {
    inspect(
        tag,
        &format!("{{{{ index .Config.Labels \"{HASH_LABEL}\" }}}}"),
    )
}

fn image_id(tag: &str) -> Option<String> {
    inspect(tag, "{{.Id}}")
}

fn size(tag: &str) -> String {
    inspect(tag, "{{.Size}}")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or_else(
            || "size unknown".into(),
            |b| format!("{} MB", b / 1_000_000),
        )
}

fn ensure_mmdebstrap() -> Result<()> {
    if on_path("mmdebstrap") {
        return Ok(());
    }
    eprintln!("installing mmdebstrap (apt-get)");
    let sh = Shell::new()?;
    let install = || {
        output(privileged(&sh, "env").args([
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "-qq",
            "mmdebstrap",
        ]))
    };
    let mut out = install()?;
    if !out.status.success() {
        // Perhaps the package lists are missing or stale.
        let _ = output(privileged(&sh, "apt-get").args(["update", "-qq"]))?;
        out = install()?;
    }
    if !out.status.success() || !on_path("mmdebstrap") {
        let mut text = out.stdout.clone();
        text.extend_from_slice(&out.stderr);
        bail!(
            "installing mmdebstrap failed (apt-get must work as root or with passwordless \
             sudo):\n{}",
            tail(&text, 20)
        );
    }
    Ok(())
}

/// Runs `cmd`, capturing its output; fails only when it cannot start.
fn output(cmd: Cmd<'_>) -> Result<Output> {
    let shown = cmd.to_string();
    cmd.ignore_status()
        .output()
        .with_context(|| format!("cannot start {shown}"))
}

/// The last `lines` lines of a command's output.
fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A scratch folder removed on drop (the root filesystem tarball lives here).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("goodgo-images-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_framed() {
        let mut a = RecipeHash::new();
        a.part("ab");
        a.part("c");
        let mut b = RecipeHash::new();
        b.part("a");
        b.part("bc");
        assert_ne!(a.hex(), b.hex());
        assert_eq!(rootfs_hash(&BASE), rootfs_hash(&BASE));
        assert_eq!(rootfs_hash(&BASE).len(), 64);
        assert_ne!(rootfs_hash(&BASE), rootfs_hash(&PROXY_BASE));
        // SHA-256 of nothing: the digest is the standard one.
        assert_eq!(
            RecipeHash::new().hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
