//! Set commands: replies, error paths and propagation, one scripted session checked step by
//! step. The expected replies (as `support::show` prints them) and the propagated commands
//! (MULTI/EXEC and SELECT left out) were recorded from redis-server 7.0.15 with
//! `appendfsync always`: each step's reply and what it appended to the AOF.

use crate::session;
use crate::support;

use forkless_keyspace::{Config, Session};
use session::run;

#[test]
fn sets_session_matches_redis_7_0() {
    run(&[
        ("SET str x", "+OK", "SET str x"),
        ("SADD s a b c", ":3", "SADD s a b c"),
        ("SADD s a d", ":1", "SADD s a d"),
        ("SADD str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SREM s a zz", ":1", "SREM s a zz"),
        ("SREM s zz", ":0", ""),
        ("SREM nokey a", ":0", ""),
        ("SREM str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SISMEMBER s b", ":1", ""),
        ("SISMEMBER s a", ":0", ""),
        ("SISMEMBER nokey a", ":0", ""),
        ("SISMEMBER str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SMISMEMBER s b a c", "[:1, :0, :1]", ""),
        ("SMISMEMBER nokey a", "[:0]", ""),
        ("SMISMEMBER str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SCARD s", ":3", ""),
        ("SCARD nokey", ":0", ""),
        ("SCARD str", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SMEMBERS nokey", "[]", ""),
        ("SMEMBERS str", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SADD one only", ":1", "SADD one only"),
        ("SMEMBERS one", "[\"only\"]", ""),
        ("SPOP nokey", "(nil)", ""),
        ("SPOP nokey 2", "[]", ""),
        ("SPOP s x", "-ERR value is out of range, must be positive", ""),
        ("SPOP s -1", "-ERR value is out of range, must be positive", ""),
        ("SPOP s 1 2", "-ERR syntax error", ""),
        ("SPOP str", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SPOP s 0", "[]", ""),
        ("SRANDMEMBER nokey", "(nil)", ""),
        ("SRANDMEMBER nokey 3", "[]", ""),
        ("SRANDMEMBER s x", "-ERR value is not an integer or out of range", ""),
        ("SRANDMEMBER s 1 2", "-ERR syntax error", ""),
        ("SRANDMEMBER s -9223372036854775808", "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807", ""),
        ("SRANDMEMBER str", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SRANDMEMBER one", "\"only\"", ""),
        ("SRANDMEMBER one -3", "[\"only\", \"only\", \"only\"]", ""),
        ("SRANDMEMBER one 5", "[\"only\"]", ""),
        ("SRANDMEMBER s 0", "[]", ""),
        ("SPOP one", "\"only\"", "SREM one only"),
        ("EXISTS one", ":0", ""),
        ("SADD t 1", ":1", "SADD t 1"),
        ("SMOVE s t b", ":1", "SMOVE s t b"),
        ("SMOVE s t zz", ":0", ""),
        ("SMOVE s s c", ":1", ""),
        ("SMOVE s s zz", ":0", ""),
        ("SMOVE nokey t a", ":0", ""),
        ("SMOVE nokey str a", ":0", ""),
        ("SMOVE s str c", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SMOVE str s c", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SISMEMBER t b", ":1", ""),
        ("SMOVE t new 1", ":1", "SMOVE t new 1"),
        ("SMOVE t new b", ":1", "SMOVE t new b"),
        ("EXISTS t", ":0", ""),
        ("SCARD new", ":2", ""),
        ("SISMEMBER new b", ":1", ""),
        ("SADD a 1 2 3", ":3", "SADD a 1 2 3"),
        ("SADD b 2 3 4", ":3", "SADD b 2 3 4"),
        ("SINTER a b nokey", "[]", ""),
        ("SINTER str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SINTER nokey str", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SUNION nokey str", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SDIFF nokey str", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SDIFF nokey a", "[]", ""),
        ("SINTERSTORE dst a nokey", ":0", ""),
        ("SADD dst x", ":1", "SADD dst x"),
        ("SINTERSTORE dst a nokey", ":0", "SINTERSTORE dst a nokey"),
        ("EXISTS dst", ":0", ""),
        ("SINTERSTORE dst a b", ":2", "SINTERSTORE dst a b"),
        ("SCARD dst", ":2", ""),
        ("SUNIONSTORE dst a b", ":4", "SUNIONSTORE dst a b"),
        ("SCARD dst", ":4", ""),
        ("SDIFFSTORE dst a b", ":1", "SDIFFSTORE dst a b"),
        ("SMEMBERS dst", "[\"1\"]", ""),
        ("SDIFFSTORE dst a a", ":0", "SDIFFSTORE dst a a"),
        ("EXISTS dst", ":0", ""),
        ("SET dst string", "+OK", "SET dst string"),
        ("SUNIONSTORE dst a", ":3", "SUNIONSTORE dst a"),
        ("TYPE dst", "+set", ""),
        ("SINTERSTORE dst str a", "-WRONGTYPE Operation against a key holding the wrong kind of value", ""),
        ("SDIFFSTORE str a", ":3", "SDIFFSTORE str a"),
        ("TYPE str", "+set", ""),
    ]);
}

fn call(
    ks: &forkless_keyspace::Keyspace,
    s: &mut Session,
    argv: &[&str],
) -> forkless_keyspace::Reply {
    let a: Vec<&[u8]> = argv.iter().map(|x| x.as_bytes()).collect();
    ks.execute(s, &a)
}

fn members(r: &forkless_keyspace::Reply) -> Vec<Vec<u8>> {
    match r {
        forkless_keyspace::Reply::Array(items) => items
            .iter()
            .map(|i| match i {
                forkless_keyspace::Reply::Bulk(b) => b.clone(),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn random_commands_pick_members_and_propagate_what_they_removed() {
    let (ks, sink) = support::keyspace_with_sink(Config::seeded(9));
    let mut s = Session::default();
    let all: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD", "s"];
    sadd.extend(all.iter().map(String::as_str));
    call(&ks, &mut s, &sadd);
    sink.take();

    // SRANDMEMBER: positive count = distinct members, negative = with repetition.
    let r = members(&call(&ks, &mut s, &["SRANDMEMBER", "s", "5"]));
    let mut d = r.clone();
    d.sort();
    d.dedup();
    assert_eq!(d.len(), 5);
    let r = members(&call(&ks, &mut s, &["SRANDMEMBER", "s", "-50"]));
    assert_eq!(r.len(), 50);
    assert!(r
        .iter()
        .all(|m| all.iter().any(|a| a.as_bytes() == m.as_slice())));
    assert_eq!(
        members(&call(&ks, &mut s, &["SRANDMEMBER", "s", "100"])).len(),
        20
    );
    assert!(call(&ks, &mut s, &["SRANDMEMBER", "s", "-99999999999"]).is_error());
    assert!(sink.take().is_empty(), "SRANDMEMBER propagates nothing");

    // SPOP with a count: one SREM per popped member.
    let popped = members(&call(&ks, &mut s, &["SPOP", "s", "3"]));
    assert_eq!(popped.len(), 3);
    let props: Vec<_> = sink
        .take()
        .into_iter()
        .filter(|(_, a)| a.len() > 1)
        .collect();
    assert_eq!(props.len(), 3, "MULTI/EXEC aside, one SREM each");
    for (m, (_, argv)) in popped.iter().zip(&props) {
        assert_eq!(argv, &vec![b"SREM".to_vec(), b"s".to_vec(), m.clone()]);
    }
    assert_eq!(
        call(&ks, &mut s, &["SCARD", "s"]),
        forkless_keyspace::Reply::Integer(17)
    );

    // SPOP without a count.
    let forkless_keyspace::Reply::Bulk(m) = call(&ks, &mut s, &["SPOP", "s"]) else {
        panic!("SPOP s did not reply a bulk");
    };
    assert_eq!(sink.take()[0].1, vec![b"SREM".to_vec(), b"s".to_vec(), m]);

    // A count covering the whole set: DEL.
    let rest = members(&call(&ks, &mut s, &["SPOP", "s", "16"]));
    assert_eq!(rest.len(), 16);
    assert_eq!(sink.take()[0].1, vec![b"DEL".to_vec(), b"s".to_vec()]);
    assert_eq!(
        call(&ks, &mut s, &["EXISTS", "s"]),
        forkless_keyspace::Reply::Integer(0)
    );
}
