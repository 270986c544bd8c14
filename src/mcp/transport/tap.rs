//! A client transport that shows each notification the server sends to a [`Tap`] before the
//! session reads the next message: rmcp runs notification handlers on tasks of their own, which
//! may run after the answer that followed the notification (a call's last progress would then
//! find its route gone, a log line land after the result it belongs to). A tap sees them in
//! the order they arrived.

use std::sync::Arc;

use futures::future::BoxFuture;
use rmcp::RoleClient;
use rmcp::model::{JsonRpcMessage, ServerNotification};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;

/// What sees the server's notifications as they arrive.
pub trait Tap: Send + Sync + 'static {
    /// Called for each notification, in order; the session reads on once the returned future
    /// (if any) has finished, so it must not wait on the session itself.
    fn notified(&self, notification: &ServerNotification) -> Option<BoxFuture<'static, ()>>;
}

/// `inner`, with `tap` shown every notification first.
pub struct Tapped<T> {
    inner: T,
    tap: Arc<dyn Tap>,
}

impl<T> Tapped<T> {
    pub fn new(inner: T, tap: Arc<dyn Tap>) -> Self {
        Self { inner, tap }
    }
}

impl<T: Transport<RoleClient> + 'static> Transport<RoleClient> for Tapped<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        let received = self.inner.receive();
        let tap = self.tap.clone();
        async move {
            let message = received.await;
            if let Some(JsonRpcMessage::Notification(notification)) = &message
                && let Some(seen) = tap.notified(&notification.notification)
            {
                seen.await;
            }
            message
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
