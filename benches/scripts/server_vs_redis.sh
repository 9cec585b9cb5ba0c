#!/usr/bin/env bash
# redis-benchmark against `forkless server` and redis-server 7.0.15, same flags, alternating
# (forkless then redis for each pipeline depth, ROUNDS times), CSV into $OUT.
#   BIN=target/release/forkless N=200000 ROUNDS=2 benches/scripts/server_vs_redis.sh
# EXTRA adds the same server flags to both (e.g. EXTRA="--appendonly yes --appendfsync everysec");
# TESTS picks redis-benchmark's tests (default set,get,incr,lpush,hset,zadd).
set -u
BIN=${BIN:-target/release/forkless}
N=${N:-200000}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-/tmp/forkless-server-vs-redis.csv}
EXTRA=${EXTRA:-}
TESTS=${TESTS:-set,get,incr,lpush,hset,zadd}
: >"$OUT"
start() { # name port dir
    if [ "$1" = forkless ]; then
        # shellcheck disable=SC2086
        "$BIN" server --port "$2" --bind 127.0.0.1 --save "" --dir "$3" $EXTRA >"$3/log" 2>&1 &
    else
        # shellcheck disable=SC2086
        redis-server --port "$2" --bind 127.0.0.1 --save "" --dir "$3" --daemonize no $EXTRA >"$3/log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 50); do redis-cli -p "$2" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "server $1 did not start" >&2
    return 1
}
for round in $(seq "$ROUNDS"); do
    for P in 1 16; do
        for srv in forkless redis; do
            port=$((23000 + RANDOM % 1000))
            d=$(mktemp -d)
            start "$srv" "$port" "$d" || exit 1
            echo "### $srv P=$P round=$round $EXTRA" >>"$OUT"
            redis-benchmark -p "$port" -c 50 -P "$P" -n "$N" -r 1000000 \
                -t "$TESTS" --csv >>"$OUT" 2>&1
            kill "$pid"
            wait "$pid" 2>/dev/null
            rm -rf "$d"
        done
    done
done
echo "results: $OUT"
