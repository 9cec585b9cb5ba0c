#!/usr/bin/env bash
# Model-check the snapshot's per-bucket protocol with loom (loom-tests/), in its own target dir so
# the --cfg does not invalidate the main build. LOOM_MAX_PREEMPTIONS bounds the search; the whole
# step takes about 4 to 5 minutes on 2 cores (1.5 to 3 to build, 75 s of CPU for the 14 models at
# 3 preemptions, up to 2.5 minutes of wall time when the machine is shared).
set -euo pipefail
if [ -f loom-tests/Cargo.toml ]; then
    RUSTFLAGS="--cfg forkless_loom" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
        cargo test --manifest-path loom-tests/Cargo.toml --release --target-dir target-loom
fi
