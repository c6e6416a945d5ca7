#!/usr/bin/env bash
# avatarize from start to finish, as a data engineer runs it (issue 16, problems 2, 8 and 9):
# --no-wait then --resume, whose hints name no file the server has not named; --resume after
# a failed job and after a daemon restart; a failure, an interruption or the daemon going
# away keep the runner and say so (its id, the command that goes on, the one that removes
# it); --rm removes it; progress on a stderr that is not a terminal is a plain line per
# change; a bad CSV is refused before anything is sent, naming its line; runner download
# -o DIR gets every result.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"
. "$(dirname "$0")/cli-fixtures.sh"

# The job clock moves on /_sim/tick only: a run waits until the test moves it.
cli_start --job-step-ms 0 || { fail "avatard and avatar-sim start"; finish; exit $?; }
export NO_COLOR=1 TZ=UTC
cd "$TMP" || exit 1
cp "$IRIS" iris.csv

# finish_jobs: once a runner.wait more than before is in place, the jobs move to the end.
finish_jobs() {
        local calls
        calls=$(status_num runner.wait)
        wait_for_calls runner.wait $((${calls:-0} + 1))
        sim_tick 40
}

# --- 2. --no-wait, then --resume; hints that name exactly what will be written ------------------------
run_ctl avatarize iris.csv --name later --no-wait
check_eq "avatarize --no-wait succeeds" "0" "$RC"
R=$(json_str runner_id "$("$AVATARCTL" --json runner status later)")
check "the runner is there, by its display name" is_uuid "$R"
check_match "--no-wait prints the command that goes on with it" "avatarctl avatarize --resume $R -o later-avatars" "$OUT"
check_match "... and the download of every result, step by step" "avatarctl runner download $R -o later-avatars" "$OUT"
check_no_match "--no-wait names no file before the server does" "\\.csv|\\.json|\\.pdf|\\.docx" "$(grep '^  ' <<<"$OUT")"
check "--no-wait creates no directory" test ! -e later-avatars
"$AVATARCTL" avatarize --resume "$R" -o later-avatars >"$TMP/resume.out" 2>"$TMP/resume.err" &
pid=$!
finish_jobs
wait "$pid"; rc=$?
check_eq "avatarize --resume (the command --no-wait printed) succeeds" "0" "$rc"
listed=$(sed -n 's/^  \(later-avatars\/[^ ]*\) .*/\1/p' "$TMP/resume.out")
check_eq "--resume lists the five files it wrote" "5" "$(count_lines "$listed")"
missing=""
for f in $listed; do
        [ -s "$f" ] || missing="$missing $f"
done
check_eq "every file listed exists, under the server's name" "" "$missing"
check "... the shuffled table among them" test -s later-avatars/iris.shuffled-0.csv
run_ctl avatarize --resume later -o later-avatars
check_eq "--resume of a finished runner, by name, again: nothing left, files kept" "0" "$RC"
check_match "... the files already there are kept" "later-avatars/iris.shuffled-0.csv +\\(there already: kept\\)" "$OUT"
run_ctl runner download later -o every
check_eq "runner download RUNNER -o DIR: every result" "0" "$RC"
check "... the report" test -s every/report.pdf
check "... the figures" test -s every/iris.distribution.html

# --- 9. a failed run keeps its runner and says how to go on or remove it; --rm removes it -----------
sim_control job-failure '{"parameters_name":"standard","status":"error","exception":"ValueError: k too large for bb","count":1}' >/dev/null
"$AVATARCTL" avatarize iris.csv --name failing >"$TMP/fail.out" 2>"$TMP/fail.err" &
pid=$!
finish_jobs
wait "$pid"; rc=$?
err=$(cat "$TMP/fail.err")
F=$(json_str runner_id "$("$AVATARCTL" --json runner status failing)")
check_eq "a failed job: avatarize exits 8" "8" "$rc"
check_match "... with the job's exception" "job standard failed \\(error\\): ValueError: k too large for bb" "$err"
check_match "... the runner is kept, with its id" "the runner $F \\('failing'\\) is kept" "$err"
check_match "... the command that goes on with it" "^  avatarctl avatarize --resume $F -o failing-avatars$" "$err"
check_match "... the command that removes it" "^  avatarctl runner rm $F$" "$err"
check_eq "... and it is there" "1" "$(runners_named failing)"
"$AVATARCTL" avatarize --resume "$F" >"$TMP/rerun.out" 2>"$TMP/rerun.err" &
pid=$!
finish_jobs
wait "$pid"; rc=$?
check_eq "--resume of the failed runner runs it again, to the end" "0" "$rc"
check "... and downloads its results" test -s failing-avatars/iris.shuffled-0.csv
run_ctl runner rm failing
check_eq "runner rm without --yes and no terminal: refused" "2" "$RC"
check_match "... saying so" "not without a confirmation, and stdin is not a terminal to ask on: add --yes" "$ERR"
run_ctl runner rm failing --yes
check_eq "runner rm --yes removes it" "0" "$RC"
check_eq "... it is gone" "0" "$(runners_named failing)"

sim_control job-failure '{"parameters_name":"standard","status":"error","exception":"bb failure","count":1}' >/dev/null
before=$(sim_count "POST /api/jobs/bulk-delete")
"$AVATARCTL" avatarize iris.csv --name removed --rm >"$TMP/rm.out" 2>"$TMP/rm.err" &
pid=$!
finish_jobs
wait "$pid"; rc=$?
check_eq "avatarize --rm with a failed job exits 8" "8" "$rc"
check_match "... and says it removed the runner" "removed the runner [0-9a-f-]+ and [0-9]+ jobs on the server \\(--rm\\)" "$(cat "$TMP/rm.err")"
check_eq "... the runner is gone" "0" "$(runners_named removed)"
check "... its jobs were deleted on the server" test "$(sim_count "POST /api/jobs/bulk-delete")" -gt "$before"

