//! `goodgo completions SHELL`: the completion script on stdout; with `--json`, the script
//! inside `{"shell": …, "script": …}`.

use anyhow::Result;

use crate::args::{self, Shell};
use crate::error::ExitStatus;
use crate::printer::Printer;

pub fn run(shell: Shell, printer: &Printer) -> Result<ExitStatus> {
    let mut cmd = args::command();
    let mut buf = Vec::new();
    let (generator, name) = match shell {
        Shell::Bash => (clap_complete::Shell::Bash, "bash"),
        Shell::Zsh => (clap_complete::Shell::Zsh, "zsh"),
        Shell::Fish => (clap_complete::Shell::Fish, "fish"),
        Shell::Powershell => (clap_complete::Shell::PowerShell, "powershell"),
    };
    clap_complete::generate(generator, &mut cmd, "goodgo", &mut buf);
    let script = String::from_utf8_lossy(&buf);
    printer.report(
        &script,
        &serde_json::json!({ "shell": name, "script": script }),
    );
    Ok(ExitStatus::Success)
}
