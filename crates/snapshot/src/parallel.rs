//! Parallel serialization: the walk's entries encoded to RDB on several threads, written in
//! order by one.
//!
//! Problem: encoding (LZF, listpack and quicklist building, the RDB string forms) is most of a
//! snapshot's CPU; the walk itself is cheap. One thread encoding caps the snapshot at one core.
//!
//! # Shape
//! ```text
//!  walker (worker thread)            serializer threads (N - 1)       walker again
//!  walk, hand-offs, expiry filter    encode job -> fragment bytes     append chunks in seq order
//!  job #s = entries in file order -> [ jobs queue ] -> encode -> [ done: seq -> chunk ] -> RdbWriter
//! ```
//! * **Jobs** are runs of consecutive entries in exactly the order the one-thread worker would
//!   write them (the walk's batches, the hand-offs drained between them, detached tables), each
//!   with a sequence number and the database selected before its first entry; a job ends after
//!   [`CHUNK_ENTRIES`] entries, once its values' memory reaches [`CHUNK_BYTES`], or when the
//!   walk ends.
//! * **Encoding** ([`crate::worker::encode_entry`], the one encoder of both modes) turns a job
//!   into a *chunk*: its records (SELECTDB where the database changes, then each entry) in a
//!   `RdbWriter::fragment`. Serializer threads take no lock but this module's queue lock: they
//!   touch only the handles (`Arc` values, copy-on-write) of their job, never a shard.
//! * **Writing** stays on the walker: it appends chunks to the file's `RdbWriter`
//!   (`append_encoded`) strictly in sequence order, so the CRC-64 is streamed over the ordered
//!   bytes by one writer and the file is byte for byte the one-thread file.
//! * **Back pressure**: at most `limit` chunks are in flight (dispatched and not yet written);
//!   the walker, about to dispatch one more while the limit is reached, *helps*: it encodes the
//!   oldest job no serializer took yet itself, and waits for the next chunk in order only when
//!   every queued job is taken. Memory is bounded by `limit` chunks of about [`CHUNK_BYTES`]
//!   (or one entry, when a single value is bigger). So `serialize_threads` N
//!   means N threads encoding: N - 1 serializer threads and the walker whenever it is ahead
//!   (on 2 cores, one serializer thread and the walker share the work without a third thread
//!   competing for the cores).
//!
//! Lock order: the queue lock is a leaf, never held with a shard lock, an observer lock or
//! across I/O (chunks are appended after it is released).

use std::collections::{BTreeMap, VecDeque};

use forkless_rdb::{KeyAccess, RdbError, RdbWriter, WriteOptions};
use forkless_sync::atomic::Ordering;
use forkless_sync::{thread, Arc, Condvar, Mutex};

use crate::observer::Handle;
use crate::worker::{encode_entry, EncodeHook, Progress};

/// Entries per job (and chunk). Small enough that the entries the walk just touched are still
/// in a cache when a serializer encodes them (1024 and 4096 cost 30-40% more CPU than 128-256
/// on the 2-core bench machine), large enough that the queue costs nothing per entry.
pub(crate) const CHUNK_ENTRIES: usize = 256;

/// Value bytes (`Value::mem_usage` + key) past which a job ends: big values make short jobs, so
/// the chunks in flight stay a few MiB (an AOF rewrite of 64 KiB strings must not hold 256 of
/// them per chunk on the worker).
pub(crate) const CHUNK_BYTES: u64 = 256 << 10;

/// A run of consecutive entries for one serializer thread.
pub(crate) struct Job {
    /// The database selected before the first entry (None: none yet).
    pub(crate) start_db: Option<u32>,
    /// The entries with their access metadata, in file order.
    pub(crate) items: Vec<(Handle, KeyAccess)>,
}

/// An encoded job.
struct Chunk {
    bytes: Vec<u8>,
    keys: u64,
}

