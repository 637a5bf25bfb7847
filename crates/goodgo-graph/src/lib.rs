//! Scheduling on a dependency graph of indices. Pure: no I/O, no plan, Compose or CI types.
//!
//! Why its own crate: the milestone plan (`goodgo-plan`), the Compose start order
//! (`goodgo-compose`) and the CI pipeline all schedule a DAG; they share this one core and
//! its property tests instead of depending on each other.
//!
//! `deps[i]` lists the tasks `i` depends on. `include[i]` says whether `i` takes part
//! (excluded tasks count as already satisfied). `ids[i]` breaks ties: smaller id first.

use std::collections::{BTreeMap, VecDeque};

/// The index of each id in `ids`: how names written in a file become the indices the
/// functions here work on.
pub fn index_of(ids: &[String]) -> BTreeMap<&str, usize> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect()
}

/// The included tasks in an order where every dependency comes first, or the tasks left
/// over when a cycle prevents that.
pub fn topo_order(deps: &[Vec<usize>], include: &[bool]) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut pending = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        if !include[i] {
            continue;
        }
        for &d in ds {
            if include[d] {
                pending[i] += 1;
                dependents[d].push(i);
            }
        }
    }
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| include[i] && pending[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = queue.pop_front() {
        order.push(i);
        for &j in &dependents[i] {
            pending[j] -= 1;
            if pending[j] == 0 {
                queue.push_back(j);
            }
        }
    }
    let total = include.iter().filter(|&&b| b).count();
    if order.len() == total {
        Ok(order)
    } else {
        Err((0..n).filter(|&i| include[i] && pending[i] > 0).collect())
    }
}

/// Topological waves: a task's wave is one more than the latest wave of its included
/// dependencies (0 when it has none). Ids are sorted within a wave. `None` on a cycle.
pub fn waves(deps: &[Vec<usize>], include: &[bool], ids: &[String]) -> Option<Vec<Vec<usize>>> {
    let order = topo_order(deps, include).ok()?;
    let mut wave = vec![0usize; deps.len()];
    let mut out: Vec<Vec<usize>> = Vec::new();
    for &i in &order {
        wave[i] = deps[i]
            .iter()
            .filter(|&&d| include[d])
            .map(|&d| wave[d] + 1)
            .max()
            .unwrap_or(0);
        if out.len() <= wave[i] {
            out.resize_with(wave[i] + 1, Vec::new);
        }
        out[wave[i]].push(i);
    }
    for w in &mut out {
        w.sort_by(|&a, &b| ids[a].cmp(&ids[b]));
    }
    Some(out)
}

/// The longest chain by summed weight over included tasks, dependencies first, and its
/// total. Ties go to the smaller id, both for where the chain ends and for each step.
pub fn critical_path(
    deps: &[Vec<usize>],
    include: &[bool],
    weight: &[f64],
    ids: &[String],
) -> Option<(Vec<usize>, f64)> {
    let order = topo_order(deps, include).ok()?;
    let mut best = vec![0.0f64; deps.len()];
    let mut pred: Vec<Option<usize>> = vec![None; deps.len()];
    for &i in &order {
        let mut chosen: Option<usize> = None;
        for &d in deps[i].iter().filter(|&&d| include[d]) {
            chosen = match chosen {
                Some(c) if best[c] > best[d] || (best[c] == best[d] && ids[c] < ids[d]) => Some(c),
                _ => Some(d),
            };
        }
        best[i] = weight[i] + chosen.map_or(0.0, |c| best[c]);
        pred[i] = chosen;
    }
    let end = order.iter().copied().reduce(|a, b| {
        if best[b] > best[a] || (best[b] == best[a] && ids[b] < ids[a]) {
            b
        } else {
            a
        }
    })?;
    let mut path = vec![end];
    while let Some(p) = pred[path[path.len() - 1]] {
        path.push(p);
    }
    path.reverse();
    Some((path, best[end]))
}

