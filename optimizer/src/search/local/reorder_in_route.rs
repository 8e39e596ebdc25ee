//! Moves single stops to other positions in their own route (or-opt), keeping every pickup
//! before its drop-off and committed stops in place.

use super::LocalMove;
use crate::problem::Problem;
use crate::random::Random;
use crate::search::Neighbours;
use crate::solution::{Solution, evaluate_into};

/// Reorders stops within routes while that lowers the cost.
pub(crate) struct ReorderInRoute;

impl LocalMove for ReorderInRoute {
    fn improve(
        &self,
        p: &Problem,
        _: &Neighbours,
        sol: &mut Solution,
        _: &mut Random,
        stop: &dyn Fn() -> bool,
    ) -> bool {
        let mut changed = false;
        let mut buf = Vec::new();
        for (x, r) in sol.routes.iter_mut().enumerate() {
            if x % 32 == 31 && stop() {
                break;
            }
            let fixed = r.fixed_len(p);
            let n = r.nodes.len();
            if n < fixed + 2 {
                continue;
            }
            let mut improved = true;
            while improved {
                improved = false;
                let mut best: Option<(f64, usize, usize)> = None;
                for from in fixed..n {
                    let node = r.nodes[from];
                    let partner = if p.nodes[node].pickup {
                        node + 1
                    } else {
                        node - 1
                    };
                    for to in fixed..n {
                        if to == from {
                            continue;
                        }
                        buf.clear();
                        buf.extend_from_slice(&r.nodes);
                        let moved = buf.remove(from);
                        buf.insert(to, moved);
                        // Precedence: a pickup must still precede its drop-off.
                        if let Some(partner_at) = buf.iter().position(|&m| m == partner) {
                            let before = partner_at < to;
                            if p.nodes[node].pickup == before {
                                continue;
                            }
                        }
                        let eval = evaluate_into(p, r.v, &buf, None);
                        if eval.feasible
                            && eval.cost < r.cost - super::MIN_GAIN
                            && best.is_none_or(|(c, _, _)| eval.cost < c)
                        {
                            best = Some((eval.cost, from, to));
                        }
                    }
                }
                if let Some((_, from, to)) = best {
                    let moved = r.nodes.remove(from);
                    r.nodes.insert(to, moved);
                    r.update(p);
                    improved = true;
                    changed = true;
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::ruin::{RandomRemoval, Ruin, RuinContext};
    use crate::testing::{assert_consistent, constructed, neighbours, problem};

    /// A constructed solution shaken by random removal and cheap reinsertion, so there is
    /// something to improve.
    fn shaken(p: &Problem, neighbours: &Neighbours) -> Solution {
        let mut sol = constructed(p);
        let ctx = RuinContext { p, neighbours };
        let mut rng = Random::new(17);
        let removed = RandomRemoval.ruin(&ctx, &mut sol, &mut rng, 8);
        crate::construction::insert_greedy(
            p,
            &mut sol,
            &removed,
            crate::construction::Open::Any,
            &mut rng,
            0.5,
        );
        sol
    }

    #[test]
    fn never_makes_a_solution_worse_and_keeps_it_consistent() {
        for seed in [1, 2, 3] {
            let p = problem(seed, 30, 5, false);
            let neighbours = neighbours(&p);
            let mut sol = shaken(&p, &neighbours);
            let before = sol.key(&p);
            ReorderInRoute.improve(&p, &neighbours, &mut sol, &mut Random::new(seed), &|| false);
            assert!(
                sol.key(&p) <= before,
                "seed {seed}: {:?} > {before:?}",
                sol.key(&p)
            );
            assert_consistent(&p, &sol);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_solution() {
        let p = problem(4, 30, 5, false);
        let neighbours = neighbours(&p);
        let start = shaken(&p, &neighbours);
        let run = |seed| {
            let mut sol = start.clone();
            ReorderInRoute.improve(&p, &neighbours, &mut sol, &mut Random::new(seed), &|| false);
            sol.routes
                .iter()
                .map(|r| r.nodes.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(8), run(8));
    }
}
