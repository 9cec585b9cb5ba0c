//! The `everysec` fsync thread (Redis's `bio` fsync job): it fsyncs the current file through its
//! [`SyncHandle`](crate::io::SyncHandle) while the writer thread goes on writing, so a slow disk
//! delays writes only up to `max_postpone` (see `thread`).
//!
//! Hand-off: the writer thread sets `sync_in_progress` and `sync_request` (the `written` offset
//! the fsync will cover) and unparks this thread; it takes the request, fsyncs with only the
//! `sync_slot` lock held, then under `state` clears `sync_in_progress`, raises `durable` to the
//! request (never past `written`: the request was read from it) and unparks the writer. It stops
//! once the writer is closed and no request is left.

use std::time::Duration;

use forkless_sync::thread;

use super::state::{now_unix_ms, record_error, ErrKind, Shared};

/// The fsync thread's body.
pub(super) fn syncer_loop(shared: &Shared) {
    loop {
        let target = {
            let mut st = shared.state.lock();
            match st.sync_request.take() {
                Some(t) => t,
                None if st.closed => return,
                None => {
                    drop(st);
                    thread::park_timeout(Duration::from_millis(200));
                    continue;
                }
            }
        };
        let r = match shared.sync_slot.lock().as_mut() {
            Some(h) => h.sync(),
            None => Ok(()),
        };
        let mut st = shared.state.lock();
        st.sync_in_progress = None;
        match r {
            Ok(()) => {
                st.durable = st.durable.max(target);
                st.metrics.fsyncs += 1;
                st.metrics.last_fsync_unix_ms = Some(now_unix_ms());
                st.clear(ErrKind::Sync);
                shared.changed.notify_all();
            }
            Err(e) => {
                let file = st.current_file.clone();
                record_error(
                    shared,
                    &mut st,
                    ErrKind::Sync,
                    format!("fsync of {file} failed: {e}"),
                );
            }
        }
        drop(st);
        shared.wake_writer();
    }
}
