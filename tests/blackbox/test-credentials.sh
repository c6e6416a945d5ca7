#!/usr/bin/env bash
# Black-box tests of the credential operations against avatar-sim: API keys (create, store and
# switch, list, revoke), the legacy login with its deprecation warning and token refresh, and
# the password flows.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"

ALICE_OLD="pw-alice-$$-old"
ALICE_NEW="pw-alice-$$-new"
start_sim --api-key "$SIM_KEY" --user "alice:$ALICE_OLD" --job-step-ms 0 ||
        { fail "avatar-sim starts"; finish; exit $?; }
cat > "$CONF" <<EOF
log_level: debug
upstream:
  base_url: $SIM_URL
  timeout_s: $(scaled 60)
cache:
  jobs_ttl_s: 0
EOF
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts with an API key"

# jobs_401s: how many GET /jobs answers the daemon has taken as 401 (daemon.status counts an
# answer as it hands it on, before the request waits for the refresh).
jobs_401s() {
        local n
        n=$("$AVATARCTL" --json --timeout "$(scaled 30)" status 2>/dev/null |
                grep -o '"GET /jobs":{[^}]*}' | head -n 1 | grep -o '"401":[0-9]*' | cut -d: -f2)
        echo "${n:-0}"
}
# jobs_401s_at_least N: for wait_until.
jobs_401s_at_least() {
        [ "$(jobs_401s)" -ge "$1" ]
}

# last_auth ROUTE: the "auth" of the last logged request of ROUTE.
last_auth() {
        sim_requests "$1" | tail -n 1 | grep -o '"auth":"[^"]*"' | sed 's/"auth":"//; s/"$//'
}

# --- authenticate is refused while an API key is in use ----------------------------------------
ctl manager.authenticate "{\"username\":\"alice\",\"password\":\"$ALICE_OLD\"}"
check_eq "authenticate with an API key in use exits 9 (conflict)" "9" "$CTL_RC"
raw=$(rpc manager.authenticate "{\"username\":\"alice\",\"password\":\"$ALICE_OLD\"}")
check_match "authenticate with an API key in use: class conflict (-32009)" '"code":-32009.*"name":"conflict"' "$raw"
check_match "the refusal says an API key is already in use, and from where" \
        '"message":"[^"]*already uses an API key.*"credential_source":"AVATAR_API_KEY"' "$raw"
check_eq "no login request went upstream" "0" "$(sim_count "POST /api/login")"

# --- API keys ------------------------------------------------------------------------------------
ctl manager.list_api_keys
check_eq "list_api_keys succeeds" "0" "$CTL_RC"
check_match "list_api_keys lists the key in use" '"api_keys":\[\{"id":"[0-9a-f-]{36}","name":"avatar-sim command line"' "$OUT"
OLD_ID=$(json_str id "$OUT")

ctl manager.create_api_key '{"name":"bb-plain","expiration_days":30}'
check_eq "create_api_key without store succeeds" "0" "$CTL_RC"
check_match "without store the key is not stored" '"stored":false' "$OUT"
check_match "without store the plaintext is returned (once)" '"plaintext":"avk-[^"]+"' "$OUT"
check_match "the result has the key's name and expiry" '"name":"bb-plain".*"expires_at":"20' "$OUT"
PLAIN=$(json_str plaintext "$OUT")
check_eq "the returned plaintext is a working key" "200" \
        "$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: api-key-v1 $PLAIN" "$SIM_URL/api/users/me")"
check "without store nothing is written to the state directory" test ! -e "$STATE/api-key"
check_match "without store the daemon keeps its credential" '"credential":\{"kind":"api-key","source":"AVATAR_API_KEY"\}' \
        "$("$AVATARCTL" --json status)"
ctl manager.list_api_keys
check_no_match "list_api_keys never shows a plaintext" 'plaintext' "$OUT"
check_match "list_api_keys shows the new key" '"name":"bb-plain"' "$OUT"

n=$(sim_count "POST /api/api-keys")
ctl manager.create_api_key '{"name":"bb-bad","expiration_days":31}'
check_eq "expiration_days outside {30, 60, 120, 365, 3650} is invalid params" "2" "$CTL_RC"
check_eq "an invalid create_api_key sends nothing" "$n" "$(sim_count "POST /api/api-keys")"

ctl manager.create_api_key '{"name":"bb-stored","expiration_days":365,"store":true}'
check_eq "create_api_key with store: true succeeds" "0" "$CTL_RC"
check_match "store: true says it was stored" '"stored":true' "$OUT"
check_no_match "store: true does not return the plaintext" '"plaintext":|avk-' "$OUT"
stored_reply=$OUT
check "the key is kept as STATE/api-key" test -f "$STATE/api-key"
check_eq "STATE/api-key has mode 0600" "600" "$(stat -c '%a' "$STATE/api-key" 2>/dev/null)"
STORED=$(tr -d '\n' <"$STATE/api-key" 2>/dev/null)
check_no_match "the stored key is not in the reply" "$STORED" "$stored_reply"
check_eq "the stored key works upstream" "200" \
        "$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: api-key-v1 $STORED" "$SIM_URL/api/users/me")"
