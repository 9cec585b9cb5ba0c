//! Shared test helpers.

use std::path::Path;

use forkless_rdb::Entry;

/// `forkless_testkit::redis_load_aof_dir`, retried when the server answered `LOADING`: testkit
/// waits for `loading:0` in `INFO persistence`, which `async_loading:0` also matches, so it may
/// query a server that is still loading (reported to the lead; remove once fixed).
pub fn redis_load_aof_dir(dir: &Path) -> Option<Result<Vec<Entry>, String>> {
    for _ in 0..4 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            forkless_testkit::redis_load_aof_dir(dir)
        }));
        match r {
            Ok(v) => return v,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                // "LOADING Redis is loading the dataset in memory", printed as bytes.
                if !msg.contains("76, 79, 65, 68, 73, 78, 71") && !msg.contains("LOADING") {
                    std::panic::resume_unwind(p);
                }
            }
        }
    }
    panic!("redis-server kept answering LOADING");
}
