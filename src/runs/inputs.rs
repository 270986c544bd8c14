//! The questions a run's servers are waiting on a person to answer (MCP elicitation): opened
//! while a call runs, answered through `RunService::answer_input`, and gone when the call ends,
//! however it ends — an answer after that has nobody to go to and is refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::oneshot;

use crate::domain::InputAction;
use crate::mcp::asks::InputAnswer;
use crate::tools::ArgumentError;

/// Why an answer was not taken.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(
        "no input `{id}` is waiting for an answer in this run (it was answered already, or the tool call that asked has ended)"
    )]
    NotPending { id: String },
    #[error("`content` is only sent with the action `accept`")]
    ContentWithoutAccept,
    #[error("the answer does not match the form the server asked for")]
    Invalid { errors: Vec<ArgumentError> },
}

/// One run's open questions.
#[derive(Debug, Default)]
pub struct PendingInputs {
    next: AtomicU64,
    waiting: Mutex<HashMap<String, Waiting>>,
}

#[derive(Debug)]
struct Waiting {
    schema: Value,
    reply: oneshot::Sender<InputAnswer>,
}

impl PendingInputs {
    /// Opens a question with `schema`: its id, where the answer arrives, and a guard that
    /// withdraws the question when the asking call ends.
    pub(crate) fn open(
        self: &Arc<Self>,
        schema: Value,
    ) -> (String, oneshot::Receiver<InputAnswer>, OpenInput) {
        let id = format!("in-{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let (reply, answer) = oneshot::channel();
        self.lock().insert(id.clone(), Waiting { schema, reply });
        let guard = OpenInput {
            inputs: self.clone(),
            id: id.clone(),
        };
        (id, answer, guard)
    }

    /// Answer question `id`. Accepted content is checked against the question's schema first;
    /// a refused answer leaves the question open.
    ///
    /// # Errors
    /// No such open question, content with another action, or content the schema refuses.
    pub fn answer(&self, id: &str, answer: InputAnswer) -> Result<(), InputError> {
        let mut waiting = self.lock();
        let Some(open) = waiting.get(id) else {
            return Err(InputError::NotPending { id: id.to_owned() });
        };
        match (&answer.action, &answer.content) {
            (InputAction::Accept, content) => {
                let content = content
                    .clone()
                    .unwrap_or_else(|| Value::Object(Default::default()));
                crate::tools::validate_against(&open.schema, &content)
                    .map_err(|errors| InputError::Invalid { errors })?;
            }
            (_, Some(_)) => return Err(InputError::ContentWithoutAccept),
            (_, None) => {}
        }
        let open = waiting
            .remove(id)
            .expect("checked above, under the same lock");
        // The call may have ended a moment ago; then the answer has nobody to go to.
        open.reply
            .send(answer)
            .map_err(|_| InputError::NotPending { id: id.to_owned() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Withdraws an open question when dropped.
pub(crate) struct OpenInput {
    inputs: Arc<PendingInputs>,
    id: String,
}

impl Drop for OpenInput {
    fn drop(&mut self) {
        self.inputs.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})
    }

    #[test]
    fn an_answer_is_checked_against_the_form_and_taken_once() {
        let inputs = Arc::new(PendingInputs::default());
        let (id, mut answer, _open) = inputs.open(schema());
        let wrong = InputAnswer {
            action: InputAction::Accept,
            content: Some(json!({"name": 7})),
        };
        let err = inputs
            .answer(&id, wrong)
            .expect_err("a number is not a name");
        let InputError::Invalid { errors } = err else {
            panic!("expected schema errors, got {err}");
        };
        assert_eq!(errors[0].path, "/name");
        assert!(answer.try_recv().is_err(), "a refused answer is not sent");
        let mixed = InputAnswer {
            action: InputAction::Decline,
            content: Some(json!({"name": "x"})),
        };
        assert!(matches!(
            inputs.answer(&id, mixed),
            Err(InputError::ContentWithoutAccept)
        ));
        let right = InputAnswer {
            action: InputAction::Accept,
            content: Some(json!({"name": "Ada"})),
        };
        inputs.answer(&id, right.clone()).expect("a valid answer");
        assert_eq!(answer.try_recv().expect("sent"), right);
        assert!(matches!(
            inputs.answer(&id, right),
            Err(InputError::NotPending { .. })
        ));
    }

    #[test]
    fn a_question_whose_call_ended_cannot_be_answered() {
        let inputs = Arc::new(PendingInputs::default());
        let (id, _answer, open) = inputs.open(schema());
        drop(open);
        let decline = InputAnswer {
            action: InputAction::Decline,
            content: None,
        };
        assert!(matches!(
            inputs.answer(&id, decline),
            Err(InputError::NotPending { .. })
        ));
    }
}
