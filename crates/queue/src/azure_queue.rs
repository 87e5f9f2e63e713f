//! Phase 6: the Azure Queue Storage backend (`TASK_BACKEND=azure-queue`),
//! on Microsoft's `azure_storage_queue` 1.x.
//!
//! [`AzureQueue`] is both the producer ([`TaskBackend`], used by the web and
//! the worker's sweeper) and the consumer ([`TaskSource`], used by any number
//! of worker replicas).
//!
//! **On the wire** every message text is the plain JSON of [`Message`],
//! `{"task_id":"<uuid>","attempt":<n>}`: no base64 (the SDK sends the text
//! as is, XML-escaped inside `<QueueMessage><MessageText>…`). Azure's Python
//! SDK reads it with its default (no) decode policy. On receive we also
//! accept base64 of that JSON, which is what the Azure Functions output
//! binding and Python's `TextBase64EncodePolicy` write.
//!
//! Behaviour:
//!
//! - `receive(max, wait, lease)`: one Get Messages call for
//!   `min(max, AZURE_QUEUE_BATCH_SIZE, 32)` messages with visibility timeout
//!   = lease. There is no long polling, so when the queue is empty the next
//!   poll waits a pause that starts at `AZURE_QUEUE_POLL_MIN_MS` and doubles
//!   (equal jitter) up to `AZURE_QUEUE_POLL_MAX_MS`; a receive that returns
//!   messages snaps it back. A receive returns an empty vec after at most
//!   `wait`.
//! - `extend`: Update Message with visibility = lease; the response carries
//!   a new pop receipt, which replaces the old one in the [`Delivery`].
//! - `complete`: Delete Message (the only place messages are deleted, apart
//!   from dead-lettering).
//! - `release(delay)`: Update Message with visibility = delay and the
//!   current `{"task_id","attempt"}` as text (retries: the backoff becomes
//!   the visibility delay; hand-backs: delay 0).
//! - `dead_letter`: Put Message to `<queue>-poison`, then Delete Message.
//! - Both queues are created at start when missing (and again when a call
//!   finds the queue gone); `check` reads the queue's properties;
//!   `depth` reads its approximate message count and, on the way, sets
//!   `task_backend_poison_depth{backend="azure-queue"}`.
//! - Unreachable storage, timeouts, throttling and 5xx become
//!   [`BackendError::Unavailable`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::http::headers::HeaderName;
use azure_storage_queue::models::{
    QueueClientGetPropertiesResultHeaders, QueueClientPeekMessagesOptions,
    QueueClientReceiveMessagesOptions, QueueClientSendMessageOptions,
    QueueClientUpdateMessageOptions, QueueMessage,
};
use azure_storage_queue::{QueueClient, QueueClientOptions};
use base64::Engine as _;
use futures::StreamExt as _;
use rand::Rng as _;
use resume_agent_azure::ops::{StorageError, StorageErrorKind, call};
use resume_agent_azure::{StorageAccount, account::client_options};
use resume_agent_core::TaskId;
use resume_agent_core::config::AzureQueueConfig;
use tokio::time::Instant;

use crate::{BackendError, Delivery, Message, Receipt, TaskBackend, TaskSource};

/// The backend name used in metrics.
pub const NAME: &str = "azure-queue";

/// Most messages one Get Messages call returns (an Azure limit).
pub const MAX_BATCH: u32 = 32;

const POP_RECEIPT: HeaderName = HeaderName::from_static("x-ms-popreceipt");

/// Poison-queue pages one redrive reads at most (32 messages each).
pub const REDRIVE_MAX_PAGES: u32 = 32;

/// How long a poison message stays hidden while a redrive looks at it.
const REDRIVE_VISIBILITY_SECS: i32 = 5;

/// The poison queue of `queue`.
#[must_use]
pub fn poison_queue_name(queue: &str) -> String {
    format!("{queue}-poison")
}

