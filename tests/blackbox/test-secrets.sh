#!/usr/bin/env bash
# Black-box tests of secret hygiene: a unique canary API key, given through AVATAR_API_KEY,
# upstream.api_key_file and $CREDENTIALS_DIRECTORY/api-key, must appear in no reply (success
# or failure), not in the daemon's debug log, the state directory or the process's environment;
# a key file others can read is refused at start; the process is not dumpable.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"

STAMP="$(date +%s%N)"
CANARY="canary-$STAMP-XYZ"          # known to the simulator: calls succeed
CANARY_FILE="canary-$STAMP-FILE"    # unknown to the simulator: every call gets a 401
CANARY_CRED="canary-$STAMP-CRED"    # known to the simulator
REPLIES="$TMP/replies.txt"
: >"$REPLIES"

SIM_KEY="$CANARY"
start_sim --api-key "$CANARY" --api-key "$CANARY_CRED" --job-step-ms 0 ||
        { fail "avatar-sim starts"; finish; exit $?; }
S=$(sim_make_set secrets)
J=$(sim_make_job "$S" standard)

write_conf() { # [EXTRA-UPSTREAM-LINE]
        cat > "$CONF" <<EOF
log_level: debug
upstream:
  base_url: $SIM_URL
  max_attempts: 2
  retry_base_ms: 20
  retry_max_ms: 50
  rate_limit_retries: 0
${1:-}
cache:
  jobs_ttl_s: 0
  health_ttl_s: 0
EOF
}

# record METHOD [PARAMS]: calls through avatarctl and through the raw socket, keeping both
# replies (and avatarctl's error output) for the search.
record() {
        ctl "$@"
        printf '%s\n' "$OUT" >>"$REPLIES"
        rpc "$@" >>"$REPLIES"
}

# exercise: every Manager method, with successes and failures of every kind.
exercise() {
        record daemon.status
        record manager.get_health
        record manager.verify_compatibility
        record manager.verify_compatibility '{"refresh":true}'
        record manager.authenticate '{"username":"bob","password":"pw"}'
        record manager.forgotten_password '{"email":"bob@avatar-sim.local"}'
        record manager.reset_password '{"email":"bob@avatar-sim.local","new_password":"a","new_password_repeated":"a","token":"bad"}'
        record manager.reset_password '{"email":"bob@avatar-sim.local","new_password":"a","new_password_repeated":"a","token":"6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b"}'
        record manager.create_api_key '{"name":"secrets-test","expiration_days":30}'
        record manager.create_api_key '{"name":"secrets-test","expiration_days":7}'
        record manager.list_api_keys
        record manager.revoke_api_key '{"api_key_id":"not-a-uuid"}'
        record manager.revoke_api_key '{"api_key_id":"00000000-0000-4000-8000-000000000000"}'
        record manager.get_jobs
        record manager.get_jobs "{\"display_name\":\"secrets\",\"set_name\":\"$S\"}"
        record manager.get_jobs '{"kind":["bogus"]}'
        record manager.get_job "{\"name\":\"$J\"}"
        record manager.get_job '{"name":"no-such-job"}'
        record manager.get_last_jobs '{"count":3}'
        record manager.get_last_results '{"count":3}'
        record manager.find_ids_by_name '{"set_name":"secrets"}'
        record manager.delete_job '{"name":"no-such-name"}'
        record manager.delete_job_by_id '{"id":"00000000-0000-4000-8000-000000000001"}'
        record manager.delete_jobs '{"job_names":["no-such-job"]}'
        record manager.no_such_method
        # upstream failures: HTTP errors, 401, 429, dropped connections, broken bodies
        sim_fault '{"route":"GET /api/jobs","status":500}'
        record manager.get_jobs '{"limit":1}'
        sim_fault '{"route":"GET /api/health","status":401}'
        record manager.get_health
        sim_fault '{"route":"POST /api/jobs/bulk-delete","status":401}'
        record manager.delete_jobs '{"job_names":["x"]}'
        sim_fault '{"route":"GET /api/api-keys","retry_after_s":1}'
        record manager.list_api_keys
        sim_fault '{"route":"GET /api/jobs/{name}","drop":true}'
        record manager.get_job '{"name":"dropped"}'
        sim_fault '{"route":"GET /api/results/{job}","body":"invalid"}'
        record manager.get_last_results
        curl -sS -X DELETE "$SIM_URL/_sim/faults" >/dev/null
        sim_control compat '{"status":"incompatible","message":"no"}' >/dev/null
        record manager.verify_compatibility '{"refresh":true}'
        record manager.get_jobs '{"limit":2}'
        sim_control compat '{"status":"compatible"}' >/dev/null
        record manager.verify_compatibility '{"refresh":true}'
}

