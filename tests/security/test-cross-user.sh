#!/usr/bin/env bash
# Two local users share the daemon (and so the upstream account), as the threat model has it
# (README.md "Security notes", daemon/SECURITY.md): alice and bob with operate, carol with read.
#   - uploads: both upload a table called iris with their own data at the same time; each
#     object is the runner's own (its id and a random part in the key, never the table name
#     alone) and each run's results are built from its user's bytes;
#   - ownership: bob's every attempt on alice's run is refused, before anything is asked
#     upstream: loading her set (by id, by display name), deleting its jobs (by id, by name,
#     by job names), and every runner.* method on her runner; what the account-wide listings
#     show stays visible to carol; an admin may act; the record of who owns a set outlives
#     the runner's close and a restart; a set the daemon did not create is adopted by the
#     first operate user who loads it; a damaged record leaves the set to admins; state
#     written before the daemon kept owners gives each set to its runner's owner.
. "$(dirname "$0")/../blackbox/lib.sh"
. "$SOURCE_ROOT/tests/blackbox/sim-fixtures.sh"
. "$SOURCE_ROOT/tests/blackbox/runner-fixtures.sh"

if ! command -v setpriv >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
        echo "# setpriv and root are needed to call the daemon as other users"
        pass "skipped: setpriv or root unavailable"
        finish
        exit $?
fi
ALICE=64101
BOB=64102
CAROL=64103

# as_user UID COMMAND...: runs COMMAND as UID (its own group, no other).
as_user() {
        local u="$1"
        shift
        setpriv --reuid="$u" --regid="$u" --clear-groups "$@"
}
# uctl UID METHOD [PARAMS] [avatarctl options]: avatarctl --json call as UID; $OUT, $CTL_RC.
uctl() {
        local u="$1"
        shift
        OUT=$(as_user "$u" "$AVATARCTL" --json --timeout "$(scaled 30)" call "$@" 2>&1)
        CTL_RC=$?
}
# urpc UID METHOD [PARAMS]: the raw reply to a call made as UID.
urpc() {
        local u="$1"
        shift
        RPC_WRAP="as_user $u" rpc "$@"
}
# refused_by_set_rule DESCRIPTION REPLY [OWNER RUNNER]: the reply is permission_denied by the
# set rule, and names neither the owner's uid nor the owner's runner (default: alice's).
refused_by_set_rule() {
        check_match "$1: permission_denied by the set rule" \
                '"code":-32004,"message":"Set [0-9a-fA-F-]+ belongs to another user of this daemon: only its owner or an admin may [a-z ]+".*"rule":"set_owner_or_admin"' "$2"
        check_no_match "$1: the refusal names neither the owner nor the owner's runner" "${3:-$ALICE}|${4:-$RA}" "$2"
}
# job_of SET: the name of the standard job of a set (from the simulator).
job_of() {
        json_str name "$(sim_api GET "/jobs?set_name=$1")"
}

start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
export AVATAR_API_KEY="$SIM_KEY"
runner_conf "socket_mode: \"0666\"
access:
  operate:
    users: [$ALICE, $BOB]
  read:
    users: [$CAROL]" >"$CONF"
start_daemon || { fail "avatard starts"; finish; exit $?; }

printf 'x,y,owner\n1,2,alice\n3,4,alice\n5,6,alice\n' >"$TMP/alice.csv"
printf 'x,y,owner\n7,8,bob\n9,10,bob\n' >"$TMP/bob.csv"
chmod 0644 "$TMP/alice.csv" "$TMP/bob.csv"

