#!/usr/bin/env bash
# avatarctl when something is wrong (issue 16, problems 3 and 6): health fails, with the
# reason and the documented exit code, while the Avatar server is unreachable (the daemon's
# stale answer is accepted only with --stale-ok) or says this client is incompatible; errors
# name the command that failed, speak of commands rather than RPC methods, and say what to do
# next; a socket the user may not use names the group and the command that joins it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"
. "$(dirname "$0")/cli-fixtures.sh"

cli_start || { fail "avatard and avatar-sim start"; finish; exit $?; }
export NO_COLOR=1 TZ=UTC
cd "$TMP" || exit 1
cp "$IRIS" iris.csv

# --- 3. health --------------------------------------------------------------------------------------
run_ctl health
check_eq "health of a reachable, compatible server: exit 0" "0" "$RC"
check_match "... its answer" "^Message: ok$" "$OUT"

stop_sim
# health_fails: health exits 7 (the cache's second is over and the server does not answer)
health_fails() {
        run_ctl health
        [ "$RC" = 7 ]
}
check "health of an unreachable server exits 7 (upstream)" wait_until 30 health_fails
run_ctl health
check_match "... with the reason" "avatarctl: health: the Avatar server is unreachable: this is the daemon's last answer, [0-9]+ s old \\(upstream_unreachable\\)" "$ERR"
check_match "... and what to do" "hint: 'avatarctl health --stale-ok' accepts it" "$ERR"
check_match "... the last answer is still shown" "^Message: ok$" "$OUT"
check_match "... marked stale" "^\\(stale, [0-9]+ s old\\)$" "$OUT"
run_ctl health --stale-ok
check_eq "health --stale-ok accepts the daemon's last answer: exit 0" "0" "$RC"
run_ctl --json health
check_eq "health --json of an unreachable server: exit 7 as well" "7" "$RC"
check_match "... the data says stale" '"stale":true' "$OUT"

start_sim --api-key "$SIM_KEY" --job-step-ms 50 --port "$SIM_PORT" || fail "avatar-sim starts again"
health_ok() {
        run_ctl health
        [ "$RC" = 0 ]
}
check "health is 0 again once the server answers" wait_until 30 health_ok
sim_control compat '{"status":"incompatible","message":"Client too old for bb","most_recent_compatible_client":"9.8.7"}' >/dev/null
run_ctl compat --refresh
check_eq "compat --refresh of an incompatible client: exit 7" "7" "$RC"
run_ctl health
check_eq "health while the server says this client is incompatible: exit 7" "7" "$RC"
check_match "... with the server's message" "avatarctl: health: compat: .*Client too old for bb.* \\(incompatible\\)" "$ERR"
check_match "... and what to do" "hint: 'avatarctl compat --refresh' asks the server again" "$ERR"
sim_control compat '{"status":"compatible"}' >/dev/null
run_ctl compat --refresh
check_eq "compatible again" "0" "$RC"

# --- 6. errors: the command, not the method; what to do next ----------------------------------------
"$AVATARCTL" runner create errors >/dev/null 2>&1
run_ctl runner set-parameters errors iris --k 5
check_eq "set-parameters of a table not added yet: exit 2" "2" "$RC"
check_match "the error names the command" "^avatarctl: runner set-parameters: " "$ERR"
check_match "... and speaks of the command to run, not of the method" "'avatarctl runner add-table'" "$ERR"
check_no_match "... no RPC method in it" "runner\\.add_table|runner\\.set_parameters|manager\\." "$ERR"
check_match "... then the next step" "^hint: see 'avatarctl help runner set-parameters'$" "$ERR"
run_ctl runner status nobody
check_eq "a runner that does not exist: exit 6" "6" "$RC"
check_match "... says what was looked for" "avatarctl: runner status: no runner 'nobody'" "$ERR"
check_match "... and where to look" "hint: see your runners with 'avatarctl runner list'" "$ERR"
run_ctl runner download errors report -o r.pdf
check_match "a download before any run: the command, the class" "^avatarctl: runner download: .*\\((invalid_state|not_found|conflict)\\)" "$ERR"
check "... and the file made for it is removed" test ! -e r.pdf
run_ctl avatarize iris.csv --name steps --jobs nothing
check_eq "a usage error: exit 2" "2" "$RC"
check_match "... phrased with the option" "avatarize: --jobs: expected standard, signal_metrics, privacy_metrics or report, got 'nothing'" "$ERR"
run_ctl login alice
check_match "login while the daemon uses an API key: the command" "^avatarctl: login: " "$ERR"
check_no_match "... not the method" "manager\\.authenticate" "$ERR"

# a socket the user may not use: the group, and the command that joins it
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
        out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$AVATARCTL" status 2>&1); rc=$?
else
        stop_daemon
        start_daemon --set socket_mode=0000 || fail "avatard starts with socket_mode 0000"
        out=$("$AVATARCTL" status 2>&1); rc=$?
fi
check_eq "permission denied on the socket: exit 5" "5" "$rc"
check_match "... names the group and the command that joins it" \
        "only root and members of the 'avatar' group may use avatard: join it with 'sudo usermod -aG avatar \\\$USER' and log in again" "$out"

finish