check_match "daemon.status: upstream.credential.source says state directory" \
        '"credential":\{"kind":"api-key","source":"state directory"\}' "$("$AVATARCTL" --json status)"

ctl manager.revoke_api_key "{\"api_key_id\":\"$OLD_ID\"}"
check_eq "revoke_api_key of the old key succeeds" "0" "$CTL_RC"
check_match "revoke_api_key says so" "\"revoked\":true,\"api_key_id\":\"$OLD_ID\"" "$OUT"
check_match "the server's answer shows revoked_at" '"revoked_at":"20' "$OUT"
check_eq "the old key is refused upstream now" "401" \
        "$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: api-key-v1 $SIM_KEY" "$SIM_URL/api/users/me")"
ctl manager.get_jobs '{"limit":1}'
check_eq "calls still work after the old key was revoked (switched without a restart)" "0" "$CTL_RC"
check_eq "they authenticate with an API key" "api-key" "$(last_auth "GET /api/jobs")"
ctl manager.revoke_api_key '{"api_key_id":"not-a-uuid"}'
check_eq "revoke_api_key checks the id is a UUID" "2" "$CTL_RC"
ctl manager.revoke_api_key '{"api_key_id":"00000000-0000-4000-8000-000000000000"}'
check_eq "revoke_api_key of an unknown key exits 6 (not found)" "6" "$CTL_RC"

stop_daemon
start_daemon || fail "avatard restarts"
check_match "after a restart the stored key wins over AVATAR_API_KEY" \
        '"credential":\{"kind":"api-key","source":"state directory"\}' "$("$AVATARCTL" --json status)"
ctl manager.get_health
check_eq "after a restart calls work with the stored key" "0" "$CTL_RC"
stop_daemon

# --- no key: the legacy login ---------------------------------------------------------------------
rm -f "$STATE/api-key"
unset AVATAR_API_KEY
start_daemon || fail "avatard starts without a key"
check_match "daemon.status: no credential" '"credential":\{"kind":"none"' "$("$AVATARCTL" --json status)"
ctl manager.get_jobs
check_eq "without a credential, get_jobs exits 7" "7" "$CTL_RC"
check_match "without a credential: not_authenticated (-32012)" '"code":-32012.*"name":"not_authenticated"' \
        "$(rpc manager.get_jobs)"

ctl manager.forgotten_password '{"email":"alice@avatar-sim.local"}'
check_eq "forgotten_password succeeds" "0" "$CTL_RC"
check_match "forgotten_password says the mail was asked for" '"sent":true' "$OUT"
check_eq "forgotten_password: one upstream request" "1" "$(sim_count "POST /api/login/forgotten_password")"
ctl manager.forgotten_password '{"email":"x"}'
check_eq "forgotten_password checks the email's length" "2" "$CTL_RC"

ctl manager.reset_password "{\"email\":\"alice@avatar-sim.local\",\"new_password\":\"$ALICE_NEW\",\"new_password_repeated\":\"$ALICE_NEW\",\"token\":\"not-a-uuid\"}"
check_eq "reset_password with a token that is not a UUID is invalid params" "2" "$CTL_RC"
raw=$(rpc manager.reset_password "{\"email\":\"alice@avatar-sim.local\",\"new_password\":\"$ALICE_NEW\",\"new_password_repeated\":\"$ALICE_NEW\",\"token\":\"1234\"}")
check_match "the refusal names the token param" '"code":-32602.*"param":"token"' "$raw"
check_eq "a token that is not a UUID never reaches upstream" "0" "$(sim_count "POST /api/login/reset_password")"
ctl manager.reset_password "{\"email\":\"alice@avatar-sim.local\",\"new_password\":\"$ALICE_NEW\",\"new_password_repeated\":\"$ALICE_NEW\",\"token\":\"6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b\"}"
check_eq "reset_password with a UUID token succeeds" "0" "$CTL_RC"
check_match "reset_password says so" '"reset":true' "$OUT"
check_eq "reset_password: one upstream request" "1" "$(sim_count "POST /api/login/reset_password")"

ctl manager.authenticate "{\"username\":\"alice\",\"password\":\"$ALICE_OLD\"}"
check_eq "the old password is refused (exit 7)" "7" "$CTL_RC"
check_match "a refused login is credential_rejected with the server's message" \
        '"code":-32002.*"message":"Incorrect username or password"' \
        "$(rpc manager.authenticate "{\"username\":\"alice\",\"password\":\"$ALICE_OLD\"}")"
