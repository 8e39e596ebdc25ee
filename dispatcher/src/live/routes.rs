//! Each courier's current route, pushed to its socket (being written).
