//! Integration tests of the dispatcher against the real PostgreSQL and RabbitMQ.

mod app;
mod bus;
mod demo;
mod flow;
mod helpers;
mod rest;
mod store_contract;