ctl manager.authenticate "{\"username\":\"alice\",\"password\":\"$ALICE_NEW\"}"
check_eq "authenticate with the new password succeeds" "0" "$CTL_RC"
check_match "authenticate says who is logged in" '"authenticated":true,"username":"alice"' "$OUT"
check_match "the result carries the deprecation warning" '"warning":"Username/password authentication is deprecated' "$OUT"
check_match "the warning gives the steps to create an API key" \
        'manager\.create_api_key \{\\"name\\": \\"my-key\\", \\"expiration_days\\": 365, \\"store\\": true\}' "$OUT"
check_match "the warning says where the key is then kept" 'state directory' "$OUT"
check_match "daemon.status: a login session for alice" '"credential":\{"kind":"login","source":"login as alice"\}' \
        "$("$AVATARCTL" --json status)"
ctl manager.get_jobs '{"limit":1}'
check_eq "calls work with the session" "0" "$CTL_RC"
check_eq "they carry the session's bearer token" "bearer" "$(last_auth "GET /api/jobs")"

n=$(sim_requests "GET /api/jobs" | wc -l)
sim_control expire-tokens '{}' >/dev/null
ctl manager.get_jobs '{"limit":2}'
check_eq "with an expired token the call still succeeds" "0" "$CTL_RC"
check_eq "the token was refreshed once (POST /api/refresh)" "1" "$(sim_count "POST /api/refresh")"
check_eq "the call was replayed after the refresh" "401 200" \
        "$(sim_requests "GET /api/jobs" | tail -n +$((n + 1)) | grep -o '"status":[0-9]*' | sed 's/.*://' | tr '\n' ' ' | sed 's/ $//')"
check_match "daemon.status counts the refresh" '"token_refreshes":1' "$("$AVATARCTL" --json status)"
ctl manager.get_jobs '{"limit":3}'
check_eq "the refreshed session goes on working without another refresh" "1" "$(sim_count "POST /api/refresh")"

# many calls meeting the expired token at once share one refresh. The simulator holds the ten
# requests until all have arrived, so that it answers every one with a 401 before the refresh
# can reach it (the daemon sends that only once a 401 came back); it then holds the refresh
# until the daemon has taken all ten 401s, so none comes back after the session was renewed.
sim_control expire-tokens '{}' >/dev/null
sim_hold "GET /api/jobs" 10
sim_hold "POST /api/refresh" 1
n401=$(sim_requests "GET /api/jobs" | grep -c '"status":401')
d401=$(jobs_401s)
pids=()
for i in $(seq 1 10); do
        "$AVATARCTL" --json --timeout "$(scaled 30)" call manager.get_jobs "{\"limit\":$((100 + i))}" >"$TMP/refresh.$i" 2>&1 &
        pids+=($!)
done
check "the 10 requests wait at the simulator" wait_until 30 sim_held 10
check_eq "they go on together" "10" "$(sim_release "GET /api/jobs")"
check "the daemon took the ten 401s" wait_until 30 jobs_401s_at_least "$((d401 + 10))"
check "the refresh waits at the simulator meanwhile" wait_until 30 sim_held 1
check_eq "the refresh goes on" "1" "$(sim_release "POST /api/refresh")"
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
check_eq "10 concurrent calls with an expired token all succeed" "0" "$failed"
check_eq "they shared a single refresh" "2" "$(sim_count "POST /api/refresh")"
check_eq "all of them met the expired token (401) before it was refreshed" \
        "10" "$(($(sim_requests "GET /api/jobs" | grep -c '"status":401') - n401))"

sim_control expire-tokens '{"refresh":true}' >/dev/null
raw=$(rpc manager.get_jobs '{"limit":4}')
check_match "when the refresh token expired too, the call fails as credential_rejected" \
        '"code":-32002,"message":"The login session expired and could not be refreshed' "$raw"
ctl manager.authenticate "{\"username\":\"alice\",\"password\":\"$ALICE_NEW\"}"
check_eq "logging in again works" "0" "$CTL_RC"

# create_api_key with store: true while logged in switches the daemon to the key
ctl manager.create_api_key '{"name":"bb-from-login","expiration_days":60,"store":true}'
check_eq "create_api_key with store: true from a login session succeeds" "0" "$CTL_RC"
check_eq "the key is stored with mode 0600" "600" "$(stat -c '%a' "$STATE/api-key" 2>/dev/null)"
ctl manager.get_jobs '{"limit":5}'
check_eq "the daemon now calls with the API key instead of the session" "api-key" "$(last_auth "GET /api/jobs")"
ctl manager.authenticate "{\"username\":\"alice\",\"password\":\"$ALICE_NEW\"}"
check_eq "authenticate is refused once the stored key is in use" "9" "$CTL_RC"
check_no_match "the passwords never reach the daemon's log" "$ALICE_OLD|$ALICE_NEW" "$(cat "$DAEMON_LOG")"

check_no_sanitizer_reports
finish
