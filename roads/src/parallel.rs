//! The one place this crate calls rayon: preparing the profiles' hierarchies side by side,
//! resolving a table's places, and filling a table's rows. The work runs on whatever pool the
//! caller installed (the dispatcher's solver pool during a replan).

use rayon::prelude::*;

/// `f` applied to every item, in parallel; results in item order.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    items.par_iter().map(f).collect()
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
