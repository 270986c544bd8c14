//! The process environment: captured once in `main` as an [`Environment`], and turned here, at
//! start-up, into the typed [`EnvSettings`] (listen address, data and web directories, the
//! config file, the OTLP exporter). Nothing else reads a variable of ours.
//!
//! Reading them in one place means one set of rules: a blank value is unset, a malformed one is
//! an error that names the variable and the value (never silently ignored), and the precedence
//! flag > variable > config file is applied by whoever holds the flags (`main`).
//! `${VAR}` in the config file is a different thing: it is expanded by the loader with the
//! same snapshot.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::error::shown;
use super::model::TelemetryConfig;

/// The address to listen on (beaten by `--bind`, beats `server.bind`).
pub const BIND_VAR: &str = "SWITCHBOARD_BIND";
/// The config file (beaten by `--config`).
pub const CONFIG_VAR: &str = "SWITCHBOARD_CONFIG";
/// The data directory: the hub sets it for every MCP server it starts, and the bundled servers
/// keep their state there (`notes.sqlite`).
pub const DATA_DIR_VAR: &str = "SWITCHBOARD_DATA_DIR";
/// Serve the web UI from this directory instead of the embedded copy (beaten by `--web-dir`).
pub const WEB_DIR_VAR: &str = "SWITCHBOARD_WEB_DIR";
/// An administrator key that needs no database row (bootstrap, containers): at least
/// [`MIN_ADMIN_KEY_CHARS`] characters; it authenticates as user `admin` with the `admin` role.
pub const ADMIN_KEY_VAR: &str = "SWITCHBOARD_ADMIN_KEY";
/// The API key `switchboard gateway --stdio` sends to the server it bridges to (beaten by
/// `--key`): kept in the launching client's environment rather than its command line.
pub const KEY_VAR: &str = "SWITCHBOARD_KEY";
/// Shortest accepted [`ADMIN_KEY_VAR`].
pub const MIN_ADMIN_KEY_CHARS: usize = 32;
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

/// A snapshot of the process environment, taken once in `main`; nothing reads the live one.
/// Tests build one from a map, so nothing they do leaks into other tests.
#[derive(Clone, Debug, Default)]
pub struct Environment(pub Arc<HashMap<String, String>>);

impl Environment {
    /// Snapshot of these variables (`std::env::vars()` in `main`).
    pub fn capture(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(Arc::new(vars.into_iter().collect()))
    }

    /// Look up a variable.
    pub fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    /// A variable's value with surrounding blanks removed; `None` when unset or blank, so
    /// `SWITCHBOARD_BIND=` means the same as no variable.
    fn value(&self, key: &str) -> Option<String> {
        self.0
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// Everything Switchboard takes from its environment, typed and checked. Each field is `None`
/// when its variable is unset or blank.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvSettings {
    /// [`CONFIG_VAR`].
    pub config_file: Option<PathBuf>,
    /// [`BIND_VAR`].
    pub bind: Option<SocketAddr>,
    /// [`DATA_DIR_VAR`], which the bundled servers read; `serve` takes its data directory from
    /// `--data-dir` or the file (the config file may say `${SWITCHBOARD_DATA_DIR}`).
    pub data_dir: Option<PathBuf>,
    /// [`WEB_DIR_VAR`].
    pub web_dir: Option<PathBuf>,
    /// The OTLP exporter the `OTEL_*` variables ask for; `None` when no endpoint is set or
    /// `OTEL_SDK_DISABLED=true`.
    pub telemetry: Option<TelemetryConfig>,
    /// [`ADMIN_KEY_VAR`].
    pub admin_key: Option<super::model::Secret>,
    /// [`KEY_VAR`].
    pub key: Option<super::model::Secret>,
}

/// A variable of ours with a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// Not `IP:PORT`.
    #[error(
        "{var}: not a valid socket address{shown}; expected IP:PORT such as 127.0.0.1:8080 or [::1]:8080 (host names are not resolved)",
        shown = shown(value)
    )]
    SocketAddress {
        /// The variable.
        var: &'static str,
        /// Its value, as set.
        value: String,
    },
    /// Too short to be a key.
    #[error(
        "{var}: an admin key must have at least {min} characters, this one has {len}; make one with `openssl rand -hex 32`"
    )]
    ShortKey {
        var: &'static str,
        min: usize,
        len: usize,
    },
}

impl EnvSettings {
    /// Read and check every variable of ours in `env`.
    ///
    /// # Errors
    /// A malformed [`BIND_VAR`]. `OTEL_*` values are forgiving, as the OpenTelemetry
    /// specification asks: a bad timeout keeps the default, an unsupported protocol is used as
    /// `http/protobuf` (and the exporter says so).
    pub fn from_env(env: &Environment) -> Result<Self, EnvError> {
        let bind = match env.value(BIND_VAR) {
            None => None,
            Some(value) => Some(value.parse().map_err(|_| EnvError::SocketAddress {
                var: BIND_VAR,
                value,
            })?),
        };
        let admin_key = match env.value(ADMIN_KEY_VAR) {
            None => None,
            Some(key) if key.chars().count() < MIN_ADMIN_KEY_CHARS => {
                return Err(EnvError::ShortKey {
                    var: ADMIN_KEY_VAR,
                    min: MIN_ADMIN_KEY_CHARS,
                    len: key.chars().count(),
                });
            }
            Some(key) => Some(super::model::Secret::new(key)),
        };
        Ok(Self {
            config_file: env.value(CONFIG_VAR).map(PathBuf::from),
            admin_key,
            key: env
                .value(KEY_VAR)
                .filter(|key| !key.is_empty())
                .map(super::model::Secret::new),
            bind,
            data_dir: env.value(DATA_DIR_VAR).map(PathBuf::from),
            web_dir: env.value(WEB_DIR_VAR).map(PathBuf::from),
            telemetry: telemetry(env),
        })
    }
}

