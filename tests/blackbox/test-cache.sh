#!/usr/bin/env bash
# Black-box tests of the daemon's caches against avatar-sim: concurrent identical reads share
# one upstream request, health and job lists are kept for their TTL, finished jobs for good,
# and daemon.status reports what the cache and the upstream client did.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"

start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
cat > "$CONF" <<EOF
log_level: debug
upstream:
  base_url: $SIM_URL
cache:
  health_ttl_s: 2
  jobs_ttl_s: 2
EOF
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

S=$(sim_make_set cached)
J1=$(sim_make_job "$S" standard)
J2=$(sim_make_job "$S" report)
check_match "fixtures: two queued jobs" '^[0-9a-f-]{36}$' "$J2"

# --- 50 concurrent callers on a cold cache: one upstream request -----------------------------
# the answer is held back 2 s so that every caller arrives while it is in flight (or, slower
# still, within the 2 s TTL after it)
sim_fault '{"route":"GET /api/jobs","latency_ms":2000,"count":1}'
before=$(sim_count "GET /api/jobs")
pids=()
for i in $(seq 1 50); do
        "$AVATARCTL" --json --timeout 30 call manager.get_last_jobs '{"count":2}' >"$TMP/concurrent.$i" 2>&1 &
        pids+=($!)
done
failed=0
for p in "${pids[@]}"; do
        wait "$p" || failed=$((failed + 1))
done
check_eq "all 50 concurrent get_last_jobs calls succeed" "0" "$failed"
same=0
for i in $(seq 1 50); do
        grep -q "\"$J2\":{\"name\":\"$J2\"" "$TMP/concurrent.$i" && same=$((same + 1))
done
check_eq "all 50 got the job list" "50" "$same"
check_eq "50 concurrent get_last_jobs on a cold cache make exactly one GET /api/jobs" \
        "$((before + 1))" "$(sim_count "GET /api/jobs")"
st=$("$AVATARCTL" --json status)
coalesced=$(json_num coalesced "$st")
hits=$(json_num hits "$st")
misses=$(json_num misses "$st")
check_eq "daemon.status: one cache miss" "1" "$misses"
check_eq "daemon.status: the other 49 callers waited for it or hit the cache" "49" "$((coalesced + hits))"
check_match "daemon.status: most callers were coalesced onto the request in flight" '^([1-9][0-9]*)$' "$coalesced"

# --- a job list is kept for cache.jobs_ttl_s ----------------------------------------------------
sleep 2.2
before=$(sim_count "GET /api/jobs")
ctl manager.get_last_jobs
ctl manager.find_ids_by_name '{"set_name":"cached"}'
runs=$OUT
ctl manager.get_last_jobs '{"count":5}'
check_eq "within the TTL, the job list is fetched once for all methods that read it" \
        "$((before + 1))" "$(sim_count "GET /api/jobs")"
check_match "find_ids_by_name answers from the shared list" "\"set_name\":\"$S\",\"jobs\"" "$runs"
sleep 2.2
ctl manager.get_last_jobs
check_eq "after the TTL the list is fetched again" "$((before + 2))" "$(sim_count "GET /api/jobs")"

# --- health is cached for cache.health_ttl_s ----------------------------------------------------
before=$(sim_count "GET /api/health")
ctl manager.get_health
first=$OUT
ctl manager.get_health
check_eq "a second get_health within health_ttl_s is answered from the cache" "$((before + 1))" \
        "$(sim_count "GET /api/health")"
check_match "the first answer is fresh" '"stale":false' "$first"
check_match "the cached answer says how old it is" '"stale":false,"age_s":0\.[0-9]{3}' "$OUT"
sleep 2.2
ctl manager.get_health
check_eq "after health_ttl_s the server is asked again" "$((before + 2))" "$(sim_count "GET /api/health")"

# --- a finished job is kept; an unfinished one is not ----------------------------------------------
route="GET /api/jobs/{name}"
before=$(sim_count "$route")
ctl manager.get_job "{\"name\":\"$J1\"}"
check_match "get_job of a queued job" '"status":"queued"' "$OUT"
sleep 2.2
ctl manager.get_job "{\"name\":\"$J1\"}"
check_eq "an unfinished job is fetched again once the TTL passed" "$((before + 2))" "$(sim_count "$route")"
sim_tick 20
sleep 2.2
ctl manager.get_job "{\"name\":\"$J1\"}"
check_match "the job is done now" '"done":true' "$OUT"
check_eq "the finished job was fetched" "$((before + 3))" "$(sim_count "$route")"
sleep 2.2
for i in 1 2 3; do ctl manager.get_job "{\"name\":\"$J1\"}"; done
check_eq "a finished job is served from the cache, even after the TTL (no second GET)" \
        "$((before + 3))" "$(sim_count "$route")"
check_match "the cached finished job is still returned in full" "\"name\":\"$J1\".*\"done\":true" "$OUT"
check_match "the cached finished job is not stale" '"stale":false' "$OUT"

