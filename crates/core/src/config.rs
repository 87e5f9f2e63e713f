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
    /// Any number of workers claiming from PostgreSQL, woken by LISTEN/NOTIFY.
    Postgres,
}

impl BackendKind {
    /// The configuration and metrics label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::InProcess => "in-process",
            BackendKind::AzureQueue => "azure-queue",
            BackendKind::Postgres => "postgres",
        }
    }
}

/// Where file bytes live (`BLOB_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobStoreKind {
    /// A folder, `DATA_DIR/blobs`.
    Local,
    /// Azure Blob Storage, container `AZURE_STORAGE_CONTAINER_NAME`.
    Azure,
}

/// The storage account shared by the Azure queue and blob store.
#[derive(Debug, Clone)]
pub struct AzureStorageConfig {
    /// `AZURE_STORAGE_CONNECTION_STRING`: wins over the account name (the
    /// emulator, or an account key). Never printed.
    pub connection_string: Option<Secret>,
    /// `AZURE_STORAGE_ACCOUNT_NAME`: with Entra ID (workload or managed identity).
    pub account_name: Option<String>,
    /// True when `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID` and
    /// `AZURE_TENANT_ID` are all set (AKS workload identity); else managed identity.
    pub workload_identity: bool,
    /// `AZURE_CLIENT_ID` (a user-assigned managed identity when not workload identity).
    pub client_id: Option<String>,
    /// `AZURE_STORAGE_CONTAINER_NAME` (default `resume-files`).
    pub container_name: String,
    /// `AZURE_STORAGE_QUEUE_NAME` (default `resume-agent-tasks`); the poison
    /// queue is `<queue>-poison`.
    pub queue_name: String,
    /// `AZURE_STORAGE_TIMEOUT_MS` (default 10000): bound of one storage call.
    pub request_timeout: Duration,
}

impl Default for AzureStorageConfig {
    fn default() -> Self {
        Self {
            connection_string: None,
            account_name: None,
            workload_identity: false,
            client_id: None,
            container_name: "resume-files".into(),
            queue_name: "resume-agent-tasks".into(),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl AzureStorageConfig {
    /// True when an account is configured (connection string or name).
    #[must_use]
    pub fn is_configured(&self) -> bool {
        self.connection_string.is_some() || self.account_name.is_some()
    }
}

/// The Azure Queue backend's knobs (`AZURE_QUEUE_*`).
#[derive(Debug, Clone)]
pub struct AzureQueueConfig {
    /// `AZURE_QUEUE_BATCH_SIZE` (default 32, at most 32): messages asked for
    /// per receive, further bounded by the worker's free slots.
    pub batch_size: u32,
    /// `AZURE_QUEUE_POLL_MIN_MS` (default 100): pause after the first empty
    /// receive; doubles (with jitter) on every further empty receive.
    pub poll_min: Duration,
    /// `AZURE_QUEUE_POLL_MAX_MS` (default 5000): ceiling of the empty-queue
    /// polling pause (the worst added latency on an idle queue).
    pub poll_max: Duration,
    /// `AZURE_QUEUE_MESSAGE_TTL_SECS` (default -1 = never expires; else
    /// 1..=604800): time-to-live of task and poison messages.
    pub message_ttl_secs: i32,
    /// `AZURE_QUEUE_SEND_CONCURRENCY` (default 16): parallel sends of one enqueue.
    pub send_concurrency: usize,
}

impl Default for AzureQueueConfig {
    fn default() -> Self {
        Self {
            batch_size: 32,
            poll_min: Duration::from_millis(100),
            poll_max: Duration::from_secs(5),
            message_ttl_secs: -1,
            send_concurrency: 16,
        }
    }
}

/// `REDISPATCH_AFTER_SECS` default: with `TASK_BACKEND=azure-queue`, a queued
/// task handed to the queue whose message has not been received this long is
/// claimed straight from the store (the message was lost, or waits behind a
/// backlog; a late message for it is then dropped as a duplicate). Tasks
/// handed to another backend (a flip) are claimed at once. Store-backed
/// backends (in-process, postgres) claim every due task and do not use it.
pub const REDISPATCH_AFTER_SECS: u64 = 30;

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
    /// `INTAKE_POLL_MS` (default 2000): how long an idle worker waits for a
    /// wake-up (the web's hand-off, a NOTIFY) before it looks in the store
    /// anyway: the most a lost hand-off can delay a task.
    pub intake_poll: Duration,
    /// `OWNER_MAX_RUNNING` (default unlimited): running attempts one owner
    /// may hold at once (per store, across every worker).
    pub owner_max_running: Option<u32>,
    /// `TASK_RESULT_MAX_BYTES` (default 1048576): a handler result larger
    /// than this (as JSON) fails the attempt instead of being stored.
    pub result_max_bytes: usize,
    /// `TASK_LEASE_SECS` (default 30): how long a claim holds without heartbeat.
    pub lease: Duration,
    /// `TASK_HEARTBEAT_SECS` (default 10): lease extension interval.
    pub heartbeat: Duration,
    /// `CANCEL_POLL_MS` (default 250): how often running tasks are checked
    /// for a cancellation request.
    pub cancel_poll: Duration,
    /// `SWEEP_INTERVAL_SECS` (default 5): recovery sweeper period.
    pub sweep_interval: Duration,
    /// `REDISPATCH_AFTER_SECS` (default 30; `azure-queue` only): see
    /// [`REDISPATCH_AFTER_SECS`].
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
    /// `TASK_RETENTION_DAYS` (default 30; 0 keeps tasks forever): finished
    /// tasks older than this are deleted by the sweeper.
    pub retention: Option<Duration>,
    /// `RESUME_AGENT_TEST_PROBE` (tests only): a file where every attempt's
    /// start and end are appended, for fault-injection tests.
    pub test_probe: Option<PathBuf>,
}

/// Web settings.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `MAX_BODY_BYTES` (default 1048576): JSON request body limit.
    pub max_body_bytes: usize,
    /// `REQUEST_TIMEOUT_SECS` (default 30).
    pub request_timeout: Duration,
}

/// How the worker runs the résumé parser (in a child process) and bounds
/// task results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseConfig {
    /// `PARSE_MAX_MEMORY_MB` (default 384): address-space limit of each
    /// parse child. With the default concurrency two children and the
    /// worker itself fit the worker pod's 1 GiB.
    pub max_memory_mb: u64,
    /// `PARSE_MAX_CONCURRENCY` (default 2): parse children alive at once
    /// (further parses wait for a slot).
    pub max_concurrency: usize,
    /// `PARSE_MAX_CPU_SECS` (default 60): CPU-time limit of each parse child
    /// (its wall clock is the attempt's timeout).
    pub max_cpu_secs: u64,
    /// `TASK_RESULT_MAX_BYTES` (default 1048576): largest result a résumé
    /// handler returns (it shortens the result to fit).
    pub result_max_bytes: usize,
}

