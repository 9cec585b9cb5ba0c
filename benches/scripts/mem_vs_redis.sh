#!/usr/bin/env bash
# RSS of forkless and redis-server holding the same 1M keys of one type (benches/README.md,
# "Memory per key", step 4). Usage: benches/scripts/mem_vs_redis.sh TYPE
# TYPE: string list set zset hash mixed. FORKLESS: the binary (default target/release/forkless).
# Both servers load at the same time, on ports 7101 (forkless) and 7102 (redis-server).
set -uo pipefail
ty=$1
tmp="${TMPDIR:-/tmp}"
python3 "$(dirname "$0")/mem_gen.py" "$ty" 1000000 > "$tmp/$ty.resp"
"${FORKLESS:-target/release/forkless}" server --port 7101 --bind 127.0.0.1 --save "" --appendonly no > "$tmp/f.log" 2>&1 &
fp=$!
redis-server --port 7102 --bind 127.0.0.1 --save "" --appendonly no > "$tmp/r.log" 2>&1 &
rp=$!
sleep 1
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
f0=$(rss $fp); r0=$(rss $rp)
redis-cli -p 7101 --pipe < "$tmp/$ty.resp" > /dev/null 2>&1 &
redis-cli -p 7102 --pipe < "$tmp/$ty.resp" > /dev/null 2>&1
wait $!
sleep 2
f1=$(rss $fp); r1=$(rss $rp)
fd=$(redis-cli -p 7101 dbsize); rd=$(redis-cli -p 7102 dbsize)
echo "$ty forkless RSS $((f1 / 1024)) MiB (growth $(((f1 - f0) * 1024 / 1000000)) B/key, dbsize $fd)" \
    "redis-server RSS $((r1 / 1024)) MiB (growth $(((r1 - r0) * 1024 / 1000000)) B/key, dbsize $rd)" \
    "ratio $(python3 -c "print(round($f1 / $r1, 3))")"
kill $fp $rp
wait 2> /dev/null
rm -f "$tmp/$ty.resp"
