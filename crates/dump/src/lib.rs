//! forkless-dump
