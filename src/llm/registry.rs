//! The configured models: one client per model, whether each can be used (and why not), and its
//! health, probed at start-up and periodically without blocking anything.
//!
//! A reload builds a whole new set and swaps it in at once; a model that did not change keeps
//! its client and health history.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::ChatModel;
use super::anthropic::{self, AnthropicModel};
use super::error::LlmError;
use super::http::{self, ModelContext};
use super::openai::{self, OpenAiModel};
use super::types::Capabilities;
use crate::config::model::{ModelConfig, ProviderKind};

/// Result of the latest health probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// `unknown` before the first probe, then `ok`, `unreachable`, `auth_failed` or `error`.
    pub status: &'static str,
    /// Unix seconds of the last probe.
    pub last_check: Option<u64>,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
}

/// One model as listed by `GET /api/models`.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: String,
    pub provider: &'static str,
    pub model_name: String,
    pub tags: Vec<String>,
    pub default: bool,
    pub available: bool,
    pub unavailable_reason: Option<String>,
    pub capabilities: Capabilities,
    pub health: Health,
}

/// A configured model and its client.
pub struct ModelEntry {
    config: ModelConfig,
    client: Arc<dyn ChatModel>,
    /// Why the model cannot be used at all (e.g. no API key), independent of health.
    unavailable: Option<String>,
    health: Mutex<Health>,
    ctx_for_probe: ModelContext,
}

impl ModelEntry {
    /// The client, or why the model cannot be used.
    ///
    /// # Errors
    /// [`LlmError::Unavailable`] with the reason (e.g. the API key variable is not set).
    pub fn client(&self) -> Result<Arc<dyn ChatModel>, LlmError> {
        match &self.unavailable {
            Some(reason) => Err(LlmError::Unavailable {
                model: self.config.name.clone(),
                reason: reason.clone(),
            }),
            None => Ok(self.client.clone()),
        }
    }

