#!/usr/bin/env bash
# Two forkless binaries (A, B) and redis-server 7.0.15 under the same redis-benchmark load,
# alternating A, B, redis in every round (fresh server each time), with each server's CPU time
# per request from /proc (user and system, ns): a steadier figure than requests per second on a
# shared machine.
#   A=/tmp/forkless-old B=target/release/forkless ROUNDS=2 benches/scripts/server_ab.sh
# EXTRA_A / EXTRA_B add server flags to one side (e.g. EXTRA_B="--io-threads 2").
# Output: one line per (round, depth, test, server): rps, p50 ms, user ns/req, sys ns/req.
set -u
A=${A:?binary A}
B=${B:?binary B}
N=${N:-300000}
ROUNDS=${ROUNDS:-2}
TESTS=${TESTS:-set get incr lpush hset zadd}
DEPTHS=${DEPTHS:-1 16}
EXTRA_A=${EXTRA_A:-}
EXTRA_B=${EXTRA_B:-}
TCK=$(getconf CLK_TCK)
start() { # kind port dir
    case "$1" in
    A) # shellcheck disable=SC2086
        "$A" server --port "$2" --bind 127.0.0.1 --save "" --dir "$3" $EXTRA_A >"$3/log" 2>&1 & ;;
    B) # shellcheck disable=SC2086
        "$B" server --port "$2" --bind 127.0.0.1 --save "" --dir "$3" $EXTRA_B >"$3/log" 2>&1 & ;;
    redis) redis-server --port "$2" --bind 127.0.0.1 --save "" --dir "$3" --daemonize no >"$3/log" 2>&1 & ;;
    esac
    pid=$!
    for _ in $(seq 50); do redis-cli -p "$2" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "server $1 did not start" >&2
    return 1
}
cpu() { awk '{print $14 + 0, $15 + 0}' "/proc/$1/stat"; }
echo "round,depth,test,server,rps,p50_ms,user_ns_per_req,sys_ns_per_req"
for round in $(seq "$ROUNDS"); do
    for P in $DEPTHS; do
        for t in $TESTS; do
            for srv in A B redis; do
                port=$((23000 + RANDOM % 1000))
                d=$(mktemp -d)
                start "$srv" "$port" "$d" || exit 1
                read -r u1 s1 < <(cpu "$pid")
                line=$(redis-benchmark -p "$port" -c 50 -P "$P" -n "$N" -r 1000000 -t "$t" --csv 2>/dev/null | tail -1)
                read -r u2 s2 < <(cpu "$pid")
                rps=$(echo "$line" | cut -d, -f2 | tr -d '"')
                p50=$(echo "$line" | cut -d, -f5 | tr -d '"')
                echo "$round,$P,$t,$srv,$rps,$p50,$(((u2 - u1) * 1000000000 / TCK / N)),$(((s2 - s1) * 1000000000 / TCK / N))"
                kill "$pid"
                wait "$pid" 2>/dev/null
                rm -rf "$d"
            done
        done
    done
done
