//! Which services run, and in what order: profiles, selection and dependency waves.
//!
//! Why its own module: starting a project is "these services, dependencies first", and
//! both runtimes need the same answer. The scheduling itself is `goodgo_graph` (pure,
//! on indices, property-tested); this module maps names to indices and decides membership.
//!
//! The rules follow `docker compose`:
//! - A service without `profiles` is always enabled; one with `profiles` is enabled when one
//!   of them is enabled (`*` enables all) or when the service is selected by name.
//! - No selection means every enabled service.
//! - Dependencies come along transitively. A needed dependency that is disabled is an
//!   error naming the profiles that would enable it — unless the dependency was written
//!   with `required: false`, which skips it (Compose only warns there).
//! - Waves: a service's wave is one more than its latest dependency's; names are sorted
//!   within a wave. A cycle is an error naming it: `a -> b -> a`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use goodgo_graph as graph;
use goodgo_yaml::{Pos, did_you_mean};

use crate::error::ComposeError;
use crate::model::{Project, Service};

/// Whether `service` is enabled by `profiles` (without being selected by name).
pub fn is_enabled(service: &Service, profiles: &[&str]) -> bool {
    service.profiles.is_empty()
        || profiles.contains(&"*")
        || service
            .profiles
            .iter()
            .any(|p| profiles.contains(&p.as_str()))
}

/// An error at the `depends_on` entry of `service` for `dep` (in `file` for a service
/// built by hand, whose places name no file).
fn dep_error(service: &Service, dep: &str, file: &Path, message: String) -> ComposeError {
    let place = service.dependency_place(dep);
    let file = if place.file.as_os_str().is_empty() {
        file
    } else {
        place.file.as_path()
    };
    ComposeError::at(file, place.pos, message)
}

/// The dependency lists as indices into `names`.
fn index_deps(
    services: &BTreeMap<String, Service>,
    names: &[String],
    file: &Path,
) -> Result<Vec<Vec<usize>>, ComposeError> {
    let index = graph::index_of(names);
    let mut deps = Vec::with_capacity(names.len());
    for service in services.values() {
        let mut ds = Vec::new();
        for dep in service.depends_on.keys() {
            match index.get(dep.as_str()) {
                Some(&d) if d < names.len() && names[d] == service.name => {
                    return Err(dep_error(
                        service,
                        dep,
                        file,
                        format!(
                            "services.{}.depends_on: the service `{dep}` cannot depend on itself",
                            service.name
                        ),
                    ));
                }
                Some(&d) => ds.push(d),
                None if service.optional_deps.contains(dep) => {}
                None => {
                    return Err(dep_error(
                        service,
                        dep,
                        file,
                        format!("services.{}.depends_on: no service `{dep}`", service.name),
                    ));
                }
            }
        }
        deps.push(ds);
    }
    Ok(deps)
}

/// An error for the shortest cycle among `include`d services, if there is one.
fn cycle_error(
    services: &BTreeMap<String, Service>,
    names: &[String],
    deps: &[Vec<usize>],
    include: &[bool],
    file: &Path,
) -> Option<ComposeError> {
    let within: Vec<Vec<usize>> = deps
        .iter()
        .enumerate()
        .map(|(i, ds)| {
            if include[i] {
                ds.iter().copied().filter(|&d| include[d]).collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    let cycle = graph::shortest_cycle(&within, names)?;
    let first = *cycle.first()?;
    let second = names.get(*cycle.get(1).unwrap_or(&first))?;
    let mut chain: Vec<&str> = cycle.iter().map(|&i| names[i].as_str()).collect();
    chain.push(names[first].as_str());
    let service = services.get(&names[first])?;
    Some(dep_error(
        service,
        second,
        file,
        format!(
            "services.{}.depends_on: dependency cycle: {}",
            names[first],
            chain.join(" -> ")
        ),
    ))
}

/// Refuses dependency cycles among all services, whatever their profiles.
pub(crate) fn check_cycles(
    services: &BTreeMap<String, Service>,
    file: &Path,
) -> Result<(), ComposeError> {
    let names: Vec<String> = services.keys().cloned().collect();
    let deps = index_deps(services, &names, file)?;
    match cycle_error(services, &names, &deps, &vec![true; names.len()], file) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The services to run for `selected` (all enabled ones when empty) under `profiles`,
/// with their dependencies, in waves: each wave depends only on earlier ones.
pub fn waves(
    project: &Project,
    selected: &[&str],
    profiles: &[&str],
) -> Result<Vec<Vec<String>>, ComposeError> {
    let services = &project.services;
    let file = project.file.as_path();
    let names: Vec<String> = services.keys().cloned().collect();
    let index = graph::index_of(&names);
    let mut explicit = BTreeSet::new();
    for &name in selected {
        match index.get(name) {
            Some(&i) => {
                explicit.insert(i);
            }
            None => {
                return Err(ComposeError::UnknownService {
                    name: name.to_string(),
                    file: project.file.clone(),
                    suggestion: did_you_mean(name, names.iter().map(String::as_str))
                        .map(str::to_string),
                });
            }
        }
    }
    let deps = index_deps(services, &names, file)?;
    let all: Vec<&Service> = services.values().collect();
    let enabled = |i: usize| explicit.contains(&i) || is_enabled(all[i], profiles);
    let mut include = vec![false; names.len()];
    let mut todo: Vec<usize> = if selected.is_empty() {
        (0..names.len()).filter(|&i| enabled(i)).collect()
    } else {
        explicit.iter().copied().collect()
    };
    for &i in &todo {
        include[i] = true;
    }
    while let Some(i) = todo.pop() {
        let service = all[i];
        for &d in &deps[i] {
            if include[d] {
                continue;
            }
            if !enabled(d) {
                if service.optional_deps.contains(&names[d]) {
                    continue;
                }
                let list = all[d]
                    .profiles
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(dep_error(
                    service,
                    &names[d],
                    file,
                    format!(
                        "services.{}.depends_on: `{}` is needed by `{}` but disabled: enable its profile ({list}) or select it by name",
                        service.name, names[d], service.name
                    ),
                ));
            }
            include[d] = true;
            todo.push(d);
        }
    }
    // Optional dependencies left out must not hold their dependents back.
    let deps: Vec<Vec<usize>> = deps
        .iter()
        .map(|ds| ds.iter().copied().filter(|&d| include[d]).collect())
        .collect();
    match graph::waves(&deps, &include, &names) {
        Some(waves) => Ok(waves
            .into_iter()
            .map(|w| w.into_iter().map(|i| names[i].clone()).collect())
            .collect()),
        None => Err(
            cycle_error(services, &names, &deps, &include, file).unwrap_or_else(|| {
                ComposeError::at(file, Pos::new(1, 1), "services: dependency cycle")
            }),
        ),
    }
}
