#!/usr/bin/env bash
# Black-box tests of runners across daemon restarts: a daemon stopped (SIGTERM) in the middle
# of a run and started again on the same state directory finds the runner and its jobs,
# follows them again without being asked, and runner.wait and downloads work; a finished
# runner keeps its results; a damaged runner file is kept aside and reported.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

# the job clock stands still unless the test moves it: the run is still going when the daemon
# stops, however long that takes
start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
runner_conf >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

R=$(new_iris_runner restarted)
ctl runner.run "{\"runner_id\":\"$R\"}"
check_eq "run succeeds" "0" "$CTL_RC"
S=$(json_str set_name "$OUT")
names_before=$(json_strs name "$OUT" | sort)
# two steps: every job created, the standard one pending
sim_tick 2
seen() {
        ctl runner.get_status "{\"runner_id\":\"$R\"}"
        grep -q '"status":"\(created\|pending\)"' <<<"$OUT"
}
check "the daemon has seen the jobs move" wait_until 10 seen
ctl runner.get_status "{\"runner_id\":\"$R\"}"
check_match "the run is in progress" '"state":"running"' "$OUT"
check_match "the report jobs are not done yet" '"parameters_name":"report","kind":"report","name":"[^"]*","status":"[a-z]*","progress":null,"done":false' "$OUT"

# a client waiting while the daemon stops (its wait in place)
waits=$(status_num runner.wait)
"$AVATARCTL" --json --timeout "$(scaled 60)" call runner.wait "{\"runner_id\":\"$R\"}" >"$TMP/wait-during-stop" 2>&1 &
waiter=$!
wait_for_calls runner.wait $((${waits:-0} + 1))
t0=$(date +%s%3N)
stop_daemon
rc=$?
t1=$(date +%s%3N)
check_eq "SIGTERM in the middle of a run: avatard exits 0" "0" "$rc"
# promptly: the wait is ended at once rather than drained, which would take until the drain
# deadline (limits.shutdown_timeout_s, 30 s) and be logged as requests still in flight
check "avatard stops promptly although a wait is in flight ($((t1 - t0)) ms, no drain deadline)" \
        test -z "$(grep 'still in flight' "$DAEMON_LOG")"
wait "$waiter"
wrc=$?
check "the waiting client is told: shutting down (exit 10) or connection lost (exit 3)" \
        test "$wrc" = 10 -o "$wrc" = 3
file="$STATE/runners/$R.json"
check "the runner is saved in the state directory" test -s "$file"
check_match "the saved runner holds the set" "\"set_name\":\"$S\"" "$(cat "$file")"
check_eq "the saved runner holds the five jobs" "$names_before" \
        "$(grep -o '"name":"[0-9a-f-]\{36\}"' "$file" | cut -d'"' -f4 | sort -u)"
check_no_match "the saved runner does not hold the API key" "$SIM_KEY" "$(cat "$file")"
check_eq "the saved runner is private to the daemon" "600" "$(stat -c %a "$file")"

# a damaged file beside it
printf '{"id": "not a runner"' >"$STATE/runners/11111111-2222-4333-8444-555555555555.json"

mark=$(wc -l <"$SIM_REQUESTS")
start_daemon || { fail "avatard starts again on the same state directory"; finish; exit $?; }
pass "avatard starts again on the same state directory"
check_match "the log says the runner was loaded" 'Loaded 1 runner' "$(cat "$DAEMON_LOG")"
polled() {
        tail -n +$((mark + 1)) "$SIM_REQUESTS" | grep -F '"route":"GET /api/jobs"' | grep -qF "\"query\":\"set_name=$S\""
}
check "after the restart the set is polled again without any call" wait_until 10 polled
ctl runner.list
check_match "runner.list shows the runner after the restart" "\"runner_id\":\"$R\",\"display_name\":\"restarted\"" "$OUT"
ctl runner.get_status "{\"runner_id\":\"$R\"}"
check_eq "get_status after the restart succeeds" "0" "$CTL_RC"
check_match "get_status: the same set, still running" "\"state\":\"running\",\"set_name\":\"$S\"" "$OUT"
check_eq "get_status: the same five jobs" "$names_before" "$(grep -o '"name":"[0-9a-f-]\{36\}"' <<<"$OUT" | cut -d'"' -f4 | sort -u)"
check_match "get_status: the table is still known" '"tables":\["iris"\]' "$OUT"
st=$("$AVATARCTL" --json status)
check_match "daemon.status reports the damaged runner file" 'damaged_files":\["11111111-2222-4333-8444-555555555555.json' "$st"
kept=$(find "$STATE/runners" -name '11111111-2222-4333-8444-555555555555*' -type f | head -n 1)
check "the damaged file is kept aside, not deleted ($(basename "$kept"))" test -n "$kept"

