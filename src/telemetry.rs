//! OpenTelemetry export of runs over OTLP (http/protobuf), on when the config's
//! [`TelemetryConfig`] asks for it (`config::environment` reads it from the `OTEL_*` variables;
//! nothing here reads the environment).
//!
//! Spans are derived from the same [`RunEvent`]s the store records (see `spans`), so their times
//! and ids match `/debug`: the trace id is the run's `trace_id`, steps are children of the run.
//! Finished spans go to the SDK's batch processor, which exports them from its own thread;
//! [`Telemetry::stop`] flushes what is queued. The [`Telemetry`] handle is made by `app` and
//! passed to whoever records (the run service's sink) rather than installed in a global, so two
//! servers in one process (tests) never feed each other's exporter; [`Telemetry::off`] records
//! nothing and costs one branch per event.
//!
//! The SDK's `Tracer` always draws span and trace ids from its id generator (it ignores
//! `SpanBuilder::with_trace_id`/`with_span_id`), so spans are built as finished `SpanData` and
//! handed to the processor directly — what `Span::end_with_timestamp` would do, with our ids.

mod http;
mod spans;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanProcessor};

use crate::domain::RunEvent;

pub use spans::{run_span_id, step_span_id, trace_id_of};

/// The exporter's settings, typed and checked by `config` (kept here under its old path).
pub use crate::config::model::TelemetryConfig;

/// How long [`Telemetry::shutdown`] waits for queued spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

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

/// An exporter, or none ([`Telemetry::off`], the default). Cheap to clone: clones feed the same
/// exporter.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    processor: BatchSpanProcessor,
    spans: Mutex<spans::RunSpans>,
    /// Set by [`Telemetry::stop`]: runs still ending after it are not recorded.
    stopped: AtomicBool,
}

impl Telemetry {
    /// No exporter: [`Self::record`] does nothing, flushing succeeds at once.
    pub fn off() -> Self {
        Self::default()
    }

    /// The exporter `config` asks for (`None`: off). A failure to start is logged and leaves
    /// export off: telemetry never stops the server.
    pub fn from_config(config: Option<&TelemetryConfig>) -> Self {
        let Some(config) = config else {
            return Self::off();
        };
        if let Some(protocol) = &config.unsupported_protocol {
            tracing::warn!(protocol = %protocol, "only http/protobuf is supported for OTLP; using it");
        }
        match Self::start(config) {
            Ok(telemetry) => {
                tracing::info!(endpoint = %config.traces_endpoint, service = %config.service_name, "exporting traces over OTLP");
                telemetry
            }
            Err(err) => {
                tracing::warn!(error = %err, "OpenTelemetry export is off");
                Self::off()
            }
        }
    }

    /// Whether spans are exported.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

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
            inner: Some(Arc::new(Inner {
                processor,
                spans: Mutex::new(spans::RunSpans::new(scope)),
                stopped: AtomicBool::new(false),
            })),
        })
    }

    /// Feed one run event; spans it finishes are queued for export (never blocks on IO).
    /// Token and progress events make no span, so they return before taking any lock.
    pub fn record(&self, event: &RunEvent) {
        let Some(inner) = &self.inner else { return };
        if !event.is_durable() || inner.stopped.load(Ordering::Acquire) {
            return;
        }
        let finished = inner
            .spans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .on_event(event);
        for span in finished {
            inner.processor.on_end(span);
        }
    }

    /// Export everything queued and wait for the collector's answer.
    ///
    /// # Errors
    /// The export failed or timed out.
    pub async fn flush(&self) -> Result<(), TelemetryError> {
        let Some(inner) = self.inner.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || inner.processor.force_flush()).await??;
        Ok(())
    }

    /// Flush and stop the exporter; later spans are dropped.
    ///
    /// # Errors
    /// The last export failed or timed out.
    pub async fn shutdown(&self) -> Result<(), TelemetryError> {
        let Some(inner) = self.inner.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || {
            inner.processor.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        })
        .await??;
        Ok(())
    }

    /// Stop recording, flush and stop the exporter (shutdown: after runs are cancelled, before
    /// the store closes). A failed last export is logged.
    pub async fn stop(&self) {
        let Some(inner) = &self.inner else { return };
        inner.stopped.store(true, Ordering::Release);
        if let Err(err) = self.shutdown().await {
            tracing::warn!(error = %err, "flushing traces failed");
        }
    }

    /// Runs started and not yet finished (bounded).
    pub fn open_runs(&self) -> usize {
        self.inner.as_ref().map_or(0, |inner| {
            inner
                .spans
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .open_runs()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RunId;

    #[tokio::test]
    async fn recording_without_an_exporter_is_a_no_op() {
        let telemetry = Telemetry::off();
        assert!(!telemetry.is_on());
        telemetry.record(&RunEvent::TokenDelta {
            run_id: RunId::new(),
            step: 0,
            text: "x".into(),
        });
        assert_eq!(telemetry.open_runs(), 0);
        telemetry.flush().await.expect("nothing to flush");
        telemetry.stop().await;
        assert!(!Telemetry::from_config(None).is_on());
        let run_id = RunId::new();
        let parent = crate::domain::traceparent(
            &trace_id_of(run_id, Some("0af7651916cd43dd8448eb211c80319c")).to_string(),
            u64::from_be_bytes(run_span_id(run_id).to_bytes()),
        );
        assert_eq!(parent.len(), 55);
    }

    #[tokio::test]
    async fn a_stopped_exporter_records_nothing() {
        let telemetry = Telemetry::from_config(Some(&TelemetryConfig::new("http://127.0.0.1:9")));
        assert!(telemetry.is_on());
        let run_started = |run_id| RunEvent::RunStarted {
            run_id,
            conversation_id: Some(crate::domain::ConversationId::new()),
            agent: None,
            model: "m".into(),
            user_message: "hi".into(),
            trace_id: None,
            user: None,
            at: 1,
        };
        telemetry.record(&run_started(RunId::new()));
        assert_eq!(telemetry.open_runs(), 1);
        telemetry.stop().await;
        telemetry.record(&run_started(RunId::new()));
        assert_eq!(telemetry.open_runs(), 1, "nothing is recorded after stop");
    }
}
