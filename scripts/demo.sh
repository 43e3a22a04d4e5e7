#!/usr/bin/env bash
# make demo: one whole powerpole session, from a Slack request to teardown, against the local
# stand-ins, printed as a timeline. Exits 0 only if every check held.
#
#   scripts/demo.sh        # or: make demo
#
# It starts the stand-ins (installing them on a fresh machine), builds `powerpole` and the demo
# program (scripts/demo/, a Cargo example), and runs it. Needs root: the bastion's address is a
# network namespace (scripts/netns.sh). Writes only under .local/ (config and service log in
# .local/demo/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"
JOBS="${JOBS:-2}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

scripts/standins.sh start
# shellcheck source=/dev/null
source .local/standins.env

echo "[demo] building powerpole and the demo program (debug, -j$JOBS)" >&2
"$CARGO" build -q -j"$JOBS" --bin powerpole --example demo

exec "$TARGET_DIR/debug/examples/demo" "$@"
