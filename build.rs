//! Release binaries on Linux/glibc pack their relative relocations (DT_RELR):
//! the dynamic loader otherwise reads a 1.1 MiB relocation table at every
//! start, and those pages stay resident (see BENCHMARKS.md, idle RSS).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = |key| std::env::var(key).unwrap_or_default();
    if target("PROFILE") == "release"
        && target("CARGO_CFG_TARGET_OS") == "linux"
        && target("CARGO_CFG_TARGET_ENV") == "gnu"
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