sim_control clock '{"job_step_ms":100}' >/dev/null
wait_runner "$R" 90
check_eq "runner.wait after the restart succeeds" "0" "$CTL_RC"
check_match "runner.wait after the restart ends done" '"done":true,"timed_out":false' "$OUT"
check_eq "all five jobs finished" "5" "$(grep -o '"status":"finished"' <<<"$OUT" | wc -l)"
ctl runner.download "{\"runner_id\":\"$R\",\"result\":\"shuffled\",\"fd\":{\"fd\":0}}" --out "$TMP/shuffled.csv"
check_eq "download after the restart succeeds" "0" "$CTL_RC"
check "the download is byte-exact" cmp "$TMP/shuffled.csv" \
        "$(stored_object "$S" "$(json_str name "$(sim_api GET "/jobs?set_name=$S&kind=standard")")" iris.shuffled-0.csv)"
ctl runner.download "{\"runner_id\":\"$R\",\"result\":\"report\",\"fd\":{\"fd\":0}}" --out "$TMP/report.pdf"
check_eq "the report after the restart is a PDF" "%PDF-" "$(head -c 5 "$TMP/report.pdf")"

# a finished runner survives a restart with its results
stop_daemon
check_eq "second stop: exit 0" "0" "$?"
results_before=$(sim_count "GET /api/results/{job}")
start_daemon || { fail "avatard starts a third time"; finish; exit $?; }
ctl runner.get_status "{\"runner_id\":\"$R\"}"
check_match "after another restart the runner is finished" '"state":"finished"' "$OUT"
ctl runner.download "{\"runner_id\":\"$R\",\"result\":\"shuffled\",\"fd\":{\"fd\":0}}" --out "$TMP/shuffled-again.csv"
check "after another restart the results download" cmp "$TMP/shuffled.csv" "$TMP/shuffled-again.csv"
check_eq "the results listing was kept: no GET /results after the restart" "$results_before" \
        "$(sim_count "GET /api/results/{job}")"
check_match "a finished runner is not followed after a restart" '"poller":\{"sets":0,' "$("$AVATARCTL" --json status)"
t=$(wc -l <"$SIM_REQUESTS")
# nothing more may happen now: two poll intervals without a poll of the set
quiet_period 2
check_eq "a finished runner is not polled after a restart" "0" \
        "$(tail -n +$((t + 1)) "$SIM_REQUESTS" | grep -cF "\"query\":\"set_name=$S\"")"

# a runner closed before a restart stays forgotten
ctl runner.close "{\"runner_id\":\"$R\"}"
check_eq "close succeeds" "0" "$CTL_RC"
check "close removes the runner's file" test ! -e "$file"
stop_daemon
start_daemon || { fail "avatard starts a fourth time"; finish; exit $?; }
ctl runner.get_status "{\"runner_id\":\"$R\"}"
check_eq "a closed runner does not come back after a restart" "6" "$CTL_RC"

# --- the per-uid runner cap ----------------------------------------------------------------------------
{
        runner_conf
        printf '  max_runners_per_uid: 2\n'
} >"$CONF" # runner_conf ends with its runners: section
ctl daemon.reload
check_eq "reload with max_runners_per_uid 2" "0" "$CTL_RC"
ctl manager.create_runner '{"set_name":"cap1"}'
C1=$(runner_id_of "$OUT")
ctl manager.create_runner '{"set_name":"cap2"}'
check_eq "two runners under the cap" "0" "$CTL_RC"
ctl manager.create_runner '{"set_name":"cap3"}'
check_eq "a third runner: overloaded (exit 10)" "10" "$CTL_RC"
check_match "the refusal names the setting" 'runners.max_runners_per_uid' "$OUT"
ctl manager.create_runner_from_id "{\"set_name\":\"$S\"}"
check_eq "create_runner_from_id counts too" "10" "$CTL_RC"
ctl manager.create_runner_from_yaml '{"set_name":"cap","yaml":"kind: AvatarMetadata\nmetadata:\n  name: avatar-metadata-cap\nspec:\n  display_name: cap\n"}'
check_eq "create_runner_from_yaml counts too" "10" "$CTL_RC"
ctl runner.close "{\"runner_id\":\"$C1\"}"
ctl manager.create_runner '{"set_name":"cap3"}'
check_eq "after a close there is room again" "0" "$CTL_RC"

check_no_sanitizer_reports
finish
