//! `cargo xtask images`: builds the Docker images the services run on, without a registry.
//!
//! Machines that build goodgo may reach the Debian package mirror but no image registry,
//! so `FROM debian` cannot be pulled. Instead, `goodgo/base:bookworm` is a Debian root
//! filesystem made by `mmdebstrap` (with PostgreSQL 15 and Redis already installed) and
//! loaded with `docker import`; `goodgo/postgres:15` and `goodgo/redis:7` are then built
//! from `compose/images/*/Dockerfile` on top of it, with no `apt-get` in any Dockerfile.
//!
//! The mirror comes from this machine's apt sources at run time, so no package host is
//! written in the repository. Each image carries a label with a hash of its recipe; an image
//! whose label matches is left alone, so a second run costs a few `docker image inspect`s.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use crate::provision::is_root;

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

/// An image built by `docker build` from a folder of the repository, on the base image.
struct Derived {
    tag: &'static str,
    dir: &'static str,
}

const DERIVED: &[Derived] = &[
    Derived {
        tag: "goodgo/postgres:15",
        dir: "compose/images/postgres",
    },
    Derived {
        tag: "goodgo/redis:7",
        dir: "compose/images/redis",
    },
];

const USAGE: &str = "usage: cargo xtask images [--force]

Builds goodgo/base:bookworm (mmdebstrap + docker import), goodgo/postgres:15 and
goodgo/redis:7 (docker build on it). Images whose recipe has not changed are skipped.

  --force   rebuild every image";

