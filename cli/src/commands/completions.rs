//! `goodgo completions SHELL`: the completion script on stdout.

use anyhow::Result;

use crate::args::{self, Shell};
use crate::error::ExitStatus;
use crate::printer::Printer;

pub fn run(shell: Shell, printer: &Printer) -> Result<ExitStatus> {
    let mut cmd = args::command();
    let mut buf = Vec::new();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::Powershell => clap_complete::Shell::PowerShell,
    };
    clap_complete::generate(generator, &mut cmd, "goodgo", &mut buf);
    printer.out(&String::from_utf8_lossy(&buf));
    Ok(ExitStatus::Success)
}
