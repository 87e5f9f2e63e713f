//! Résumé parsing in a child process, so that a hostile file can hurt only
//! the attempt that reads it.
//!
//! The worker never runs the PDF/DOCX extractors itself. [`ParseRunner`]
//! starts a child — in production the worker's own binary with the hidden
//! `parse-child` subcommand (`std::env::current_exe()`), in tests any program
//! — writes the file to its stdin and reads the parse from its stdout:
//!
//! ```text
//! stdin:  "<filename as a JSON string>\n" followed by the file's bytes
//! stdout: {"ok": ParsedResume}  or  {"error": {"code": "...", "message": "..."}}
//! ```
//!
//! The child limits itself before it reads anything ([`run_child`]): address
//! space (`RLIMIT_AS`, `PARSE_MAX_MEMORY_MB`), CPU time (`RLIMIT_CPU`,
//! `PARSE_MAX_CPU_SECS`; the kernel sends `SIGXCPU`, then `SIGKILL` a second
//! later) and no core dumps. The parent bounds the wall clock (the attempt's
//! timeout), kills the child when the task is cancelled, and kills it
//! synchronously when the handler's future is dropped (the runtime's own
//! timeout or the drain), so no child works for a dead attempt. Whatever
//! ends the child — a crash, an abort, a signal, a limit — becomes one
//! [`ParseChildError`] with a one-line message; the worker carries on.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use resume_agent_resume::ParsedResume;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The hidden subcommand of the `resume-agent` binary that runs [`run_child`].
pub const SUBCOMMAND: &str = "parse-child";

/// Largest child output accepted (the parse JSON; the text inside it is
/// capped by the extractor at [`resume_agent_resume::MAX_TEXT_BYTES`]).
const MAX_OUTPUT_BYTES: usize = 32 * 1024 * 1024;
/// The tail of the child's stderr kept to explain a crash.
const STDERR_TAIL_BYTES: usize = 4096;
/// Longest file name line accepted on the child's stdin.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Hard limits the child sets on itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Address space of the child in MiB (`PARSE_MAX_MEMORY_MB`).
    pub max_memory_mb: u64,
    /// CPU seconds of the child (`PARSE_MAX_CPU_SECS`).
    pub max_cpu_secs: u64,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_memory_mb: 384,
            max_cpu_secs: 60,
        }
    }
}

/// Why a parse in a child failed. `Display` is one line, fit for a task's
/// error. Everything but [`ParseChildError::Spawn`] is permanent: the same
/// bytes would end the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseChildError {
    /// The parser rejected the file (corrupt, encrypted, empty, …): its own
    /// one-line message.
    #[error("{message}")]
    Rejected {
        /// The stable code (`corrupt`, `encrypted`, `too_large`, …).
        code: String,
        /// The message.
        message: String,
    },
    /// The child hit its address-space limit.
    #[error("the résumé parser ran out of memory (limit {0} MiB)")]
    OutOfMemory(u64),
    /// The child hit its CPU-time limit.
    #[error("the résumé parser used more than {0} s of CPU time and was stopped")]
    CpuTime(u64),
    /// The attempt's time ran out while the child was still parsing.
    #[error("the résumé parser was killed after {0} s (the attempt's time limit)")]
    WallClock(u64),
    /// The task was cancelled while the child was parsing.
    #[error("the résumé parser was stopped: the task was cancelled")]
    Cancelled,
    /// The child died some other way (signal, stack overflow, exit code).
    #[error("the résumé parser crashed on this file ({0})")]
    Crashed(String),
    /// The child answered something that is not the protocol.
    #[error("the résumé parser returned an invalid answer ({0})")]
    Protocol(String),
    /// The child could not be started (resources of the host): retryable.
    #[error("the résumé parser could not be started: {0}")]
    Spawn(String),
}

impl ParseChildError {
    /// Whether another attempt could succeed (only a failed start).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, ParseChildError::Spawn(_))
    }
}

/// The child's answer on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Ok(Box<ParsedResume>),
    Error { code: String, message: String },
}

/// Starts parse children: which program, with which leading arguments, and
/// the limits passed to it (`--max-memory-mb N --max-cpu-secs N`).
#[derive(Debug, Clone)]
pub struct ParseRunner {
    program: PathBuf,
    args: Vec<OsString>,
    limits: ParseLimits,
}

