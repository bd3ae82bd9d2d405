#!/usr/bin/env bash
# Installs everything the test suite needs on Debian 12 and runs the whole suite.
# Needs root (or sudo) only for apt-get, and only when a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use for real components:
#   prometheus            promtool (lints /metrics) and a real scraping server
#   prometheus-node-exporter  the side-by-side benchmark baseline (scripts/bench-vs-node-exporter.sh)
#   python3-aiosmtpd      a real SMTP server for the email receiver tests (tests/email.rs)
#   prometheus-alertmanager   the Alertmanager receiver's real counterpart (tests/alertmanager.rs)
#   openssl               a throwaway CA for the STARTTLS and implicit-TLS email tests
apt_packages=(prometheus prometheus-node-exporter curl xz-utils)
apt_packages+=(python3-aiosmtpd prometheus-alertmanager openssl)
#   systemd man-db        systemd-analyze verify/security on the unit; man renders the man pages
#   rpm lintian file binutils dpkg-dev  build (dpkg-shlibdeps) and inspect the .rpm and .deb (tests/packaging.rs)
#   systemd-container debootstrap  boot a Debian tree and install the .deb (scripts/e2e-nspawn.sh)
#   procps util-linux     pgrep in scripts/e2e-nspawn.sh; nsenter and setpriv (tests/systemd.rs)
#   python3               the TCP service the repair tests bring back (tests/support/tcp_service.py)
apt_packages+=(
  systemd man-db rpm lintian file binutils dpkg-dev systemd-container debootstrap)
apt_packages+=(procps util-linux python3)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
# Pinned cargo-deb and cargo-generate-rpm (versions in packaging/build.sh).
./packaging/build.sh --install-tools

# Tests that need an installed component fail instead of skipping when CI=true.
export CI=true

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# Benchmarks first, in criterion's test mode (each runs once, as a smoke test), so the suite's
# own test results are what the run ends on.
cargo test --locked --benches
cargo test --locked --lib --bins --tests
