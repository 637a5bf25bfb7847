//! The goodgo command line as a user meets it: help, usage errors, settings, broken
//! goodgo.yaml files, completions. Each test spawns the real binary.

use std::fs;

use goodgo_testkit::{assert_cmd_snapshot, assert_text_snapshot};

use crate::{Filters, Run, TestContext, context, goodgo, run};

/// Runs `goodgo ARGS` in `ctx` and snapshots what it printed as `name`.
fn snapshot(ctx: &TestContext, name: &str, args: &[&str]) -> Run {
    assert_cmd_snapshot!(name, ctx.filters(), ctx.command().args(args))
}

/// The first message of the `{"error": …}` object a `--json` run that failed as a usage or
/// configuration error wrote on stdout, which says exit code 2, as the run ended.
fn json_usage_error(out: &Run) -> String {
    assert_eq!(out.code, 2, "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["error"]["exit_code"], 2, "{json}");
    json["error"]["messages"][0].as_str().unwrap().to_string()
}

#[test]
fn help_is_written_for_humans() {
    let ctx = context();
    let out = snapshot(&ctx, "help", &["--help"]);
    assert_eq!(out.code, 0);
}

#[test]
fn version_prints_the_crate_version() {
    let tmp = context();
    let out = run(goodgo(tmp.path()).arg("--version"));
    assert_eq!(
        (out.code, out.stdout.trim()),
        (0, concat!("goodgo ", env!("CARGO_PKG_VERSION")))
    );
    // The bare `--version`/`-V` short-cut says exactly what clap says when other flags
    // come with it (`-q --version` goes through clap).
    let clap = run(goodgo(tmp.path()).args(["-q", "--version"]));
    for flag in ["--version", "-V"] {
        let fast = run(goodgo(tmp.path()).arg(flag));
        assert_eq!(
            (fast.code, &fast.stdout, &fast.stderr),
            (clap.code, &clap.stdout, &clap.stderr),
            "{flag}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let ctx = context();
    // An unknown subcommand, with the close one (`doctor`) suggested.
    snapshot(&ctx, "usage_unknown_subcommand", &["doctr"])
        .assert_stderr(2, &["unrecognized subcommand 'doctr'", "doctor"]);
    let out = snapshot(&ctx, "usage_unknown_shell", &["completions", "tcsh"]);
    assert_eq!(out.code, 2);
}

#[test]
fn missing_directory_for_dash_c_is_bad_input() {
    let ctx = context();
    let out = snapshot(&ctx, "dash_c_missing_directory", &["-C", "nope", "config"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("error: -C "), "{}", out.stderr);
}

/// Each file in tests/fixtures/broken-config names the position of its error in its first
/// line (`# expect: LINE:COL`), and every command reports it with exit 2.
#[test]
fn broken_goodgo_yaml_is_reported_by_every_command() {
    let corpus = crate::broken_corpus(&crate::repo().join("cli/tests/fixtures/broken-config"));
    assert!(corpus.len() >= 5, "the corpus has its cases");
    let mut report = String::new();
    for crate::Broken { name, text, expect } in corpus {
        let tmp = context();
        fs::write(tmp.path().join("goodgo.yaml"), &text).unwrap();
        for args in [
            &["config"][..],
            &["doctor"],
            &["--json", "config"],
            &["completions", "bash"],
        ] {
            let out = run(goodgo(tmp.path()).args(args));
            assert_eq!(out.code, 2, "{name} with {args:?}: {}", out.stderr);
            let want = format!("goodgo.yaml:{expect}: error: ");
            assert!(
                out.stderr.starts_with(&want),
                "{name} with {args:?}: want {want}, got {}",
                out.stderr
            );
        }
        let out = run(goodgo(tmp.path()).arg("config"));
        report.push_str(&format!("== {name}\n{}", out.stderr));
    }
    assert_text_snapshot!("broken_config", Filters::none(), report);
}

#[test]
fn an_unreadable_goodgo_yaml_is_bad_configuration() {
    // A folder cannot be read as a file, even by root (unlike a file without permission).
    let ctx = context();
    ctx.mkdir("goodgo.yaml");
    ctx.mkdir("sub");
    for (name, args) in [
        ("unreadable_config_config", &["config"][..]),
        ("unreadable_config_doctor", &["doctor"]),
        ("unreadable_config_plan_check", &["plan", "check"]),
    ] {
        let out = assert_cmd_snapshot!(name, ctx.filters(), ctx.command_in("sub").args(args));
        out.assert_stderr(2, &["hint: "]);
        assert!(
            out.stderr
                .starts_with("error: cannot read ../goodgo.yaml: "),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn json_errors_keep_stdout_machine_readable() {
    let ctx = context().with_file("goodgo.yaml", "runtime: dokcer\n");
    let first = json_usage_error(&snapshot(&ctx, "json_error", &["--json", "config"]));
    assert!(first.contains("did you mean `docker`"), "{first}");
}

#[test]
fn an_empty_goodgo_yaml_means_all_defaults() {
    let tmp = context();
    let ws = tmp.path().join("shop");
    fs::create_dir_all(ws.join("deep/er")).unwrap();
    fs::write(ws.join("goodgo.yaml"), "").unwrap();
    // Found from a subfolder, and from elsewhere with -C.
    for mut cmd in [goodgo(&ws.join("deep/er")), {
        let mut c = goodgo(tmp.path());
        c.args(["-C", "shop/deep"]);
        c
    }] {
        let out = run(cmd.args(["--json", "config"]));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let json = out.json();
        assert_eq!(json["workspace"], ws.display().to_string());
        assert_eq!(json["settings"]["name"]["value"], "shop");
        assert_eq!(
            json["settings"]["runtime"],
            serde_json::json!({"value": "auto", "source": "default"})
        );
    }
}

#[test]
fn settings_layer_file_then_environment() {
    let ctx = context().with_file("goodgo.yaml", "name: shop\nruntime: native\nenv: staging\n");
    let out = assert_cmd_snapshot!(
        "config_layers",
        ctx.filters(),
        ctx.command().env("GOODGO_RUNTIME", "docker").arg("config")
    );
    assert_eq!(out.code, 0, "{}", out.stderr);

    let out = assert_cmd_snapshot!(
        "config_bad_env",
        ctx.filters(),
        ctx.command().env("GOODGO_ENV", "prod").arg("config")
    );
    assert_eq!(out.code, 2);
}

#[test]
fn completions_for_every_shell() {
    let tmp = context();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef goodgo"),
        ("fish", "complete -c goodgo"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = run(goodgo(tmp.path()).args(["completions", shell]));
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.contains(marker), "{shell} script lacks {marker}");
        assert!(
            out.stdout.contains("doctor"),
            "{shell} script knows the subcommands"
        );
        let json = run(goodgo(tmp.path()).args(["--json", "completions", shell]));
        assert_eq!(json.code, 0, "{shell} --json: {}", json.stderr);
        let value = json.json();
        assert_eq!(value["shell"], shell);
        assert_eq!(
            value["script"],
            out.stdout.as_str(),
            "--json wraps the same script"
        );
    }
}

#[test]
fn color_follows_the_flag_and_no_color() {
    let tmp = context();
    fs::write(tmp.path().join("goodgo.yaml"), "runtime: dokcer\n").unwrap();
    // (--color, NO_COLOR, coloured): colour forced on; NO_COLOR wins with auto.
    for (color, no_color, coloured) in [("always", None, true), ("auto", Some("1"), false)] {
        let mut cmd = goodgo(tmp.path());
        cmd.args(["--color", color, "config"]);
        if let Some(value) = no_color {
            cmd.env("NO_COLOR", value);
        }
        let out = run(&mut cmd);
        assert_eq!(
            out.stderr.contains("\u{1b}["),
            coloured,
            "--color {color}, NO_COLOR {no_color:?}: {:?}",
            out.stderr
        );
    }
}

/// With `--json`, a command line clap cannot parse still answers JSON on stdout (and
/// clap's own message on stderr): a JSON reader never sees an empty stdout.
#[test]
fn json_usage_errors_are_json_too() {
    let ctx = context();
    for args in [
        &["--json", "doctr"][..],
        &["--json", "up", "--no-such-flag"],
        &["db", "--json", "new"],
    ] {
        let out = run(ctx.command().args(args));
        let first = json_usage_error(&out);
        assert!(
            out.stderr.contains(&first),
            "{args:?}: {first} / {}",
            out.stderr
        );
        assert!(!first.starts_with("error:"), "{first}");
    }
    // Without --json the usage error stays on stderr only.
    let out = run(ctx.command().args(["doctr"]));
    assert_eq!(out.code, 2);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}
