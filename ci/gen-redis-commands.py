#!/usr/bin/env python3
# Regenerates crates/keyspace/src/redis_commands.txt from a Redis checkout at tag 7.0.15:
#   python3 ci/gen-redis-commands.py > crates/keyspace/src/redis_commands.txt
# (REDIS_REPO: the git directory, default /work/.mirror/redis+redis/repo).
import json, subprocess, sys
import os
repo = os.environ.get("REDIS_REPO", "/work/.mirror/redis+redis/repo")
names = subprocess.check_output(["git","-C",repo,"ls-tree","--name-only","7.0.15","src/commands/"]).decode().split()
cmds = {}
for n in names:
    if not n.endswith(".json"): continue
    d = json.loads(subprocess.check_output(["git","-C",repo,"show","7.0.15:"+n]))
    for name, v in d.items():
        full = name.lower()
        if "container" in v:
            full = v["container"].lower() + "|" + full
        cmds[full] = v
CATS = ["keyspace","read","write","set","sortedset","list","hash","string","bitmap","hyperloglog","geo","stream","pubsub","admin","fast","slow","blocking","dangerous","connection","transaction","scripting"]
out = []
skip = lambda v: "ONLY_SENTINEL" in v.get("command_flags", [])
for full in sorted(cmds):
    v = cmds[full]
    if skip(v): continue
    flags = [f.lower() for f in v.get("command_flags", [])]
    cats = set(c.lower() for c in v.get("acl_categories", []))
    if "write" in flags: cats.add("write")
    if "readonly" in flags and "scripting" not in cats: cats.add("read")
    if "admin" in flags: cats |= {"admin","dangerous"}
    if "pubsub" in flags: cats.add("pubsub")
    if "fast" in flags: cats.add("fast")
    if "blocking" in flags: cats.add("blocking")
    if "fast" not in cats: cats.add("slow")
    for c in cats: assert c in CATS, c
    specs = []
    for ks in v.get("key_specs", []):
        kf = ",".join(f.lower() for f in ks.get("flags", []))
        bs = ks["begin_search"]
        if "index" in bs: b = "i%d" % bs["index"]["pos"]
        elif "keyword" in bs: b = "k%s,%d" % (bs["keyword"]["keyword"].lower(), bs["keyword"]["startfrom"])
        else: b = "u"
        fk = ks["find_keys"]
        if "range" in fk: f = "r%d,%d,%d" % (fk["range"]["lastkey"], fk["range"]["step"], fk["range"]["limit"])
        elif "keynum" in fk: f = "n%d,%d,%d" % (fk["keynum"]["keynumidx"], fk["keynum"]["firstkey"], fk["keynum"]["step"])
        else: f = "u"
        specs.append("%s:%s:%s" % (kf, b, f))
    cats_sorted = [c for c in CATS if c in cats]
    getkeys = v.get("get_keys_function", "-")
    out.append("%s %d %s %s %s %s" % (full, v["arity"], ",".join(flags) or "-", ",".join(cats_sorted), ";".join(specs) or "-", getkeys))
print("# Redis 7.0.15's command table (ACLs, key specs), one command or subcommand a line:")
print("# name arity flags categories key-specs getkeys-proc. Generated from redis/src/commands/*.json")
print("# (tag 7.0.15) by ci/gen-redis-commands.py.")
print("# categories = acl_categories + those implied by the flags (server.c setImplicitACLCategories).")
print("# key spec = flags:begin-search:find-keys; i<pos> | k<keyword>,<startfrom> | u(nknown);")
print("# r<lastkey>,<step>,<limit> | n<keynumidx>,<firstkey>,<step> | u. getkeys-proc: Redis's")
print("# get_keys_function (db.c) or -.")
print("\n".join(out))
