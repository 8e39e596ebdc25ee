//! Contraction hierarchies (Geisberger et al. 2008) over one profile's directed graph:
//! preparation and the upward searches every query is made of.
//!
//! Preparation contracts nodes one by one, least important first (by edge difference, deleted
//! neighbours and level, updated lazily), adding a shortcut `x -> y` for a path `x -> u -> y`
//! whenever a bounded witness search finds no path as short that avoids `u`. What remains is an
//! upward graph: from each node, the arcs to nodes contracted later, forwards and backwards,
//! each carrying its time and its length (shortcuts sum those of the arcs they replace, so the
//! length of the fastest path comes with its time, without unpacking it).
//!
//! A query is two upward searches, one forwards from the source and one backwards from the
//! target, with stall-on-demand; the shortest path meets at the node where the two sums are
//! least. A search's settled nodes (its *search space*) can be kept and met with many others:
//! that is how tables are answered (see `table`).
//!
//! Why our own and not the `fast_paths` crate: `fast_paths` keeps its prepared graph private,
//! so it offers neither search spaces to combine into many-to-many tables nor path lengths
//! without unpacking every path.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::graph::{Arc, NodeId};

/// An arc of the upward graph: to a node contracted later (forwards), or from one (backwards).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UpArc {
    node: NodeId,
    time_ms: u32,
    length_dm: u32,
}

/// A prepared hierarchy.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    /// `fwd[fwd_first[u]..fwd_first[u + 1]]`: arcs `u -> v` with `v` contracted after `u`.
    fwd_first: Vec<u32>,
    fwd: Vec<UpArc>,
    /// `bwd[bwd_first[u]..bwd_first[u + 1]]`: arcs `v -> u` with `v` contracted after `u`,
    /// stored as `v`.
    bwd_first: Vec<u32>,
    bwd: Vec<UpArc>,
    /// How many shortcuts preparation added.
    shortcuts: usize,
}

/// A place to start or end a search: a node and what it costs to get there (or from there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seed {
    /// The node.
    pub node: NodeId,
    /// Time already spent, milliseconds.
    pub time_ms: u32,
    /// Distance already covered, decimetres.
    pub length_dm: u32,
}

/// The nodes one upward search settled, by node id, with the time and length to (or from)
/// each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchSpace {
    nodes: Vec<NodeId>,
    costs: Vec<(u32, u32)>,
}

impl SearchSpace {
    /// How many nodes it holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether it is empty (a search from nowhere).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `(node, time_ms, length_dm)` for each node, by node id.
    pub fn entries(&self) -> impl Iterator<Item = (NodeId, u32, u32)> + '_ {
        self.nodes
            .iter()
            .zip(&self.costs)
            .map(|(&n, &(t, l))| (n, t, l))
    }

    /// Bytes held, for cache accounting.
    pub fn bytes(&self) -> usize {
        self.nodes.len() * 12
    }
}

/// The least time (and that path's length) of a forward space meeting a backward one, if they
/// meet: the shortest path's time and length in milliseconds and decimetres.
pub fn meet(forward: &SearchSpace, backward: &SearchSpace) -> Option<(u64, u64)> {
    let (a, b) = (&forward.nodes, &backward.nodes);
    let (mut i, mut j) = (0, 0);
    let mut best: Option<(u64, u64)> = None;
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                let (t1, l1) = forward.costs[i];
                let (t2, l2) = backward.costs[j];
                let t = u64::from(t1) + u64::from(t2);
                if best.is_none_or(|(bt, _)| t < bt) {
                    best = Some((t, u64::from(l1) + u64::from(l2)));
                }
                i += 1;
                j += 1;
            }
        }
    }
    best
}

/// Settled-node limit of a witness search while only estimating a node's priority.
const ESTIMATE_SETTLED: usize = 60;
/// Settled-node limit of a witness search when contracting for real.
const CONTRACT_SETTLED: usize = 400;

/// Priority weights: edge difference, deleted neighbours, level.
const WEIGHT_EDGE_DIFFERENCE: i64 = 2;
const WEIGHT_DELETED_NEIGHBOURS: i64 = 1;
const WEIGHT_LEVEL: i64 = 1;

