// Generates the raw bindings from include/grey.h with Debian's `bindgen` command on every build in
// which the header changed, so a function added to grey.h is in grey-sys with no change here.
use std::path::{Path, PathBuf};
use std::process::Command;

include!("lib_dir.rs");

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest.join("../../..");
    let header = repo.join("include/grey.h");
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-env-changed=BINDGEN");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("grey_sys.rs");
    let bindgen = std::env::var("BINDGEN").unwrap_or_else(|_| "bindgen".to_string());
    // bindgen before 0.61 maps size_t to u64 unless asked; later ones always give usize and lack the flag.
    let help = Command::new(&bindgen)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "grey-sys: cannot run `{}` (install Debian's bindgen package): {}",
                bindgen, e
            )
        });
    let size_t_flag: &[&str] =
        if String::from_utf8_lossy(&help.stdout).contains("--size_t-is-usize") {
            &["--size_t-is-usize"]
        } else {
            &[]
        };
    let status = Command::new(&bindgen)
        .args(size_t_flag)
        .arg(&header)
        .args(["-o"])
        .arg(&out)
        .args([
            "--allowlist-function",
            "grey_.*",
            "--allowlist-type",
            "grey_.*",
            "--allowlist-var",
            "GREY_.*",
            "--default-enum-style",
            "consts",
            "--no-prepend-enum-name",
            "--no-layout-tests",
            "--",
            "-I",
        ])
        .arg(repo.join("include"))
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "grey-sys: cannot run `{}` (install Debian's bindgen package): {}",
                bindgen, e
            )
        });
    assert!(
        status.success(),
        "grey-sys: bindgen failed on {}",
        header.display()
    );
    link_grey_statically(Path::new(&repo));
}
