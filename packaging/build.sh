#!/usr/bin/env bash
# Builds the .deb and the .rpm from this tree into target/package/ (or $1):
#   packaging/build.sh [OUT_DIR]
#   packaging/build.sh --install-tools     # only install the pinned packaging tools
# Installs the pinned cargo-deb and cargo-generate-rpm when they are missing (or at another
# version). Needs only cargo, strip and gzip; no root.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned so that a package built today and one built next year come from the same tools.
CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

ensure_tool() { # ensure_tool CRATE VERSION: cargo install --locked it unless that version is there
  local crate=$1 version=$2
  if ! cargo install --list | grep -qx "$crate v$version:"; then
    echo "installing $crate $version"
    cargo install --locked --quiet "$crate" --version "$version"
  fi
}
ensure_tool cargo-deb "$CARGO_DEB_VERSION"
ensure_tool cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"
[ "${1:-}" = "--install-tools" ] && exit 0

out="${1:-target/package}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

cargo build --release --locked --bin automon

# One stripped binary for the rpm (cargo-generate-rpm does not strip; cargo-deb strips its own
# copy of target/release/automon).
mkdir -p target/package
install -m 0755 target/release/automon target/package/automon
strip --strip-all target/package/automon

# Man pages and completions from the CLI definition; the manifests' asset lists point here.
assets=target/package/assets
rm -rf "$assets"
target/package/automon generate-assets "$assets" >/dev/null
gzip -9n "$assets"/man/man*/*.[0-9]

# Reproducible timestamps in the archives (gzip -n drops the name and time; cargo-deb takes
# file times from SOURCE_DATE_EPOCH): the last commit's time in a git checkout. Set only for
# the packaging steps: some build scripts rerun when it changes, which would rebuild the
# dependencies after every commit.
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
SOURCE_DATE_EPOCH="$epoch" cargo deb --no-build --output "$out"
SOURCE_DATE_EPOCH="$epoch" cargo generate-rpm --output "$out"

ls -l "$out"/*.deb "$out"/*.rpm
