// How grey-sys links libgrey: statically, from libgrey.a in $GREY_LIB_DIR (by default the repository's
// build/default/lib), with the libraries it needs read from its grey.pc (`Libs.private`). Linked this
// way, libgrey is inside every binary that depends on grey-sys, directly or through the `grey` crate,
// and the directives below reach the final link of any crate: a crate of one's own needs no build
// script and no rpath, and runs from wherever it is copied.

fn grey_lib_dir(repo_root: &std::path::Path) -> std::path::PathBuf {
    println!("cargo:rerun-if-env-changed=GREY_LIB_DIR");
    match std::env::var_os("GREY_LIB_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => repo_root.join("build").join("default").join("lib"),
    }
}

// grey.pc beside a build tree's lib/ (build/default/grey.pc) or in an installed lib/pkgconfig.
fn grey_pc(lib_dir: &std::path::Path) -> Option<std::path::PathBuf> {
    [lib_dir.join("../grey.pc"), lib_dir.join("pkgconfig/grey.pc")]
        .into_iter()
        .find(|p| p.exists())
}

fn link_grey_statically(repo_root: &std::path::Path) {
    let dir = grey_lib_dir(repo_root);
    let archive = dir.join("libgrey.a");
    println!("cargo:rerun-if-changed={}", archive.display());
    if !archive.exists() {
        panic!(
            "grey-sys: no libgrey.a in {} (build libgrey with `cmake --preset default && cmake --build --preset default`, or set GREY_LIB_DIR to a lib directory that has it)",
            dir.display()
        );
    }
    let pc = grey_pc(&dir).unwrap_or_else(|| {
        panic!("grey-sys: no grey.pc beside {} (in .. or pkgconfig/), which names the libraries libgrey.a needs", dir.display())
    });
    println!("cargo:rerun-if-changed={}", pc.display());
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=grey");
    let text = std::fs::read_to_string(&pc).expect("grey-sys: cannot read grey.pc");
    let private = text
        .lines()
        .find_map(|l| l.strip_prefix("Libs.private:"))
        .unwrap_or("");
    for word in private.split_whitespace() {
        if let Some(name) = word.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={}", name);
        } else if let Some(path) = word.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={}", path);
        }
    }
    println!("cargo:lib_dir={}", dir.display());
}
