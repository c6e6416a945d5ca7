#!/usr/bin/env bash
# Faults: the daemon killed (SIGKILL) or stopped (SIGTERM) inside runner.run while it creates
# the jobs of a run. The kill point is an event of the simulator: job creation N (POST /jobs)
# held unanswered. After a restart on the same state directory the runner knows every job it
# created (no job upstream that no runner lists), and the CLI's one resume command
# (avatarctl avatarize --resume) finishes the run without a duplicate job.
. "$(dirname "$0")/faults-lib.sh"

# SIGTERM's drain: a run held upstream keeps the daemon this long at most
SHUTDOWN_S=$(scaled 3)
start_sim --api-key "$SIM_KEY" --job-step-ms 20 || { fail "avatar-sim starts"; finish; exit $?; }
faults_conf "$SHUTDOWN_S" >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }

# one_kill SIGNAL JOB-N [release|answer]: a runner's run interrupted at job creation JOB-N;
# with "release", the held creation goes on once the daemon began to stop (a run that can
# finish within the drain); with "answer", job JOB-N is created upstream and only its answer
# held (the daemon never learns its name).
one_kill() {
        local sig="$1" n="$2" release="" answer="" label name R rule pid rc terms names set
        [ "${3:-}" = release ] && release=1
        [ "${3:-}" = answer ] && answer=answer
        label="$sig at job $n${release:+ (released during the drain)}${answer:+ (created, its answer held)}"
        name="run-${sig,,}-$n${release:+-r}${answer:+-a}"
        R=$(new_iris_runner "$name")
        journal "{\"runner_id\":\"$R\",\"table\":\"iris\"}"
        journal "{\"runner_id\":\"$R\",\"table\":\"iris\",\"k\":5}"
        rule=$(hold_at "POST /api/jobs" "$n" $answer)
        "$AVATARCTL" --json --timeout "$(scaled 60)" call runner.run "{\"runner_id\":\"$R\"}" \
                >"$TMP/run.out" 2>&1 &
        pid=$!
        if ! wait_until 20 rule_held "$rule" "$pid"; then
                fail "$label: job creation $n is held" "$(cat "$TMP/run.out")"
                kill "$pid" 2>/dev/null
        else
                pass "$label: job creation $n is held"
        fi
        terms=$(sigterms_logged)
        if [ -n "$release" ]; then
                kill "-$sig" "$DAEMON_PID"
                wait_until 10 sigterm_seen $((terms + 1)) "$DAEMON_PID"
                sim_release >/dev/null
                reap_daemon
        else
                kill_daemon "$sig"
        fi
        rc=0
        wait "$pid" || rc=$?
        sim_unhold
        if [ "$sig" = TERM ]; then
                check_eq "$label: avatard exits 0" "0" "$KILL_RC"
        fi
        if [ -n "$release" ]; then
                # the run could finish within the drain: its caller is told so, and it is saved
                check_eq "$label: runner.run finished within the drain and answered success" "0" "$rc"
                if [ "$rc" = 0 ]; then
                        set=$(json_str set_name "$(cat "$TMP/run.out")")
                        names=$(job_names "$(cat "$TMP/run.out")")
                        journal "{\"runner_id\":\"$R\",\"set_name\":\"$set\",\"jobs\":$(json_array_of "$names")}"
                fi
        fi
        start_daemon || { fail "$label: avatard starts again"; return 1; }
        # what the runner knows after the restart (and the reconciliation it does on restart)
        settle_invariants "$label, after the restart"
        resume_avatarize "$name" "$IRIS" "$TMP/out-$name"
        check_eq "$label: avatarize --resume finishes the run" "0" "$RC"
        [ "$RC" = 0 ] || printf '#   %s\n' "$(tail -n 5 <<<"$ERR")"
        check_eq "$label: the runner ends with one job of each of the five kinds" "5" \
                "$(job_names "$(runner_json "$R")" | wc -l)"
        check_results_exact "$label" "$R" "$TMP/out-$name"
        check_invariants "$label, after the resume"
        "$AVATARCTL" runner rm "$R" --yes >/dev/null 2>&1
        clean_upstream
        reset_journals
}

for n in 1 2 3 4 5; do
        one_kill KILL "$n"
done
one_kill KILL 1 answer
one_kill KILL 3 answer
one_kill KILL 5 answer
one_kill TERM 2
one_kill TERM 4
one_kill TERM 4 answer
one_kill TERM 3 release

check_no_sanitizer_reports
keep_logs
finish
