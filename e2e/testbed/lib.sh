# Shared helpers for the test-bed scripts: logging, failure reporting, cache locations.
# Sourced, never executed. Every long step logs to its own file so a failure can name it.
set -euo pipefail

TESTBED_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$TESTBED_DIR/../.." && pwd)"
# shellcheck source=versions.env
. "$TESTBED_DIR/versions.env"

# Everything built is cached outside the checkout so clean clones (CI) reuse it.
CACHE_DIR="${AURORA_CACHE_DIR:-$HOME/.cache/aurora-testbed}"
BIN_CACHE="$CACHE_DIR/bin"
LOG_DIR="${AURORA_LOG_DIR:-$CACHE_DIR/logs}"
TOOLS_DIR="$CACHE_DIR/tools"   # kind, kubectl, helm for the host
mkdir -p "$BIN_CACHE" "$LOG_DIR" "$TOOLS_DIR"
export PATH="$TOOLS_DIR:$PATH"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[testbed %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

# step NAME CMD...: run CMD with output in $LOG_DIR/NAME.log; on failure print the tail and the log's path.
step() {
  local name="$1"; shift
  local logf="$LOG_DIR/$name.log"
  local t0=$SECONDS
  log "$name ..."
  # Run in the background and wait: inside `if` bash would silently disable `set -e` for the step's body.
  "$@" >"$logf" 2>&1 &
  if ! wait $!; then
    tail -n 30 "$logf" >&2 || true
    die "step '$name' failed after $((SECONDS - t0))s; full log: $logf"
  fi
  log "$name done in $((SECONDS - t0))s"
}

need() { command -v "$1" >/dev/null 2>&1 || die "missing tool '$1' ($2)"; }
