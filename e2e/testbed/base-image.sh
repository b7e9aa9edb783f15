#!/usr/bin/env bash
# Builds the Debian base image every other image here starts from, offline from a registry's point of view:
# debootstrap (Debian's mirror) -> tar -> `docker import`. Users with a registry can use
# debian:bookworm-slim instead; our Dockerfiles take the base image as a build argument.
. "$(dirname "$0")/lib.sh"
BASE_IMAGE="${BASE_IMAGE:-quorumdb.local/debian:$DEBIAN_SUITE}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE present"; exit 0
fi
need debootstrap "apt-get install debootstrap (host-prep.sh does this)"
rootfs="$CACHE_DIR/rootfs-$DEBIAN_SUITE"
build_base() {
  rm -rf "$rootfs"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$MIRROR"
  # Same trims as debian:*-slim: no docs/man pages, apt never recommends.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$rootfs/etc/apt/apt.conf.d/99quorumdb"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE"
  rm -rf "$rootfs"
}
step "debootstrap-$DEBIAN_SUITE" build_base
