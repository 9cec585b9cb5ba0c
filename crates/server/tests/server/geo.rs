//! GEO commands against redis-server 7.0.15: every reply (RESP2, and RESP3 byte for byte),
//! the stored scores (ZRANGE WITHSCORES), STORE destinations, errors, COMMAND GETKEYS and what
//! the writes propagate (a replica of each server).

use forkless_testkit::{RedisServer, TempDir};

use crate::common::{assert_same_reply, oracle_pair, Client, TestServer};

/// A deterministic xorshift stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A value in `[lo, hi)` with 6 decimals, as text.
    fn coord(&mut self, lo: f64, hi: f64) -> String {
        let f = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        format!("{:.6}", lo + f * (hi - lo))
    }
}

const SCRIPT: &[&[&str]] = &[
    &[
        "GEOADD",
        "Sicily",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ],
    &["ZRANGE", "Sicily", "0", "-1", "WITHSCORES"],
    &[
        "GEOADD",
        "Sicily",
        "NX",
        "13",
        "38",
        "Palermo",
        "14",
        "37",
        "Agrigento",
    ],
    &[
        "GEOADD", "Sicily", "XX", "CH", "13.5", "38.1", "Palermo", "1", "1", "Nowhere",
    ],
    &["GEOADD", "Sicily", "CH", "13.5", "38.1", "Palermo"],
    &["GEOADD", "Sicily", "NX", "XX", "1", "1", "x"],
    &["GEOADD", "Sicily", "GT", "1", "1", "x"],
    &["GEOADD", "Sicily", "1", "1"],
    &["GEOADD", "Sicily", "1", "1", "x", "2"],
    &["GEOADD", "Sicily", "200", "100", "x"],
    &["GEOADD", "Sicily", "1", "85.06", "x"],
    &["GEOADD", "Sicily", "-180.0001", "0", "x"],
    &["GEOADD", "Sicily", "abc", "1", "x"],
    &["GEOADD", "Sicily", "1", "nan", "x"],
    &["GEOADD", "Sicily", "1", "1", "ok", "1", "91", "bad"],
    &["GEOADD", "Sicily", "NX", "CH", "XX", "1", "1", "x"],
    &[
        "GEOADD",
        "edges",
        "180",
        "85.05112878",
        "ne",
        "-180",
        "-85.05112878",
        "sw",
        "0",
        "0",
        "o",
    ],
    &[
        "GEOADD",
        "edges",
        "180",
        "-85.05112878",
        "se",
        "-180",
        "85.05112878",
        "nw",
    ],
    &["ZRANGE", "edges", "0", "-1", "WITHSCORES"],
    &["GEOPOS", "edges", "ne", "sw", "o", "se", "nw", "none"],
    &["GEOHASH", "edges", "ne", "sw", "o", "se", "nw", "none"],
    &["ZRANGE", "Sicily", "0", "-1", "WITHSCORES"],
    &["GEODIST", "Sicily", "Palermo", "Catania"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "km"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "MI"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "ft"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "parsec"],
    &["GEODIST", "Sicily", "Palermo", "Catania", "km", "extra"],
    &["GEODIST", "Sicily", "Palermo", "nobody"],
    &["GEODIST", "nokey", "a", "b"],
    &["GEODIST", "Sicily", "Palermo", "Palermo"],
    &["GEOHASH", "Sicily", "Palermo", "Catania", "nobody"],
    &["GEOHASH", "nokey", "a"],
    &["GEOHASH", "Sicily"],
    &["GEOPOS", "Sicily", "Palermo", "nobody", "Catania"],
    &["GEOPOS", "nokey", "a", "b"],
    &["GEOPOS", "Sicily"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "WITHDIST",
        "WITHCOORD",
        "WITHHASH",
    ],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "WITHCOORD",
        "ASC",
    ],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "WITHDIST",
        "DESC",
    ],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "COUNT",
        "1",
        "DESC",
        "WITHDIST",
    ],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "COUNT",
        "1",
        "ANY",
    ],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "ANY"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "0"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "COUNT",
        "-3",
    ],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "x"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT"],
    &["GEORADIUS", "Sicily", "15", "37", "200", "parsec"],
    &["GEORADIUS", "Sicily", "15", "37", "-1", "km"],
    &["GEORADIUS", "Sicily", "15", "37", "far", "km"],
    &["GEORADIUS", "Sicily", "15", "95", "1", "km"],
    &["GEORADIUS", "Sicily", "15", "37", "1", "km", "bogus"],
    &["GEORADIUS", "Sicily", "15", "37", "1", "m"],
    &["GEORADIUS", "Sicily", "15", "37", "0", "m"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "STORE",
        "dst",
    ],
    &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "STOREDIST",
        "dst",
        "DESC",
    ],
    &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "STORE",
        "dst",
        "WITHDIST",
    ],
    &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE"],
    &["EXPIRE", "dst", "100"],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "STOREDIST",
        "dst",
        "COUNT",
        "1",
    ],
    &["TTL", "dst"],
    &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
    &["GEORADIUS", "Sicily", "0", "0", "1", "km", "STORE", "dst"],
    &["EXISTS", "dst"],
    &["GEORADIUS", "nokey", "15", "37", "200", "km"],
    &["SET", "dst", "v"],
    &[
        "GEORADIUS",
        "nokey",
        "15",
        "37",
        "200",
        "km",
        "STORE",
        "dst",
    ],
    &["EXISTS", "dst"],
    &[
        "GEORADIUS_RO",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "WITHDIST",
    ],
    &[
        "GEORADIUS_RO",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "STORE",
        "dst",
    ],
    &[
        "GEORADIUSBYMEMBER",
        "Sicily",
        "Palermo",
        "200",
        "km",
        "WITHDIST",
    ],
    &["GEORADIUSBYMEMBER", "Sicily", "Palermo", "100", "km"],
    &["GEORADIUSBYMEMBER", "Sicily", "nobody", "100", "km"],
    &["GEORADIUSBYMEMBER", "nokey", "nobody", "x", "y"],
    &["GEORADIUSBYMEMBER", "nokey", "nobody", "x", "y", "bogus"],
    &[
        "GEORADIUSBYMEMBER",
        "Sicily",
        "Palermo",
        "200",
        "km",
        "STOREDIST",
        "d2",
    ],
    &["ZRANGE", "d2", "0", "-1", "WITHSCORES"],
    &[
        "GEORADIUSBYMEMBER_RO",
        "Sicily",
        "Palermo",
        "200",
        "km",
        "ASC",
        "WITHHASH",
    ],
    &[
        "GEORADIUSBYMEMBER_RO",
        "Sicily",
        "Palermo",
        "200",
        "km",
        "STOREDIST",
        "d2",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMMEMBER",
        "Palermo",
        "BYRADIUS",
        "200",
        "km",
        "WITHDIST",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "400",
        "400",
        "km",
        "WITHCOORD",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "100",
        "100",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "-1",
        "100",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "1",
        "h",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "w",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "1",
        "1",
        "yd",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMMEMBER",
        "nobody",
        "BYRADIUS",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMMEMBER",
        "Palermo",
        "FROMLONLAT",
        "1",
        "1",
        "BYRADIUS",
        "1",
        "km",
    ],
    &["GEOSEARCH", "Sicily", "BYRADIUS", "1", "km"],
    &["geosearch", "Sicily", "FROMMEMBER", "Palermo"],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMMEMBER",
        "Palermo",
        "BYRADIUS",
        "1",
        "km",
        "BYBOX",
        "1",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMMEMBER",
        "Palermo",
        "BYRADIUS",
        "1",
        "km",
        "STORE",
        "x",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMMEMBER",
        "Palermo",
        "BYRADIUS",
        "1",
        "km",
        "STOREDIST",
    ],
    &[
        "GEOSEARCH",
        "nokey",
        "FROMMEMBER",
        "x",
        "BYRADIUS",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "nokey",
        "FROMLONLAT",
        "500",
        "1",
        "BYRADIUS",
        "1",
        "km",
    ],
    &[
        "GEOSEARCH",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "200",
        "km",
        "ANY",
    ],
    &[
        "GEOSEARCHSTORE",
        "gs",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "200",
        "km",
    ],
    &["ZRANGE", "gs", "0", "-1", "WITHSCORES"],
    &[
        "GEOSEARCHSTORE",
        "gs",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYBOX",
        "400",
        "400",
        "km",
        "STOREDIST",
        "DESC",
        "COUNT",
        "1",
    ],
    &["ZRANGE", "gs", "0", "-1", "WITHSCORES"],
    &[
        "GEOSEARCHSTORE",
        "gs",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "200",
        "km",
        "WITHDIST",
    ],
    &[
        "GEOSEARCHSTORE",
        "gs",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "200",
        "km",
        "STORE",
        "x",
    ],
    &[
        "GEOSEARCHSTORE",
        "gs",
        "nokey",
        "FROMMEMBER",
        "x",
        "BYRADIUS",
        "200",
        "km",
    ],
    &["EXISTS", "gs"],
    &["SET", "str", "v"],
    &["GEOADD", "str", "1", "1", "x"],
    &["GEOADD", "str", "1", "100", "x"],
    &["GEOPOS", "str", "x"],
    &["GEOHASH", "str", "x"],
    &["GEODIST", "str", "a", "b"],
    &["GEODIST", "str", "a", "b", "parsec"],
    &["GEORADIUS", "str", "1", "1", "1", "km"],
    &["GEORADIUS", "str", "1", "100", "1", "km"],
    &["GEORADIUSBYMEMBER", "str", "x", "1", "km"],
    &[
        "GEOSEARCH",
        "str",
        "FROMLONLAT",
        "1",
        "1",
        "BYRADIUS",
        "1",
        "km",
    ],
    &[
        "GEOSEARCHSTORE",
        "Sicily",
        "str",
        "FROMLONLAT",
        "1",
        "1",
        "BYRADIUS",
        "1",
        "km",
    ],
    &[
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "STORE",
        "str",
    ],
    &["TYPE", "str"],
    &[
        "ZADD",
        "plain",
        "-1",
        "neg",
        "1e300",
        "huge",
        "4503599627370496",
        "big",
    ],
    &["GEOPOS", "plain", "neg", "huge", "big"],
    &["GEOHASH", "plain", "neg", "huge", "big"],
    &["GEODIST", "plain", "neg", "big"],
    &[
        "COMMAND",
        "GETKEYS",
        "GEORADIUS",
        "k",
        "0",
        "0",
        "1",
        "km",
        "STORE",
        "d1",
        "STOREDIST",
        "d2",
    ],
    &[
        "COMMAND",
        "GETKEYS",
        "GEORADIUS",
        "k",
        "0",
        "0",
        "1",
        "km",
        "STOREDIST",
        "d2",
        "STORE",
        "d1",
    ],
    &[
        "COMMAND",
        "GETKEYS",
        "GEORADIUS",
        "k",
        "0",
        "0",
        "1",
        "km",
        "WITHDIST",
        "STORE",
    ],
    &[
        "COMMAND",
        "GETKEYS",
        "GEORADIUS",
        "k",
        "0",
        "0",
        "1",
        "km",
        "COUNT",
        "store",
        "store",
        "d",
    ],
    &[
        "COMMAND",
        "GETKEYS",
        "GEORADIUSBYMEMBER",
        "k",
        "m",
        "1",
        "km",
        "STORE",
        "d",
    ],
    &[
        "COMMAND",
        "GETKEYS",
        "GEORADIUS_RO",
        "k",
        "0",
        "0",
        "1",
        "km",
    ],
    &[
        "COMMAND",
        "GETKEYS",
        "GEOSEARCHSTORE",
        "d",
        "s",
        "FROMMEMBER",
        "m",
        "BYRADIUS",
        "1",
        "km",
    ],
    &["COMMAND", "GETKEYS", "GEOADD", "k", "1", "1", "m"],
    &[
        "EVAL",
        "return redis.call('georadius', KEYS[1], 15, 37, 200, 'km', 'STORE', KEYS[2])",
        "2",
        "Sicily",
        "fromscript",
    ],
    &["ZRANGE", "fromscript", "0", "-1", "WITHSCORES"],
];

