// The sample finds libgrey.so through an rpath: $GREY_LIB_DIR, else the repository's build/default/lib.
include!("../../../bindings/rust/grey-sys/lib_dir.rs");

fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    link_grey_with_rpath(&manifest.join("../../.."));
}
