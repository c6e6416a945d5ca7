#!/usr/bin/env bash
# Black-box tests of waits whose jobs vanish upstream: the run's jobs deleted on the server,
# or the server restarted with nothing of them, end runner.wait (and avatarize, and
# manager.watch_jobs) promptly with jobs_lost naming them instead of waiting for the deadline;
# the runner records them as lost, a later wait says so at once, and runner.run runs them
# again. A set whose polls bring nothing new says so in the progress notifications.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

# the job clock stands still (0) unless a test moves it
start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
runner_conf >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

# delete_set_jobs SET: the server deletes every job of the set (as 'avatarctl runs delete'
# does), behind the daemon's back, between two of its polls: the next poll is held until all
# are gone, so one answer shows them all missing.
delete_set_jobs() {
        local name
        sim_hold "GET /api/jobs" 1
        wait_until 20 sim_held 1
        for name in $(json_strs name "$(sim_api GET "/jobs?set_name=$1")"); do
                sim_api DELETE "/jobs/$name" >/dev/null
        done
        sim_release >/dev/null
}

# start_wait FILE RUNNER: runner.wait (deadline an hour: the old behaviour) in the
# background, output in FILE; returns once the daemon runs it.
start_wait() {
        local calls
        calls=$(status_num runner.wait)
        pcall_bg "$1" -t "$(scaled 60)" runner.wait "{\"runner_id\":\"$2\",\"timeout_s\":3600}"
        wait_for_calls runner.wait $((${calls:-0} + 1))
}

# --- the server deletes the run's jobs while a runner.wait waits ------------------------------------
RL=$(new_iris_runner lost)
ctl runner.run "{\"runner_id\":\"$RL\"}"
check_eq "a run to lose" "0" "$CTL_RC"
SL=$(json_str set_name "$OUT")
STD=$(job_field "$OUT" standard name)
sim_tick 1
start_wait "$TMP/wait1.out" "$RL"
WAIT1=$PCALL_PID
delete_set_jobs "$SL"
wait "$WAIT1"
check_eq "runner.wait ends once the jobs are deleted upstream (not at its one-hour deadline)" "0" "$?"
reply=$(reply_of "$(cat "$TMP/wait1.out")")
check_match "the wait fails with jobs_lost (-32019)" '"code":-32019.*"name":"jobs_lost"' "$reply"
check_match "the error names the lost jobs by parameters name" '"lost":\[\{"job":"[a-z_]+","job_name":"' "$reply"
check_contains "the error names the standard job" "\"job\":\"standard\",\"job_name\":\"$STD\"" "$reply"
check_eq "every job of the run is named" "5" "$(grep -o '"job_name":' <<<"$reply" | wc -l)"
check_match "the message says how to run them again" "runner.run $RL runs them again" "$reply"
check_match "jobs_lost is not retryable" '"retryable":false' "$reply"

ctl runner.get_status "{\"runner_id\":\"$RL\"}"
check_match "the runner records the jobs as lost" "\"parameters_name\":\"standard\",[^{}]*\"status\":\"lost\"" "$OUT"
out=$(pcall -t "$(scaled 30)" runner.wait "{\"runner_id\":\"$RL\",\"timeout_s\":3600}")
check_match "a later runner.wait says jobs_lost at once" '"code":-32019' "$(reply_of "$out")"
"$AVATARCTL" --timeout "$(scaled 30)" call runner.wait "{\"runner_id\":\"$RL\"}" >"$TMP/ctl.out" 2>"$TMP/ctl.err"
rc=$?
check_eq "avatarctl exits 8 for jobs_lost" "8" "$rc"
check_contains "avatarctl names the class" "(jobs_lost)" "$(cat "$TMP/ctl.err")"
check_contains "avatarctl hints at running them again" "avatarctl runner run $RL" "$(cat "$TMP/ctl.err")"

# the run can be redone on the same runner
ctl runner.run "{\"runner_id\":\"$RL\"}"
check_eq "runner.run runs the lost jobs again" "0" "$CTL_RC"
SL2=$(json_str set_name "$OUT")
STD2=$(job_field "$OUT" standard name)
check_no_match "... in a new set" "\"set_name\":\"$SL\"" "$OUT"
sim_control clock '{"job_step_ms":20}' >/dev/null
wait_runner "$RL" 60
check_match "the new run's wait ends done" '"done":true,"timed_out":false' "$OUT"
sim_control clock '{"job_step_ms":0}' >/dev/null

