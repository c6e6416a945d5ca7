#!/usr/bin/env bash
# Faults: the state directory on a tiny tmpfs (2 MiB), filled up while a runner is configured,
# run, waited for and downloaded. Every call either returns success and is saved (a restart after SIGKILL finds it), or
# fails with a retryable error; the run leaves no job upstream that no runner knows; once space
# is free again the failed calls succeed when repeated and the run finishes. Needs root (mount);
# skipped (77) otherwise.
. "$(dirname "$0")/faults-lib.sh"

if [ "$(id -u)" != 0 ]; then
        echo "SKIPPED: mounting a tmpfs for the state directory needs root"
        exit 77
fi
if ! mount -t tmpfs -o size=2m,mode=0700 tmpfs "$STATE" 2>"$TMP/mount.err"; then
        echo "SKIPPED: cannot mount a tmpfs: $(cat "$TMP/mount.err")"
        exit 77
fi
trap 'umount -l "$STATE" 2>/dev/null; on_exit' EXIT
# (a test stopped by its timeout leaves no mount behind either)
trap 'exit 143' TERM INT

faults_start || { fail "avatar-sim and avatard start"; finish; exit $?; }

# fill: the state directory's file system has no byte left.
fill() {
        dd if=/dev/zero of="$STATE/fill" bs=4096 >/dev/null 2>&1
        # the last page too: a few bytes at a time until nothing more fits
        head -c 65536 /dev/zero >>"$STATE/fill" 2>/dev/null
        check_eq "the state directory is full" "0" "$(df --output=avail -B1 "$STATE" | tail -n 1 | tr -d ' ')"
}

# unfill: space again.
unfill() {
        rm -f "$STATE/fill"
}

# call_logged LABEL JOURNAL-JSON METHOD PARAMS [-f FILE]: one raw call; a success is
# journaled, a failure must be retryable. CALL_OK is 1 after a success.
CALL_OK=0
call_logged() {
        local label="$1" entry="$2" method="$3" params="$4" reply
        shift 4
        reply=$(reply_of "$(pcall "$@" "$method" "$params")")
        LAST_REPLY=$reply
        if grep -q '"result":' <<<"$reply"; then
                CALL_OK=1
                [ -n "$entry" ] && journal "$entry"
                pass "$label: $method succeeded (then it must be saved)"
        else
                CALL_OK=0
                check_match "$label: $method refused with a retryable error" '"retryable":true' "$reply"
        fi
}

# restart_after_kill LABEL: SIGKILL (nothing saved later), space freed, a restart, the
# invariants (a success not saved before its reply is lost now).
restart_after_kill() {
        kill_daemon KILL
        unfill
        start_daemon || { fail "$1: avatard starts again"; return 1; }
        check_invariants "$1, after SIGKILL and a restart"
        check_eq "$1: no stale temporary file in the runner directory" "" \
                "$(find "$STATE/runners" -name '.*' -type f 2>/dev/null)"
}

# finish_run LABEL NAME: the runner runs to its end once there is space (avatarize --resume).
finish_run() {
        resume_avatarize "$2" "$IRIS" "$TMP/out-$2"
        check_eq "$1: avatarize --resume finishes the run once there is space" "0" "$RC"
        [ "$RC" = 0 ] || printf '#   %s\n' "$(tail -n 5 <<<"$ERR")"
        check_invariants "$1, finished"
        "$AVATARCTL" runner rm "$(runner_by_name "$2")" --yes >/dev/null 2>&1
        clean_upstream
        reset_journals
}

# --- full before add_table, then full before set_parameters -----------------------------------
L="full before add_table"
ctl manager.create_runner '{"set_name":"full-a"}'
R=$(runner_id_of "$OUT")
check "$L: the runner is created with space" test -n "$R"
fill
call_logged "$L" "{\"runner_id\":\"$R\",\"table\":\"iris\"}" runner.add_table \
        "{\"runner_id\":\"$R\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" -f "$IRIS"
if [ "$CALL_OK" = 1 ]; then
        check_contains "$L: daemon.status names the runner it could not save" "$R" "$("$AVATARCTL" --json status 2>&1)"
