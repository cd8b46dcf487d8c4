//! The cluster's three images, built once per test run from the repository's own files:
//! `web` is `Dockerfile.example`'s image (built by the container tests' support and tagged
//! here), `lb` and `collector` are built by `docker-compose build` from compose.yaml,
//! with the same build arguments (the local base image, the host's release binaries).

use std::process::Command;
use std::sync::OnceLock;

use crate::docker::{self, run_bounded};

/// compose.yaml, as users run it.
pub const COMPOSE_FILE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cluster/compose.yaml");

/// Building the lb and collector images: `apt-get install` on a cold machine.
const BUILD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(900);

/// The variables that compose.yaml reads, for every `docker-compose` and `docker stack`
/// command of the tests: this run's image names, and free published ports.
pub struct Cluster {
    pub env: Vec<(&'static str, String)>,
}

/// The images, built on first use; `None` without a Docker engine (outside CI).
pub fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    let images = docker::images()?;
    match CLUSTER.get_or_init(|| build(&images.example)) {
        Ok(cluster) => Some(cluster),
        Err(why) => panic!("{why}"),
    }
}

fn build(example: &str) -> Result<Cluster, String> {
    // The example image's tag is per checkout: the cluster's images get the same one.
    let tag = example.rsplit(':').next().unwrap_or("latest");
    let prefix = "pidvisor-test-cluster";
    let compose = run_bounded(
        Command::new("docker-compose").arg("version"),
        BUILD_PATIENCE,
    )
    .map_err(|why| format!("{why} (install Compose: apt-get install docker-compose)"))?;
    if !compose.status.success() {
        return Err(format!(
            "docker-compose version failed:\n{}",
            compose.stderr
        ));
    }
    let base = base_image()?;
    let env = vec![
        ("CLUSTER_IMAGE", prefix.to_owned()),
        ("CLUSTER_TAG", tag.to_owned()),
        ("LB_HTTP_PORT", "0".to_owned()),
        ("LB_STATS_PORT", "0".to_owned()),
    ];
    docker::docker(&["tag", example, &format!("{prefix}-web:{tag}")]);
    let build = run_bounded(
        Command::new("docker-compose")
            .args([
                "--file",
                COMPOSE_FILE,
                "build",
                "--quiet",
                "lb",
                "collector",
            ])
            .envs(env.iter().map(|(key, value)| (key, value)))
            .env("BASE_IMAGE", &base)
            .env("RUST_IMAGE", &base)
            .env("PREBUILT", docker::release_dir()),
        BUILD_PATIENCE,
    )?;
    if !build.status.success() {
        return Err(format!(
            "docker-compose build lb collector failed:\n{}{}",
            build.stdout, build.stderr
        ));
    }
    Ok(Cluster { env })
}

/// The base image that the container tests made (cached: this only reads its tag).
fn base_image() -> Result<String, String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/containers/base-image.sh"
    );
    let output = run_bounded(Command::new("bash").arg(script), BUILD_PATIENCE)?;
    if output.status.success() {
        Ok(output.stdout.trim().to_owned())
    } else {
        Err(format!("{script} failed:\n{}", output.stderr))
    }
}
