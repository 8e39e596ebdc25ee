//! The dispatch service: it takes orders from kitchens over RabbitMQ and HTTP, keeps couriers'
//! routes planned with the optimizer, pushes routes to couriers and the live map over
//! WebSockets, and tells kitchens who picks up and when.
//!
//! `main.rs` only parses the command line and calls into this library.

pub mod api;
pub mod arrival;
pub mod bus;
pub mod config;
pub mod demo;
pub mod directory;
pub mod dispatch;
pub mod live;
pub mod metric;
pub mod planner;
pub mod records;
pub mod sim;
pub mod startup;
pub mod store;
pub mod web;
pub mod wire;
