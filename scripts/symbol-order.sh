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
# Needs: valgrind, curl, python3, xz. Takes about 3 minutes after the release build; KEEP=1 keeps the callgrind files.
set -euo pipefail
cd "$(dirname "$0")/.."
out=linker/symbol-order.txt
cargo build --release --locked -q
bin=$PWD/target/release/automon
work=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "KEEP is set: callgrind files stay in $work" >&2
trap 'kill $PID 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
PID=

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/automon.toml" <<TOML
data_dir = "$work/data"
[http]
listen = "127.0.0.1:$port"
[collectors]
default_interval = "1s"
TOML
cg() { valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/$1" "${@:2}"; }

{ xz -dc ../shared/data/recordings/host-1s-30min.om.xz 2>/dev/null ||
  xz -dc "${RECORDING:?set RECORDING to an OpenMetrics .om.xz file}"; } |
  head -n 200000 > "$work/rec.om" || true
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