# --- uploads: the same table name, each user's own object -------------------------------------
uctl $ALICE manager.create_runner '{"set_name":"alice-iris"}'
RA=$(runner_id_of "$OUT")
uctl $BOB manager.create_runner '{"set_name":"bob-iris"}'
RB=$(runner_id_of "$OUT")
check "alice and bob each have a runner" test -n "$RA" -a -n "$RB"
uctl $ALICE runner.add_table "{\"runner_id\":\"$RA\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$TMP/alice.csv"
up_a=$OUT
uctl $BOB runner.add_table "{\"runner_id\":\"$RB\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$TMP/bob.csv"
up_b=$OUT
KA=$(json_str file "$up_a")
KB=$(json_str file "$up_b")
check_match "alice's object is named after her runner and a random part" "^$RA/[0-9a-f]{32}/iris\\.csv\$" "$KA"
check_match "bob's object is named after his runner and a random part" "^$RB/[0-9a-f]{32}/iris\\.csv\$" "$KB"
check "no object is named after the table alone" test -z "$(find "$TMP/storage" -path '*/30d/iris.csv')"
check "the store holds alice's bytes under her key" cmp "$TMP/alice.csv" "$(find "$TMP/storage" -path "*/30d/$KA")"
check "the store holds bob's bytes under his key" cmp "$TMP/bob.csv" "$(find "$TMP/storage" -path "*/30d/$KB")"
uctl $ALICE runner.add_table "{\"runner_id\":\"$RA\",\"table_name\":\"iris\",\"data\":\"x,y,owner\\n0,0,again\\n\"}"
check_match "the same table uploaded again is another object (nothing of a run is overwritten)" \
        "\"file\":\"$RA/[0-9a-f]{32}/iris\\.csv\"" "$OUT"
check_no_match "... not the first one" "\"file\":\"$KA\"" "$OUT"
uctl $ALICE runner.add_table "{\"runner_id\":\"$RA\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$TMP/alice.csv"
KA=$(json_str file "$OUT")

for u in $ALICE:$RA $BOB:$RB; do
        uctl "${u%%:*}" runner.set_parameters "{\"runner_id\":\"${u#*:}\",\"table_name\":\"iris\",\"k\":2}"
        uctl "${u%%:*}" runner.run "{\"runner_id\":\"${u#*:}\",\"jobs\":[\"standard\"]}"
        check_eq "runner ${u#*:} runs" "0" "$CTL_RC"
done
uctl $ALICE runner.get_status "{\"runner_id\":\"$RA\"}"
SA=$(json_str set_name "$OUT")
uctl $BOB runner.get_status "{\"runner_id\":\"$RB\"}"
SB=$(json_str set_name "$OUT")
check_match "alice's set names her object" "file: $KA" "$(sim_api GET "/resources/$SA")"
check_match "bob's set names his object" "file: $KB" "$(sim_api GET "/resources/$SB")"
sim_tick 30
uctl $ALICE runner.wait "{\"runner_id\":\"$RA\",\"timeout_s\":30}"
uctl $BOB runner.wait "{\"runner_id\":\"$RB\",\"timeout_s\":30}"
uctl $ALICE runner.download "{\"runner_id\":\"$RA\",\"result\":\"shuffled\",\"table\":\"iris\"}"
check_match "alice's result is built from her rows (the simulator reverses them)" \
        '"data":"x,y,owner\\n5,6,alice\\n3,4,alice\\n1,2,alice\\n"' "$OUT"
uctl $BOB runner.download "{\"runner_id\":\"$RB\",\"result\":\"shuffled\",\"table\":\"iris\"}"
check_match "bob's result is built from his rows" '"data":"x,y,owner\\n9,10,bob\\n7,8,bob\\n"' "$OUT"
JA=$(job_of "$SA")
JB=$(job_of "$SB")

# --- what the account shares stays visible to read -----------------------------------------------
uctl $CAROL manager.get_last_jobs '{"count":10}'
check_match "carol (read) sees alice's job in the account-wide listing" "\"$JA\"" "$OUT"
uctl $CAROL manager.find_ids_by_name '{"set_name":"alice-iris"}'
check_match "carol finds alice's run by its display name" "\"set_name\":\"$SA\"" "$OUT"
uctl $CAROL manager.watch_jobs "{\"set_name\":\"$SA\",\"timeout_s\":5}"
check_eq "carol may watch alice's set" "0" "$CTL_RC"
check_match "carol may not load a set at all (operate)" "needs the 'operate' role" \
        "$(urpc $CAROL manager.create_runner_from_id "{\"set_name\":\"$SA\"}")"

