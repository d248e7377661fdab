// Where libgrey.so is: $GREY_LIB_DIR, else the repository's default CMake build (build/default/lib).
// Shared by the build scripts of grey-sys, grey and the Rust samples (each links a binary or test that
// needs an rpath to it: cargo passes link args only to the crate whose build script prints them).
#[allow(dead_code)]
fn grey_lib_dir(repo_root: &std::path::Path) -> std::path::PathBuf {
    println!("cargo:rerun-if-env-changed=GREY_LIB_DIR");
    match std::env::var_os("GREY_LIB_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => repo_root.join("build").join("default").join("lib"),
    }
}

#[allow(dead_code)]
fn link_grey_with_rpath(repo_root: &std::path::Path) {
    let dir = grey_lib_dir(repo_root);
    if !dir.join("libgrey.so").exists() {
        println!(
            "cargo:warning=no libgrey.so in {} (build libgrey with `cmake --preset default && cmake --build --preset default`, or set GREY_LIB_DIR)",
            dir.display()
        );
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}