struct State {
    jobs: VecDeque<(u64, Job)>,
    done: BTreeMap<u64, Result<Chunk, RdbError>>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// A job was queued, or the pool closed (serializer threads wait on it).
    work: Condvar,
    /// A chunk was encoded (the walker waits on it).
    ready: Condvar,
    db_sizes: Arc<Vec<(u64, u64)>>,
    rdb: WriteOptions,
    on_encode: Option<EncodeHook>,
}

/// The serializer threads and the walker's side of the ordering.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    threads: Vec<thread::JoinHandle<()>>,
    limit: u64,
    /// Sequence number of the next job dispatched.
    next_seq: u64,
    /// Sequence number of the next chunk to write.
    next_write: u64,
    /// The most chunks ever in flight.
    pub(crate) max_in_flight: u64,
    /// The walker's own encoder, for the jobs it encodes while it would otherwise wait.
    enc: RdbWriter<Vec<u8>>,
}

impl Pool {
    /// Start `threads` serializer threads (0 works too: the walker then encodes every job
    /// itself, at the bound and in `drain`); at most `limit` chunks in flight.
    pub(crate) fn new(
        threads: usize,
        limit: usize,
        db_sizes: Arc<Vec<(u64, u64)>>,
        rdb: WriteOptions,
        on_encode: Option<EncodeHook>,
    ) -> std::io::Result<Pool> {
        let rdb_opts = rdb.clone();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                done: BTreeMap::new(),
                closed: false,
            }),
            work: Condvar::new(),
            ready: Condvar::new(),
            db_sizes,
            rdb,
            on_encode,
        });
        let mut pool = Pool {
            shared,
            threads: Vec::with_capacity(threads),
            limit: limit.max(1) as u64,
            next_seq: 0,
            next_write: 0,
            max_in_flight: 0,
            enc: RdbWriter::fragment(&rdb_opts),
        };
        for i in 0..threads {
            let sh = pool.shared.clone();
            // On error `pool` drops here: the threads already started are closed and joined.
            let t = thread::Builder::new()
                .name(format!("snapshot-ser-{i}"))
                .spawn(move || serialize_loop(&sh))?;
            pool.threads.push(t);
        }
        Ok(pool)
    }

    fn in_flight(&self) -> u64 {
        self.next_seq - self.next_write
    }

    /// Dispatch a job: first, while `limit` chunks are in flight, encode the oldest queued job
    /// here (or, none queued, wait for the next chunk in order) and write the chunks ready in
    /// order; then queue it and write whatever else is ready.
    pub(crate) fn submit<W: std::io::Write>(
        &mut self,
        job: Job,
        w: &mut RdbWriter<W>,
        progress: &Progress,
    ) -> Result<u64, RdbError> {
        let mut keys = 0;
        if self.in_flight() >= self.limit {
            progress.chunk_waits.fetch_add(1, Ordering::Relaxed);
            while self.in_flight() >= self.limit {
                keys += self.help_or_wait(w, progress)?;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight());
        progress.chunks_dispatched.fetch_add(1, Ordering::Relaxed);
        self.shared.state.lock().jobs.push_back((seq, job));
        self.shared.work.notify_one();
        keys += self.write_ready(w, false, progress)?;
        Ok(keys)
    }

    /// Write every chunk still in flight, in order (helping with the jobs still queued).
    pub(crate) fn drain<W: std::io::Write>(
        &mut self,
        w: &mut RdbWriter<W>,
        progress: &Progress,
    ) -> Result<u64, RdbError> {
        let mut keys = 0;
        while self.in_flight() > 0 {
            keys += self.help_or_wait(w, progress)?;
        }
        Ok(keys)
    }

    /// Encode the oldest queued job here and write what is ready; with none queued (every job
    /// in flight is being encoded or done), wait for the next chunk in order and write.
    fn help_or_wait<W: std::io::Write>(
        &mut self,
        w: &mut RdbWriter<W>,
        progress: &Progress,
    ) -> Result<u64, RdbError> {
        let queued = self.shared.state.lock().jobs.pop_front();
        match queued {
            Some((seq, job)) => {
                let r = encode_guarded(&self.shared, &mut self.enc, seq, job);
                self.shared.state.lock().done.insert(seq, r);
                self.write_ready(w, false, progress)
            }
            None => self.write_ready(w, true, progress),
        }
    }

    /// Append the chunks ready from `next_write` on (with `block`, at least one: wait for it).
    /// Returns the keys they hold.
    fn write_ready<W: std::io::Write>(
        &mut self,
        w: &mut RdbWriter<W>,
        block: bool,
        progress: &Progress,
    ) -> Result<u64, RdbError> {
        let mut ready = Vec::new();
        {
            let mut g = Some(self.shared.state.lock());
            if block {
                while !g
                    .as_ref()
                    .expect("held")
                    .done
                    .contains_key(&self.next_write)
                {
                    self.shared.ready.wait(&mut g);
                }
            }
            let st = g.as_mut().expect("held");
            let mut seq = self.next_write;
            while let Some(c) = st.done.remove(&seq) {
                ready.push(c);
                seq += 1;
            }
        }
        // The queue lock is released: append (I/O) without it.
        let mut keys = 0;
        for c in ready {
            let c = c?;
            w.append_encoded(&c.bytes)?;
            self.next_write += 1;
            keys += c.keys;
            progress.chunks_written.fetch_add(1, Ordering::Relaxed);
        }
        Ok(keys)
    }
}

