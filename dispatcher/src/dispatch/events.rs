//! The outbox events for the `dispatch` exchange and the timeline entries, built in one place
//! so every command reports the same shapes.
