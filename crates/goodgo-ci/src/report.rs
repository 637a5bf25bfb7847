//! What a run reports: JUnit XML (one test case per step, or per test for libtest steps),
//! GitHub Actions annotations read from a step's log, and a Markdown summary.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::model::JunitFormat;

/// How one step of a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum Outcome {
    /// Ran and succeeded.
    Passed,
    /// Replayed from the cache: no process ran.
    Cached,
    /// Ran and failed (the reason: exit status, timeout).
    Failed(String),
    /// Failed, but the step allows it: dependants still run.
    AllowedFailure(String),
    /// Not run because a dependency failed (named).
    Skipped(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Cached => "cached",
            Outcome::Failed(_) => "failed",
            Outcome::AllowedFailure(_) => "failed (allowed)",
            Outcome::Skipped(_) => "skipped",
        }
    }

    /// True when dependants may run.
    pub fn ok(&self) -> bool {
        matches!(
            self,
            Outcome::Passed | Outcome::Cached | Outcome::AllowedFailure(_)
        )
    }
}

/// One step's result, as the reports see it.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub id: String,
    pub outcome: Outcome,
    pub duration: Duration,
    pub log: String,
    pub junit: Option<JunitFormat>,
}

/// One libtest test: its full name, whether it passed (`None`: ignored) and, when it
/// failed, its captured output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibtestCase {
    pub name: String,
    pub passed: Option<bool>,
    pub output: String,
}

/// Reads `test NAME ... ok|FAILED|ignored` lines and the `---- NAME stdout ----` sections
/// of libtest's plain output. Several test binaries in one log are all read.
pub fn parse_libtest(log: &str) -> Vec<LibtestCase> {
    let mut cases: Vec<LibtestCase> = Vec::new();
    let mut section: Option<(usize, String)> = None;
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("---- ")
            && let Some(name) = rest.strip_suffix(" stdout ----")
        {
            section = cases
                .iter()
                .rposition(|c| c.name == name)
                .map(|i| (i, String::new()));
            continue;
        }
        if let Some((i, text)) = &mut section {
            if line == "failures:" || line.starts_with("---- ") || line.starts_with("test result:")
            {
                cases[*i].output = std::mem::take(text).trim_end().to_string();
                section = None;
            } else {
                text.push_str(line);
                text.push('\n');
                continue;
            }
        }
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, result)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let passed = match result.trim() {
            "ok" => Some(true),
            "FAILED" => Some(false),
            r if r.starts_with("ignored") => None,
            _ => continue,
        };
        cases.push(LibtestCase {
            name: name.trim().to_string(),
            passed,
            output: String::new(),
        });
    }
    if let Some((i, text)) = section {
        cases[i].output = text.trim_end().to_string();
    }
    cases
}

