#!/usr/bin/env bash
# End-to-end check of docker-compose.yml on this machine, with no registry:
#   build cairn:local offline -> docker compose up -d -> wait for health -> write samples to
#   the insert -> read them through the select -> check both storage nodes hold rows ->
#   stop storage-1 (partial answers) -> start it -> read everything again -> down -v.
# Uses its own compose project name, so it does not touch a stack you run yourself.
#
# Environment: COMPOSE (the compose command; default "docker compose", else docker-compose),
# CAIRN_INSERT_PORT / CAIRN_SELECT_PORT (default 8480 / 8481, or free ports when taken),
# CAIRN_IMAGE (cairn:local), CAIRN_BINARY (else the usual cargo target directories; built
# with `cargo build --release --bin cairn` when none is found), KEEP_IMAGE=1 skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${COMPOSE:-}" ]; then
  compose="$COMPOSE"
elif docker compose version >/dev/null 2>&1; then
  compose="docker compose"
else
  compose="docker-compose"
fi
export CAIRN_IMAGE="${CAIRN_IMAGE:-cairn:local}"
export COMPOSE_PROJECT_NAME="cairn-roundtrip-$$"
say() { echo "[roundtrip] $*"; }
die() { say "FAILED: $*"; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_taken() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}
if [ -z "${CAIRN_INSERT_PORT:-}" ]; then
  CAIRN_INSERT_PORT=8480
  if port_taken 8480; then CAIRN_INSERT_PORT="$(free_port)"; fi
fi
if [ -z "${CAIRN_SELECT_PORT:-}" ]; then
  CAIRN_SELECT_PORT=8481
  if port_taken 8481; then CAIRN_SELECT_PORT="$(free_port)"; fi
fi
export CAIRN_INSERT_PORT CAIRN_SELECT_PORT CAIRN_BIND=127.0.0.1
insert="http://127.0.0.1:$CAIRN_INSERT_PORT"
select="http://127.0.0.1:$CAIRN_SELECT_PORT"

# ---- image ----
if [ "${KEEP_IMAGE:-0}" != "1" ]; then
  if [ -z "${CAIRN_BINARY:-}" ]; then
    target="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
    if [ ! -x "$target/release/cairn" ] && [ ! -x target/release/cairn ]; then
      say "no release binary yet: cargo build --release --bin cairn (target $target)"
      CARGO_TARGET_DIR="$target" cargo build --release --bin cairn
    fi
  fi
  say "building $CAIRN_IMAGE offline"
  bash deploy/build-image-offline.sh
fi

dump_logs() {
  say "last log lines of each service:"
  $compose logs --no-color --tail 30 2>&1 | sed 's/^/    /' || true
}
finish() {
  rc=$?
  [ "$rc" -eq 0 ] || dump_logs
  say "docker compose down -v"
  $compose down -v --remove-orphans >/dev/null 2>&1 || true
  if docker volume ls -q | grep -q "^${COMPOSE_PROJECT_NAME}_"; then
    say "FAILED: volumes of $COMPOSE_PROJECT_NAME are left after down -v"
    rc=1
  fi
  exit "$rc"
}
trap finish EXIT

# ---- up ----
say "project $COMPOSE_PROJECT_NAME, insert $insert, select $select, image $CAIRN_IMAGE"
$compose up -d 2>&1 | sed 's/^/    /'

container_of() { $compose ps -q "$1"; }
wait_healthy() {
  local svc="$1" limit="$2" started status
  started=$(date +%s)
  while :; do
    status="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$(container_of "$svc")" 2>/dev/null || echo missing)"
    [ "$status" = "healthy" ] && { say "$svc healthy after $(( $(date +%s) - started ))s"; return 0; }
    [ $(( $(date +%s) - started )) -lt "$limit" ] || die "$svc not healthy after ${limit}s (status: $status)"
    sleep 1
  done
}
for svc in storage-0 storage-1 insert select; do wait_healthy "$svc" 180; done

for url in "$insert/health" "$select/health"; do
  body="$(curl -sS --max-time 5 "$url")" || die "GET $url"
  [ "$body" = "OK" ] || die "GET $url answered '$body', not OK"
  say "GET $url -> OK"
done

# ---- write ----
# 20 series, values 0..19, one sample each at a fixed time (10 s ago, in milliseconds).
ts_ms=$(( ($(date +%s) - 10) * 1000 ))
ts_s=$(( ts_ms / 1000 ))
body=""
for i in $(seq 0 19); do body+="deploy_check_probe{series=\"$i\"} $i $ts_ms"$'\n'; done
code="$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' --data-binary "$body" \
  "$insert/insert/0/prometheus/api/v1/import/prometheus")" || die "POST import/prometheus"
[ "$code" = "204" ] || die "POST import/prometheus answered $code, expected 204"
say "wrote 20 samples through the insert (204)"

# query EXPR -> prints "VALUE PARTIAL" of a one-element vector answer, or "none PARTIAL".
query() {
  curl -sS --max-time 45 "$select/select/0/prometheus/api/v1/query" \
    --data-urlencode "query=$1" --data-urlencode "time=$ts_s" -G \
  | python3 -c '
import json, sys
a = json.load(sys.stdin)
assert a["status"] == "success", a
r = a["data"]["result"]
print(r[0]["value"][1] if r else "none", str(a.get("isPartial", False)).lower())'
}
expect_all() {
  local when="$1" limit="$2" started got
  started=$(date +%s)
  while :; do
    got="$(query 'count(deploy_check_probe)') $(query 'sum(deploy_check_probe)')" || got="error"
    # "20 false 190 false": all 20 series, values 0+…+19, no node missing.
    if [ "$got" = "20 false 190 false" ]; then
      say "$when: count 20, sum 190, isPartial false"
      return 0
    fi
    [ $(( $(date +%s) - started )) -lt "$limit" ] || die "$when: expected 'count sum' 20/190 complete, got: $got"
    sleep 2
  done
}
expect_all "read back through the select" 20

# Both storage nodes hold some of the series (jump hash spreads 20 series over 2 nodes).
for svc in storage-0 storage-1; do
  rows="$($compose exec -T "$svc" /bin/busybox wget -q -O - http://127.0.0.1:8482/metrics \
    | awk '$1 == "cairn_storage_rows_ingested_total" { print $2 }')"
  [ -n "$rows" ] && [ "${rows%.*}" -gt 0 ] || die "$svc ingested no rows (cairn_storage_rows_ingested_total='$rows')"
  say "$svc: cairn_storage_rows_ingested_total $rows"
done

# ---- lose one storage node ----
$compose stop storage-1 2>&1 | sed 's/^/    /'
got="$(query 'count(deploy_check_probe)')" || die "query with storage-1 stopped"
case "$got" in
  "20 "*|"none "*|*" false") die "with storage-1 stopped expected a partial answer of fewer than 20 series, got: $got" ;;
esac
say "storage-1 stopped: count ${got% *}, isPartial ${got#* }"

$compose start storage-1 2>&1 | sed 's/^/    /'
wait_healthy storage-1 180
expect_all "after restarting storage-1" 60
say "round trip passed"