/// A random GEO set with repeated positions (equal distances), searched in every shape.
fn random_script() -> Vec<Vec<String>> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut cmds: Vec<Vec<String>> = Vec::new();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut add = s(&["GEOADD", "pts"]);
    for i in 0..400 {
        let (lon, lat) = if i % 7 == 3 {
            // Several members at one place: distance ties.
            ("2.294500".to_string(), "48.858400".to_string())
        } else {
            (rng.coord(1.5, 3.5), rng.coord(48.0, 49.5))
        };
        add.extend([lon, lat, format!("p{i}")]);
    }
    cmds.push(add);
    cmds.push(s(&["ZRANGE", "pts", "0", "-1", "WITHSCORES"]));
    for _ in 0..40 {
        let lon = rng.coord(1.5, 3.5);
        let lat = rng.coord(48.0, 49.5);
        let r = (rng.next() % 120 + 1).to_string();
        let count = (rng.next() % 30 + 1).to_string();
        let w = (rng.next() % 150 + 1).to_string();
        let h = (rng.next() % 150 + 1).to_string();
        cmds.push(s(&["GEORADIUS", "pts", &lon, &lat, &r, "km"]));
        cmds.push(s(&[
            "GEORADIUS",
            "pts",
            &lon,
            &lat,
            &r,
            "km",
            "WITHDIST",
            "ASC",
        ]));
        cmds.push(s(&[
            "GEORADIUS",
            "pts",
            &lon,
            &lat,
            &r,
            "km",
            "WITHDIST",
            "COUNT",
            &count,
        ]));
        cmds.push(s(&[
            "GEORADIUS",
            "pts",
            &lon,
            &lat,
            &r,
            "km",
            "DESC",
            "COUNT",
            &count,
        ]));
        cmds.push(s(&[
            "GEORADIUS",
            "pts",
            &lon,
            &lat,
            &r,
            "km",
            "COUNT",
            &count,
            "ANY",
        ]));
        cmds.push(s(&[
            "GEOSEARCH",
            "pts",
            "FROMLONLAT",
            &lon,
            &lat,
            "BYBOX",
            &w,
            &h,
            "km",
        ]));
        cmds.push(s(&[
            "GEOSEARCH",
            "pts",
            "FROMLONLAT",
            &lon,
            &lat,
            "BYBOX",
            &w,
            &h,
            "km",
            "WITHHASH",
            "WITHCOORD",
            "COUNT",
            &count,
        ]));
        cmds.push(s(&[
            "GEOSEARCH",
            "pts",
            "FROMMEMBER",
            "p3",
            "BYRADIUS",
            &r,
            "mi",
            "DESC",
            "COUNT",
            &count,
        ]));
        cmds.push(s(&[
            "GEOSEARCHSTORE",
            "st",
            "pts",
            "FROMLONLAT",
            &lon,
            &lat,
            "BYRADIUS",
            &r,
            "km",
            "STOREDIST",
            "COUNT",
            &count,
        ]));
        cmds.push(s(&["ZRANGE", "st", "0", "-1", "WITHSCORES"]));
        cmds.push(s(&["GEODIST", "pts", "p1", "p2", "ft"]));
    }
    // Huge areas (the neighbour boxes repeat) and one near the antimeridian and a pole.
    cmds.push(s(&[
        "GEORADIUS",
        "pts",
        "0",
        "0",
        "8000",
        "km",
        "COUNT",
        "5",
    ]));
    cmds.push(s(&[
        "GEOSEARCH",
        "pts",
        "FROMLONLAT",
        "179.9",
        "84",
        "BYRADIUS",
        "20000",
        "km",
        "COUNT",
        "3",
        "DESC",
    ]));
    cmds.push(s(&[
        "GEOSEARCH",
        "pts",
        "FROMLONLAT",
        "2",
        "48",
        "BYBOX",
        "40000",
        "40000",
        "km",
        "COUNT",
        "2",
    ]));
    cmds
}

