#!/usr/bin/env bash
# Black-box tests of the daemon's tolerance for what servers of either generation send or
# expect: the User-Agent the compatibility check reads (default, override, the error naming
# it), get_health without a credential or a compatible answer, the refresh method remembered,
# job lists the server did not filter or pages, and the storage SigV4 region.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

ALICE_PW="pw-alice-$$"
WIRE="$TMP/wire.jsonl"
UA_DEFAULT='avatar-python/1\.20\.0 avatard/[0-9]+\.[0-9.]+'

# write_conf [EXTRA-UPSTREAM-LINES]: the configuration, with more upstream keys.
write_conf() {
        cat >"$CONF" <<EOF
log_level: debug
upstream:
  base_url: $SIM_URL
  timeout_s: $(scaled 60)
${1:-}
cache:
  jobs_ttl_s: 0
  health_ttl_s: 0
EOF
}

# sim_stat KEY: a string member of /_sim/stats.
sim_stat() {
        json_str "$1" "$(sim_control stats)"
}

# last_ua ROUTE: the User-Agent of the last logged request of ROUTE.
last_ua() {
        json_str user_agent "$(sim_requests "$1" | tail -n 1)"
}

# restart_daemon: stops the daemon and starts it again with $CONF.
restart_daemon() {
        stop_daemon
        start_daemon
}

# ============================ the current generation ============================================
start_sim --api-key "$SIM_KEY" --user "alice:$ALICE_PW" --job-step-ms 0 --wire-log "$WIRE" ||
        { fail "avatar-sim starts"; finish; exit $?; }
write_conf "  storage_region: eu-west-3"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against the current generation"

# --- the default User-Agent leads with the published client's --------------------------------------
ctl manager.get_jobs
check_eq "get_jobs succeeds" "0" "$CTL_RC"
check_match "/check_client got avatar-python/<N> avatard/<v>" "^$UA_DEFAULT\$" "$(sim_stat last_check_client_user_agent)"
check_match "every request carries it" "^$UA_DEFAULT\$" "$(last_ua "GET /api/jobs")"
ctl manager.verify_compatibility
check_match "verify_compatibility shows the User-Agent sent" "\"user_agent\":\"$UA_DEFAULT\"" "$OUT"

# --- the storage region signs the storage requests -------------------------------------------------
R=$(new_iris_runner region)
check "the table went to the storage" test -s "$WIRE"
check_match "storage requests are signed for upstream.storage_region" 'Credential=[^/",]+/[0-9]{8}/eu-west-3/s3/aws4_request' \
        "$(cat "$WIRE")"
check_no_match "and never for the default region" '/us-east-1/s3/aws4_request' "$(cat "$WIRE")"
[ -n "$R" ] || fail "a runner was created"

# --- job lists: filtered again by the daemon, pages followed --------------------------------------
J1='{"name":"j-1","set_name":"11111111-1111-4111-8111-111111111111","parameters_name":"standard","display_name":"one","created_at":"2026-05-01 09:00:00+00:00","kind":"standard","status":"finished"}'
J2='{"name":"j-2","set_name":"22222222-2222-4222-8222-222222222222","parameters_name":"standard","display_name":"two","created_at":"2026-05-02T09:00:00+00:00","kind":"standard","status":"finished"}'
J3='{"name":"j-3","set_name":"11111111-1111-4111-8111-111111111111","parameters_name":"report","display_name":"one","created_at":"2026-05-03 09:00:00+00:00","kind":"report","status":"finished"}'
# a server that ignores set_name answers every job
sim_fault "{\"route\":\"GET /api/jobs\",\"status\":200,\"response\":{\"jobs\":[$J1,$J2,$J3]},\"count\":1}"
ctl manager.get_jobs '{"set_name":"11111111-1111-4111-8111-111111111111"}'
check_eq "get_jobs by set_name succeeds" "0" "$CTL_RC"
check_match "get_jobs keeps the jobs of the set" '"name":"j-1".*"name":"j-3"' "$OUT"
check_no_match "and drops another set's job that the server sent" '"name":"j-2"' "$OUT"

