#!/usr/bin/env bash
# A caller that closes its connection ends the work done for it, at once: an upload from a
# descriptor that never delivers (the runner is no longer busy, a multipart upload is aborted
# upstream), runner.wait (the run is then polled at the slowest interval only), watch_jobs, a
# download;
# other connections' calls go on, a runner.run already started completes and records its
# jobs, and a caller that only shut down its writing side (socat, nc -N) still gets its reply.
# The callers are avatard-probe processes killed once the daemon runs their call: their socket
# closes as any client's does when it exits.
. "$(dirname "$0")/../blackbox/lib.sh"
. "$SOURCE_ROOT/tests/blackbox/sim-fixtures.sh"
. "$SOURCE_ROOT/tests/blackbox/runner-fixtures.sh"

CONN="$BUILD_ROOT/tests/blackbox/avatard-conn"

# the job clock stands still unless a test moves it; polls: 1 s while someone waits, an hour
# (the slowest interval) for a run nobody waits on
start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
cat >"$CONF" <<EOF
log_level: debug
socket_mode: "0666"
upstream:
  base_url: $SIM_URL
  max_attempts: 3
  retry_base_ms: 50
  retry_max_ms: 200
cache:
  jobs_ttl_s: 0
runners:
  poll_min_s: 1
  poll_max_s: 3600
  multipart_threshold_bytes: 5MiB
  multipart_part_bytes: 5MiB
EOF
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

now_ms() { date +%s%3N; }
# set_polls SET: the polls of a set (GET /api/jobs?set_name=SET) the simulator received.
set_polls() {
        grep -F '"route":"GET /api/jobs"' "$SIM_REQUESTS" | grep -cF "\"query\":\"set_name=$1\"" || true
}
polls_at_least() { [ "$(set_polls "$1")" -ge "$2" ]; }
state_of() {
        ctl runner.get_status "{\"runner_id\":\"$1\"}"
        json_str state "$OUT"
}
not_busy() { local s; s=$(state_of "$1"); [ -n "$s" ] && [ "$s" != "$2" ]; }
status_is() { grep -qE "$1" <<<"$("$AVATARCTL" --json status 2>/dev/null)"; }
# holds FILE: whether the daemon has FILE open
daemon_holds() { ls -l "/proc/$DAEMON_PID/fd" 2>/dev/null | grep -qF -- "$1"; }
daemon_lets_go_of() { ! daemon_holds "$1"; }
closed_by_peer() { status_num closed_by_peer_total; }

# --- an upload from a descriptor that never delivers ------------------------------------------
RU=$(new_iris_runner stalled-upload)
mkfifo "$TMP/never.fifo"
# the test holds the writing end (read-write: opening it does not wait) and never writes
exec 7<>"$TMP/never.fifo"
gone=$(closed_by_peer)
pcall_bg "$TMP/upload.out" -f "$TMP/never.fifo" -t 120 runner.add_table \
        "{\"runner_id\":\"$RU\",\"table_name\":\"more\",\"data\":{\"fd\":0}}"
uploader=$PCALL_PID
uploading() { [ "$(state_of "$RU")" = uploading ]; }
check "add_table from a descriptor that never delivers: the runner is busy uploading" wait_until 10 uploading
check "the daemon holds the descriptor while it waits for data" daemon_holds "$TMP/never.fifo"
kill -TERM "$uploader"
wait "$uploader" 2>/dev/null
check "the caller closes: the runner is no longer busy, at once (not after the 5 min idle timeout)" \
        wait_until 10 not_busy "$RU" uploading
check "the upload is given up: the daemon closed the descriptor" wait_until 10 daemon_lets_go_of "$TMP/never.fifo"
check "daemon.status counts a connection closed by its peer" test "$(closed_by_peer)" -gt "${gone:-0}"
ctl runner.get_status "{\"runner_id\":\"$RU\"}"
check_no_match "the abandoned table is not in the runner" '"more"' "$OUT"
ctl runner.add_table "{\"runner_id\":\"$RU\",\"table_name\":\"again\",\"data\":{\"fd\":0}}" --file "$IRIS"
check_eq "the runner takes the next upload" "0" "$CTL_RC"
exec 7>&-

# --- a multipart upload cut off by its caller is aborted upstream ----------------------------------
mkfifo "$TMP/half.fifo"
exec 7<>"$TMP/half.fifo"
parts=$(sim_count "PUT /storage/{bucket}/{key}?partNumber&uploadId")
aborts=$(sim_count "DELETE /storage/{bucket}/{key}?uploadId")
pcall_bg "$TMP/multipart.out" -f "$TMP/half.fifo" -t 120 runner.add_table \
        "{\"runner_id\":\"$RU\",\"table_name\":\"big\",\"data\":{\"fd\":0}}"
