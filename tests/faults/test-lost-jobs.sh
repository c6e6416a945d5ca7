#!/usr/bin/env bash
# Faults: the upstream loses a run's jobs while a client waits for them: every job deleted by
# another client or with avatarctl runs delete, one job deleted while the others finish, the
# simulator restarted (every job gone, 404); each twice. Every wait ends before its deadline with an error naming the lost jobs
# (jobs_lost), the runner records it, and the CLI's resume runs the lost jobs again.
. "$(dirname "$0")/faults-lib.sh"

# the deadline of each wait: a wait that runs into it failed
DEADLINE_S=$(scaled 15)
# the job clock stands still unless the test moves it
faults_start --job-step-ms 0 || { fail "avatar-sim and avatard start"; finish; exit $?; }

# new_run NAME: a runner of that name whose run was created (RUN_R, RUN_SET, RUN_NAMES).
new_run() {
        RUN_R=$(new_iris_runner "$1")
        ctl runner.run "{\"runner_id\":\"$RUN_R\"}"
        check_eq "$1: the run starts" "0" "$CTL_RC"
        RUN_SET=$(json_str set_name "$OUT")
        RUN_NAMES=$(job_names "$OUT")
        journal "{\"runner_id\":\"$RUN_R\",\"set_name\":\"$RUN_SET\",\"jobs\":$(json_array_of "$RUN_NAMES")}"
}

# wait_bg: runner.wait of RUN_R with the deadline, in the background (WAIT_PID, output in
# $TMP/wait.out), once the daemon runs it; WAIT_T0 its start.
wait_bg() {
        local calls
        calls=$(status_num runner.wait)
        WAIT_T0=$(test_now_ms)
        "$AVATARCTL" --json --timeout $((DEADLINE_S + $(scaled 30))) call runner.wait \
                "{\"runner_id\":\"$RUN_R\",\"timeout_s\":$DEADLINE_S}" >"$TMP/wait.out" 2>&1 &
        WAIT_PID=$!
        wait_for_calls runner.wait $((${calls:-0} + 1))
}

# wait_end LABEL LOST-NAMES KEPT-NAMES: the wait ended before its deadline with jobs_lost
# naming each lost job and no other.
wait_end() {
        local label="$1" lost="$2" kept="$3" rc=0 elapsed out n err=false
        wait "$WAIT_PID" || rc=$?
        elapsed=$(($(test_now_ms) - WAIT_T0))
        out=$(cat "$TMP/wait.out")
        [ "$rc" != 0 ] && err=true
        record_wait "$label" "$elapsed" $((DEADLINE_S * 1000)) "$err" "$(grep -q '"done":true' <<<"$out" && echo true || echo false)"
        check "$label: the wait ends before its deadline ($elapsed ms of $((DEADLINE_S * 1000)))" \
                test "$elapsed" -lt $((DEADLINE_S * 1000))
        check_match "$label: the wait ends with jobs_lost" 'jobs_lost' "$out"
        for n in $lost; do
                check_contains "$label: the error names the lost job ${n:0:8}" "$n" "$out"
        done
        # (the error's own names: a reply without it lists every job)
        grep -q jobs_lost <<<"$out" || kept=""
        for n in $kept; do
                check_no_match "$label: the error does not name the job ${n:0:8} still there" "$n" "$out"
        done
}

# the runner records the loss: it is no longer "running"
check_recorded() {
        local st
        st=$(runner_json "$RUN_R")
        check_no_match "$1: the runner records the loss (not running any more)" '"state":"running"' "$st"
}

# resume_again LABEL NAME: the CLI's one resume command runs what was lost again, to the end
resume_again() {
        # the jobs run again in a new set: what was journaled of the lost run is replaced
        reset_journals
        sim_control clock '{"job_step_ms":20}' >/dev/null
        run_ctl --timeout "$(scaled 120)" avatarize --resume "$2" "$IRIS" -o "$TMP/out-$2" \
                --wait-timeout "$DEADLINE_S"
        check_eq "$1: avatarize --resume runs the lost jobs again, to the end" "0" "$RC"
        [ "$RC" = 0 ] || printf '#   %s\n' "$(tail -n 5 <<<"$ERR")"
        sim_control clock '{"job_step_ms":0}' >/dev/null
}

