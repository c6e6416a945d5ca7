#!/usr/bin/env bash
# Black-box tests of following runs: twenty clients waiting on one run cost one upstream poll
# per interval, manager.watch_jobs notifications (subscription, seq) until the set is done or
# the deadline, and runner ownership (another uid is refused, runner.list shows one's own).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

# the job clock stands still (0) unless a test moves it
start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
runner_conf 'socket_mode: "0666"' >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

now_ms() { date +%s%3N; }
# set_polls SET FROM-MS TO-MS: the polls of a set (GET /api/jobs?set_name=SET) the simulator
# received between two instants.
set_polls() {
        grep -F '"route":"GET /api/jobs"' "$SIM_REQUESTS" | grep -F "\"query\":\"set_name=$1\"" |
                grep -o '"ts":[0-9]*' | cut -d: -f2 | awk -v a="$2" -v b="$3" '$1 >= a && $1 < b' | wc -l
}

# --- twenty clients waiting on one run: one poll per interval upstream ---------------------------------
RW=$(new_iris_runner waited)
ctl runner.run "{\"runner_id\":\"$RW\"}"
check_eq "a run to wait on" "0" "$CTL_RC"
SW=$(json_str set_name "$OUT")
# a second runner bound to the same set (loaded by id) is followed by the same poller
ctl manager.create_runner_from_id "{\"set_name\":\"$SW\"}"
check_match "a second runner follows the same set" "\"state\":\"running\",\"set_name\":\"$SW\"" "$OUT"
RW2=$(runner_id_of "$OUT")
pids=()
waits=$(status_num runner.wait)
for i in $(seq 1 20); do
        r=$RW
        [ "$i" -gt 15 ] && r=$RW2
        "$AVATARCTL" --json --timeout "$(scaled 120)" call runner.wait "{\"runner_id\":\"$r\"}" >"$TMP/wait.$i" 2>&1 &
        pids+=($!)
done
# every wait is in place once the daemon has dispatched the twenty calls
wait_for_calls runner.wait $((${waits:-0} + 20))
st=$("$AVATARCTL" --json status)
check_match "daemon.status: the poller follows one set for all of them" '"poller":\{"sets":1,' "$st"
# The polls of the next few intervals: each one is answered before the next is armed a full
# interval (1 s) later, so n polls span at least n - 1 s whatever the load; one poll per
# waiter would be twenty per interval.
t0=$(now_ms)
polls_since_t0() { [ "$(set_polls "$SW" "$t0" $(($(now_ms) + 1)))" -ge "$1" ]; }
check "20 waiters: the set is still polled (4 polls)" wait_until 20 polls_since_t0 4
t1=$(($(now_ms) + 1))
polls=$(set_polls "$SW" "$t0" "$t1")
window_s=$(((t1 - t0) / 1000))
echo "# $polls polls of set $SW in $((t1 - t0)) ms with 20 clients waiting (interval 1 s)"
check "20 waiters: at most one poll per interval upstream ($polls in $((t1 - t0)) ms)" test "$polls" -le $((window_s + 1))
alive=0
for p in "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null && alive=$((alive + 1))
done
check_eq "the 20 waits are still waiting while the jobs stand still" "20" "$alive"
sim_control clock '{"job_step_ms":50}' >/dev/null
failed=0
for p in "${pids[@]}"; do
        wait "$p" || failed=$((failed + 1))
done
check_eq "all 20 waits end successfully once the jobs move" "0" "$failed"
done_n=0
for i in $(seq 1 20); do
        grep -q '"done":true,"timed_out":false' "$TMP/wait.$i" && done_n=$((done_n + 1))
done
check_eq "all 20 waits report done" "20" "$done_n"
sim_control clock '{"job_step_ms":0}' >/dev/null
# the runners stop following the set with the poll that saw it done
no_set_followed() { grep -q '"poller":{"sets":0,' <<<"$("$AVATARCTL" --json status)"; }
wait_until 10 no_set_followed
check_match "daemon.status: the poller follows no set any more" '"poller":\{"sets":0,' "$("$AVATARCTL" --json status)"
t0=$(now_ms)
# nothing more may happen now: two poll intervals without a poll of the set
quiet_period 2
check_eq "once the set is done it is polled no more" "0" "$(set_polls "$SW" "$t0" "$(now_ms)")"

