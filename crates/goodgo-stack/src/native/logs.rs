//! The native services' logs: one file per service, a new one per start (the previous
//! kept as `log.1`), read again from its start when it is replaced.

use std::path::Path;
use std::time::Duration;

use super::NativeRuntime;
use crate::StackError;

impl NativeRuntime {
    pub(super) fn tail(&self, service: &str, n: usize) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir(service).join("log")).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }

    /// The last `tail` lines of each service's log (all lines without `tail`); with
    /// `follow`, keeps printing new lines until interrupted.
    pub async fn logs(
        &self,
        services: &[String],
        follow: bool,
        tail: Option<usize>,
        on_line: &(dyn Fn(&str, &str) + Sync),
    ) -> Result<(), StackError> {
        let names: Vec<String> = self
            .known_services()
            .into_iter()
            .filter(|s| services.is_empty() || services.contains(s))
            .collect();
        // Per service: the log file's identity and how much of it was shown.
        let mut seen = Vec::new();
        for name in &names {
            let (id, text) = read_log(&self.dir(name).join("log"));
            let lines: Vec<&str> = text.lines().collect();
            let from = tail.map_or(0, |n| lines.len().saturating_sub(n));
            for line in &lines[from..] {
                on_line(name, line);
            }
            seen.push((id, text.len()));
        }
        if !follow {
            return Ok(());
        }
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for (name, (id, offset)) in names.iter().zip(seen.iter_mut()) {
                let (now, text) = read_log(&self.dir(name).join("log"));
                // A restart starts a new log (or a truncated one): read it from its start.
                if now != *id || text.len() < *offset {
                    *id = now;
                    *offset = 0;
                }
                if text.len() > *offset {
                    // Whole lines only; a partial last line waits for its end.
                    let fresh = &text[*offset..];
                    let upto = fresh.rfind('\n').map_or(0, |i| i + 1);
                    for line in fresh[..upto].lines() {
                        on_line(name, line);
                    }
                    *offset += upto;
                }
            }
        }
    }
}

/// A new, empty log file for a (re)started service: a new file rather than the old one
/// truncated, so `logs -f` sees the change even when the new log quickly grows past the
/// old one's length. The previous log is kept as `log.1` (replacing an older one) rather
/// than deleted: while it exists its inode cannot be reused by the new file, so the new
/// log always has another identity.
pub(super) fn new_log(dir: &Path) -> Result<std::fs::File, StackError> {
    let path = dir.join("log");
    match std::fs::rename(&path, dir.join("log.1")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StackError::io("keeping the previous log", &path)(e)),
    }
    std::fs::File::create(&path).map_err(StackError::io("creating the log in", dir))
}

/// A log's identity (device, inode), to notice when it is replaced, and its text; both
/// from one open file, so the text is always that file's.
pub(super) fn read_log(path: &Path) -> (Option<(u64, u64)>, String) {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let Ok(mut file) = std::fs::File::open(path) else {
        return (None, String::new());
    };
    let id = file.metadata().ok().map(|m| (m.dev(), m.ino()));
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return (id, String::new());
    }
    (id, String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_starts_a_new_log_and_keeps_the_previous_one() {
        let (_tmp, rt, dir) = super::super::tests::with_service("cache");
        let mut first = new_log(&dir).unwrap();
        std::io::Write::write_all(&mut first, b"old run\n").unwrap();
        let (old_id, _) = read_log(&dir.join("log"));
        // The same length, so only the file's identity tells the two apart.
        let mut second = new_log(&dir).unwrap();
        std::io::Write::write_all(&mut second, b"new run\n").unwrap();
        let (new_id, text) = read_log(&dir.join("log"));
        assert!(old_id.is_some() && new_id.is_some());
        assert_ne!(old_id, new_id, "the new log is another file");
        assert_eq!(text, "new run\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("log.1")).unwrap(),
            "old run\n"
        );
        // `logs` shows the current log only.
        let shown = std::sync::Mutex::new(Vec::new());
        let on_line = |service: &str, line: &str| {
            shown.lock().unwrap().push(format!("{service} | {line}"));
        };
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(rt.logs(&[], false, None, &on_line))
            .unwrap();
        assert_eq!(*shown.lock().unwrap(), ["cache | new run"]);
        // A third run replaces the kept one.
        drop(new_log(&dir).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.join("log.1")).unwrap(),
            "new run\n"
        );
    }
}
