#!/usr/bin/env bash
# Faults: SIGTERM while a table goes up as a multipart upload, one part held at the simulator.
# Released during the drain, the upload finishes within limits.shutdown_timeout_s: the caller
# gets success, the table is saved, the upload is completed. Never released, the upload is
# cancelled when the budget ends and its multipart upload aborted before the daemon exits:
# nothing is left upstream, and the table goes up when asked again.
. "$(dirname "$0")/faults-lib.sh"

start_sim --api-key "$SIM_KEY" --job-step-ms 20 || { fail "avatar-sim starts"; finish; exit $?; }
export AVATAR_API_KEY="$SIM_KEY"
# two parts of the 5 MiB the configuration asks for
BIG="$TMP/big.csv"
make_csv "$BIG" 200000

# restart_with SHUTDOWN-S: the daemon (again) with that drain budget.
restart_with() {
        faults_conf "$1" >"$CONF"
        start_daemon
}

# upload_bg LABEL RUNNER PART: add_table of the big table in the background (UP_PID, output in
# $TMP/up.out) until the simulator holds part PART of its multipart upload.
upload_bg() {
        local rule
        rule=$(hold_at "$R_MP_PART" "$3")
        "$AVATARCTL" --json --timeout "$(scaled 60)" call runner.add_table \
                "{\"runner_id\":\"$2\",\"table_name\":\"big\",\"data\":{\"fd\":0}}" --file "$BIG" \
                >"$TMP/up.out" 2>&1 &
        UP_PID=$!
        check "$1: part $3 of the upload is held" wait_until 30 rule_held "$rule" "$UP_PID"
}

# uploads_left: the multipart uploads in progress at the simulator.
uploads_left() {
        sim_control uploads | grep -o '"id":"[0-9a-f]*"' | wc -l
}

# --- released during the drain: the upload finishes within the budget --------------------------
for part in 1 2; do
        L="SIGTERM with part $part held, then released"
        restart_with "$(scaled 20)" || { fail "$L: avatard starts"; break; }
        ctl manager.create_runner "{\"set_name\":\"up-$part\"}"
        R=$(runner_id_of "$OUT")
        completes=$(sim_count "$R_MP_COMPLETE")
        upload_bg "$L" "$R" "$part"
        terms=$(sigterms_logged)
        kill -TERM "$DAEMON_PID"
        wait_until 10 sigterm_seen $((terms + 1)) "$DAEMON_PID"
        sim_release >/dev/null
        reap_daemon
        rc=0
        wait "$UP_PID" || rc=$?
        sim_unhold
        check_eq "$L: avatard exits 0" "0" "$KILL_RC"
        check_eq "$L: add_table finishes within the drain and answers success" "0" "$rc"
        [ "$rc" = 0 ] && journal "{\"runner_id\":\"$R\",\"table\":\"big\"}"
        check_eq "$L: the multipart upload was completed" "$((completes + 1))" "$(sim_count "$R_MP_COMPLETE")"
        check_eq "$L: no multipart upload is left upstream" "0" "$(uploads_left)"
        restart_with "$(scaled 20)" || { fail "$L: avatard starts again"; break; }
        check_invariants "$L, after a restart"
        "$AVATARCTL" runner rm "$R" --yes >/dev/null 2>&1
        stop_daemon >/dev/null
        reset_journals
done

# --- never released: cancelled at the end of the budget, its upload aborted -------------------
for part in 2 1; do
        L="SIGTERM with part $part held to the end"
        budget=$(scaled 4)
        restart_with "$budget" || { fail "$L: avatard starts"; break; }
        ctl manager.create_runner "{\"set_name\":\"up-held-$part\"}"
        R=$(runner_id_of "$OUT")
        upload_bg "$L" "$R" "$part"
        kill_daemon TERM
        rc=0
        wait "$UP_PID" || rc=$?
        check_eq "$L: avatard exits 0" "0" "$KILL_RC"
        check "$L: avatard exits within its budget and the abort's ($KILL_MS ms, budget $((budget * 1000)) ms)" \
                test "$KILL_MS" -lt $((budget * 1000 + $(scaled 5) * 1000))
        check "$L: add_table fails (the upload was cut)" test "$rc" != 0
        check_eq "$L: the multipart upload was aborted before the daemon exited" "0" "$(uploads_left)"
        sim_unhold
        restart_with "$(scaled 20)" || { fail "$L: avatard starts again"; break; }
        ctl runner.add_table "{\"runner_id\":\"$R\",\"table_name\":\"big\",\"data\":{\"fd\":0}}" --file "$BIG"
        check_eq "$L: add_table asked again succeeds" "0" "$CTL_RC"
        [ "$CTL_RC" = 0 ] && journal "{\"runner_id\":\"$R\",\"table\":\"big\"}"
        kill_daemon KILL
        start_daemon || { fail "$L: avatard starts after SIGKILL"; break; }
        check_invariants "$L, after the upload asked again"
        "$AVATARCTL" runner rm "$R" --yes >/dev/null 2>&1
        stop_daemon >/dev/null
        reset_journals
done

check_no_sanitizer_reports
keep_logs
finish
