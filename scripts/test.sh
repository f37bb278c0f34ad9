#!/usr/bin/env bash
# Every test: unit, integration, and end to end (real binaries, iptables and network
# namespaces; needs root). With CI=true a missing prerequisite fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prereqs.sh
# The end-to-end tests run the workspace's binaries, so build them first.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
# How the code must read (STYLE.md): formatted, and clippy-clean.
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