impl ParseConfig {
    fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            max_memory_mb: parsed(src, "PARSE_MAX_MEMORY_MB", 384, range(64, 1 << 20))?,
            max_concurrency: parsed(src, "PARSE_MAX_CONCURRENCY", 2, range(1, 1024))?,
            max_cpu_secs: parsed(src, "PARSE_MAX_CPU_SECS", 60, range(1, 86_400))?,
            result_max_bytes: parsed(
                src,
                "TASK_RESULT_MAX_BYTES",
                1024 * 1024,
                range(4096, 64 * 1024 * 1024),
            )?,
        })
    }
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
    /// `BLOB_STORE` (`local` | `azure`; default `azure` when an Azure
    /// storage account is configured, else `local`).
    pub blob_store: BlobStoreKind,
    /// The Azure storage account (queue backend and blob store).
    pub azure: AzureStorageConfig,
    /// The Azure Queue backend.
    pub azure_queue: AzureQueueConfig,
    /// The résumé parser's child process and result bound.
    pub parse: ParseConfig,
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
            Some("postgres") => BackendKind::Postgres,
            Some(other) => {
                return Err(invalid(
                    "TASK_BACKEND",
                    other,
                    "expected in-process, postgres or azure-queue",
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
            intake_poll: millis(src, "INTAKE_POLL_MS", 2000, 10, 600_000)?,
            owner_max_running: match parsed(src, "OWNER_MAX_RUNNING", 0u32, range(0, 1_000_000))? {
                0 => None,
                n => Some(n),
            },
            result_max_bytes: parsed(
                src,
                "TASK_RESULT_MAX_BYTES",
                1024 * 1024,
                range(1024, 64 * 1024 * 1024),
            )?,
            lease: secs(src, "TASK_LEASE_SECS", 30, 2, 3600)?,
            heartbeat: secs(src, "TASK_HEARTBEAT_SECS", 10, 1, 3600)?,
            cancel_poll: millis(src, "CANCEL_POLL_MS", 250, 10, 60_000)?,
            sweep_interval: secs(src, "SWEEP_INTERVAL_SECS", 5, 1, 3600)?,
            redispatch_after: secs(
                src,
                "REDISPATCH_AFTER_SECS",
                REDISPATCH_AFTER_SECS,
                1,
                86_400,
            )?,
            shutdown_grace: secs(src, "SHUTDOWN_GRACE_SECS", 25, 0, 3600)?,
            retry_base: millis(src, "RETRY_BACKOFF_BASE_MS", 1000, 1, 3_600_000)?,
            retry_max: millis(src, "RETRY_BACKOFF_MAX_MS", 300_000, 1, 86_400_000)?,
            lock_retry: millis(src, "LOCK_RETRY_MS", 2000, 50, 600_000)?,
            retention: match parsed(src, "TASK_RETENTION_DAYS", 30u64, range(0, 36_500))? {
                0 => None,
                days => Some(Duration::from_secs(days * 86_400)),
            },
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
                1024 * 1024,
                range(1024, 64 * 1024 * 1024),
            )?,
            request_timeout: secs(src, "REQUEST_TIMEOUT_SECS", 30, 1, 3600)?,
        };

        let azure = azure_storage(src)?;
        let blob_store = match src.get("BLOB_STORE").as_deref().map(str::trim) {
            None if azure.is_configured() => BlobStoreKind::Azure,
            None | Some("local") => BlobStoreKind::Local,
            Some("azure") => BlobStoreKind::Azure,
            Some(other) => return Err(invalid("BLOB_STORE", other, "expected local or azure")),
        };
        let needs_account = blob_store == BlobStoreKind::Azure
            || (task_backend == BackendKind::AzureQueue && role != Role::Migrate);
        if needs_account && !azure.is_configured() {
            let var = if blob_store == BlobStoreKind::Azure {
                "BLOB_STORE"
            } else {
                "TASK_BACKEND"
            };
            return Err(invalid(
                var,
                if blob_store == BlobStoreKind::Azure {
                    "azure"
                } else {
                    "azure-queue"
                },
                "needs AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_NAME",
            ));
        }
        let azure_queue = AzureQueueConfig {
            batch_size: parsed(src, "AZURE_QUEUE_BATCH_SIZE", 32, range(1, 32))?,
            poll_min: millis(src, "AZURE_QUEUE_POLL_MIN_MS", 100, 10, 600_000)?,
            poll_max: millis(src, "AZURE_QUEUE_POLL_MAX_MS", 5000, 10, 600_000)?,
            message_ttl_secs: parsed(src, "AZURE_QUEUE_MESSAGE_TTL_SECS", -1, |v: &i32| {
                if *v == -1 || (1..=604_800).contains(v) {
                    Ok(())
                } else {
                    Err("must be -1 (never expires) or between 1 and 604800".into())
                }
            })?,
            send_concurrency: parsed(src, "AZURE_QUEUE_SEND_CONCURRENCY", 16, range(1, 256))?,
        };
        // The in-process worker's internal endpoint wakes the worker: open to
        // the network without a token, anyone could make it poll the store.
        let worker_api_token = src.get("WORKER_API_TOKEN").map(Secret::new);
        let allow_open = match src
            .get("WORKER_API_ALLOW_UNAUTHENTICATED")
            .as_deref()
            .map(str::trim)
        {
            None | Some("" | "false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => {
                return Err(invalid(
                    "WORKER_API_ALLOW_UNAUTHENTICATED",
                    other,
                    "expected true or false",
                ));
            }
        };
        if role == Role::Worker
            && task_backend == BackendKind::InProcess
            && worker_api_token.is_none()
            && !worker_addr.ip().is_loopback()
            && !allow_open
        {
            return Err(invalid(
                "WORKER_API_TOKEN",
                "(unset)",
                "the in-process worker's internal endpoint would listen on a non-loopback WORKER_ADDR without a token: set WORKER_API_TOKEN (and the same on the web), listen on 127.0.0.1, or set WORKER_API_ALLOW_UNAUTHENTICATED=true",
            ));
        }
        if task_backend == BackendKind::Postgres && !matches!(database, DatabaseConfig::Postgres(_))
        {
            return Err(invalid(
                "TASK_BACKEND",
                "postgres",
                "needs a PostgreSQL database: set DATABASE_URL (web) / POSTGRES_DSN (worker) to postgres://…",
            ));
        }
        if azure_queue.poll_min > azure_queue.poll_max {
            return Err(invalid(
                "AZURE_QUEUE_POLL_MIN_MS",
                &azure_queue.poll_min.as_millis().to_string(),
                "must not exceed AZURE_QUEUE_POLL_MAX_MS",
            ));
        }

        Ok(Self {
            role,
            database,
            pool,
            data_dir,
            web_addr,
            worker_addr,
            worker_base_url,
            worker_api_token,
            task_backend,
            default_owner,
            auth_mode,
            log_format,
            worker,
            web,
            blob_store,
            azure,
            azure_queue,
            parse: ParseConfig::from_source(src)?,
        })
    }
}

