#!/usr/bin/env bash
# The measurements of benches/README.md ("Segments"), with the date and the load average, output
# to stdout (tee it to a file). About 14 minutes on 2 cores with the defaults below.
#
#   benches/scripts/segments_bench.sh [SECS] [INTERVAL]     (defaults 180 and 30)
#
# 1. segments_harness --what compare: 1M keys x 100 B built, then persisted; 2 writer threads at
#    full speed for SECS seconds (appendfsync everysec) against (a) segments (64 MiB, a
#    converging snapshot every INTERVAL s, keep 2 snapshots, 256 MiB segment budget), (b) the
#    AOF rewritten every INTERVAL s, (c) the AOF rewritten on Redis's auto-aof-rewrite rule
#    (100 %, 64 MiB). Write amplification, latency, disk use; chart in benches/segments_disk.svg.
# 2. segments_harness --what recovery: a snapshot every 5 / 15 / 30 / 60 s, stopped at a random
#    point, recovery timed.
set -euo pipefail
SECS=${1:-180}
INTERVAL=${2:-30}
cd "$(dirname "$0")/../.."
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release -p forkless-benches --bin segments_harness
H=target/release/segments_harness
$H --what compare --secs "$SECS" --interval "$INTERVAL" --svg benches/segments_disk.svg
$H --what recovery --recovery-intervals 5,15,30,60
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
