//! The load generators' connection pool: a caller takes an idle connection (or opens one) and
//! puts it back after its call, so each caller in flight keeps one keep-alive connection.

use std::sync::{Arc, Mutex};

/// Idle connections, shared by every caller of one client.
pub(crate) struct Idle<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Idle<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Idle<T> {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Mutex::new(Vec::new())))
    }

    /// An idle connection, if there is one.
    pub(crate) fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// Back to the pool after a call that left it ready for the next.
    pub(crate) fn put(&self, connection: T) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(connection);
    }
}
