//! forkless-resp
