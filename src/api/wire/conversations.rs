//! Conversations as `/api/conversations` returns them: listed, read with their messages, and
//! renamed. Times are Unix milliseconds.

use serde::Serialize;

use crate::domain::{ConversationId, RunId, UnixMillis};
use crate::store;

/// `GET /api/conversations`: one page, newest first.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ConversationList<'a> {
    pub conversations: Vec<Conversation<'a>>,
    /// The `cursor` of the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A conversation without its messages: an entry of the listing, and the answer of a rename.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Conversation<'a> {
    id: ConversationId,
    title: &'a str,
    created_at: UnixMillis,
    /// Last rename or message.
    updated_at: UnixMillis,
}

/// `GET /api/conversations/{id}`: the conversation's fields beside every message, oldest first.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ConversationDetail<'a> {
    #[serde(flatten)]
    conversation: Conversation<'a>,
    messages: Vec<Message<'a>>,
}

/// One message of a conversation.
#[derive(Debug, Serialize)]
pub(in crate::api) struct Message<'a> {
    /// `user` or `assistant`.
    role: &'a str,
    content: &'a str,
    /// The run that answered (assistant) or that the message started (user), so the chat can
    /// link to it in `/debug`.
    run_id: Option<RunId>,
    created_at: UnixMillis,
}

impl<'a> From<&'a store::ConversationRecord> for Conversation<'a> {
    fn from(conversation: &'a store::ConversationRecord) -> Self {
        Self {
            id: conversation.id,
            title: &conversation.title,
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
        }
    }
}

impl<'a> From<&'a store::ConversationDetail> for ConversationDetail<'a> {
    fn from(detail: &'a store::ConversationDetail) -> Self {
        Self {
            conversation: Conversation::from(&detail.conversation),
            messages: detail.messages.iter().map(Message::from).collect(),
        }
    }
}

impl<'a> From<&'a store::MessageRecord> for Message<'a> {
    fn from(message: &'a store::MessageRecord) -> Self {
        Self {
            role: &message.role,
            content: &message.content,
            run_id: message.run_id,
            created_at: message.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{Conversation, ConversationDetail, ConversationList};
    use crate::domain::{ConversationId, RunId};
    use crate::store::{self, ConversationRecord, MessageRecord};

    fn record() -> ConversationRecord {
        ConversationRecord {
            id: ConversationId(uuid::Uuid::from_u128(2)),
            title: "Sums".to_owned(),
            created_at: 1_000,
            updated_at: 2_000,
            user: None,
        }
    }

    fn record_json() -> Value {
        json!({
            "id": "00000000-0000-0000-0000-000000000002",
            "title": "Sums",
            "created_at": 1000,
            "updated_at": 2000,
        })
    }

    #[test]
    fn a_listing_has_conversations_and_the_cursor() {
        let records = [record()];
        let list = ConversationList {
            conversations: records.iter().map(Conversation::from).collect(),
            next_cursor: Some("00000000-0000-0000-0000-000000000002".to_owned()),
        };
        assert_eq!(
            serde_json::to_value(list).unwrap(),
            json!({
                "conversations": [record_json()],
                "next_cursor": "00000000-0000-0000-0000-000000000002",
            })
        );
    }

    #[test]
    fn a_renamed_conversation_has_no_messages() {
        assert_eq!(
            serde_json::to_value(Conversation::from(&record())).unwrap(),
            record_json()
        );
    }

    #[test]
    fn a_conversation_has_its_messages_beside_its_fields() {
        let detail = store::ConversationDetail {
            conversation: record(),
            messages: vec![
                MessageRecord {
                    role: "user".to_owned(),
                    content: "add 2 and 2".to_owned(),
                    run_id: Some(RunId(uuid::Uuid::from_u128(1))),
                    created_at: 1_000,
                },
                MessageRecord {
                    role: "assistant".to_owned(),
                    content: "4".to_owned(),
                    run_id: None,
                    created_at: 1_500,
                },
            ],
        };
        let mut expected = record_json();
        expected["messages"] = json!([
            {
                "role": "user",
                "content": "add 2 and 2",
                "run_id": "00000000-0000-0000-0000-000000000001",
                "created_at": 1000,
            },
            { "role": "assistant", "content": "4", "run_id": null, "created_at": 1500 },
        ]);
        assert_eq!(
            serde_json::to_value(ConversationDetail::from(&detail)).unwrap(),
            expected
        );
    }
}
