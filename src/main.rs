//! `resume-agent`: the one binary. It parses the configuration, sets up
//! telemetry and composes the crates into the requested service; everything
//! else lives in the libraries.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use resume_agent_azure::{AzureBlobStore, StorageAccount};
use resume_agent_core::blob::{BlobStore, LocalBlobStore};
use resume_agent_core::config::{BackendKind, BlobStoreKind, Config, DatabaseConfig, Role};
use resume_agent_core::lock::{FileLock, IN_PROCESS_LOCK_KEY, PgAdvisoryLock, SingletonLock};
use resume_agent_core::store::{self, TaskStore};
use resume_agent_queue::TaskBackend;
use resume_agent_queue::azure_queue::AzureQueue;
use resume_agent_queue::in_process::HttpDispatcher;
use resume_agent_queue::postgres::{PgNotifyBackend, pool_for};
use resume_agent_queue::wake::{WakeBackend, Wakeups};
use resume_agent_web::{WebApp, WebSettings};
use resume_agent_worker::{Intake, Registry, Runtime, Worker};
use tokio_util::sync::CancellationToken;

const ENV_HELP: &str = "\
Configuration comes from the environment (see the README for every knob):
  DATABASE_URL / POSTGRES_DSN  PostgreSQL URL; unset = embedded SQLite in DATA_DIR
  DATA_DIR                     embedded database and local blob folder [./data]
  WEB_ADDR                     web listen address [0.0.0.0:3000]
  WORKER_ADDR                  worker listen address [0.0.0.0:8000]
  WORKER_BASE_URL              where the web reaches the worker [http://127.0.0.1:8000]
  WORKER_API_TOKEN             shared secret for the worker's internal endpoint
  WORKER_CONCURRENCY           tasks run at once by a worker [32]
  TASK_BACKEND                 in-process | postgres | azure-queue [in-process]
  INTAKE_POLL_MS               an idle worker looks in the store at least this often [2000]
  OWNER_MAX_RUNNING            running attempts one owner may hold at once [unlimited]
  AZURE_STORAGE_CONNECTION_STRING  account key / emulator (wins); else
  AZURE_STORAGE_ACCOUNT_NAME   with workload or managed identity
  AZURE_STORAGE_QUEUE_NAME     queue for azure-queue [resume-agent-tasks]
  AZURE_STORAGE_CONTAINER_NAME blob container [resume-files]
  BLOB_STORE                   local | azure [azure when an account is set]
  DEFAULT_OWNER_USER_ID        owner of every request without auth [dev-user-1]
  LOG_FORMAT                   text | json [text];  RUST_LOG  log filter [info]

Try it:  resume-agent serve   then
  curl -s -XPOST localhost:3000/api/tasks -H 'content-type: application/json' -d '{\"kind\":\"system.noop\"}'";

/// Resume Agent: a task platform. The web API accepts tasks, the worker runs
/// them, PostgreSQL (or an embedded SQLite file) keeps every task.
#[derive(Parser)]
#[command(name = "resume-agent", version, after_help = ENV_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Web API and worker in one process (the zero-setup way to run it).
    Serve,
    /// The public web API only (reaches the worker at WORKER_BASE_URL).
    Web,
    /// The worker only: runs tasks; serves /health, /ready and /metrics.
    Worker,
    /// Applies database migrations, then exits (idempotent; safe to run twice at once).
    Migrate,
    /// Internal: the worker's résumé-parser child (file on stdin, parse on
    /// stdout), started by the worker itself under resource limits.
    #[command(name = "parse-child", hide = true)]
    ParseChild {
        /// Address-space limit in MiB.
        #[arg(long)]
        max_memory_mb: u64,
        /// CPU-time limit in seconds.
        #[arg(long)]
        max_cpu_secs: u64,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The parse child reads no configuration and starts no runtime.
    if let Command::ParseChild {
        max_memory_mb,
        max_cpu_secs,
    } = cli.command
    {
        return resume_agent_worker::parse_child::run_child(
            resume_agent_worker::parse_child::ParseLimits {
                max_memory_mb,
                max_cpu_secs,
            },
        );
    }
    let role = match cli.command {
        Command::Serve => Role::Serve,
        Command::Web => Role::Web,
        Command::Worker => Role::Worker,
        Command::Migrate | Command::ParseChild { .. } => Role::Migrate,
    };
    let config = match Config::from_env(role) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("resume-agent: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // The web's own settings (authentication, limits) are checked at start
    // too, for every command that serves the web.
    let web_settings = if matches!(role, Role::Web | Role::Serve) {
        match WebSettings::from_source(&config, &resume_agent_core::config::Env) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("resume-agent: configuration error: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    } else {
        None
    };
    resume_agent_telemetry::init_logging(config.log_format);
    // Panics (a parser crate failing on a hostile file, caught and turned
    // into a failed task) go to the structured log, not raw stderr.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        tracing::error!(panic = %info, location = location.as_deref().unwrap_or("?"), "panic");
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("resume-agent: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config, web_settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "exiting on error");
            std::process::ExitCode::FAILURE
        }
    }
}

fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received: shutting down"),
            () = term => tracing::info!("SIGTERM received: shutting down"),
        }
        t.cancel();
    });
    token
}

