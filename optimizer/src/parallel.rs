//! The one place the optimizer calls rayon. Every parallel loop of the crate goes through these
//! helpers, so the work runs on whatever pool the caller installed (the dispatcher's solver
//! pool, a benchmark's global pool) and the crate's use of threads is visible in one file.

use rayon::prelude::*;

/// `f` applied to every index of `0..n`, in parallel; results in index order.
pub(crate) fn map_range<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    (0..n).into_par_iter().map(f).collect()
}

/// `f` applied to every item with per-thread scratch made by `init`, in parallel; results in
/// item order.
pub(crate) fn map_init<T: Sync, S, R: Send>(
    items: &[T],
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, &T) -> R + Sync + Send,
) -> Vec<R> {
    items.par_iter().map_init(init, f).collect()
}

/// `f` applied to every item mutably, in parallel; results in item order.
pub(crate) fn map_mut<T: Send, R: Send>(
    items: &mut [T],
    f: impl Fn(&mut T) -> R + Sync + Send,
) -> Vec<R> {
    items.par_iter_mut().map(f).collect()
}

/// `f` run on every item mutably with per-thread scratch made by `init`, in parallel.
pub(crate) fn for_each_init<T: Send, S>(
    items: &mut [T],
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, &mut T) + Sync + Send,
) {
    items.par_iter_mut().for_each_init(init, f);
}

/// `f(row_index, row)` run on each `width`-long row of `cells`, in parallel.
pub(crate) fn rows_mut<T: Send>(
    cells: &mut [T],
    width: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    cells
        .par_chunks_mut(width.max(1))
        .enumerate()
        .for_each(|(i, row)| f(i, row));
}
