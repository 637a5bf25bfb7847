//! Following pg_dump's output folder while pg_dump writes it, so that each file is packed
//! (compressed, encrypted, checksummed, stored) as it grows rather than after the dump.
//!
//! A file is known complete when pg_dump closes it after writing (inotify's
//! `IN_CLOSE_WRITE`, for the data files `NNNN.dat` and `blob_NNNN.dat`, which pg_dump's
//! workers write once, each in one go) or when pg_dump has exited (every file, including
//! `toc.dat` and the large objects' tables of contents). Without inotify (another system,
//! or its queue overflowed) every file is simply complete at pg_dump's exit: the packing
//! then waits for the dump, as it would without following.
//!
//! A reader at the end of what has been written so far waits a few milliseconds and reads
//! again; after it has seen its file complete it reads once more, to the end: a close
//! comes after every write, so that last read sees every byte.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::BackupError;

/// How long a waiting reader or worker sleeps before looking again.
const POLL: Duration = Duration::from_millis(4);
/// How often the folder is listed while pg_dump runs without inotify's events.
const SCAN_EVERY: Duration = Duration::from_millis(50);

/// The dump folder being followed.
pub(crate) struct Follow {
    dir: PathBuf,
    /// Names this packing writes into the same folder (a local backup packs in place):
    /// never followed.
    ignore: fn(&str) -> bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every file seen, by creation order (pg_dump starts the largest tables first).
    files: Vec<Seen>,
    index: BTreeMap<String, usize>,
    /// pg_dump has exited: `Some(true)` successfully.
    ended: Option<bool>,
    events: Option<Events>,
    /// When the folder was last listed; after pg_dump's exit it is listed once more, the
    /// last time (nothing is added after it).
    scanned: Option<Instant>,
    scanned_at_end: bool,
}

struct Seen {
    name: String,
    closed: bool,
    taken: bool,
}

/// How a follower stands on its file after reading to the end of what is there.
enum Standing {
    /// More may come.
    Growing,
    /// pg_dump has finished it.
    Complete,
    /// pg_dump failed: the file will not be finished.
    Abandoned,
}

impl Follow {
    /// Starts following `dir` (which exists and is empty). `ignore` names the files the
    /// packing itself writes there.
    pub(crate) fn start(dir: &Path, ignore: fn(&str) -> bool) -> Follow {
        Follow {
            dir: dir.to_path_buf(),
            ignore,
            state: Mutex::new(State {
                events: Events::watch(dir),
                ..State::default()
            }),
        }
    }

    /// pg_dump has exited (`ok`: successfully): every file is complete, or abandoned.
    pub(crate) fn ended(&self, ok: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.ended = Some(ok);
        }
    }

    /// The next file to pack, first created first, waiting for one to appear; `None` once
    /// pg_dump has exited and every file has been taken (or it failed). The reader follows
    /// the file as pg_dump writes it.
    pub(crate) fn next(&self) -> Result<Option<(PathBuf, Following<'_>)>, BackupError> {
        loop {
            {
                let mut s = self.state.lock().map_err(|_| poisoned())?;
                self.refresh(&mut s);
                if s.ended == Some(false) {
                    return Ok(None);
                }
                if let Some(i) = s.files.iter().position(|f| !f.taken) {
                    s.files[i].taken = true;
                    let name = s.files[i].name.clone();
                    let path = self.dir.join(&name);
                    let file =
                        File::open(&path).map_err(|e| BackupError::io("reading", &path, e))?;
                    let following = Following {
                        follow: self,
                        name,
                        file,
                        complete: false,
                    };
                    return Ok(Some((path, following)));
                }
                if s.ended == Some(true) {
                    return Ok(None);
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// Takes in what inotify reported and, when the events may be incomplete, what the
    /// folder holds: every `SCAN_EVERY` without events, and once after pg_dump's exit.
    fn refresh(&self, s: &mut State) {
        match s.events.as_mut().map(Events::drain) {
            Some(Ok(events)) => {
                for (name, closed) in events {
                    self.seen(s, name, closed);
                }
            }
            Some(Err(())) => {
                s.events = None;
                s.scanned = None;
            }
            None => {}
        }
        let rescan = if s.ended.is_some() {
            !std::mem::replace(&mut s.scanned_at_end, true)
        } else {
            s.events.is_none() && s.scanned.is_none_or(|at| at.elapsed() >= SCAN_EVERY)
        };
        if !rescan {
            return;
        }
        s.scanned = Some(Instant::now());
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            // Files found only now: largest first, by their size as read once here (they
            // may still grow, or be packed and removed, meanwhile).
            let mut found: Vec<(String, u64)> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| {
                    let size = e.metadata().map_or(0, |m| m.len());
                    (e.file_name().to_string_lossy().into_owned(), size)
                })
                .collect();
            found.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
            for (name, _) in found {
                self.seen(s, name, false);
            }
        }
    }

    fn seen(&self, s: &mut State, name: String, closed: bool) {
        if (self.ignore)(&name) {
            return;
        }
        let closed = closed && written_once(&name);
        match s.index.get(&name) {
            Some(&i) => s.files[i].closed |= closed,
            None => {
                s.index.insert(name.clone(), s.files.len());
                s.files.push(Seen {
                    name,
                    closed,
                    taken: false,
                });
            }
        }
    }

    fn standing(&self, name: &str) -> Standing {
        let Ok(mut s) = self.state.lock() else {
            return Standing::Abandoned;
        };
        self.refresh(&mut s);
        match s.ended {
            Some(true) => Standing::Complete,
            Some(false) => Standing::Abandoned,
            None => match s.index.get(name) {
                Some(&i) if s.files[i].closed => Standing::Complete,
                _ => Standing::Growing,
            },
        }
    }
}

fn poisoned() -> BackupError {
    BackupError::Tool {
        program: "goodgo".into(),
        message: "a packing thread panicked".into(),
    }
}

/// Whether pg_dump writes file `name` in one go, closing it once (a table's or a large
/// object's data): its close means it is complete. Other files count only at exit.
fn written_once(name: &str) -> bool {
    let stem = name.strip_suffix(".dat").unwrap_or("");
    let digits = stem.strip_prefix("blob_").unwrap_or(stem);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A file of the dump, read as pg_dump writes it.
pub(crate) struct Following<'a> {
    follow: &'a Follow,
    name: String,
    file: File,
    complete: bool,
}

impl Read for Following<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 || self.complete {
                return Ok(n);
            }
            match self.follow.standing(&self.name) {
                // One more read: it sees every byte written before the close.
                Standing::Complete => self.complete = true,
                Standing::Abandoned => {
                    return Err(std::io::Error::other("pg_dump stopped before finishing it"));
                }
                Standing::Growing => std::thread::sleep(POLL),
            }
        }
    }
}

