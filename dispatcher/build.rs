//! Rebuilds the dispatcher when the built web pages (`web/dist/`, embedded by `src/web.rs`)
//! change.

fn main() {
    println!("cargo:rerun-if-changed=web/dist");
}
