#!/usr/bin/env bash
# Miri over forkless-compact, whose `unsafe` is pure Rust (CompactBytes' union and the raw parts
# of a box; SharedBytes' counted block with its header before the bytes; ArcOrBytes' tagged
# pointer: DESIGN.md section 1; the engine's other `unsafe` is the Lua VM's FFI boundary, which
# Miri cannot run): its unit tests and its model test, which compare each type with Vec<u8> or
# Arc, hold clones across writes, share handles across threads and count allocations, run under
# Miri's checks (use after free, double free, leaks, out-of-bounds and uninitialized reads,
# Stacked Borrows, data races on the counts). About a minute: Miri builds its own
# sysroot once. Miri needs a nightly toolchain; if none can be installed (no network), the step
# says so and is skipped rather than failing the run.
set -euo pipefail
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal --component miri,rust-src >/dev/null 2>&1 ||
        rustup component add --toolchain nightly miri rust-src >/dev/null 2>&1 || true
fi
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "NOTICE: no nightly toolchain with Miri could be installed: forkless-compact was not run under Miri" >&2
    exit 0
fi
# Isolation off: proptest reads its configuration and the environment.
PROPTEST_CASES=16 MIRIFLAGS=-Zmiri-disable-isolation \
    cargo +nightly miri test -p forkless-compact