    /// The model's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    fn info(&self, default: bool) -> ModelInfo {
        ModelInfo {
            name: self.config.name.clone(),
            provider: match self.config.provider {
                ProviderKind::OpenAi => "openai",
                ProviderKind::Anthropic => "anthropic",
            },
            model_name: self.config.model_name.clone(),
            tags: self.config.tags.clone(),
            default,
            available: self.unavailable.is_none(),
            unavailable_reason: self.unavailable.clone(),
            capabilities: self.client.capabilities(),
            health: self
                .health
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// All configured models; cheap to clone.
#[derive(Clone, Default)]
pub struct ModelRegistry {
    inner: Arc<RwLock<Models>>,
}

#[derive(Default)]
struct Models {
    entries: BTreeMap<String, Arc<ModelEntry>>,
    default: Option<String>,
    probes: Option<CancellationToken>,
}

impl ModelRegistry {
    /// Replace the model set with `configs` (models whose config is unchanged keep their state),
    /// and restart the health probes.
    pub fn apply(&self, configs: &BTreeMap<String, ModelConfig>, http: &reqwest::Client) {
        let old = self.read().entries.clone();
        let mut entries = BTreeMap::new();
        for (name, config) in configs.iter().filter(|(_, c)| c.enabled) {
            let entry = match old.get(name) {
                Some(entry) if entry.config == *config => entry.clone(),
                _ => Arc::new(build_entry(config.clone(), http.clone())),
            };
            entries.insert(name.clone(), entry);
        }
        let default = configs
            .values()
            .find(|c| c.enabled && c.default)
            .map(|c| c.name.clone())
            .or_else(|| {
                entries
                    .values()
                    .find(|e| e.unavailable.is_none())
                    .map(|e| e.config.name.clone())
            });
        let probes = CancellationToken::new();
        for entry in entries.values() {
            if entry.unavailable.is_none() && entry.config.healthcheck.is_some() {
                tokio::spawn(probe_loop(entry.clone(), probes.clone()));
            }
        }
        let mut models = self.write();
        if let Some(previous) = models.probes.replace(probes) {
            previous.cancel();
        }
        models.entries = entries;
        models.default = default;
    }

    /// Look up a model by name (`None` → the default model).
    ///
    /// # Errors
    /// Unknown name, or no model configured at all.
    pub fn get(&self, name: Option<&str>) -> Result<Arc<ModelEntry>, LlmError> {
        let models = self.read();
        let name = match name {
            Some(name) => name.to_owned(),
            None => models
                .default
                .clone()
                .ok_or_else(|| LlmError::Unavailable {
                    model: "(default)".to_owned(),
                    reason: "no model is configured; add one under `models:`".to_owned(),
                })?,
        };
        models
            .entries
            .get(&name)
            .cloned()
            .ok_or_else(|| LlmError::Unavailable {
                model: name.clone(),
                reason: format!(
                    "no model named `{name}`; configured: {}",
                    models
                        .entries
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// Every enabled model with availability and health.
    pub fn list(&self) -> Vec<ModelInfo> {
        let models = self.read();
        models
            .entries
            .values()
            .map(|e| e.info(models.default.as_deref() == Some(e.config.name.as_str())))
            .collect()
    }

    /// Stop the health probes.
    pub fn shutdown(&self) {
        if let Some(probes) = self.write().probes.take() {
            probes.cancel();
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Models> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Models> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn build_entry(config: ModelConfig, http: reqwest::Client) -> ModelEntry {
    let context = || ModelContext {
        name: config.name.clone(),
        config: config.clone(),
        http: http.clone(),
    };
    let client: Arc<dyn ChatModel> = match config.provider {
        ProviderKind::OpenAi => Arc::new(OpenAiModel::new(context())),
        ProviderKind::Anthropic => Arc::new(AnthropicModel::new(context())),
    };
    ModelEntry {
        unavailable: unavailable_reason(&config),
        client,
        health: Mutex::new(Health {
            status: "unknown",
            last_check: None,
            latency_ms: None,
            error: None,
        }),
        ctx_for_probe: context(),
        config,
    }
}

/// A model without a key is unusable unless it runs on this machine (Ollama, vLLM and friends
/// need no key on loopback); hosted APIs always need one.
fn unavailable_reason(config: &ModelConfig) -> Option<String> {
    if config.api_key.is_some() {
        return None;
    }
    let loopback = match config.base_url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    (!loopback).then(|| {
        "no API key is set (api_key is empty); set the variable its config names".to_owned()
    })
}

async fn probe_loop(entry: Arc<ModelEntry>, stop: CancellationToken) {
    let Some(check) = entry.config.healthcheck.clone() else {
        return;
    };
    loop {
        let health = tokio::select! {
            () = stop.cancelled() => return,
            health = probe(&entry.ctx_for_probe, check.timeout) => health,
        };
        *entry.health.lock().unwrap_or_else(|p| p.into_inner()) = health;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(check.interval) => {}
        }
    }
}

async fn probe(ctx: &ModelContext, timeout: Duration) -> Health {
    let request = match ctx.config.provider {
        ProviderKind::OpenAi => openai::health_request(ctx),
        ProviderKind::Anthropic => anthropic::health_request(ctx),
    };
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, request.timeout(timeout).send()).await;
    let latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    let last_check = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs());
    let (status, error) = match result {
        Err(_) => (
            "unreachable",
            Some(format!("no answer within {} ms", timeout.as_millis())),
        ),
        Ok(Err(err)) => (
            "unreachable",
            Some(http::classify_transport(ctx, &err).to_string()),
        ),
        Ok(Ok(response)) => match response.status().as_u16() {
            200..=299 => ("ok", None),
            // Some servers (TGI, llama.cpp) have no model list; answering at all means reachable.
            404 | 405 => ("ok", None),
            401 | 403 => (
                "auth_failed",
                Some("the provider rejected the API key".to_owned()),
            ),
            code => ("error", Some(format!("HTTP {code}"))),
        },
    };
    Health {
        status,
        last_check,
        latency_ms,
        error,
    }
}
