//! OpenTelemetry export of runs over OTLP (http/protobuf), on when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set.
//!
//! Spans are derived from the same [`RunEvent`]s the store records (see `spans`), so their times
//! and ids match `/debug`: the trace id is the run's `trace_id`, steps are children of the run.
//! Finished spans go to the SDK's batch processor, which exports them from its own thread;
//! [`stop`] flushes what is queued. With no exporter installed, [`record`] returns after one
//! atomic load.
//!
//! The SDK's `Tracer` always draws span and trace ids from its id generator (it ignores
//! `SpanBuilder::with_trace_id`/`with_span_id`), so spans are built as finished `SpanData` and
//! handed to the processor directly — what `Span::end_with_timestamp` would do, with our ids.

mod http;
mod spans;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanProcessor};

use crate::domain::RunEvent;

pub use spans::{run_span_id, step_span_id, trace_id_of};

/// The base URL of an OTLP collector; `/v1/traces` is appended.
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The full URL for traces; used as is, and wins over [`ENDPOINT_VAR`].
pub const TRACES_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `service.name` of the exported spans (default `switchboard`).
pub const SERVICE_NAME_VAR: &str = "OTEL_SERVICE_NAME";
/// Export timeout in milliseconds (default 10 000).
pub const TIMEOUT_VAR: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// Only `http/protobuf` is supported; other values are warned about and ignored.
pub const PROTOCOL_VAR: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `true` turns export off whatever else is set.
pub const DISABLED_VAR: &str = "OTEL_SDK_DISABLED";

const DEFAULT_SERVICE_NAME: &str = "switchboard";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`stop`] waits for queued spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and as whom spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The full URL spans are posted to (`…/v1/traces`).
    pub traces_endpoint: String,
    pub service_name: String,
    pub timeout: Duration,
}

impl TelemetryConfig {
    /// Export to the collector at `base` (e.g. `http://localhost:4318`), as `switchboard`.
    pub fn new(base: &str) -> Self {
        Self {
            traces_endpoint: format!("{}/v1/traces", base.trim_end_matches('/')),
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The configuration the environment asks for; `None` when no endpoint is set (or the SDK is
    /// disabled). `get` reads the process environment snapshot (`app::Environment`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |key: &str| {
            get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if var(DISABLED_VAR).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return None;
        }
        let mut config = match (var(TRACES_ENDPOINT_VAR), var(ENDPOINT_VAR)) {
            (Some(traces), _) => Self {
                traces_endpoint: traces,
                ..Self::new("")
            },
            (None, Some(base)) => Self::new(&base),
            (None, None) => return None,
        };
        if let Some(name) = var(SERVICE_NAME_VAR) {
            config.service_name = name;
        }
        if let Some(ms) = var(TIMEOUT_VAR).and_then(|v| v.parse::<u64>().ok()) {
            config.timeout = Duration::from_millis(ms);
        }
        if let Some(protocol) = var(PROTOCOL_VAR).filter(|p| p != "http/protobuf") {
            tracing::warn!(protocol = %protocol, "only http/protobuf is supported for OTLP; using it");
        }
        Some(config)
    }
}

/// Why the exporter could not start or flush.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry needs a tokio runtime to send from")]
    NoRuntime,
    #[error("building the OTLP HTTP client failed: {0}")]
    Client(#[from] reqwest::Error),
    #[error("building the OTLP exporter failed: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("exporting spans failed: {0}")]
    Export(#[from] opentelemetry_sdk::error::OTelSdkError),
    #[error("the export task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// A running exporter. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    processor: BatchSpanProcessor,
    spans: Mutex<spans::RunSpans>,
}

impl Telemetry {
    /// Start exporting to `config.traces_endpoint`. Must run inside a tokio runtime: exports are
    /// sent from it.
    ///
    /// # Errors
    /// No runtime, or an invalid endpoint.
    pub fn start(config: &TelemetryConfig) -> Result<Self, TelemetryError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| TelemetryError::NoRuntime)?;
        let client = reqwest::Client::builder().timeout(config.timeout).build()?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(http::RuntimeClient::new(client, runtime))
            .with_endpoint(config.traces_endpoint.clone())
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(config.timeout)
            .build()?;
        let mut processor = BatchSpanProcessor::builder(exporter).build();
        processor.set_resource(
            &Resource::builder_empty()
                .with_service_name(config.service_name.clone())
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build(),
        );
        let scope = InstrumentationScope::builder("switchboard")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                processor,
                spans: Mutex::new(spans::RunSpans::new(scope)),
            }),
        })
    }

    /// Feed one run event; spans it finishes are queued for export (never blocks on IO).
    pub fn record(&self, event: &RunEvent) {
        let finished = self
            .inner
            .spans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .on_event(event);
        for span in finished {
            self.inner.processor.on_end(span);
        }
    }

    /// Export everything queued and wait for the collector's answer.
    ///
    /// # Errors
    /// The export failed or timed out.
    pub async fn flush(&self) -> Result<(), TelemetryError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.processor.force_flush()).await??;
        Ok(())
    }

    /// Flush and stop the exporter; later spans are dropped.
    ///
    /// # Errors
    /// The last export failed or timed out.
    pub async fn shutdown(&self) -> Result<(), TelemetryError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            inner.processor.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        })
        .await??;
        Ok(())
    }

    /// Runs started and not yet finished (bounded).
    pub fn open_runs(&self) -> usize {
        self.inner
            .spans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .open_runs()
    }
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static INSTALLED: RwLock<Option<Telemetry>> = RwLock::new(None);

