//! The stop signal of a daemon.

/// Resolves on SIGTERM (what Kubernetes sends a pod) or Ctrl-C.
pub async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler only Ctrl-C stops us.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = term => {}, _ = tokio::signal::ctrl_c() => {} }
}