# a server that pages /jobs: the pages are followed and merged
before=$(sim_count "GET /api/jobs")
sim_fault "{\"route\":\"GET /api/jobs\",\"status\":200,\"response\":{\"jobs\":[$J1],\"next\":\"/jobs?cursor=b\"},\"count\":1}"
sim_fault "{\"route\":\"GET /api/jobs\",\"status\":200,\"response\":{\"jobs\":[$J2],\"page\":2,\"pages\":3},\"count\":1}"
sim_fault "{\"route\":\"GET /api/jobs\",\"status\":200,\"response\":{\"jobs\":[$J3],\"page\":3,\"pages\":3},\"count\":1}"
ctl manager.get_last_jobs '{"count":10}'
check_eq "get_last_jobs over a paged list succeeds" "0" "$CTL_RC"
check_match "every page's jobs are there, newest first (either timestamp form)" '"j-3":\{.*"j-2":\{.*"j-1":\{' "$OUT"
check_eq "three pages were asked for" "$((before + 3))" "$(sim_count "GET /api/jobs")"
check_match "the second page is the server's next link" '"query":"cursor=b"' "$(sim_requests "GET /api/jobs" | tail -n 2 | head -n 1)"
check_match "the third page is page=3" 'page=3' "$(sim_requests "GET /api/jobs" | tail -n 1)"

# a next link to another origin is refused (it would get the credential)
sim_fault "{\"route\":\"GET /api/jobs\",\"status\":200,\"response\":{\"jobs\":[$J1],\"next\":\"http://198.51.100.7/api/jobs?page=2\"},\"count\":1}"
raw=$(rpc manager.get_jobs)
check_match "a next page elsewhere: upstream_bad_response naming why" \
        '"code":-32017,"message":"GET /jobs: the next page is not under the API root".*"name":"upstream_bad_response"' "$raw"
curl -sS -X DELETE "$SIM_URL/_sim/faults" >/dev/null