# check_absent WHAT: the canary (or its unique part) is nowhere in the replies, the log,
# the state directory, the process's environment and command line.
check_absent() {
        local what="$1" key="$2" pid="$DAEMON_PID"
        check_no_match "$what: the key is in no reply" "$key|$STAMP" "$(cat "$REPLIES")"
        check_no_match "$what: the key is not in the daemon's debug log" "$key|$STAMP" "$(cat "$DAEMON_LOG")"
        check_eq "$what: the key is nowhere in the state directory" "" "$(grep -rl -e "$key" -e "$STAMP" "$STATE" 2>/dev/null)"
        if [ -n "$AVATARD_WRAPPER" ]; then
                # under valgrind /proc/PID/environ shows the tool's own copy of the initial
                # environment, which the daemon never sees: only the native runs can check it
                echo "# $what: /proc/PID/environ not checked under $AVATARD_WRAPPER"
        elif [ -r "/proc/$pid/environ" ]; then
                check_no_match "$what: the key is not in /proc/PID/environ" "$key|$STAMP" "$(tr '\0' '\n' <"/proc/$pid/environ")"
                check_no_match "$what: the key is not in /proc/PID/cmdline" "$key|$STAMP" "$(tr '\0' '\n' <"/proc/$pid/cmdline")"
        else
                fail "$what: /proc/$pid/environ is readable by root"
        fi
}

# --- AVATAR_API_KEY ---------------------------------------------------------------------------------
write_conf
export AVATAR_API_KEY="$CANARY"
start_daemon || { fail "avatard starts with AVATAR_API_KEY"; finish; exit $?; }
unset AVATAR_API_KEY
check_match "the key from AVATAR_API_KEY is in use" '"credential":\{"kind":"api-key","source":"AVATAR_API_KEY"\}' \
        "$("$AVATARCTL" --json status)"
ctl manager.get_jobs
check_eq "calls work with the key from AVATAR_API_KEY" "0" "$CTL_RC"
exercise
check_match "the exercise met an upstream 401" '"name":"credential_rejected"' "$(cat "$REPLIES")"
check_match "the exercise met an upstream 500" '"status":500' "$(cat "$REPLIES")"
check_match "the exercise met invalid params" '"code":-32602' "$(cat "$REPLIES")"
check_absent "AVATAR_API_KEY" "$CANARY"
ctl daemon.reload
check_eq "daemon.reload works with the key from AVATAR_API_KEY" "0" "$CTL_RC"
check_match "after the reload the key is still in use" '"credential":\{"kind":"api-key","source":"AVATAR_API_KEY"\}' \
        "$("$AVATARCTL" --json status)"
# reloaded_or_rejected N: whether daemon.status counts N reloads, or a rejected one
reloaded_or_rejected() {
        status_at_least reloads "$1" || status_at_least failures 1
}
reloads=$(status_num reloads)
kill -HUP "$DAEMON_PID"
check "the SIGHUP reload is done" wait_until 10 reloaded_or_rejected "$((reloads + 1))"
ctl manager.get_jobs '{"limit":1}'
check_eq "after SIGHUP calls still work" "0" "$CTL_RC"
check_match "SIGHUP was not rejected" '"failures":0' "$("$AVATARCTL" --json status)"
check_absent "AVATAR_API_KEY after reloads" "$CANARY"
stop_daemon