/// The message text we send: the plain JSON of [`Message`].
#[must_use]
pub fn encode(m: &Message) -> String {
    // Exactly the serde form of `Message`, written out so it cannot fail.
    format!(r#"{{"task_id":"{}","attempt":{}}}"#, m.task_id, m.attempt)
}

/// Reads a message text: plain JSON, or base64 of it (other producers).
#[must_use]
pub fn decode(text: &str) -> Option<Message> {
    let t = text.trim();
    if let Ok(m) = serde_json::from_str::<Message>(t) {
        return Some(m);
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(t).ok()?;
    serde_json::from_slice(&bytes).ok()
}

struct Clients {
    generation: u64,
    queue: Arc<QueueClient>,
    poison: Arc<QueueClient>,
}

/// Empty-queue polling state, shared by successive receives.
struct Poll {
    pause: Duration,
    next_at: Instant,
}

/// The Azure Queue Storage backend: producer and consumer of one queue.
pub struct AzureQueue {
    account: Arc<StorageAccount>,
    queue: String,
    poison: String,
    cfg: AzureQueueConfig,
    timeout: Duration,
    clients: Mutex<Option<Clients>>,
    poll: Mutex<Poll>,
}

impl std::fmt::Debug for AzureQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureQueue")
            .field("account", &self.account)
            .field("queue", &self.queue)
            .field("poison", &self.poison)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: &StorageError) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

/// Whole seconds for a visibility timeout, rounded up, within Azure's 0..=7 days.
fn visibility_secs(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs.min(7 * 24 * 3600)).unwrap_or(7 * 24 * 3600)
}

impl AzureQueue {
    /// A backend for `queue` (and `<queue>-poison`) in `account`. Creates
    /// both queues when missing.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] when the account cannot be reached.
    pub async fn open(
        account: Arc<StorageAccount>,
        queue: &str,
        cfg: AzureQueueConfig,
        timeout: Duration,
    ) -> Result<Arc<Self>, BackendError> {
        let me = Self::new(account, queue, cfg, timeout)?;
        me.ensure_queues().await?;
        Ok(me)
    }

    /// Like [`AzureQueue::open`] without touching the network (queues are
    /// created on first use).
    ///
    /// # Errors
    /// An invalid queue name.
    pub fn new(
        account: Arc<StorageAccount>,
        queue: &str,
        cfg: AzureQueueConfig,
        timeout: Duration,
    ) -> Result<Arc<Self>, BackendError> {
        let me = Arc::new(Self {
            account,
            queue: queue.to_owned(),
            poison: poison_queue_name(queue),
            poll: Mutex::new(Poll {
                pause: Duration::ZERO,
                next_at: Instant::now(),
            }),
            cfg,
            timeout,
            clients: Mutex::new(None),
        });
        me.clients()?;
        Ok(me)
    }

    /// The queue's name.
    #[must_use]
    pub fn queue_name(&self) -> &str {
        &self.queue
    }

    /// The poison queue's name.
    #[must_use]
    pub fn poison_name(&self) -> &str {
        &self.poison
    }

    fn clients(&self) -> Result<(Arc<QueueClient>, Arc<QueueClient>), BackendError> {
        let generation = self.account.generation();
        let mut slot = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = slot.as_ref()
            && c.generation == generation
        {
            return Ok((c.queue.clone(), c.poison.clone()));
        }
        let build = |name: &str| -> Result<(Arc<QueueClient>, u64), BackendError> {
            let (url, g) = self
                .account
                .queue_url(name)
                .map_err(|e| BackendError::Unavailable(e.to_string()))?;
            let options = QueueClientOptions {
                client_options: client_options(),
                ..Default::default()
            };
            let c =
                QueueClient::new(url, self.account.credential(), Some(options)).map_err(|e| {
                    BackendError::Unavailable(resume_agent_azure::sas::redact_sas(&e.to_string()))
                })?;
            Ok((Arc::new(c), g))
        };
        let (queue, g) = build(&self.queue)?;
        let (poison, _) = build(&self.poison)?;
        *slot = Some(Clients {
            generation: g,
            queue: queue.clone(),
            poison: poison.clone(),
        });
        Ok((queue, poison))
    }

    fn queue_client(&self) -> Result<Arc<QueueClient>, BackendError> {
        Ok(self.clients()?.0)
    }

    /// Creates the queue and the poison queue when missing.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`].
    pub async fn ensure_queues(&self) -> Result<(), BackendError> {
        let (queue, poison) = self.clients()?;
        for (name, c) in [(&self.queue, queue), (&self.poison, poison)] {
            match call("queue_create", self.timeout, c.create(None)).await {
                Ok(_) => tracing::debug!(queue = %name, "queue ready"),
                Err(e) if e.kind == StorageErrorKind::Conflict => {}
                Err(e) => return Err(unavailable(&e)),
            }
        }
        Ok(())
    }

