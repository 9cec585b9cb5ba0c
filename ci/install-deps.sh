#!/usr/bin/env bash
# Install what the tests need: Debian's redis-server 7.0.15 (the oracle) and redis-tools.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-check-rdb >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q redis-server redis-tools
fi
# Debian's package may start a system server on 6379; tests use their own ports, so stop it.
(service redis-server stop >/dev/null 2>&1 || true)
redis-server --version
rustup component list --installed 2>/dev/null | grep -qE '^(rustfmt|clippy)' || rustup component add rustfmt clippy