# --- bob against alice's run: every act on her set or her runner is refused ------------------------
gets=$(sim_count "GET /api/resources/{set_name}")
deletes=$(sim_count "POST /api/jobs/bulk-delete")
refused_by_set_rule "create_runner_from_id" "$(urpc $BOB manager.create_runner_from_id "{\"set_name\":\"$SA\"}")"
refused_by_set_rule "create_runner_from_id (upper case id)" \
        "$(urpc $BOB manager.create_runner_from_id "{\"set_name\":\"${SA^^}\"}")"
refused_by_set_rule "create_runner_from_name" \
        "$(urpc $BOB manager.create_runner_from_name '{"display_name":"alice-iris"}')"
refused_by_set_rule "delete_job_by_id" "$(urpc $BOB manager.delete_job_by_id "{\"id\":\"$SA\"}")"
refused_by_set_rule "delete_job" "$(urpc $BOB manager.delete_job '{"name":"alice-iris"}')"
raw=$(urpc $BOB manager.delete_jobs "{\"job_names\":[\"$JB\",\"$JA\"]}")
check_match "delete_jobs naming one of alice's jobs among bob's is refused as a whole" \
        "\"code\":-32004,.*nothing was deleted.*\"rule\":\"set_owner_or_admin\",\"job_names\":\\[\"$JA\"\\]" "$raw"
check_eq "no set was read upstream for the refused loads" "$gets" "$(sim_count "GET /api/resources/{set_name}")"
check_eq "no deletion was sent upstream" "$deletes" "$(sim_count "POST /api/jobs/bulk-delete")"
check_match "alice's job is still there" '"deleted_at":null' "$(sim_api GET "/jobs/$JA")"
check_match "bob's job named with it is still there too" '"deleted_at":null' "$(sim_api GET "/jobs/$JB")"

