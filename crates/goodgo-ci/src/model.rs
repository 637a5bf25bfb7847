//! The pipeline file: steps, their commands, inputs and dependencies, checked into a graph.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use goodgo_diag::{Class, Diagnostic, Location};
use goodgo_yaml::{Pos, Spanned};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    #[serde(default)]
    steps: BTreeMap<String, Spanned<RawStep>>,
}

/// A step's command: one shell line (run by `sh -c`) or an argv list (run directly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Run {
    Line(String),
    Argv(Vec<String>),
}

/// What a step needs running next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// A throwaway, migrated PostgreSQL database; its URL is in `DATABASE_URL`.
    Postgres,
}

/// How to read a step's log into test cases for JUnit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JunitFormat {
    /// `cargo test`'s plain output (`test name ... ok`).
    Libtest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    run: Spanned<Run>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    deps: Vec<Spanned<String>>,
    #[serde(default)]
    inputs: Vec<Spanned<String>>,
    #[serde(default)]
    env: Vec<Spanned<String>>,
    #[serde(default)]
    outputs: Vec<Spanned<String>>,
    #[serde(default)]
    tools: Vec<Spanned<String>>,
    #[serde(default)]
    services: Vec<Service>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    allow_failure: bool,
    #[serde(default)]
    cache: Option<bool>,
    #[serde(default)]
    junit: Option<JunitFormat>,
    #[serde(default)]
    lint: bool,
    #[serde(default)]
    test: bool,
    #[serde(default)]
    fix: Option<Run>,
}

/// One checked step.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub pos: Pos,
    pub run: Run,
    pub description: Option<String>,
    /// Input globs, relative to the workspace root.
    pub inputs: Vec<String>,
    pub inputs_set: globset::GlobSet,
    /// The same globs, one by one: the workspace walk matches every step's at once.
    pub input_globs: Vec<globset::Glob>,
    /// Environment variable names or globs (`GOODGO_*`) whose values enter the key.
    pub env: Vec<String>,
    pub env_set: globset::GlobSet,
    pub outputs: Vec<String>,
    pub outputs_set: globset::GlobSet,
    /// Programs whose `--version` enters the key.
    pub tools: Vec<String>,
    pub services: Vec<Service>,
    pub timeout: Option<Duration>,
    pub allow_failure: bool,
    /// False: never stored nor read from the cache.
    pub cache: bool,
    pub junit: Option<JunitFormat>,
    /// A lint step: `goodgo lint` runs it.
    pub lint: bool,
    /// A test step: `goodgo test` runs it (with a fresh database when the workspace has
    /// migrations).
    pub test: bool,
    /// The command that fixes what the step checks (`goodgo lint --fix`).
    pub fix: Option<Run>,
}

impl Step {
    /// The command as one line, for messages.
    pub fn command_line(&self) -> String {
        match &self.run {
            Run::Line(line) => line.clone(),
            Run::Argv(argv) => argv.join(" "),
        }
    }
}

/// A checked pipeline: steps sorted by id, with their dependency graph on indices.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub path: PathBuf,
    pub steps: Vec<Step>,
    /// `deps[i]`: the steps step `i` depends on.
    pub deps: Vec<Vec<usize>>,
    /// `dependents[i]`: the steps depending on `i`.
    pub dependents: Vec<Vec<usize>>,
    pub ids: Vec<String>,
}

/// A problem in the pipeline file, or the file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Load(#[from] goodgo_yaml::LoadError),
    /// What the check found, sorted by position; the error shows the first, [`Self::lines`]
    /// all of them.
    #[error("{}", .problems[0].1)]
    Invalid {
        path: PathBuf,
        problems: Vec<(Pos, String)>,
    },
}

impl PipelineError {
    /// Every problem as a `path:line:col: error: message` line.
    pub fn lines(&self) -> Vec<String> {
        match self {
            PipelineError::Load(goodgo_yaml::LoadError::Invalid(e)) => vec![format!(
                "{}:{}: error: {}",
                e.path.display(),
                e.pos,
                e.message
            )],
            PipelineError::Load(e) => vec![e.to_string()],
            PipelineError::Invalid { path, problems } => problems
                .iter()
                .map(|(pos, msg)| format!("{}:{pos}: error: {msg}", path.display()))
                .collect(),
        }
    }
}

impl Diagnostic for PipelineError {
    fn class(&self) -> Option<Class> {
        Some(Class::Input)
    }

    fn location(&self) -> Option<Location<'_>> {
        match self {
            PipelineError::Load(e) => e.location(),
            PipelineError::Invalid { path, problems } => {
                problems.first().map(|(pos, message)| Location {
                    path,
                    line: pos.line,
                    col: pos.col,
                    message,
                })
            }
        }
    }
}

