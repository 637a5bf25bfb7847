//! A test's own workspace: a temp dir with the files a test writes into it, the binary
//! under test started there in a clean environment, and the filters that hide the temp
//! dir and the ports the test picked.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Filters, Run, clean_command, run};

/// A temp dir (removed on drop), the binary to run in it, and its filters.
pub struct TestContext {
    dir: tempfile::TempDir,
    bin: PathBuf,
    filters: Filters,
}

impl TestContext {
    /// An empty temp dir in which `bin` runs (pass `env!("CARGO_BIN_EXE_goodgo")`).
    pub fn new(bin: impl Into<PathBuf>) -> TestContext {
        let dir = tempfile::tempdir().unwrap();
        let filters = Filters::none().path(dir.path(), "[TMP]");
        TestContext {
            dir,
            bin: bin.into(),
            filters,
        }
    }

    /// The workspace folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `rel` inside the workspace.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `text` to `rel` (creating its folders) and returns the context.
    pub fn with_file(self, rel: &str, text: &str) -> TestContext {
        self.write(rel, text);
        self
    }

    /// Writes `text` to `rel`, creating its folders.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Reads `rel` as text.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap()
    }

    /// Creates the folder `rel` (and its parents).
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.join(rel);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// Copies the repository's file or folder `rel` to the same place in the workspace.
    pub fn copy_from_repo(&self, rel: &str) -> &TestContext {
        copy_tree(&crate::repo_root().join(rel), &self.join(rel));
        self
    }

    /// The binary, started in the workspace.
    pub fn command(&self) -> Command {
        clean_command(&self.bin, self.path())
    }

    /// The binary, started in `rel` inside the workspace (or in `rel` itself if absolute).
    pub fn command_in(&self, rel: impl AsRef<Path>) -> Command {
        clean_command(&self.bin, &self.join(rel))
    }

    /// Runs the binary in the workspace with `args`.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run(self.command().args(args))
    }

    /// The standard filters and this workspace's path as `[TMP]`.
    pub fn filters(&self) -> Filters {
        self.filters.clone().and(Filters::standard())
    }

    /// Hides `port` as `with` in this context's snapshots from now on.
    pub fn filter_port(&mut self, port: u16, with: &str) {
        self.filters = std::mem::take(&mut self.filters).port(port, with);
    }
}

/// Copies a file, or a folder with everything in it (except `target` folders).
pub fn copy_tree(from: &Path, to: &Path) {
    if from.is_file() {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
        return;
    }
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if path.is_dir() && name == "target" {
            continue;
        }
        copy_tree(&path, &to.join(name));
    }
}