#[derive(Clone, Copy, Debug)]
struct Edge {
    node: NodeId,
    time_ms: u32,
    length_dm: u32,
}

/// A reusable bounded Dijkstra for witness searches.
struct Witness {
    dist: Vec<u32>,
    stamp: Vec<u32>,
    round: u32,
    heap: BinaryHeap<Reverse<(u32, NodeId)>>,
}

impl Witness {
    fn new(n: usize) -> Self {
        Witness {
            dist: vec![u32::MAX; n],
            stamp: vec![0; n],
            round: 0,
            heap: BinaryHeap::new(),
        }
    }

    fn get(&self, v: NodeId) -> u32 {
        if self.stamp[v as usize] == self.round {
            self.dist[v as usize]
        } else {
            u32::MAX
        }
    }

    fn set(&mut self, v: NodeId, d: u32) {
        self.stamp[v as usize] = self.round;
        self.dist[v as usize] = d;
    }

    /// Distances from `source` in the remaining graph without `skip`, up to `limit`, at most
    /// `max_settled` settled nodes, and no further once every node of `targets` is settled.
    fn run(
        &mut self,
        out: &[Vec<Edge>],
        source: NodeId,
        skip: NodeId,
        limit: u32,
        max_settled: usize,
        targets: &[Edge],
    ) {
        self.round = self.round.wrapping_add(1);
        if self.round == 0 {
            self.stamp.fill(0);
            self.round = 1;
        }
        self.heap.clear();
        self.set(source, 0);
        self.heap.push(Reverse((0, source)));
        let mut settled = 0;
        let mut open_targets = targets.len();
        while let Some(Reverse((d, u))) = self.heap.pop() {
            if d > self.get(u) {
                continue;
            }
            if d > limit || settled >= max_settled || open_targets == 0 {
                break;
            }
            settled += 1;
            if targets.iter().any(|t| t.node == u) {
                open_targets -= 1;
            }
            for e in &out[u as usize] {
                if e.node == skip {
                    continue;
                }
                let nd = d.saturating_add(e.time_ms);
                if nd < self.get(e.node) {
                    self.set(e.node, nd);
                    self.heap.push(Reverse((nd, e.node)));
                }
            }
        }
    }
}

/// The shortcuts contracting `u` needs: `(x, y, time, length)` for each in-neighbour `x` and
/// out-neighbour `y` whose path through `u` has no witness.
fn shortcuts(
    out: &[Vec<Edge>],
    inn: &[Vec<Edge>],
    u: NodeId,
    witness: &mut Witness,
    max_settled: usize,
    found: &mut Vec<(NodeId, NodeId, u32, u32)>,
) {
    found.clear();
    let outs = &out[u as usize];
    if outs.is_empty() {
        return;
    }
    let max_out = outs.iter().map(|e| e.time_ms).max().unwrap_or(0);
    for x in &inn[u as usize] {
        if outs.iter().all(|y| y.node == x.node) {
            continue;
        }
        witness.run(
            out,
            x.node,
            u,
            x.time_ms.saturating_add(max_out),
            max_settled,
            outs,
        );
        for y in outs {
            if y.node == x.node {
                continue;
            }
            let via = x.time_ms.saturating_add(y.time_ms);
            if witness.get(y.node) > via {
                found.push((x.node, y.node, via, x.length_dm + y.length_dm));
            }
        }
    }
}

/// Adds or shortens the edge `from -> to` in `list`; whether it changed.
fn upsert(list: &mut Vec<Edge>, to: NodeId, time_ms: u32, length_dm: u32) -> bool {
    match list.iter_mut().find(|e| e.node == to) {
        Some(e) if e.time_ms <= time_ms => false,
        Some(e) => {
            e.time_ms = time_ms;
            e.length_dm = length_dm;
            true
        }
        None => {
            list.push(Edge {
                node: to,
                time_ms,
                length_dm,
            });
            true
        }
    }
}