uploader=$PCALL_PID
# more than one part (5 MiB) of a stream: a multipart upload, whose first part goes out while
# the daemon waits for the rest, which never comes
head -c $((5 * 1024 * 1024 + 65536)) /dev/zero >&7 &
writer=$!
part_sent() { [ "$(sim_count "PUT /storage/{bucket}/{key}?partNumber&uploadId")" -gt "${parts:-0}" ]; }
check "a stream of more than one part: the first part is stored" wait_until 30 part_sent
check "the multipart upload is open upstream" test "$(json_num uploads "$(sim_control stats)")" -ge 1
kill -TERM "$uploader"
wait "$uploader" 2>/dev/null
aborted() { [ "$(sim_count "DELETE /storage/{bucket}/{key}?uploadId")" -gt "${aborts:-0}" ]; }
check "the caller closes: the multipart upload is aborted upstream" wait_until 10 aborted
no_upload_open() { [ "$(json_num uploads "$(sim_control stats)")" = 0 ]; }
check "no multipart upload is left open upstream" wait_until 10 no_upload_open
check "the runner is no longer busy" wait_until 10 not_busy "$RU" uploading
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null
exec 7>&-

# --- five runner.wait callers close; another connection's wait goes on -------------------------------
RX=$(new_iris_runner left-alone)
ctl runner.run "{\"runner_id\":\"$RX\"}"
check_eq "a run that five callers wait on" "0" "$CTL_RC"
SX=$(json_str set_name "$OUT")
RY=$(new_iris_runner still-waited)
ctl runner.run "{\"runner_id\":\"$RY\"}"
SY=$(json_str set_name "$OUT")
waits=$(status_num runner.wait)
"$AVATARCTL" --json --timeout "$(scaled 120)" call runner.wait "{\"runner_id\":\"$RY\"}" >"$TMP/stayer.out" 2>&1 &
stayer=$!
pids=()
for i in 1 2 3 4 5; do
        pcall_bg "$TMP/waiter.$i" -t 120 runner.wait "{\"runner_id\":\"$RX\"}"
        pids+=("$PCALL_PID")
done
wait_for_calls runner.wait $((${waits:-0} + 6))
check "with the waits in place both sets are waited on" status_is '"sets_waited":2'
px=$(set_polls "$SX")
check "while callers wait, the run is polled at the waiting pace (1 s)" wait_until 20 polls_at_least "$SX" $((px + 2))
gone=$(closed_by_peer)
kill -TERM "${pids[@]}"
wait "${pids[@]}" 2>/dev/null
check "the five callers close: their waits end at once" wait_until 10 status_is '"sets_waited":1[,}]'
check "daemon.status counts the five closes" test "$(closed_by_peer)" -ge $((${gone:-0} + 5))
# the other set is polled every second or so: a clock made of the daemon's own polls
py=$(set_polls "$SY")
wait_until 20 polls_at_least "$SY" $((py + 1))
px=$(set_polls "$SX")
check "the waited set is still polled (three more polls)" wait_until 30 polls_at_least "$SY" $((py + 4))
check_eq "meanwhile the run nobody waits on is not polled (slowest interval: an hour)" "$px" "$(set_polls "$SX")"
check "the other connection's wait goes on" kill -0 "$stayer"

# --- a watch_jobs caller closes ----------------------------------------------------------------------
watchers() { json_num watchers "$("$AVATARCTL" --json status)"; }
w0=$(watchers)
calls=$(status_num manager.watch_jobs)
pcall_bg "$TMP/watch.out" -t 120 manager.watch_jobs "{\"set_name\":\"$SX\"}"
watcher=$PCALL_PID
wait_for_calls manager.watch_jobs $((${calls:-0} + 1))
check_eq "a watch_jobs caller adds a watcher" "$((w0 + 1))" "$(watchers)"
check "and the set is waited on again" status_is '"sets_waited":2'
kill -TERM "$watcher"
wait "$watcher" 2>/dev/null
watchers_back() { [ "$(watchers)" = "$w0" ]; }
check "the watch_jobs caller closes: its watch is released" wait_until 10 watchers_back
check "and the set is followed only again" status_is '"sets_waited":1[,}]'

# --- a shared upstream read: one caller leaves, the other gets the answer ----------------------------
sim_fault '{"route":"GET /api/health","hold":true}'
calls=$(status_num manager.get_health)
pcall_bg "$TMP/health-gone.out" -t 60 manager.get_health '{}'
leaver=$PCALL_PID
pcall_bg "$TMP/health-kept.out" -t 60 manager.get_health '{}'
keeper=$PCALL_PID
wait_for_calls manager.get_health $((${calls:-0} + 2))
held() { grep -q '"held":[1-9]' <<<"$(sim_control faults)"; }
check "the two reads share one upstream request, held" wait_until 10 held
gone=$(closed_by_peer)
kill -TERM "$leaver"
wait "$leaver" 2>/dev/null
left() { [ "$(closed_by_peer)" -gt "${gone:-0}" ]; }
wait_until 10 left
curl -sS --max-time "$(scaled 10)" -X DELETE "$SIM_URL/_sim/faults" >/dev/null
wait "$keeper"
check_eq "the caller that stays gets its answer" "0" "$?"
check_match "its answer is the health" '"result":' "$(cat "$TMP/health-kept.out")"

