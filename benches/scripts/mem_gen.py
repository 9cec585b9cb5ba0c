import sys
# The datasets of benches/src/bin/mem_breakdown.rs as RESP (for benches/scripts/mem_vs_redis.sh).
# The commands of benches/src/bin/mem_breakdown.rs (value size 100: collections of 4 x 25 B),
# and "mixed": the five types by i % 5.
ty = sys.argv[1]; n = int(sys.argv[2])
w = sys.stdout.buffer.write
def fill(i, tag, ln):
    return (b"value:%d:%d" % (i, tag)).ljust(ln, b"x")
def cmd(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)
kinds = ["string", "list", "set", "zset", "hash"]
buf = []
for i in range(n):
    t = kinds[i % 5] if ty == "mixed" else ty
    k = b"key:%d" % i
    if t == "string":
        a = [b"SET", k, fill(i, 0, 100)]
    else:
        a = [{"list": b"RPUSH", "set": b"SADD", "zset": b"ZADD", "hash": b"HSET"}[t], k]
        for j in range(1, 5):
            if t == "zset": a.append(b"%d" % j)
            if t == "hash": a.append(b"f%d" % j)
            a.append(fill(i, j, 25))
    buf.append(cmd(a))
    if len(buf) >= 10000:
        w(b"".join(buf)); buf = []
w(b"".join(buf))
