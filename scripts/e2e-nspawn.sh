#!/usr/bin/env bash
# End-to-end test of the .deb in a real, booted systemd: a minimal Debian tree (debootstrap,
# cached), booted as a throwaway container with systemd-nspawn, the package installed with apt
# inside, then the service checked the way an operator would use it.
#
#   sudo scripts/e2e-nspawn.sh target/package/automon_*.deb
#
# Needs root, systemd-nspawn (systemd-container), debootstrap and nsenter (util-linux). The tree
# is cached in $AUTOMON_E2E_CACHE (default /var/cache/automon-e2e); the first run downloads it
# from the mirror this machine's apt sources name. Prints one line per check and ends with
# "N passed, M failed"; exits 1 if any check failed.
set -euo pipefail

deb="${1:?usage: $0 path/to/automon_VERSION_ARCH.deb}"
deb="$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")"
[ -f "$deb" ] || { echo "no such file: $deb" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0 needs root (systemd-nspawn, debootstrap)" >&2; exit 2; }
for t in systemd-nspawn debootstrap nsenter; do
  command -v "$t" >/dev/null || { echo "$t missing: apt-get install systemd-container debootstrap util-linux" >&2; exit 2; }
done

start_all=$(date +%s.%N)
elapsed() { awk -v now="$(date +%s.%N)" -v t0="$1" 'BEGIN { printf "%.1f", now - t0 }'; }

# The cached tree (built once by scripts/nspawn-tree.sh, shared with tests/systemd.rs).
tree=$("$(dirname "$0")/nspawn-tree.sh")

# ---------------------------------------------------------------------------------------------
# Boot a throwaway copy. --keep-unit --register=no: there is no system bus or machined on the
# host to register with. The package directory is bound read-only at /pkg.
work=$(mktemp -d)
nspawn_pid=""
cleanup() {
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    [ -n "${init_pid:-}" ] && nsenter -t "$init_pid" -a systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$nspawn_pid" 2>/dev/null || true
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The upgrade: the same package with a higher version, repacked before boot and bound at
# /upgrade, so the maintainer scripts take their upgrade paths.
version=$(dpkg-deb -f "$deb" Version)
dpkg-deb -R "$deb" "$work/unpacked"
sed -i "s/^Version: .*/Version: $version+e2e1/" "$work/unpacked/DEBIAN/control"
mkdir "$work/upgrade"
dpkg-deb -b "$work/unpacked" "$work/upgrade/automon-upgrade.deb" >/dev/null

t_boot=$(date +%s.%N)
systemd-nspawn --keep-unit --register=no --ephemeral -b -D "$tree" \
  --bind-ro="$(dirname "$deb"):/pkg" --bind-ro="$work/upgrade:/upgrade" \
  >"$work/console.log" 2>&1 </dev/null &
nspawn_pid=$!
init_pid=""
# --ephemeral copies the tree first (a snapshot only on btrfs): allow a minute on a busy disk.
# Only the child named systemd is the container's init: nspawn also forks short-lived helpers,
# and taking one of those for init fails every later nsenter.
for _ in $(seq 600); do
  init_pid=$(pgrep -x -P "$nspawn_pid" systemd | head -1 || true)
  [ -n "$init_pid" ] && break
  sleep 0.1
done
[ -n "$init_pid" ] || { cat "$work/console.log" >&2; echo "container did not start" >&2; exit 1; }
in_ct() { nsenter -t "$init_pid" -a "$@"; }
# Until the manager inside listens, systemctl answers "offline": ask again.
state=""
for _ in $(seq 100); do
  state=$(in_ct timeout 30 systemctl is-system-running --wait 2>/dev/null || true)
  case "$state" in running | degraded) break ;; esac
  sleep 0.2
done
echo "# container up in $(elapsed "$t_boot") s (system state: $state)"

# ---------------------------------------------------------------------------------------------
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION COMMAND...: the command runs on the host side; use in_ct inside.
  local what=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what"; printf '%s\n' "$out" | sed 's/^/#   /'; fi
}
sh_ct() { in_ct sh -c "$1"; }
main_pid() { in_ct systemctl show -P MainPID automon.service; }
wait_for() { # wait_for SECONDS SHELL-CONDITION (evaluated inside the container)
  local n=$(($1 * 10))
  for _ in $(seq "$n"); do sh_ct "$2" >/dev/null 2>&1 && return 0; sleep 0.1; done
  sh_ct "$2"
}
health_ok='curl -fsS http://127.0.0.1:9787/health | grep -q "\"status\":\"ok\""'

check "system booted to running" test "$state" = running

pkg="/pkg/$(basename "$deb")"
check "apt-get install the .deb" in_ct env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg"
check "service enabled on install" in_ct systemctl is-enabled automon.service
check "service active after install" wait_for 10 'systemctl is-active automon.service'
check "/health answers ok" wait_for 10 "$health_ok"
check "/metrics serves node_ metrics" sh_ct 'curl -fsS http://127.0.0.1:9787/metrics | grep -q "^node_load1 "'
check "runs as user automon" sh_ct 'test "$(stat -c %U /proc/"$(systemctl show -P MainPID automon)")" = automon'
check "config is root:automon 0640" sh_ct 'test "$(stat -c "%U:%G %a" /etc/automon/automon.toml)" = "root:automon 640"'
check "data and textfile dirs are automon's" sh_ct 'test "$(stat -c "%U:%G %a" /var/lib/automon /var/lib/automon/textfile | sort -u)" = "automon:automon 750"'
check "systemd-analyze verify is silent on the installed unit" \
  sh_ct 'out=$(systemd-analyze verify --man=no /usr/lib/systemd/system/automon.service 2>&1) && [ -z "$out" ] || { echo "$out"; false; }'
