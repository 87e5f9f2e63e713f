//! Typed configuration, parsed once at start-up from the environment.
//!
//! Every error names the variable at fault. Secrets are wrapped so that the
//! `Debug` output of [`Config`] can be logged as is.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::secret::{DatabaseUrl, Secret};
use crate::task::OwnerId;

/// Which process is reading the configuration: it decides which of
/// `DATABASE_URL` and `POSTGRES_DSN` wins when both are set (the guide gives
/// the web `DATABASE_URL` and the worker `POSTGRES_DSN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The public web API.
    Web,
    /// The worker.
    Worker,
    /// Web and worker in one process (`serve`).
    Serve,
    /// The migration command.
    Migrate,
}

/// The task backend (`TASK_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Phase 5: one worker runs tasks in its own process.
    InProcess,
    /// Phase 6: Azure Queue Storage, any number of workers.
    AzureQueue,
}

impl BackendKind {
    /// The configuration and metrics label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::InProcess => "in-process",
            BackendKind::AzureQueue => "azure-queue",
        }
    }
}

/// `AUTH_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every request acts as `DEFAULT_OWNER_USER_ID`.
    None,
    /// Bearer tokens (Entra ID JWTs).
    Jwt,
}

/// `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (production).
    Json,
}

/// Where tasks are stored.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// PostgreSQL at this URL.
    Postgres(DatabaseUrl),
    /// The embedded SQLite file.
    Embedded(PathBuf),
}

/// Connection pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// `DB_POOL_MAX_CONNECTIONS` (default 10, the guide's budget per process).
    pub max_connections: u32,
    /// `DB_POOL_MIN_CONNECTIONS` (default 1): kept warm.
    pub min_connections: u32,
    /// `DB_ACQUIRE_TIMEOUT_MS` (default 3000): after this a request gets 503.
    pub acquire_timeout: Duration,
}

/// Worker runtime settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `WORKER_CONCURRENCY` (default 32): tasks run at once.
    pub concurrency: usize,
    /// `WORKER_QUEUE_CAPACITY` (default 10000): bound of the in-process queue.
    pub queue_capacity: usize,
    /// `TASK_LEASE_SECS` (default 30): how long a claim holds without heartbeat.
    pub lease: Duration,
    /// `TASK_HEARTBEAT_SECS` (default 10): lease extension interval.
    pub heartbeat: Duration,
    /// `CANCEL_POLL_MS` (default 250): how often running tasks are checked
    /// for a cancellation request.
    pub cancel_poll: Duration,
    /// `SWEEP_INTERVAL_SECS` (default 5): recovery sweeper period.
    pub sweep_interval: Duration,
    /// `REDISPATCH_AFTER_SECS` (default 15): a due queued task not picked up
    /// for this long is dispatched again.
    pub redispatch_after: Duration,
    /// `SHUTDOWN_GRACE_SECS` (default 25): drain time on SIGTERM.
    pub shutdown_grace: Duration,
    /// `RETRY_BACKOFF_BASE_MS` (default 1000).
    pub retry_base: Duration,
    /// `RETRY_BACKOFF_MAX_MS` (default 300000).
    pub retry_max: Duration,
    /// `LOCK_RETRY_MS` (default 2000): how often a standby in-process
    /// worker tries the single-replica lock, and the holder checks it.
    pub lock_retry: Duration,
    /// `RESUME_AGENT_TEST_PROBE` (tests only): a file where every attempt's
    /// start and end are appended, for fault-injection tests.
    pub test_probe: Option<PathBuf>,
}

/// Web settings.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `MAX_BODY_BYTES` (default 262144): JSON request body limit.
    pub max_body_bytes: usize,
    /// `REQUEST_TIMEOUT_SECS` (default 30).
    pub request_timeout: Duration,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which process this is.
    pub role: Role,
    /// Task store.
    pub database: DatabaseConfig,
    /// Pool.
    pub pool: PoolConfig,
    /// `DATA_DIR` (default `./data`).
    pub data_dir: PathBuf,
    /// `WEB_ADDR` (default `0.0.0.0:3000`).
    pub web_addr: SocketAddr,
    /// `WORKER_ADDR` (default `0.0.0.0:8000`).
    pub worker_addr: SocketAddr,
    /// `WORKER_BASE_URL` (default `http://127.0.0.1:8000`).
    pub worker_base_url: String,
    /// `WORKER_API_TOKEN` (optional).
    pub worker_api_token: Option<Secret>,
    /// `TASK_BACKEND` (default `in-process`).
    pub task_backend: BackendKind,
    /// `DEFAULT_OWNER_USER_ID` (default `dev-user-1`).
    pub default_owner: OwnerId,
    /// `AUTH_MODE` (default `none`).
    pub auth_mode: AuthMode,
    /// `LOG_FORMAT` (default `text`).
    pub log_format: LogFormat,
    /// Worker runtime.
    pub worker: WorkerConfig,
    /// Web.
    pub web: WebConfig,
}

