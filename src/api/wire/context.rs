//! The upstream servers' resources and prompts as `/api/context` shows them to the chat and
//! `/servers`: each with the server it is from, in the server's own names.

use rmcp::model::{GetPromptResult, Prompt, ReadResourceResult, Resource, ResourceTemplate};
use serde::Serialize;
use serde_json::Value;

use crate::hub::context::FromServer;

/// `GET /api/context`.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ContextList {
    resources: Vec<ResourceView>,
    templates: Vec<TemplateView>,
    prompts: Vec<PromptView>,
}

#[derive(Debug, Serialize)]
struct ResourceView {
    server: String,
    uri: String,
    name: String,
    title: Option<String>,
    description: Option<String>,
    mime_type: Option<String>,
}

#[derive(Debug, Serialize)]
struct TemplateView {
    server: String,
    uri_template: String,
    name: String,
    title: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Serialize)]
struct PromptView {
    server: String,
    name: String,
    title: Option<String>,
    description: Option<String>,
    arguments: Vec<ArgumentView>,
}

#[derive(Debug, Serialize)]
struct ArgumentView {
    name: String,
    description: Option<String>,
    required: bool,
}

impl ContextList {
    pub(in crate::api) fn new(
        resources: Vec<FromServer<Resource>>,
        templates: Vec<FromServer<ResourceTemplate>>,
        prompts: Vec<FromServer<Prompt>>,
    ) -> Self {
        Self {
            resources: resources
                .into_iter()
                .map(|FromServer { server, item }| ResourceView {
                    server,
                    uri: item.uri,
                    name: item.name,
                    title: item.title,
                    description: item.description,
                    mime_type: item.mime_type,
                })
                .collect(),
            templates: templates
                .into_iter()
                .map(|FromServer { server, item }| TemplateView {
                    server,
                    uri_template: item.uri_template,
                    name: item.name,
                    title: item.title,
                    description: item.description,
                })
                .collect(),
            prompts: prompts
                .into_iter()
                .map(|FromServer { server, item }| PromptView {
                    server,
                    name: item.name,
                    title: item.title,
                    description: item.description,
                    arguments: item
                        .arguments
                        .unwrap_or_default()
                        .into_iter()
                        .map(|a| ArgumentView {
                            name: a.name,
                            description: a.description,
                            required: a.required == Some(true),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// `POST /api/context/read`: each part of the resource, text as text, anything else described.
#[derive(Debug, Serialize)]
pub(in crate::api) struct ReadView {
    pub contents: Vec<ContentView>,
}

#[derive(Debug, Serialize)]
pub(in crate::api) struct ContentView {
    pub uri: String,
    pub mime_type: Option<String>,
    /// The text, for a text part; `None` for binary parts (their size is in `bytes`).
    pub text: Option<String>,
    /// Length of a binary part's data, decoded.
    pub bytes: Option<usize>,
}

impl ReadView {
    pub(in crate::api) fn new(result: &ReadResourceResult) -> Self {
        let value = serde_json::to_value(result).unwrap_or(Value::Null);
        let contents = value["contents"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|part| ContentView {
                uri: part["uri"].as_str().unwrap_or_default().to_owned(),
                mime_type: part["mimeType"].as_str().map(str::to_owned),
                text: part["text"].as_str().map(str::to_owned),
                // base64: four characters carry three bytes.
                bytes: part["blob"]
                    .as_str()
                    .map(|b| b.trim_end_matches('=').len() * 3 / 4),
            })
            .collect();
        Self { contents }
    }
}

/// `POST /api/context/prompt`: the prompt's messages, text parts as text.
#[derive(Debug, Serialize)]
pub(in crate::api) struct PromptMessages {
    description: Option<String>,
    messages: Vec<MessageView>,
}

#[derive(Debug, Serialize)]
struct MessageView {
    role: String,
    /// The message's text; another kind of content is described in words.
    text: String,
}

impl PromptMessages {
    pub(in crate::api) fn new(result: &GetPromptResult) -> Self {
        let messages = result
            .messages
            .iter()
            .map(|message| {
                let value = serde_json::to_value(message).unwrap_or(Value::Null);
                let content = &value["content"];
                let text = match content["type"].as_str() {
                    Some("text") => content["text"].as_str().unwrap_or_default().to_owned(),
                    Some("resource") => content["resource"]["text"].as_str().map_or_else(
                        || format!("(a resource: {})", content["resource"]["uri"]),
                        str::to_owned,
                    ),
                    Some(kind) => format!("({kind} content)"),
                    None => String::new(),
                };
                MessageView {
                    role: value["role"].as_str().unwrap_or("user").to_owned(),
                    text,
                }
            })
            .collect();
        Self {
            description: result.description.clone(),
            messages,
        }
    }
}
