//! Links the artifact's kernels.o. The artifact folder comes from KILN_AOT_DIR (written by
//! `kiln compile MODEL -o DIR`).

fn main() {
    println!("cargo:rerun-if-env-changed=KILN_AOT_DIR");
    let Ok(dir) = std::env::var("KILN_AOT_DIR") else {
        panic!("set KILN_AOT_DIR to the folder `kiln compile MODEL -o DIR` wrote");
    };
    let object = std::path::Path::new(&dir).join("kernels.o");
    assert!(object.exists(), "{} does not exist; run `kiln compile MODEL -o {dir}` first", object.display());
    println!("cargo:rerun-if-changed={}", object.display());
    println!("cargo:rustc-link-arg={}", object.display());
}
