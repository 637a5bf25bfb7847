//! The build context as a tar archive, the form the engine's build endpoint takes.
//!
//! The archive is written by the `tar` crate (long paths through GNU extensions), with
//! fixed timestamps and owners so the same files give the same archive. `.dockerignore`
//! is read with the `ignore` crate's gitignore matcher: exact paths, folders (and what is
//! below them), globs and `!` exceptions.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Why a build context could not be packed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// `.dockerignore` has a line the matcher does not accept.
    #[error("reading {}", path.display())]
    Ignore {
        path: PathBuf,
        #[source]
        source: ignore::Error,
    },
    /// A file or folder of the context could not be read.
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Walking the context failed.
    #[error("walking the build context")]
    Walk {
        #[source]
        source: ignore::Error,
    },
}

/// What to leave out, from the context's `.dockerignore`.
pub struct Ignore {
    matcher: Gitignore,
}

impl Ignore {
    /// The context's `.dockerignore` (nothing ignored without one).
    pub fn read(context: &Path) -> Result<Ignore, PackError> {
        let path = context.join(".dockerignore");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(PackError::Read { path, source }),
        };
        Self::parse(context, &text).map_err(|source| PackError::Ignore { path, source })
    }

    fn parse(context: &Path, text: &str) -> Result<Ignore, ignore::Error> {
        let mut builder = GitignoreBuilder::new(context);
        for line in text.lines().map(str::trim) {
            // Docker writes `./x` for `x`; gitignore does not know the form.
            let line = match line.strip_prefix('!') {
                Some(rest) => format!("!{}", rest.trim_start_matches("./")),
                None => line.trim_start_matches("./").to_string(),
            };
            builder.add_line(None, &line)?;
        }
        Ok(Ignore {
            matcher: builder.build()?,
        })
    }

    /// Whether the context-relative path `rel` is left out.
    pub fn ignores(&self, rel: &str, is_dir: bool) -> bool {
        self.matcher
            .matched_path_or_any_parents(rel, is_dir)
            .is_ignore()
    }
}

/// Archives `context` (minus what `.dockerignore` leaves out), sorted by path.
pub fn pack(context: &Path) -> Result<Vec<u8>, PackError> {
    pack_with(context, None)
}

/// Like [`pack`], with one more file (`name`, `content`) at the root of the archive, over
/// any file of that name in the context: an inline Dockerfile.
pub fn pack_with(context: &Path, extra: Option<(&str, &[u8])>) -> Result<Vec<u8>, PackError> {
    let ignore = Ignore::read(context)?;
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let walk = ignore::WalkBuilder::new(context)
        .standard_filters(false)
        .follow_links(false)
        .sort_by_file_name(std::cmp::Ord::cmp)
        .build();
    for entry in walk {
        let entry = entry.map_err(|source| PackError::Walk { source })?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(context) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let read = |source| PackError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::symlink_metadata(path).map_err(read)?;
        let added = extra.is_some_and(|(name, _)| rel == Path::new(name));
        if added || ignore.ignores(&rel.to_string_lossy(), meta.is_dir()) {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let append = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path).map_err(read)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder.append_link(&mut header, rel, target)
        } else if meta.is_dir() {
            use std::os::unix::fs::PermissionsExt;
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(meta.permissions().mode() & 0o7777);
            header.set_size(0);
            builder.append_data(&mut header, rel, std::io::empty())
        } else if meta.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let file = std::fs::File::open(path).map_err(read)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(meta.permissions().mode() & 0o7777);
            header.set_size(meta.len());
            builder.append_data(&mut header, rel, file)
        } else {
            continue;
        };
        append.map_err(read)?;
    }
    if let Some((name, content)) = extra {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        builder
            .append_data(&mut header, name, content)
            .map_err(|source| PackError::Read {
                path: context.join(name),
                source,
            })?;
    }
    builder.into_inner().map_err(|source| PackError::Read {
        path: context.to_path_buf(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ignore_patterns() {
        let ig = Ignore::parse(Path::new("/ctx"), "target\n*.log\nsecret.txt\ntmp*\n").unwrap();
        let ignores = |p: &str| ig.ignores(p, false);
        assert!(ignores("target") && ignores("target/debug/x"));
        assert!(ignores("a/b/c.log") && ignores("secret.txt") && ignores("tmpfile"));
        assert!(!ignores("src/main.rs") && !ignores("targets"));
    }

    #[test]
    fn exceptions_bring_files_back() {
        let ig = Ignore::parse(
            Path::new("/ctx"),
            "# logs stay out\n*.log\n!keep.log\n./docs/\n",
        )
        .unwrap();
        assert!(ig.ignores("other.log", false));
        assert!(!ig.ignores("keep.log", false), "`!` re-includes");
        assert!(ig.ignores("docs", true) && ig.ignores("docs/a.md", false));
    }

    #[test]
    fn the_archive_holds_the_context_minus_the_ignored_files() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        std::fs::create_dir_all(ctx.join(&long).parent().unwrap()).unwrap();
        std::fs::write(ctx.join(&long), "deep").unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(ctx.join("a.log"), "x").unwrap();
        std::fs::write(ctx.join("keep.log"), "y").unwrap();
        std::fs::write(ctx.join(".dockerignore"), "*.log\n!keep.log\n").unwrap();
        std::os::unix::fs::symlink("Dockerfile", ctx.join("link")).unwrap();
        let bytes = pack(ctx).unwrap();
        assert_eq!(
            bytes,
            pack(ctx).unwrap(),
            "the same files give the same archive"
        );
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            assert_eq!(entry.header().mtime().unwrap(), 0);
            names.push(entry.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(
            names,
            [
                ".dockerignore".to_string(),
                "Dockerfile".into(),
                "d".repeat(120),
                long,
                "keep.log".into(),
                "link".into(),
            ]
        );
    }
}
