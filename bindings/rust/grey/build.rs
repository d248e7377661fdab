// Tests and examples of this crate find libgrey.so through an rpath (see ../grey-sys/lib_dir.rs).
include!("../grey-sys/lib_dir.rs");

fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    link_grey_with_rpath(&manifest.join("../../.."));
}
