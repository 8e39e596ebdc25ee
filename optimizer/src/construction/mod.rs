//! Building and repairing solutions by insertion: cheapest insertion with SISR-style blinks
//! ([`insert_greedy`]) and regret-k insertion evaluated in parallel ([`insert_with_regret`]).
//! Both consider only the candidate couriers the R-tree proposes, widening to all couriers when
//! none of them can take an order. When no courier can, [`unassigned_reason`] sums up why.

mod candidates;
mod insertion;

pub(crate) use candidates::{CandidateIndex, FIRST_RING};
pub(crate) use insertion::{Scratch, best_insertion};

use crate::model::{Rejection, UnassignedReason};
use crate::parallel;
use crate::problem::Problem;
use crate::random::Random;
use crate::solution::{Insertion, Solution};

/// Which routes an insertion may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Open {
    /// Any courier, including one with an empty route.
    Any,
    /// Only couriers that already have stops (while removing routes).
    UsedOnly,
}

/// The cheapest insertion of `j` over its candidate couriers, widening once to every courier.
pub(crate) fn best_over_candidates(
    p: &Problem,
    sol: &Solution,
    index: &CandidateIndex,
    j: usize,
    open: Open,
    mut blink: Option<(&mut Random, f64)>,
    scratch: &mut Scratch,
) -> Option<Insertion> {
    let mut want = FIRST_RING;
    let mut buf = std::mem::take(&mut scratch.couriers);
    loop {
        index.near(p, sol, j, want, &mut buf);
        let mut best: Option<Insertion> = None;
        for &v in buf.iter() {
            let r = &sol.routes[v];
            if open == Open::UsedOnly && r.is_empty() {
                continue;
            }
            let b = blink.as_mut().map(|(rng, rate)| (&mut **rng, *rate));
            if let Ok(ins) = best_insertion(p, r, j, b, scratch)
                && best.is_none_or(|b| ins.delta < b.delta)
            {
                best = Some(ins);
            }
        }
        if best.is_some() || want >= p.vehicles.len() {
            scratch.couriers = buf;
            return best;
        }
        want = p.vehicles.len();
    }
}

/// Inserts `jobs` one by one, in the given order, each at its cheapest feasible place (skipping
/// places with probability `blink`); jobs with no place stay unassigned.
pub(crate) fn insert_greedy(
    p: &Problem,
    sol: &mut Solution,
    jobs: &[usize],
    open: Open,
    rng: &mut Random,
    blink: f64,
) {
    let mut scratch = Scratch::default();
    let mut index = CandidateIndex::build(p, sol);
    for (n, &j) in jobs.iter().enumerate() {
        if n > 0 && n % INDEX_REFRESH_INSERTIONS == 0 {
            index = CandidateIndex::build(p, sol);
        }
        let found = best_over_candidates(p, sol, &index, j, open, Some((rng, blink)), &mut scratch);
        if let Some(ins) = found {
            sol.insert(p, j, &ins);
        }
    }
}

/// Largest batch inserted by regret; larger batches use cheapest insertion.
const REGRET_MAX_JOBS: usize = 400;

/// How often cheapest insertion rebuilds its candidate index as routes grow, in insertions.
const INDEX_REFRESH_INSERTIONS: usize = 64;

/// Regret's "no k-th best place" stands for a place this much dearer: a job with one place goes
/// before any job with two.
const MISSING_PLACE_REGRET: f64 = 1e12;

/// Regret ties within this are ties, broken by the cheaper best place.
const REGRET_TIE: f64 = 1e-9;

/// How many of the nearest couriers are asked why they cannot take an order left out.
const REASON_COURIERS: usize = 64;

/// A job's best insertion into each of its candidate couriers.
type PerCourier = Vec<(usize, Option<Insertion>)>;

/// Regret-k insertion: repeatedly inserts the job whose best place beats its k-th best by the
/// most (jobs with a single place go first). Each job's best place per courier is cached, and
/// after an insertion only the changed courier is re-evaluated, in parallel over jobs.
pub(crate) fn insert_with_regret(
    p: &Problem,
    sol: &mut Solution,
    jobs: &[usize],
    k: usize,
    open: Open,
) {
    if jobs.len() > REGRET_MAX_JOBS {
        // Regret scans every pending job after each insertion, quadratic in the batch: for a
        // large batch (a cold city) insert the earliest-ready orders first, each at its cheapest.
        let mut ordered = jobs.to_vec();
        ordered.sort_by(|&a, &b| p.nodes[2 * a].open.total_cmp(&p.nodes[2 * b].open));
        let mut rng = Random::new(0);
        insert_greedy(p, sol, &ordered, open, &mut rng, 0.0);
        return;
    }
    let k = k.max(2);
    let index = CandidateIndex::build(p, sol);
    // For each pending job: its candidate couriers and the best insertion into each.
    let mut pending: Vec<(usize, PerCourier)> = parallel::map_init(
        jobs,
        || (Scratch::default(), Vec::new()),
        |(scratch, buf), &j| {
            index.near(p, sol, j, p.vehicles.len().min(FIRST_RING * 2), buf);
            let per_route = buf
                .iter()
                .filter(|&&v| open == Open::Any || !sol.routes[v].is_empty())
                .map(|&v| (v, best_insertion(p, &sol.routes[v], j, None, scratch).ok()))
                .collect();
            (j, per_route)
        },
    );
    while !pending.is_empty() {
        // Pick the job with the largest regret.
        let mut pick: Option<(usize, f64, Insertion)> = None;
        for (idx, (_, per_route)) in pending.iter().enumerate() {
            let mut costs: Vec<(f64, Insertion)> = per_route
                .iter()
                .filter_map(|(_, ins)| ins.map(|i| (i.delta, i)))
                .collect();
            if costs.is_empty() {
                continue;
            }
            costs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let best = costs[0];
            let regret = (1..k)
                .map(|m| costs.get(m).map_or(MISSING_PLACE_REGRET, |c| c.0 - best.0))
                .sum::<f64>();
            let better = match pick {
                None => true,
                Some((_, r, ins)) => {
                    regret > r + REGRET_TIE || (regret >= r - REGRET_TIE && best.0 < ins.delta)
                }
            };
            if better {
                pick = Some((idx, regret, best.1));
            }
        }
        let Some((idx, _, ins)) = pick else {
            // No pending job fits anywhere it was evaluated: widen to every courier once.
            let rest: Vec<usize> = pending.iter().map(|(j, _)| *j).collect();
            let mut rng = Random::new(0);
            insert_greedy(p, sol, &rest, open, &mut rng, 0.0);
            return;
        };
        let (j, _) = pending.swap_remove(idx);
        let v = ins.v;
        let was_empty = sol.routes[v].is_empty();
        sol.insert(p, j, &ins);
        // Opening an empty courier makes the next empty one of its class the candidate.
        let successor = was_empty
            .then(|| {
                (0..p.vehicles.len()).find(|&w| {
                    w != v && p.vehicles[w].class == p.vehicles[v].class && sol.routes[w].is_empty()
                })
            })
            .flatten();
        let route = &sol.routes[v];
        parallel::for_each_init(
            &mut pending,
            Scratch::default,
            |scratch, (pj, per_route)| {
                if let Some(pos) = per_route.iter().position(|(rv, _)| *rv == v) {
                    if let Some(w) = successor {
                        let moved = per_route[pos].1.map(|ins| Insertion { v: w, ..ins });
                        per_route.push((w, moved));
                    }
                    per_route[pos].1 = best_insertion(p, route, *pj, None, scratch).ok();
                }
            },
        );
    }
}

