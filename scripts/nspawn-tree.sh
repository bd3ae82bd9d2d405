#!/usr/bin/env bash
# Prints the path of a minimal booted-systemd-ready Debian tree (debootstrap, minbase, with
# systemd, dbus, polkitd and curl), building it once into $AUTOMON_E2E_CACHE (default
# /var/cache/automon-e2e) from the mirror this machine's apt sources name. Used by
# scripts/e2e-nspawn.sh and tests/systemd.rs, which boot throwaway copies of it with
# systemd-nspawn --ephemeral. Needs root and debootstrap the first time.
set -euo pipefail
elapsed() { awk -v now="$(date +%s.%N)" -v t0="$1" 'BEGIN { printf "%.1f", now - t0 }'; }

# The cached tree. Its name carries the suite and the package list, so changing either builds
# a new one.
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
include=systemd,systemd-sysv,dbus,libpam-systemd,polkitd,curl
cache="${AUTOMON_E2E_CACHE:-/var/cache/automon-e2e}"
tree="$cache/$suite-minbase-$(echo "$include" | md5sum | cut -c1-8)"

# The mirror URL comes from this machine's apt sources at run time (deb822 .sources files,
# then one-line sources.list), so no host name is written into the repository.
apt_mirror() {
  local f m
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    m=$(awk -v rel="$suite" 'BEGIN { RS = ""; FS = "\n" }
      { u = ""; s = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); split($i, a, " "); u = a[1] }
          if ($i ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", $i); s = " " $i " " }
        }
        if (u != "" && index(s, " " rel " ")) { print u; exit } }' "$f")
    [ -n "$m" ] && { echo "$m"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    m=$(awk -v rel="$suite" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i == rel) { u = $(i - 1); print u; exit } }' "$f")
    [ -n "$m" ] && { echo "$m"; return; }
  done
}

if [ ! -x "$tree/usr/lib/systemd/systemd" ]; then
  mirror=$(apt_mirror)
  [ -n "$mirror" ] || { echo "no apt source for $suite found in /etc/apt" >&2; exit 2; }
  echo "# building $tree with debootstrap from the local apt mirror (once; cached)" >&2
  mkdir -p "$cache"
  rm -rf "$tree.tmp"
  t0=$(date +%s.%N)
  debootstrap --variant=minbase --include="$include" "$suite" "$tree.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; exit 2; }
  # apt inside must not try the network: the package and its dependencies are all local.
  rm -f "$tree.tmp"/etc/apt/sources.list
  mv "$tree.tmp" "$tree"
  echo "# debootstrap took $(elapsed "$t0") s" >&2
fi

echo "$tree"
