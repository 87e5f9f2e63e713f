//! Leases while attempts run: the heartbeat extends the store lease (and a
//! queue delivery's invisibility) and stops attempts whose lease was lost;
//! the cancellation watch stops attempts whose cancellation was requested.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use resume_agent_core::TaskId;
use resume_agent_queue::Delivery;
use tokio_util::sync::CancellationToken;

use super::{ACK_CONCURRENCY, Inner, REASON_CANCEL, REASON_LEASE_LOST};

/// How old a lease must be for the heartbeat to extend it: old enough that
/// a task claimed a moment ago is left alone, young enough that the first
/// tick to extend it still leaves half the lease (and at least a
/// heartbeat) before it would lapse: `lease - heartbeat - max(heartbeat,
/// lease / 2)`, zero (every tick) when the two are close.
fn extend_after(lease: Duration, heartbeat: Duration) -> Duration {
    lease
        .saturating_sub(heartbeat)
        .saturating_sub(heartbeat.max(lease / 2))
}

impl Inner {
    pub(super) async fn heartbeat_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            // Only leases set at least `due` ago: a task claimed a moment
            // ago (most of them, when tasks are short) holds its lease for
            // a while yet, and extending it is a row write for nothing.
            let due = extend_after(self.cfg.lease, self.cfg.heartbeat);
            let now = Instant::now();
            let snapshot: Vec<(TaskId, Option<Delivery>)> = self
                .map()
                .iter()
                .filter(|(_, e)| now.saturating_duration_since(e.leased) >= due)
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
                    let mut map = self.map();
                    for id in &ids {
                        let Some(e) = map.get_mut(id) else { continue };
                        if held.contains(id) {
                            e.leased = now;
                        } else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_extended_with_half_of_it_to_spare() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // Defaults: 30 s lease, 10 s heartbeat: leases 5 s old.
        assert_eq!(extend_after(s(30), s(10)), s(5));
        // The fault drills' 3 s lease, 1 s heartbeat: 500 ms old.
        assert_eq!(extend_after(s(3), s(1)), ms(500));
        // Close together: every tick.
        assert_eq!(extend_after(s(15), s(10)), Duration::ZERO);
        for (lease, beat) in [
            (30, 10),
            (30, 1),
            (15, 10),
            (3600, 1),
            (4, 1),
            (3, 2),
            (2, 1),
        ] {
            let (lease, beat) = (s(lease), s(beat));
            let due = extend_after(lease, beat);
            // Set just after a tick, first seen due at most a tick after
            // `due` and extended then: half the lease, and a heartbeat,
            // left; or, extended every tick, all the configuration allows.
            let spare = lease.saturating_sub(due + beat);
            assert!(
                (spare >= lease / 2 && spare >= beat) || (due.is_zero() && spare == lease - beat),
                "lease {lease:?}, heartbeat {beat:?}: {spare:?} to spare"
            );
        }
    }
}
