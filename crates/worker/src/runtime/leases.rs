//! Leases while attempts run: the heartbeat extends the store lease (and a
//! queue delivery's invisibility) and stops attempts whose lease was lost;
//! the cancellation watch stops attempts whose cancellation was requested.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use resume_agent_core::TaskId;
use resume_agent_queue::Delivery;
use tokio_util::sync::CancellationToken;

use super::{ACK_CONCURRENCY, Inner, REASON_CANCEL, REASON_LEASE_LOST};

impl Inner {
    pub(super) async fn heartbeat_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let snapshot: Vec<(TaskId, Option<Delivery>)> = self
                .map()
                .iter()
                .map(|(id, e)| (*id, e.delivery.clone()))
                .collect();
            if snapshot.is_empty() {
                continue;
            }
            let ids: Vec<TaskId> = snapshot.iter().map(|(id, _)| *id).collect();
            match self
                .deps
                .store
                .heartbeat(&self.worker_id, &ids, self.cfg.lease)
                .await
            {
                Ok(held) => {
                    let held: HashSet<TaskId> = held.into_iter().collect();
                    let map = self.map();
                    for id in ids.iter().filter(|id| !held.contains(id)) {
                        if let Some(e) = map.get(id) {
                            tracing::warn!(task_id = %id, "lease lost; stopping the attempt");
                            e.stop.stop(REASON_LEASE_LOST);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
            }
            let Some(source) = self.deps.intake.deliveries.clone() else {
                continue;
            };
            let me: &Inner = &self;
            let source = &source;
            futures::stream::iter(
                snapshot
                    .into_iter()
                    .filter_map(|(id, d)| d.map(|d| (id, d))),
            )
            .for_each_concurrent(ACK_CONCURRENCY, |(id, mut delivery)| async move {
                if !me.map().contains_key(&id) {
                    return; // finished meanwhile
                }
                if let Err(e) = source.extend(&mut delivery, me.cfg.lease).await {
                    tracing::warn!(error = %e, task_id = %id, "extending the delivery failed");
                    return;
                }
                if let Some(entry) = me.map().get_mut(&id) {
                    entry.delivery = Some(delivery);
                }
            })
            .await;
        }
    }

    pub(super) async fn cancel_watch_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.cancel_poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let ids: Vec<TaskId> = self.map().keys().copied().collect();
            if ids.is_empty() {
                continue;
            }
            match self.deps.store.cancel_requested(&ids).await {
                Ok(cancel) => {
                    let map = self.map();
                    for id in cancel {
                        if let Some(e) = map.get(&id) {
                            e.stop.stop(REASON_CANCEL);
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cancellation watch failed"),
            }
        }
    }
}