    async fn send_one(
        &self,
        client: &QueueClient,
        text: String,
        visibility: i32,
    ) -> Result<(), StorageError> {
        let options = QueueClientSendMessageOptions {
            visibility_timeout: (visibility > 0).then_some(visibility),
            message_time_to_live: Some(self.cfg.message_ttl_secs),
            ..Default::default()
        };
        let body = QueueMessage {
            message_text: Some(text),
        };
        let content = body
            .try_into()
            .map_err(|e: azure_core::Error| resume_agent_azure::ops::classify("queue_send", &e))?;
        call(
            "queue_send",
            self.timeout,
            client.send_message(content, Some(options)),
        )
        .await
        .map(|_| ())
    }

    /// Sends to the task queue, re-creating it once if it went missing.
    async fn send(&self, text: String, visibility: i32) -> Result<(), StorageError> {
        let client = self.queue_client().map_err(to_storage)?;
        match self.send_one(&client, text.clone(), visibility).await {
            Err(e) if e.is_not_found() => {
                self.ensure_queues().await.map_err(to_storage)?;
                self.send_one(&client, text, visibility).await
            }
            other => other,
        }
    }

    /// Approximate message count of `client`'s queue.
    async fn count(&self, client: &QueueClient) -> Option<u64> {
        let r = call(
            "queue_properties",
            self.timeout,
            client.get_properties(None),
        )
        .await
        .ok()?;
        r.approximate_messages_count()
            .ok()
            .flatten()
            .and_then(|n| u64::try_from(n).ok())
    }

