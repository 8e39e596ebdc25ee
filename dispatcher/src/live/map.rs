//! The support map's live view and its deltas (being written).
