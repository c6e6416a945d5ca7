#!/usr/bin/env bash
# runner.delete_table, runner.delete_link and runner.delete_parameters (the published Runner's
# delete_table, delete_link, delete_parameters) against avatar-sim, through avatarctl's
# commands and the raw socket: what each removes from the runner and its resource YAML, what
# it keeps, the errors (a missing table or link, unknown parameter names, a busy runner, bad
# params), the state kept across a daemon restart, the YAML round trip, and a run of what is
# left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"
. "$(dirname "$0")/cli-fixtures.sh"

cli_start || { fail "avatard and avatar-sim start"; finish; exit $?; }
export NO_COLOR=1 TZ=UTC
cd "$TMP" || exit 1
make_patients patients.csv 40
make_visits visits.csv 80 40
printf 'a,b\n1,2\n3,4\n' >other.csv

# yaml_of RUNNER: the runner's resource YAML, as avatarctl runner export-yaml prints it.
yaml_of() {
        "$AVATARCTL" runner export-yaml "$1"
}

# --- a runner with three tables, two links and parameters --------------------------------------------
R=$("$AVATARCTL" -q runner create deletions)
check "runner create gives an id" is_uuid "$R"
for t in patients visits other; do
        run_ctl runner add-table "$R" "$t" "$t.csv"
        check_eq "add-table $t" "0" "$RC"
done
run_ctl runner add-link "$R" patients.id visits.patient_id
check_eq "add-link patients → visits" "0" "$RC"
run_ctl runner add-link "$R" patients.id other.a --method minimum_distance_assignment
check_eq "add-link patients → other" "0" "$RC"
run_ctl runner set-parameters "$R" patients --k 5 --ncp 3 --column-weights age=2 --known-variables age,sex
check_eq "set-parameters patients" "0" "$RC"
run_ctl runner set-parameters "$R" visits --k 7 --ncp 2
check_eq "set-parameters visits" "0" "$RC"
run_ctl runner set-parameters "$R" other --k 4
check_eq "set-parameters other" "0" "$RC"
Y=$(yaml_of "$R")
check_eq "the YAML has two links" "2" "$(grep -c '^ *to:$' <<<"$Y")"
check_contains "... one to other" "table: other" "$Y"
check_contains "... other has avatarization parameters" "    other:" "$Y"

# --- runner delete-link ------------------------------------------------------------------------------
run_ctl runner delete-link "$R" patients other
check_eq "delete-link patients other: exit 0" "0" "$RC"
check_eq "... says what went" "Deleted the link from table patients to table other." "$OUT"
Y=$(yaml_of "$R")
check_eq "the YAML has one link left" "1" "$(grep -c '^ *to:$' <<<"$Y")"
check_contains "... the one to visits" "table: visits" "$Y"
check_no_match "... none to other" "table: other" "$Y"
check_no_match "... nor its method" "minimum_distance_assignment" "$Y"
check_contains "... and other is still a table" "  - name: other" "$Y"
run_ctl runner delete-link "$R" patients other
check_eq "the same link again: not found (exit 6)" "6" "$RC"
check_contains "... naming both tables" "no link from table 'patients' to table 'other'" "$ERR"
run_ctl runner delete-link "$R" visits patients
check_eq "a link the other way round: not found (exit 6)" "6" "$RC"
run_ctl runner delete-link "$R" nope visits
check_eq "a link from a table the runner lacks: not found (exit 6)" "6" "$RC"
OUT=$(rpc runner.delete_link "{\"runner_id\":\"$R\",\"parent_table_name\":\"patients\",\"child_table_name\":\"other\"}")
check_match "over the socket: not_found (-32005)" '"code":-32005' "$OUT"
check_match "... with both names as data" '"parent_table_name":"patients","child_table_name":"other"' "$OUT"
OUT=$(rpc runner.delete_link "{\"runner_id\":\"$R\",\"parent_table_name\":\"patients\"}")
check_match "without child_table_name: invalid params (-32602)" '"code":-32602' "$OUT"

