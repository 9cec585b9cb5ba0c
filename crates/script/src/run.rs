//! The state of the script running now, readable without the VM lock.
//!
//! Problem: while a script runs it holds the VM lock (and its shards), yet other connections
//! must learn that it is *busy* (past `busy-reply-threshold`: they get `-BUSY`) and SCRIPT KILL /
//! FUNCTION KILL must reach it. Redis does both from its single thread between hook calls; here
//! they are atomics: the running script's count hook ([`RunState::tick`]) publishes "busy" and
//! reads "killed".
//!
//! Fields: `running`, `function`, `started` are written by the thread running the script
//! (under the VM lock) before the first Lua instruction and cleared after the last; `wrote` by
//! that thread before it runs its first write command; `kill` by any thread (SCRIPT KILL) and
//! cleared by the next script's start; `busy` by the hook.

use std::time::Instant;

use forkless_sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::out::Out;

/// `-BUSY` for an EVAL script.
pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// `-BUSY` for a function.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// See the module docs.
#[derive(Debug)]
pub struct RunState {
    base: Instant,
    running: AtomicBool,
    function: AtomicBool,
    started_us: AtomicU64,
    wrote: AtomicBool,
    kill: AtomicBool,
    busy: AtomicBool,
    /// `busy-reply-threshold` in ms (0: never busy).
    threshold_ms: AtomicU64,
}

impl RunState {
    /// No script running; threshold `threshold_ms`.
    pub fn new(threshold_ms: u64) -> RunState {
        RunState {
            base: Instant::now(),
            running: AtomicBool::new(false),
            function: AtomicBool::new(false),
            started_us: AtomicU64::new(0),
            wrote: AtomicBool::new(false),
            kill: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            threshold_ms: AtomicU64::new(threshold_ms),
        }
    }

    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    /// Set `busy-reply-threshold` (ms, 0 = never).
    pub fn set_threshold_ms(&self, ms: u64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
    }

    /// The threshold in force.
    pub fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    /// A script (or function) starts.
    pub fn start(&self, function: bool) {
        self.kill.store(false, Ordering::Relaxed);
        self.busy.store(false, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
        self.function.store(function, Ordering::Relaxed);
        self.started_us.store(self.now_us(), Ordering::Relaxed);
        self.running.store(true, Ordering::Release);
    }

    /// The script ended.
    pub fn finish(&self) {
        self.running.store(false, Ordering::Release);
        self.busy.store(false, Ordering::Release);
        self.kill.store(false, Ordering::Relaxed);
    }

    /// The script is about to run its first write command.
    pub fn mark_wrote(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// Called by the count hook: publish "busy" once past the threshold; true when the script
    /// must stop (killed).
    pub fn tick(&self) -> bool {
        let t = self.threshold_ms();
        if t > 0 && !self.busy.load(Ordering::Relaxed) {
            let elapsed_ms = (self.now_us() - self.started_us.load(Ordering::Relaxed)) / 1000;
            if elapsed_ms >= t {
                self.busy.store(true, Ordering::Release);
            }
        }
        self.kill.load(Ordering::Relaxed)
    }

    /// The `-BUSY` error other clients get while a script runs past the threshold, if one does.
    pub fn busy_error(&self) -> Option<&'static str> {
        if self.running.load(Ordering::Acquire) && self.busy.load(Ordering::Acquire) {
            Some(if self.function.load(Ordering::Relaxed) {
                BUSY_FUNCTION
            } else {
                BUSY_EVAL
            })
        } else {
            None
        }
    }

    /// SCRIPT KILL (`function` = false) or FUNCTION KILL (true), as Redis's `scriptKill`.
    pub fn kill(&self, function: bool) -> Out {
        if !self.running.load(Ordering::Acquire) {
            return Out::err("NOTBUSY No scripts in execution right now.");
        }
        if self.wrote.load(Ordering::Relaxed) {
            return Out::err(
                "UNKILLABLE Sorry the script already executed write commands against the \
                 dataset. You can either wait the script termination or kill the server in a \
                 hard way using the SHUTDOWN NOSAVE command.",
            );
        }
        let running_function = self.function.load(Ordering::Relaxed);
        if !function && running_function {
            return Out::err(BUSY_FUNCTION);
        }
        if function && !running_function {
            return Out::err(BUSY_EVAL);
        }
        self.kill.store(true, Ordering::Release);
        Out::ok()
    }
}
