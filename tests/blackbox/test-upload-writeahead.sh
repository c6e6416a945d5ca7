#!/usr/bin/env bash
# Black-box tests of the write-ahead of multipart uploads (issue 15, no upload left behind): a
# daemon killed (SIGKILL) while runner.add_table sends a table as a multipart upload — at
# CreateMultipartUpload with its answer held (the upload exists, the daemon never heard its
# id), at a part, at CompleteMultipartUpload — has recorded the upload in the runner's file
# (its object before Create, its id before the first part); once it is started again the
# simulator holds no upload in progress (GET /_sim/uploads), the record is gone, and the table
# can be added again and the run finished. A record whose abort fails at start (GET /access
# refused) stays, and the next add_table of the table aborts it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

R_CREATE="POST /storage/{bucket}/{key}?uploads"
R_PART="PUT /storage/{bucket}/{key}?partNumber&uploadId"
R_COMPLETE="POST /storage/{bucket}/{key}?uploadId"

start_sim --api-key "$SIM_KEY" --job-step-ms 20 || { fail "avatar-sim starts"; finish; exit $?; }
# multipart above 5 MiB, in parts of 5 MiB (the S3 minimum): the table goes up in 3 parts
runner_conf "  multipart_threshold_bytes: 5242880
  multipart_part_bytes: 5242880" >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

BIG="$TMP/big.csv"
make_csv "$BIG" 400000

# sim_uploads: how many multipart uploads the simulator holds in progress.
sim_uploads() {
        sim_control uploads | grep -o '"id":' | grep -c . || true
}

# no_sim_uploads: whether the simulator holds none (for wait_until); never once the daemon died.
no_sim_uploads() {
        kill -0 "$DAEMON_PID" 2>/dev/null || return "$WAIT_NEVER"
        [ "$(sim_uploads)" = 0 ]
}

# state_uploads R: the upload records of R's state file, on one line ("" when none).
state_uploads() {
        tr -d ' \n' <"$STATE/runners/$1.json" | grep -o '"uploads":\[[^]]*\]' || true
}

# no_state_uploads R: whether R's state file records no upload (for wait_until).
no_state_uploads() {
        [ -z "$(state_uploads "$1")" ]
}

# new_runner NAME: a runner without tables; prints its id.
new_runner() {
        runner_id_of "$("$AVATARCTL" --json call manager.create_runner "{\"set_name\":\"$1\"}")"
}

# kill_daemon: SIGKILL, and wait for it to be gone.
kill_daemon() {
        kill -KILL "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
        DAEMON_PID=""
}

# add_big R: runner.add_table of the big table by descriptor; the reply in $OUT.
add_big() {
        OUT=$(pcall -t 120 -f "$BIG" runner.add_table \
                "{\"runner_id\":\"$1\",\"table_name\":\"big\",\"data\":{\"fd\":0},\"file_name\":\"big.csv\"}")
}

# finish_run R LABEL: k set, runner.run, runner.wait: the run ends finished.
finish_run() {
        ctl runner.set_parameters "{\"runner_id\":\"$1\",\"table_name\":\"big\",\"k\":5}"
        check_eq "$2: set_parameters succeeds" 0 "$CTL_RC"
        ctl runner.run "{\"runner_id\":\"$1\"}"
        check_eq "$2: runner.run succeeds" 0 "$CTL_RC"
        wait_runner "$1" 120
        check_eq "$2: runner.wait succeeds" 0 "$CTL_RC"
        ctl runner.get_status "{\"runner_id\":\"$1\"}"
        check_match "$2: the run is finished" '"state":"finished"' "$OUT"
}

# --- SIGKILL at Create (answer held), at part 2, at Complete ------------------------------------
for point in create part complete; do
        case $point in
        create) rule="{\"route\":\"$R_CREATE\",\"hold_answer\":true,\"count\":1}" ;;
        part) rule="{\"route\":\"$R_PART\",\"hold\":true,\"after\":1,\"count\":1}" ;;
        complete) rule="{\"route\":\"$R_COMPLETE\",\"hold\":true,\"count\":1}" ;;
        esac
        L="SIGKILL at $point"
        R=$(new_runner "upload-$point")
        sim_fault "$rule" >/dev/null
        pcall_bg "$TMP/add.out" -t 120 -f "$BIG" runner.add_table \
                "{\"runner_id\":\"$R\",\"table_name\":\"big\",\"data\":{\"fd\":0},\"file_name\":\"big.csv\"}"
        check "$L: the request is held" wait_until 30 sim_held 1
        check_eq "$L: the simulator holds the upload in progress" 1 "$(sim_uploads)"
        rec=$(state_uploads "$R")
        check_match "$L: the runner's file records the upload's table and object" \
                "\"table\":\"big\",\"url\":\"s3://[^\"]*/$R/[0-9a-f]{32}/big.csv\"" "$rec"
        if [ "$point" = create ]; then
                check_match "$L: the id is not known yet" '"upload_id":null' "$rec"
        else
                check_match "$L: the runner's file records the upload id (before the parts)" \
                        '"upload_id":"[^"]+"' "$rec"
        fi
        kill_daemon
        wait "$PCALL_PID" 2>/dev/null
        sim_unhold
        check_eq "$L: the upload is still in progress with the daemon gone" 1 "$(sim_uploads)"
        start_daemon || { fail "$L: avatard starts again"; finish; exit $?; }
        check "$L: once the daemon started, the simulator holds no upload in progress" \
                wait_until 30 no_sim_uploads
        check "$L: the record is gone from the runner's file" wait_until 30 no_state_uploads "$R"
        check_match "$L: the daemon logged the abort" "the multipart upload of table 'big'.*is gone" \
                "$(grep -a "Runner $R" "$DAEMON_LOG")"
        add_big "$R"
        check_match "$L: the table can be added again" '"result":\{"runner_id"' "$(reply_of "$OUT")"
        check_eq "$L: the new upload completed (none in progress)" 0 "$(sim_uploads)"
        check "$L: no record is left after the upload completed" no_state_uploads "$R"
        finish_run "$R" "$L"
done

# --- the abort at start fails: the record stays, the next add_table of the table aborts it -----
L="abort refused at start"
R=$(new_runner "upload-refused")
sim_fault "{\"route\":\"$R_PART\",\"hold\":true,\"count\":1}" >/dev/null
pcall_bg "$TMP/add.out" -t 120 -f "$BIG" runner.add_table \
        "{\"runner_id\":\"$R\",\"table_name\":\"big\",\"data\":{\"fd\":0},\"file_name\":\"big.csv\"}"
check "$L: a part is held" wait_until 30 sim_held 1
kill_daemon
wait "$PCALL_PID" 2>/dev/null
sim_unhold
# every GET /access fails while the daemon starts
sim_fault '{"route":"GET /api/access","status":403}' >/dev/null
start_daemon || { fail "$L: avatard starts again"; finish; exit $?; }
check "$L: the daemon says the abort failed" \
        wait_for_line 30 "$DAEMON_LOG" "Runner $R: the multipart upload of table 'big'.*could not be aborted"
check_eq "$L: the upload is still in progress" 1 "$(sim_uploads)"
check_match "$L: the record stays in the runner's file" '"upload_id":"[^"]+"' "$(state_uploads "$R")"
sim_unhold
add_big "$R"
check_match "$L: add_table of the table succeeds" '"result":\{"runner_id"' "$(reply_of "$OUT")"
check "$L: the upload left before is aborted" wait_until 30 no_sim_uploads
check "$L: no record is left" wait_until 30 no_state_uploads "$R"

check_no_sanitizer_reports
finish
