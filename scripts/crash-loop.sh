#!/usr/bin/env bash
# Longer crash-safety run than CI's: kill -9 the daemon at random moments N times (default 500).
set -euo pipefail
cd "$(dirname "$0")/.."
CRASH_ITERATIONS=${1:-500} cargo test --release --test crash -- --nocapture
