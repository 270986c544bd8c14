//! What a server asks of its client while a call runs — input from a person (elicitation) and
//! a model completion (sampling) — handed to the call that can answer it.
//!
//! MCP does not say which call a server request belongs to (over stdio nothing ties them), so a
//! request goes to the run whose calls are in flight on that server; with calls of several runs
//! in flight it is answered as if nobody could be asked, since putting one person's question to
//! another is worse than declining it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::domain::InputAction;

/// A request from a server for the call's owner to answer.
#[derive(Debug)]
pub enum ServerAsk {
    /// `elicitation/create` in form mode: the person fills in `schema` (a flat JSON Schema
    /// object of primitive fields).
    Input {
        server: String,
        message: String,
        schema: Value,
        reply: oneshot::Sender<InputAnswer>,
    },
    /// `sampling/createMessage`: one completion from `model` (the server's `sampling.model`).
    Sample {
        server: String,
        model: String,
        request: SampleRequest,
        reply: oneshot::Sender<Result<SampleAnswer, String>>,
    },
}

/// A person's answer to an input request.
#[derive(Debug, Clone, PartialEq)]
pub struct InputAnswer {
    pub action: InputAction,
    /// The filled-in form, for `accept`.
    pub content: Option<Value>,
}

/// A sampling request as the model registry can serve it: text only.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRequest {
    pub system_prompt: Option<String>,
    /// `(is_assistant, text)` in order; other content kinds are described in words.
    pub messages: Vec<(bool, String)>,
    /// Already lowered to the server's `sampling.max_tokens`.
    pub max_tokens: u32,
    pub temperature: Option<f64>,
}

/// The completion served for a sampling request.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleAnswer {
    /// The model that answered, as configured.
    pub model: String,
    pub text: String,
    /// MCP's stop reason (`endTurn`, `maxTokens`, …).
    pub stop_reason: Option<String>,
}

/// Whom a call's server requests go to: `owner` groups the calls of one run (the run id), so a
/// request is put to a person only when every call in flight on the server is theirs.
#[derive(Debug, Clone)]
pub struct Asker {
    pub owner: String,
    pub sink: mpsc::Sender<ServerAsk>,
}

/// The askers of one server's calls in flight.
#[derive(Debug, Default)]
pub(crate) struct AskRoutes {
    routes: Mutex<Vec<(u64, Asker)>>,
    next: AtomicU64,
}

/// Who answers a server request now.
pub(crate) enum Answerer {
    /// No call in flight can be asked.
    Nobody,
    /// Calls of more than one owner are in flight: which call asks is unknown.
    Ambiguous,
    One(mpsc::Sender<ServerAsk>),
}

impl AskRoutes {
    /// Route requests to `asker` until the returned guard is dropped.
    pub(crate) fn register(self: &Arc<Self>, asker: Asker) -> AskRouteGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().push((id, asker));
        AskRouteGuard {
            routes: self.clone(),
            id,
        }
    }

    /// The asker of the earliest call in flight, if every call in flight has the same owner.
    pub(crate) fn answerer(&self) -> Answerer {
        let routes = self.lock();
        let Some((_, first)) = routes.first() else {
            return Answerer::Nobody;
        };
        if routes.iter().any(|(_, a)| a.owner != first.owner) {
            return Answerer::Ambiguous;
        }
        Answerer::One(first.sink.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Asker)>> {
        self.routes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Unregisters an asker when its call ends, however it ends.
pub(crate) struct AskRouteGuard {
    routes: Arc<AskRoutes>,
    id: u64,
}

impl Drop for AskRouteGuard {
    fn drop(&mut self) {
        self.routes.lock().retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asker(owner: &str) -> (Asker, mpsc::Receiver<ServerAsk>) {
        let (sink, rx) = mpsc::channel(1);
        (
            Asker {
                owner: owner.to_owned(),
                sink,
            },
            rx,
        )
    }

    #[test]
    fn a_request_goes_to_the_one_owner_in_flight_and_never_across_owners() {
        let routes = Arc::new(AskRoutes::default());
        assert!(matches!(routes.answerer(), Answerer::Nobody));
        let (a1, _r1) = asker("run-a");
        let (a2, _r2) = asker("run-a");
        let g1 = routes.register(a1);
        let g2 = routes.register(a2);
        assert!(matches!(routes.answerer(), Answerer::One(_)));
        let (b, _rb) = asker("run-b");
        let gb = routes.register(b);
        assert!(matches!(routes.answerer(), Answerer::Ambiguous));
        drop((g1, g2));
        assert!(matches!(routes.answerer(), Answerer::One(_)));
        drop(gb);
        assert!(matches!(routes.answerer(), Answerer::Nobody));
    }
}
