//! `goodgo plan` on the platform's plan (the live docs/plan.yaml and a frozen copy), on a
//! corpus of broken plans, and on edits.

use std::fs;

use goodgo_testkit::{Filters, assert_cmd_snapshot, assert_text_snapshot};

use crate::{TestContext, context, goodgo, repo, run};

/// A workspace whose docs/plan.yaml is the platform's plan as it stood on 2026-12-01
/// (tests/fixtures/plan/): the snapshots below show a plan that does not move as tasks
/// are marked done in the live docs/plan.yaml, which `the_real_plan_checks_clean` checks.
fn workspace_with_real_plan() -> TestContext {
    let frozen = repo().join("cli/tests/fixtures/plan/plan-2026-12-01.yaml");
    let text = fs::read_to_string(&frozen).unwrap_or_else(|e| panic!("{}: {e}", frozen.display()));
    context()
        .with_file("goodgo.yaml", "name: shop\n")
        .with_file("docs/plan.yaml", &text)
}

#[test]
fn the_real_plan_checks_clean() {
    let out = run(goodgo(&repo()).args(["plan", "check", "--json"]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let json = out.json();
    assert_eq!(json["errors"], serde_json::json!([]));
    assert_eq!(json["warnings"], serde_json::json!([]));
}

#[test]
fn the_real_plan_seen_by_a_user() {
    let tmp = workspace_with_real_plan();
    let mut report = String::new();
    for args in [
        &["plan", "waves"][..],
        &["plan", "waves", "--todo"],
        &["plan", "next"],
        &["plan", "critical-path"],
        &["plan", "critical-path", "--all"],
        &["plan", "show", "TEC-1457"],
        &["plan", "show", "C5"],
        &["plan", "show", "TEC-1592"],
    ] {
        let out = run(goodgo(tmp.path()).args(args));
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        report.push_str(&format!("$ goodgo {}\n{}\n", args.join(" "), out.stdout));
    }
    assert_text_snapshot!("real_plan", Filters::none(), report);
}

#[test]
fn json_shapes_of_the_real_plan() {
    let tmp = workspace_with_real_plan();
    let waves = run(goodgo(tmp.path()).args(["plan", "waves", "--todo", "--json"])).json();
    assert_eq!(waves["waves"][0][0], "TEC-1449");
    // The seed's own critical path: security -> deploy -> observability, then caching.
    let cp = run(goodgo(tmp.path()).args(["--json", "plan", "critical-path"])).json();
    assert_eq!(
        cp,
        serde_json::json!({"path": ["TEC-1449", "TEC-1450", "TEC-1457", "TEC-1458"], "days": 4})
    );
    let graph = run(goodgo(tmp.path()).args(["plan", "graph", "--format", "json"])).json();
    let tasks = graph["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 47);
    let x4 = tasks.iter().find(|t| t["id"] == "TEC-1433").unwrap();
    assert_eq!(
        x4["deps"].as_array().unwrap().len(),
        8,
        "`deps: [MS2]` expands to all of Core Product"
    );
    let next = run(goodgo(tmp.path()).args(["plan", "next", "--json"])).json();
    assert_eq!(
        next["next"][0]["id"], "TEC-1449",
        "P0 with the longest chain behind it first"
    );
}

/// Each file of tests/fixtures/broken-plans says where its error is (`# expect: L:C`).
#[test]
fn broken_plans_are_reported_with_their_position() {
    let dir = repo().join("cli/tests/fixtures/broken-plans");
    let corpus = crate::broken_corpus(&dir);
    assert!(corpus.len() >= 10);
    let mut report = String::new();
    for crate::Broken { name, expect, .. } in corpus {
        for sub in ["check", "waves", "critical-path"] {
            let out = run(goodgo(&dir).args(["plan", "--file", &name, sub]));
            assert_eq!(out.code, 2, "{name} {sub}: {}{}", out.stdout, out.stderr);
            let all = format!("{}{}", out.stdout, out.stderr);
            assert!(
                all.contains(&format!("{name}:{expect}: ")),
                "{name} {sub}: want {expect} in {all}"
            );
        }
        let out = run(goodgo(&dir).args(["plan", "--file", &name, "check"]));
        report.push_str(&format!("== {name}\n{}{}", out.stdout, out.stderr));
    }
    assert_text_snapshot!("broken_plans", Filters::none(), report);
}

#[test]
fn a_done_task_waiting_on_unfinished_work_is_a_warning() {
    let tmp = context();
    let plan = "milestones:\n  - {id: M, name: Main}\ntasks:\n  - {id: A, title: A, milestone: M, status: todo}\n  - {id: B, title: B, milestone: M, deps: [A], status: done}\n";
    fs::write(tmp.path().join("plan.yaml"), plan).unwrap();
    let out = run(goodgo(tmp.path()).args(["plan", "-f", "plan.yaml", "check"]));
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout,
        "plan.yaml:5:44: warning: B is done but depends on A which is todo\n"
    );
}

#[test]
fn set_changes_only_the_status_and_keeps_comments() {
    let tmp = workspace_with_real_plan();
    let path = tmp.path().join("docs/plan.yaml");
    let before = fs::read_to_string(&path).unwrap();
    let out = run(goodgo(tmp.path()).args(["plan", "set", "TEC-1449", "done"]));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "TEC-1449: todo -> done\n"),
        "{}",
        out.stderr
    );
    let after = fs::read_to_string(&path).unwrap();
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "exactly one line changes: {changed:?}");
    assert_eq!(
        changed[0].1.trim(),
        changed[0].0.trim().replace("todo", "done")
    );
    assert_eq!(before.lines().count(), after.lines().count());
    // The change is visible to the graph: TEC-1450 is now ready.
    let next = run(goodgo(tmp.path()).args(["plan", "next", "--json"])).json();
    assert!(
        next["next"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "TEC-1450")
    );
    // By code too, and unknown ids are bad input with a suggestion.
    let out = run(goodgo(tmp.path()).args(["plan", "set", "C1", "doing"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = assert_cmd_snapshot!(
        "set_unknown_id",
        Filters::none().path(tmp.path(), "[TMP]"),
        goodgo(tmp.path()).args(["plan", "set", "TEC-14490", "done"])
    );
    out.assert_stderr(2, &["did you mean `TEC-1449`"]);
}

#[test]
fn set_works_on_flow_style_tasks_and_any_key_order() {
    let tmp = context();
    let text = "milestones:\n  - {id: M, name: Main}\ntasks:\n  - {id: A, title: a, milestone: M, status: todo}  # flow\n  - status: todo   # before its id\n    id: B\n    title: b\n    milestone: M\n    deps: [A]\n";
    fs::write(tmp.path().join("plan.yaml"), text).unwrap();
    for (id, status) in [("A", "done"), ("B", "doing")] {
        let out = run(goodgo(tmp.path()).args(["plan", "--file", "plan.yaml", "set", id, status]));
        assert_eq!(out.code, 0, "{id}: {}", out.stderr);
    }
    assert_eq!(
        fs::read_to_string(tmp.path().join("plan.yaml")).unwrap(),
        text.replacen("status: todo}", "status: done}", 1).replacen(
            "status: todo   #",
            "status: doing   #",
            1
        )
    );
}

#[test]
fn render_writes_the_plan_document_and_check_spots_staleness() {
    let tmp = workspace_with_real_plan();
    let out = run(goodgo(tmp.path()).args(["plan", "render", "--check"]));
    assert_eq!(out.code, 1, "missing document is stale");
    let out = run(goodgo(tmp.path()).args(["plan", "render"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = fs::read_to_string(tmp.path().join("docs/IMPLEMENTATION_PLAN.md")).unwrap();
    assert!(doc.contains("## MS5: Production Hardening (Phase 4)"));
    assert!(doc.contains("| TEC-1450 | TEC-1449 | todo |"));
    assert_eq!(
        run(goodgo(tmp.path()).args(["plan", "render", "--check"])).code,
        0
    );
    run(goodgo(tmp.path()).args(["plan", "set", "TEC-1449", "doing"]));
    assert_eq!(
        run(goodgo(tmp.path()).args(["plan", "render", "--check"])).code,
        1,
        "a status change makes it stale"
    );
}

#[test]
fn render_writes_to_the_workspace_docs_folder_or_to_out() {
    let tmp = workspace_with_real_plan();
    fs::create_dir(tmp.path().join("plans")).unwrap();
    fs::rename(
        tmp.path().join("docs/plan.yaml"),
        tmp.path().join("plans/plan.yaml"),
    )
    .unwrap();
    let sub = tmp.path().join("plans");
    let out = run(goodgo(&sub).args(["plan", "render", "--file", "plan.yaml"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(tmp.path().join("docs/IMPLEMENTATION_PLAN.md").is_file());
    assert!(
        !sub.join("IMPLEMENTATION_PLAN.md").exists(),
        "not beside the plan"
    );
    let out = run(goodgo(&sub).args(["plan", "render", "--file", "plan.yaml", "--out", "x.md"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        fs::read_to_string(sub.join("x.md")).unwrap(),
        fs::read_to_string(tmp.path().join("docs/IMPLEMENTATION_PLAN.md")).unwrap()
    );
    let check = |args: &[&str]| {
        let mut all = vec!["plan", "render", "--file", "plan.yaml", "--check"];
        all.extend_from_slice(args);
        run(goodgo(&sub).args(&all)).code
    };
    assert_eq!(check(&[]), 0);
    assert_eq!(check(&["--out", "x.md"]), 0);
    fs::write(sub.join("x.md"), "old\n").unwrap();
    assert_eq!(
        check(&["--out", "x.md"]),
        1,
        "--check compares the --out file"
    );
    assert_eq!(check(&[]), 0);
}

#[test]
fn the_committed_plan_document_is_current() {
    let out = run(goodgo(&repo()).args(["plan", "render", "--check"]));
    assert_eq!(out.code, 0, "run `goodgo plan render`: {}", out.stdout);
}

#[test]
fn graph_formats() {
    let tmp = workspace_with_real_plan();
    let mermaid = run(goodgo(tmp.path()).args(["plan", "graph"])).stdout;
    assert!(mermaid.starts_with("flowchart LR\n") && mermaid.contains("TEC_1449 --> TEC_1450"));
    let dot = run(goodgo(tmp.path()).args(["plan", "graph", "--format", "dot"])).stdout;
    assert!(dot.starts_with("digraph plan {") && dot.contains("\"TEC-1449\" -> \"TEC-1450\";"));
    let out =
        run(goodgo(tmp.path()).args(["plan", "graph", "--format", "html", "-o", "plan.html"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let html = fs::read_to_string(tmp.path().join("plan.html")).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg"));
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "no network references"
    );
    assert!(
        html.contains("TEC-1449 → TEC-1450 → TEC-1457 → TEC-1458"),
        "critical path named"
    );
    assert_eq!(html.matches("<rect").count(), 47);
    // `--json` means JSON on stdout, whatever `--format` says.
    let plain = run(goodgo(tmp.path()).args(["plan", "graph", "--format", "json"]));
    for format in ["mermaid", "dot", "html", "json"] {
        let out = run(goodgo(tmp.path()).args(["--json", "plan", "graph", "--format", format]));
        assert_eq!(out.code, 0, "{format}: {}", out.stderr);
        assert_eq!(
            out.json()["tasks"].as_array().unwrap().len(),
            47,
            "{format}"
        );
        assert_eq!(out.stdout, plain.stdout, "{format}");
    }
    let out = run(goodgo(tmp.path()).args(["--json", "plan", "graph", "-o", "g.json"]));
    assert_eq!(out.json()["file"], "g.json");
    assert_eq!(
        fs::read_to_string(tmp.path().join("g.json")).unwrap(),
        plain.stdout
    );
}

#[test]
fn status_lists_commits_naming_a_task() {
    let tmp = workspace_with_real_plan();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "Import the plan"]);
    git(&[
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "Rotate the JWT secret (TEC-1449)\n\nAlso prepares TEC-1450.",
    ]);
    let json = run(goodgo(tmp.path()).args(["plan", "status", "--json"])).json();
    assert_eq!(json["done"], 24);
    assert_eq!(json["total"], 47);
    assert_eq!(
        json["milestones"][4],
        serde_json::json!({"id": "MS5", "name": "Production Hardening", "done": 1, "total": 8})
    );
    assert_eq!(
        json["evidence"]["TEC-1449"][0]["summary"],
        "Rotate the JWT secret (TEC-1449)"
    );
    assert_eq!(
        json["evidence"]["TEC-1450"][0]["summary"],
        "Rotate the JWT secret (TEC-1449)"
    );
    assert!(json["evidence"].get("TEC-1451").is_none());
    let human = run(goodgo(tmp.path()).args(["plan", "status"])).stdout;
    assert!(
        human.contains("MS1 Walking Skeleton") && human.contains("6/6"),
        "{human}"
    );
}

/// Large plans are parsed once per content: the cache gives the same answers, follows
/// every edit of the file, and a damaged cache entry is ignored.
#[test]
fn the_parse_cache_never_changes_an_answer() {
    let tmp = context();
    let mut yaml = String::from("milestones:\n  - {id: M, name: Main}\ntasks:\n");
    for i in 0..3000 {
        let deps = if i == 0 {
            String::new()
        } else {
            format!("T{:04}, T{:04}", i - 1, i / 2)
        };
        yaml.push_str(&format!(
            "  - id: T{i:04}\n    title: Task number {i} with a longer title to fill the file\n    milestone: M\n    deps: [{deps}]\n    status: todo\n"
        ));
    }
    assert!(yaml.len() > 256 * 1024, "big enough to be cached");
    fs::write(tmp.path().join("plan.yaml"), &yaml).unwrap();
    let waves = |args: &[&str]| {
        run(goodgo(tmp.path())
            .args(["plan", "-f", "plan.yaml"])
            .args(args))
        .stdout
    };
    let cold = waves(&["waves", "--todo", "--json"]);
    let cache_dir = tmp.path().join(".goodgo/cache");
    assert_eq!(
        fs::read_dir(&cache_dir).unwrap().count(),
        1,
        "one entry per plan file"
    );
    assert_eq!(
        waves(&["waves", "--todo", "--json"]),
        cold,
        "warm answer is the cold answer"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&cold).unwrap()["waves"]
            .as_array()
            .unwrap()
            .len(),
        3000
    );

    assert_eq!(
        run(goodgo(tmp.path()).args(["plan", "-f", "plan.yaml", "set", "T0000", "done"])).code,
        0
    );
    let after: serde_json::Value =
        serde_json::from_str(&waves(&["waves", "--todo", "--json"])).unwrap();
    assert_eq!(
        after["waves"][0],
        serde_json::json!(["T0001"]),
        "the edit is seen, not the cached plan"
    );

    for entry in fs::read_dir(&cache_dir).unwrap() {
        fs::write(entry.unwrap().path(), "{not json").unwrap();
    }
    let again: serde_json::Value =
        serde_json::from_str(&waves(&["waves", "--todo", "--json"])).unwrap();
    assert_eq!(again, after, "a damaged entry is parsed around");
}
