//! Container tests: `Dockerfile.example` built unchanged and run with `docker run`, as
//! users run it. They check what the README promises of pidvisor as a container's
//! ENTRYPOINT: exit codes through `docker run`, signals from `docker kill` and
//! `docker stop` reaching the services, job control on `docker run -it`, no zombies
//! from a double-forking service, a read-only root and a non-root user, and all of it
//! again under `docker run --init` (Docker's tini as PID 1, pidvisor a subreaper).
//!
//! Needs a Docker engine, debootstrap (for the base image: `base-image.sh`, cached), the
//! release binary (`cargo build --release`) and `script` (bsdutils). Without an engine
//! every test passes after "skipped: no Docker engine"; with `CI=true` they fail.
//!
//! The test services are the folders of `fixtures/`, mounted read-only over the image's
//! `/etc/services.d`; `--tmpfs /etc/services.d` runs the image with no service at all.

#[path = "../common/build_dir.rs"]
mod build_dir;
mod docker;

mod example_services;
mod exit_codes;
mod health;
mod restricted;
mod s6_migration;
mod signals;
mod terminal;
mod zombies;