async fn run(
    command: Command,
    config: Config,
    web_settings: Option<WebSettings>,
) -> anyhow::Result<()> {
    let web_settings =
        move || web_settings.context("web settings were not parsed for this command");
    let db = match &config.database {
        DatabaseConfig::Postgres(url) => url.redacted(),
        DatabaseConfig::Embedded(path) => format!("embedded sqlite at {}", path.display()),
    };
    tracing::info!(
        role = ?config.role,
        database = %db,
        backend = config.task_backend.as_str(),
        "starting resume-agent {}",
        env!("CARGO_PKG_VERSION")
    );
    match command {
        Command::Migrate | Command::ParseChild { .. } => {
            store::open(&config, true)
                .await
                .context("migrating the database")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Serve => {
            let shutdown = shutdown_on_signal();
            let store = store::open(&config, true)
                .await
                .context("opening the database")?;
            let blobs = open_blobs(&config).await?;
            let (local, worker): (Arc<dyn TaskBackend>, Worker) = match config.task_backend {
                BackendKind::InProcess => {
                    // One process: the web wakes the worker directly, and
                    // the internal endpoint is not mounted.
                    let wakeups = Wakeups::new();
                    let local: Arc<dyn TaskBackend> = Arc::new(WakeBackend::new(
                        resume_agent_queue::in_process::NAME,
                        wakeups.clone(),
                    ));
                    let worker =
                        build_worker(&config, store.clone(), blobs.clone(), wakeups, false).await?;
                    (local, worker)
                }
                BackendKind::Postgres => {
                    let notify = PgNotifyBackend::new(postgres_pool(&config)?);
                    let worker = build_pg_worker(&config, store.clone(), blobs.clone()).await?;
                    (notify, worker)
                }
                BackendKind::AzureQueue => {
                    let queue = open_azure_queue(&config).await?;
                    let worker =
                        build_azure_worker(&config, store.clone(), blobs.clone(), queue.clone())
                            .await?;
                    (queue, worker)
                }
            };
            let web = WebApp::build(
                &config,
                web_settings()?,
                None,
                resume_agent_web::Deps {
                    tasks: store.clone(),
                    files: store.clone(),
                    console: store.clone(),
                    watch: store,
                    backend: local,
                    blobs,
                },
            )
            .await
            .with_context(|| format!("binding WEB_ADDR {}", config.web_addr))?;
            tracing::info!(web = %config.web_addr, worker = %config.worker_addr, "serving web and worker");
            let (w, x) = tokio::join!(
                web.run_until_stopped(shutdown.clone()),
                worker.run_until_stopped(shutdown)
            );
            w.context("web")?;
            x.context("worker")?;
            Ok(())
        }
        Command::Web => {
            let shutdown = shutdown_on_signal();
            let store = open_store_retrying(&config, &shutdown).await?;
            let blobs = open_blobs(&config).await?;
            let backend: Arc<dyn TaskBackend> = match config.task_backend {
                BackendKind::InProcess => HttpDispatcher::new(
                    &config.worker_base_url,
                    config.worker_api_token.clone(),
                    Duration::from_secs(5),
                )
                .context("building the worker client")?,
                BackendKind::Postgres => PgNotifyBackend::new(postgres_pool(&config)?),
                BackendKind::AzureQueue => open_azure_queue(&config).await?,
            };
            let web = WebApp::build(
                &config,
                web_settings()?,
                None,
                resume_agent_web::Deps {
                    tasks: store.clone(),
                    files: store.clone(),
                    console: store.clone(),
                    watch: store,
                    backend,
                    blobs,
                },
            )
            .await
            .with_context(|| format!("binding WEB_ADDR {}", config.web_addr))?;
            match config.task_backend {
                BackendKind::InProcess => {
                    tracing::info!(addr = %config.web_addr, worker = %config.worker_base_url, "web serving");
                }
                BackendKind::Postgres => {
                    tracing::info!(addr = %config.web_addr, "web serving (workers claim from PostgreSQL)");
                }
                BackendKind::AzureQueue => {
                    tracing::info!(addr = %config.web_addr, queue = %config.azure.queue_name, "web serving");
                }
            }
            web.run_until_stopped(shutdown).await.context("web")
        }
        Command::Worker => {
            let shutdown = shutdown_on_signal();
            let store = open_store_retrying(&config, &shutdown).await?;
            let blobs = open_blobs(&config).await?;
            let worker = match config.task_backend {
                BackendKind::InProcess => {
                    build_worker(&config, store, blobs, Wakeups::new(), true).await?
                }
                BackendKind::Postgres => build_pg_worker(&config, store, blobs).await?,
                BackendKind::AzureQueue => {
                    let queue = open_azure_queue(&config).await?;
                    build_azure_worker(&config, store, blobs, queue).await?
                }
            };
            tracing::info!(addr = %config.worker_addr, "worker serving");
            worker.run_until_stopped(shutdown).await.context("worker")
        }
    }
}

/// Opens the store. PostgreSQL may be down at start: the pool connects
/// lazily and the services report not-ready until it is reachable.
async fn open_store_retrying(
    config: &Config,
    _shutdown: &CancellationToken,
) -> anyhow::Result<Arc<dyn TaskStore>> {
    let migrate = matches!(config.database, DatabaseConfig::Embedded(_));
    store::open(config, migrate)
        .await
        .context("opening the database")
}

fn storage_account(config: &Config) -> anyhow::Result<Arc<StorageAccount>> {
    let account = StorageAccount::from_config(&config.azure).context("Azure Storage")?;
    tracing::info!(account = %account.describe(), "Azure Storage account");
    Ok(account)
}

/// The Azure queue (and its poison queue), created when missing. Storage
/// may be down at start: the process then starts anyway and reports
/// not-ready (`backend`) until the queue is reachable.
async fn open_azure_queue(config: &Config) -> anyhow::Result<Arc<AzureQueue>> {
    let queue = AzureQueue::new(
        storage_account(config)?,
        &config.azure.queue_name,
        config.azure_queue.clone(),
        config.azure.request_timeout,
    )
    .context("AZURE_STORAGE_QUEUE_NAME")?;
    if let Err(e) = queue.ensure_queues().await {
        tracing::warn!(error = %e, queue = queue.queue_name(), "cannot create the queues yet; not ready until storage is reachable");
    }
    Ok(queue)
}

async fn open_blobs(config: &Config) -> anyhow::Result<Arc<dyn BlobStore>> {
    if config.blob_store == BlobStoreKind::Azure {
        let store = AzureBlobStore::new(
            storage_account(config)?,
            &config.azure.container_name,
            config.azure.request_timeout,
        )
        .context("AZURE_STORAGE_CONTAINER_NAME")?;
        if let Err(e) = store.ensure_container().await {
            tracing::warn!(error = %e, container = %config.azure.container_name, "cannot create the blob container yet; not ready until storage is reachable");
        }
        return Ok(Arc::new(store));
    }
    let dir = config.data_dir.join("blobs");
    let blobs = LocalBlobStore::open(&dir)
        .await
        .with_context(|| format!("opening the blob folder {}", dir.display()))?;
    Ok(Arc::new(blobs))
}

/// The pool the `postgres` backend's NOTIFY/LISTEN use.
fn postgres_pool(config: &Config) -> anyhow::Result<resume_agent_queue::postgres::PgPool> {
    match &config.database {
        DatabaseConfig::Postgres(url) => {
            pool_for(url.expose()).context("TASK_BACKEND=postgres: the database URL")
        }
        DatabaseConfig::Embedded(_) => {
            anyhow::bail!("TASK_BACKEND=postgres needs a PostgreSQL database")
        }
    }
}

/// Phase 5: one worker (single-replica lock) claiming from the store, woken
/// by the web through the internal endpoint (`endpoint`; not in `serve`).
async fn build_worker(
    config: &Config,
    store: Arc<dyn TaskStore>,
    blobs: Arc<dyn BlobStore>,
    wakeups: Wakeups,
    endpoint: bool,
) -> anyhow::Result<Worker> {
    let store_for_handlers = store.clone();
    let deps = resume_agent_worker::Deps {
        store,
        intake: Intake {
            backend: Arc::new(WakeBackend::new(
                resume_agent_queue::in_process::NAME,
                wakeups.clone(),
            )),
            wakeups: wakeups.clone(),
            deliveries: None,
        },
        blobs,
        registry: registry(config, &store_for_handlers)?,
    };
    // Phase 5: exactly one worker may consume.
    let guard: Arc<dyn SingletonLock> = match &config.database {
        DatabaseConfig::Postgres(url) => Arc::new(PgAdvisoryLock::new(url, IN_PROCESS_LOCK_KEY)?),
        DatabaseConfig::Embedded(path) => {
            Arc::new(FileLock::new(path.with_extension("worker-lock")))
        }
    };
    let runtime = Runtime::new(deps, config.worker.clone(), Some(guard));
    let internal = endpoint
        .then(|| resume_agent_queue::in_process::router(wakeups, config.worker_api_token.clone()));
    Worker::build(config.worker_addr, runtime, internal)
        .await
        .with_context(|| format!("binding WORKER_ADDR {}", config.worker_addr))
}

/// `postgres`: any number of workers claiming from PostgreSQL, woken by
/// LISTEN/NOTIFY; no lock, no internal endpoint.
async fn build_pg_worker(
    config: &Config,
    store: Arc<dyn TaskStore>,
    blobs: Arc<dyn BlobStore>,
) -> anyhow::Result<Worker> {
    let pool = postgres_pool(config)?;
    let wakeups = Wakeups::new();
    tokio::spawn(resume_agent_queue::postgres::listen(
        pool.clone(),
        wakeups.clone(),
        CancellationToken::new(),
    ));
    let store_for_handlers = store.clone();
    let deps = resume_agent_worker::Deps {
        store,
        intake: Intake {
            backend: PgNotifyBackend::new(pool),
            wakeups,
            deliveries: None,
        },
        blobs,
        registry: registry(config, &store_for_handlers)?,
    };
    let runtime = Runtime::new(deps, config.worker.clone(), None);
    Worker::build(config.worker_addr, runtime, None)
        .await
        .with_context(|| format!("binding WORKER_ADDR {}", config.worker_addr))
}

/// Phase 6: any number of workers share the Azure queue; no single-replica
/// guard and no internal dispatch endpoint (the web sends to the queue).
/// They also claim from the store what the queue never got: tasks handed to
/// another backend (a flip) and hand-offs older than REDISPATCH_AFTER_SECS.
async fn build_azure_worker(
    config: &Config,
    store: Arc<dyn TaskStore>,
    blobs: Arc<dyn BlobStore>,
    queue: Arc<AzureQueue>,
) -> anyhow::Result<Worker> {
    let store_for_handlers = store.clone();
    let deps = resume_agent_worker::Deps {
        store,
        intake: Intake {
            backend: queue.clone(),
            wakeups: Wakeups::new(),
            deliveries: Some(queue),
        },
        blobs,
        registry: registry(config, &store_for_handlers)?,
    };
    let runtime = Runtime::new(deps, config.worker.clone(), None);
    Worker::build(config.worker_addr, runtime, None)
        .await
        .with_context(|| format!("binding WORKER_ADDR {}", config.worker_addr))
}

/// The handlers every worker runs (wrapped in the test probe when asked).
/// Résumés are parsed by this binary's hidden `parse-child` subcommand.
fn registry(config: &Config, store: &Arc<dyn TaskStore>) -> anyhow::Result<Registry> {
    use resume_agent_worker::parse_child::{ParseLimits, ParseRunner};
    let parser = ParseRunner::current_exe(ParseLimits {
        max_memory_mb: config.parse.max_memory_mb,
        max_cpu_secs: config.parse.max_cpu_secs,
    })
    .context("locating this executable for the résumé parser's child process")?;
    let resume = resume_agent_worker::resume::ResumeSettings::new(
        parser,
        config.parse.result_max_bytes,
        config.parse.max_concurrency,
    );
    let r = Registry::with_builtins(store.clone(), resume);
    Ok(match &config.worker.test_probe {
        Some(file) => r.probed(file),
        None => r,
    })
}