# --- runner delete-parameters ------------------------------------------------------------------------
run_ctl runner delete-parameters "$R" patients ncp column-weights
check_eq "delete-parameters patients ncp column-weights: exit 0" "0" "$RC"
check_match "... prints the parameters left: k" "^  k +5$" "$OUT"
check_match "... and known_variables" "^  known_variables +" "$OUT"
check_no_match "... not ncp" "ncp" "$OUT"
check_no_match "... nor column_weights" "column_weights" "$OUT"
Y=$(yaml_of "$R")
check_no_match "the YAML has no column_weights" "column_weights" "$Y"
check_contains "... still k 7 for visits" "k: 7" "$Y"
check_contains "... and ncp 2 for visits" "ncp: 2" "$Y"
check_contains "... and the known variables of patients" "known_variables:" "$Y"
OUT=$(rpc runner.delete_parameters "{\"runner_id\":\"$R\",\"table_name\":\"patients\",\"parameters_names\":[\"k\",\"kk\",\"zz\"]}")
check_match "unknown names: invalid params (-32602)" '"code":-32602' "$OUT"
check_match "... naming them in data.unknown" '"unknown":\["kk","zz"\]' "$OUT"
check_contains "... and in the message" "no parameter named 'kk', 'zz' (the names are those of runner.set_parameters)" "$OUT"
check_contains "... and nothing was removed (k 5 stays)" "k: 5" "$(yaml_of "$R")"
run_ctl runner delete-parameters "$R" patients kk
check_eq "avatarctl refuses an unknown name itself (exit 2)" "2" "$RC"
check_contains "... naming it" "no parameter named 'kk'" "$ERR"
OUT=$(rpc runner.delete_parameters "{\"runner_id\":\"$R\",\"table_name\":\"patients\",\"parameters_names\":\"k\"}")
check_match "parameters_names not a list: invalid params (-32602)" '"code":-32602' "$OUT"
ctl runner.delete_parameters "{\"runner_id\":\"$R\",\"table_name\":\"patients\",\"parameters_names\":[]}"
check_eq "an empty list removes nothing" "0" "$CTL_RC"
check_match "... k stays" '"parameters":\{"k":5' "$OUT"
OUT=$(rpc runner.delete_parameters "{\"runner_id\":\"$R\",\"table_name\":\"nope\"}")
check_match "a table the runner lacks: not_found (-32005)" '"code":-32005' "$OUT"
check_match "... naming it" '"table_name":"nope"' "$OUT"
ctl runner.delete_parameters "{\"runner_id\":\"$R\",\"table_name\":\"visits\",\"parameters_names\":null}"
check_eq "parameters_names null: every parameter of visits goes" "0" "$CTL_RC"
check_match "... none left" '"parameters":\{\}' "$OUT"
Y=$(yaml_of "$R")
check_no_match "the YAML has no parameters for visits (k 7)" "k: 7" "$Y"
check_no_match "... (ncp 2)" "ncp: 2" "$Y"
check_contains "... but patients keeps k 5" "k: 5" "$Y"
run_ctl runner update-parameters "$R" visits --ncp 4
check_eq "update-parameters on a table with none left is refused as for a new table (exit 2)" "2" "$RC"
check_contains "... saying to use set-parameters" "No existing parameters found for table 'visits'" "$ERR"
run_ctl runner delete-parameters "$R" other
check_eq "delete-parameters other (no NAME): exit 0" "0" "$RC"
check_eq "... prints that none are left" "Parameters of table other: none" "$OUT"

# --- runner delete-table -----------------------------------------------------------------------------
run_ctl runner set-parameters "$R" other --k 4 --ncp 2
run_ctl runner add-link "$R" other.a visits.visit_id
check_eq "a link from other to visits" "0" "$RC"
run_ctl runner delete-table "$R" other
check_eq "delete-table other: exit 0" "0" "$RC"
check_eq "... says what went" "Deleted table other with its links and parameters." "$OUT"
Y=$(yaml_of "$R")
check_no_match "the YAML no longer names other" "other" "$Y"
check_eq "... nor its link to visits (one link left, from patients)" "1" "$(grep -c 'table: visits' <<<"$Y")"
check_no_match "... nor its parameters (k 4)" "k: 4" "$Y"
ctl runner.get_status "{\"runner_id\":\"$R\"}"
check_match "runner.get_status lists the two tables left" '"tables":\["patients","visits"\]' "$OUT"
check_no_match "... and no upload of other" '"other":\{' "$OUT"
run_ctl runner delete-table "$R" other
check_eq "the same table again: not found (exit 6)" "6" "$RC"
check_contains "... naming it" "has no table 'other'" "$ERR"
OUT=$(rpc runner.delete_table "{\"runner_id\":\"$R\",\"table_name\":\"other\"}")
check_match "over the socket: not_found (-32005)" '"code":-32005' "$OUT"
check_match "... with the table as data" '"table_name":"other"' "$OUT"
OUT=$(rpc runner.delete_table "{\"runner_id\":\"$R\",\"table_name\":\"\"}")
check_match "an empty table name: invalid params (-32602)" '"code":-32602' "$OUT"
OUT=$(rpc runner.delete_table '{"runner_id":"00000000-0000-4000-8000-000000000000","table_name":"patients"}')
check_match "a runner that does not exist: not_found" '"code":-32005' "$OUT"
check_match "the daemon logs each deletion with its caller" \
        'runner.delete_table called by uid [0-9]+' "$(cat "$DAEMON_LOG")"

