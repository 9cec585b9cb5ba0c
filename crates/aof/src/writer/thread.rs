//! The writer thread: the only code that writes to the incr file and creates the next one.
//!
//! One turn of its loop, every step under a short `state` lock and the I/O outside it:
//! 1. **take** ([`Local::take`]): move queued bytes to `pending`, up to a rotation marker; decide
//!    whether to write now (not during an error's retry delay; under `everysec`, postponed behind
//!    a running background fsync for at most `max_postpone`);
//! 2. **write** ([`Local::write`]): one write call; on an error keep what was not written and
//!    resume at the file's length, so the file never holds a gap; `written` grows;
//! 3. **fsync per policy** ([`Local::sync_per_policy`]): `always` (or a forced sync) here, or
//!    hand an `everysec` fsync to the `syncer` thread;
//! 4. **rotate** ([`Local::rotate`]): once everything before the marker is written, sync the old
//!    file, report it to the storage, create the new one and continue there;
//! 5. **sleep or exit** ([`Local::idle`]): park until there is something to do, or, shut down
//!    and drained, sync what is left, mark the writer closed and return.

use std::time::{Duration, Instant};

use forkless_sync::thread;

use super::options::FsyncPolicy;
use super::state::{now_unix_ms, record_error, unpark, Chunk, ErrKind, Shared};
use crate::io::{AofIo, AofStorage};

/// Sync the current file on the writer thread; updates `durable` on success.
fn sync_here(shared: &Shared, io: &mut dyn AofIo, file: &str) -> bool {
    let target = shared.state.lock().written;
    let r = io.sync();
    let mut st = shared.state.lock();
    match r {
        Ok(()) => {
            st.durable = st.durable.max(target);
            st.metrics.fsyncs += 1;
            st.metrics.last_fsync_unix_ms = Some(now_unix_ms());
            st.clear(ErrKind::Sync);
            shared.changed.notify_all();
            true
        }
        Err(e) => {
            record_error(
                shared,
                &mut st,
                ErrKind::Sync,
                format!("fsync of {file} failed: {e}"),
            );
            false
        }
    }
}

/// What step 1 decided for this turn.
struct Turn {
    /// Write `pending` now.
    write: bool,
    /// The file being appended to (for error messages).
    file: String,
    /// Shutdown was requested.
    shutdown: bool,
}

/// The writer thread's private state.
struct Local {
    io: Box<dyn AofIo>,
    storage: Box<dyn AofStorage>,
    /// Bytes taken from the queue, not yet written (still counted in `queued_bytes`).
    pending: Vec<u8>,
    /// A rotation marker met after `pending`.
    rotate: Option<(String, i64)>,
    /// No I/O before this instant (after an error).
    next_retry: Option<Instant>,
    last_sync_start: Instant,
    /// A write, fsync or file creation failed after shutdown was requested: give up.
    failed_in_shutdown: bool,
}

/// The writer thread's body.
pub(super) fn writer_loop(shared: &Shared, io: Box<dyn AofIo>, storage: Box<dyn AofStorage>) {
    let mut l = Local {
        io,
        storage,
        pending: Vec::new(),
        rotate: None,
        next_retry: None,
        last_sync_start: Instant::now(),
        failed_in_shutdown: false,
    };
    loop {
        let Some(turn) = l.take(shared) else {
            return;
        };
        if turn.write {
            l.write(shared, &turn.file);
        }
        let retry_ok = l.next_retry.is_none_or(|t| Instant::now() >= t)
            || (turn.shutdown && !l.failed_in_shutdown);
        l.sync_per_policy(shared, &turn.file, retry_ok);
        if l.pending.is_empty() && retry_ok && l.rotate(shared, &turn.file) {
            continue;
        }
        match l.idle(shared, &turn.file) {
            None => return,
            Some(d) if !d.is_zero() => thread::park_timeout(d),
            Some(_) => {}
        }
    }
}

