//! Loom models of the forkless snapshot protocol live in `tests/`. This crate has no code of its
//! own: the models drive the real `forkless-keyspace` and `forkless-snapshot` code, whose
//! concurrency primitives come from `forkless-sync`, which maps them to loom's under
//! `--cfg forkless_loom` and the `loom` feature.
