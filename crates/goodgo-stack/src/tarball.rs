//! The build context as a tar archive, the form the engine's build endpoint takes.
//!
//! A small ustar writer: regular files, folders and symbolic links, paths up to 255
//! bytes, fixed timestamps and owners (so the same files give the same archive).
//! `.dockerignore` is honoured for its common forms: exact paths, folders (and what is
//! below them), and `*`-suffix or `*`-prefix patterns; `!` exceptions are not supported
//! and are reported.

use std::path::Path;

/// What to leave out, from `.dockerignore`.
pub struct Ignore {
    patterns: Vec<String>,
}

impl Ignore {
    pub fn read(context: &Path) -> Result<Ignore, String> {
        let text = std::fs::read_to_string(context.join(".dockerignore")).unwrap_or_default();
        let mut patterns = Vec::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            if line.starts_with('!') {
                return Err(format!(
                    ".dockerignore: exceptions (`{line}`) are not supported by goodgo's builder"
                ));
            }
            patterns.push(
                line.trim_start_matches("./")
                    .trim_end_matches('/')
                    .to_string(),
            );
        }
        Ok(Ignore { patterns })
    }

    pub fn ignores(&self, rel: &str) -> bool {
        self.patterns.iter().any(|p| {
            if let Some(suffix) = p.strip_prefix('*') {
                !suffix.contains('*')
                    && rel
                        .rsplit('/')
                        .next()
                        .is_some_and(|name| name.ends_with(suffix))
            } else if let Some(prefix) = p.strip_suffix('*') {
                rel.starts_with(prefix)
            } else {
                rel == p || rel.starts_with(&format!("{p}/"))
            }
        })
    }
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}", width = field.len() - 1);
    let bytes = text.as_bytes();
    let width = field.len() - 1;
    let start = bytes.len().saturating_sub(width);
    field[..width].copy_from_slice(&bytes[start..]);
    field[width] = 0;
}

fn header(path: &str, size: u64, mode: u32, kind: u8, link: &str) -> Result<[u8; 512], String> {
    let mut h = [0u8; 512];
    let (prefix, name) = if path.len() <= 100 {
        ("", path)
    } else {
        let split = path[..path.len().min(156)]
            .rfind('/')
            .ok_or_else(|| format!("path too long for the archive: {path}"))?;
        (&path[..split], &path[split + 1..])
    };
    if name.len() > 100 || prefix.len() > 155 || link.len() > 100 {
        return Err(format!("path too long for the archive: {path}"));
    }
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(mode & 0o7777));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    // The checksum is computed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    Ok(h)
}

/// Archives `context` (minus what `.dockerignore` leaves out), sorted by path.
pub fn pack(context: &Path) -> Result<Vec<u8>, String> {
    let ignore = Ignore::read(context)?;
    let mut out = Vec::new();
    let mut stack = vec![context.to_path_buf()];
    let mut entries: Vec<(String, std::path::PathBuf)> = Vec::new();
    while let Some(dir) = stack.pop() {
        let read = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in read {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = entry.path();
            let rel = path
                .strip_prefix(context)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .replace('\\', "/");
            if ignore.ignores(&rel) {
                continue;
            }
            let meta =
                std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if meta.is_dir() {
                stack.push(path.clone());
            }
            entries.push((rel, path));
        }
    }
    entries.sort();
    for (rel, path) in entries {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mode = meta.permissions().mode();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| e.to_string())?;
            out.extend_from_slice(&header(&rel, 0, 0o777, b'2', &target.to_string_lossy())?);
        } else if meta.is_dir() {
            out.extend_from_slice(&header(&format!("{rel}/"), 0, mode, b'5', "")?);
        } else if meta.is_file() {
            let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            out.extend_from_slice(&header(&rel, data.len() as u64, mode, b'0', "")?);
            out.extend_from_slice(&data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_patterns() {
        let ig = Ignore {
            patterns: vec![
                "target".into(),
                "*.log".into(),
                "secret.txt".into(),
                "tmp*".into(),
            ],
        };
        assert!(ig.ignores("target") && ig.ignores("target/debug/x"));
        assert!(ig.ignores("a/b/c.log") && ig.ignores("secret.txt") && ig.ignores("tmpfile"));
        assert!(!ig.ignores("src/main.rs") && !ig.ignores("targets"));
    }

    #[test]
    fn headers_have_valid_checksums() {
        let h = header("dir/file.txt", 5, 0o644, b'0', "").unwrap_or([0; 512]);
        let stored =
            u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap_or("0"), 8).unwrap_or(0);
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|&b| u32::from(b)).sum::<u32>());
        assert_eq!(&h[..12], b"dir/file.txt");
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        let h = header(&long, 0, 0o644, b'0', "").unwrap_or([0; 512]);
        assert_eq!(
            &h[345..465],
            "d".repeat(120).as_bytes(),
            "long paths use the prefix field"
        );
    }
}