# --- manager.watch_jobs -----------------------------------------------------------------------------
RJ=$(new_iris_runner watched)
ctl runner.run "{\"runner_id\":\"$RJ\"}"
SJ=$(json_str set_name "$OUT")
call_in_two_strides "$TMP/watch.out" '"status":"pending"' manager.watch_jobs "{\"set_name\":\"$SJ\"}"
out=$(cat "$TMP/watch.out")
reply=$(reply_of "$out")
notes=$(notes_of "$out" jobs.changed)
sub=$(json_str subscription "$reply")
n=$(count_lines "$notes")
check_match "watch_jobs ends with the set done" "\"result\":\\{\"subscription\":\"$sub\",\"set_name\":\"$SJ\",\"done\":true" "$reply"
check_match "watch_jobs: several jobs.changed notifications" '^([2-9]|[1-9][0-9]+)$' "$n"
check_eq "watch_jobs: the reply counts the notifications" "$n" "$(json_num notifications "$reply")"
check_eq "watch_jobs: every notification carries the subscription" "$n" \
        "$(grep -c "\"subscription\":\"$sub\"" <<<"$notes")"
check_eq "watch_jobs: every notification names the set" "$n" "$(grep -c "\"set_name\":\"$SJ\"" <<<"$notes")"
check "watch_jobs: seq starts at 1 and increases by one" seqs_consecutive "$notes"
check_eq "watch_jobs: only notifications precede the reply" "$n" "$(($(count_lines "$out") - 1))"
check_match "watch_jobs: notifications carry the changed jobs" \
        "^\\{\"jsonrpc\":\"2.0\",\"method\":\"jobs.changed\",\"params\":\\{\"set_name\":\"$SJ\",\"jobs\":\\[\\{\"name\":" \
        "$(head -n 1 <<<"$notes")"
check_match "watch_jobs: progress is reported as jobs move" '"status":"pending"' "$notes"
check_eq "watch_jobs: the reply lists the five jobs, all finished" "5" \
        "$(grep -o '"status":"finished"' <<<"$reply" | wc -l)"

# by runner, on a set already done: the first poll ends it
out=$(pcall -t 30 manager.watch_jobs "{\"runner_id\":\"$RJ\"}")
check_match "watch_jobs by runner_id on a finished set ends at once, done" \
        "\"set_name\":\"$SJ\",\"done\":true" "$(reply_of "$out")"

# a deadline on a set that does not move
RT=$(new_iris_runner stalled)
ctl runner.run "{\"runner_id\":\"$RT\"}"
ST=$(json_str set_name "$OUT")
STD_T=$(job_field "$OUT" standard name)
t0=$(now_ms)
out=$(pcall -t 30 manager.watch_jobs "{\"set_name\":\"$ST\",\"jobs\":[\"$STD_T\"],\"timeout_s\":2}")
t1=$(now_ms)
check_match "watch_jobs with timeout_s 2 on a stalled set ends not done" "\"set_name\":\"$ST\",\"done\":false" "$(reply_of "$out")"
# a lower bound only: a late end is bounded by the probe's own deadline
check "watch_jobs: the deadline is kept (not before 2 s: $((t1 - t0)) ms)" test $((t1 - t0)) -ge 1900
check_eq "watch_jobs with a job list reports only those jobs" "$STD_T" \
        "$(reply_of "$out" | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | sort -u)"
out=$(pcall -t 10 runner.wait "{\"runner_id\":\"$RT\",\"timeout_s\":1}")
check_match "runner.wait with timeout_s 1 ends timed out, not done" '"done":false,"timed_out":true' "$(reply_of "$out")"
# joining a set the daemon already follows (runner RT's) starts from the last poll's jobs: the
# watch above saw them, so the snapshot comes at once, before the 1 s deadline is even armed
out=$(pcall -t 30 manager.watch_jobs "{\"set_name\":\"$ST\",\"timeout_s\":1}")
notes=$(notes_of "$out" jobs.changed)
check_eq "watch_jobs joining a followed set gets one snapshot notification" "1" "$(count_lines "$notes")"
check_eq "the snapshot lists the set's five jobs" "5" "$(grep -o '"parameters_name":' <<<"$notes" | wc -l)"

# an advice job that never finishes gives the runner back at the deadline
RA=$(new_iris_runner advised)
t0=$(now_ms)
raw=$(rpc runner.advise_parameters "{\"runner_id\":\"$RA\",\"timeout_s\":1}")
check_match "advise_parameters ends at its deadline with the timeout class" '"code":-32011' "$raw"
ctl runner.get_status "{\"runner_id\":\"$RA\"}"
check_no_match "after the advice deadline the runner is no longer busy advising" '"state":"advising"' "$OUT"
ctl runner.set_parameters "{\"runner_id\":\"$RA\",\"table_name\":\"iris\",\"k\":5}"
check_eq "after the advice deadline set_parameters works again" "0" "$CTL_RC"

raw=$(rpc manager.watch_jobs '{}')
check_match "watch_jobs without set_name or runner_id: invalid params" '"code":-32602' "$raw"

