#!/usr/bin/env bash
# Regenerates linker/symbol-order.txt: the functions the release binary runs, hottest first,
# which build.rs hands to the linker so they sit together at the start of .text. The kernel
# maps code in 64 KiB "fault-around" blocks, so without it the few functions a daemon runs are
# spread over nearly every block of the binary and all 8 MB of code ends up resident.
#
# Workload, each under valgrind's callgrind (complete: every function that runs is recorded):
#   1. `automon import` of 200,000 lines of the recorded host (chunk sealing, rollups);
#   2. `automon run` on embedded defaults at 1 s collection: start-up, then 120 s of steady
#      state with /metrics scraped every second (gzip, as Prometheus asks), /health and the
#      query API every few seconds, the built-in alert rules evaluated every 15 s.
# Order: steady-state functions by instructions spent, then start-up, then import.
# Symbol names carry hashes of the toolchain and dependency versions: rerun this after a Rust
# or Cargo.lock update (scripts/bench-vs-node-exporter.sh prints how many still match).
# Needs: valgrind, curl, python3, xz. About 3 minutes after the release build. KEEP=1 keeps the
# callgrind files; RECORDING=FILE.om.xz replaces ../shared/data's recorded host.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
out=linker/symbol-order.txt
cargo build --release --locked -q
bin=$PWD/target/release/automon
work=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "KEEP is set: callgrind files stay in $work" >&2
trap 'kill $PID 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
PID=

port=$(free_port)
bench_config "$work" "$port"
cg() { valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/$1" "${@:2}"; }

recording=${RECORDING:-../shared/data/recordings/host-1s-30min.om.xz}
[ -r "$recording" ] || { echo "no recording at $recording: set RECORDING to an OpenMetrics .om.xz file" >&2; exit 1; }
# head closes the pipe early; xz's SIGPIPE is expected, so only the line count is checked.
xz -dc "$recording" | head -n 200000 > "$work/rec.om" || true
[ "$(wc -l < "$work/rec.om")" -eq 200000 ] || { echo "$recording: fewer than 200,000 lines" >&2; exit 1; }
echo '# EOF' >> "$work/rec.om"
cg import.out "$bin" import --config "$work/automon.toml" "$work/rec.om" > /dev/null 2>&1

# Not through cg(): $! must be valgrind itself, which callgrind_control and kill address.
AUTOMON_LOG=warn valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/run.out" \
  "$bin" run --config "$work/automon.toml" 2>"$work/run.log" &
PID=$!
for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 1; done
sleep 5 # the first rounds and rule evaluation
callgrind_control --dump=startup "$PID" > /dev/null
sleep 2; ls "$work"/run.out.* > /dev/null # the dump arrived
now=$(date +%s)
for i in $(seq 120); do
  curl -s -o /dev/null -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/metrics"
  if ((i % 5 == 0)); then
    curl -s -o /dev/null "http://127.0.0.1:$port/metrics"
    curl -s -o /dev/null "http://127.0.0.1:$port/health"
    curl -s -o /dev/null "http://127.0.0.1:$port/api/v1/query?query=rate(node_cpu_seconds_total%5B1m%5D)"
    curl -s -o /dev/null "http://127.0.0.1:$port/api/v1/query_range?query=node_load1&start=$((now - 3600))&end=$((now + i))&step=15"
  fi
  sleep 1
done
kill -TERM "$PID"
wait "$PID" || true
PID=

mkdir -p linker
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ {print $3}' > "$work/text-symbols"
/usr/bin/python3 - "$work" "$out" <<'PY'
import collections, glob, re, sys
work, out = sys.argv[1], sys.argv[2]
in_binary = set(open(f"{work}/text-symbols").read().split())
name_re = re.compile(r"^(c?fn)=\((\d+)\)(?: (.*))?$")

def self_costs(path):
    """Instructions spent in each function itself (callgrind's self cost)."""
    names, cost, cur, after_call = {}, collections.Counter(), None, False
    for line in open(path, errors="replace"):
        m = name_re.match(line.rstrip("\n"))
        if m:
            kind, ident, name = m.groups()
            if name:
                names[ident] = re.sub(r"'\d+$", "", name)  # callgrind's recursion marker
            if kind == "fn":
                cur, after_call = names.get(ident), False
            continue
        if line.startswith("calls="):
            after_call = True  # the next cost line is the callee's inclusive cost
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_call:
                after_call = False
            elif cur:
                parts = line.split()
                if len(parts) > 1:
                    cost[cur] += int(parts[1])
    return cost

# run.out.1 is the dump taken after start-up; run.out, written at exit, the steady state.
startup, steady = glob.glob(f"{work}/run.out.*"), [f"{work}/run.out"]
seen, order = set(), []
for group in (steady, startup, [f"{work}/import.out"]):
    total = collections.Counter()
    for path in group:
        total.update(self_costs(path))
    for name, _ in total.most_common():
        if name in in_binary and name not in seen:
            seen.add(name)
            order.append(name)
with open(out, "w") as f:
    f.write("# Functions of the release binary in the order the linker places them: generated by\n")
    f.write("# scripts/symbol-order.sh (see there and build.rs). Do not edit by hand.\n")
    f.write("\n".join(order) + "\n")
print(f"{out}: {len(order)} functions")
PY
