//! Shared pieces of the benchmark and simulation binaries: instance readers and report writers.
//! Each binary in `src/bin` prints figures measured in its own run; nothing is hard-coded.

pub mod lilim;
pub mod mdrp;