impl Local {
    fn failed(&mut self, shared: &Shared) {
        self.next_retry = Some(Instant::now() + shared.opts.retry_interval);
        if shared.state.lock().shutdown {
            self.failed_in_shutdown = true;
        }
    }

    /// Step 1: take what is queued; decide whether to write now. `None`: the disk did not
    /// recover while shutting down; the writer is closed and the thread must stop (`close()`
    /// reports the error).
    fn take(&mut self, shared: &Shared) -> Option<Turn> {
        let mut st = shared.state.lock();
        st.writer_idle = false;
        // Linger (`WriterOptions::linger`): let the appends of the next moment join these in
        // one write. Not under `always`, nor when a flush, a rotation or shutdown waits; those
        // wake this thread, which ends the linger early.
        let linger = shared.opts.linger;
        if !linger.is_zero()
            && !st.queue.is_empty()
            && shared.policy() != FsyncPolicy::Always
            && !st.shutdown
            && st.force_sync <= st.written
            && self.rotate.is_none()
        {
            drop(st);
            thread::park_timeout(linger);
            st = shared.state.lock();
        }
        let now = Instant::now();
        // Chunks are moved out under the lock and copied into `pending` after it (a large
        // value is never copied, nor its buffer freed, under `state`).
        let mut taken = Vec::new();
        while self.rotate.is_none() {
            match st.queue.pop_front() {
                Some(Chunk::Data(b)) => taken.push(b),
                Some(Chunk::Rotate { name, seq }) => self.rotate = Some((name, seq)),
                None => break,
            }
        }
        let retry_ok =
            self.next_retry.is_none_or(|t| now >= t) || (st.shutdown && !self.failed_in_shutdown);
        let has_data = !self.pending.is_empty() || taken.iter().any(|b| !b.is_empty());
        let mut w = has_data && retry_ok;
        if w && shared.policy() == FsyncPolicy::EverySec
            && st.sync_in_progress.is_some()
            && !st.shutdown
        {
            match st.postponed_since {
                None => {
                    st.postponed_since = Some(now);
                    w = false;
                }
                Some(t) if now.duration_since(t) < shared.opts.max_postpone => w = false,
                Some(_) => {
                    st.metrics.delayed_fsyncs += 1;
                    st.postponed_since = None;
                }
            }
        } else if w {
            st.postponed_since = None;
        }
        if st.shutdown && self.failed_in_shutdown {
            st.closed = true;
            shared.changed.notify_all();
            drop(st);
            unpark(&shared.syncer);
            return None;
        }
        let turn = Turn {
            write: w,
            file: st.current_file.clone(),
            shutdown: st.shutdown,
        };
        drop(st);
        for b in taken {
            self.pending.extend_from_slice(&b);
        }
        Some(turn)
    }

    /// Step 2: write `pending`; after a partial write keep the rest, counted from the file's
    /// length.
    fn write(&mut self, shared: &Shared, file: &str) {
        let before = self.io.len().unwrap_or(0);
        let r = self.io.write(&self.pending);
        let mut st = shared.state.lock();
        let done = match &r {
            Ok(()) => self.pending.len(),
            Err(_) => self
                .io
                .len()
                .map_or(0, |n| n.saturating_sub(before))
                .min(self.pending.len() as u64) as usize,
        };
        self.pending.drain(..done);
        st.written += done as u64;
        st.queued_bytes -= done;
        st.metrics.bytes_written += done as u64;
        match r {
            Ok(()) => {
                st.clear(ErrKind::Write);
                self.next_retry = None;
                shared.changed.notify_all();
            }
            Err(e) => {
                record_error(
                    shared,
                    &mut st,
                    ErrKind::Write,
                    format!("write to {file} failed: {e}"),
                );
                drop(st);
                self.failed(shared);
            }
        }
    }