# --- waiting on some jobs only ---------------------------------------------------------------------------
RK=$(new_iris_runner partial)
ctl runner.run "{\"runner_id\":\"$RK\"}"
SK=$(json_str set_name "$OUT")
std_finished() {
        ctl runner.get_status "{\"runner_id\":\"$RK\",\"refresh\":true}"
        [ "$(job_field "$OUT" standard status)" = finished ]
}
# the simulator's clock moves by hand until its standard job is finished, then stands still:
# the daemon's polls catch up with a state that no longer moves
for i in 1 2 3 4 5 6 7 8 9 10; do
        sim_tick 1
        [ "$(sim_job_status "$SK" standard)" = finished ] && break
done
wait_until 10 std_finished
check "with the clock moved by hand the standard job finishes first" std_finished
check_eq "while the report is not done" "false" \
        "$(grep -o '"parameters_name":"report","kind":"report","name":"[^"]*","status":"[a-z]*","progress":[0-9.a-z]*,"done":[a-z]*' <<<"$OUT" | sed 's/.*"done"://')"
out=$(pcall -t 10 runner.wait "{\"runner_id\":\"$RK\",\"jobs\":[\"standard\"]}")
check_match "runner.wait on the standard job only ends done at once" '"done":true,"timed_out":false' "$(reply_of "$out")"
check_eq "runner.wait on some jobs lists only those" "standard" "$(json_strs parameters_name "$(reply_of "$out")")"
out=$(pcall -t 10 runner.wait "{\"runner_id\":\"$RK\",\"jobs\":[\"report\"],\"timeout_s\":1.5}")
check_match "runner.wait on the report times out while it runs" '"done":false,"timed_out":true' "$(reply_of "$out")"
ctl runner.run "{\"runner_id\":\"$RK\",\"jobs\":[\"standard\"]}" >/dev/null
raw=$(rpc runner.wait "{\"runner_id\":\"$RK\",\"jobs\":[\"report\"]}")
check_match "runner.wait on a job the run does not have: not found" '"code":-32005,"message":"Runner [^"]* has no job .report.' "$raw"
sim_tick 30

# --- polls failing upstream do not end a wait -----------------------------------------------------------
RE=$(new_iris_runner flaky)
ctl runner.run "{\"runner_id\":\"$RE\"}"
# the polls fail until the test lifts the fault
sim_fault '{"route":"GET /api/jobs","status":503}'
"$AVATARCTL" --json --timeout "$(scaled 90)" call runner.wait "{\"runner_id\":\"$RE\"}" >"$TMP/flaky-wait" 2>&1 &
flaky=$!
has_error() {
        ctl runner.get_status "{\"runner_id\":\"$RE\"}"
        grep -q '"last_error":"[^"]' <<<"$OUT"
}
if wait_until 10 has_error; then
        pass "a failing poll is shown as the runner's last_error"
else
        fail "a failing poll is shown as the runner's last_error" "$OUT"
fi
check "the wait goes on while the polls fail" kill -0 "$flaky"
curl -sS --max-time "$(scaled 10)" -X DELETE "$SIM_URL/_sim/faults" >/dev/null
sim_control clock '{"job_step_ms":50}' >/dev/null
wait "$flaky"
check_eq "the wait goes on through failing polls and succeeds" "0" "$?"
check_match "the wait ends done" '"done":true' "$(cat "$TMP/flaky-wait")"
ctl runner.get_status "{\"runner_id\":\"$RE\"}"
check_match "a successful poll clears last_error" '"last_error":null' "$OUT"
sim_control clock '{"job_step_ms":0}' >/dev/null

# --- waiters that go away, a runner closed under a wait --------------------------------------------------
RG=$(new_iris_runner abandoned)
ctl runner.run "{\"runner_id\":\"$RG\"}"
SG=$(json_str set_name "$OUT")
# two callers leave once their wait and watch are in place
waits=$(status_num runner.wait)
watches=$(status_num manager.watch_jobs)
pcall_bg "$TMP/gone-wait.out" runner.wait "{\"runner_id\":\"$RG\"}"
gone_wait=$PCALL_PID
pcall_bg "$TMP/gone-watch.out" manager.watch_jobs "{\"set_name\":\"$SG\"}"
gone_watch=$PCALL_PID
wait_for_calls runner.wait $((${waits:-0} + 1))
wait_for_calls manager.watch_jobs $((${watches:-0} + 1))
kill -TERM "$gone_wait" "$gone_watch"
wait "$gone_wait" "$gone_watch" 2>/dev/null
"$AVATARCTL" --json --timeout "$(scaled 60)" call runner.wait "{\"runner_id\":\"$RG\"}" >"$TMP/closed-wait" 2>&1 &
closed_waiter=$!
wait_for_calls runner.wait $((${waits:-0} + 2))
ctl runner.close "{\"runner_id\":\"$RG\"}"
check_eq "close while a client waits on the runner succeeds" "0" "$CTL_RC"
wait "$closed_waiter"
check_eq "the wait on a closed runner ends not found (exit 6)" "6" "$?"
check_match "and says the runner was closed" 'was closed' "$(cat "$TMP/closed-wait")"
ctl daemon.ping
check_eq "the daemon is fine after waiters left and a runner closed under one" "0" "$CTL_RC"
stopped() { grep -q '"poller":{"sets":[01],' <<<"$("$AVATARCTL" --json status)"; }
check "no poll of a set nobody follows any more" wait_until 10 stopped

# --- ownership -----------------------------------------------------------------------------------------
if ! command -v setpriv >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
        pass "skipped ownership: setpriv and root are needed to call as another user"
        check_no_sanitizer_reports
        finish
        exit $?
fi
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
as_nobody() { setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups "$@"; }
nctl() {
        OUT=$(as_nobody "$AVATARCTL" --json --timeout "$(scaled 20)" call "$@" 2>&1)
        CTL_RC=$?
}
runner_conf 'socket_mode: "0666"
access:
  operate:
    users: [nobody]' >"$CONF"
ctl daemon.reload
check_eq "reload with operate for nobody" "0" "$CTL_RC"

# root's runner (RW, finished) is not nobody's
for m in runner.get_status runner.wait runner.list_results runner.export_yaml runner.close runner.delete; do
        nctl "$m" "{\"runner_id\":\"$RW\"}"
        check_eq "another uid: $m on root's runner is denied (exit 5)" "5" "$CTL_RC"
done
nctl runner.download "{\"runner_id\":\"$RW\",\"result\":\"shuffled\"}"
check_eq "another uid: download from root's runner is denied" "5" "$CTL_RC"
nctl runner.set_parameters "{\"runner_id\":\"$RW\",\"table_name\":\"iris\",\"k\":9}"
check_eq "another uid: set_parameters on root's runner is denied" "5" "$CTL_RC"
nctl runner.run "{\"runner_id\":\"$RW\"}"
check_eq "another uid: run of root's runner is denied" "5" "$CTL_RC"
nctl manager.watch_jobs "{\"runner_id\":\"$RW\"}"
check_eq "another uid: watch_jobs by root's runner id is denied" "5" "$CTL_RC"
raw=$(RPC_WRAP=as_nobody rpc runner.get_status "{\"runner_id\":\"$RW\"}")
check_match "the denial is permission_denied naming the owner" \
        "\"code\":-32004,\"message\":\"Runner $RW belongs to uid 0; only its owner or an admin may use it\"" "$raw"
check_match "the denial's data says which role would do" '"required_role":"admin"' "$raw"
ctl runner.get_status "{\"runner_id\":\"$RW\"}"
check_match "the owner still has its runner, unchanged" '"state":"finished"' "$OUT"
ctl runner.export_yaml "{\"runner_id\":\"$RW\"}"
check_match "nobody's set_parameters left no trace" 'k: 5' "$OUT"

# nobody's own runner
nctl manager.create_runner '{"set_name":"nobodys"}'
check_eq "another uid with operate creates its own runner" "0" "$CTL_RC"
check_match "that runner belongs to it" "\"owner\":$NOBODY_UID" "$OUT"
RN=$(runner_id_of "$OUT")
cp "$IRIS" "$TMP/nobody-iris.csv"
chmod 0644 "$TMP/nobody-iris.csv"
nctl runner.add_table "{\"runner_id\":\"$RN\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$TMP/nobody-iris.csv"
check_eq "it uploads a table it can read, by descriptor" "0" "$CTL_RC"
nctl runner.list
check_eq "runner.list as the other uid succeeds" "0" "$CTL_RC"
check_eq "runner.list shows only the caller's runners" "$RN" "$(json_strs runner_id "$OUT")"
ctl runner.list
check_no_match "runner.list as root does not show nobody's runner" "$RN" "$OUT"
check_match "runner.list as root shows root's runners" "$RW" "$OUT"
check_eq "runner.list as root shows only runners owned by root" '"owner":0' "$(grep -o '"owner":[0-9]*' <<<"$OUT" | sort -u)"
check_eq "runner.list as root shows each of root's runners" "$(find "$STATE/runners" -maxdepth 1 -name '*.json' -type f | wc -l)" \
        "$(($(json_strs runner_id "$OUT" | wc -l) + 1))"
ctl runner.list '{"all":true}'
check_match "runner.list all: true (admin) shows every runner" "$RN" "$OUT"
nctl runner.list '{"all":true}'
check_eq "runner.list all: true without admin is denied" "5" "$CTL_RC"
ctl runner.get_status "{\"runner_id\":\"$RN\"}"
check_eq "an admin may act on another user's runner" "0" "$CTL_RC"
nctl runner.close "{\"runner_id\":\"$RN\"}"
check_eq "the owner closes its runner" "0" "$CTL_RC"

check_no_sanitizer_reports
finish
