//! Build script: linker settings for the `automon` binary only.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // Pack the position-independent binary's ~21,000 relative relocations (DT_RELR)
        // instead of 24 bytes each in `.rela.dyn`: ld.so reads that whole table at every
        // start, so its 500 KB stayed resident for the life of the daemon. Needs binutils
        // >= 2.38 to link and glibc >= 2.36 to run (Debian 12, Fedora 37 and later).
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