# the daemon going away while avatarize waits: the runner is kept and said so; once the
# daemon is back, --resume finishes
"$AVATARCTL" avatarize iris.csv --name restart >"$TMP/restart.out" 2>"$TMP/restart.err" &
pid=$!
wait_for_calls runner.wait $(($(status_num runner.wait) + 1))
stop_daemon
wait "$pid"; rc=$?
err=$(cat "$TMP/restart.err")
check_eq "the daemon stopping while avatarize waits: exit 10 (shutting down)" "10" "$rc"
check_match "... the runner is kept, with its id" "the runner [0-9a-f-]{36} \\('restart'\\) is kept" "$err"
check_match "... the command that goes on with it" "avatarctl avatarize --resume [0-9a-f-]{36} -o restart-avatars" "$err"
start_daemon || fail "avatard starts again"
"$AVATARCTL" avatarize --resume restart >"$TMP/after.out" 2>"$TMP/after.err" &
pid=$!
finish_jobs
wait "$pid"; rc=$?
check_eq "after the restart, --resume finishes the run" "0" "$rc"
check "... and downloads it" test -s restart-avatars/iris.shuffled-0.csv

# Ctrl-C (SIGINT) while waiting: the runner is kept and said so
"$AVATARCTL" avatarize iris.csv --name interrupted >"$TMP/int.out" 2>"$TMP/int.err" &
pid=$!
wait_for_calls runner.wait $(($(status_num runner.wait) + 1))
kill -INT "$pid"
wait "$pid"; rc=$?
check_eq "interrupted: the signal's status" "130" "$rc"
check_match "interrupted: the runner is kept and how to go on" \
        "interrupted; the run continues on the server and the runner [0-9a-f-]{36} is kept. Go on with it:" "$(cat "$TMP/int.err")"
check_match "interrupted: and how to remove it" "avatarctl runner rm [0-9a-f-]{36}" "$(cat "$TMP/int.err")"
check_eq "interrupted: the runner is there" "1" "$(runners_named interrupted)"

# progress on a stderr that is not a terminal: a plain line per change, whatever the format
"$AVATARCTL" --json avatarize iris.csv --name logged >"$TMP/log.out" 2>"$TMP/log.err" &
pid=$!
finish_jobs
wait "$pid"
log=$(cat "$TMP/log.err")
check_match "a log: the upload" "^upload [0-9]+/[0-9]+ bytes$" "$log"
check_match "a log: a line per job change" "^job standard finished 1$" "$log"
check_match "a log: the downloads" "^downloaded shuffled -> logged-avatars/iris.shuffled-0.csv \\([0-9]+ bytes\\)$" "$log"
check_no_match "a log: no carriage return, no escape" "$(printf '[\r\033]')" "$log"
check "a log: no line twice in a row" test -z "$(uniq -d <<<"$log")"
check_match "--json: the summary on stdout" '"runner_id":"[0-9a-f-]{36}","display_name":"logged"' "$(cat "$TMP/log.out")"

# --- 8. a bad CSV is refused before anything is sent ------------------------------------------------
uploads=$(sim_count "PUT /storage/{bucket}/{key}")
creates=$(status_num manager.create_runner)
printf '' >empty.csv
printf 'a,b,c\n1,2,3\n4,5\n' >ragged.csv
printf 'a,b\n1,"x\n' >open.csv
printf 'a,b\n1,\377\376\n' >latin.csv
printf 'a,b\n1,\0002\n' >binary.csv
printf 'a,b\n' >header.csv
for t in "empty.csv:empty" "ragged.csv:line 3: 2 fields, but the header \\(line 1\\) has 3" \
         "open.csv:line 2: a quoted field that never ends" "latin.csv:line 2, column 3: not UTF-8" \
         "binary.csv:line 2: a NUL byte" "header.csv:a header but no rows"; do
        run_ctl avatarize "${t%%:*}"
        check_eq "avatarize ${t%%:*}: refused (exit 2)" "2" "$RC"
        check_match "avatarize ${t%%:*}: says why, with the line" "${t%%:*}.*${t#*:}" "$ERR"
        check_match "avatarize ${t%%:*}: and how to go on anyway" "--no-check" "$ERR"
done
run_ctl runner create checked
run_ctl runner add-table checked t ragged.csv
check_eq "runner add-table of a ragged CSV: refused" "2" "$RC"
check_match "... naming the line" "ragged.csv: line 3: 2 fields" "$ERR"
check_eq "nothing was uploaded" "$uploads" "$(sim_count "PUT /storage/{bucket}/{key}")"
check_eq "no runner was made for a refused avatarize" "$((${creates:-0} + 1))" "$(status_num manager.create_runner)"
printf 'a,"b,c"\n1,"2\n3"\n"4",""\n' >quoted.csv
run_ctl runner add-table checked t quoted.csv
check_eq "quoted fields with commas and newlines pass" "0" "$RC"
check "... and are uploaded" test "$(sim_count "PUT /storage/{bucket}/{key}")" -gt "$uploads"
run_ctl runner add-table checked t2 ragged.csv --no-check
check_eq "--no-check uploads it as it is" "0" "$RC"

finish