/// A configuration error, naming the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse.
    #[error("{var}: invalid value {value:?}: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What it held (never a secret: secrets are not echoed).
        value: String,
        /// Why it is wrong.
        reason: String,
    },
}

/// Reads variables from somewhere (the process environment, or a map in tests).
pub trait Source {
    /// The value of `var`, if set and non-empty.
    fn get(&self, var: &str) -> Option<String>;
}

/// The process environment.
pub struct Env;

impl Source for Env {
    fn get(&self, var: &str) -> Option<String> {
        std::env::var(var).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, var: &str) -> Option<String> {
        HashMap::get(self, var)
            .cloned()
            .filter(|v| !v.trim().is_empty())
    }
}

fn invalid(var: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn parsed<T: FromStr>(
    src: &dyn Source,
    var: &'static str,
    default: T,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match src.get(var) {
        None => Ok(default),
        Some(raw) => {
            let v = raw
                .trim()
                .parse::<T>()
                .map_err(|e| invalid(var, &raw, e.to_string()))?;
            check(&v).map_err(|reason| invalid(var, &raw, reason))?;
            Ok(v)
        }
    }
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    lo: T,
    hi: T,
) -> impl Fn(&T) -> Result<(), String> {
    move |v| {
        if *v < lo || *v > hi {
            Err(format!("must be between {lo} and {hi}"))
        } else {
            Ok(())
        }
    }
}

fn millis(
    src: &dyn Source,
    var: &'static str,
    default: u64,
    lo: u64,
    hi: u64,
) -> Result<Duration, ConfigError> {
    parsed(src, var, default, range(lo, hi)).map(Duration::from_millis)
}

fn secs(
    src: &dyn Source,
    var: &'static str,
    default: u64,
    lo: u64,
    hi: u64,
) -> Result<Duration, ConfigError> {
    parsed(src, var, default, range(lo, hi)).map(Duration::from_secs)
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// The first variable that does not parse.
    pub fn from_env(role: Role) -> Result<Self, ConfigError> {
        Self::from_source(role, &Env)
    }

    /// Reads any [`Source`] (tests pass a map).
    ///
    /// # Errors
    /// The first variable that does not parse.
    pub fn from_source(role: Role, src: &dyn Source) -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(src.get("DATA_DIR").unwrap_or_else(|| "./data".into()));

        let (first, second) = match role {
            Role::Worker => ("POSTGRES_DSN", "DATABASE_URL"),
            _ => ("DATABASE_URL", "POSTGRES_DSN"),
        };
        let db_var = if src.get(first).is_some() {
            first
        } else {
            second
        };
        let database = match src.get(db_var) {
            None => DatabaseConfig::Embedded(data_dir.join("resume-agent.db")),
            Some(url) => {
                let url = url.trim().to_owned();
                if let Some(path) = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                {
                    DatabaseConfig::Embedded(PathBuf::from(path))
                } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    DatabaseConfig::Postgres(DatabaseUrl::new(url))
                } else {
                    let shown = DatabaseUrl::new(url).redacted();
                    return Err(invalid(
                        if db_var == "DATABASE_URL" {
                            "DATABASE_URL"
                        } else {
                            "POSTGRES_DSN"
                        },
                        &shown,
                        "expected postgres://… (or sqlite:path for the embedded store)",
                    ));
                }
            }
        };

        let pool = PoolConfig {
            max_connections: parsed(src, "DB_POOL_MAX_CONNECTIONS", 10, range(1, 1000))?,
            min_connections: parsed(src, "DB_POOL_MIN_CONNECTIONS", 1, range(0, 1000))?,
            acquire_timeout: millis(src, "DB_ACQUIRE_TIMEOUT_MS", 3000, 10, 600_000)?,
        };
        if pool.min_connections > pool.max_connections {
            return Err(invalid(
                "DB_POOL_MIN_CONNECTIONS",
                &pool.min_connections.to_string(),
                "must not exceed DB_POOL_MAX_CONNECTIONS",
            ));
        }

        let addr = |var: &'static str, default: &str| -> Result<SocketAddr, ConfigError> {
            let raw = src.get(var).unwrap_or_else(|| default.to_owned());
            raw.trim()
                .parse()
                .map_err(|e: std::net::AddrParseError| invalid(var, &raw, e.to_string()))
        };
        let web_addr = addr("WEB_ADDR", "0.0.0.0:3000")?;
        let worker_addr = addr("WORKER_ADDR", "0.0.0.0:8000")?;

        let worker_base_url = src
            .get("WORKER_BASE_URL")
            .unwrap_or_else(|| "http://127.0.0.1:8000".into())
            .trim()
            .trim_end_matches('/')
            .to_owned();
        if !(worker_base_url.starts_with("http://") || worker_base_url.starts_with("https://")) {
            return Err(invalid(
                "WORKER_BASE_URL",
                &worker_base_url,
                "expected an http:// or https:// URL, e.g. http://worker-service:8000",
            ));
        }

        let task_backend = match src.get("TASK_BACKEND").as_deref().map(str::trim) {
            None | Some("in-process") => BackendKind::InProcess,
            Some("azure-queue") => BackendKind::AzureQueue,
            Some(other) => {
                return Err(invalid(
                    "TASK_BACKEND",
                    other,
                    "expected in-process or azure-queue",
                ));
            }
        };
        let auth_mode = match src.get("AUTH_MODE").as_deref().map(str::trim) {
            None | Some("none") => AuthMode::None,
            Some("jwt") => AuthMode::Jwt,
            Some(other) => return Err(invalid("AUTH_MODE", other, "expected none or jwt")),
        };
        let log_format = match src.get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(invalid("LOG_FORMAT", other, "expected text or json")),
        };
        let owner_raw = src
            .get("DEFAULT_OWNER_USER_ID")
            .unwrap_or_else(|| "dev-user-1".into());
        let default_owner = OwnerId::parse(owner_raw.trim())
            .map_err(|e| invalid("DEFAULT_OWNER_USER_ID", &owner_raw, e.0))?;

        let worker = WorkerConfig {
            concurrency: parsed(src, "WORKER_CONCURRENCY", 32, range(1, 10_000))?,
            queue_capacity: parsed(src, "WORKER_QUEUE_CAPACITY", 10_000, range(1, 10_000_000))?,
            lease: secs(src, "TASK_LEASE_SECS", 30, 2, 3600)?,
            heartbeat: secs(src, "TASK_HEARTBEAT_SECS", 10, 1, 3600)?,
            cancel_poll: millis(src, "CANCEL_POLL_MS", 250, 10, 60_000)?,
            sweep_interval: secs(src, "SWEEP_INTERVAL_SECS", 5, 1, 3600)?,
            redispatch_after: secs(src, "REDISPATCH_AFTER_SECS", 15, 1, 86_400)?,
            shutdown_grace: secs(src, "SHUTDOWN_GRACE_SECS", 25, 0, 3600)?,
            retry_base: millis(src, "RETRY_BACKOFF_BASE_MS", 1000, 1, 3_600_000)?,
            retry_max: millis(src, "RETRY_BACKOFF_MAX_MS", 300_000, 1, 86_400_000)?,
            lock_retry: millis(src, "LOCK_RETRY_MS", 2000, 50, 600_000)?,
            test_probe: src.get("RESUME_AGENT_TEST_PROBE").map(PathBuf::from),
        };
        if worker.heartbeat >= worker.lease {
            return Err(invalid(
                "TASK_HEARTBEAT_SECS",
                &worker.heartbeat.as_secs().to_string(),
                "must be shorter than TASK_LEASE_SECS",
            ));
        }

        let web = WebConfig {
            max_body_bytes: parsed(
                src,
                "MAX_BODY_BYTES",
                256 * 1024,
                range(1024, 64 * 1024 * 1024),
            )?,
            request_timeout: secs(src, "REQUEST_TIMEOUT_SECS", 30, 1, 3600)?,
        };

        Ok(Self {
            role,
            database,
            pool,
            data_dir,
            web_addr,
            worker_addr,
            worker_base_url,
            worker_api_token: src.get("WORKER_API_TOKEN").map(Secret::new),
            task_backend,
            default_owner,
            auth_mode,
            log_format,
            worker,
            web,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(role: Role, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_source(role, &map)
    }

    #[test]
    fn defaults_need_nothing() {
        let c = cfg(Role::Serve, &[]).unwrap();
        assert!(matches!(c.database, DatabaseConfig::Embedded(_)));
        assert_eq!(c.web_addr.port(), 3000);
        assert_eq!(c.worker_addr.port(), 8000);
        assert_eq!(c.task_backend, BackendKind::InProcess);
        assert_eq!(c.default_owner.as_str(), "dev-user-1");
        assert_eq!(c.pool.max_connections, 10);
    }

    #[test]
    fn errors_name_the_variable() {
        let e = cfg(Role::Worker, &[("WORKER_CONCURRENCY", "lots")]).unwrap_err();
        assert!(e.to_string().starts_with("WORKER_CONCURRENCY:"), "{e}");
        let e = cfg(Role::Web, &[("TASK_BACKEND", "kafka")]).unwrap_err();
        assert!(e.to_string().starts_with("TASK_BACKEND:"), "{e}");
        let e = cfg(Role::Web, &[("WEB_ADDR", "nowhere")]).unwrap_err();
        assert!(e.to_string().starts_with("WEB_ADDR:"), "{e}");
    }

    #[test]
    fn worker_prefers_postgres_dsn_and_never_prints_passwords() {
        let c = cfg(
            Role::Worker,
            &[
                ("DATABASE_URL", "postgres://a:pw1@web/db"),
                ("POSTGRES_DSN", "postgres://b:pw2@worker/db"),
            ],
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("worker"), "{shown}");
        assert!(!shown.contains("pw1") && !shown.contains("pw2"), "{shown}");
        let e = cfg(Role::Web, &[("DATABASE_URL", "mysql://u:hunter2@x/db")]).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let c = cfg(Role::Web, &[("WORKER_API_TOKEN", "tok-123")]).unwrap();
        assert!(!format!("{c:?}").contains("tok-123"));
    }
}