impl Pipeline {
    /// Reads and checks the pipeline at `path`; `shown` is the path used in messages.
    pub fn load(path: &Path, shown: &Path) -> Result<Self, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            PipelineError::Load(goodgo_yaml::LoadError::Read {
                path: shown.to_path_buf(),
                source,
            })
        })?;
        Self::parse(shown, &text)
    }

    /// Parses and checks pipeline `text` read from `path` (used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, PipelineError> {
        let raw: RawPipeline =
            goodgo_yaml::from_str(path, text).map_err(goodgo_yaml::LoadError::from)?;
        check(path, raw)
    }
}

fn glob_set(
    globs: &[Spanned<String>],
    what: &str,
    problems: &mut Vec<(Pos, String)>,
) -> (Vec<String>, globset::GlobSet, Vec<globset::Glob>) {
    let mut builder = globset::GlobSetBuilder::new();
    let mut out = Vec::new();
    let mut compiled = Vec::new();
    for g in globs {
        let pattern = g.value.trim_start_matches("./");
        match globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
        {
            Ok(glob) => {
                compiled.push(glob.clone());
                builder.add(glob);
                // A folder name matches what is under it, as in Turborepo's inputs.
                if !pattern.contains(['*', '?', '[', '{'])
                    && !pattern.contains('.')
                    && let Ok(under) = globset::Glob::new(&format!("{pattern}/**"))
                {
                    compiled.push(under.clone());
                    builder.add(under);
                }
                out.push(pattern.to_string());
            }
            Err(e) => problems.push((
                Pos::of(g),
                format!("bad {what} glob `{}`: {}", g.value, e.kind()),
            )),
        }
    }
    let set = builder
        .build()
        .unwrap_or_else(|_| globset::GlobSet::empty());
    (out, set, compiled)
}

