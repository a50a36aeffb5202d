//! Start order. A node starts when every node in its `after` list printed its ready line, so
//! the nodes fall into waves: wave 0 needs nobody, wave k needs only earlier waves. Within a wave
//! the order is the file's, and `up` may boot a whole wave at once.

use std::collections::BTreeSet;

use crate::model::Lab;

/// The waves of node names, every enabled node exactly once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StartPlan {
    pub waves: Vec<Vec<String>>,
}

/// Each enabled node with the enabled, known nodes it waits for (unknown and disabled names are
/// `validate`'s business: they never block a start).
fn edges(lab: &Lab) -> Vec<(String, Vec<String>)> {
    let enabled: BTreeSet<&str> = lab
        .nodes
        .iter()
        .filter(|n| n.enabled)
        .map(|n| n.name.value.as_str())
        .collect();
    lab.nodes
        .iter()
        .filter(|n| n.enabled)
        .map(|n| {
            let deps = n
                .after
                .iter()
                .map(|a| a.value.clone())
                .filter(|a| enabled.contains(a.as_str()))
                .collect();
            (n.name.value.clone(), deps)
        })
        .collect()
}

/// The plan, or every `after` cycle (each as the path `[A, B, A]`).
pub fn start_plan(lab: &Lab) -> Result<StartPlan, Vec<Vec<String>>> {
    let mut left = edges(lab);
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut waves = Vec::new();
    loop {
        let (ready, rest): (Vec<_>, Vec<_>) = left
            .into_iter()
            .partition(|(_, deps)| deps.iter().all(|d| done.contains(d)));
        left = rest;
        if ready.is_empty() {
            break;
        }
        let wave: Vec<String> = ready.into_iter().map(|(n, _)| n).collect();
        done.extend(wave.iter().cloned());
        waves.push(wave);
    }
    if left.is_empty() {
        Ok(StartPlan { waves })
    } else {
        Err(cycles(&left))
    }
}

/// Every node left has a dependency left, so walking first-dependencies from any of them ends
/// in a cycle; nodes that only wait for a cycle lead to one already found.
fn cycles(left: &[(String, Vec<String>)]) -> Vec<Vec<String>> {
    let deps_of = |n: &str| {
        left.iter()
            .find(|(m, _)| m == n)
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    };
    let in_left = |n: &String| left.iter().any(|(m, _)| m == n);
    let mut seen_in_cycle: BTreeSet<String> = BTreeSet::new();
    let mut found = Vec::new();
    for (start, _) in left {
        let mut path = vec![start.clone()];
        loop {
            let last = path.last().expect("path starts non-empty").clone();
            let Some(next) = deps_of(&last).into_iter().find(in_left) else {
                break;
            };
            if let Some(i) = path.iter().position(|p| *p == next) {
                let mut cycle = path[i..].to_vec();
                if cycle.iter().all(|c| !seen_in_cycle.contains(c)) {
                    seen_in_cycle.extend(cycle.iter().cloned());
                    cycle.push(next);
                    found.push(cycle);
                }
                break;
            }
            path.push(next);
        }
    }
    found
}
