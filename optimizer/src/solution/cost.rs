//! How good a solution is, as one ordered value: fewer orders left out first, then (when the
//! objective minimises vehicles) fewer routes, then the objective's weighted sum.

use std::cmp::Ordering;

/// A solution's lexicographic cost. `Ord` compares the counts, then the value by
/// [`f64::total_cmp`]; [`SolutionCost::improves_on`] asks for a gain beyond rounding noise.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SolutionCost {
    /// Orders on no route.
    pub unassigned: usize,
    /// Routes used, when vehicles are minimised (0 otherwise).
    pub routes: usize,
    /// The objective's weighted sum, unassigned penalties included.
    pub value: f64,
}

/// A gain in the value smaller than this is rounding noise, not an improvement.
const VALUE_TOLERANCE: f64 = 1e-9;

impl SolutionCost {
    /// The counting part, compared before the value.
    pub fn counts(&self) -> (usize, usize) {
        (self.unassigned, self.routes)
    }

    /// Strictly better: fewer by the counts, or as many and a lower value by more than noise.
    pub fn improves_on(&self, other: &SolutionCost) -> bool {
        self.counts() < other.counts()
            || (self.counts() == other.counts() && self.value < other.value - VALUE_TOLERANCE)
    }
}

impl Ord for SolutionCost {
    fn cmp(&self, other: &Self) -> Ordering {
        self.counts()
            .cmp(&other.counts())
            .then(self.value.total_cmp(&other.value))
    }
}

impl PartialOrd for SolutionCost {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SolutionCost {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SolutionCost {}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(unassigned: usize, routes: usize, value: f64) -> SolutionCost {
        SolutionCost {
            unassigned,
            routes,
            value,
        }
    }

    #[test]
    fn counts_come_before_the_value() {
        assert!(cost(0, 9, 1e9) < cost(1, 0, 0.0));
        assert!(cost(1, 2, 1e9) < cost(1, 3, 0.0));
        assert!(cost(1, 2, 5.0) < cost(1, 2, 6.0));
        let mut all = [
            cost(2, 0, 1.0),
            cost(0, 1, 3.0),
            cost(0, 1, 2.0),
            cost(1, 0, 0.0),
        ];
        all.sort();
        assert_eq!(all.map(|c| c.value), [2.0, 3.0, 0.0, 1.0]);
    }

    #[test]
    fn an_improvement_must_beat_rounding_noise() {
        assert!(!cost(0, 0, 1.0 - 1e-12).improves_on(&cost(0, 0, 1.0)));
        assert!(cost(0, 0, 0.5).improves_on(&cost(0, 0, 1.0)));
        assert!(cost(0, 0, 9.0).improves_on(&cost(1, 0, 1.0)));
        assert!(!cost(0, 0, 1.0).improves_on(&cost(0, 0, 1.0)));
    }
}
