#!/usr/bin/env bash
# redis-benchmark against `forkless server` and redis-server 7.0.15 holding a 1M-key dataset,
# idle and while BGSAVE runs back to back (issue 17's second table). Same flags for both,
# alternating per configuration, CSV (with p50/p99) into $OUT, BGSAVE counts into $OUT.saves.
#   BIN=target/release/forkless N=200000 benches/scripts/server_vs_redis_bgsave.sh
set -u
BIN=${BIN:-target/release/forkless}
N=${N:-200000}
KEYS=${KEYS:-1000000}
OUT=${OUT:-/tmp/forkless-server-vs-redis-bgsave.csv}
TESTS=${TESTS:-set,get,incr,lpush,hset,zadd}
: >"$OUT"
: >"$OUT.saves"
start() { # name port dir
    if [ "$1" = forkless ]; then
        "$BIN" server --port "$2" --bind 127.0.0.1 --save "" --dir "$3" >"$3/log" 2>&1 &
    else
        redis-server --port "$2" --bind 127.0.0.1 --save "" --dir "$3" --daemonize no >"$3/log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 50); do redis-cli -p "$2" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "server $1 did not start" >&2
    return 1
}
# BGSAVE back to back until $1 (a pid) exits; prints how many completed.
bgsave_loop() { # bench_pid port
    local n=0
    while kill -0 "$1" 2>/dev/null; do
        redis-cli -p "$2" bgsave >/dev/null 2>&1
        sleep 0.02
        while redis-cli -p "$2" info persistence 2>/dev/null | grep -q 'rdb_bgsave_in_progress:1'; do
            sleep 0.02
        done
        n=$((n + 1))
    done
    echo "$n"
}
for P in 1 16; do
    for phase in idle bgsave; do
        for srv in forkless redis; do
            port=$((23000 + RANDOM % 1000))
            d=$(mktemp -d)
            start "$srv" "$port" "$d" || exit 1
            # The dataset: $KEYS random keys of 100 B (redis-benchmark's key:<12 digits>).
            redis-benchmark -p "$port" -c 50 -P 64 -n "$KEYS" -r "$KEYS" -d 100 -t set -q >/dev/null 2>&1
            echo "### $srv P=$P $phase keys=$(redis-cli -p "$port" dbsize)" >>"$OUT"
            redis-benchmark -p "$port" -c 50 -P "$P" -n "$N" -r "$KEYS" -t "$TESTS" --csv >>"$OUT" 2>&1 &
            bench=$!
            if [ "$phase" = bgsave ]; then
                saves=$(bgsave_loop "$bench" "$port")
                echo "$srv P=$P bgsaves=$saves" >>"$OUT.saves"
            fi
            wait "$bench"
            kill "$pid"
            wait "$pid" 2>/dev/null
            rm -rf "$d"
        done
    done
done
echo "results: $OUT ($OUT.saves)"