/// `cargo xtask images [--force]`.
pub fn run(args: &[String]) -> Result<ExitCode> {
    let mut force = false;
    for arg in args {
        match arg.as_str() {
            "--force" => force = true,
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            other => {
                eprintln!("xtask images: unknown argument `{other}`\n\n{USAGE}");
                return Ok(ExitCode::from(2));
            }
        }
    }
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

fn docker_answers() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn build_all(force: bool) -> Result<()> {
    let started = Instant::now();
    let root = crate::root();
    // Images replaced by this run, removed at the end: children first, then the old base.
    let mut replaced = Vec::new();

    let base_hash = base_hash();
    let base_built = if !force && label(BASE_TAG).as_deref() == Some(base_hash.as_str()) {
        eprintln!("{BASE_TAG}: current, skipped");
        false
    } else {
        let old = image_id(BASE_TAG);
        let t = Instant::now();
        build_base(&base_hash).with_context(|| format!("building {BASE_TAG}"))?;
        eprintln!(
            "{BASE_TAG}: built in {:.1?}, {}",
            t.elapsed(),
            size(BASE_TAG)
        );
        replaced.extend(old);
        true
    };

    // What to build, then built side by side: the classic builder spends about a second on
    // every Dockerfile instruction, so two builds at once halve the wait.
    let mut todo = Vec::new();
    for image in DERIVED {
        let dir = root.join(image.dir);
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
        "images ready in {:.1?}: {BASE_TAG}, {}",
        started.elapsed(),
        DERIVED.iter().map(|d| d.tag).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// The base image: mmdebstrap into a tarball, then `docker import`.
fn build_base(hash: &str) -> Result<()> {
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
        "{BASE_TAG}: building with mmdebstrap (Debian {SUITE} from {}; {}): about a minute",
        mirrors.join(", "),
        PACKAGES.join(" ")
    );
    let t = Instant::now();
    let mut cmd = privileged("mmdebstrap");
    cmd.arg("--variant=minbase")
        .arg(format!("--include={}", PACKAGES.join(",")))
        .args(DPKG_OPTIONS.iter().map(|o| format!("--dpkgopt={o}")))
        .arg("--aptopt=Acquire::Retries \"3\"")
        .arg(format!("--customize-hook={CUSTOMIZE_HOOK}"))
        .arg(SUITE)
        .arg(&tarball)
        .arg(&sources_file);
    let out = output(&mut cmd)?;
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
        "{BASE_TAG}: root filesystem in {:.1?} ({} MB tarball), importing",
        t.elapsed(),
        tar_size / 1_000_000
    );

    let mut cmd = Command::new("docker");
    cmd.arg("import");
    for change in IMPORT_CHANGES {
        cmd.args(["--change", change]);
    }
    cmd.args(["--change", &format!("LABEL {HASH_LABEL}={hash}")])
        .args([
            "--message",
            &format!(
                "goodgo base: mmdebstrap {SUITE} minbase + {}",
                PACKAGES.join(" ")
            ),
        ])
        .arg(&tarball)
        .arg(BASE_TAG);
    let out = output(&mut cmd)?;
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
    let mut cmd = Command::new("docker");
    cmd.args([
        "build",
        "--label",
        &format!("{HASH_LABEL}={hash}"),
        "--tag",
        tag,
    ]);
    if no_cache {
        cmd.arg("--no-cache");
    }
    cmd.arg(dir);
    let out = output(&mut cmd)?;
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
    let current: Vec<String> = [BASE_TAG]
        .into_iter()
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
        match output(Command::new("docker").args(["image", "rm", id])) {
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

/// The base recipe: everything that decides what goes into the root filesystem (the
/// mirror does not: any mirror serves the same packages).
fn base_hash() -> String {
    let mut h = Fnv::new();
    h.part("goodgo base image, recipe 1");
    h.part(SUITE);
    h.part("minbase");
    PACKAGES.iter().for_each(|p| h.part(p));
    DPKG_OPTIONS.iter().for_each(|o| h.part(o));
    h.part(CUSTOMIZE_HOOK);
    IMPORT_CHANGES.iter().for_each(|c| h.part(c));
    h.hex()
}

/// A derived image: the base recipe and every file of its folder (names and contents).
fn derived_hash(base_hash: &str, image: &Derived, dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    list_files(dir, dir, &mut files)
        .with_context(|| format!("reading the files of {}", dir.display()))?;
    files.sort();
    let mut h = Fnv::new();
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

/// 64-bit FNV-1a over length-prefixed parts: stable across Rust releases (unlike
/// `DefaultHasher`), which is all a "did the recipe change" label needs.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn part(&mut self, part: impl AsRef<[u8]>) {
        let part = part.as_ref();
        self.bytes(&(part.len() as u64).to_le_bytes());
        self.bytes(part);
    }

    fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

// ---------------------------------------------------------------------------------------
// Docker queries

/// `docker image inspect --format TEMPLATE TAG`, or None when there is no such image.
fn inspect(tag: &str, template: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", template, tag])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty() && text != "<no value>").then_some(text)
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

// ---------------------------------------------------------------------------------------
// The host: apt sources, mmdebstrap, root

/// One apt source (deb822 fields), as found in this machine's apt configuration.
#[derive(Debug, Default, PartialEq)]
struct Source {
    types: Vec<String>,
    uris: Vec<String>,
    suites: Vec<String>,
    components: Vec<String>,
    /// Other fields kept as written (Signed-By, Architectures, …), continuation lines included.
    fields: Vec<(String, String)>,
    enabled: bool,
}

/// The sources of this machine that serve the bookworm suites (`bookworm`,
/// `bookworm-updates`, `bookworm-security`), other suites dropped.
fn debian_sources() -> Result<Vec<Source>> {
    let mut found = Vec::new();
    let mut read = Vec::new();
    let list = Path::new("/etc/apt/sources.list");
    if let Ok(text) = std::fs::read_to_string(list) {
        found.extend(parse_one_line(&text));
        read.push(list.to_path_buf());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for file in files {
        let parse: fn(&str) -> Vec<Source> = match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => parse_deb822,
            Some("list") => parse_one_line,
            _ => continue,
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        found.extend(parse(&text));
        read.push(file);
    }
    let sources = select_suite(found, SUITE);
    if !sources.iter().any(|s| s.suites.iter().any(|x| x == SUITE)) {
        let read: Vec<String> = read.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "no apt source of this machine serves Debian `{SUITE}` (read: {}); the images are \
             built from it with mmdebstrap, which needs a Debian mirror",
            if read.is_empty() {
                "nothing".into()
            } else {
                read.join(", ")
            }
        );
    }
    Ok(sources)
}

/// The enabled `deb` sources narrowed to `suite` and its `-updates`/`-security` suites.
fn select_suite(sources: Vec<Source>, suite: &str) -> Vec<Source> {
    let wanted = [
        suite.to_string(),
        format!("{suite}-updates"),
        format!("{suite}-security"),
    ];
    sources
        .into_iter()
        .filter(|s| s.enabled && s.types.iter().any(|t| t == "deb"))
        .filter_map(|mut s| {
            s.types = vec!["deb".into()];
            s.suites.retain(|x| wanted.contains(x));
            (!s.suites.is_empty() && !s.uris.is_empty()).then_some(s)
        })
        .collect()
}

/// deb822 `.sources` files: stanzas separated by blank lines.
fn parse_deb822(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut flush = |fields: &mut Vec<(String, String)>| {
        if fields.is_empty() {
            return;
        }
        let mut s = Source {
            enabled: true,
            ..Source::default()
        };
        for (key, value) in fields.drain(..) {
            let words = || value.split_whitespace().map(String::from).collect();
            match key.to_ascii_lowercase().as_str() {
                "types" => s.types = words(),
                "uris" => s.uris = words(),
                "suites" => s.suites = words(),
                "components" => s.components = words(),
                "enabled" => s.enabled = value.trim() != "no",
                _ => s.fields.push((key, value)),
            }
        }
        sources.push(s);
    };
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut fields);
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    flush(&mut fields);
    sources
}

/// One-line `sources.list` entries: `deb [opt=value …] URI SUITE COMPONENT…`.
fn parse_one_line(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some((kind, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut fields = Vec::new();
        if let Some(options) = rest.strip_prefix('[') {
            let Some((options, after)) = options.split_once(']') else {
                continue;
            };
            for option in options.split_whitespace() {
                let Some((key, value)) = option.split_once('=') else {
                    continue;
                };
                let key = match key {
                    "signed-by" => "Signed-By",
                    "arch" => "Architectures",
                    "trusted" => "Trusted",
                    _ => continue,
                };
                fields.push((key.to_string(), value.replace(',', " ")));
            }
            rest = after.trim_start();
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        let [uri, suite, components @ ..] = words.as_slice() else {
            continue;
        };
        sources.push(Source {
            types: vec![kind.to_string()],
            uris: vec![uri.to_string()],
            suites: vec![suite.to_string()],
            components: components.iter().map(|c| c.to_string()).collect(),
            fields,
            enabled: true,
        });
    }
    sources
}

/// The sources as one deb822 file (what mmdebstrap puts in the image's apt sources).
fn render_sources(sources: &[Source]) -> String {
    let mut out = String::new();
    for s in sources {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("Types: {}\n", s.types.join(" ")));
        out.push_str(&format!("URIs: {}\n", s.uris.join(" ")));
        out.push_str(&format!("Suites: {}\n", s.suites.join(" ")));
        let components = if s.components.is_empty() {
            "main".to_string()
        } else {
            s.components.join(" ")
        };
        out.push_str(&format!("Components: {components}\n"));
        for (key, value) in &s.fields {
            out.push_str(&format!("{key}: {value}\n"));
        }
    }
    out
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// `program` as root: directly when we are root, else through `sudo -n`.
fn privileged(program: &str) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut cmd = Command::new("sudo");
        cmd.args(["-n", program]);
        cmd
    }
}

fn ensure_mmdebstrap() -> Result<()> {
    if on_path("mmdebstrap") {
        return Ok(());
    }
    eprintln!("installing mmdebstrap (apt-get)");
    let install = || {
        let mut cmd = privileged("env");
        cmd.args([
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "-qq",
            "mmdebstrap",
        ]);
        output(&mut cmd)
    };
    let mut out = install()?;
    if !out.status.success() {
        // Perhaps the package lists are missing or stale.
        let mut update = privileged("apt-get");
        update.args(["update", "-qq"]);
        let _ = output(&mut update)?;
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
fn output(cmd: &mut Command) -> Result<Output> {
    let shown = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
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
    fn deb822_stanzas_narrowed_to_the_suite() {
        let text = "Types: deb\n# a comment\nURIs: http://mirror.invalid/debian\n\
                    Suites: bookworm bookworm-updates\nComponents: main\n\
                    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                    Types: deb\nURIs: http://mirror.invalid/debian-security\n\
                    Suites: bookworm-security\nComponents: main\n\n\
                    Types: deb\nURIs: https://other.invalid/node\nSuites: nodistro\n\
                    Components: main\n\n\
                    Types: deb-src\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n\n\
                    Enabled: no\nTypes: deb\nURIs: http://off.invalid/debian\nSuites: bookworm\n";
        let sources = select_suite(parse_deb822(text), "bookworm");
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            sources[0].fields,
            [(
                "Signed-By".to_string(),
                "/usr/share/keyrings/debian-archive-keyring.gpg".to_string()
            )]
        );
        assert_eq!(sources[1].uris, ["http://mirror.invalid/debian-security"]);
        let rendered = render_sources(&sources);
        assert!(rendered.starts_with("Types: deb\nURIs: http://mirror.invalid/debian\n"));
        assert!(rendered.contains("\n\nTypes: deb\nURIs: http://mirror.invalid/debian-security\n"));
    }

    #[test]
    fn deb822_keeps_multi_line_fields() {
        let text = "Types: deb\nURIs: http://m.invalid/debian\nSuites: bookworm\n\
                    Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n";
        let sources = parse_deb822(text);
        assert_eq!(
            sources[0].fields[0].1,
            "\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc"
        );
        assert!(render_sources(&sources).contains("Signed-By: \n -----BEGIN"));
    }

    #[test]
    fn one_line_entries_with_options() {
        let text = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.invalid/debian bookworm main contrib\n\
                    deb-src http://m.invalid/debian bookworm main\n\
                    deb http://m.invalid/debian bullseye main\n\
                    deb https://x.invalid/apt cloud-sdk-bookworm main\n";
        let sources = select_suite(parse_one_line(text), "bookworm");
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].uris, ["http://m.invalid/debian"]);
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert_eq!(
            sources[0].fields,
            [
                ("Architectures".to_string(), "amd64".to_string()),
                ("Signed-By".to_string(), "/k.gpg".to_string())
            ]
        );
    }

    #[test]
    fn hashes_are_stable_and_framed() {
        let mut a = Fnv::new();
        a.part("ab");
        a.part("c");
        let mut b = Fnv::new();
        b.part("a");
        b.part("bc");
        assert_ne!(a.hex(), b.hex());
        assert_eq!(base_hash(), base_hash());
        assert_eq!(base_hash().len(), 16);
    }
}
