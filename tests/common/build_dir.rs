//! Where cargo put this build's binaries: next to the pidvisor binary under test, so the
//! tests follow whichever target `cargo build` made (static musl by default, static glibc
//! where musl cannot be had; see `.cargo/config.toml` and `scripts/static-build`).

use std::path::{Path, PathBuf};

/// `target/<triple>/<profile>`: the folder of `profile`'s binaries (`debug`, `release`)
/// for the target of the binary under test.
pub fn build_dir(profile: &str) -> PathBuf {
    let pidvisor = Path::new(env!("CARGO_BIN_EXE_pidvisor"));
    let triple_dir = pidvisor
        .parent()
        .and_then(Path::parent)
        .expect("the pidvisor binary lies in target/<triple>/<profile>/");
    triple_dir.join(profile)
}

/// The same folder relative to the repository (a Docker build context's path).
pub fn build_dir_in_repo(profile: &str) -> PathBuf {
    let dir = build_dir(profile);
    dir.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| {
            panic!(
                "{} is outside the repository: Docker cannot take binaries from it \
                 (unset CARGO_TARGET_DIR)",
                dir.display()
            )
        })
}
