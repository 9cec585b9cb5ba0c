//! The scripted-session runner shared by the per-type command tests: each step's reply and
//! propagated commands, as recorded from redis-server 7.0.15.

use forkless_keyspace::{Config, Session};

use crate::support;

/// `(command, reply, propagated)`: arguments split on spaces (`""` is the empty string, `\s`
/// a space); propagated commands joined by ` | `, empty when nothing is propagated.
pub(crate) type Step = (&'static str, &'static str, &'static str);

pub(crate) fn run(steps: &[Step]) {
    let (ks, sink) = support::keyspace_with_sink(Config::seeded(7));
    let mut s = Session::default();
    for (i, (cmd, want, want_prop)) in steps.iter().enumerate() {
        let args: Vec<Vec<u8>> = cmd
            .split(' ')
            .map(|a| {
                if a == "\"\"" {
                    Vec::new()
                } else {
                    a.replace("\\s", " ").into_bytes()
                }
            })
            .collect();
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        sink.take();
        let got = support::show(&support::to_resp(&ks.execute(&mut s, &argv)));
        assert_eq!(got, *want, "step {i}: `{cmd}`");
        let props: Vec<String> = sink
            .take()
            .into_iter()
            .map(|(_, argv)| argv)
            .filter(|a| {
                let n = a
                    .first()
                    .map(|x| x.to_ascii_uppercase())
                    .unwrap_or_default();
                n != b"MULTI" && n != b"EXEC" && n != b"SELECT"
            })
            .map(|a| {
                a.iter()
                    .map(|x| String::from_utf8_lossy(x).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(
            props.join(" | "),
            *want_prop,
            "step {i}: `{cmd}` propagated"
        );
    }
}
