//! Integration tests of the dispatcher against the real RabbitMQ (and PostgreSQL).

mod bus;
mod helpers;
mod store_contract;