/// inotify on the dump folder: files created and files closed after writing.
#[cfg(target_os = "linux")]
struct Events {
    inotify: inotify::Inotify,
}

#[cfg(target_os = "linux")]
impl Events {
    fn watch(dir: &Path) -> Option<Events> {
        let inotify = inotify::Inotify::init().ok()?;
        inotify
            .watches()
            .add(
                dir,
                inotify::WatchMask::CREATE | inotify::WatchMask::CLOSE_WRITE,
            )
            .ok()?;
        Some(Events { inotify })
    }

    /// The events queued so far: (name, closed after writing). `Err` when the queue
    /// overflowed or cannot be read: events were lost.
    fn drain(&mut self) -> Result<Vec<(String, bool)>, ()> {
        let mut out = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            match self.inotify.read_events(&mut buffer) {
                Ok(events) => {
                    let mut any = false;
                    for event in events {
                        any = true;
                        if event.mask.contains(inotify::EventMask::Q_OVERFLOW) {
                            return Err(());
                        }
                        if event.mask.contains(inotify::EventMask::ISDIR) {
                            continue;
                        }
                        if let Some(name) = event.name.and_then(OsStr::to_str) {
                            let closed = event.mask.contains(inotify::EventMask::CLOSE_WRITE);
                            out.push((name.to_string(), closed));
                        }
                    }
                    if !any {
                        return Ok(out);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(out),
                Err(_) => return Err(()),
            }
        }
    }
}

/// Elsewhere: no events; files are complete when pg_dump exits.
#[cfg(not(target_os = "linux"))]
struct Events;

#[cfg(not(target_os = "linux"))]
impl Events {
    fn watch(_dir: &Path) -> Option<Events> {
        None
    }

    fn drain(&mut self) -> Result<Vec<(String, bool)>, ()> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_files_are_complete_when_closed() {
        assert!(written_once("3245.dat"));
        assert!(written_once("blob_16401.dat"));
        assert!(!written_once("toc.dat"));
        assert!(!written_once("blobs.toc"));
        assert!(!written_once("blobs_12.toc"));
        assert!(!written_once(".dat"));
        assert!(!written_once("3245.dat.zst"));
    }

    fn no_packed(name: &str) -> bool {
        name.ends_with(".zst")
    }

    /// A writer in another thread, closing one file early and leaving another open until
    /// "pg_dump" ends: both are read whole, the closed one before the end.
    #[test]
    fn files_are_read_whole_as_they_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let follow = Follow::start(dir.path(), no_packed);
        std::fs::write(dir.path().join("1.dat.zst"), b"ours").unwrap();
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                use std::io::Write;
                let mut data = File::create(dir.path().join("2.dat")).unwrap();
                let mut open = File::create(dir.path().join("toc.dat")).unwrap();
                for i in 0..200u32 {
                    writeln!(data, "row {i}").unwrap();
                    writeln!(open, "entry {i}").unwrap();
                    if i % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                drop(data);
                // The closed data file is read to its end while toc.dat stays open.
                std::thread::sleep(Duration::from_millis(100));
                writeln!(open, "last").unwrap();
                drop(open);
                follow.ended(true);
            });
            let mut read = BTreeMap::new();
            while let Some((path, mut following)) = follow.next().unwrap() {
                let mut text = String::new();
                following.read_to_string(&mut text).unwrap();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                read.insert(name, (text, writer.is_finished()));
            }
            writer.join().unwrap();
            assert_eq!(read.len(), 2, "{:?}", read.keys());
            let (data, after) = &read["2.dat"];
            assert_eq!(data.lines().count(), 200);
            assert!(
                !after,
                "2.dat was closed: it is complete before pg_dump ends"
            );
            let (toc, _) = &read["toc.dat"];
            assert_eq!(toc.lines().count(), 201);
            assert!(toc.ends_with("last\n"));
        });
    }

    #[test]
    fn a_failed_dump_abandons_what_is_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let follow = Follow::start(dir.path(), no_packed);
        let mut open = File::create(dir.path().join("7.dat")).unwrap();
        std::io::Write::write_all(&mut open, b"partial").unwrap();
        let (_, mut following) = follow.next().unwrap().unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(following.read(&mut buf).unwrap(), 7);
        follow.ended(false);
        let e = following.read(&mut buf).unwrap_err();
        assert!(e.to_string().contains("pg_dump stopped"), "{e}");
        assert!(follow.next().unwrap().is_none());
    }
}
