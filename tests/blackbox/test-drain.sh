#!/usr/bin/env bash
# Black-box tests of the graceful stop: SIGTERM lets an upload that can finish within
# limits.shutdown_timeout_s finish (the call succeeds, the daemon exits after it), ends a
# runner.wait at once with shutting_down and the command that attaches again, and with a
# budget too short for the upload cancels it, aborts its multipart upload and waits for the
# abort, so the storage keeps no upload in progress. Each stop is driven by the simulator
# holding a part of the upload (an event), never by a delay.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

PART_ROUTE="PUT /storage/{bucket}/{key}?partNumber&uploadId"

# drain_conf SECONDS: the runner configuration with 5 MiB parts above 8 MiB and that stop
# budget.
drain_conf() {
        runner_conf
        printf '  multipart_threshold_bytes: 8388608\n  multipart_part_bytes: 5242880\n'
        printf 'limits:\n  shutdown_timeout_s: %s\n' "$1"
}

# uploads_in_progress: the multipart uploads the storage holds, neither completed nor aborted.
uploads_in_progress() {
        grep -o '"id":' <<<"$(sim_control uploads)" | wc -l
}

# daemon_gone: whether the daemon process has exited (for wait_until).
daemon_gone() {
        ! kill -0 "$DAEMON_PID" 2>/dev/null
}

start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
drain_conf 30 >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

head -c $((12 * 1024 * 1024 + 123)) /dev/urandom >"$TMP/medium.bin"
ctl manager.create_runner '{"set_name":"drained"}'
R=$(runner_id_of "$OUT")
RW=$(new_iris_runner waited)
ctl runner.run "{\"runner_id\":\"$RW\"}"
check_eq "a run to wait on" "0" "$CTL_RC"

# --- SIGTERM during an upload that can finish, and a runner.wait ------------------------------------
# a connection open before the stop: it sends one daemon.ping, then another when told on its
# standard input (a FIFO the test writes to)
cat >"$TMP/conn.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rwb")
for i in (1, 2):
    if i == 2 and not sys.stdin.readline():
        break
    f.write(b'{"jsonrpc":"2.0","id":%d,"method":"daemon.ping"}\n' % i)
    f.flush()
    print(f.readline().decode().strip(), flush=True)
PY
mkfifo "$TMP/go"
python3 "$TMP/conn.py" "$SOCK" <"$TMP/go" >"$TMP/conn.out" 2>&1 &
CONN=$!
exec 3>"$TMP/go"
wait_for_output 20 "$TMP/conn.out" '"id":1' "$CONN"

calls=$(status_num runner.wait)
pcall_bg "$TMP/wait.out" -t "$(scaled 60)" runner.wait "{\"runner_id\":\"$RW\",\"timeout_s\":3600}"
WAIT=$PCALL_PID
wait_for_calls runner.wait $((${calls:-0} + 1))
sim_hold "$PART_ROUTE" 1
pcall_bg "$TMP/upload.out" -t "$(scaled 120)" -f "$TMP/medium.bin" runner.add_table \
        "{\"runner_id\":\"$R\",\"table_name\":\"medium\",\"data\":{\"fd\":0},\"file_name\":\"medium.bin\"}"
UPLOAD=$PCALL_PID
check "a part of the upload is held by the storage" wait_until 30 sim_held 1
kill -TERM "$DAEMON_PID"
wait_for_output 10 "$DAEMON_LOG" 'Waiting up to 30s for [0-9]+ request' "$DAEMON_PID"
check_match "SIGTERM: the daemon waits for the upload in flight" 'Waiting up to 30s for 1 request' "$(cat "$DAEMON_LOG")"
wait "$WAIT"
reply=$(reply_of "$(cat "$TMP/wait.out")")
check_match "runner.wait ends at once with shutting_down" '"code":-32016' "$reply"
check_contains "... with the command that attaches again" "\"reattach\":\"avatarctl runner wait $RW\"" "$reply"
check_match "... which the message gives too" "wait for them again with 'avatarctl runner wait $RW'" "$reply"
check "the upload is still held when the wait has ended (the wait did not wait for the stop)" sim_held 1
check "the daemon is still running for the upload" kill -0 "$DAEMON_PID"
"$AVATARCTL" --socket "$SOCK" --timeout "$(scaled 10)" call daemon.ping >/dev/null 2>&1
check_fails "a new connection is refused while stopping" test "$?" = 0
echo go >&3
wait "$CONN"
exec 3>&-
check_match "a connection open before the stop gets shutting_down for a new call" \
        '"id":2.*"code":-32016|"code":-32016.*"id":2' "$(tail -n 1 "$TMP/conn.out")"
