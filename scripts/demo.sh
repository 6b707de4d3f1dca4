#!/usr/bin/env bash
# make demo: the example platform with 30 days of simulated history whose last 20 hours carry an API
# 5xx spike (5% of requests), served by vigil serve and fed live traffic with the spike going on.
# 20 hours at 5% exhaust api-availability's monthly budget on any day of the month after ~14:00 of
# the 1st, so the gate freezes api; every other service stays within its SLOs.
# The history is loaded into the store (vigil simulate | vigil push -) BEFORE vigil serve starts, so
# the server's first evaluation sees all of it: evaluated while a backfill is still arriving, the
# search index's staleness gauge had no sample in the last 5 minutes and search-down paged falsely.
# The spike pages: the alert is routed (alerting: in the spec) to a local incident bridge this script
# starts (scripts/alert_sink.py, signed webhooks on 127.0.0.1:9099); PagerDuty and SMTP have no
# secrets here, so those notifications switch to their fallbacks and fail, all of it in
# `vigil alerts log`. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
VIGIL=.venv/bin/vigil
SPEC=examples/platform/vigil.yaml
STATE=examples/platform/.vigil
PORT=${VIGIL_PORT:-8470}
URL=http://127.0.0.1:$PORT

mkdir -p "$STATE" && chmod 700 "$STATE"   # the token and the store live here (vigil makes it 0700 when it creates it)
rm -f "$STATE"/vigil.db "$STATE"/vigil.db-wal "$STATE"/vigil.db-shm   # demo data starts fresh
$VIGIL check "$SPEC"
if curl -s -o /dev/null "$URL/healthz" 2>/dev/null; then
  echo "something already answers at $URL (another demo?): stop it, or run with VIGIL_PORT=<another port>"
  exit 1
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping vigil..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped. State is kept in $STATE (delete it to start over)."
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

# the incident bridge: a local receiver of vigil's signed webhooks (the example routes every alert there)
export VIGIL_BRIDGE_SECRET=${VIGIL_BRIDGE_SECRET:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}
.venv/bin/python scripts/alert_sink.py --port 9099 >"$STATE/alerts-received.log" 2>&1 &
sink_pid=$!
pids+=($sink_pid)
for _ in $(seq 1 50); do
  grep -q "listening" "$STATE/alerts-received.log" 2>/dev/null && break
  kill -0 "$sink_pid" 2>/dev/null || break
  sleep 0.2
done
grep -q "listening" "$STATE/alerts-received.log" 2>/dev/null || {
  tail -3 "$STATE/alerts-received.log"
  echo "the incident bridge could not listen on 127.0.0.1:9099 (the example spec sends alerts there): is another demo running?"
  exit 1
}