    /// Up to 32 message texts at the front of the queue (or the poison
    /// queue), without receiving them (operators, tests).
    ///
    /// # Errors
    /// [`BackendError::Unavailable`].
    pub async fn peek(&self, poison: bool, n: u32) -> Result<Vec<String>, BackendError> {
        let (queue, poison_q) = self.clients()?;
        let client = if poison { poison_q } else { queue };
        let options = QueueClientPeekMessagesOptions {
            number_of_messages: Some(i32::try_from(n.clamp(1, MAX_BATCH)).unwrap_or(1)),
            ..Default::default()
        };
        let fetched = async {
            let r = client.peek_messages(Some(options)).await?;
            r.into_model()
        };
        let peeked = call("queue_peek", self.timeout, fetched)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(peeked
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.message_text)
            .collect())
    }

    /// Deletes the poison messages of `tasks` (a redrive after a retry).
    /// The poison queue is read in pages of 32, each message hidden for a
    /// few seconds while looked at, so later pages show the next ones;
    /// those of other tasks reappear untouched. At most
    /// [`REDRIVE_MAX_PAGES`] pages are read per call.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`].
    pub async fn remove_from_poison(&self, tasks: &[TaskId]) -> Result<u64, BackendError> {
        if tasks.is_empty() {
            return Ok(0);
        }
        let wanted: std::collections::HashSet<TaskId> = tasks.iter().copied().collect();
        let (_, poison) = self.clients()?;
        let mut removed = 0u64;
        for _ in 0..REDRIVE_MAX_PAGES {
            let options = QueueClientReceiveMessagesOptions {
                number_of_messages: Some(i32::try_from(MAX_BATCH).unwrap_or(32)),
                visibility_timeout: Some(REDRIVE_VISIBILITY_SECS),
                ..Default::default()
            };
            let fetched = async {
                let r = poison.receive_messages(Some(options)).await?;
                r.into_model()
            };
            let page = match call("queue_receive", self.timeout, fetched).await {
                Ok(r) => r.items.unwrap_or_default(),
                Err(e) if e.is_not_found() => return Ok(removed),
                Err(e) => return Err(unavailable(&e)),
            };
            if page.is_empty() {
                break;
            }
            for m in page {
                let Some(message) = m.message_text.as_deref().and_then(decode) else {
                    continue;
                };
                if !wanted.contains(&message.task_id) {
                    continue;
                }
                let (Some(id), Some(pop)) = (m.message_id, m.pop_receipt) else {
                    continue;
                };
                match call(
                    "queue_delete",
                    self.timeout,
                    poison.delete_message(&id, &pop, None),
                )
                .await
                {
                    Ok(_) => removed += 1,
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(unavailable(&e)),
                }
            }
        }
        Ok(removed)
    }

    /// Messages waiting in the poison queue (approximate).
    pub async fn poison_depth(&self) -> Option<u64> {
        let (_, poison) = self.clients().ok()?;
        self.count(&poison).await
    }

    fn note_empty(&self) {
        let mut p = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
        p.pause = if p.pause.is_zero() {
            self.cfg.poll_min
        } else {
            (p.pause * 2).min(self.cfg.poll_max)
        };
        // Equal jitter: half fixed, half random, so idle workers spread out.
        let half = p.pause / 2;
        let pause = half + half.mul_f64(rand::rng().random::<f64>());
        p.next_at = Instant::now() + pause;
    }

    fn note_work(&self) {
        let mut p = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
        p.pause = Duration::ZERO;
        p.next_at = Instant::now();
    }

    fn next_poll(&self) -> Instant {
        self.poll
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_at
    }

    async fn receive_once(&self, n: u32, lease: Duration) -> Result<Vec<Delivery>, BackendError> {
        let client = self.queue_client()?;
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(i32::try_from(n).unwrap_or(1)),
            visibility_timeout: Some(visibility_secs(lease).max(1)),
            ..Default::default()
        };
        let fetched = async {
            let r = client.receive_messages(Some(options)).await?;
            r.into_model()
        };
        let received = match call("queue_receive", self.timeout, fetched).await {
            Ok(r) => r,
            Err(e) if e.is_not_found() => {
                self.ensure_queues().await?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(unavailable(&e)),
        };
        let mut out = Vec::new();
        for m in received.items.unwrap_or_default() {
            let (Some(id), Some(pop)) = (m.message_id, m.pop_receipt) else {
                continue;
            };
            let text = m.message_text.unwrap_or_default();
            let receipt = Receipt::Queue {
                id,
                pop_receipt: pop,
            };
            match decode(&text) {
                Some(message) => out.push(Delivery {
                    message,
                    receipt,
                    dequeue_count: u32::try_from(m.dequeue_count.unwrap_or(1)).unwrap_or(1),
                }),
                None => self.poison_foreign(text, &receipt).await,
            }
        }
        Ok(out)
    }

    /// A message that is not ours (not `{"task_id","attempt"}`): moved to
    /// the poison queue untouched so that it neither blocks nor vanishes.
    async fn poison_foreign(&self, text: String, receipt: &Receipt) {
        metrics::counter!("azure_queue_invalid_messages_total").increment(1);
        tracing::warn!(queue = %self.queue, len = text.len(), "a message that is not a task reference: moved to the poison queue");
        let Ok((_, poison)) = self.clients() else {
            return;
        };
        if let Err(e) = self.send_one(&poison, text, 0).await {
            tracing::warn!(error = %e, "moving a foreign message to the poison queue failed");
            return;
        }
        let _ = self.delete(receipt).await;
    }

    async fn delete(&self, receipt: &Receipt) -> Result<(), BackendError> {
        let Receipt::Queue { id, pop_receipt } = receipt else {
            return Ok(());
        };
        let client = self.queue_client()?;
        match call(
            "queue_delete",
            self.timeout,
            client.delete_message(id, pop_receipt, None),
        )
        .await
        {
            // Already gone (deleted by another delivery's completion).
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(unavailable(&e)),
            Ok(_) => Ok(()),
        }
    }

    async fn update(
        &self,
        delivery: &Delivery,
        visibility: i32,
        text: Option<String>,
        operation: &'static str,
    ) -> Result<Option<String>, BackendError> {
        let Receipt::Queue { id, pop_receipt } = &delivery.receipt else {
            return Err(BackendError::Unavailable(
                "not an Azure Queue delivery".into(),
            ));
        };
        let client = self.queue_client()?;
        let queue_message = match text {
            Some(t) => Some(
                QueueMessage {
                    message_text: Some(t),
                }
                .try_into()
                .map_err(|e: azure_core::Error| {
                    unavailable(&resume_agent_azure::ops::classify(operation, &e))
                })?,
            ),
            None => None,
        };
        let options = QueueClientUpdateMessageOptions {
            queue_message,
            ..Default::default()
        };
        let r = call(
            operation,
            self.timeout,
            client.update_message(id, pop_receipt, visibility, Some(options)),
        )
        .await
        .map_err(|e| unavailable(&e))?;
        Ok(r.headers().get_optional_string(&POP_RECEIPT))
    }
}

fn to_storage(e: BackendError) -> StorageError {
    StorageError {
        kind: StorageErrorKind::Transient,
        operation: "queue_send",
        status: None,
        message: e.to_string(),
    }
}

#[async_trait]
impl TaskBackend for AzureQueue {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn enqueue(&self, messages: &[Message], delay: Duration) -> Result<(), BackendError> {
        let visibility = visibility_secs(delay);
        let texts: Vec<String> = messages.iter().map(encode).collect();
        let results: Vec<Result<(), StorageError>> = futures::stream::iter(texts)
            .map(|text| self.send(text, visibility))
            .buffer_unordered(self.cfg.send_concurrency.max(1))
            .collect()
            .await;
        let failed: Vec<&StorageError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        match failed.first() {
            None => Ok(()),
            Some(e) => Err(BackendError::Unavailable(format!(
                "{} of {} messages not sent: {e}",
                failed.len(),
                messages.len()
            ))),
        }
    }

