#!/usr/bin/env bash
# Side-by-side measurement of automon and Debian's prometheus-node-exporter on this machine:
#   1. /metrics latency: median and p99 over N sequential scrapes (default 300) of each;
#   2. CPU time (user+sys) of each process over 60 s at 1 s collection and 1 scrape/s;
#   3. RSS of each after RSS_MINUTES (default 10) of 1 scrape/s.
# Usage: scripts/bench-vs-node-exporter.sh [--quick]   (--quick: 1 minute for RSS)
# Needs: prometheus-node-exporter, curl, python3. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
SCRAPES=${SCRAPES:-300}
CPU_SECONDS=${CPU_SECONDS:-60}
RSS_MINUTES=${RSS_MINUTES:-10}
[ "${1:-}" = "--quick" ] && RSS_MINUTES=1

cargo build --release --locked -q
# The function order (linker/symbol-order.txt) only helps while its names match this build's.
listed=$(grep -vc '^#' linker/symbol-order.txt)
matched=$(nm --defined-only target/release/automon | awk '{print $3}' | sort -u |
  comm -12 - <(grep -v '^#' linker/symbol-order.txt | sort -u) | wc -l)
echo "symbol order: $matched of $listed listed functions are in this build" >&2
if [ $((matched * 10)) -lt $((listed * 9)) ]; then
  echo "WARNING: stale linker/symbol-order.txt; run scripts/symbol-order.sh (RSS will be higher)" >&2
fi
work=$(mktemp -d)
trap 'kill $AM_PID $NE_PID 2>/dev/null || true; rm -rf "$work"' EXIT

AM_PORT=$(free_port); NE_PORT=$(free_port)
bench_config "$work" "$AM_PORT"
AUTOMON_LOG=warn ./target/release/automon run --config "$work/automon.toml" 2>"$work/automon.log" &
AM_PID=$!
prometheus-node-exporter --web.listen-address="127.0.0.1:$NE_PORT" 2>"$work/ne.log" &
NE_PID=$!
for port in $AM_PORT $NE_PORT; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break; sleep 0.1; done
done

latency() { # port -> "median p99" in ms
  for _ in $(seq "$SCRAPES"); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$1/metrics"
  done | python3 -c 'import sys,statistics; v=sorted(float(x)*1000 for x in sys.stdin); print(f"{statistics.median(v):.3f} {v[int(len(v)*0.99)-1]:.3f}")'
}
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
scrape_both_for() { # seconds
  local pids=()
  for _ in $(seq "$1"); do
    curl -s -o /dev/null "http://127.0.0.1:$AM_PORT/metrics" & pids+=($!)
    curl -s -o /dev/null "http://127.0.0.1:$NE_PORT/metrics" & pids+=($!)
    sleep 1
  done
  # Only the curls: a bare `wait` would also wait for the two daemons.
  wait "${pids[@]}"
}

read -r am_med am_p99 < <(latency "$AM_PORT")
read -r ne_med ne_p99 < <(latency "$NE_PORT")

hz=$(getconf CLK_TCK)
am0=$(cpu_ticks $AM_PID); ne0=$(cpu_ticks $NE_PID)
scrape_both_for "$CPU_SECONDS"
am_cpu=$(python3 -c "print(f'{($(cpu_ticks $AM_PID)-$am0)/$hz:.2f}')")
ne_cpu=$(python3 -c "print(f'{($(cpu_ticks $NE_PID)-$ne0)/$hz:.2f}')")

remaining=$((RSS_MINUTES * 60 - CPU_SECONDS))
[ $remaining -gt 0 ] && scrape_both_for "$remaining"
am_rss=$(rss_kib $AM_PID); ne_rss=$(rss_kib $NE_PID)
am_size=$(curl -s "http://127.0.0.1:$AM_PORT/metrics" | wc -c); ne_size=$(curl -s "http://127.0.0.1:$NE_PORT/metrics" | wc -c)

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
echo "| measure | automon | node_exporter | ratio |"
echo "|---|---|---|---|"
echo "| /metrics median latency (ms, $SCRAPES scrapes) | $am_med | $ne_med | $(ratio "$am_med" "$ne_med") |"
echo "| /metrics p99 latency (ms) | $am_p99 | $ne_p99 | $(ratio "$am_p99" "$ne_p99") |"
echo "| CPU seconds over ${CPU_SECONDS}s (1s collection, 1 scrape/s) | $am_cpu | $ne_cpu | $(ratio "$am_cpu" "$ne_cpu") |"
echo "| RSS after ${RSS_MINUTES} min (KiB) | $am_rss | $ne_rss | $(ratio "$am_rss" "$ne_rss") |"
echo "| /metrics size (bytes) | $am_size | $ne_size | |"