/// A first solution: committed work in place, then regret-3 insertion of everything else.
pub(crate) fn construct(p: &Problem) -> Solution {
    let mut sol = Solution::empty(p);
    let jobs: Vec<usize> = sol.unassigned.clone();
    insert_with_regret(p, &mut sol, &jobs, 3, Open::Any);
    sol
}

/// Why job `j`, on no route of `sol`, is left out: what the couriers near it answer when asked
/// to take it, summed up. A job locked to a courier takes that courier's reason; otherwise the
/// reason most couriers give wins (ties by [`Rejection`]'s order), and a job some courier could
/// take after all was simply not placed in time.
pub(crate) fn unassigned_reason(
    p: &Problem,
    sol: &Solution,
    index: &CandidateIndex,
    j: usize,
    scratch: &mut Scratch,
) -> UnassignedReason {
    if p.vehicles.is_empty() {
        return UnassignedReason::NoCourierAvailable;
    }
    let size = p.nodes[2 * j].demand;
    if p.vehicles.iter().all(|v| v.capacity < size) {
        return UnassignedReason::TooLarge;
    }
    if p.vehicles.iter().all(|v| v.shift_end < p.nodes[2 * j].open) {
        return UnassignedReason::NoCourierAvailable;
    }
    let mut couriers = std::mem::take(&mut scratch.couriers);
    index.near(
        p,
        sol,
        j,
        p.vehicles.len().min(REASON_COURIERS),
        &mut couriers,
    );
    let mut counts = [0usize; Rejection::ALL.len()];
    let mut any_fits = false;
    for &v in &couriers {
        match best_insertion(p, &sol.routes[v], j, None, scratch) {
            Ok(_) => any_fits = true,
            Err(r) => counts[r as usize] += 1,
        }
    }
    scratch.couriers = couriers;
    if any_fits {
        return UnassignedReason::NotPlanned;
    }
    let most = (0..counts.len())
        .max_by_key(|&r| (counts[r], std::cmp::Reverse(r)))
        .filter(|&r| counts[r] > 0);
    most.map_or(UnassignedReason::NotPlanned, |r| {
        Rejection::ALL[r].unassigned()
    })
}

/// [`unassigned_reason`] for every job left out of `sol`, in parallel.
pub(crate) fn unassigned_reasons(p: &Problem, sol: &Solution) -> Vec<(usize, UnassignedReason)> {
    let index = CandidateIndex::build(p, sol);
    parallel::map_init(&sol.unassigned, Scratch::default, |scratch, &j| {
        (j, unassigned_reason(p, sol, &index, j, scratch))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_consistent, problem};

    #[test]
    fn regret_and_greedy_insertion_place_everything_they_can_consistently() {
        let p = problem(9, 40, 6, false);
        let regret = construct(&p);
        assert_consistent(&p, &regret);
        let mut greedy = Solution::empty(&p);
        let jobs: Vec<usize> = (0..p.jobs.len()).collect();
        insert_greedy(&p, &mut greedy, &jobs, Open::Any, &mut Random::new(1), 0.0);
        assert_consistent(&p, &greedy);
        assert!(regret.unassigned.is_empty() && greedy.unassigned.is_empty());
    }

    #[test]
    fn insertion_is_repeatable_for_a_seed() {
        let p = problem(9, 40, 6, false);
        let jobs: Vec<usize> = (0..p.jobs.len()).collect();
        let run = |seed| {
            let mut sol = Solution::empty(&p);
            insert_greedy(&p, &mut sol, &jobs, Open::Any, &mut Random::new(seed), 0.2);
            sol.routes
                .iter()
                .map(|r| r.nodes.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(6), run(6));
        let a = construct(&p);
        let b = construct(&p);
        assert_eq!(
            a.routes.iter().map(|r| &r.nodes).collect::<Vec<_>>(),
            b.routes.iter().map(|r| &r.nodes).collect::<Vec<_>>()
        );
    }
}
