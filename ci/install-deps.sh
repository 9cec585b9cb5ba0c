#!/usr/bin/env bash
# Install what the tests need: Debian's redis-server 7.0.15 (the oracle) and redis-tools.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-check-rdb >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q redis-server redis-tools
fi
# tikv-jemalloc-sys (the CLI's allocator) builds jemalloc with its configure script and make.
if ! command -v make >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q make
fi
# Debian's package may start a system server on 6379; tests use their own ports, so stop it.
(service redis-server stop >/dev/null 2>&1 || true)
redis-server --version
# rustfmt and clippy come with the toolchain here; add them only if one is missing.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi
