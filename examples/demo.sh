#!/usr/bin/env bash
# The pidvisor demo: what a container's PID 1 must do, shown with and without pidvisor.
#
# Each scene runs a "container" as a fresh PID namespace (`unshare --pid --fork
# --mount-proc`), first with a plain shell as PID 1, then with pidvisor as PID 1.
# Needs root (or unprivileged user namespaces) and util-linux's `unshare`.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building pidvisor (release, static) and the example services"
target=$(scripts/static-target)
cargo build --release --quiet --target "$target" --bins --examples
PIDVISOR=$PWD/target/$target/release/pidvisor
EXAMPLES=$PWD/target/$target/release/examples
# Everything the demo writes goes in here, and goes when it ends.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ls -l "$PIDVISOR" | awk '{printf "   %s bytes, ", $5}'; file -b "$PIDVISOR" | cut -d, -f1-2

ns=(unshare --pid --fork --mount-proc)
[ "$(id -u)" = 0 ] || ns=(unshare --user --map-root-user --pid --fork --mount-proc)

# A workload that leaves orphans behind: 50 background jobs whose parent exits at once.
make_orphans='for i in $(seq 50); do (sleep 0.1 &) ; done; sleep 0.5'
count_zombies='grep -l "^State:.*Z" /proc/[0-9]*/status 2>/dev/null | wc -l'

echo
echo "== 1. zombies: 50 orphaned children exit; who reaps them?"
# A PID 1 that waits only for its own child, as most programs do (perl's system()).
echo -n "   a non-init as PID 1:   zombies left = "
"${ns[@]}" perl -e 'system("sh", "-c", $ARGV[0])' "$make_orphans; $count_zombies"
echo -n "   pidvisor as PID 1:     zombies left = "
"${ns[@]}" "$PIDVISOR" --log-level warn -- sh -c "$make_orphans; $count_zombies"

echo
echo "== 2. docker stop: SIGTERM goes to PID 1 only; does the app hear it?"
export READY=$work/ready
app='trap "echo \"   app: got SIGTERM, shutting down cleanly\"; exit 0" TERM; touch "$READY"; while :; do sleep 0.05; done 2>/dev/null'
stop_after_ready() { # $@: the container command; prints how it ended and how long it took
  rm -f "$READY"
  "$@" & local unshare_pid=$!
  while [ ! -e "$READY" ]; do sleep 0.01; done
  local init; init=$(cat /proc/$unshare_pid/task/$unshare_pid/children)
  local start; start=$(date +%s%N)
  kill -TERM "$init"
  # Docker's grace period is 10 s; we stop the demo's wait after 3 s and SIGKILL.
  local waited=0
  while kill -0 "$init" 2>/dev/null && [ $waited -lt 300 ]; do sleep 0.01; waited=$((waited + 1)); done
  if kill -0 "$init" 2>/dev/null; then
    echo "   still running after 3 s, SIGTERM went nowhere: Docker would SIGKILL it at 10 s (exit code 137)"
    kill -KILL "$init"
    wait "$unshare_pid" 2>/dev/null || true
    return
  fi
  local status=0; wait "$unshare_pid" || status=$?
  echo "   exit code $status after $(( ($(date +%s%N) - start) / 1000000 )) ms"
}
echo "   plain sh as PID 1 (the app runs under it):"
stop_after_ready "${ns[@]}" sh -c "sh -c '$app'" 2>/dev/null
echo "   pidvisor as PID 1:"
stop_after_ready "${ns[@]}" "$PIDVISOR" --log-level warn -- sh -c "$app"

echo
echo "== 3. exit codes: the container's exit code tells what happened"
for cmd in "exit 3" "kill -SEGV \$\$" "no-such-program"; do
  status=0
  "${ns[@]}" "$PIDVISOR" --log-level error -- sh -c "$cmd" 2>/dev/null || status=$?
  printf '   %-18s -> %s\n' "$cmd" "$status"
done

echo
echo "== 4. services: this repository's services.d, supervised as PID 1"
# The web node of the example cluster: webapp, its log forwarder (log/run) and the gossip
# agent, the project's own programs (examples/), with rsyslog as the log collector when
# it is installed.
"$PIDVISOR" --check services.d | sed 's/^/   /'
cp -a services.d "$work/"
mkdir -p "$work/bin"
ln -s "$PIDVISOR" "$work/bin/pidvisorctl"
for program in webapp gossip logfwd; do ln -s "$EXAMPLES/$program" "$work/bin/$program"; done
export GOSSIP_SOCKET=$work/gossip.sock
if command -v rsyslogd >/dev/null; then
  # The collector, supervised beside the others: rsyslog's TCP input on loopback, one
  # file per host.
  export LOG_COLLECTOR=127.0.0.1:10514
  mkdir -p "$work/services.d/collector" "$work/rsyslog"
  cat > "$work/rsyslog.conf" <<CONF
global(workDirectory="$work/rsyslog")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="10514")
template(name="perhost" type="string" string="$work/rsyslog/%HOSTNAME%.log")
template(name="line" type="string" string="%TIMESTAMP:::date-rfc3339% %APP-NAME%[%PROCID%] %MSG%\n")
action(type="omfile" dynaFile="perhost" template="line")
CONF
  printf '#!/bin/sh\nexec rsyslogd -n -iNONE -f "%s"\n' "$work/rsyslog.conf" > "$work/services.d/collector/run"
  chmod +x "$work/services.d/collector/run"
  printf 'ready = { tcp = "127.0.0.1:10514" }\n' > "$work/services.d/collector/service.toml"
  printf 'after = ["collector"]\n' >> "$work/services.d/webapp/service.toml"
else
  echo "   (rsyslog is not installed: the log forwarder only echoes; apt-get install rsyslog to see it ship)"
fi
cat > "$work/scenario.sh" <<'SCENARIO'
#!/usr/bin/env bash
# The main command: talks to the web app, crashes it, and watches pidvisor bring it back,
# asking pidvisor itself through pidvisorctl (the same binary under another name).
get() { # GET $1 from the web app as JSON, with bash's /dev/tcp: the body
  exec 3<>/dev/tcp/127.0.0.1/8080
  printf 'GET %s HTTP/1.0\r\nAccept: application/json\r\n\r\n' "$1" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}
echo "main: GET / says: $(get /)"
echo "main: gossip members:"
gossip members --socket "$GOSSIP_SOCKET" | sed 's/^/      /'
echo "main: GET /crash?signal=SEGV (the web app dies of SIGSEGV)"
get '/crash?signal=SEGV' >/dev/null 2>&1 || true
pidvisorctl wait webapp --state ready --restarts 1 --timeout 10s >/dev/null
echo "main: webapp is back and says: $(get /)"
echo "main: pidvisorctl status"
pidvisorctl status | sed 's/^/      /'
SCENARIO
chmod +x "$work/scenario.sh"
PATH="$work/bin:$PATH" PIDVISOR_SOCKET="$work/control.sock" \
  "${ns[@]}" "$PIDVISOR" --services-dir "$work/services.d" -- "$work/scenario.sh" 2>&1 | sed 's/^/   /'
if [ -n "${LOG_COLLECTOR:-}" ]; then
  echo "   what rsyslog received from the log forwarder ($(ls "$work"/rsyslog/*.log)):"
  sed 's/^/      /' "$work"/rsyslog/*.log
fi