impl Drop for Pool {
    /// Close the queue and join the threads (each finishes the job it holds, at most one).
    fn drop(&mut self) {
        {
            let mut st = self.shared.state.lock();
            st.closed = true;
            st.jobs.clear();
        }
        self.shared.work.notify_all();
        for t in self.threads.drain(..) {
            // A serializer thread catches panics of the encoder; a join error is a bug already
            // reported as the chunk's error.
            let _ = t.join();
        }
    }
}

/// One serializer thread: take a job, encode it (no lock held), file the chunk.
fn serialize_loop(sh: &Shared) {
    let mut enc = RdbWriter::fragment(&sh.rdb);
    loop {
        let (seq, job) = {
            let mut g = Some(sh.state.lock());
            loop {
                let st = g.as_mut().expect("held");
                if let Some(j) = st.jobs.pop_front() {
                    break j;
                }
                if st.closed {
                    return;
                }
                sh.work.wait(&mut g);
            }
        };
        let r = encode_guarded(sh, &mut enc, seq, job);
        sh.state.lock().done.insert(seq, r);
        sh.ready.notify_one();
    }
}

/// Encode a job (after the test hook), turning a panic into the chunk's error; a failed encoder
/// is replaced. The job's handles (and any value only they still hold) are dropped here.
fn encode_guarded(
    sh: &Shared,
    enc: &mut RdbWriter<Vec<u8>>,
    seq: u64,
    job: Job,
) -> Result<Chunk, RdbError> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Some(hook) = &sh.on_encode {
            hook(seq);
        }
        encode_job(enc, &job, &sh.db_sizes)
    }))
    .unwrap_or_else(|_| {
        Err(RdbError::InvalidInput(format!(
            "snapshot serializer panicked encoding chunk {seq}"
        )))
    });
    if r.is_err() {
        *enc = RdbWriter::fragment(&sh.rdb);
    }
    r
}

fn encode_job(
    enc: &mut RdbWriter<Vec<u8>>,
    job: &Job,
    db_sizes: &[(u64, u64)],
) -> Result<Chunk, RdbError> {
    let mut cur = job.start_db;
    for (h, access) in &job.items {
        encode_entry(enc, &mut cur, db_sizes, h, *access)?;
    }
    Ok(Chunk {
        bytes: enc.take_fragment()?,
        keys: job.items.len() as u64,
    })
}