# --- results of a finished job are kept too ---------------------------------------------------------
check_eq "the input table is stored" "200" "$(sim_upload_input)"
S2=$(sim_make_set cached-results)
R1=$(sim_make_job "$S2" standard)
sim_tick 20
sleep 2.2
before=$(sim_count "GET /api/results/{job}")
ctl manager.get_last_results
check_match "get_last_results gives the finished job's results" "\"job\":\"$R1\".*\"shuffled\"" "$OUT"
sleep 2.2
ctl manager.get_last_results
check_eq "results of a finished job are fetched once" "$((before + 1))" "$(sim_count "GET /api/results/{job}")"

# --- callers that go away while they wait --------------------------------------------------------------
# One caller gives up while a shared request is in flight; another waiting on it still gets
# the answer, and every method's pending work is dropped cleanly when its caller goes.
sleep 2.2
sim_fault '{"route":"GET /api/jobs","latency_ms":600,"count":1}'
timeout 0.2 "$AVATARCTL" --json call manager.get_last_jobs >/dev/null 2>&1 &
quitter=$!
sleep 0.05
ctl manager.get_last_jobs '{"count":2}'
wait "$quitter"
check_eq "a caller waiting on a shared request gets its answer when another caller gave up" "0" "$CTL_RC"
check_match "it got the job list" "\"name\":\"$J2\"" "$OUT"
sim_fault '{"latency_ms":600}'
while read -r method params; do
        timeout 0.2 "$AVATARCTL" --json call "$method" "$params" </dev/null >/dev/null 2>&1
done <<EOF
manager.get_last_results {"count":2}
manager.find_ids_by_name {"set_name":"cached"}
manager.delete_job {"name":"no-such-run"}
manager.delete_jobs {"job_names":["x"]}
manager.get_job {"name":"$J2"}
manager.verify_compatibility {"refresh":true}
manager.list_api_keys {}
manager.get_health {}
EOF
sleep 0.8
curl -sS -X DELETE "$SIM_URL/_sim/faults" >/dev/null
check "the daemon still answers after callers went away mid-call" "$AVATARCTL" call daemon.ping
ctl manager.get_last_results '{"count":2}'
check_eq "and serves the methods whose callers went away" "0" "$CTL_RC"
check_match "daemon.status shows no call left in flight but this one" '"requests_in_flight":1,' "$("$AVATARCTL" --json status)"

# --- a deletion drops the cached job lists ----------------------------------------------------------------
S3=$(sim_make_set doomed)
D1=$(sim_make_job "$S3" standard)
sleep 2.2
ctl manager.get_last_jobs '{"count":1}'
check_match "the new job is listed (and the list cached)" "\"$D1\"" "$OUT"
ctl manager.get_jobs '{"display_name":"doomed"}'
check_match "the filtered list holds it too (and is cached)" "\"name\":\"$D1\"" "$OUT"
ctl manager.delete_jobs "{\"job_names\":[\"$D1\"]}"
check_match "the job is deleted" "\"deleted_jobs\":\\[\\{\"name\":\"$D1\"" "$OUT"
ctl manager.get_last_jobs '{"count":1}'
check_no_match "right after the deletion the cached list is not served: the job is gone" "\"$D1\"" "$OUT"
ctl manager.get_jobs '{"display_name":"doomed"}'
check_match "the filtered list is refreshed too" '"jobs":\[\]' "$OUT"
ctl manager.find_ids_by_name '{"set_name":"doomed"}'
check_match "find_ids_by_name no longer finds the run" '"runs":\[\]' "$OUT"

# --- daemon.status: cache and upstream counters -----------------------------------------------------
st=$("$AVATARCTL" --json status)
check_match "daemon.status reports cache hits" '"cache":\{"entries":[0-9]+,"hits":[1-9][0-9]*' "$st"
check_match "daemon.status reports cache misses" '"misses":[1-9][0-9]*' "$st"
check_match "daemon.status reports coalesced waits" '"coalesced":[1-9][0-9]*' "$st"
check_match "daemon.status reports stale answers served" '"stale_served":[0-9]+' "$st"
check_match "daemon.status reports upstream requests by endpoint and status" \
        '"http":\{"requests":\{.*"GET /jobs":\{"200":[1-9][0-9]*\}' "$st"
check_match "daemon.status counts GET /jobs/{name} by status" '"GET /jobs/\{name\}":\{"200":[1-9]' "$st"
check_match "daemon.status counts GET /health" '"GET /health":\{"200":[1-9]' "$st"
check_match "daemon.status reports retry counts" '"retries":\{"network":[0-9]+,"rate_limited":[0-9]+\}' "$st"
check_match "daemon.status reports the circuit breaker state" '"breaker":"closed"' "$st"
check_match "daemon.status reports each breaker with its failures" \
        "\"breakers\":\\{\"http://127.0.0.1:$SIM_PORT\":\\{\"state\":\"closed\",\"consecutive_failures\":0" "$st"

check_no_sanitizer_reports
finish
