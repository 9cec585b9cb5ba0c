//! The server over real loopback TCP: one test binary, one module per area.
//!
//! Each test starts its own server in-process on a free port (`Server::bind` with port 0; its
//! runtime, listeners and connections are the real ones) and talks RESP to it through raw
//! sockets, `redis-cli` and redis-server 7.0.15 as the oracle where replies are compared.

mod common;

mod acl;
mod auth;
mod blocking;
mod cli;
mod crash;
mod geo;
mod multi;
mod oracle;
mod protocol;
mod pubsub;
mod pubsub_shard;
mod replication;
mod scripting;
