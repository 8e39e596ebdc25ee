//! Integration tests of the dispatcher against the real PostgreSQL and RabbitMQ.

mod app;
mod bus;
mod flow;
mod helpers;
mod map_ws;
mod rest;
mod store_contract;
