#!/usr/bin/env bash
# Saved or refused: the state directory on a tiny tmpfs (1 MiB) that the test fills. Every call
# that changes a runner — add_table, set_parameters, update_parameters, add_link,
# delete_parameters, run, create_runner — and a download whose results the runner must keep
# then fails with state_not_saved (retryable, naming the state directory and ENOSPC), and
# nothing it refused shows afterwards, not even after a restart. A download whose results
# stay in memory leaves its runner unsaved: daemon.status and avatarctl status list it, and
# once space is freed the daemon saves it by itself, without a new call. A restart finds the
# runner intact, and the stale temporary files of the state directory are gone. Needs root
# (mount); skipped (77) otherwise.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

if [ "$(id -u)" != 0 ]; then
        echo "# not root: cannot mount the tmpfs; skipped"
        rm -rf "$TMP"
        exit 77
fi
if ! mount -t tmpfs -o size=1m,mode=0700 avatard-test-state "$STATE" 2>/dev/null; then
        echo "# cannot mount a tmpfs on $STATE; skipped"
        rm -rf "$TMP"
        exit 77
fi
MOUNTED="$STATE"
# the tmpfs goes whatever happens (the lib's trap removes $TMP, which it would keep busy)
state_full_exit() {
        [ -n "$DAEMON_PID" ] && kill -KILL "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
        [ -n "$MOUNTED" ] && umount "$MOUNTED" 2>/dev/null
        on_exit
}
trap state_full_exit EXIT

# fill: the tmpfs has no room left (dd stops at ENOSPC)
fill() {
        dd if=/dev/zero of="$STATE/filler" bs=4k >/dev/null 2>&1
        [ -s "$STATE/filler" ]
}
unfill() {
        rm -f "$STATE/filler"
}

# refused DESCRIPTION: the last ctl call failed with state_not_saved (exit 10), naming the
# state directory and ENOSPC, the change undone (kept: no).
refused() {
        check_eq "$1: refused (exit 10)" "10" "$CTL_RC"
        check_match "$1: state_not_saved" '\(state_not_saved\)' "$OUT"
        check_match "$1: the message names the state directory" "saved in '$STATE/runners': No space left on device" "$OUT"
        check_match "$1: errno ENOSPC" 'errno: ENOSPC' "$OUT"
        check_match "$1: the change was undone" 'kept: no' "$OUT"
}

# refused_raw DESCRIPTION METHOD PARAMS: the raw reply of a call is the error state_not_saved,
# retryable.
refused_raw() {
        local reply
        reply=$(rpc "$2" "$3")
        check_match "$1 (raw): error -32018" '"error":\{"code":-32018,' "$reply"
        check_match "$1 (raw): state_not_saved" '"name":"state_not_saved"' "$reply"
        check_match "$1 (raw): retryable" '"retryable":true' "$reply"
        check_match "$1 (raw): ENOSPC" '"errno":"ENOSPC"' "$reply"
}

start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
runner_conf >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts with its state directory on a 1 MiB tmpfs"

# a runner with two tables and parameters, run to the end; its results are not read yet
R=$(new_iris_runner full)
ctl runner.add_table "{\"runner_id\":\"$R\",\"table_name\":\"iris2\",\"data\":{\"fd\":0}}" --file "$IRIS"
check_eq "add_table iris2 while there is room" "0" "$CTL_RC"
ctl runner.run "{\"runner_id\":\"$R\"}"
check_eq "run while there is room" "0" "$CTL_RC"
S=$(json_str set_name "$OUT")
sim_tick 40
wait_runner "$R" 60
check_match "the run finished" '"done":true' "$OUT"
ctl runner.export_yaml "{\"runner_id\":\"$R\"}"
yaml_before=$OUT
ctl runner.get_status "{\"runner_id\":\"$R\"}"
status_before=$(sed 's/"updated_at":[0-9]*//' <<<"$OUT")
file="$STATE/runners/$R.json"
# a job whose results the runner has not read holds "results":null (its JobResponse's own
# "results" is an object)
results_null() {
        grep -o '"results":null' "$file" | wc -l
}
nulls_before=$(results_null)
check "the runner file holds jobs without results ($nulls_before)" test "$nulls_before" -gt 0

# --- the state directory is full -----------------------------------------------------------------------
check "the tmpfs is filled" fill

ctl runner.add_table "{\"runner_id\":\"$R\",\"table_name\":\"iris3\",\"data\":{\"fd\":0}}" --file "$IRIS"
refused "add_table"
ctl runner.set_parameters "{\"runner_id\":\"$R\",\"table_name\":\"iris\",\"k\":9}"
refused "set_parameters"
refused_raw "set_parameters" runner.set_parameters "{\"runner_id\":\"$R\",\"table_name\":\"iris\",\"k\":9}"
ctl runner.update_parameters "{\"runner_id\":\"$R\",\"table_name\":\"iris\",\"ncp\":3}"
refused "update_parameters"
ctl runner.add_link "{\"runner_id\":\"$R\",\"parent_table_name\":\"iris\",\"parent_field\":\"species\",\"child_table_name\":\"iris2\",\"child_field\":\"species\"}"
refused "add_link"
refused_raw "add_link" runner.add_link "{\"runner_id\":\"$R\",\"parent_table_name\":\"iris\",\"parent_field\":\"species\",\"child_table_name\":\"iris2\",\"child_field\":\"species\"}"
ctl runner.delete_parameters "{\"runner_id\":\"$R\",\"table_name\":\"iris\"}"
refused "delete_parameters"
resources=$(sim_count "PUT /api/resources")
ctl runner.run "{\"runner_id\":\"$R\",\"ignore_warnings\":true}"
refused "run"
check_eq "the refused run sent nothing upstream" "$resources" "$(sim_count "PUT /api/resources")"
ctl manager.create_runner '{"set_name":"never"}'
refused "create_runner"
refused_raw "create_runner" manager.create_runner '{"set_name":"never"}'
ctl manager.create_runner_from_id "{\"set_name\":\"$S\"}"
refused "create_runner_from_id"
ctl runner.list
check_no_match "the refused runner does not exist" '"display_name":"never"' "$OUT"
check_eq "runner.list holds the one runner" "1" "$(grep -o '"runner_id":' <<<"$OUT" | wc -l)"

