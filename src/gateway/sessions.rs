//! `/mcp` sessions any replica can carry on: rmcp's `SessionStore` over the store's
//! `mcp_sessions` table. A request of a session this process does not know (it began on another
//! replica, or before a restart) is served after rmcp replays the client's `initialize` from
//! here, so no load balancer needs sticky sessions.

use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};

use crate::store::Store;

/// The store's `mcp_sessions`, as rmcp asks for them.
pub(super) struct StoredSessions {
    pub store: Store,
}

#[async_trait::async_trait]
impl SessionStore for StoredSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let Some(text) = self.store.load_mcp_session(session_id).await? else {
            return Ok(None);
        };
        // A row this server wrote; one it cannot read is an error, not an unknown session.
        Ok(Some(serde_json::from_str(&text)?))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let text = serde_json::to_string(state)?;
        self.store.save_mcp_session(session_id, text).await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.store.delete_mcp_session(session_id).await?;
        Ok(())
    }
}
