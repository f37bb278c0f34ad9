#!/usr/bin/env bash
# The local demo: builds Weft and runs `weft demo` (pods as network namespaces, real sidecars).
# Needs root. Extra arguments go to `weft demo` (e.g. --rate 500 --duration 10s).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prereqs.sh
cargo build --release --bins --quiet
exec target/release/weft demo "$@"
