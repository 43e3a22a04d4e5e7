#!/usr/bin/env bash
# Installs, starts and stops the local stand-ins powerpole's tests and demo run against:
#   - MariaDB (Debian's mariadb-server) in its own data directory and port, with server_audit on;
#   - moto's server (PyPI moto[server], pinned) in a virtualenv, on loopback.
# Idempotent: `start` on a running set changes nothing. Everything lives under .local/ (git-ignored).
#
#   scripts/standins.sh start   # install what is missing, start, wait until both answer
#   scripts/standins.sh stop    # stop both cleanly
#   scripts/standins.sh status
#
# After `start`, `.local/standins.env` holds the variables tests read (source it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
MOTO_VERSION="5.2.5"
MOTO_PORT="${POWERPOLE_MOTO_PORT:-5055}"
MYSQL_PORT="${POWERPOLE_MYSQL_PORT:-3407}"
MYSQL_ROOT_PASSWORD="powerpole-local-root"
DATA="$LOCAL/mariadb/data"
RUN="$LOCAL/mariadb/run"
VENV="$LOCAL/venv-moto"
ENV_FILE="$LOCAL/standins.env"

log() { printf '[standins] %s\n' "$*" >&2; }

install_mariadb() {
  if command -v mariadbd >/dev/null 2>&1 && command -v mariadb >/dev/null 2>&1; then return; fi
  log "installing mariadb-server from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null
}

install_moto() {
  if [ -x "$VENV/bin/moto_server" ] && "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$MOTO_VERSION')" 2>/dev/null; then return; fi
  log "installing moto[server]==$MOTO_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
}

mysql_admin() { mariadb --no-defaults -h 127.0.0.1 -P "$MYSQL_PORT" -u root -p"$MYSQL_ROOT_PASSWORD" "$@"; }

start_mariadb() {
  if mysql_admin -e 'SELECT 1' >/dev/null 2>&1; then log "mariadb already answers on $MYSQL_PORT"; return; fi
  mkdir -p "$DATA" "$RUN"
  # mariadbd drops to the mysql user and dies silently on the socket if it cannot write here.
  chown -R mysql:mysql "$LOCAL/mariadb"
  local fresh=0
  if [ ! -d "$DATA/mysql" ]; then
    log "initialising a data directory in $DATA"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DATA" \
      --auth-root-authentication-method=normal --skip-test-db >"$RUN/install.log" 2>&1
    fresh=1
  fi
  # MariaDB also listens on the test-host bridge (scripts/netns.sh), so that connections from a
  # namespace holding a bastion's IP arrive with that IP, as they would from a real bastion.
  local bind=127.0.0.1
  if "$ROOT/scripts/netns.sh" bridge 2>/dev/null; then bind=127.0.0.1,10.200.0.1; else log "no test-host bridge (needs root and iproute2): IP-binding tests will fail"; fi
  mariadbd --no-defaults --user=mysql --datadir="$DATA" --port="$MYSQL_PORT" \
    --bind-address="$bind" --socket="$RUN/mysqld.sock" \
    --pid-file="$RUN/mysqld.pid" --log-error="$RUN/error.log" --skip-name-resolve \
    --plugin-load-add=server_audit --server-audit-logging=ON --server-audit-events=CONNECT,QUERY \
    --server-audit-file-path="$RUN/audit.log" --max-connections=500 >/dev/null 2>&1 &
  for _ in $(seq 1 100); do
    if [ "$fresh" = 1 ] && mariadb --no-defaults -S "$RUN/mysqld.sock" -u root -e 'SELECT 1' >/dev/null 2>&1; then
      mariadb --no-defaults -S "$RUN/mysqld.sock" -u root -e \
        "ALTER USER 'root'@'localhost' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD'; CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
      fresh=0
    fi
    if mysql_admin -e 'SELECT 1' >/dev/null 2>&1; then log "mariadb answers on 127.0.0.1:$MYSQL_PORT"; return; fi
    sleep 0.2
  done
  log "mariadb did not start; its log:"; tail -20 "$RUN/error.log" >&2 || true
  exit 1
}

start_moto() {
  if curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then log "moto already answers on $MOTO_PORT"; return; fi
  mkdir -p "$LOCAL"
  # scripts/moto_serial.py: moto with each request applied atomically, as DynamoDB guarantees.
  MOTO_PORT="$MOTO_PORT" MOTO_IAM_LOAD_MANAGED_POLICIES=true nohup "$VENV/bin/python" "$ROOT/scripts/moto_serial.py" 127.0.0.1 "$MOTO_PORT" >"$LOCAL/moto.log" 2>&1 &
  echo $! >"$LOCAL/moto.pid"
  for _ in $(seq 1 150); do
    if curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then log "moto answers on 127.0.0.1:$MOTO_PORT"; return; fi
    sleep 0.2
  done
  log "moto did not start; its log:"; tail -20 "$LOCAL/moto.log" >&2 || true
  exit 1
}

write_env() {
  cat >"$ENV_FILE" <<ENV
# Written by scripts/standins.sh start: the stand-ins' addresses for tests, the demo and you.
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_EC2_METADATA_DISABLED=true
export POWERPOLE_TEST_MOTO_URL=http://127.0.0.1:$MOTO_PORT
export POWERPOLE_TEST_MYSQL_URL=mysql://root:$MYSQL_ROOT_PASSWORD@127.0.0.1:$MYSQL_PORT
export POWERPOLE_TEST_MYSQL_RUN_DIR=$RUN
# MariaDB as seen from a test host (a network namespace on the ppbr0 bridge, see scripts/netns.sh).
export POWERPOLE_TEST_MYSQL_BRIDGE_ADDR=10.200.0.1:$MYSQL_PORT
ENV
}

stop_all() {
  if [ -f "$LOCAL/moto.pid" ] && kill "$(cat "$LOCAL/moto.pid")" 2>/dev/null; then log "moto stopped"; fi
  rm -f "$LOCAL/moto.pid"
  if [ -f "$RUN/mysqld.pid" ]; then
    local pid; pid="$(cat "$RUN/mysqld.pid")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      log "mariadb stopped"
    fi
  fi
}

case "${1:-}" in
  start)
    command -v curl >/dev/null 2>&1 || { apt-get update -qq >/dev/null; apt-get install -y -qq curl >/dev/null; }
    install_mariadb
    install_moto
    start_mariadb
    start_moto
    write_env
    ;;
  stop) stop_all ;;
  status)
    mysql_admin -e 'SELECT VERSION()' 2>/dev/null && echo "mariadb: up" || echo "mariadb: down"
    curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1 && echo "moto: up" || echo "moto: down"
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 64 ;;
esac