fn csr(lists: Vec<Vec<UpArc>>) -> (Vec<u32>, Vec<UpArc>) {
    let mut first = Vec::with_capacity(lists.len() + 1);
    let mut all = Vec::with_capacity(lists.iter().map(Vec::len).sum());
    for list in lists {
        first.push(all.len() as u32);
        all.extend(list);
    }
    first.push(all.len() as u32);
    (first, all)
}

impl Hierarchy {
    /// Prepares the hierarchy of the graph on `n` nodes with `arcs` (parallel arcs keep the
    /// fastest; loops are dropped).
    ///
    /// # Panics
    /// When an arc names a node `>= n`.
    pub fn prepare(n: usize, arcs: &[Arc]) -> Hierarchy {
        let mut out: Vec<Vec<Edge>> = vec![Vec::new(); n];
        let mut inn: Vec<Vec<Edge>> = vec![Vec::new(); n];
        for a in arcs {
            if a.from == a.to {
                continue;
            }
            upsert(&mut out[a.from as usize], a.to, a.time_ms, a.length_dm);
            upsert(&mut inn[a.to as usize], a.from, a.time_ms, a.length_dm);
        }
        let mut contracted = vec![false; n];
        let mut deleted = vec![0i64; n];
        let mut level = vec![0i64; n];
        let mut witness = Witness::new(n);
        let mut found = Vec::new();
        let mut priority = |u: NodeId,
                            out: &[Vec<Edge>],
                            inn: &[Vec<Edge>],
                            deleted: &[i64],
                            level: &[i64],
                            witness: &mut Witness|
         -> i64 {
            shortcuts(out, inn, u, witness, ESTIMATE_SETTLED, &mut found);
            let removed = (out[u as usize].len() + inn[u as usize].len()) as i64;
            WEIGHT_EDGE_DIFFERENCE * (found.len() as i64 - removed)
                + WEIGHT_DELETED_NEIGHBOURS * deleted[u as usize]
                + WEIGHT_LEVEL * level[u as usize]
        };
        let mut current: Vec<i64> = (0..n as NodeId)
            .map(|u| priority(u, &out, &inn, &deleted, &level, &mut witness))
            .collect();
        let mut heap: BinaryHeap<Reverse<(i64, NodeId)>> = (0..n as NodeId)
            .map(|u| Reverse((current[u as usize], u)))
            .collect();
        let mut up_fwd: Vec<Vec<UpArc>> = vec![Vec::new(); n];
        let mut up_bwd: Vec<Vec<UpArc>> = vec![Vec::new(); n];
        let mut added = 0usize;
        let mut new_edges = Vec::new();
        while let Some(Reverse((p, u))) = heap.pop() {
            let ui = u as usize;
            if contracted[ui] || p != current[ui] {
                continue;
            }
            // Lazy update: contract only if still the least important.
            let fresh = priority(u, &out, &inn, &deleted, &level, &mut witness);
            if fresh > p
                && let Some(Reverse((next, _))) = heap.peek()
                && fresh > *next
            {
                current[ui] = fresh;
                heap.push(Reverse((fresh, u)));
                continue;
            }
            shortcuts(
                &out,
                &inn,
                u,
                &mut witness,
                CONTRACT_SETTLED,
                &mut new_edges,
            );
            contracted[ui] = true;
            up_fwd[ui] = out[ui]
                .iter()
                .map(|e| UpArc {
                    node: e.node,
                    time_ms: e.time_ms,
                    length_dm: e.length_dm,
                })
                .collect();
            up_bwd[ui] = inn[ui]
                .iter()
                .map(|e| UpArc {
                    node: e.node,
                    time_ms: e.time_ms,
                    length_dm: e.length_dm,
                })
                .collect();
            let outs = std::mem::take(&mut out[ui]);
            let ins = std::mem::take(&mut inn[ui]);
            for e in &outs {
                inn[e.node as usize].retain(|x| x.node != u);
            }
            for e in &ins {
                out[e.node as usize].retain(|x| x.node != u);
            }
            for &(x, y, t, l) in &new_edges {
                if upsert(&mut out[x as usize], y, t, l) {
                    added += 1;
                }
                upsert(&mut inn[y as usize], x, t, l);
            }
            let mut neighbours: Vec<NodeId> = outs.iter().chain(&ins).map(|e| e.node).collect();
            neighbours.sort_unstable();
            neighbours.dedup();
            for v in neighbours {
                let vi = v as usize;
                deleted[vi] += 1;
                level[vi] = level[vi].max(level[ui] + 1);
                let pv = priority(v, &out, &inn, &deleted, &level, &mut witness);
                if pv != current[vi] {
                    current[vi] = pv;
                    heap.push(Reverse((pv, v)));
                }
            }
        }
        let (fwd_first, fwd) = csr(up_fwd);
        let (bwd_first, bwd) = csr(up_bwd);
        Hierarchy {
            fwd_first,
            fwd,
            bwd_first,
            bwd,
            shortcuts: added,
        }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.fwd_first.len() - 1
    }