/// The exporter the `OTEL_*` variables ask for, if any.
fn telemetry(env: &Environment) -> Option<TelemetryConfig> {
    if env
        .value(DISABLED_VAR)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return None;
    }
    let mut config = match (env.value(TRACES_ENDPOINT_VAR), env.value(ENDPOINT_VAR)) {
        (Some(traces), _) => TelemetryConfig {
            traces_endpoint: traces,
            ..TelemetryConfig::new("")
        },
        (None, Some(base)) => TelemetryConfig::new(&base),
        (None, None) => return None,
    };
    if let Some(name) = env.value(SERVICE_NAME_VAR) {
        config.service_name = name;
    }
    if let Some(ms) = env.value(TIMEOUT_VAR).and_then(|v| v.parse::<u64>().ok()) {
        config.timeout = Duration::from_millis(ms);
    }
    config.unsupported_protocol = env.value(PROTOCOL_VAR).filter(|p| p != "http/protobuf");
    Some(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        Environment::capture(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[track_caller]
    fn settings(pairs: &[(&str, &str)]) -> EnvSettings {
        EnvSettings::from_env(&env(pairs)).expect("valid environment")
    }

    #[test]
    fn nothing_set_means_nothing_overridden() {
        assert_eq!(settings(&[]), EnvSettings::default());
        let blank = [
            (BIND_VAR, " "),
            (CONFIG_VAR, ""),
            (DATA_DIR_VAR, ""),
            (WEB_DIR_VAR, "  "),
        ];
        assert_eq!(settings(&blank), EnvSettings::default());
    }

    #[test]
    fn our_variables_are_read() {
        let read = settings(&[
            (BIND_VAR, "[::1]:9000"),
            (CONFIG_VAR, "elsewhere.yaml"),
            (DATA_DIR_VAR, "/var/lib/sb"),
            (WEB_DIR_VAR, "web"),
        ]);
        assert_eq!(read.bind, Some("[::1]:9000".parse().unwrap()));
        assert_eq!(read.config_file, Some(PathBuf::from("elsewhere.yaml")));
        assert_eq!(read.data_dir, Some(PathBuf::from("/var/lib/sb")));
        assert_eq!(read.web_dir, Some(PathBuf::from("web")));
    }

    #[test]
    fn a_malformed_bind_address_names_the_variable_and_the_value() {
        for value in ["not-an-address", "localhost:8080", "127.0.0.1"] {
            let error = EnvSettings::from_env(&env(&[(BIND_VAR, value)])).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "SWITCHBOARD_BIND: not a valid socket address `{value}`; expected IP:PORT such as 127.0.0.1:8080 or [::1]:8080 (host names are not resolved)"
                )
            );
        }
    }

    #[test]
    fn export_is_off_without_an_endpoint() {
        assert_eq!(settings(&[]).telemetry, None);
        assert_eq!(settings(&[(ENDPOINT_VAR, " ")]).telemetry, None);
        assert_eq!(
            settings(&[(ENDPOINT_VAR, "http://c:4318"), (DISABLED_VAR, "true")]).telemetry,
            None
        );
    }

    #[test]
    fn endpoints_service_name_and_timeout_come_from_the_environment() {
        let config = settings(&[(ENDPOINT_VAR, "http://c:4318/")])
            .telemetry
            .expect("on");
        assert_eq!(config.traces_endpoint, "http://c:4318/v1/traces");
        assert_eq!(config.service_name, "switchboard");
        assert_eq!(config.unsupported_protocol, None);
        let config = settings(&[
            (ENDPOINT_VAR, "http://c:4318"),
            (TRACES_ENDPOINT_VAR, "http://t:1/custom"),
            (SERVICE_NAME_VAR, "sb-prod"),
            (TIMEOUT_VAR, "2500"),
            (PROTOCOL_VAR, "grpc"),
        ])
        .telemetry
        .expect("on");
        assert_eq!(config.traces_endpoint, "http://t:1/custom");
        assert_eq!(config.service_name, "sb-prod");
        assert_eq!(config.timeout, Duration::from_millis(2500));
        assert_eq!(config.unsupported_protocol.as_deref(), Some("grpc"));
    }

    #[test]
    fn a_bad_export_timeout_keeps_the_default() {
        let config = settings(&[(ENDPOINT_VAR, "http://c:4318"), (TIMEOUT_VAR, "soon")])
            .telemetry
            .expect("on");
        assert_eq!(config.timeout, Duration::from_secs(10));
    }
}