/// Make `telemetry` the exporter [`record`] feeds (the run service calls `record`).
pub fn install(telemetry: Telemetry) {
    *INSTALLED.write().unwrap_or_else(|p| p.into_inner()) = Some(telemetry);
    ACTIVE.store(true, Ordering::Release);
}

/// Stop feeding `telemetry` if it is the installed one.
pub fn uninstall(telemetry: &Telemetry) {
    let mut installed = INSTALLED.write().unwrap_or_else(|p| p.into_inner());
    if installed
        .as_ref()
        .is_some_and(|t| Arc::ptr_eq(&t.inner, &telemetry.inner))
    {
        *installed = None;
        ACTIVE.store(false, Ordering::Release);
    }
}

/// Feed a run event to the installed exporter, if any.
pub fn record(event: &RunEvent) {
    if !ACTIVE.load(Ordering::Acquire) {
        return;
    }
    if matches!(
        event,
        RunEvent::TokenDelta { .. } | RunEvent::ToolProgress { .. }
    ) {
        return;
    }
    let telemetry = INSTALLED.read().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(telemetry) = telemetry {
        telemetry.record(event);
    }
}

/// Start and install the exporter when the environment asks for one (see [`TelemetryConfig::from_env`]).
/// A failure is logged and leaves export off: telemetry never stops the server.
pub fn start_from_env(get: impl Fn(&str) -> Option<String>) -> Option<Telemetry> {
    let config = TelemetryConfig::from_env(get)?;
    match Telemetry::start(&config) {
        Ok(telemetry) => {
            tracing::info!(endpoint = %config.traces_endpoint, service = %config.service_name, "exporting traces over OTLP");
            install(telemetry.clone());
            Some(telemetry)
        }
        Err(err) => {
            tracing::warn!(error = %err, "OpenTelemetry export is off");
            None
        }
    }
}

/// Uninstall, flush and stop (shutdown: after runs are cancelled, before the store closes).
pub async fn stop(telemetry: Option<Telemetry>) {
    let Some(telemetry) = telemetry else { return };
    uninstall(&telemetry);
    if let Err(err) = telemetry.shutdown().await {
        tracing::warn!(error = %err, "flushing traces failed");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::RunId;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn export_is_off_without_an_endpoint() {
        assert_eq!(TelemetryConfig::from_env(env(&[])), None);
        assert_eq!(TelemetryConfig::from_env(env(&[(ENDPOINT_VAR, " ")])), None);
        assert_eq!(
            TelemetryConfig::from_env(env(&[
                (ENDPOINT_VAR, "http://c:4318"),
                (DISABLED_VAR, "true")
            ])),
            None
        );
    }

    #[test]
    fn endpoints_service_name_and_timeout_come_from_the_environment() {
        let config =
            TelemetryConfig::from_env(env(&[(ENDPOINT_VAR, "http://c:4318/")])).expect("on");
        assert_eq!(config.traces_endpoint, "http://c:4318/v1/traces");
        assert_eq!(config.service_name, "switchboard");
        let config = TelemetryConfig::from_env(env(&[
            (ENDPOINT_VAR, "http://c:4318"),
            (TRACES_ENDPOINT_VAR, "http://t:1/custom"),
            (SERVICE_NAME_VAR, "sb-prod"),
            (TIMEOUT_VAR, "2500"),
        ]))
        .expect("on");
        assert_eq!(config.traces_endpoint, "http://t:1/custom");
        assert_eq!(config.service_name, "sb-prod");
        assert_eq!(config.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn recording_without_an_exporter_is_a_no_op() {
        record(&RunEvent::TokenDelta {
            run_id: RunId::new(),
            step: 0,
            text: "x".into(),
        });
        let run_id = RunId::new();
        let parent = crate::domain::traceparent(
            &trace_id_of(run_id, Some("0af7651916cd43dd8448eb211c80319c")).to_string(),
            u64::from_be_bytes(run_span_id(run_id).to_bytes()),
        );
        assert_eq!(parent.len(), 55);
    }
}
