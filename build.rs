//! Build script: linker settings for the `automon` binary only.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={ORDER_FILE}");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // Pack the position-independent binary's ~21,000 relative relocations (DT_RELR)
        // instead of 24 bytes each in `.rela.dyn`: ld.so reads that whole table at every
        // start, so its 500 KB stayed resident for the life of the daemon. Needs binutils
        // >= 2.38 (or lld) to link and glibc >= 2.36 to run (Debian 12, Fedora 37 and later).
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    if links_with_rust_lld() && Path::new(ORDER_FILE).exists() {
        // Put the functions the daemon runs together at the start of .text (the list comes
        // from scripts/symbol-order.sh). The kernel maps code in 64 KiB blocks around each
        // page fault; scattered over the binary, the ~2.7 MB that runs made nearly all 8.4 MB of
        // code resident. Names the current build lacks (another toolchain, changed code) are
        // skipped silently: the order is a hint, never a link error.
        let path =
            Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join(ORDER_FILE);
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
            path.display()
        );
    }
}

/// The generated function order for the linker.
const ORDER_FILE: &str = "linker/symbol-order.txt";

/// Whether the binary is linked by the toolchain's own lld, the default for
/// x86_64-unknown-linux-gnu since Rust 1.90. GNU ld does not know `--symbol-ordering-file`,
/// so any other target, an older compiler or a linker chosen in RUSTFLAGS leaves it out.
fn links_with_rust_lld() -> bool {
    if std::env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "link-self-contained", "fuse-ld"]
        .iter()
        .any(|opt| flags.contains(opt))
    {
        return false;
    }
    if std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some() {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = String::from_utf8_lossy(&out.stdout);
    let minor = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
