//! Child processes that never outlive their test, and signals sent without spawning
//! `kill`.

use std::process::Child;

pub use rustix::process::Signal;

/// A child process killed (and reaped) when the guard drops, also when the test fails.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(child)
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Sends `sig` to the child.
    pub fn signal(&self, sig: Signal) {
        signal(self.0.id(), sig);
    }
}

impl std::ops::Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `sig` to process `pid`; false when there is no such process (or it is not ours).
pub fn signal(pid: u32, sig: Signal) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    rustix::process::kill_process(pid, sig).is_ok()
}