    /// Step 3: fsync here under `always` or when forced, or start a background fsync when the
    /// `everysec` interval has passed.
    fn sync_per_policy(&mut self, shared: &Shared, file: &str, retry_ok: bool) {
        let (written, durable, force, sync_busy, write_err) = {
            let st = shared.state.lock();
            let we = st.error.as_ref().is_some_and(|e| e.0 == ErrKind::Write);
            (
                st.written,
                st.durable,
                st.force_sync,
                st.sync_in_progress.is_some(),
                we,
            )
        };
        let forced = force > durable && self.pending.is_empty() && !sync_busy;
        if written > durable
            && retry_ok
            && !write_err
            && (shared.policy() == FsyncPolicy::Always || forced)
        {
            if !sync_here(shared, self.io.as_mut(), file) {
                self.failed(shared);
            }
        } else if shared.policy() == FsyncPolicy::EverySec
            && written > durable
            && self.last_sync_start.elapsed() >= shared.opts.fsync_interval
        {
            let mut st = shared.state.lock();
            if st.sync_in_progress.is_none() {
                st.sync_in_progress = Some(Instant::now());
                st.sync_request = Some(written);
                self.last_sync_start = Instant::now();
                drop(st);
                unpark(&shared.syncer);
            }
        }
    }

    /// Step 4 (called once everything before the marker is written): switch files at a pending
    /// rotation marker. True when the new file is open (the loop takes its next turn at once).
    fn rotate(&mut self, shared: &Shared, file: &str) -> bool {
        let Some((name, seq)) = self.rotate.clone() else {
            return false;
        };
        while shared.state.lock().sync_in_progress.is_some() {
            thread::park_timeout(Duration::from_millis(1));
        }
        if !sync_here(shared, self.io.as_mut(), file) {
            self.failed(shared);
            return false;
        }
        let closing_seq = shared.state.lock().current_seq;
        if let Ok(len) = self.io.len() {
            self.storage.closing(closing_seq, len, self.io.crc64());
        }
        let opened = self
            .storage
            .open_incr(&name, seq)
            .and_then(|io| Ok((io.sync_handle()?, io)));
        match opened {
            Ok((h, io)) => {
                *shared.sync_slot.lock() = Some(h);
                self.io = io;
                self.rotate = None;
                let mut st = shared.state.lock();
                st.current_seq = seq;
                st.current_file = name;
                st.clear(ErrKind::Rotate);
                shared.changed.notify_all();
                true
            }
            Err(e) => {
                let mut st = shared.state.lock();
                record_error(
                    shared,
                    &mut st,
                    ErrKind::Rotate,
                    format!("creating {name} failed: {e}"),
                );
                drop(st);
                self.failed(shared);
                false
            }
        }
    }

    /// Step 5: how long to sleep, or `None` after closing the writer (shut down and drained:
    /// what is written but not durable is synced first).
    fn idle(&mut self, shared: &Shared, file: &str) -> Option<Duration> {
        let mut st = shared.state.lock();
        let idle = st.queue.is_empty() && self.pending.is_empty() && self.rotate.is_none();
        if st.shutdown && idle && st.sync_in_progress.is_none() {
            let unsynced = st.written > st.durable;
            drop(st);
            if unsynced {
                sync_here(shared, self.io.as_mut(), file);
            }
            let mut st = shared.state.lock();
            st.closed = true;
            shared.changed.notify_all();
            drop(st);
            unpark(&shared.syncer);
            return None;
        }
        let d = if st.shutdown && !self.failed_in_shutdown {
            Duration::from_millis(1)
        } else if !st.queue.is_empty() && self.rotate.is_none() {
            Duration::ZERO
        } else if let Some(t) = self.next_retry {
            t.saturating_duration_since(Instant::now())
        } else if !self.pending.is_empty() {
            Duration::from_millis(5)
        } else if shared.policy() == FsyncPolicy::EverySec && st.written > st.durable {
            shared
                .opts
                .fsync_interval
                .saturating_sub(self.last_sync_start.elapsed())
                .max(Duration::from_millis(1))
        } else if st.force_sync > st.durable {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(500)
        };
        // Parked with nothing queued: the next append wakes this thread.
        if !d.is_zero() && st.queue.is_empty() {
            st.writer_idle = true;
        }
        Some(d)
    }
}