# one set of times for the history and the live feed: the history ends at the start of this minute,
# the spike started 20 hours before it and lasts 24 hours
read -r HISTORY_END INCIDENT_START < <(.venv/bin/python -c '
import datetime as d
end = d.datetime.now(d.timezone.utc).replace(second=0, microsecond=0)
print(end.strftime("%Y-%m-%dT%H:%M:%SZ"), (end - d.timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
TRAFFIC=(--scenario api-5xx-spike --incident-start "$INCIDENT_START" --incident-duration 24h --seed 42)

echo "loading 30 days of simulated traffic (about 3.8 million lines; an API 5xx spike"
echo "in the last 20 hours) into $STATE/vigil.db."
echo "Progress below; 45 s to 2 minutes on a 2-core machine, depending on its load..."
# simulate | push through a named pipe, so each is a child of this script (Ctrl-C or a kill stops both)
fifo="$STATE/history.ndjson.fifo"
rm -f "$fifo"; mkfifo "$fifo"
$VIGIL simulate --from now-30d --to "$HISTORY_END" "${TRAFFIC[@]}" --out - >"$fifo" 2>"$STATE/simulate.log" &
gen_pid=$!
$VIGIL push - --spec "$SPEC" <"$fifo" >"$STATE/push.log" 2>&1 &
load_pid=$!
pids+=($gen_pid $load_pid)
started=$(date +%s)
shown=0
show_progress() {
  local n
  n=$(wc -l < "$STATE/simulate.log" 2>/dev/null || echo 0)
  if [ "$n" -gt "$shown" ]; then
    sed -n "$((shown + 1)),${n}p" "$STATE/simulate.log" | sed 's/^/  /'
    shown=$n
  fi
}
while kill -0 "$load_pid" 2>/dev/null; do
  show_progress
  sleep 1
done
show_progress
gen_rc=0; wait "$gen_pid" || gen_rc=$?
load_rc=0; wait "$load_pid" || load_rc=$?
rm -f "$fifo"
sed 's/^/  /' "$STATE/push.log"
if [ "$gen_rc" -ne 0 ] || [ "$load_rc" -ne 0 ]; then
  echo "loading the history failed (simulate exit $gen_rc, push exit $load_rc); see $STATE/simulate.log and $STATE/push.log"
  exit 1
fi
echo "history loaded in $(( $(date +%s) - started )) s"

# never page anyone from a demo: PagerDuty and SMTP secrets are left out on purpose
env -u PAGERDUTY_ROUTING_KEY -u SMTP_PASSWORD $VIGIL serve --spec "$SPEC" --port "$PORT" 2>"$STATE/serve.log" &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 1 100); do
  curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$STATE/serve.log"; exit 1; }
  sleep 0.2
done
curl -fsS "$URL/healthz" >/dev/null || { echo "vigil serve did not come up; see $STATE/serve.log"; exit 1; }
echo "vigil serve is up at $URL; live traffic from $HISTORY_END on, every 10 s"
$VIGIL simulate --url "$URL" --token-file "$STATE/token" --from "$HISTORY_END" "${TRAFFIC[@]}" --live \
  2>"$STATE/simulate-live.log" &
sim_pid=$!
pids+=($sim_pid)

# the spike pages: wait (at most 3 minutes) until the bridge has received the api-availability page
echo "waiting for the API 5xx spike to page (evaluated every 30 s, group_wait 30 s)..."
for _ in $(seq 1 180); do
  grep -q "trigger .*api-availability-burn" "$STATE/alerts-received.log" 2>/dev/null && break
  sleep 1
done
echo "received by the local incident bridge ($STATE/alerts-received.log):"
grep -A1 "trigger " "$STATE/alerts-received.log" | sed 's/^/  /' || echo "  (nothing yet: see $STATE/serve.log)"
echo "firing (vigil alerts; the bridge shows the first alert of the group, both went to it):"
$VIGIL alerts --spec "$SPEC" | sed 's/^/  /' || true
echo "delivery attempts (vigil alerts log):"
$VIGIL alerts log --spec "$SPEC" --limit 8 | sed 's/^/  /' || true

cat <<TXT

vigil is serving $SPEC at $URL with simulated live traffic.

  Web UI:          $URL/   (sign in with this token: $(cat "$STATE/token"))
  SLO status:      $VIGIL slo status --spec $SPEC
  deploy gate:     $VIGIL gate deploy --service api --spec $SPEC      (frozen: the spike exhausted the budget)
                   $VIGIL gate deploy --service checkout --spec $SPEC (allowed)
  gate record:     $VIGIL gate log --spec $SPEC
  JSON API:        curl -H "Authorization: Bearer \$(cat $STATE/token)" $URL/api/v1/slos
                   curl -H "Authorization: Bearer \$(cat $STATE/token)" "$URL/api/v1/gate?service=api"
  alerts:          $VIGIL alerts --spec $SPEC
  deliveries:      $VIGIL alerts log --spec $SPEC      (PagerDuty -> email -> backup email: fallbacks, no secrets here)
  received:        tail -f $STATE/alerts-received.log
  silence:         $VIGIL silence add --spec $SPEC -m 'service="api"' --reason "looking at it" --duration 1h
  API docs:        $URL/docs

Ctrl-C stops the server and the simulator.
TXT
$VIGIL slo status --spec "$SPEC" || true
wait
