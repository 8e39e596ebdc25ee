//! Integration tests of the dispatcher against the real PostgreSQL and RabbitMQ.

mod app;
mod bus;
mod candidates;
mod courier_ws;
mod demo;
mod flow;
mod helpers;
mod map_ws;
mod rest;
mod sim;
mod store_contract;
mod track;
mod web;
