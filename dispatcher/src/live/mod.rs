//! The live side: what is pushed as it happens. [`routes`] hands each courier's route versions to
//! that courier's socket; [`map`] keeps the support map's view and its deltas.

pub mod map;
pub mod routes;
