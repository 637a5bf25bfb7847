//! The plan benchmark: `goodgo plan check|waves|critical-path` on a generated 10,000-task
//! plan, cold and warm, beside `tsort` (coreutils' topological sort) on the same edges.

use std::path::Path;

use anyhow::Result;
use xshell::cmd;

use super::stats::{table, time_command, write_section};
use super::{machine, shell_in};

/// A plan of `tasks` tasks and exactly `4 * tasks` distinct dependencies, each on an
/// earlier task, from a fixed seed (a small xorshift, so the file is the same on every
/// machine). Also returns the same edges as `tsort` input.
fn generated_plan(tasks: usize) -> (String, String, usize) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rand = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut yaml = String::from("milestones:\n");
    let milestones = 20;
    for m in 0..milestones {
        yaml.push_str(&format!(
            "  - id: MS{m}\n    name: Milestone {m}\n    phase: {m}\n"
        ));
    }
    yaml.push_str("tasks:\n");
    // Exactly four distinct dependencies per task on average (40,000 for 10,000 tasks), all
    // on earlier tasks, so the graph is acyclic. Task i can depend on at most i others: the
    // first tasks take what they can, and the shortfall goes to the last tasks, one each.
    let target = tasks * 4;
    let mut quota: Vec<usize> = (0..tasks).map(|i| i.min(4)).collect();
    let mut short = target - quota.iter().sum::<usize>();
    for i in (0..tasks).rev() {
        if short == 0 {
            break;
        }
        if quota[i] < i {
            quota[i] += 1;
            short -= 1;
        }
    }
    let mut edges = String::new();
    let mut count = 0;
    for (i, &want) in quota.iter().enumerate() {
        let mut deps: Vec<usize> = Vec::new();
        while deps.len() < want {
            // Mostly near neighbours, sometimes far back: long chains and wide waves.
            let back = if rand(4) == 0 {
                rand(i) + 1
            } else {
                rand(i.min(50)) + 1
            };
            if !deps.contains(&(i - back)) {
                deps.push(i - back);
            }
        }
        deps.sort();
        count += deps.len();
        let list: Vec<String> = deps.iter().map(|d| format!("T{d:05}")).collect();
        for d in &list {
            edges.push_str(&format!("{d} T{i:05}\n"));
        }
        let status = if i < tasks / 4 { "done" } else { "todo" };
        yaml.push_str(&format!(
            "  - id: T{i:05}\n    title: Generated task {i}\n    milestone: MS{}\n    deps: [{}]\n    estimate: {}\n    status: {status}\n",
            i * milestones / tasks,
            list.join(", "),
            1 + rand(5)
        ));
    }
    (yaml, edges, count)
}

/// `goodgo plan check|waves|critical-path` on a generated 10,000-task plan, beside `tsort`
/// (coreutils' topological sort) on the same edges.
pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench plan: 10,000 generated tasks");
    let dir = std::env::temp_dir().join(format!("goodgo-bench-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (yaml, edges, deps) = generated_plan(10_000);
    std::fs::write(dir.join("plan.yaml"), &yaml)?;
    std::fs::write(dir.join("edges.txt"), &edges)?;
    // Cold: a `.goodgo` *file* in the cold folder means no parse cache can be written there,
    // so every run parses the YAML. Warm: the cache made by the warm-up run is used.
    let cold = dir.join("cold");
    std::fs::create_dir_all(&cold)?;
    std::fs::write(cold.join("plan.yaml"), &yaml)?;
    std::fs::write(cold.join(".goodgo"), "")?;
    let n = 20;
    let mut samples = Vec::new();
    for (label, folder) in [("cold", &cold), ("warm", &dir)] {
        for sub in [
            &["check"][..],
            &["waves"],
            &["critical-path"],
            &["waves", "--todo"],
        ] {
            let sh = shell_in(folder)?;
            let make = || cmd!(sh, "{goodgo} plan --file plan.yaml {sub...}");
            let label = format!("`goodgo plan {}` ({label})", sub.join(" "));
            samples.push(time_command(&label, n, &make, false)?);
        }
    }
    let sh = shell_in(&dir)?;
    samples.push(time_command(
        "`tsort edges.txt` (peer: topological order only)",
        n,
        &|| cmd!(sh, "tsort edges.txt"),
        false,
    )?);
    let _ = std::fs::remove_dir_all(&dir);
    let body = format!(
        "## Plan graph\n\nA generated plan: 10,000 tasks, {deps} dependencies, {} KiB of YAML; end to end (process start, read, parse with positions, check incl. cycle search, schedule, print).\n*Cold* parses the YAML on every run (split at task boundaries and parsed on every core; the YAML scanner is most of the time); *warm* reads the content-addressed parse cache in `.goodgo/cache/` that the first run on those exact bytes wrote (plans of 256 KiB and more only).\nMeasured {}; release build; {n} runs each after one warm-up. Repeat with `cargo xtask bench plan`.\n\n{}",
        yaml.len() / 1024,
        machine(),
        table(&samples)
    );
    write_section("plan", &body)
}
