//! Names of the dispatcher's metrics, in one place (labels have few values: never an order or
//! courier id).

/// Wall time of one solve, seconds (histogram).
pub const PLANNER_REPLAN_SECONDS: &str = "dispatcher_replan_seconds";
/// Planning runs applied (counter).
pub const PLANNER_RUNS: &str = "dispatcher_replans_total";
/// Solver iterations (counter).
pub const PLANNER_ITERATIONS: &str = "dispatcher_solver_iterations_total";
/// Runs where the solver refused the state or panicked (counter).
pub const PLANNER_FAILURES: &str = "dispatcher_replan_failures_total";
/// Open orders at the last run (gauge).
pub const PLANNER_OPEN_ORDERS: &str = "dispatcher_open_orders";
/// Orders without a courier after the last run (gauge).
pub const PLANNER_UNASSIGNED: &str = "dispatcher_unassigned_orders";
/// Route versions made by the planner (counter).
pub const PLANNER_CHANGED_ROUTES: &str = "dispatcher_changed_routes_total";
/// Arrivals detected from positions (counter).
pub const ARRIVALS_DETECTED: &str = "dispatcher_arrivals_detected_total";
/// Open map sockets (gauge).
pub const MAP_CLIENTS: &str = "dispatcher_map_clients";
/// Map frames dropped because a client fell behind (counter).
pub const MAP_FRAMES_DROPPED: &str = "dispatcher_map_frames_dropped_total";
/// Time a change waited for the write lock, seconds (histogram).
pub const CHANGE_WAIT_SECONDS: &str = "dispatcher_change_wait_seconds";
/// Time one store commit took, seconds (histogram).
pub const COMMIT_SECONDS: &str = "dispatcher_commit_seconds";
/// Planner wake-ups by reason (counter, label `reason`).
pub const PLANNER_TRIGGERS: &str = "dispatcher_planner_triggers_total";