fn check(path: &Path, raw: RawPipeline) -> Result<Pipeline, PipelineError> {
    let mut problems: Vec<(Pos, String)> = Vec::new();
    let ids: Vec<String> = raw.steps.keys().cloned().collect();
    let index = goodgo_graph::index_of(&ids);
    let mut steps = Vec::new();
    let mut deps: Vec<Vec<usize>> = Vec::new();
    let mut dep_pos: Vec<Vec<Pos>> = Vec::new();
    for (id, spanned) in &raw.steps {
        let pos = Pos::of(spanned);
        let s = &spanned.value;
        if id.is_empty() || id.contains(char::is_whitespace) {
            problems.push((pos, format!("step id `{id}` must be one word")));
        }
        match &s.run.value {
            Run::Line(line) if line.trim().is_empty() => {
                problems.push((Pos::of(&s.run), format!("step `{id}`: `run` is empty")))
            }
            Run::Argv(argv) if argv.is_empty() => problems.push((
                Pos::of(&s.run),
                format!("step `{id}`: `run` is an empty list"),
            )),
            _ => {}
        }
        let mut ds = Vec::new();
        let mut ps = Vec::new();
        for d in &s.deps {
            match index.get(d.value.as_str()) {
                Some(&j) if d.value == *id => {
                    let _ = j;
                    problems.push((Pos::of(d), format!("step `{id}` depends on itself")));
                }
                Some(&j) => {
                    if !ds.contains(&j) {
                        ds.push(j);
                        ps.push(Pos::of(d));
                    }
                }
                None => {
                    let mut msg = format!("step `{id}` depends on unknown step `{}`", d.value);
                    if let Some(best) =
                        goodgo_yaml::did_you_mean(&d.value, ids.iter().map(String::as_str))
                    {
                        msg.push_str(&format!(" (did you mean `{best}`?)"));
                    }
                    problems.push((Pos::of(d), msg));
                }
            }
        }
        let (inputs, inputs_set, input_globs) = glob_set(&s.inputs, "input", &mut problems);
        let (outputs, outputs_set, _) = glob_set(&s.outputs, "output", &mut problems);
        let mut env_builder = globset::GlobSetBuilder::new();
        let mut env = Vec::new();
        for name in &s.env {
            match globset::Glob::new(&name.value) {
                Ok(g) if !name.value.is_empty() && !name.value.contains('=') => {
                    env_builder.add(g);
                    env.push(name.value.clone());
                }
                Ok(_) => problems.push((
                    Pos::of(name),
                    format!(
                        "bad env name `{}`: expected a variable name or a glob like `GOODGO_*`",
                        name.value
                    ),
                )),
                Err(e) => problems.push((
                    Pos::of(name),
                    format!("bad env glob `{}`: {}", name.value, e.kind()),
                )),
            }
        }
        let timeout = match &s.timeout {
            None => None,
            Some(t) => match humantime::parse_duration(&t.value) {
                Ok(d) if !d.is_zero() => Some(d),
                Ok(_) => {
                    problems.push((Pos::of(t), "timeout must be more than zero".to_string()));
                    None
                }
                Err(e) => {
                    problems.push((
                        Pos::of(t),
                        format!("bad timeout `{}`: {e} (write e.g. `90s`, `10m`)", t.value),
                    ));
                    None
                }
            },
        };
        let mut services = s.services.clone();
        services.sort();
        services.dedup();
        steps.push(Step {
            id: id.clone(),
            pos,
            run: s.run.value.clone(),
            description: s.description.clone(),
            inputs,
            inputs_set,
            input_globs,
            env,
            env_set: env_builder
                .build()
                .unwrap_or_else(|_| globset::GlobSet::empty()),
            outputs,
            outputs_set,
            tools: s.tools.iter().map(|t| t.value.clone()).collect(),
            services,
            timeout,
            allow_failure: s.allow_failure,
            cache: s.cache.unwrap_or(true),
            junit: s.junit,
            lint: s.lint,
            test: s.test,
            fix: s.fix.clone(),
        });
        deps.push(ds);
        dep_pos.push(ps);
    }
    if let Some(cycle) = goodgo_graph::shortest_cycle(&deps, &ids) {
        let mut shown: Vec<&str> = cycle.iter().map(|&i| ids[i].as_str()).collect();
        shown.push(&ids[cycle[0]]);
        // The cycle's first edge: where `cycle[0]` names `cycle[1]` (or the step itself).
        let first = cycle[0];
        let next = cycle.get(1).copied().unwrap_or(first);
        let pos = deps[first]
            .iter()
            .position(|&d| d == next)
            .map(|k| dep_pos[first][k])
            .unwrap_or(steps[first].pos);
        problems.push((pos, format!("dependency cycle: {}", shown.join(" -> "))));
    }
    if !problems.is_empty() {
        problems.sort_by_key(|(pos, _)| *pos);
        return Err(PipelineError::Invalid {
            path: path.to_path_buf(),
            problems,
        });
    }
    let mut dependents = vec![Vec::new(); ids.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    Ok(Pipeline {
        path: path.to_path_buf(),
        steps,
        deps,
        dependents,
        ids,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<Pipeline, PipelineError> {
        Pipeline::parse(Path::new("ci/pipeline.yaml"), text)
    }

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => Vec::new(),
            Err(e) => e.lines(),
        }
    }

    #[test]
    fn a_good_pipeline_resolves() {
        let p = parse(
            "steps:\n  a: { run: echo a, inputs: [\"src/**/*.rs\"], env: [\"GOODGO_*\"], timeout: 1m }\n  b: { run: [echo, b], deps: [a] }\n",
        )
        .unwrap();
        assert_eq!(p.ids, ["a", "b"]);
        assert_eq!(p.deps, vec![vec![], vec![0]]);
        assert_eq!(p.steps[0].timeout, Some(Duration::from_secs(60)));
        assert!(p.steps[0].inputs_set.is_match("src/x/y.rs"));
        assert!(!p.steps[0].inputs_set.is_match("src/x/y.txt"));
        assert!(p.steps[0].env_set.is_match("GOODGO_MODE"));
    }

    #[test]
    fn broken_pipelines_are_located() {
        assert_eq!(
            problems("steps:\n  a: { run: make, deps: [b] }\n  b: { run: make, deps: [a] }\n"),
            ["ci/pipeline.yaml:2:26: error: dependency cycle: a -> b -> a"]
        );
        assert_eq!(
            problems("steps:\n  test: { run: x, deps: [tset] }\n"),
            [
                "ci/pipeline.yaml:2:26: error: step `test` depends on unknown step `tset` (did you mean `test`?)"
            ]
        );
        let bad = problems("steps:\n  a:\n    run: x\n    inputs: [\"src/[\"]\n");
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].starts_with("ci/pipeline.yaml:4:14: error: bad input glob `src/[`"),
            "{bad:?}"
        );
        let wrong = problems("steps:\n  a:\n    run: x\n    allow_failure: maybe\n");
        assert_eq!(wrong.len(), 1);
        assert!(wrong[0].starts_with("ci/pipeline.yaml:4:"), "{wrong:?}");
        let unknown = problems("steps:\n  a:\n    run: x\n    dep: [b]\n");
        assert!(unknown[0].contains("unknown key `dep`"), "{unknown:?}");
    }
}
