//! Built-in handlers: `system.noop`, `system.sleep`, `system.fail`.

use std::time::Duration;

use async_trait::async_trait;
use resume_agent_core::payload::{FailPayload, SleepPayload};
use serde_json::{Value, json};

use crate::handler::{HandlerError, TaskContext, TaskHandler};

/// `system.noop`: `{}` at once.
pub struct Noop;

#[async_trait]
impl TaskHandler for Noop {
    fn kind(&self) -> &'static str {
        "system.noop"
    }

    async fn run(&self, _ctx: TaskContext) -> Result<Value, HandlerError> {
        Ok(json!({}))
    }
}

/// `system.sleep`: sleeps `ms`, stopping at once when cancelled.
pub struct Sleep;

#[async_trait]
impl TaskHandler for Sleep {
    fn kind(&self) -> &'static str {
        "system.sleep"
    }

    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let SleepPayload { ms } = ctx.payload()?;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(json!({"slept_ms": ms})),
            () = ctx.cancel.cancelled() => Err(HandlerError::Permanent("cancelled".into())),
        }
    }
}

/// `system.fail`: always fails (retryably) with `message`.
pub struct Fail;

#[async_trait]
impl TaskHandler for Fail {
    fn kind(&self) -> &'static str {
        "system.fail"
    }

    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let FailPayload { message } = ctx.payload()?;
        Err(HandlerError::Retryable(
            message.unwrap_or_else(|| "system.fail always fails".to_owned()),
        ))
    }
}
