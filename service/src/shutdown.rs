//! The one shutdown signal every long-lived task watches: a [`CancellationToken`] cancelled on
//! SIGTERM or Ctrl-C. Tasks `select!` on `token.cancelled()` and finish their in-flight work.

pub use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGTERM or Ctrl-C (a spawned task waits for them).
///
/// # Panics
/// Outside a Tokio runtime.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        signal().await;
        tracing::info!("Shutdown signal received.");
        cancel.cancel();
    });
    token
}

async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No Ctrl-C handler can be installed: wait for SIGTERM only.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    () = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