/// The JUnit XML for a run named `name`: one suite per step.
pub fn junit(name: &str, results: &[StepResult]) -> String {
    let mut report = Report::new(name);
    for r in results {
        let mut suite = TestSuite::new(r.id.as_str());
        suite.set_time(r.duration);
        let mut tests = match r.junit {
            Some(JunitFormat::Libtest) if !matches!(r.outcome, Outcome::Skipped(_)) => {
                parse_libtest(&r.log)
            }
            _ => Vec::new(),
        };
        // A failed step whose tests all passed (a build error, a crash): the step itself is
        // reported as its own failed case, so the failure is never lost.
        if !tests.is_empty()
            && matches!(r.outcome, Outcome::Failed(_))
            && !tests.iter().any(|t| t.passed == Some(false))
        {
            tests.clear();
        }
        if tests.is_empty() {
            let status = match &r.outcome {
                Outcome::Passed | Outcome::Cached => TestCaseStatus::success(),
                Outcome::Skipped(why) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(why.as_str());
                    s
                }
                Outcome::Failed(why) | Outcome::AllowedFailure(why) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(why.as_str());
                    s.set_description(tail(&r.log, 100));
                    s
                }
            };
            let mut case = TestCase::new(r.id.as_str(), status);
            case.set_classname(r.id.as_str());
            case.set_time(r.duration);
            suite.add_test_case(case);
        } else {
            for t in tests {
                let status = match t.passed {
                    Some(true) => TestCaseStatus::success(),
                    None => TestCaseStatus::skipped(),
                    Some(false) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        let first = t
                            .output
                            .lines()
                            .find(|l| l.contains("panicked at") || l.contains("assertion"))
                            .unwrap_or("test failed")
                            .to_string();
                        s.set_message(first);
                        s.set_description(t.output.as_str());
                        s
                    }
                };
                let mut case = TestCase::new(t.name.as_str(), status);
                case.set_classname(r.id.as_str());
                suite.add_test_case(case);
            }
        }
        report.add_test_suite(suite);
    }
    report.to_string().unwrap_or_default()
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A located problem found in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl Annotation {
    /// The GitHub Actions workflow command for it.
    pub fn github(&self) -> String {
        format!(
            "::error file={},line={},col={}::{}",
            escape_property(&self.file),
            self.line,
            self.col,
            escape_data(&self.message)
        )
    }
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Located errors in a log: `path:line:col: error: message` lines (goodgo's own form, and
/// many tools'), rustc/clippy's `error…: message` followed by `--> path:line:col`, and
/// cargo's `--message-format=json` lines (`"reason":"compiler-message"` at level error).
pub fn annotations(log: &str) -> Vec<Annotation> {
    let mut out: Vec<Annotation> = Vec::new();
    let mut pending: Option<String> = None;
    for raw in log.lines() {
        let line = strip_ansi(raw);
        let line = line.trim_end();
        if line.starts_with('{') {
            out.extend(compiler_message(line));
            continue;
        }
        if let Some(a) = parse_located(line) {
            out.push(a);
            pending = None;
            continue;
        }
        if line.starts_with("error")
            && line.contains(": ")
            && !line.starts_with("error: could not compile")
        {
            let msg = line.split_once(": ").map_or("", |(_, m)| m).to_string();
            pending = Some(msg);
            continue;
        }
        if let Some(rest) = line.trim_start().strip_prefix("--> ")
            && let Some(msg) = pending.take()
            && let Some((file, l, c)) = split_position(rest.trim())
        {
            out.push(Annotation {
                file,
                line: l,
                col: c,
                message: msg,
            });
        }
    }
    out.dedup();
    out
}

/// An error of cargo's JSON output (`--message-format=json`) at its primary span.
fn compiler_message(line: &str) -> Option<Annotation> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value["reason"] != "compiler-message" {
        return None;
    }
    let message = &value["message"];
    if message["level"] != "error" {
        return None;
    }
    let span = message["spans"]
        .as_array()?
        .iter()
        .find(|s| s["is_primary"] == true)?;
    Some(Annotation {
        file: span["file_name"].as_str()?.to_string(),
        line: u32::try_from(span["line_start"].as_u64()?).ok()?,
        col: u32::try_from(span["column_start"].as_u64()?).ok()?,
        message: message["message"].as_str()?.to_string(),
    })
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `path:line:col: error: message`
fn parse_located(line: &str) -> Option<Annotation> {
    let (head, message) = line.split_once(": error: ")?;
    let (file, l, c) = split_position(head)?;
    Some(Annotation {
        file,
        line: l,
        col: c,
        message: message.to_string(),
    })
}

/// `path:line:col` → parts; the path has no spaces.
fn split_position(s: &str) -> Option<(String, u32, u32)> {
    let mut parts = s.rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let file = parts.next()?;
    if file.is_empty() || file.contains(char::is_whitespace) {
        return None;
    }
    Some((file.to_string(), line, col))
}

/// A Markdown summary: one row per step, then the run's critical path.
pub fn markdown(results: &[StepResult], wall: Duration, critical: &[String]) -> String {
    let mut out = String::from("## goodgo ci\n\n| step | result | time |\n|---|---|---|\n");
    for r in results {
        let icon = match r.outcome {
            Outcome::Passed => "✅",
            Outcome::Cached => "♻️",
            Outcome::Failed(_) => "❌",
            Outcome::AllowedFailure(_) => "⚠️",
            Outcome::Skipped(_) => "⏭️",
        };
        out.push_str(&format!(
            "| `{}` | {icon} {} | {:.1}s |\n",
            r.id,
            r.outcome.label(),
            r.duration.as_secs_f64()
        ));
    }
    let cached = results
        .iter()
        .filter(|r| r.outcome == Outcome::Cached)
        .count();
    out.push_str(&format!(
        "\n{} steps, {cached} from the cache, {:.1}s wall.\n",
        results.len(),
        wall.as_secs_f64()
    ));
    if !critical.is_empty() {
        out.push_str(&format!("Critical path: {}\n", critical.join(" → ")));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LIBTEST: &str = "\nrunning 3 tests\ntest a::one ... ok\ntest a::two ... FAILED\ntest b ... ignored\n\nfailures:\n\n---- a::two stdout ----\nthread 'a::two' panicked at src/lib.rs:3:5:\nboom\n\nfailures:\n    a::two\n\ntest result: FAILED. 1 passed; 1 failed; 1 ignored\n";

    #[test]
    fn libtest_cases_and_failure_output() {
        let cases = parse_libtest(LIBTEST);
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0].passed, Some(true));
        assert_eq!(cases[1].passed, Some(false));
        assert!(cases[1].output.contains("boom"), "{:?}", cases[1]);
        assert_eq!(cases[2].passed, None);
    }

    #[test]
    fn located_errors_become_annotations() {
        let log = "ci/pipeline.yaml:3:7: error: unknown step `x`\nerror[E0308]: mismatched types\n  --> src/main.rs:2:5\n   |\nsome other line\n";
        let a = annotations(log);
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[0].github(),
            "::error file=ci/pipeline.yaml,line=3,col=7::unknown step `x`"
        );
        assert_eq!(a[1].file, "src/main.rs");
        assert_eq!((a[1].line, a[1].col), (2, 5));
        assert_eq!(a[1].message, "mismatched types");
    }

    #[test]
    fn cargo_json_errors_become_annotations() {
        // A line of `cargo check --message-format=json` on a crate with a type error; a
        // build-finished line and a warning are not annotations.
        let error = r#"{"reason":"compiler-message","package_id":"path+file:///tmp/jcrate#0.1.0","manifest_path":"/tmp/jcrate/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"jcrate","src_path":"/tmp/jcrate/src/main.rs","edition":"2024","doc":true,"doctest":false,"test":true},"message":{"rendered":"error[E0308]: mismatched types\n --> src/main.rs:2:18\n  |\n2 |     let x: u32 = \"no\";\n  |            ---   ^^^^ expected `u32`, found `&str`\n  |            |\n  |            expected due to this\n\n","$message_type":"diagnostic","children":[],"level":"error","message":"mismatched types","spans":[{"byte_end":33,"byte_start":29,"column_end":22,"column_start":18,"expansion":null,"file_name":"src/main.rs","is_primary":true,"label":"expected `u32`, found `&str`","line_end":2,"line_start":2,"suggested_replacement":null,"suggestion_applicability":null,"text":[{"highlight_end":22,"highlight_start":18,"text":"    let x: u32 = \"no\";"}]},{"byte_end":26,"byte_start":23,"column_end":15,"column_start":12,"expansion":null,"file_name":"src/main.rs","is_primary":false,"label":"expected due to this","line_end":2,"line_start":2,"suggested_replacement":null,"suggestion_applicability":null,"text":[{"highlight_end":15,"highlight_start":12,"text":"    let x: u32 = \"no\";"}]}],"code":{"code":"E0308","explanation":"Expected type did not match the received type.\n\nErroneous code examples:\n\n```compile_fail,E0308\nfn plus_one(x: i32) -> i32 {\n    x + 1\n}\n\nplus_one(\"Not a number\");\n//       ^^^^^^^^^^^^^^ expected `i32`, found `&str`\n\nif \"Not a bool\" {\n// ^^^^^^^^^^^^ expected `bool`, found `&str`\n}\n\nlet x: f32 = \"Not a float\";\n//     ---   ^^^^^^^^^^^^^ expected `f32`, found `&str`\n//     |\n//     expected due to this\n```\n\nThis error occurs when an expression was used in a place where the compiler\nexpected an expression of a different type. It can occur in several cases, the\nmost common being when calling a function and passing an argument which has a\ndifferent type than the matching type in the function declaration.\n"}}}"#;
        let log =
            format!("{error}\n{{\"reason\":\"build-finished\",\"success\":false}}\nnot json {{\n");
        let a = annotations(&log);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].file, "src/main.rs");
        assert_eq!((a[0].line, a[0].col), (2, 18));
        assert_eq!(a[0].message, "mismatched types");
        let warning = error.replace(r#""level":"error""#, r#""level":"warning""#);
        assert!(annotations(&warning).is_empty());
    }
}
