//! forkless-dict
