//! Shared pieces of the benchmark and simulation binaries: instance readers, report writers,
//! statistics, and the city simulation that drives a running dispatcher.
//! Each binary in `src/bin` prints figures measured in its own run; nothing is hard-coded.

pub mod city;
pub mod lilim;
pub mod mdrp;
pub mod stats;