    async fn forget_dead_letters(&self, tasks: &[TaskId]) -> Result<u64, BackendError> {
        self.remove_from_poison(tasks).await
    }

    async fn dead_letter_depth(&self) -> Option<u64> {
        self.poison_depth().await
    }

    async fn check(&self) -> Result<(), BackendError> {
        let client = self.queue_client()?;
        match call(
            "queue_properties",
            self.timeout,
            client.get_properties(None),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => self.ensure_queues().await,
            Err(e) => Err(unavailable(&e)),
        }
    }
}

#[async_trait]
impl TaskSource for AzureQueue {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<Delivery>, BackendError> {
        let deadline = Instant::now() + wait;
        let n = u32::try_from(max)
            .unwrap_or(MAX_BATCH)
            .min(self.cfg.batch_size)
            .clamp(1, MAX_BATCH);
        loop {
            let next = self.next_poll();
            if next > Instant::now() {
                if next >= deadline {
                    tokio::time::sleep_until(deadline).await;
                    return Ok(Vec::new());
                }
                tokio::time::sleep_until(next).await;
            }
            let got = self.receive_once(n, lease).await?;
            if got.is_empty() {
                self.note_empty();
            } else {
                self.note_work();
                return Ok(got);
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    async fn extend(&self, delivery: &mut Delivery, lease: Duration) -> Result<(), BackendError> {
        let pop = self
            .update(
                delivery,
                visibility_secs(lease).max(1),
                None,
                "queue_extend",
            )
            .await?;
        if let (Some(new), Receipt::Queue { pop_receipt, .. }) = (pop, &mut delivery.receipt) {
            *pop_receipt = new;
        }
        Ok(())
    }

    async fn complete(&self, delivery: &Delivery) -> Result<(), BackendError> {
        self.delete(&delivery.receipt).await
    }

    async fn release(&self, delivery: &Delivery, delay: Duration) -> Result<(), BackendError> {
        self.update(
            delivery,
            visibility_secs(delay),
            Some(encode(&delivery.message)),
            "queue_release",
        )
        .await
        .map(|_| ())
    }

    async fn dead_letter(&self, delivery: &Delivery) -> Result<(), BackendError> {
        let (_, poison) = self.clients()?;
        let text = encode(&delivery.message);
        match self.send_one(&poison, text.clone(), 0).await {
            Err(e) if e.is_not_found() => {
                self.ensure_queues().await?;
                self.send_one(&poison, text, 0)
                    .await
                    .map_err(|e| unavailable(&e))?;
            }
            Err(e) => return Err(unavailable(&e)),
            Ok(()) => {}
        }
        metrics::counter!("task_backend_dead_lettered_total", "backend" => NAME).increment(1);
        self.delete(&delivery.receipt).await
    }

    async fn depth(&self) -> Option<u64> {
        if let Some(p) = self.poison_depth().await {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("task_backend_poison_depth", "backend" => NAME).set(p as f64);
        }
        let client = self.queue_client().ok()?;
        self.count(&client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resume_agent_core::TaskId;

    #[test]
    fn messages_are_plain_json_and_base64_is_accepted() {
        let m = Message {
            task_id: TaskId::new(),
            attempt: 2,
        };
        let text = encode(&m);
        assert_eq!(
            text,
            serde_json::to_string(&m).unwrap(),
            "the serde form of Message"
        );
        assert_eq!(
            text,
            format!(
                r#"{{"task_id":"{}","attempt":2}}"#,
                m.task_id.0.hyphenated()
            )
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["task_id"], m.task_id.to_string());
        assert_eq!(v["attempt"], 2);
        assert_eq!(decode(&text), Some(m));
        let b64 = base64::engine::general_purpose::STANDARD.encode(&text);
        assert_eq!(decode(&b64), Some(m));
        assert_eq!(decode("hello"), None);
    }

    #[test]
    fn visibility_rounds_up_and_is_bounded() {
        assert_eq!(visibility_secs(Duration::ZERO), 0);
        assert_eq!(visibility_secs(Duration::from_millis(1)), 1);
        assert_eq!(visibility_secs(Duration::from_millis(1500)), 2);
        assert_eq!(visibility_secs(Duration::from_secs(30)), 30);
        assert_eq!(
            visibility_secs(Duration::from_secs(10 * 24 * 3600)),
            604_800
        );
    }
}
