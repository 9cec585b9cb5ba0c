#!/usr/bin/env bash
# Every AOF measurement of benches/README.md ("AOF"), one after the other, with the date and the
# load average, output to stdout (tee it to a file). About 5 minutes on 2 cores.
#
#   benches/scripts/aof_bench.sh [KEYS]        (default 1000000)
#
# 1. aof_harness: append per fsync policy x {1, 4} threads (3 rounds of 3 s, interleaved),
#    rewrite of KEYS 100 B strings (under 1 writer, then idle), load of the two directories by
#    forkless and redis-server (median of 3).
# 2. aof_harness: group commit under `always` with 1 / 4 / 16 threads (8 rounds of 1 s).
# 3. aof_harness: rewrite + load of KEYS mixed-type keys.
# 4. criterion: cargo bench --bench aof (append throughput, 100k-key load and rewrite).
set -euo pipefail
KEYS=${1:-1000000}
cd "$(dirname "$0")/../.."
command -v redis-server >/dev/null || echo "note: redis-server not installed, the load comparison is skipped" >&2
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
redis-server --version 2>/dev/null || true
cargo build --release -p forkless-benches --bin aof_harness
H=target/release/aof_harness
$H --keys "$KEYS" --secs 3 --rounds 3
$H --what append --policies always --threads 1,4,16 --secs 1 --rounds 8
$H --what load --keys "$KEYS" --mixed
cargo bench -p forkless-criterion --bench aof
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