impl ParseRunner {
    /// A runner starting `program args… --max-memory-mb N --max-cpu-secs N`.
    /// Tests pass any program that speaks the protocol (or misbehaves).
    #[must_use]
    pub fn new(program: impl Into<PathBuf>, args: Vec<OsString>, limits: ParseLimits) -> Self {
        Self {
            program: program.into(),
            args,
            limits,
        }
    }

    /// The production runner: this very binary with the hidden
    /// [`SUBCOMMAND`].
    ///
    /// # Errors
    /// When the path of the running executable cannot be found.
    pub fn current_exe(limits: ParseLimits) -> std::io::Result<Self> {
        Ok(Self::new(
            std::env::current_exe()?,
            vec![SUBCOMMAND.into()],
            limits,
        ))
    }

    /// The limits given to every child.
    #[must_use]
    pub fn limits(&self) -> ParseLimits {
        self.limits
    }

    /// Parses `bytes` in a fresh child. The child is killed when `wall`
    /// elapses, when `cancel` fires, or when this future is dropped; in the
    /// first two cases it is also reaped before this returns.
    ///
    /// # Errors
    /// See [`ParseChildError`].
    pub async fn parse(
        &self,
        bytes: &[u8],
        filename: &str,
        wall: Duration,
        cancel: &CancellationToken,
    ) -> Result<ParsedResume, ParseChildError> {
        let mut input =
            serde_json::to_vec(filename).map_err(|e| ParseChildError::Protocol(e.to_string()))?;
        input.push(b'\n');
        input.extend_from_slice(bytes);

        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .arg("--max-memory-mb")
            .arg(self.limits.max_memory_mb.to_string())
            .arg("--max-cpu-secs")
            .arg(self.limits.max_cpu_secs.to_string())
            // The child needs nothing from the environment (and must not
            // see the worker's secrets).
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        let child = cmd
            .spawn()
            .map_err(|e| ParseChildError::Spawn(crate::one_line(&e.to_string())))?;
        tracing::debug!(
            pid = child.id(),
            bytes = bytes.len(),
            wall_ms = wall.as_millis(),
            "parse child started"
        );
        let mut child = KillOnDrop(child);
        let stdin = child.0.stdin.take();
        let stdout = child.0.stdout.take();
        let stderr = child.0.stderr.take();

        let exchange = async {
            let write = async move {
                if let Some(mut stdin) = stdin {
                    // A child that dies early closes the pipe: its exit
                    // status says why, not this write error.
                    let _ = stdin.write_all(&input).await;
                    let _ = stdin.shutdown().await;
                }
            };
            let (_, out, err) = tokio::join!(
                write,
                read_bounded(stdout, MAX_OUTPUT_BYTES),
                read_tail(stderr, STDERR_TAIL_BYTES)
            );
            if out.is_none() {
                // Too much output: stop it rather than wait for it.
                let _ = child.0.start_kill();
            }
            let status = child.0.wait().await;
            (out, err, status)
        };
        let ended = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(ParseChildError::Cancelled),
            () = tokio::time::sleep(wall) => Err(ParseChildError::WallClock(wall.as_secs().max(1))),
            r = exchange => Ok(r),
        };
        let (out, err, status) = match ended {
            Ok(r) => r,
            Err(e) => {
                // Kill and reap, so the attempt's slot is released only when
                // the child is gone.
                let _ = child.0.kill().await;
                return Err(e);
            }
        };
        let status = status.map_err(|e| ParseChildError::Crashed(e.to_string()))?;
        tracing::debug!(%status, output = out.as_ref().map(Vec::len), "parse child ended");
        let Some(out) = out else {
            return Err(ParseChildError::Protocol(format!(
                "more than {MAX_OUTPUT_BYTES} bytes of output"
            )));
        };
        if !status.success() {
            return Err(classify_exit(status, &err, self.limits));
        }
        match serde_json::from_slice::<Answer>(&out) {
            Ok(Answer::Ok(parsed)) => Ok(*parsed),
            Ok(Answer::Error { code, message }) => Err(ParseChildError::Rejected {
                code,
                message: crate::one_line(&message),
            }),
            Err(e) => Err(ParseChildError::Protocol(crate::one_line(&e.to_string()))),
        }
    }
}

