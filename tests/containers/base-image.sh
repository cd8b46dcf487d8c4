#!/usr/bin/env bash
# Makes a Debian base image without a registry, for machines that cannot pull one: a
# minimal Debian (debootstrap --variant=minbase) imported into the local Docker engine.
# It stands in for debian:bookworm-slim and, where the binaries are prebuilt, for
# rust:1-bookworm (see Dockerfile.example's build arguments).
#
#   bash tests/containers/base-image.sh      # prints the image's tag on stdout
#
# Everything that goes into the image is in this file (suite, variant, mirror, the
# clean-up), so the image's tag is this file's hash: an edit here makes a new image, and
# an existing tag is used as it is (about 0.1 s). The root file system is also kept as a
# tarball in $PIDVISOR_TEST_CACHE (default /var/cache/pidvisor-test), so that an engine
# whose images were pruned gets it back with `docker import` (about 5 s) instead of
# another debootstrap (about 30 s, needs root and deb.debian.org). CI may cache that
# folder. Needs debootstrap, docker, sha256sum, gzip, flock.
set -euo pipefail

suite=bookworm
variant=minbase
mirror=http://deb.debian.org/debian
cache=${PIDVISOR_TEST_CACHE:-/var/cache/pidvisor-test}

key=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
tag="pidvisor-test-debian:$suite-$variant-$key"
tarball="$cache/debian-$suite-$variant-$key.tar.gz"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

mkdir -p "$cache"
# One maker at a time (two test runs, or two branches' tests, may ask at once); the
# second finds the image made by the first.
exec 9>"$cache/lock"
flock 9
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

if [ ! -f "$tarball" ]; then
  command -v debootstrap >/dev/null || {
    echo "base-image.sh: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 1
  }
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root" "$tarball.part"' EXIT
  echo "base-image.sh: debootstrap --variant=$variant $suite (about 30 s)" >&2
  if ! debootstrap --variant="$variant" "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
    cat "$root.log" >&2
    echo "base-image.sh: debootstrap failed (log above; is $mirror reachable?)" >&2
    rm -f "$root.log"
    exit 1
  fi
  rm -f "$root.log"
  # Like debian:bookworm-slim: no package lists or downloaded packages (a Dockerfile runs
  # `apt-get update` first), no documentation or translations.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* \
    "$root"/var/log/*.log "$root"/var/log/apt/*
  tar --numeric-owner -C "$root" -c . | gzip -1 >"$tarball.part"
  mv "$tarball.part" "$tarball"
fi

# The official image's default command; `docker import` sets none.
docker import --change 'CMD ["bash"]' "$tarball" "$tag" >/dev/null
echo "$tag"