# --- manager.watch_jobs on a set whose jobs are deleted ---------------------------------------------
RW=$(new_iris_runner watched)
ctl runner.run "{\"runner_id\":\"$RW\"}"
SW=$(json_str set_name "$OUT")
calls=$(status_num manager.watch_jobs)
pcall_bg "$TMP/watch.out" -t "$(scaled 60)" manager.watch_jobs "{\"set_name\":\"$SW\",\"timeout_s\":3600}"
WATCH=$PCALL_PID
wait_for_calls manager.watch_jobs $((${calls:-0} + 1))
# the watch has seen the five jobs (a snapshot, then a poll): it names what it saw
five_seen() { [ "$(grep -o '"parameters_name":' "$TMP/watch.out" | wc -l)" -ge 5 ]; }
wait_until 20 five_seen
# a job of another set named in a watch of this one: not in the set, and nothing of it shown
out=$(pcall -t "$(scaled 30)" manager.watch_jobs "{\"set_name\":\"$SW\",\"jobs\":[\"$STD2\"],\"timeout_s\":3600}")
reply=$(reply_of "$out")
check_match "watch_jobs naming another set's job ends with jobs_lost" '"code":-32019' "$reply"
check_contains "... saying it is not in this set" "not in this set" "$reply"
check_no_match "... without showing anything of the other set's job" "$SL2|finished|parameters_name" "$out"
delete_set_jobs "$SW"
wait "$WATCH"
check_eq "manager.watch_jobs ends once the jobs are deleted upstream" "0" "$?"
reply=$(reply_of "$(cat "$TMP/watch.out")")
check_match "watch_jobs fails with jobs_lost naming the set" "\"code\":-32019.*\"set_name\":\"$SW\"" "$reply"
check_eq "watch_jobs names the five jobs" "5" "$(grep -o '"job_name":' <<<"$reply" | wc -l)"

# --- stalled polls: nothing new for three polls is said in the notifications ------------------------
RT=$(new_iris_runner stalled)
ctl runner.run "{\"runner_id\":\"$RT\"}"
start_wait "$TMP/stall.out" "$RT"
STALL=$PCALL_PID
check "runner.wait says the set is stalled after three polls without news" \
        wait_for_output 30 "$TMP/stall.out" '"event":"stalled","stalled_polls":3' "$STALL"
check_match "... in a runner.progress notification" '"method":"runner.progress","params":\{"runner_id":"[^"]+","event":"stalled"' \
        "$(cat "$TMP/stall.out")"

# --- the server restarts without the run's jobs -----------------------------------------------------
# (the stalled wait above is still waiting on the same server)
port=$SIM_PORT
stop_sim
start_sim --api-key "$SIM_KEY" --job-step-ms 0 --port "$port" || { fail "avatar-sim restarts on its port"; finish; exit $?; }
wait "$STALL"
check_eq "runner.wait ends once the restarted server no longer knows the jobs" "0" "$?"
reply=$(reply_of "$(cat "$TMP/stall.out")")
check_match "the wait fails with jobs_lost after the restart" '"code":-32019' "$reply"
check_match "the restart's lost jobs are 404s" 'GET /jobs/\{name\}: 404' "$reply"

# --- avatarize whose run is lost while it waits -------------------------------------------------------
mkdir -p "$TMP/az"
cp "$IRIS" "$TMP/az/iris.csv"
calls=$(status_num runner.wait)
(cd "$TMP/az" && exec "$AVATARCTL" --timeout "$(scaled 60)" avatarize iris.csv --name lostaz >"$TMP/az.out" 2>"$TMP/az.err") &
AZ=$!
wait_for_calls runner.wait $((${calls:-0} + 1))
# the newest job upstream is avatarize's
SZ=$(json_str set_name "$(sim_api GET "/jobs?limit=1")")
delete_set_jobs "$SZ"
wait "$AZ"
rc=$?
check_eq "avatarize ends with exit 8 when its jobs are lost" "8" "$rc"
check_contains "avatarize says jobs_lost" "jobs_lost" "$(cat "$TMP/az.err")"

check_no_sanitizer_reports
finish