# nothing the daemon refused shows
ctl runner.export_yaml "{\"runner_id\":\"$R\"}"
check_eq "the runner's YAML is as before the refusals" "$yaml_before" "$OUT"
ctl runner.get_status "{\"runner_id\":\"$R\"}"
check_eq "the runner's status is as before the refusals" "$status_before" "$(sed 's/"updated_at":[0-9]*//' <<<"$OUT")"
st=$("$AVATARCTL" --json status)
check_eq "daemon.status: no runner unsaved (every change was undone)" '"unsaved":[]' \
        "$(grep -o '"unsaved":\[[^]]*\]' <<<"$st")"

# a download fetches the results, which the runner keeps: in memory, unsaved
ctl runner.download "{\"runner_id\":\"$R\",\"result\":\"shuffled\",\"table\":\"iris\",\"fd\":{\"fd\":0}}" --out "$TMP/shuffled.csv"
check_eq "download: refused (exit 10)" "10" "$CTL_RC"
check_match "download: state_not_saved, the results kept in memory" 'kept: yes' "$OUT"
st=$("$AVATARCTL" --json status)
check_eq "daemon.status lists the unsaved runner" "\"unsaved\":[\"$R\"]" "$(grep -o '"unsaved":\[[^]]*\]' <<<"$st")"
check_match "daemon.status names the last save error" '"last_save_error": ?"ENOSPC"' "$st"
human=$("$AVATARCTL" status)
check_match "avatarctl status names the unsaved runner" "NOT SAVED: $R" "$human"
ctl runner.get_status "{\"runner_id\":\"$R\"}"
check_match "runner.get_status says the runner is unsaved, and why" '"unsaved":true,"save_error":"ENOSPC"' "$OUT"
check_eq "the runner file still holds no results" "$nulls_before" "$(results_null)"
check_eq "no temporary file is left in the state directory" "" "$(find "$STATE" -name '.*' -type f)"

# --- room again: saved without a call ------------------------------------------------------------------
unfill
saved() {
        [ "$(results_null)" -lt "$nulls_before" ]
}
check "once there is room the daemon saves the runner by itself" wait_until 30 saved
unsaved_empty() {
        "$AVATARCTL" --json status | grep -q '"unsaved":\[\]'
}
check "daemon.status lists no unsaved runner any more" wait_until 10 unsaved_empty
ctl runner.get_status "{\"runner_id\":\"$R\"}"
check_no_match "runner.get_status no longer says unsaved" '"unsaved"' "$OUT"
check_match "the log says the runner is saved again" "Runner $R is saved again" "$(cat "$DAEMON_LOG")"

# --- restart: the runner is intact, stale temporary files go --------------------------------------------
stop_daemon
check_eq "avatard stops" "0" "$?"
printf '{"torn' >"$STATE/runners/.$R.json.Xy12Zq"
mkdir -p "$STATE/sets"
printf '{' >"$STATE/sets/.$S.json.Ab34Cd"
results_before=$(sim_count "GET /api/results/{job}")
start_daemon || { fail "avatard starts again"; finish; exit $?; }
check "the stale temporary runner file is removed at start" test ! -e "$STATE/runners/.$R.json.Xy12Zq"
check "the stale temporary set file is removed at start" test ! -e "$STATE/sets/.$S.json.Ab34Cd"
ctl runner.export_yaml "{\"runner_id\":\"$R\"}"
check_eq "after the restart the runner's YAML is as before" "$yaml_before" "$OUT"
ctl runner.get_status "{\"runner_id\":\"$R\"}"
check_match "after the restart the runner is finished in its set" "\"state\":\"finished\",\"set_name\":\"$S\"" "$OUT"
check_match "after the restart it has both tables" '"tables":\["iris","iris2"\]' "$OUT"
ctl runner.download "{\"runner_id\":\"$R\",\"result\":\"shuffled\",\"table\":\"iris\",\"fd\":{\"fd\":0}}" --out "$TMP/shuffled-after.csv"
check_eq "after the restart the download succeeds ($OUT)" "0" "$CTL_RC"
check_eq "with the results saved while the disk was full: no GET /results" "$results_before" \
        "$(sim_count "GET /api/results/{job}")"
check "the download is byte-exact" cmp "$TMP/shuffled-after.csv" \
        "$(stored_object "$S" "$(json_str name "$(sim_api GET "/jobs?set_name=$S&kind=standard")")" iris.shuffled-0.csv)"

# the refused calls succeed when tried again
ctl runner.set_parameters "{\"runner_id\":\"$R\",\"table_name\":\"iris\",\"k\":9}"
check_eq "set_parameters tried again succeeds" "0" "$CTL_RC"
check_match "and is saved" '"k":9' "$(cat "$file")"

check_no_sanitizer_reports
stop_daemon >/dev/null 2>&1
umount "$MOUNTED" && MOUNTED=""
check "the tmpfs is unmounted" test -z "$MOUNTED"
finish
