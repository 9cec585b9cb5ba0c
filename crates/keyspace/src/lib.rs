//! forkless-keyspace