    /// Shortcuts added by preparation.
    pub fn shortcut_count(&self) -> usize {
        self.shortcuts
    }

    /// Arcs of the upward graph, both directions.
    pub fn arc_count(&self) -> usize {
        self.fwd.len() + self.bwd.len()
    }

    fn fwd_of(&self, u: NodeId) -> &[UpArc] {
        &self.fwd[self.fwd_first[u as usize] as usize..self.fwd_first[u as usize + 1] as usize]
    }

    fn bwd_of(&self, u: NodeId) -> &[UpArc] {
        &self.bwd[self.bwd_first[u as usize] as usize..self.bwd_first[u as usize + 1] as usize]
    }

    /// The forward upward search space from `sources`.
    pub fn forward_space(&self, sources: &[Seed]) -> SearchSpace {
        self.space(sources, true)
    }

    /// The backward upward search space to `targets`.
    pub fn backward_space(&self, targets: &[Seed]) -> SearchSpace {
        self.space(targets, false)
    }

    /// Time and length of the fastest path from `sources` to `targets`, if any.
    pub fn query(&self, sources: &[Seed], targets: &[Seed]) -> Option<(u64, u64)> {
        meet(&self.forward_space(sources), &self.backward_space(targets))
    }

    fn space(&self, seeds: &[Seed], forward: bool) -> SearchSpace {
        SEARCH.with(|cell| {
            let mut s = cell.borrow_mut();
            s.run(self, seeds, forward)
        })
    }
}

thread_local! {
    /// Each thread's search workspace, reused across queries.
    static SEARCH: RefCell<Search> = RefCell::new(Search::default());
}

/// Workspace of an upward Dijkstra search.
#[derive(Default)]
struct Search {
    time: Vec<u32>,
    length: Vec<u32>,
    stamp: Vec<u32>,
    round: u32,
    heap: BinaryHeap<Reverse<(u32, NodeId)>>,
    settled: Vec<NodeId>,
}

impl Search {
    fn reached(&self, v: NodeId) -> bool {
        self.stamp[v as usize] == self.round
    }

    fn time_of(&self, v: NodeId) -> u32 {
        if self.reached(v) {
            self.time[v as usize]
        } else {
            u32::MAX
        }
    }

