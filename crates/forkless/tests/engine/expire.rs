//! Keys that expire and are never read again disappear within a few `hz` ticks (active expiry
//! run by the engine's own upkeep thread; nothing in the test calls it).

use std::time::{Duration, Instant};

use forkless_testkit::TempDir;

use super::{conf, open};

#[test]
fn expired_keys_disappear_without_reads() {
    let tmp = TempDir::new("engine-expire");
    let e = open(tmp.path(), &conf("save \"\"\nhz 20\n"));
    for i in 0..2000u32 {
        e.set(0, format!("persistent:{i}").as_bytes(), b"v")
            .unwrap();
    }
    for i in 0..3000u32 {
        let db = i % 3;
        e.set_ex(
            db,
            format!("volatile:{i}").as_bytes(),
            b"v",
            Duration::from_millis(200),
        )
        .unwrap();
    }
    assert_eq!(e.dbsize(0) + e.dbsize(1) + e.dbsize(2), 5000);
    assert_eq!(&e.expires_per_db()[..3], &[1000, 1000, 1000]);
    let expired_at = Instant::now() + Duration::from_millis(200);
    let deadline = expired_at + Duration::from_secs(3);
    let gone_at = loop {
        let n = e.dbsize(0) + e.dbsize(1) + e.dbsize(2);
        if n == 2000 {
            break Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{} expired keys still present 3 s after their expiry (stats {:?})",
            n - 2000,
            e.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let s = e.stats();
    assert_eq!(s.expired_keys, 3000, "{s:?}");
    assert_eq!(e.expires_per_db().iter().sum::<u64>(), 0);
    e.reset_stats();
    assert_eq!(e.stats().expired_keys, 0);
    // hz 20: a tick every 50 ms; all gone within a few ticks of their expiry.
    let after = gone_at.saturating_duration_since(expired_at);
    assert!(after < Duration::from_millis(1000), "took {after:?}");
    eprintln!(
        "expired keys removed {after:?} after their expiry, {} upkeep ticks",
        s.upkeep_ticks
    );
    // The persistent keys were never touched.
    assert_eq!(e.get(0, b"persistent:1999").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn active_expiry_can_be_turned_off() {
    let tmp = TempDir::new("engine-expire-off");
    let e = open(tmp.path(), &conf("save \"\"\nhz 50\n"));
    e.set_active_expire(false);
    for i in 0..100u32 {
        e.set_ex(
            0,
            format!("v{i}").as_bytes(),
            b"v",
            Duration::from_millis(50),
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(e.dbsize(0), 100, "nothing removed while off");
    assert_eq!(e.get(0, b"v1").unwrap(), None, "lazy expiry still applies");
    e.set_active_expire(true);
    let deadline = Instant::now() + Duration::from_secs(3);
    while e.dbsize(0) > 0 {
        assert!(
            Instant::now() < deadline,
            "not removed after turning it back on"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
