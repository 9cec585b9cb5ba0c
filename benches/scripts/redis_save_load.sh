#!/usr/bin/env bash
# redis-server's own persistence cost for the codec benchmark's dataset (benches/README.md, "Codec").
#
#   benches/scripts/redis_save_load.sh [KEYS] [VALUE_SIZE]      (defaults: 1000000 100)
#   RUNS=3 OURS=/path/to/our.rdb benches/scripts/redis_save_load.sh
#
# 1. Starts redis-server (default config, rdbcompression yes, no persistence triggers) in a temp dir.
# 2. DEBUG POPULATE KEYS key VALUE_SIZE: keys "key:N", values "value:N" padded with NUL bytes to
#    VALUE_SIZE (the same dataset benches/criterion/benches/codec.rs encodes as rdb/strings-1m).
# 3. Times SAVE RUNS times (wall clock around redis-cli SAVE, loopback round trip included).
# 4. Restarts the server on that dump RUNS times and reports the load time Redis logs
#    ("DB loaded from disk: X seconds") and the wall time until the server answers with loading:0.
# 5. With OURS=file (an RDB written by forkless-rdb, e.g. FORKLESS_CODEC_DUMP from the codec bench),
#    does the same load measurement on that file.
set -euo pipefail

KEYS=${1:-1000000}
SIZE=${2:-100}
RUNS=${RUNS:-3}
OURS=${OURS:-}

command -v redis-server >/dev/null || { echo "redis-server not installed" >&2; exit 1; }
dir=$(mktemp -d /tmp/forkless-redis-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

now_ms() { date +%s%3N; }

start() { # $1 = dbfilename
    : > "$dir/redis.log"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --dbfilename "$1" --save "" \
        --appendonly no --enable-debug-command local --daemonize no --logfile "$dir/redis.log" &
    pid=$!
}

wait_loaded() {
    until redis-cli -p "$port" INFO persistence 2>/dev/null | grep -q '^loading:0'; do sleep 0.01; done
}

stop() {
    redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    wait "$pid" 2>/dev/null || true
    pid=
}

measure_load() { # $1 = dbfilename, $2 = label
    for r in $(seq "$RUNS"); do
        t0=$(now_ms)
        start "$1"
        wait_loaded
        t1=$(now_ms)
        logged=$(grep -o 'DB loaded from disk: [0-9.]* seconds' "$dir/redis.log" | grep -o '[0-9.]*' | head -1)
        keys=$(redis-cli -p "$port" DBSIZE)
        echo "load $2 run $r: redis log ${logged}s, wall $((t1 - t0)) ms (incl. process start), keys $keys"
        stop
    done
}

echo "redis: $(redis-server --version)"
echo "machine: $(nproc) cores, $(uname -r)"
start dump.rdb
wait_loaded
out=$(redis-cli -p "$port" DEBUG POPULATE "$KEYS" key "$SIZE"); [ "$out" = OK ] || { echo "DEBUG POPULATE: $out" >&2; exit 1; }
echo "dataset: $(redis-cli -p "$port" DBSIZE) keys x $SIZE B, used_memory $(redis-cli -p "$port" INFO memory | grep '^used_memory_human' | cut -d: -f2 | tr -d '\r')"
for r in $(seq "$RUNS"); do
    t0=$(now_ms)
    redis-cli -p "$port" SAVE >/dev/null
    t1=$(now_ms)
    echo "SAVE run $r: $((t1 - t0)) ms, dump.rdb $(stat -c %s "$dir/dump.rdb") bytes"
done
stop
measure_load dump.rdb redis-dump
if [ -n "$OURS" ]; then
    cp "$OURS" "$dir/ours.rdb"
    echo "ours: $(stat -c %s "$dir/ours.rdb") bytes"
    measure_load ours.rdb forkless-dump
fi