/// Kills the child synchronously when dropped (`start_kill` sends SIGKILL
/// at once; tokio reaps it in the background). `kill_on_drop` does the same;
/// this makes the intent explicit and independent of that flag.
struct KillOnDrop(tokio::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Already exited and reaped → an error we do not care about.
        let _ = self.0.start_kill();
    }
}

/// Reads everything, or `None` when it is longer than `limit`.
async fn read_bounded<R: AsyncRead + Unpin>(reader: Option<R>, limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let Some(reader) = reader else {
        return Some(out);
    };
    let mut limited = reader.take(limit as u64 + 1);
    if limited.read_to_end(&mut out).await.is_err() {
        return Some(out);
    }
    (out.len() <= limit).then_some(out)
}

/// Reads to the end, keeping the last `keep` bytes.
async fn read_tail<R: AsyncRead + Unpin>(reader: Option<R>, keep: usize) -> String {
    let Some(mut reader) = reader else {
        return String::new();
    };
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > keep * 2 {
                    let cut = tail.len() - keep;
                    tail.drain(..cut);
                }
            }
        }
    }
    if tail.len() > keep {
        let cut = tail.len() - keep;
        tail.drain(..cut);
    }
    String::from_utf8_lossy(&tail).into_owned()
}

/// Turns a failed child's exit status and stderr into the error to show.
fn classify_exit(
    status: std::process::ExitStatus,
    stderr: &str,
    limits: ParseLimits,
) -> ParseChildError {
    use std::os::unix::process::ExitStatusExt;
    if stderr.contains("memory allocation of") || stderr.contains("capacity overflow") {
        return ParseChildError::OutOfMemory(limits.max_memory_mb);
    }
    if stderr.contains("has overflowed its stack") {
        return ParseChildError::Crashed("stack overflow".into());
    }
    match status.signal() {
        Some(SIGXCPU) => ParseChildError::CpuTime(limits.max_cpu_secs),
        Some(SIGKILL) => ParseChildError::Crashed(
            "killed by SIGKILL: the CPU limit's hard stop or the system's out-of-memory killer"
                .into(),
        ),
        Some(SIGABRT) => ParseChildError::Crashed(format!("aborted{}", last_line(stderr))),
        Some(SIGSEGV) => ParseChildError::Crashed("segmentation fault".into()),
        Some(sig) => ParseChildError::Crashed(format!("killed by signal {sig}")),
        None => ParseChildError::Crashed(format!(
            "exit status {}{}",
            status.code().unwrap_or(-1),
            last_line(stderr)
        )),
    }
}

const SIGABRT: i32 = 6;
const SIGKILL: i32 = 9;
const SIGSEGV: i32 = 11;
const SIGXCPU: i32 = 24;

/// `": <last non-empty stderr line>"`, shortened, or nothing.
fn last_line(stderr: &str) -> String {
    match stderr.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => {
            let line: String = line.chars().take(200).collect();
            format!(": {}", crate::one_line(&line))
        }
        None => String::new(),
    }
}

/// The hidden `parse-child` subcommand: limit this process, read the file
/// from stdin, write the answer to stdout. Runs no async runtime and opens
/// nothing else. Exit code 0 whenever an answer was written.
#[must_use]
pub fn run_child(limits: ParseLimits) -> ExitCode {
    if let Err(e) = apply_limits(limits) {
        eprintln!("parse-child: cannot set resource limits: {e}");
        return ExitCode::from(3);
    }
    let (filename, bytes) = match read_input(&mut std::io::stdin().lock()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("parse-child: bad input: {e}");
            return ExitCode::from(4);
        }
    };
    let answer =
        match std::panic::catch_unwind(|| resume_agent_resume::parse_file(&bytes, Some(&filename)))
        {
            Ok(Ok(parsed)) => Answer::Ok(Box::new(parsed)),
            Ok(Err(e)) => Answer::Error {
                code: e.code().to_owned(),
                message: e.to_string(),
            },
            Err(_) => Answer::Error {
                code: "crashed".to_owned(),
                message: "the résumé parser crashed on this file (internal error)".to_owned(),
            },
        };
    drop(bytes);
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, &answer)
        .map_err(std::io::Error::from)
        .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parse-child: cannot write the answer: {e}");
            ExitCode::from(5)
        }
    }
}

