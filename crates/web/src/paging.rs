//! Bounded list pages. A task can carry up to a megabyte or two (result,
//! payload), so `limit=500` must not mean hundreds of megabytes in memory
//! or on the wire: rows are read in small chunks and the page ends before
//! it passes `LIST_MAX_BYTES` (always at least one task), with
//! `next_cursor` after the last task it holds.

use resume_agent_core::store::{ConsoleStore, Cursor, ListQuery, Scope, StoreError, TaskPage};

/// Rows read per store round trip: bounds what one request holds at once
/// to this many tasks beyond the page itself.
const CHUNK: u32 = 32;

/// Counts the bytes `serde_json` would write, without writing them.
struct Count(usize);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_len<T: serde::Serialize>(v: &T) -> usize {
    let mut c = Count(0);
    // Serialising a Task cannot fail; a failure counts as huge.
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => usize::MAX / 2,
    }
}

/// The page `query` asks for, cut to `max_bytes` of JSON.
///
/// # Errors
/// The store's.
pub async fn bounded_page(
    store: &dyn ConsoleStore,
    scope: &Scope,
    query: &ListQuery,
    max_bytes: usize,
) -> Result<TaskPage, StoreError> {
    let limit = query.limit.clamp(1, 500);
    let mut items = Vec::new();
    let mut bytes = 0usize;
    let mut cursor = query.cursor;
    loop {
        let want = (limit - u32::try_from(items.len()).unwrap_or(limit)).min(CHUNK);
        let chunk = store
            .list_tasks_in(
                scope,
                &ListQuery {
                    limit: want,
                    cursor,
                    ..query.clone()
                },
            )
            .await?;
        let more = chunk.next_cursor.is_some();
        for task in chunk.items {
            let n = json_len(&task) + 1;
            if !items.is_empty() && bytes + n > max_bytes {
                // Full: the next page starts at this task.
                let next_cursor = items.last().map(Cursor::after);
                return Ok(TaskPage { items, next_cursor });
            }
            bytes += n;
            items.push(task);
        }
        if !more {
            return Ok(TaskPage {
                items,
                next_cursor: None,
            });
        }
        if items.len() >= limit as usize {
            return Ok(TaskPage {
                next_cursor: items.last().map(Cursor::after),
                items,
            });
        }
        cursor = chunk.next_cursor;
    }
}