fi
restart_after_kill "$L"
# repeated with space, a refused call succeeds
ctl runner.get_status "{\"runner_id\":\"$R\"}"
if ! grep -q '"tables":\["iris"\]' <<<"$OUT"; then
        ctl runner.add_table "{\"runner_id\":\"$R\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$IRIS"
        check_eq "$L: add_table repeated with space succeeds" "0" "$CTL_RC"
        [ "$CTL_RC" = 0 ] && journal "{\"runner_id\":\"$R\",\"table\":\"iris\"}"
fi

L="full before set_parameters"
fill
call_logged "$L" "{\"runner_id\":\"$R\",\"table\":\"iris\",\"k\":7}" runner.set_parameters \
        "{\"runner_id\":\"$R\",\"table_name\":\"iris\",\"k\":7}"
if [ "$CALL_OK" = 1 ]; then
        check_contains "$L: daemon.status names the runner it could not save" "$R" "$("$AVATARCTL" --json status 2>&1)"
fi
restart_after_kill "$L"
finish_run "$L" full-a

# --- full before the run: the run is saved or refused, never orphaned ---------------------------
L="full before run"
R=$(new_iris_runner full-b)
journal "{\"runner_id\":\"$R\",\"table\":\"iris\"}"
journal "{\"runner_id\":\"$R\",\"table\":\"iris\",\"k\":5}"
fill
call_logged "$L" "" runner.run "{\"runner_id\":\"$R\"}"
if [ "$CALL_OK" = 1 ]; then
        journal "{\"runner_id\":\"$R\",\"set_name\":\"$(json_str set_name "$LAST_REPLY")\",\"jobs\":$(json_array_of "$(job_names "$LAST_REPLY")")}"
fi
restart_after_kill "$L"
finish_run "$L" full-b

# --- full in the middle of the run (job creation 3 held while the disk fills) ----------------
L="full at job 3"
R=$(new_iris_runner full-c)
journal "{\"runner_id\":\"$R\",\"table\":\"iris\"}"
rule=$(hold_at "POST /api/jobs" 3)
pcall_bg "$TMP/run-c.out" runner.run "{\"runner_id\":\"$R\"}"
check "$L: job creation 3 is held" wait_until 20 rule_held "$rule" "$PCALL_PID"
fill
sim_unhold
rc=0
wait "$PCALL_PID" || rc=$?
reply=$(reply_of "$(cat "$TMP/run-c.out")")
if grep -q '"result":' <<<"$reply"; then
        pass "$L: runner.run succeeded (then it must be saved)"
        journal "{\"runner_id\":\"$R\",\"set_name\":\"$(json_str set_name "$reply")\",\"jobs\":$(json_array_of "$(job_names "$reply")")}"
else
        check_match "$L: runner.run refused with a retryable error" '"retryable":true' "$reply"
fi
restart_after_kill "$L"
finish_run "$L" full-c

# --- full while the run is waited for and downloaded ----------------------------------------
L="full during wait and download"
R=$(new_iris_runner full-d)
journal "{\"runner_id\":\"$R\",\"table\":\"iris\"}"
ctl runner.run "{\"runner_id\":\"$R\"}"
check_eq "$L: the run starts with space" "0" "$CTL_RC"
journal "{\"runner_id\":\"$R\",\"set_name\":\"$(json_str set_name "$OUT")\",\"jobs\":$(json_array_of "$(job_names "$OUT")")}"
fill
call_logged "$L" "" runner.wait "{\"runner_id\":\"$R\",\"timeout_s\":$(scaled 60)}"
call_logged "$L" "" runner.download "{\"runner_id\":\"$R\",\"result\":\"shuffled\",\"fd\":{\"fd\":0}}" \
        -o "$TMP/full-d.csv"
restart_after_kill "$L"
finish_run "$L" full-d

stop_daemon >/dev/null 2>&1
umount "$STATE" 2>/dev/null || umount -l "$STATE"
check_no_sanitizer_reports
keep_logs
finish
