//! Transactions and the durability ticket.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use forkless::{Error, Reply, Session};
use forkless_testkit::TempDir;

use super::{conf, open};

#[test]
fn transaction_is_one_unit_in_the_aof() {
    let tmp = TempDir::new("engine-tx");
    let e = open(
        tmp.path(),
        &conf("appendonly yes\nappendfsync always\nsave \"\"\n"),
    );
    let r = e
        .transaction(&mut Session::default(), |tx| {
            tx.set(b"a", b"1")
                .incr(b"a")
                .cmd(&[b"SELECT", b"2"])
                .set(b"b", b"x")
                .cmd(&[b"LPUSH", b"a", b"wrongtype-in-db2-is-fine"]);
        })
        .unwrap();
    assert_eq!(r.len(), 5);
    assert_eq!(r[1], Reply::Integer(2));
    drop(e);
    let incr = std::fs::read(tmp.path().join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap();
    let text = String::from_utf8_lossy(&incr);
    let multi = text.find("MULTI").expect("MULTI in the log");
    let exec = text.find("EXEC").expect("EXEC in the log");
    for cmd in ["SET", "INCR", "LPUSH"] {
        let at = text.find(cmd).unwrap();
        assert!(
            multi < at && at < exec,
            "{cmd} outside MULTI/EXEC: {text:?}"
        );
    }
}

#[test]
fn queueing_error_aborts_everything() {
    let tmp = TempDir::new("engine-tx-abort");
    let e = open(tmp.path(), &conf("save \"\"\n"));
    let r = e.transaction(&mut Session::default(), |tx| {
        tx.set(b"a", b"1").cmd(&[b"NOSUCHCOMMAND"]);
    });
    match r {
        Err(Error::Command(m)) => assert!(m.starts_with("EXECABORT"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.get(0, b"a").unwrap(), None);
    // A run-time error does not stop the others (Redis semantics).
    let r = e
        .transaction(&mut Session::default(), |tx| {
            tx.set(b"s", b"x").incr(b"s").set(b"t", b"y");
        })
        .unwrap();
    assert!(matches!(&r[1], Reply::Error(m) if m.starts_with("ERR value is not an integer")));
    assert_eq!(e.get(0, b"t").unwrap(), Some(b"y".to_vec()));
}

struct Unpark(std::thread::Thread);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn deferred_durability_under_always_resolves_as_a_future() {
    let tmp = TempDir::new("engine-durable");
    let e = open(
        tmp.path(),
        &conf("appendonly yes\nappendfsync always\nsave \"\"\n"),
    );
    let mut s = Session::default();
    let mut tickets = Vec::new();
    for i in 0..100u32 {
        let k = format!("k{i}");
        let (r, d) = e.execute_deferred(&mut s, &[b"SET", k.as_bytes(), b"v"]);
        assert_eq!(r, Reply::ok());
        assert!(!d.is_ready(), "a write under always has a ticket");
        tickets.push(d);
    }
    let last = tickets.last().unwrap().ticket().unwrap();
    for d in tickets {
        block_on(d).unwrap();
    }
    let m = e.stats().aof.unwrap();
    assert!(m.durable_offset >= last, "{m:?}");
    // Reads have nothing to wait for.
    let (_, d) = e.execute_deferred(&mut s, &[b"GET", b"k1"]);
    assert!(d.is_ready());
    // everysec: never a ticket.
    let tmp2 = TempDir::new("engine-durable-es");
    let e2 = open(tmp2.path(), &conf("appendonly yes\nsave \"\"\n"));
    let (_, d) = e2.execute_deferred(&mut s, &[b"SET", b"a", b"b"]);
    assert!(d.is_ready());
}

/// A log file whose fsyncs take 800 ms (both the writer's and the background syncer's).
struct SlowSync(Box<dyn forkless_aof::AofIo>);
struct SlowHandle(Box<dyn forkless_aof::SyncHandle>);

const SLOW: std::time::Duration = std::time::Duration::from_millis(800);

impl forkless_aof::SyncHandle for SlowHandle {
    fn sync(&mut self) -> std::io::Result<()> {
        std::thread::sleep(SLOW);
        self.0.sync()
    }
}

impl forkless_aof::AofIo for SlowSync {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write(buf)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        std::thread::sleep(SLOW);
        self.0.sync()
    }
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn sync_handle(&self) -> std::io::Result<Box<dyn forkless_aof::SyncHandle>> {
        Ok(Box::new(SlowHandle(self.0.sync_handle()?)))
    }
}

#[test]
fn everysec_writes_never_wait_for_a_slow_fsync() {
    let tmp = TempDir::new("engine-slow-fsync");
    let e = forkless::Engine::builder(tmp.path())
        .config(conf("appendonly yes\nappendfsync everysec\nsave \"\"\n"))
        .log_io_wrapper(Arc::new(|inner| Box::new(SlowSync(inner))))
        .open()
        .unwrap();
    let mut worst = std::time::Duration::ZERO;
    let t0 = std::time::Instant::now();
    let mut n = 0u32;
    // 2.5 s of writes: slow fsyncs run meanwhile.
    while t0.elapsed() < std::time::Duration::from_millis(2500) {
        let t = std::time::Instant::now();
        e.set(0, format!("k{}", n % 1000).as_bytes(), b"v").unwrap();
        worst = worst.max(t.elapsed());
        n += 1;
        if n.is_multiple_of(100) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    let fsyncs = e.stats().aof.unwrap().fsyncs;
    assert!(fsyncs >= 1, "the slow fsyncs ran ({fsyncs})");
    assert!(
        worst < SLOW / 3,
        "a write waited {worst:?} behind a {SLOW:?} fsync"
    );
    eprintln!("{n} writes, worst {worst:?}, {fsyncs} slow fsyncs");
}

/// Checks the transaction invariant on a dump: for each thread t, `a:t` = length of `l:t`, and
/// `total` = the sum of every `a:t`. Returns the total.
fn invariant(dump: &[forkless_rdb::Entry], what: &str) -> u64 {
    use forkless_rdb::Value;
    let mut a = std::collections::BTreeMap::new();
    let mut l = std::collections::BTreeMap::new();
    let mut total = 0u64;
    for e in dump {
        let k = String::from_utf8_lossy(&e.key).into_owned();
        match (&e.value, k.split_once(':')) {
            (Value::String(v), Some(("a", t))) => {
                a.insert(
                    t.to_string(),
                    String::from_utf8_lossy(v).parse::<u64>().unwrap(),
                );
            }
            (Value::List(items), Some(("l", t))) => {
                l.insert(t.to_string(), items.len() as u64);
            }
            (Value::String(v), None) if k == "total" => {
                total = String::from_utf8_lossy(v).parse().unwrap();
            }
            _ => panic!("{what}: unexpected key {k}"),
        }
    }
    assert_eq!(
        a, l,
        "{what}: a counter and its list disagree (a transaction was split)"
    );
    assert_eq!(a.values().sum::<u64>(), total, "{what}: total disagrees");
    total
}

#[test]
fn concurrent_transactions_stay_whole_in_snapshots_rewrites_and_recovery() {
    let tmp = TempDir::new("engine-tx-concurrent");
    let c = conf("appendonly yes\nsave \"\"\nsnapshot-mode converging\nshards 8\n");
    let e = open(tmp.path(), &c);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for t in 0..4u32 {
        let (e, stop) = (e.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let (a, l) = (format!("a:{t}"), format!("l:{t}"));
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let v = n.to_string();
                let r = e
                    .transaction(&mut Session::default(), |tx| {
                        tx.incr(a.as_bytes())
                            .cmd(&[b"RPUSH", l.as_bytes(), v.as_bytes()])
                            .incr(b"total");
                    })
                    .unwrap();
                assert!(r.iter().all(|r| !matches!(r, Reply::Error(_))), "{r:?}");
                n += 1;
            }
            n
        }));
    }
    let mut snapshots = 0;
    let mut last_total = 0;
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_millis(1500) {
        e.rewrite_now().unwrap();
        let r = e.snapshot_now(None).unwrap();
        snapshots += 1;
        // Each converging snapshot is the state at its end barrier: whole transactions only.
        let ks = forkless::load(&tmp.path().join("dump.rdb")).unwrap();
        let total = invariant(&ks.dump(), &format!("snapshot {snapshots}"));
        assert!(total >= last_total);
        last_total = total;
        assert!(r.keys > 0);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let done: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let live = e.keyspace().dump();
    assert_eq!(invariant(&live, "live"), done);
    drop(e);
    let e = open(tmp.path(), &c);
    assert_eq!(e.keyspace().dump(), live, "recovery after rewrites");
    eprintln!("{done} transactions, {snapshots} snapshots and rewrites while they ran");
}