check "conffiles registered" sh_ct 'grep -q "^ /etc/automon/automon.toml " /var/lib/dpkg/status'

pid=$(main_pid)
check "systemctl reload succeeds" in_ct systemctl reload automon.service
check "reload keeps the same process" sh_ct "test \"\$(systemctl show -P MainPID automon)\" = $pid"
check "journal records the reload" wait_for 5 'journalctl -u automon -b --no-pager | grep -q "configuration reloaded"'

sh_ct 'printf "[collectors]\nno_such_key = 1\n" > /etc/automon/conf.d/99-broken.toml'
check "reload with a broken config fails" sh_ct '! systemctl reload automon.service'
check "validate names the broken file and key" sh_ct 'automon validate 2>&1 | grep -q "99-broken.toml:2: collectors.no_such_key"'
check "old config keeps running after failed reload" sh_ct "systemctl is-active automon && test \"\$(systemctl show -P MainPID automon)\" = $pid && $health_ok"
check "daemon logs the rejected config" wait_for 5 'journalctl -u automon -b --no-pager | grep -q "rejected, keeping the running configuration"'
sh_ct 'rm /etc/automon/conf.d/99-broken.toml'

check "journal has structured fields" sh_ct 'journalctl -u automon -b -o verbose --no-pager | grep -q "^ *TARGET=automon"'
check "journal has the readiness line" sh_ct 'journalctl -u automon -b --no-pager | grep -q "ready:"'

# Watchdog: a shorter WatchdogSec for the test (the shipped 30 s works the same, only slower),
# then freeze the daemon so it stops pinging.
sh_ct 'mkdir -p /etc/systemd/system/automon.service.d &&
  printf "[Service]\nWatchdogSec=4s\n" > /etc/systemd/system/automon.service.d/e2e-watchdog.conf &&
  systemctl daemon-reload && systemctl restart automon'
check "active with a 4 s watchdog" wait_for 10 'systemctl is-active automon'
pid=$(main_pid)
restarts=$(in_ct systemctl show -P NRestarts automon.service)
t_wd=$(date +%s.%N)
sh_ct "kill -STOP $pid"
check "watchdog restarts a frozen daemon" wait_for 30 \
  "test \"\$(systemctl show -P NRestarts automon)\" -gt $restarts && systemctl is-active automon && test \"\$(systemctl show -P MainPID automon)\" != $pid"
echo "# watchdog restart took $(elapsed "$t_wd") s"
check "journal shows the watchdog timeout" sh_ct 'journalctl -u automon -b --no-pager | grep -qi "watchdog timeout"'
check "/health ok after the watchdog restart" wait_for 10 "$health_ok"
sh_ct 'rm -r /etc/systemd/system/automon.service.d && systemctl daemon-reload'

# Polkit: once an admin lists a unit, the automon user may restart it, and nothing else.
sh_ct 'printf "[Service]\nExecStart=/bin/sleep infinity\n" > /etc/systemd/system/e2e-dummy.service &&
  systemctl daemon-reload && systemctl start e2e-dummy'
as_automon='setpriv --reuid=automon --regid=automon --init-groups systemctl --no-ask-password'
check "automon may not restart an unlisted unit" sh_ct "! $as_automon restart e2e-dummy.service"
sh_ct 'sed -i "s|// \"nginx.service\",|\"e2e-dummy.service\",|" /etc/polkit-1/rules.d/50-automon.rules'
dummy_pid=$(in_ct systemctl show -P MainPID e2e-dummy.service)
check "automon may restart a listed unit" wait_for 10 "$as_automon restart e2e-dummy.service"
check "the listed unit was restarted" sh_ct "test \"\$(systemctl show -P MainPID e2e-dummy)\" != $dummy_pid"
check "automon may not stop a listed unit" sh_ct "! $as_automon stop e2e-dummy.service"
check "automon may not restart other units" sh_ct "! $as_automon restart dbus.service"

# Upgrade: a higher version of the same package. A local edit to the conffile survives, and
# the running service is restarted onto the new package.
sh_ct 'echo "# local edit" >> /etc/automon/automon.toml'
pid=$(main_pid)
check "upgrade installs" in_ct env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold /upgrade/automon-upgrade.deb
check "upgrade keeps the local config edit" sh_ct 'grep -q "^# local edit" /etc/automon/automon.toml'
check "upgrade keeps config ownership" sh_ct 'test "$(stat -c "%U:%G %a" /etc/automon/automon.toml)" = "root:automon 640"'
check "upgrade restarts the running service" wait_for 10 "systemctl is-active automon && test \"\$(systemctl show -P MainPID automon)\" != $pid"
check "/health ok after upgrade" wait_for 10 "$health_ok"

# Remove keeps data and config; purge deletes them.
check "data directory holds the database" sh_ct 'test -s /var/lib/automon/automon.db'
check "apt-get remove" in_ct env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q automon
check "remove stops the service" sh_ct '! systemctl is-active automon'
check "remove keeps data" sh_ct 'test -s /var/lib/automon/automon.db'
check "remove keeps config" sh_ct 'test -f /etc/automon/automon.toml'
check "apt-get purge" in_ct env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q automon
check "purge removes data" sh_ct '! test -e /var/lib/automon'
check "purge removes config" sh_ct '! test -e /etc/automon'
check "purge removes the stat override" sh_ct '! dpkg-statoverride --list /etc/automon/automon.toml'

echo "# whole run $(elapsed "$start_all") s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
