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
//!
//! `wrote` and `kill` are one atomic, `fate` (CLEAN → WROTE or CLEAN → KILLED, each by a
//! compare-and-swap): a SCRIPT KILL racing the script's first write either wins (the write is
//! refused, the script stops at its next hook, nothing was written) or loses (UNKILLABLE).
//! Two flags read then set would let both win: a killed script that had written.

use std::time::Instant;

use forkless_sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use forkless_sync::Mutex;

use crate::out::Out;

/// `-BUSY` for an EVAL script.
pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// `-BUSY` for a function.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

const FATE_CLEAN: u8 = 0;
const FATE_WROTE: u8 = 1;
const FATE_KILLED: u8 = 2;

/// See the module docs.
#[derive(Debug)]
pub struct RunState {
    base: Instant,
    running: AtomicBool,
    function: AtomicBool,
    started_us: AtomicU64,
    /// FATE_CLEAN, FATE_WROTE or FATE_KILLED; see the module docs.
    fate: AtomicU8,
    /// SHUTDOWN NOSAVE: stop the running script (and any later one) even if it wrote; its
    /// effects are dropped. Never cleared.
    abort: AtomicBool,
    busy: AtomicBool,
    /// `busy-reply-threshold` in ms (0: never busy).
    threshold_ms: AtomicU64,
    /// The running script's name and command (FUNCTION STATS); a leaf lock.
    current: Mutex<Option<(String, Vec<Vec<u8>>)>>,
    /// Libraries and functions loaded (FUNCTION STATS without the VM lock).
    libraries: AtomicU64,
    functions: AtomicU64,
    /// `DEBUG set-disable-deny-scripts`: scripts may call deny-script (`CMD_NOSCRIPT`)
    /// commands the host serves.
    deny_disabled: AtomicBool,
}

