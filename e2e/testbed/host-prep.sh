#!/usr/bin/env bash
# Prepares this host to run kind: Docker engine installed and running, and the host quirks found on these
# VMs worked around — each one only where it is detected (see docs/testing.md and
# shared research offline-kind.md). Idempotent: a second run changes nothing.
. "$(dirname "$0")/lib.sh"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v jq >/dev/null || missing+=(jq)
  command -v curl >/dev/null || missing+=(curl)  # minio.sh: the bucket, signed with SigV4
  command -v pigz >/dev/null || missing+=(pigz)
  [ -f /usr/include/seccomp.h ] || missing+=(libseccomp-dev)
  command -v gcc >/dev/null || missing+=(gcc)
  command -v make >/dev/null || missing+=(make)
  [ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)  # quorumdb-walrecv
  command -v pg_ctl >/dev/null || [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || missing+=(postgresql-15 postgresql-contrib)
  command -v pgbackrest >/dev/null || missing+=(pgbackrest)  # make bench-backup: the comparison
  command -v openssl >/dev/null || missing+=(openssl)  # make bench-backup: MinIO's TLS certificate
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

# Quirk 1: CAP_SYS_RESOURCE missing from the bounding set -> privileged containers fail in runc.
needs_runc_wrapper() {
  local bnd; bnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
  (( (16#$bnd >> 24) & 1 )) && return 1 || return 0
}

configure_docker() {
  local conf=/etc/docker/daemon.json want
  as_root mkdir -p /etc/docker
  if needs_runc_wrapper; then
    local real; real=$(command -v runc)
    as_root install -d /usr/local/libexec/quorumdb
    sed "s|@REAL_RUNC@|$real|" "$TESTBED_DIR/files/runc-wrapper" | as_root tee /usr/local/libexec/quorumdb/runc-wrapper >/dev/null
    as_root chmod 755 /usr/local/libexec/quorumdb/runc-wrapper
    want='{"runtimes":{"runc-nosysresource":{"path":"/usr/local/libexec/quorumdb/runc-wrapper"}},"default-runtime":"runc-nosysresource"}'
    log "host lacks CAP_SYS_RESOURCE: docker's default runtime is the capability-stripping wrapper"
  else
    want='{}'
  fi
  local cur='{}'; [ -f "$conf" ] && cur=$(cat "$conf")
  local merged; merged=$(jq -S --argjson w "$want" '. * $w' <<<"$cur")
  if [ "$merged" != "$(jq -S . <<<"$cur")" ]; then
    echo "$merged" | as_root tee "$conf" >/dev/null
    CONFIG_CHANGED=1
  fi
}

start_docker() {
  if docker info >/dev/null 2>&1; then
    if [ "${CONFIG_CHANGED:-0}" = 1 ]; then as_root pkill -HUP -x dockerd || true; sleep 1; fi
    return 0
  fi
  if command -v systemctl >/dev/null && [ "$(ps -p 1 -o comm=)" = systemd ]; then
    as_root systemctl start docker
  else
    log "starting dockerd (no systemd here); log: $LOG_DIR/dockerd.log"
    as_root sh -c "nohup dockerd >'$LOG_DIR/dockerd.log' 2>&1 &"
  fi
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  die "dockerd did not start; see $LOG_DIR/dockerd.log"
}

# Quirk 5: multi-node kind exhausts the default inotify instances.
tune_sysctls() {
  local cur
  cur=$(sysctl -n fs.inotify.max_user_instances); [ "$cur" -ge 512 ] || as_root sysctl -qw fs.inotify.max_user_instances=512
  cur=$(sysctl -n fs.inotify.max_user_watches); [ "$cur" -ge 524288 ] || as_root sysctl -qw fs.inotify.max_user_watches=524288
}

install_packages
configure_docker
start_docker
tune_sysctls
log "host ready: $(docker version --format 'docker {{.Server.Version}}')"