#[test]
fn geo_commands_equal_redis_server() {
    let Some((_servers, mut a, mut b)) = oracle_pair("geo-oracle") else {
        return;
    };
    for cmd in SCRIPT {
        assert_same_reply(&mut a, &mut b, cmd);
    }
    for cmd in random_script() {
        let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_same_reply(&mut a, &mut b, &argv);
    }
}

/// RESP3: coordinates are doubles printed as `addReplyHumanLongDouble`, a missing GEOPOS
/// member is `_`; the bytes must be redis-server's.
#[test]
fn geo_resp3_bytes_equal_redis_server() {
    let dir = TempDir::new("geo-resp3-oracle");
    let Some(redis) = RedisServer::start(dir.path(), &[]) else {
        return;
    };
    let ours = TestServer::start(&[]);
    let cmds: &[&[&str]] = &[
        &[
            "GEOADD",
            "Sicily",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
        &["GEOPOS", "Sicily", "Palermo", "nobody", "Catania"],
        &["GEOHASH", "Sicily", "Palermo", "nobody"],
        &["GEODIST", "Sicily", "Palermo", "Catania", "km"],
        &["GEODIST", "Sicily", "Palermo", "nobody"],
        &[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "WITHDIST",
            "WITHCOORD",
            "WITHHASH",
        ],
        &[
            "GEOSEARCH",
            "Sicily",
            "FROMMEMBER",
            "Palermo",
            "BYRADIUS",
            "300",
            "km",
            "WITHCOORD",
            "DESC",
        ],
        &[
            "GEORADIUSBYMEMBER_RO",
            "Sicily",
            "Palermo",
            "300",
            "km",
            "WITHCOORD",
        ],
        &["GEORADIUS", "Sicily", "15", "37", "1", "km", "WITHCOORD"],
        &[
            "EVAL",
            "redis.setresp(3) return redis.call('geopos', KEYS[1], 'Palermo')",
            "1",
            "Sicily",
        ],
    ];
    let transcript = |port: u16| -> String {
        let mut c = Client::connect(port);
        c.send(&["HELLO", "3"]);
        c.send(&["PING"]);
        while c.line() != "+PONG\r\n" {}
        let mut out = String::new();
        for cmd in cmds {
            c.send(cmd);
            c.send(&["PING"]);
            loop {
                let l = c.line();
                if l == "+PONG\r\n" || l.is_empty() {
                    break;
                }
                out.push_str(&l);
            }
            out.push_str("--\n");
        }
        out
    };
    let want = transcript(redis.port());
    let got = transcript(ours.port);
    assert_eq!(got, want);
}

/// What the writes propagate: GEOADD as the ZADD it runs (with the geohash scores), the STORE
/// forms verbatim when they changed something (also when they deleted the destination),
/// nothing for a search that stored nothing. The append-only files must equal redis-server's.
#[test]
fn geo_writes_propagate_as_redis_server() {
    let dir = TempDir::new("geo-aof-oracle");
    let opts = ["--appendonly", "yes", "--appendfsync", "always"];
    let Some(redis) = RedisServer::start(dir.path(), &opts) else {
        return;
    };
    let ours = TestServer::start(&opts);
    let cmds: &[&[&str]] = &[
        &[
            "GEOADD",
            "Sicily",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
        &[
            "GEOADD",
            "Sicily",
            "NX",
            "CH",
            "13.361389",
            "38.115556",
            "Palermo",
            "14",
            "37",
            "Agrigento",
        ],
        &[
            "GEOADD",
            "Sicily",
            "XX",
            "13.361389",
            "38.115556",
            "Palermo",
        ],
        &["GEOADD", "Sicily", "200", "1", "bad"],
        &["GEORADIUS", "Sicily", "15", "37", "200", "km"],
        &[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "STORE",
            "d1",
        ],
        &[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "STOREDIST",
            "d1",
            "COUNT",
            "1",
        ],
        &["GEORADIUS", "Sicily", "0", "0", "1", "km", "STORE", "d1"],
        &["GEORADIUS", "Sicily", "0", "0", "1", "km", "STORE", "d1"],
        &[
            "GEORADIUSBYMEMBER",
            "Sicily",
            "Palermo",
            "300",
            "km",
            "STORE",
            "d2",
        ],
        &[
            "GEOSEARCHSTORE",
            "d3",
            "Sicily",
            "FROMMEMBER",
            "Catania",
            "BYBOX",
            "500",
            "500",
            "km",
            "STOREDIST",
        ],
        &[
            "GEOSEARCHSTORE",
            "d3",
            "nokey",
            "FROMMEMBER",
            "Catania",
            "BYBOX",
            "500",
            "500",
            "km",
        ],
        &[
            "GEOSEARCHSTORE",
            "d3",
            "nokey",
            "FROMMEMBER",
            "Catania",
            "BYBOX",
            "500",
            "500",
            "km",
        ],
        &[
            "GEOSEARCH",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "200",
            "km",
        ],
        &["SET", "end", "1"],
    ];
    let mut a = Client::connect(redis.port());
    let mut b = ours.client();
    for cmd in cmds {
        assert_same_reply(&mut a, &mut b, cmd);
    }
    let want = String::from_utf8_lossy(&crate::scripting::incr_aof(redis.dir())).into_owned();
    let got = String::from_utf8_lossy(&crate::scripting::incr_aof(ours.dir.path())).into_owned();
    assert!(want.contains("zadd") || want.contains("ZADD"), "{want}");
    assert_eq!(got, want);
}

/// A stock redis-server replica of a forkless primary holds the same GEO scores and STORE
/// results (GEOADD arrives as ZADD, the STORE forms verbatim).
#[test]
fn a_stock_replica_of_geo_writes_equals_the_primary() {
    let primary = TestServer::start(&[]);
    let p = primary.port.to_string();
    let dir = TempDir::new("geo-replica");
    let Some(stock) = RedisServer::start(dir.path(), &["--replicaof", "127.0.0.1", &p]) else {
        return;
    };
    let mut c = primary.client();
    let writes: &[&[&str]] = &[
        &[
            "GEOADD",
            "Sicily",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
        &[
            "GEOADD",
            "Sicily",
            "CH",
            "14",
            "37",
            "Agrigento",
            "13",
            "38.2",
            "Palermo",
        ],
        &[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "STOREDIST",
            "d1",
        ],
        &[
            "GEOSEARCHSTORE",
            "d2",
            "Sicily",
            "FROMMEMBER",
            "Catania",
            "BYBOX",
            "300",
            "300",
            "km",
        ],
        &["SET", "end", "1"],
    ];
    for w in writes {
        c.call(w);
    }
    let mut r = Client::connect(stock.port());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while r.call(&["GET", "end"]) != crate::common::bulk("1") {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never caught up"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for key in ["Sicily", "d1", "d2"] {
        let cmd = ["ZRANGE", key, "0", "-1", "WITHSCORES"];
        let want = c.call(&cmd);
        assert_eq!(r.call(&cmd), want, "{key}");
        assert!(matches!(&want, forkless_testkit::Reply::Array(v) if !v.is_empty()));
    }
}