# --- runner.run: the caller leaves half-way, the run completes and records its jobs -----------------------
RZ=$(new_iris_runner left-half-way)
sim_fault '{"route":"POST /api/jobs","hold":true,"count":1}'
pcall_bg "$TMP/run.out" -t 60 runner.run "{\"runner_id\":\"$RZ\"}"
runner=$PCALL_PID
check "runner.run is under way, its first job creation held upstream" wait_until 10 held
gone=$(closed_by_peer)
kill -TERM "$runner"
wait "$runner" 2>/dev/null
wait_until 10 left
curl -sS --max-time "$(scaled 10)" -X DELETE "$SIM_URL/_sim/faults" >/dev/null
submitted() { local s; s=$(state_of "$RZ"); [ -n "$s" ] && [ "$s" != submitting ]; }
check "the run goes on without its caller" wait_until 10 submitted
ctl runner.get_status "{\"runner_id\":\"$RZ\"}"
SZ=$(json_str set_name "$OUT")
check_eq "the runner records the five jobs it created" "5" "$(grep -o '"parameters_name":"[a-z_]*","kind"' <<<"$OUT" | wc -l)"
check_eq "the set upstream has exactly those five jobs (none orphaned)" "5" \
        "$(grep -o '"name":"[^"]*"' <<<"$(sim_api GET "/jobs?set_name=$SZ")" | sort -u | wc -l)"

# --- a half-closed connection still gets its reply --------------------------------------------------------
out=$("$CONN" halfclose "$SOCK" "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"runner.wait\",\"params\":{\"runner_id\":\"$RX\",\"timeout_s\":1}}")
check_match "shutdown(SHUT_WR) after the request: the reply of a wait still comes" \
        '"id":7' "$out"
check_match "it is the wait's own end (the deadline), not a cancellation" '"timed_out":true' "$out"
check_eq "then the daemon closes the connection" "closed" "$(tail -n 1 <<<"$out")"
if command -v socat >/dev/null 2>&1; then
        out=$(printf '%s\n' "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"runner.wait\",\"params\":{\"runner_id\":\"$RX\",\"timeout_s\":1}}" |
                timeout "$(scaled 30)" socat -t "$(scaled 30)" - "UNIX-CONNECT:$SOCK")
        check_match "through socat (end of input, then waiting for the answer): the reply comes" '"id":8' "$out"
        check_match "and it is the wait's end" '"timed_out":true' "$out"
        # socat's default: it quits half a second after its input ended, closing the connection
        waits=$(status_num runner.wait)
        printf '%s\n' "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"runner.wait\",\"params\":{\"runner_id\":\"$RX\"}}" |
                timeout "$(scaled 30)" socat - "UNIX-CONNECT:$SOCK" >/dev/null
        check "a wait through socat with its default -t 0.5 was started" test "$(status_num runner.wait)" -gt "${waits:-0}"
        check "socat gives up half a second after its input ended: the wait it left is released" \
                wait_until 10 status_is '"sets_waited":1[,}]'
else
        pass "skipped socat: not installed"
fi

# --- the jobs move: the wait that stayed ends well ---------------------------------------------------------
sim_control clock '{"job_step_ms":50}' >/dev/null
wait "$stayer"
check_eq "the wait of the connection that stayed ends successfully" "0" "$?"
check_match "and reports its jobs done" '"done": ?true' "$(cat "$TMP/stayer.out")"

# --- a download whose caller closes ----------------------------------------------------------------------
sim_fault '{"route":"GET /storage/{bucket}/{key}","hold":true}'
pcall_bg "$TMP/download.out" -o "$TMP/download.csv" -t 60 runner.download \
        "{\"runner_id\":\"$RY\",\"result\":\"shuffled\",\"table\":\"iris\",\"fd\":{\"fd\":0}}"
downloader=$PCALL_PID
check "a download waits on the storage (held)" wait_until 10 held
check "meanwhile the daemon holds the caller's file" daemon_holds "$TMP/download.csv"
kill -TERM "$downloader"
wait "$downloader" 2>/dev/null
check "the caller closes: the download stops and the daemon lets go of the file" \
        wait_until 10 daemon_lets_go_of "$TMP/download.csv"
curl -sS --max-time "$(scaled 10)" -X DELETE "$SIM_URL/_sim/faults" >/dev/null
out=$(pcall -o "$TMP/download2.csv" -t 60 runner.download \
        "{\"runner_id\":\"$RY\",\"result\":\"shuffled\",\"table\":\"iris\",\"fd\":{\"fd\":0}}")
check_match "the next download of the same result works" '"result":\{' "$(reply_of "$out")"

check_no_sanitizer_reports
finish