sim_release >/dev/null
wait "$UPLOAD"
reply=$(reply_of "$(cat "$TMP/upload.out")")
check_match "the upload finishes within shutdown_timeout_s and the call succeeds" '"result":\{' "$reply"
url=$(json_str storage_url "$reply")
check "the object is stored byte for byte" cmp "$TMP/medium.bin" "$TMP/storage/${url#s3://}"
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=""
check_eq "the daemon exits 0 after the upload" "0" "$rc"
check_match "... once every request finished" 'All requests finished' "$(cat "$DAEMON_LOG")"
check_eq "no multipart upload is left in progress" "0" "$(uploads_in_progress)"

# --- SIGTERM with a budget too short for the upload: cancelled, aborted, waited for -------------------
drain_conf 1 >"$CONF"
start_daemon || { fail "avatard starts again"; finish; exit $?; }
aborts=$(sim_count "DELETE /storage/{bucket}/{key}?uploadId")
sim_hold "$PART_ROUTE" 1
pcall_bg "$TMP/upload2.out" -t "$(scaled 120)" -f "$TMP/medium.bin" runner.add_table \
        "{\"runner_id\":\"$R\",\"table_name\":\"medium2\",\"data\":{\"fd\":0},\"file_name\":\"medium2.bin\"}"
UPLOAD=$PCALL_PID
check "a part of the second upload is held by the storage" wait_until 30 sim_held 1
check_eq "the storage holds the upload in progress" "1" "$(uploads_in_progress)"
kill -TERM "$DAEMON_PID"
wait "$UPLOAD"
reply=$(reply_of "$(cat "$TMP/upload2.out")")
check_match "past the budget the upload fails with shutting_down" '"code":-32016' "$reply"
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=""
check_eq "the daemon exits 0" "0" "$rc"
check_match "the daemon waited for the abort of the upload it cancelled" \
        'Waiting up to [0-9]+ ms for 1 multipart upload abort' "$(cat "$DAEMON_LOG")"
check_eq "the abort reached the storage" "$((aborts + 1))" "$(sim_count "DELETE /storage/{bucket}/{key}?uploadId")"
check_eq "no multipart upload is left in progress" "0" "$(uploads_in_progress)"
sim_release >/dev/null

# --- error classes: what a retry can fix says retryable -----------------------------------------------
drain_conf 30 >"$CONF"
start_daemon || { fail "avatard starts a third time"; finish; exit $?; }
sim_fault '{"route":"PUT /storage/{bucket}/{key}?partNumber&uploadId","status":503}'
raw=$(pcall -t "$(scaled 60)" -f "$TMP/medium.bin" runner.add_table \
        "{\"runner_id\":\"$R\",\"table_name\":\"medium3\",\"data\":{\"fd\":0},\"file_name\":\"medium3.bin\"}")
check_match "a storage answering 503 on every repeat fails the upload with storage_error" '"code":-32014' "$(reply_of "$raw")"
check_match "... which a retry can fix: retryable" '"status":503,.*"retryable":true' "$(reply_of "$raw")"
sim_control reset '{}' >/dev/null
sim_fault '{"route":"PUT /storage/{bucket}/{key}?partNumber&uploadId","status":403,"count":1}'
raw=$(pcall -t "$(scaled 60)" -f "$TMP/medium.bin" runner.add_table \
        "{\"runner_id\":\"$R\",\"table_name\":\"medium3\",\"data\":{\"fd\":0},\"file_name\":\"medium3.bin\"}")
check_match "a storage refusing a part (403) is storage_error, not retryable" '"code":-32014,.*"status":403,.*"retryable":false' "$(reply_of "$raw")"
sim_control reset '{}' >/dev/null
sim_fault '{"route":"GET /api/jobs/{name}","status":502}'
raw=$(rpc manager.get_job '{"name":"00000000-0000-4000-8000-000000000000"}')
check_match "a server error (502) of the API is upstream_http_error, retryable" '"code":-32001,.*"retryable":true' "$raw"
sim_control reset '{}' >/dev/null
stop_daemon

if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$DAEMON_LOG"; then
        fail "no sanitizer report in the daemon's log" "$(grep -E -m 5 -A 3 'ERROR:|runtime error:' "$DAEMON_LOG")"
else
        pass "no sanitizer report in the daemon's log"
fi
finish