# --- get_health: no gate, no credential -----------------------------------------------------------
sim_control compat '{"status":"unknown","message":"Unknown client version","most_recent_compatible_client":"1.29.0"}' >/dev/null
raw=$(rpc manager.verify_compatibility '{"refresh":true}')
check_match "the server now says unknown" '"status":"unknown"' "$raw"
raw=$(rpc manager.get_jobs)
check_match "while unknown, get_jobs fails with the incompatibility error" '"code":-32003' "$raw"
check_match "the error names the User-Agent sent" "User-Agent '$UA_DEFAULT'" "$raw"
check_match "error.data carries the User-Agent" "\"user_agent\":\"$UA_DEFAULT\"" "$raw"
healths=$(sim_count "GET /api/health")
ctl manager.get_health
check_eq "while unknown, get_health still answers" "0" "$CTL_RC"
check_match "with the server's object" '"message":"ok"' "$OUT"
check_eq "get_health asked the server" "$((healths + 1))" "$(sim_count "GET /api/health")"
check_eq "get_health sends no credential" "none" \
        "$(sim_requests "GET /api/health" | tail -n 1 | grep -o '"auth":"[^"]*"' | sed 's/"auth":"//; s/"$//')"
sim_control reset '{}' >/dev/null

unset AVATAR_API_KEY
restart_daemon || fail "avatard starts without a credential"
raw=$(rpc manager.get_jobs)
check_match "without a credential get_jobs is not_authenticated" '"code":-32012' "$raw"
ctl manager.get_health
check_eq "without a credential get_health answers" "0" "$CTL_RC"
check_match "with the server's object (no credential)" '"message":"ok"' "$OUT"

# --- the refresh method: POST on the current generation ------------------------------------------
ctl manager.authenticate "{\"username\":\"alice\",\"password\":\"$ALICE_PW\"}"
check_eq "authenticate succeeds" "0" "$CTL_RC"
sim_control expire-tokens '{}' >/dev/null
ctl manager.get_jobs
check_eq "after the expiry get_jobs succeeds" "0" "$CTL_RC"
check_eq "the current generation is refreshed with POST" "1" "$(sim_count "POST /api/refresh")"
check_eq "and no GET /refresh was tried" "0" "$(sim_count "GET /api/refresh")"

# --- the User-Agent override --------------------------------------------------------------------
write_conf "  user_agent: avatar-python/1.29.0 my-scripts/2"
export AVATAR_API_KEY="$SIM_KEY"
restart_daemon || fail "avatard restarts with upstream.user_agent"
ctl manager.get_jobs
check_eq "get_jobs with an overridden User-Agent succeeds" "0" "$CTL_RC"
check_eq "/check_client got the configured User-Agent" "avatar-python/1.29.0 my-scripts/2" \
        "$(sim_stat last_check_client_user_agent)"
check_eq "requests carry the configured User-Agent" "avatar-python/1.29.0 my-scripts/2" "$(last_ua "GET /api/jobs")"
stop_daemon
check_eq "avatard exits 0" "0" "$?"
stop_sim

# ============================ the old generation ================================================
start_sim --generation old --api-key "$SIM_KEY" --user "alice:$ALICE_PW" --job-step-ms 0 ||
        { fail "avatar-sim --generation old starts"; finish; exit $?; }
write_conf
start_daemon || { fail "avatard starts against the old generation"; finish; exit $?; }
ctl manager.verify_compatibility '{"refresh":true}'
check_match "[old] the default User-Agent is known: compatible" '"status":"compatible"' "$OUT"
ctl manager.get_jobs
check_eq "[old] get_jobs succeeds" "0" "$CTL_RC"

# an override the server does not know: unknown, and the error names what was sent
write_conf "  user_agent: avatard/0.0.1"
restart_daemon || fail "[old] avatard restarts with an unknown User-Agent"
raw=$(rpc manager.get_jobs)
check_match "[old] an unknown User-Agent: get_jobs fails with the incompatibility error" \
        '"code":-32003,"message":"The Avatar server says this client is unknown' "$raw"
check_match "[old] the error names the User-Agent sent" "User-Agent 'avatard/0.0.1'" "$raw"
ctl manager.get_health
check_eq "[old] get_health answers all the same" "0" "$CTL_RC"

# the refresh: POST is refused (405), GET works, and is kept for the next refresh
write_conf
unset AVATAR_API_KEY
restart_daemon || fail "[old] avatard restarts without a key"
ctl manager.authenticate "{\"username\":\"alice\",\"password\":\"$ALICE_PW\"}"
check_eq "[old] authenticate succeeds" "0" "$CTL_RC"
# (the request log goes on from the first simulator: counts are differences)
posts=$(sim_count "POST /api/refresh")
gets=$(sim_count "GET /api/refresh")
sim_control expire-tokens '{}' >/dev/null
ctl manager.get_jobs
check_eq "[old] after the expiry get_jobs succeeds" "0" "$CTL_RC"
check_eq "[old] POST /refresh was tried once" "$((posts + 1))" "$(sim_count "POST /api/refresh")"
check_match "[old] and refused with 405" '"status":405' "$(sim_requests "POST /api/refresh" | tail -n 1)"
check_eq "[old] then GET /refresh" "$((gets + 1))" "$(sim_count "GET /api/refresh")"
sim_control expire-tokens '{}' >/dev/null
ctl manager.get_jobs
check_eq "[old] after a second expiry get_jobs succeeds" "0" "$CTL_RC"
check_eq "[old] the second refresh went straight to GET" "$((gets + 2))" "$(sim_count "GET /api/refresh")"
check_eq "[old] and POST was not tried again" "$((posts + 1))" "$(sim_count "POST /api/refresh")"
check_match "[old] daemon.status counts two refreshes" '"token_refreshes":2' "$("$AVATARCTL" --json status)"

stop_daemon
check_eq "[old] avatard exits 0" "0" "$?"
check_no_sanitizer_reports
finish