/// Azure resource names: lowercase letters, digits and single dashes,
/// starting and ending with a letter or digit, 3..=`max` long.
fn valid_azure_name(name: &str, max: usize) -> bool {
    let b = name.as_bytes();
    (3..=max).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !name.contains("--")
}

fn azure_storage(src: &dyn Source) -> Result<AzureStorageConfig, ConfigError> {
    let d = AzureStorageConfig::default();
    let queue_name = src
        .get("AZURE_STORAGE_QUEUE_NAME")
        .map_or(d.queue_name, |s| s.trim().to_owned());
    // The poison queue `<queue>-poison` must fit Azure's 63 characters too.
    if !valid_azure_name(&queue_name, 56) {
        return Err(invalid(
            "AZURE_STORAGE_QUEUE_NAME",
            &queue_name,
            "expected 3-56 lowercase letters, digits and single dashes (the poison queue adds -poison)",
        ));
    }
    let container_name = src
        .get("AZURE_STORAGE_CONTAINER_NAME")
        .map_or(d.container_name, |s| s.trim().to_owned());
    if !valid_azure_name(&container_name, 63) {
        return Err(invalid(
            "AZURE_STORAGE_CONTAINER_NAME",
            &container_name,
            "expected 3-63 lowercase letters, digits and single dashes",
        ));
    }
    let client_id = src.get("AZURE_CLIENT_ID").map(|s| s.trim().to_owned());
    let workload_identity = src.get("AZURE_FEDERATED_TOKEN_FILE").is_some()
        && client_id.is_some()
        && src.get("AZURE_TENANT_ID").is_some();
    Ok(AzureStorageConfig {
        connection_string: src
            .get("AZURE_STORAGE_CONNECTION_STRING")
            .map(|s| Secret::new(s.trim())),
        account_name: src
            .get("AZURE_STORAGE_ACCOUNT_NAME")
            .map(|s| s.trim().to_owned()),
        workload_identity,
        client_id,
        container_name,
        queue_name,
        request_timeout: millis(src, "AZURE_STORAGE_TIMEOUT_MS", 10_000, 100, 600_000)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(role: Role, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_source(role, &map)
    }

    /// As `raw`, with the worker token set (most cases are not about it).
    fn cfg(role: Role, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut all = vec![("WORKER_API_TOKEN", "test-token")];
        all.extend_from_slice(vars);
        raw(role, &all)
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
        let c = raw(Role::Web, &[("WORKER_API_TOKEN", "tok-123")]).unwrap();
        assert!(!format!("{c:?}").contains("tok-123"));
    }

    const CS: &str =
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5LXNlY3JldA==";

    #[test]
    fn azure_queue_defaults_and_a_longer_redispatch_bound() {
        let c = cfg(Role::Worker, &[]).unwrap();
        assert_eq!(c.worker.redispatch_after, Duration::from_secs(30));
        assert_eq!(c.worker.intake_poll, Duration::from_secs(2));
        assert_eq!(c.worker.owner_max_running, None);
        assert_eq!(c.blob_store, BlobStoreKind::Local);
        let c = cfg(
            Role::Worker,
            &[
                ("TASK_BACKEND", "azure-queue"),
                ("AZURE_STORAGE_CONNECTION_STRING", CS),
            ],
        )
        .unwrap();
        assert_eq!(c.worker.redispatch_after, Duration::from_secs(30));
        assert_eq!(c.blob_store, BlobStoreKind::Azure);
        assert_eq!(c.azure.queue_name, "resume-agent-tasks");
        assert_eq!(c.azure.container_name, "resume-files");
        assert_eq!(c.azure_queue.batch_size, 32);
        assert_eq!(c.azure_queue.poll_max, Duration::from_secs(5));
        assert_eq!(c.azure_queue.message_ttl_secs, -1);
        assert!(
            !format!("{c:?}").contains("a2V5LXNlY3JldA"),
            "the key printed"
        );
        let c = cfg(
            Role::Worker,
            &[
                ("TASK_BACKEND", "azure-queue"),
                ("AZURE_STORAGE_CONNECTION_STRING", CS),
                ("REDISPATCH_AFTER_SECS", "20"),
                ("BLOB_STORE", "local"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.worker.redispatch_after,
            Duration::from_secs(20),
            "explicit wins"
        );
        assert_eq!(c.blob_store, BlobStoreKind::Local);
    }

    #[test]
    fn an_open_internal_endpoint_is_refused_unless_asked_for() {
        let e = raw(Role::Worker, &[]).unwrap_err();
        assert!(e.to_string().starts_with("WORKER_API_TOKEN:"), "{e}");
        for ok in [
            vec![("WORKER_API_TOKEN", "t")],
            vec![("WORKER_ADDR", "127.0.0.1:8000")],
            vec![("WORKER_API_ALLOW_UNAUTHENTICATED", "true")],
        ] {
            raw(Role::Worker, &ok).unwrap();
        }
        // serve does not mount the endpoint; other backends have none.
        raw(Role::Serve, &[]).unwrap();
        raw(
            Role::Worker,
            &[
                ("TASK_BACKEND", "postgres"),
                ("POSTGRES_DSN", "postgres://db/x"),
            ],
        )
        .unwrap();
    }

    #[test]
    fn the_postgres_backend_needs_a_postgres_database() {
        let e = cfg(Role::Worker, &[("TASK_BACKEND", "postgres")]).unwrap_err();
        assert!(e.to_string().starts_with("TASK_BACKEND:"), "{e}");
        let c = cfg(
            Role::Worker,
            &[
                ("TASK_BACKEND", "postgres"),
                ("POSTGRES_DSN", "postgres://u@db/x"),
                ("OWNER_MAX_RUNNING", "4"),
            ],
        )
        .unwrap();
        assert_eq!(c.task_backend, BackendKind::Postgres);
        assert_eq!(c.worker.owner_max_running, Some(4));
    }

    #[test]
    fn azure_settings_are_checked_and_name_the_variable() {
        let e = cfg(Role::Web, &[("TASK_BACKEND", "azure-queue")]).unwrap_err();
        assert!(e.to_string().starts_with("TASK_BACKEND:"), "{e}");
        let e = cfg(Role::Web, &[("BLOB_STORE", "azure")]).unwrap_err();
        assert!(e.to_string().starts_with("BLOB_STORE:"), "{e}");
        for (var, bad) in [
            ("AZURE_STORAGE_QUEUE_NAME", "Tasks"),
            ("AZURE_STORAGE_QUEUE_NAME", "a--b"),
            ("AZURE_STORAGE_QUEUE_NAME", &"q".repeat(57)),
            ("AZURE_STORAGE_CONTAINER_NAME", "-x-"),
            ("AZURE_QUEUE_BATCH_SIZE", "33"),
            ("AZURE_QUEUE_MESSAGE_TTL_SECS", "0"),
            ("AZURE_QUEUE_POLL_MIN_MS", "9000"),
        ] {
            let e = cfg(Role::Worker, &[(var, bad)]).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("{var}:")),
                "{var}={bad}: {e}"
            );
        }
        let c = cfg(
            Role::Worker,
            &[
                ("AZURE_STORAGE_ACCOUNT_NAME", "acme"),
                ("AZURE_CLIENT_ID", "id"),
                ("AZURE_TENANT_ID", "tenant"),
                ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ],
        )
        .unwrap();
        assert!(c.azure.workload_identity);
        assert_eq!(c.blob_store, BlobStoreKind::Azure);
    }

    #[test]
    fn parse_child_limits_and_result_bound() {
        let c = cfg(Role::Worker, &[]).unwrap();
        assert_eq!(
            c.parse,
            ParseConfig {
                max_memory_mb: 384,
                max_concurrency: 2,
                max_cpu_secs: 60,
                result_max_bytes: 1024 * 1024,
            }
        );
        let c = cfg(
            Role::Worker,
            &[
                ("PARSE_MAX_MEMORY_MB", "256"),
                ("PARSE_MAX_CPU_SECS", "5"),
                ("TASK_RESULT_MAX_BYTES", "65536"),
            ],
        )
        .unwrap();
        assert_eq!(c.parse.max_memory_mb, 256);
        assert_eq!(c.parse.max_cpu_secs, 5);
        assert_eq!(c.parse.result_max_bytes, 65536);
        for (var, bad) in [
            ("PARSE_MAX_MEMORY_MB", "8"),
            ("PARSE_MAX_CPU_SECS", "0"),
            ("PARSE_MAX_CONCURRENCY", "0"),
            ("TASK_RESULT_MAX_BYTES", "100"),
        ] {
            let e = cfg(Role::Worker, &[(var, bad)]).unwrap_err();
            assert!(e.to_string().starts_with(&format!("{var}:")), "{e}");
        }
    }
}
