//! Durability tickets: what a write under `appendfsync always` waits for.
//!
//! [`Durability::wait`] blocks on the log writer's group commit; as a `Future` it registers its
//! waker with the engine's notifier thread, which waits (no lock held) for the highest pending
//! ticket and wakes every task at or below it, in log order. No async runtime is assumed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use forkless_sync::thread;
use forkless_sync::Arc;

use crate::engine::{misconf_aof, Core};
use crate::error::{Error, Result};

/// What the notifier knows, for the writer of generation `gen` (`crate::logslot`): tickets are
/// offsets of one writer, so `acked` and `failed` restart when the writer changes.
#[derive(Default)]
pub(crate) struct AckState {
    pub(crate) gen: u64,
    pub(crate) acked: u64,
    pub(crate) failed: Option<(u64, String)>,
    /// (generation, ticket, task).
    pub(crate) waiters: Vec<(u64, u64, Waker)>,
    pub(crate) stop: bool,
}

/// The durability of one write: resolves once the fsync policy is met (under `appendfsync
/// always`: the write's log bytes are fsynced; otherwise at once). Wait with
/// [`Durability::wait`] (blocking) or `.await` it (a `Future`, runtime-independent: a thread of
/// the engine waits for the writer and wakes the task).
#[must_use = "a write under appendfsync always is not durable until its Durability resolves"]
#[derive(Clone)]
pub struct Durability {
    /// (engine, generation of the writer, ticket).
    pub(crate) pending: Option<(Arc<Core>, u64, u64)>,
    pub(crate) error: Option<String>,
}

impl std::fmt::Debug for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durability")
            .field("ticket", &self.pending.as_ref().map(|p| p.2))
            .field("error", &self.error)
            .finish()
    }
}

impl Durability {
    pub(crate) fn ready() -> Durability {
        Durability {
            pending: None,
            error: None,
        }
    }

    /// True when there is nothing to wait for.
    pub fn is_ready(&self) -> bool {
        self.pending.is_none()
    }

    /// The log offset to wait for, if any.
    pub fn ticket(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.2)
    }

    /// Block until durable. `Err(Misconf)` when the write could not be made durable,
    /// `Err(Closed)` when the engine shut down before it was logged.
    pub fn wait(self) -> Result<()> {
        if let Some(e) = self.error {
            return Err(failure(e));
        }
        match &self.pending {
            None => Ok(()),
            Some((core, gen, t)) => wait_on(core, *gen, *t),
        }
    }
}

/// Block until ticket `t` of the writer of generation `gen` is durable. A writer that is no
/// longer known was closed (flushed and fsynced) two switches ago.
fn wait_on(core: &Core, gen: u64, t: u64) -> Result<()> {
    match core.log.writer_of(gen) {
        Some(w) => w.wait(t).map_err(|e| {
            if core.is_closed() {
                Error::Closed
            } else {
                Error::Misconf(misconf_aof(&e))
            }
        }),
        None => Ok(()),
    }
}

/// The text a write gets when the engine closed under it.
pub(crate) const CLOSED: &str = "ERR the forkless engine is shut down";

fn failure(msg: String) -> Error {
    if msg == CLOSED {
        Error::Closed
    } else {
        Error::Misconf(msg)
    }
}

impl Future for Durability {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.error.take() {
            return Poll::Ready(Err(failure(e)));
        }
        let Some((core, gen, t)) = &this.pending else {
            return Poll::Ready(Ok(()));
        };
        let mut st = core.acks.lock();
        if *gen < st.gen {
            // A writer replaced since (`CONFIG SET appendonly`): it was closed, flushing and
            // fsyncing everything, or is being closed; its answer comes at once.
            drop(st);
            return Poll::Ready(wait_on(core, *gen, *t));
        }
        // (A ticket newer than the notifier's generation waits for the notifier to catch up:
        // `acked` and `failed` still describe the previous writer.)
        if *gen == st.gen {
            if st.acked >= *t {
                return Poll::Ready(Ok(()));
            }
            if let Some((upto, e)) = &st.failed {
                if *t <= *upto {
                    return Poll::Ready(Err(Error::Misconf(misconf_aof(e))));
                }
            }
        }
        if st.stop {
            return Poll::Ready(Err(Error::Closed));
        }
        st.waiters.push((*gen, *t, cx.waker().clone()));
        drop(st);
        if let Some(n) = core.notifier.lock().as_ref() {
            n.unpark();
        }
        Poll::Pending
    }
}

/// The durability notifier: waits (with no lock held) for the writer to make the highest
/// pending ticket durable, then wakes every task waiting for a ticket at or below it.
pub(crate) fn notifier(core: Arc<Core>) {
    loop {
        let (gen, writer) = core.log.current();
        let target = {
            let mut st = core.acks.lock();
            if st.stop {
                break;
            }
            if st.gen != gen {
                // The writer changed: its tickets start over; waiters of older writers are
                // woken and resolve on their own writer (`Durability::poll`).
                st.gen = gen;
                st.acked = 0;
                st.failed = None;
                let old: Vec<Waker> = st
                    .waiters
                    .iter()
                    .filter(|w| w.0 < gen)
                    .map(|w| w.2.clone())
                    .collect();
                st.waiters.retain(|w| w.0 >= gen);
                drop(st);
                old.into_iter().for_each(Waker::wake);
                continue;
            }
            st.waiters.iter().filter(|w| w.0 == gen).map(|w| w.1).max()
        };
        let (Some(t), Some(writer)) = (target, writer) else {
            thread::park_timeout(Duration::from_millis(100));
            continue;
        };
        let r = writer.wait(t);
        let mut st = core.acks.lock();
        if st.gen != gen {
            continue;
        }
        match r {
            Ok(()) => st.acked = st.acked.max(t),
            Err(e) => st.failed = Some((t, e.to_string())),
        }
        let mut wake = Vec::new();
        st.waiters.retain(|(g, tk, w)| {
            if *g == gen && *tk <= t {
                wake.push(w.clone());
                false
            } else {
                true
            }
        });
        drop(st);
        for w in wake {
            w.wake();
        }
    }
    let waiters = std::mem::take(&mut core.acks.lock().waiters);
    for (_, _, w) in waiters {
        w.wake();
    }
}
