#!/usr/bin/env bash
# Redis 7.0.15's own Tcl test suite, external-server mode, against `forkless server` (or, for
# comparison, redis-server 7.0.15 with the same flags).
#
#   ci/redis-tests.sh [--server forkless|redis] [--must-pass "unit ..."] [unit ...]
#
# Units default to the ones issue 17 names. The suite comes from Debian's `redis` source package
# (the same 7.0.15 as the oracle), fetched into a scratch directory outside the repository
# ($REDIS_TESTS_DIR, default /tmp/forkless-redis-tests) and never committed. Needs root for apt
# (a deb-src twin of the deb stanza is added once) and tclsh (package tcl).
#
# Output: one line per unit, `unit: ok=N err=M exception=E skipped=S`, and a per-unit log in the
# scratch directory. Every unit named by --must-pass must finish with err=0 and no exception,
# otherwise the script exits 1 (so CI can run the units that pass today without regressions).
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
server=forkless
must_pass=""
units=()
while [ $# -gt 0 ]; do
    case "$1" in
        --server) server="$2"; shift 2 ;;
        --must-pass) must_pass="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) units+=("$1"); shift ;;
    esac
done
if [ ${#units[@]} -eq 0 ]; then
    units=(type/string type/incr type/list type/set type/zset type/hash type/stream
           type/stream-cgroups keyspace expire multi info-command scan protocol pubsub other)
fi
for u in $must_pass; do
    case " ${units[*]} " in *" $u "*) ;; *) units+=("$u") ;; esac
done

scratch="${REDIS_TESTS_DIR:-/tmp/forkless-redis-tests}"
src="$scratch/redis-7.0.15"
mkdir -p "$scratch"

fetch_suite() {
    if [ -x "$src/runtest" ]; then return; fi
    if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ \
        && ! grep -qs '^deb-src' /etc/apt/sources.list; then
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then
            sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
                > /etc/apt/sources.list.d/forkless-deb-src.sources
        else
            grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' \
                > /etc/apt/sources.list.d/forkless-deb-src.list
        fi
    fi
    apt-get update -qq
    (cd "$scratch" && apt-get source --download-only redis >/dev/null)
    local orig
    orig="$(ls "$scratch"/redis_7.0.15.orig.tar.* 2>/dev/null | head -n1)"
    if [ -z "$orig" ]; then
        echo "redis-tests: Debian's redis source is not 7.0.15: $(ls "$scratch")" >&2
        exit 1
    fi
    tar -xf "$orig" -C "$scratch"
    [ -x "$src/runtest" ] || { echo "redis-tests: no runtest in $src" >&2; exit 1; }
}

command -v tclsh >/dev/null || apt-get install -y -qq tcl >/dev/null
fetch_suite

# `acl-external`: the first server block of unit/acl (the tests that need no ACL file and no
# config overrides), without its `external:skip` tag, so it runs against an external server.
# The whole of unit/acl is external:skip (0 tests in this mode, for both servers).
if [ ! -f "$src/tests/unit/acl-external.tcl" ]; then
    end=$(grep -n '^set server_path' "$src/tests/unit/acl.tcl" | head -n1 | cut -d: -f1)
    head -n $((end - 1)) "$src/tests/unit/acl.tcl" \
        | sed '1s/{tags {"acl external:skip"}}/{tags {"acl"}}/' >"$src/tests/unit/acl-external.tcl"
fi

# `pubsubshard-external`: the first server block of unit/pubsubshard (one server, no
# replication) without its `external:skip` tag (the whole unit is external:skip).
if [ ! -f "$src/tests/unit/pubsubshard-external.tcl" ]; then
    end=$(grep -n '^start_server' "$src/tests/unit/pubsubshard.tcl" | sed -n 2p | cut -d: -f1)
    head -n $((end - 1)) "$src/tests/unit/pubsubshard.tcl" \
        | sed '1s/{tags {"pubsubshard external:skip"}}/{tags {"pubsubshard"}}/' \
        >"$src/tests/unit/pubsubshard-external.tcl"
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bin="${FORKLESS_BIN:-$here/target/release/forkless}"
if [ "$server" = forkless ] && [ ! -x "$bin" ]; then
    (cd "$here" && cargo build --release -p forkless-cli)
    [ -x "$bin" ] || { echo "no forkless binary at $bin (FORKLESS_BIN)" >&2; exit 1; }
fi
server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        # A server that does not stop (a script left running by a failed test: redis-server
        # too ignores SIGTERM then) is killed after 20 s, so one unit cannot hang the run.
        for _ in $(seq 200); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# A fresh server (and data directory) per unit, the same flags for both servers.
start_server() {
    port="$(free_port)"
    workdir="$(mktemp -d "$scratch/server.XXXXXX")"
    local flags=(--port "$port" --bind 127.0.0.1 --save "" --enable-debug-command yes
                 --dir "$workdir")
    case "$server" in
        forkless) "$bin" server "${flags[@]}" >"$workdir/server.log" 2>&1 & ;;
        redis) redis-server "${flags[@]}" --daemonize no >"$workdir/server.log" 2>&1 & ;;
        *) echo "redis-tests: --server forkless|redis" >&2; exit 2 ;;
    esac
    server_pid=$!
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "redis-tests: $server did not start (see $workdir/server.log)" >&2
    return 1
}

# The suite's own test-server port range: away from other runs on this machine.
baseport=$((22000 + RANDOM % 20000))
failed=0
for u in "${units[@]}"; do
    log="$scratch/$server-$(echo "$u" | tr / _).log"
    start_server || { failed=1; continue; }
    # A unit that hangs is cut off; it then counts as an exception.
    (cd "$src" && timeout 600 ./runtest --host 127.0.0.1 --port "$port" --single "unit/$u" \
        --clients 1 --timeout 120 --baseport "$baseport" ${RUNTEST_ARGS:-} >"$log" 2>&1) || true
    stop_server
    rm -rf "$workdir"
    plain="$log.txt"
    sed 's/\x1b\[[0-9;]*m//g' "$log" >"$plain"
    ok=$(grep -c '^\[ok\]:' "$plain" || true)
    err=$(grep -c '^\[err\]:' "$plain" || true)
    exc=$(grep -c '^\[exception\]:' "$plain" || true)
    skipped=$(grep -c '^\[skip\]:' "$plain" || true)
    # No verdict at all, or a hang the suite reported: an exception too.
    if ! grep -q '^\[ok\]:\|^\[err\]:\|^\[exception\]:' "$plain" \
        || grep -q '\[TIMEOUT\]' "$plain"; then
        exc=$((exc + 1))
    fi
    echo "$u: ok=$ok err=$err exception=$exc skipped=$skipped"
    case " $must_pass " in
        *" $u "*)
            if [ "$err" -ne 0 ] || [ "$exc" -ne 0 ]; then
                echo "redis-tests: $u must pass fully (log: $plain)" >&2
                failed=1
            fi
            ;;
    esac
done
exit "$failed"