/// Sets the child's own limits (never above the hard limits it inherited).
fn apply_limits(limits: ParseLimits) -> std::io::Result<()> {
    use rlimit::Resource;
    let clamp = |resource: Resource, want: u64| -> std::io::Result<()> {
        let (_, hard) = rlimit::getrlimit(resource)?;
        let soft = want.min(hard);
        rlimit::setrlimit(resource, soft, hard.min(soft.saturating_add(1)).max(soft))
    };
    rlimit::setrlimit(Resource::CORE, 0, 0)?;
    // SIGXCPU at the soft limit, SIGKILL one second later.
    clamp(Resource::CPU, limits.max_cpu_secs.max(1))?;
    let bytes = limits.max_memory_mb.max(16).saturating_mul(1024 * 1024);
    let (_, hard) = rlimit::getrlimit(Resource::AS)?;
    let soft = bytes.min(hard);
    rlimit::setrlimit(Resource::AS, soft, soft)
}

/// Reads `"<filename JSON>"\n<bytes>` from `input`.
fn read_input(input: &mut impl Read) -> std::io::Result<(String, Vec<u8>)> {
    let mut all = Vec::new();
    let max = resume_agent_resume::MAX_INPUT_BYTES + MAX_HEADER_BYTES + 1;
    input.take(max as u64 + 1).read_to_end(&mut all)?;
    if all.len() > max {
        return Err(std::io::Error::other(
            "input larger than the parser accepts",
        ));
    }
    let newline = all
        .iter()
        .take(MAX_HEADER_BYTES)
        .position(|&b| b == b'\n')
        .ok_or_else(|| std::io::Error::other("no file name line"))?;
    let filename: String = serde_json::from_slice(&all[..newline])?;
    all.drain(..=newline);
    Ok((filename, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, limits: ParseLimits) -> ParseRunner {
        ParseRunner::new("/bin/sh", vec!["-c".into(), script.into()], limits)
    }

    async fn run(runner: &ParseRunner, wall: Duration) -> Result<ParsedResume, ParseChildError> {
        runner
            .parse(b"hello", "a.txt", wall, &CancellationToken::new())
            .await
    }

    #[test]
    fn input_framing_round_trips() {
        let mut framed = serde_json::to_vec("we\"ird\nname.pdf").unwrap_or_default();
        framed.push(b'\n');
        framed.extend_from_slice(b"%PDF\n\x00\x01");
        let (name, bytes) = read_input(&mut framed.as_slice()).expect("framed input");
        assert_eq!(name, "we\"ird\nname.pdf");
        assert_eq!(bytes, b"%PDF\n\x00\x01");
        assert!(read_input(&mut &b"no newline"[..]).is_err());
    }

    #[tokio::test]
    async fn answers_are_read() {
        let ok = sh(
            r#"cat >/dev/null; printf '{"ok":{"name":"Jane","links":{"websites":[]},"experience":[],"education":[],"skills":[],"projects":[],"certifications":[],"sections":[],"text":"Jane","word_count":1}}'"#,
            ParseLimits::default(),
        );
        let parsed = run(&ok, Duration::from_secs(10)).await.expect("ok answer");
        assert_eq!(parsed.name.as_deref(), Some("Jane"));

        let rejected = sh(
            r#"cat >/dev/null; printf '{"error":{"code":"corrupt","message":"bad\\nfile"}}'"#,
            ParseLimits::default(),
        );
        let e = run(&rejected, Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(e.to_string(), "bad file");
        assert!(!e.is_retryable());

        let garbage = sh("cat >/dev/null; echo nope", ParseLimits::default());
        assert!(matches!(
            run(&garbage, Duration::from_secs(10)).await,
            Err(ParseChildError::Protocol(_))
        ));
    }

    #[tokio::test]
    async fn crashes_and_limits_are_one_line_errors() {
        let limits = ParseLimits {
            max_memory_mb: 77,
            max_cpu_secs: 9,
        };
        let cases = [
            (
                "echo 'memory allocation of 99999 bytes failed' >&2; kill -ABRT $$",
                "the résumé parser ran out of memory (limit 77 MiB)",
            ),
            (
                "kill -XCPU $$",
                "the résumé parser used more than 9 s of CPU time and was stopped",
            ),
            (
                "kill -SEGV $$",
                "the résumé parser crashed on this file (segmentation fault)",
            ),
            (
                "echo \"thread 'main' has overflowed its stack\" >&2; kill -ABRT $$",
                "the résumé parser crashed on this file (stack overflow)",
            ),
            (
                "echo first >&2; echo 'last words' >&2; exit 7",
                "the résumé parser crashed on this file (exit status 7: last words)",
            ),
        ];
        for (script, message) in cases {
            let e = run(&sh(script, limits), Duration::from_secs(10))
                .await
                .unwrap_err();
            assert_eq!(e.to_string(), message, "{script}");
            assert!(!e.to_string().contains('\n'));
        }
        let missing = ParseRunner::new("/nonexistent/parse-child", vec![], limits);
        let e = run(&missing, Duration::from_secs(10)).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
    }

    #[tokio::test]
    async fn too_much_output_is_refused() {
        let chatty = sh("cat >/dev/null; exec cat /dev/zero", ParseLimits::default());
        assert!(matches!(
            run(&chatty, Duration::from_secs(30)).await,
            Err(ParseChildError::Protocol(_))
        ));
    }

    /// The child's pid, written by the script to `file`, then it hangs.
    fn hanging(file: &std::path::Path) -> ParseRunner {
        sh(
            &format!("echo $$ > {}; exec sleep 600", file.display()),
            ParseLimits::default(),
        )
    }

    fn pid_in(file: &std::path::Path) -> Option<u32> {
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// Alive and not a zombie.
    fn running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    async fn wait_for(mut cond: impl FnMut() -> bool, deadline: Duration) -> bool {
        let end = tokio::time::Instant::now() + deadline;
        while tokio::time::Instant::now() < end {
            if cond() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cond()
    }

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("parse-child-{}-{name}", std::process::id()))
    }

    #[tokio::test]
    async fn timeout_kills_and_reaps_the_child() {
        let file = temp("timeout");
        let _ = std::fs::remove_file(&file);
        let e = run(&hanging(&file), Duration::from_millis(500))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the résumé parser was killed after 1 s (the attempt's time limit)"
        );
        let pid = pid_in(&file).expect("the child wrote its pid");
        // Reaped before `parse` returned: no such process at all.
        assert!(!running(pid), "child {pid} still running");
        let _ = std::fs::remove_file(&file);
    }

    #[tokio::test]
    async fn cancel_and_drop_kill_the_child() {
        let file = temp("cancel");
        let _ = std::fs::remove_file(&file);
        let runner = hanging(&file);
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let f = file.clone();
        let canceller = tokio::spawn(async move {
            wait_for(|| pid_in(&f).is_some(), Duration::from_secs(10)).await;
            c.cancel();
        });
        let e = runner
            .parse(b"x", "x.txt", Duration::from_secs(600), &cancel)
            .await
            .unwrap_err();
        assert_eq!(e, ParseChildError::Cancelled);
        let _ = canceller.await;
        let pid = pid_in(&file).expect("pid");
        assert!(!running(pid));

        // Dropped future (the runtime's timeout): killed synchronously.
        let _ = std::fs::remove_file(&file);
        let never = CancellationToken::new();
        let f = file.clone();
        let fut = runner.parse(b"x", "x.txt", Duration::from_secs(600), &never);
        let dropped = tokio::time::timeout(Duration::from_secs(10), async move {
            tokio::select! {
                _ = fut => {},
                () = async { wait_for(|| pid_in(&f).is_some(), Duration::from_secs(10)).await; } => {},
            }
        })
        .await;
        assert!(dropped.is_ok());
        let pid = pid_in(&file).expect("pid");
        assert!(
            wait_for(|| !running(pid), Duration::from_secs(1)).await,
            "child {pid} alive 1 s after the future was dropped"
        );
        let _ = std::fs::remove_file(&file);
    }
}
