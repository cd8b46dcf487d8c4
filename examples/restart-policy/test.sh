#!/bin/sh
# Crashes the crasher four times and checks, from pidvisor's JSON events, that its
# restart policy did what service.toml says. Minutes of backoff take milliseconds.
# Needs pidvisor, pidvisorctl and jq on the PATH; run it from this folder.
set -eu
export PIDVISOR_SOCKET="$PWD/control.sock"
export PIDVISOR_EVENTS_FILE="$PWD/events.jsonl"
export PIDVISOR_TIME_SCALE=0.01    # pauses of 1s, 2s, 4s become 10ms, 20ms, 40ms

pidvisor --services-dir ./services.d &
pidvisor=$!

pidvisorctl wait crasher --state ready            # also waits for pidvisor to be up
for n in 1 2 3; do
    pidvisorctl signal crasher USR1                   # crash number $n ...
    pidvisorctl wait crasher --state ready --restarts "$n"   # ... and restart number $n
done
pidvisorctl signal crasher USR1                       # crash 4: max-restarts is 3
code=0; wait "$pidvisor" || code=$?                   # the container's exit code

check() {  # check WHAT JQ-CONDITION: the condition holds for the list of events
    if jq -e -s "$2" events.jsonl >/dev/null; then echo "ok: $1"; else echo "FAILED: $1"; exit 1; fi
}
crasher='[.[] | select(.service == "crasher")]'
restarts="$crasher | map(select(.event == \"restart_scheduled\"))"
check "restarted 3 times" "$restarts | length == 3"
check "nominal pauses 1s, 2s, 4s" "$restarts | map(.nominal_delay) == [1, 2, 4]"
check "scaled pauses 10ms, 20ms, 40ms" "$restarts | map(.delay) == [0.01, 0.02, 0.04]"
check "each restart came when due, not 1s later" "$crasher
  | map(select(.event == \"restart_scheduled\" or .event == \"started\"))
  | [range(1; length) as \$i | select(.[\$i - 1].event == \"restart_scheduled\")
     | .[\$i].mono - .[\$i - 1].due]
  | length == 3 and all(. > -0.00001 and . < 1)"
check "crashes exited with code 3" "$crasher | map(select(.event == \"exited\") | .code) == [3, 3, 3, 3]"
check "failed after the 4th crash" "$crasher | last | .event == \"failed\""
check "pidvisor exited with code 3" "last | .event == \"exit\" and .code == 3"
[ "$code" -eq 3 ] && echo "ok: the container's exit code is 3"