    fn run(&mut self, h: &Hierarchy, seeds: &[Seed], forward: bool) -> SearchSpace {
        let n = h.node_count();
        if self.stamp.len() < n {
            self.time.resize(n, 0);
            self.length.resize(n, 0);
            self.stamp.resize(n, 0);
        }
        self.round = self.round.wrapping_add(1);
        if self.round == 0 {
            self.stamp.fill(0);
            self.round = 1;
        }
        self.heap.clear();
        self.settled.clear();
        for seed in seeds {
            if seed.time_ms < self.time_of(seed.node) {
                let v = seed.node as usize;
                self.stamp[v] = self.round;
                self.time[v] = seed.time_ms;
                self.length[v] = seed.length_dm;
                self.heap.push(Reverse((seed.time_ms, seed.node)));
            }
        }
        while let Some(Reverse((d, u))) = self.heap.pop() {
            if d > self.time_of(u) {
                continue;
            }
            // Stall on demand: a node reached cheaper from above is not on a shortest path.
            let (up, down) = if forward {
                (h.fwd_of(u), h.bwd_of(u))
            } else {
                (h.bwd_of(u), h.fwd_of(u))
            };
            if down
                .iter()
                .any(|a| self.time_of(a.node).saturating_add(a.time_ms) < d)
            {
                continue;
            }
            self.settled.push(u);
            let l = self.length[u as usize];
            for a in up {
                let nd = d.saturating_add(a.time_ms);
                if nd < self.time_of(a.node) {
                    let v = a.node as usize;
                    self.stamp[v] = self.round;
                    self.time[v] = nd;
                    self.length[v] = l.saturating_add(a.length_dm);
                    self.heap.push(Reverse((nd, a.node)));
                }
            }
        }
        self.settled.sort_unstable();
        self.settled.dedup();
        SearchSpace {
            nodes: self.settled.clone(),
            costs: self
                .settled
                .iter()
                .map(|&v| (self.time[v as usize], self.length[v as usize]))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Plain Dijkstra on the original arcs: (time, length of that path).
    fn dijkstra(n: usize, arcs: &[Arc], from: NodeId, to: NodeId) -> Option<(u64, u64)> {
        let mut best = vec![(u64::MAX, 0u64); n];
        let mut heap = BinaryHeap::new();
        best[from as usize] = (0, 0);
        heap.push(Reverse((0u64, from)));
        while let Some(Reverse((d, u))) = heap.pop() {
            if d > best[u as usize].0 {
                continue;
            }
            for a in arcs.iter().filter(|a| a.from == u) {
                let nd = d + u64::from(a.time_ms);
                if nd < best[a.to as usize].0 {
                    best[a.to as usize] = (nd, best[u as usize].1 + u64::from(a.length_dm));
                    heap.push(Reverse((nd, a.to)));
                }
            }
        }
        (best[to as usize].0 != u64::MAX).then_some(best[to as usize])
    }

    fn seed(node: NodeId) -> Seed {
        Seed {
            node,
            time_ms: 0,
            length_dm: 0,
        }
    }

    #[test]
    fn a_one_way_ring_is_the_long_way_back() {
        let arcs: Vec<Arc> = (0..5u32)
            .map(|i| Arc {
                from: i,
                to: (i + 1) % 5,
                time_ms: 10,
                length_dm: 100,
            })
            .collect();
        let h = Hierarchy::prepare(5, &arcs);
        assert_eq!(h.query(&[seed(0)], &[seed(1)]), Some((10, 100)));
        assert_eq!(h.query(&[seed(1)], &[seed(0)]), Some((40, 400)));
        assert_eq!(h.query(&[seed(2)], &[seed(2)]), Some((0, 0)));
    }

    #[test]
    fn separate_islands_do_not_meet() {
        let arcs = [
            Arc {
                from: 0,
                to: 1,
                time_ms: 5,
                length_dm: 5,
            },
            Arc {
                from: 2,
                to: 3,
                time_ms: 5,
                length_dm: 5,
            },
        ];
        let h = Hierarchy::prepare(4, &arcs);
        assert_eq!(h.query(&[seed(0)], &[seed(3)]), None);
        assert_eq!(h.query(&[seed(1)], &[seed(0)]), None);
    }

    fn random_graph() -> impl Strategy<Value = (usize, Vec<Arc>)> {
        (2usize..40).prop_flat_map(|n| {
            let arc = (0..n as u32, 0..n as u32, 1u32..1000, 1u32..500).prop_map(
                |(from, to, time_ms, length_dm)| Arc {
                    from,
                    to,
                    time_ms,
                    length_dm,
                },
            );
            (Just(n), prop::collection::vec(arc, 0..n * 4))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn every_query_equals_dijkstra((n, arcs) in random_graph()) {
            let h = Hierarchy::prepare(n, &arcs);
            for from in 0..n as u32 {
                for to in 0..n as u32 {
                    let want = dijkstra(n, &arcs, from, to);
                    let got = h.query(&[seed(from)], &[seed(to)]);
                    prop_assert_eq!(got.map(|g| g.0), want.map(|w| w.0), "{} -> {}", from, to);
                }
            }
        }
    }
}