# --- the process is not dumpable (seen when it runs as another user) ------------------------------------
if command -v setpriv >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        mkdir -p "$TMP/nobody/state"
        chown -R nobody "$TMP/nobody"
        chmod 0644 "$CONF"
        AVATAR_API_KEY="$CANARY" setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups \
                "$AVATARD" --config "$CONF" --socket "$TMP/nobody/avatard.sock" \
                --state-directory "$TMP/nobody/state" >>"$DAEMON_LOG" 2>&1 &
        nb_pid=$!
        wait_for test -S "$TMP/nobody/avatard.sock"
        check_eq "a daemon running as nobody has its /proc files owned by root (not dumpable)" "root" \
                "$(stat -c '%U' "/proc/$nb_pid/environ" 2>/dev/null)"
        check_no_match "its environment does not hold the key" "$CANARY|$STAMP" "$(tr '\0' '\n' <"/proc/$nb_pid/environ")"
        kill -TERM "$nb_pid"
        wait "$nb_pid" 2>/dev/null
else
        echo "# not root or no setpriv: the dumpable flag is not observable"
fi

# --- upstream.api_key_file ------------------------------------------------------------------------------
printf '%s\n' "$CANARY_FILE" >"$TMP/api-key-file"
chmod 0644 "$TMP/api-key-file"
write_conf "  api_key_file: $TMP/api-key-file"
out=$(timeout "$(scaled 10)" "$AVATARD" --config "$CONF" --socket "$SOCK" --state-directory "$STATE" 2>&1); rc=$?
check_eq "a key file readable by others is refused at start (exit 78)" "78" "$rc"
check_match "the refusal names the file and its mode" "key file '$TMP/api-key-file' is readable by group or others \\(mode 0644\\)" "$out"
check_match "the refusal says how to fix it" 'chmod 0600' "$out"
check_no_match "the refusal does not show the key" "$CANARY_FILE|$STAMP" "$out"
check "no socket is left behind by the refused start" test ! -e "$SOCK"
out=$("$AVATARD" --check-config --config "$CONF" 2>&1); rc=$?
check_eq "--check-config refuses it too" "78" "$rc"
check_no_match "--check-config does not show the key either" "$CANARY_FILE|$STAMP" "$out"
chmod 0600 "$TMP/api-key-file"
: >"$REPLIES"
start_daemon || { fail "avatard starts with a mode-0600 key file"; finish; exit $?; }
pass "a mode-0600 key file is accepted"
check_match "the key file's key is in use" "\"credential\":\\{\"kind\":\"api-key\",\"source\":\"api_key_file $TMP/api-key-file\"\\}" \
        "$("$AVATARCTL" --json status)"
ctl manager.get_jobs
check_eq "a key the server does not know: calls fail (exit 7)" "7" "$CTL_RC"
check_match "a key the server does not know: credential_rejected" '"code":-32002.*"name":"credential_rejected"' \
        "$(rpc manager.get_jobs)"
exercise
check_absent "api_key_file" "$CANARY_FILE"
stop_daemon

# --- $CREDENTIALS_DIRECTORY/api-key -------------------------------------------------------------------------
mkdir -p "$TMP/creds"
printf '%s\n' "$CANARY_CRED" >"$TMP/creds/api-key"
chmod 0400 "$TMP/creds/api-key"
write_conf
export CREDENTIALS_DIRECTORY="$TMP/creds"
: >"$REPLIES"
start_daemon || { fail "avatard starts with a systemd credential"; finish; exit $?; }
unset CREDENTIALS_DIRECTORY
check_match "the systemd credential is in use" '"credential":\{"kind":"api-key","source":"systemd credential api-key"\}' \
        "$("$AVATARCTL" --json status)"
ctl manager.get_jobs
check_eq "calls work with the systemd credential" "0" "$CTL_RC"
exercise
check_absent "CREDENTIALS_DIRECTORY" "$CANARY_CRED"

check_no_sanitizer_reports
finish
