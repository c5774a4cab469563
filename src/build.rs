//! Build script: `sqlx::migrate!()` copies `migrations/` into the binary at compile time, but Cargo
//! does not know that, so a new migration alone would not trigger a rebuild. This tells it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