# lost_all ROUND: every job deleted upstream while runner.wait follows them: by another client
# through the API in round 1, with avatarctl runs delete in round 2.
lost_all() {
        local L="jobs deleted upstream (round $1)" n
        new_run "lost-all-$1"
        sim_tick 2
        wait_bg
        if [ "$1" = 1 ]; then
                for n in $RUN_NAMES; do
                        sim_api DELETE "/jobs/$n" >/dev/null
                done
        else
                L="jobs deleted with avatarctl runs delete (round $1)"
                run_ctl --timeout "$(scaled 30)" runs delete --id "$RUN_SET" --yes
                check_eq "$L: runs delete succeeds" "0" "$RC"
        fi
        wait_end "$L" "$RUN_NAMES" ""
        check_recorded "$L"
        check_invariants "$L"
        resume_again "$L" "lost-all-$1"
        check_invariants "$L, resumed"
        "$AVATARCTL" runner rm "$RUN_R" --yes >/dev/null 2>&1
        clean_upstream
        reset_journals
}

# lost_one ROUND: one job deleted (report_pia), the others finish.
lost_one() {
        local L="one job deleted (round $1)" victim kept
        new_run "lost-one-$1"
        wait_bg
        victim=$(sim_api GET "/jobs?set_name=$RUN_SET&kind=report" |
                grep -o '"name":"[0-9a-f-]*","set_name":"[^"]*","parameters_name":"report_pia"' | cut -d'"' -f4)
        sim_api DELETE "/jobs/$victim" >/dev/null
        sim_tick 40
        kept=$(grep -v -x -F "$victim" <<<"$RUN_NAMES")
        wait_end "$L" "$victim" "$kept"
        check_recorded "$L"
        check_invariants "$L"
        "$AVATARCTL" runner rm "$RUN_R" --yes >/dev/null 2>&1
        clean_upstream
        reset_journals
}

# lost_restart ROUND: the simulator restarted (every job gone, 404) while avatarize waits.
lost_restart() {
        local L="simulator restarted (round $1)" port waits t0 av rc elapsed
        new_run "lost-restart-$1"
        port=$SIM_PORT
        waits=$(status_num runner.wait)
        t0=$(test_now_ms)
        "$AVATARCTL" --timeout $((DEADLINE_S + $(scaled 30))) avatarize --resume "lost-restart-$1" "$IRIS" \
                -o "$TMP/out-restart-$1" --wait-timeout "$DEADLINE_S" >"$TMP/av.out" 2>"$TMP/av.err" </dev/null &
        av=$!
        # avatarize is waiting once the daemon runs its runner.wait
        wait_for_calls runner.wait $((${waits:-0} + 1))
        stop_sim
        start_sim --api-key "$SIM_KEY" --job-step-ms 0 --port "$port" || { fail "$L: avatar-sim starts again"; return 1; }
        check_eq "$L: the simulator is back on its port" "$port" "$SIM_PORT"
        rc=0
        wait "$av" || rc=$?
        elapsed=$(($(test_now_ms) - t0))
        record_wait "$L: avatarize" "$elapsed" $((DEADLINE_S * 1000)) \
                "$([ "$rc" != 0 ] && [ "$rc" != 4 ] && echo true || echo false)" "$([ "$rc" = 0 ] && echo true || echo false)"
        check "$L: avatarize ends before its deadline ($elapsed ms of $((DEADLINE_S * 1000)))" \
                test "$elapsed" -lt $((DEADLINE_S * 1000))
        check_eq "$L: avatarize exits 8 (jobs lost)" "8" "$rc"
        check_match "$L: avatarize says the jobs were lost" '[Ll]ost' "$(cat "$TMP/av.err")"
        check_recorded "$L"
        resume_again "$L" "lost-restart-$1"
        check_invariants "$L, resumed"
        "$AVATARCTL" runner rm "$RUN_R" --yes >/dev/null 2>&1
        clean_upstream
        reset_journals
}

for round in 1 2; do
        lost_all "$round"
        lost_one "$round"
        lost_restart "$round"
done

check_no_sanitizer_reports
keep_logs
finish