/// For each included task, the heaviest chain that starts at it and runs through what
/// depends on it: how much remaining work waits behind it. 0 for excluded tasks.
pub fn tails(deps: &[Vec<usize>], include: &[bool], weight: &[f64]) -> Option<Vec<f64>> {
    let order = topo_order(deps, include).ok()?;
    let mut tail = vec![0.0f64; deps.len()];
    for &i in order.iter().rev() {
        tail[i] += weight[i];
        for &d in deps[i].iter().filter(|&&d| include[d]) {
            tail[d] = tail[d].max(tail[i]);
        }
    }
    Some(tail)
}

/// The shortest dependency cycle, as `[a, b, c]` for `a -> b -> c -> a`, starting at the
/// smallest id on it; `None` when the graph is acyclic. Self-loops are ignored (they are
/// reported on their own).
pub fn shortest_cycle(deps: &[Vec<usize>], ids: &[String]) -> Option<Vec<usize>> {
    let n = deps.len();
    let no_self: Vec<Vec<usize>> = deps
        .iter()
        .enumerate()
        .map(|(i, ds)| ds.iter().copied().filter(|&d| d != i).collect())
        .collect();
    let all = vec![true; n];
    let stuck = match topo_order(&no_self, &all) {
        Ok(_) => return None,
        Err(stuck) => stuck,
    };
    let mut in_stuck = vec![false; n];
    for &i in &stuck {
        in_stuck[i] = true;
    }
    let mut starts = stuck.clone();
    starts.sort_by(|&a, &b| ids[a].cmp(&ids[b]));
    let mut best: Option<Vec<usize>> = None;
    let mut parent = vec![usize::MAX; n];
    let mut depth = vec![usize::MAX; n];
    for &s in &starts {
        let limit = best.as_ref().map_or(usize::MAX, Vec::len);
        // BFS from s along dependency edges, looking for the way back to s.
        let mut touched = vec![s];
        depth[s] = 0;
        let mut queue = VecDeque::from([s]);
        let mut found: Option<usize> = None;
        'bfs: while let Some(u) = queue.pop_front() {
            if depth[u] + 1 >= limit {
                break;
            }
            for &v in &no_self[u] {
                if !in_stuck[v] {
                    continue;
                }
                if v == s {
                    found = Some(u);
                    break 'bfs;
                }
                if depth[v] == usize::MAX {
                    depth[v] = depth[u] + 1;
                    parent[v] = u;
                    touched.push(v);
                    queue.push_back(v);
                }
            }
        }
        if let Some(last) = found {
            let mut cycle = vec![last];
            while cycle[cycle.len() - 1] != s {
                cycle.push(parent[cycle[cycle.len() - 1]]);
            }
            cycle.reverse();
            best = Some(cycle);
        }
        for t in touched {
            depth[t] = usize::MAX;
            parent[t] = usize::MAX;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("T{i:05}")).collect()
    }

    /// A random DAG: each task depends only on tasks with smaller index.
    fn dag() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<f64>)> {
        (1usize..40).prop_flat_map(|n| {
            let deps = (0..n)
                .map(|i| {
                    proptest::collection::vec(0..i.max(1), 0..4.min(i + 1)).prop_map(
                        move |mut v| {
                            v.retain(|&d| d < i);
                            v.sort();
                            v.dedup();
                            v
                        },
                    )
                })
                .collect::<Vec<_>>();
            let weights = proptest::collection::vec(1u8..5, n)
                .prop_map(|w| w.into_iter().map(f64::from).collect());
            (deps, weights)
        })
    }

    /// Every path's weight, by brute force, to check the critical path is maximal.
    fn heaviest(deps: &[Vec<usize>], w: &[f64]) -> f64 {
        fn go(i: usize, deps: &[Vec<usize>], w: &[f64]) -> f64 {
            w[i] + deps[i].iter().map(|&d| go(d, deps, w)).fold(0.0, f64::max)
        }
        (0..deps.len()).map(|i| go(i, deps, w)).fold(0.0, f64::max)
    }

    proptest! {
        #[test]
        fn waves_respect_every_edge((deps, _w) in dag()) {
            let n = deps.len();
            let ids = ids(n);
            let waves = waves(&deps, &vec![true; n], &ids).unwrap();
            let mut wave_of = vec![usize::MAX; n];
            for (k, w) in waves.iter().enumerate() {
                for &i in w { wave_of[i] = k; }
            }
            prop_assert!(wave_of.iter().all(|&k| k != usize::MAX), "every task is scheduled once");
            for (i, ds) in deps.iter().enumerate() {
                for &d in ds { prop_assert!(wave_of[d] < wave_of[i]); }
                // A task is in the earliest possible wave.
                let want = ds.iter().map(|&d| wave_of[d] + 1).max().unwrap_or(0);
                prop_assert_eq!(wave_of[i], want);
            }
        }

        #[test]
        fn critical_path_is_a_real_chain_and_maximal((deps, w) in dag()) {
            let n = deps.len();
            let (path, days) = critical_path(&deps, &vec![true; n], &w, &ids(n)).unwrap();
            for pair in path.windows(2) {
                prop_assert!(deps[pair[1]].contains(&pair[0]), "consecutive tasks are linked");
            }
            let sum: f64 = path.iter().map(|&i| w[i]).sum();
            prop_assert_eq!(sum, days);
            prop_assert_eq!(days, heaviest(&deps, &w));
        }

        #[test]
        fn a_planted_cycle_is_found((deps, _w) in dag(), picks in proptest::collection::vec(any::<prop::sample::Index>(), 2..6)) {
            let n = deps.len();
            prop_assume!(n >= 2);
            let mut nodes: Vec<usize> = picks.iter().map(|p| p.index(n)).collect();
            nodes.sort();
            nodes.dedup();
            prop_assume!(nodes.len() >= 2);
            let mut deps = deps;
            // Close a loop: the smallest node depends on the largest.
            let (lo, hi) = (nodes[0], nodes[nodes.len() - 1]);
            for pair in nodes.windows(2) {
                if !deps[pair[1]].contains(&pair[0]) { deps[pair[1]].push(pair[0]); }
            }
            deps[lo].push(hi);
            let cycle = shortest_cycle(&deps, &ids(n)).expect("a cycle exists");
            for k in 0..cycle.len() {
                let (a, b) = (cycle[k], cycle[(k + 1) % cycle.len()]);
                prop_assert!(deps[a].contains(&b), "{a} depends on {b}");
            }
            prop_assert!(cycle.len() <= nodes.len(), "no longer than the planted one");
            prop_assert!(waves(&deps, &vec![true; n], &ids(n)).is_none());
        }

        #[test]
        fn acyclic_graphs_have_no_cycle((deps, _w) in dag()) {
            prop_assert!(shortest_cycle(&deps, &ids(deps.len())).is_none());
        }
    }

    #[test]
    fn shortest_of_two_cycles_starting_at_smallest_id() {
        // 0 -> 1 -> 2 -> 3 -> 0 and 4 -> 5 -> 4
        let deps = vec![vec![1], vec![2], vec![3], vec![0], vec![5], vec![4]];
        assert_eq!(shortest_cycle(&deps, &ids(6)), Some(vec![4, 5]));
    }

    #[test]
    fn excluded_tasks_count_as_satisfied() {
        let deps = vec![vec![], vec![0], vec![1]];
        let include = vec![false, true, true];
        assert_eq!(
            waves(&deps, &include, &ids(3)),
            Some(vec![vec![1], vec![2]])
        );
        let (path, days) = critical_path(&deps, &include, &[5.0, 1.0, 2.0], &ids(3)).unwrap();
        assert_eq!((path, days), (vec![1, 2], 3.0));
    }

    #[test]
    fn ties_go_to_the_smaller_id() {
        // Two equal chains: 0 -> 2 and 1 -> 3 (2 depends on 0, 3 on 1).
        let deps = vec![vec![], vec![], vec![0], vec![1]];
        let (path, _) = critical_path(&deps, &[true; 4], &[1.0; 4], &ids(4)).unwrap();
        assert_eq!(path, vec![0, 2]);
    }

    #[test]
    fn ids_index_their_position() {
        let names = ["db".to_string(), "api".to_string(), "web".to_string()];
        let index = index_of(&names);
        assert_eq!(index.len(), 3);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(index[name.as_str()], i);
        }
        assert!(!index.contains_key("cache"));
    }
}
