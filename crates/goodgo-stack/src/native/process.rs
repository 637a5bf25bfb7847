//! The native runtime's processes: who we run as, whether a pid is alive and runs the
//! program its pid file names, and signals (through rustix, no `kill` spawned).

use super::Kind;

pub(super) fn is_root() -> bool {
    // The owner of /proc/self is our effective user.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

pub(super) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the `(comm)`.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

/// The program a service's process runs, as `/proc/<pid>/comm` names it.
pub(super) fn program_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Postgres => "postgres",
        Kind::Redis => "redis-server",
        Kind::S3 => "s3s-fs",
    }
}

/// Whether process `pid` runs `program` (its `comm`, which exec sets and no process title
/// changes). A pid file can outlive its process, and the pid be reused by another program.
pub(super) fn runs(pid: u32, program: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == program)
}

/// Reads a pid file: the pid, and the program on the second line (absent in older files).
pub(super) fn parse_pid_file(text: &str) -> Option<(u32, Option<&str>)> {
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    Some((pid, lines.next().map(str::trim).filter(|p| !p.is_empty())))
}

/// Sends `sig` to process `pid`; a process already gone is not an error worth reporting.
pub(super) fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
}