# --- the runner keeps them across a restart ------------------------------------------------------------
before=$(yaml_of "$R")
stop_daemon
check_eq "the daemon stops" "0" "$?"
start_daemon || { fail "avatard starts again"; finish; exit $?; }
after=$(yaml_of "$R")
check_contains "the YAML before the restart has the tables left" "  - name: visits" "$before"
check_eq "after a restart the YAML is the same" "$before" "$after"
check_no_match "... without other" "other" "$after"
check_no_match "... without visits' parameters" "k: 7" "$after"

# --- the YAML round trip ----------------------------------------------------------------------------
yaml_of "$R" >deleted.yaml
R2=$("$AVATARCTL" -q runner create-from-yaml deletions deleted.yaml)
check "a runner from the exported YAML" is_uuid "$R2"
check_eq "... the same YAML back (but its name)" "$(sed 's/deletions-v[0-9]*/deletions/' <<<"$(yaml_of "$R2")")" \
        "$(sed 's/deletions-v[0-9]*/deletions/' deleted.yaml)"
run_ctl runner delete-table "$R2" visits
check_eq "delete-table on the runner made from YAML" "0" "$RC"
check_no_match "... its YAML has no link left" "links:" "$(yaml_of "$R2")"

# --- busy: refused while a table uploads ---------------------------------------------------------------
mkfifo "$TMP/upload.fifo"
exec 7<>"$TMP/upload.fifo"
pcall_bg "$TMP/upload.out" -f "$TMP/upload.fifo" runner.add_table \
        "{\"runner_id\":\"$R\",\"table_name\":\"late\",\"data\":{\"fd\":0}}" 7>&-
uploader=$PCALL_PID
uploading() {
        ctl runner.get_status "{\"runner_id\":\"$R\"}" 7>&-
        grep -q '"state":"uploading"' <<<"$OUT"
}
check "the runner is uploading" wait_until 10 uploading
for m in "delete_table:\"table_name\":\"visits\"" \
         "delete_link:\"parent_table_name\":\"patients\",\"child_table_name\":\"visits\"" \
         "delete_parameters:\"table_name\":\"patients\""; do
        ctl "runner.${m%%:*}" "{\"runner_id\":\"$R\",${m#*:}}" 7>&-
        check_eq "runner.${m%%:*} while uploading: invalid state (exit 9)" "9" "$CTL_RC"
        check_match "... saying the runner is busy" 'is busy \(uploading\)' "$OUT"
done
printf 'id,x\n1,2\n' >&7
exec 7>&-
wait "$uploader"
check_match "the upload ends" '"table_name":"late"' "$(cat "$TMP/upload.out")"
ctl runner.get_status "{\"runner_id\":\"$R\"}"
check_match "... and nothing was deleted meanwhile" '"tables":\["patients","visits","late"\]' "$OUT"
run_ctl runner delete-table "$R" late
check_eq "once the upload ended delete-table works" "0" "$RC"

# --- what is left runs ------------------------------------------------------------------------------
run_ctl runner run "$R" --jobs standard
check_eq "a run of what is left starts" "0" "$RC"
S=$(json_str set_name "$("$AVATARCTL" --json runner status "$R")")
sent=$(sim_api GET "/resources/$S")
check_contains "the set sent upstream is the runner's YAML" "  - name: patients" "$sent"
check_no_match "... and names no deleted table" "other|late" "$sent"
run_ctl runner wait "$R" --timeout "$(scaled 60)"
check_eq "... and finishes" "0" "$RC"
ctl runner.delete_table "{\"runner_id\":\"$R\",\"table_name\":\"visits\"}"
check_eq "after the run, delete_table still edits the runner (as add_table does)" "0" "$CTL_RC"

check_no_sanitizer_reports
finish