impl RunState {
    /// No script running; threshold `threshold_ms`.
    pub fn new(threshold_ms: u64) -> RunState {
        RunState {
            base: Instant::now(),
            running: AtomicBool::new(false),
            function: AtomicBool::new(false),
            started_us: AtomicU64::new(0),
            fate: AtomicU8::new(FATE_CLEAN),
            abort: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            threshold_ms: AtomicU64::new(threshold_ms),
            current: Mutex::new(None),
            libraries: AtomicU64::new(0),
            functions: AtomicU64::new(0),
            deny_disabled: AtomicBool::new(false),
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

    /// `DEBUG set-disable-deny-scripts <0|1>` (Redis's `script_disable_deny_script`).
    pub fn set_deny_disabled(&self, on: bool) {
        self.deny_disabled.store(on, Ordering::Relaxed);
    }

    /// True while scripts may call deny-script commands.
    pub fn deny_disabled(&self) -> bool {
        self.deny_disabled.load(Ordering::Relaxed)
    }

    /// A script (or function) starts.
    pub fn start(&self, function: bool) {
        crate::set_final_error_counted(false);
        self.fate.store(FATE_CLEAN, Ordering::Relaxed);
        self.busy.store(false, Ordering::Relaxed);
        self.function.store(function, Ordering::Relaxed);
        self.started_us.store(self.now_us(), Ordering::Relaxed);
        self.running.store(true, Ordering::Release);
    }

    /// Record what runs (name, command) for FUNCTION STATS.
    pub fn set_current(&self, name: &str, argv: &[&[u8]]) {
        *self.current.lock() = Some((name.to_string(), argv.iter().map(|a| a.to_vec()).collect()));
    }

    /// Publish the number of libraries and functions loaded.
    pub fn set_counts(&self, libraries: usize, functions: usize) {
        self.libraries.store(libraries as u64, Ordering::Relaxed);
        self.functions.store(functions as u64, Ordering::Relaxed);
    }

    /// FUNCTION STATS (Redis 7.0's reply), answered without the VM lock.
    pub fn stats(&self) -> Out {
        let running = if self.running.load(Ordering::Acquire) {
            match self.current.lock().clone() {
                Some((name, argv)) => {
                    let ms = (self.now_us() - self.started_us.load(Ordering::Relaxed)) / 1000;
                    Out::Map(vec![
                        (Out::Bulk(b"name".to_vec()), Out::Bulk(name.into_bytes())),
                        (
                            Out::Bulk(b"command".to_vec()),
                            Out::Array(argv.into_iter().map(Out::Bulk).collect()),
                        ),
                        (Out::Bulk(b"duration_ms".to_vec()), Out::Int(ms as i64)),
                    ])
                }
                None => Out::Null,
            }
        } else {
            Out::Null
        };
        Out::Map(vec![
            (Out::Bulk(b"running_script".to_vec()), running),
            (
                Out::Bulk(b"engines".to_vec()),
                Out::Map(vec![(
                    Out::Bulk(b"LUA".to_vec()),
                    Out::Map(vec![
                        (
                            Out::Bulk(b"libraries_count".to_vec()),
                            Out::Int(self.libraries.load(Ordering::Relaxed) as i64),
                        ),
                        (
                            Out::Bulk(b"functions_count".to_vec()),
                            Out::Int(self.functions.load(Ordering::Relaxed) as i64),
                        ),
                    ]),
                )]),
            ),
        ])
    }

    /// The script ended.
    pub fn finish(&self) {
        *self.current.lock() = None;
        self.running.store(false, Ordering::Release);
        self.busy.store(false, Ordering::Release);
        self.fate.store(FATE_CLEAN, Ordering::Relaxed);
    }

    /// The script is about to run a write command: false when it was killed first, and then
    /// the write must not run.
    pub fn mark_wrote(&self) -> bool {
        match self.fate.compare_exchange(
            FATE_CLEAN,
            FATE_WROTE,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => true,
            Err(fate) => fate == FATE_WROTE,
        }
    }

    /// Called by the count hook: publish "busy" once past the threshold; true when the script
    /// must stop (killed).
    pub fn tick(&self) -> bool {
        // As Redis's `scriptInterrupt`: busy once `elapsed >= busy-reply-threshold`, so a
        // threshold of 0 makes every script busy at its first hook.
        let t = self.threshold_ms();
        if !self.busy.load(Ordering::Relaxed) {
            let elapsed_ms = (self.now_us() - self.started_us.load(Ordering::Relaxed)) / 1000;
            if elapsed_ms >= t {
                self.busy.store(true, Ordering::Release);
            }
        }
        self.killed()
    }

    /// True once the running script was killed (SCRIPT KILL, FUNCTION KILL, SHUTDOWN NOSAVE).
    pub fn killed(&self) -> bool {
        self.fate.load(Ordering::Relaxed) == FATE_KILLED || self.abort.load(Ordering::Relaxed)
    }

    /// SHUTDOWN NOSAVE while a script runs (Redis exits without waiting for it): stop the
    /// running script at its next hook, even if it wrote, and every later one; the unit drops
    /// their effects, so the log never sees a partial script.
    pub fn abort(&self) {
        self.abort.store(true, Ordering::Release);
    }

    /// True once [`RunState::abort`] was called.
    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Acquire)
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
    ///
    /// Only a script past `busy-reply-threshold` can be killed: Redis serves other clients
    /// during a script only from then on, so a SCRIPT KILL never meets a younger one there.
    /// Here connections run beside the script, and a kill that landed before the script's
    /// first write would make a script that writes at once killable; a script under the
    /// threshold answers NOTBUSY instead (Redis would hold the request until the threshold).
    pub fn kill(&self, function: bool) -> Out {
        if !self.running.load(Ordering::Acquire) || !self.busy.load(Ordering::Acquire) {
            return Out::err("NOTBUSY No scripts in execution right now.");
        }
        const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands \
             against the dataset. You can either wait the script termination or kill the server \
             in a hard way using the SHUTDOWN NOSAVE command.";
        // Redis's order: UNKILLABLE before the EVAL/function mismatch.
        if self.fate.load(Ordering::Acquire) == FATE_WROTE {
            return Out::err(UNKILLABLE);
        }
        let running_function = self.function.load(Ordering::Relaxed);
        if !function && running_function {
            return Out::err(BUSY_FUNCTION);
        }
        if function && !running_function {
            return Out::err(BUSY_EVAL);
        }
        let won = self.fate.compare_exchange(
            FATE_CLEAN,
            FATE_KILLED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if won == Err(FATE_WROTE) {
            return Out::err(UNKILLABLE);
        }
        Out::ok()
    }
}
