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
                            && eval.cost < r.cost - 1e-7
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