R='{"runner_id":"'$RA'"'
tried=""
for call in "runner.get_status $R}" "runner.export_yaml $R}" "runner.list_results $R}" \
        "runner.download $R,\"result\":\"shuffled\",\"table\":\"iris\"}" \
        "runner.add_table $R,\"table_name\":\"iris\",\"data\":\"a\\n1\\n\"}" \
        "runner.add_link $R,\"parent_table_name\":\"iris\",\"parent_field\":\"x\",\"child_table_name\":\"iris\",\"child_field\":\"y\"}" \
        "runner.set_parameters $R,\"table_name\":\"iris\",\"k\":9}" \
        "runner.update_parameters $R,\"table_name\":\"iris\",\"k\":9}" \
        "runner.advise_parameters $R}" "runner.run $R}" "runner.wait $R,\"timeout_s\":1}" \
        "runner.delete_table $R,\"table_name\":\"iris\"}" \
        "runner.delete_link $R,\"parent_table_name\":\"iris\",\"child_table_name\":\"iris\"}" \
        "runner.delete_parameters $R,\"table_name\":\"iris\"}" \
        "runner.delete $R}" "runner.close $R}" "manager.watch_jobs $R,\"timeout_s\":1}"; do
        check_match "bob's ${call%% *} on alice's runner is refused" \
                "\"code\":-32004,\"message\":\"Runner $RA belongs to uid $ALICE; only its owner or an admin may use it\"" \
                "$(urpc $BOB "${call%% *}" "${call#* }")"
        tried="$tried ${call%% *}"
done
# every runner method of the document that names a runner was tried (a new one must be added)
for m in $(grep -o '"name":"runner\.[a-z_]*"' <<<"$(rpc rpc.discover)" | sed 's/"name":"//; s/"$//' | sort -u); do
        [ "$m" = runner.list ] && continue
        check "bob's attempts include $m" grep -qw "$m" <<<"$tried"
done
uctl $BOB runner.list
check_no_match "bob's runner.list does not show alice's runner" "$RA" "$OUT"
check_match "bob's runner.list '{\"all\":true}' needs admin" "needs the 'admin' role" \
        "$(urpc $BOB runner.list '{"all":true}')"
uctl $ALICE runner.export_yaml "$R}"
check_match "alice's runner is as she left it" "k: 2" "$OUT"
check_eq "bob's attempts changed nothing upstream" "$deletes" "$(sim_count "POST /api/jobs/bulk-delete")"

# --- the owner and an admin may ----------------------------------------------------------------------
uctl $ALICE manager.create_runner_from_id "{\"set_name\":\"$SA\"}"
check_eq "alice loads her own set into a new runner" "0" "$CTL_RC"
ctl manager.create_runner_from_id "{\"set_name\":\"$SA\"}"
check_eq "an admin loads alice's set" "0" "$CTL_RC"
refused_by_set_rule "after an admin loaded it, the set is still alice's" \
        "$(urpc $BOB manager.create_runner_from_id "{\"set_name\":\"$SA\"}")"
ctl runner.close "{\"runner_id\":\"$(runner_id_of "$OUT")\"}"

# --- sets the daemon did not create: the first operate user to load one adopts it -------------------
U1=$(sim_make_set outside-one)
U2=$(sim_make_set outside-two)
sim_make_job "$U2" standard >/dev/null
uctl $BOB manager.create_runner_from_id "{\"set_name\":\"$U1\"}"
check_eq "bob loads a set another client of the account made (nobody owned it)" "0" "$CTL_RC"
refused_by_set_rule "... and it is bob's now: alice may not load it" \
        "$(urpc $ALICE manager.create_runner_from_id "{\"set_name\":\"$U1\"}")" $BOB "$RB"
refused_by_set_rule "... nor delete its jobs" "$(urpc $ALICE manager.delete_job_by_id "{\"id\":\"$U1\"}")" $BOB "$RB"
uctl $ALICE manager.delete_job_by_id "{\"id\":\"$U2\"}"
check_eq "a set nobody owns: operate may delete its jobs" "0" "$CTL_RC"

# --- the record outlives the runner and a restart -----------------------------------------------
check_eq "alice's set is recorded as hers" "$ALICE" \
        "$(grep -o '"owner": *[0-9]*' "$STATE/sets/$SA.json" | grep -o '[0-9]*$')"
check_eq "the record is mode 0600" "600" "$(stat -c '%a' "$STATE/sets/$SA.json")"
uctl $ALICE runner.close "$R}"
check_eq "alice closes her runner" "0" "$CTL_RC"
stop_daemon
start_daemon || { fail "avatard restarts"; finish; exit $?; }
refused_by_set_rule "after alice closed her runner and a restart, her set is still hers" \
        "$(urpc $BOB manager.create_runner_from_id "{\"set_name\":\"$SA\"}")"
refused_by_set_rule "... by display name too" \
        "$(urpc $BOB manager.create_runner_from_name '{"display_name":"alice-iris"}')"

# --- state from before the daemon kept owners: each runner's sets are its owner's ----------------------
stop_daemon
rm -rf "$STATE/sets"
start_daemon || { fail "avatard starts without set records"; finish; exit $?; }
check "bob's set is recorded again, from his runner" grep -q "\"owner\": *$BOB" "$STATE/sets/$SB.json"
refused_by_set_rule "alice may not load bob's set restored from his runner" \
        "$(urpc $ALICE manager.create_runner_from_id "{\"set_name\":\"$SB\"}")" $BOB "$RB"

# --- a record that cannot be read leaves the set to admins -----------------------------------------
stop_daemon
printf '{"set_name": "%s", "owner": ' "$SB" >"$STATE/sets/$SB.json"
start_daemon || { fail "avatard starts with a damaged set record"; finish; exit $?; }
check_match "the damaged record is reported" '"damaged_files":\["'"$SB"'\.json\.damaged-' \
        "$("$AVATARCTL" --json call daemon.status 2>&1)"
check_match "its set is refused even to bob, whose runner made it" '"code":-32004' \
        "$(urpc $BOB manager.create_runner_from_id "{\"set_name\":\"$SB\"}")"
ctl manager.create_runner_from_id "{\"set_name\":\"$SB\"}"
check_eq "an admin may still load it" "0" "$CTL_RC"
uctl $BOB runner.get_status "{\"runner_id\":\"$RB\"}"
check_eq "bob's runner itself is still his" "0" "$CTL_RC"

# --- the owner deletes her jobs ------------------------------------------------------------------
uctl $ALICE manager.delete_jobs "{\"job_names\":[\"$JA\"]}"
check_match "alice deletes her job by name" "\"deleted_jobs\":\\[\\{[^]]*\"name\":\"$JA\"" "$OUT"
check_no_sanitizer_reports
finish
