#!/usr/bin/env bash
# Black-box tests of the daemon's caches against avatar-sim: concurrent identical reads share
# one upstream request, health and job lists are kept for their TTL, finished jobs for good,
# and daemon.status reports what the cache and the upstream client did.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"

start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
# The TTLs change by reloads: the cache keeps its entries and compares an entry's age with the
# TTL in force at each lookup. An hour is "within the TTL" however slow the machine; 1 s is
# waited out by asking until the server is asked again; 0 makes every lookup miss.
LONG=3600
# write_conf JOBS_TTL HEALTH_TTL
write_conf() {
        cat > "$CONF" <<EOF
log_level: debug
upstream:
  base_url: $SIM_URL
  timeout_s: $(scaled 60)
cache:
  health_ttl_s: $2
  jobs_ttl_s: $1
EOF
}
# set_ttls JOBS_TTL HEALTH_TTL: the new TTLs in force (daemon.reload).
set_ttls() {
        write_conf "$1" "$2"
        reload_config || fail "the daemon reloads with jobs_ttl_s: $1, health_ttl_s: $2" "$OUT"
}
# asked_again ROUTE N METHOD [PARAMS]: calls METHOD; true once the simulator was asked ROUTE
# more than N times (for wait_until).
asked_again() {
        local route="$1" n="$2"
        shift 2
        ctl "$@"
        [ "$(sim_count "$route")" -gt "$n" ]
}
write_conf "$LONG" "$LONG"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

S=$(sim_make_set cached)
J1=$(sim_make_job "$S" standard)
J2=$(sim_make_job "$S" report)
check_match "fixtures: two queued jobs" '^[0-9a-f-]{36}$' "$J2"

# --- 50 concurrent callers on a cold cache: one upstream request -----------------------------
# The simulator holds the first caller's request, so it stays in flight until every caller
# has arrived and waits for it; then the answer is let go.
before=$(sim_count "GET /api/jobs")
t_list=$(test_now_ms)
sim_hold "GET /api/jobs" 1
pids=()
for i in $(seq 1 50); do
        "$AVATARCTL" --json --timeout "$(scaled 60)" call manager.get_last_jobs '{"count":2}' >"$TMP/concurrent.$i" 2>&1 &
        pids+=($!)
done
check "daemon.status: the 49 other callers wait for the request in flight (coalesced)" \
        wait_until 30 status_is coalesced 49
check "the one request waits at the simulator" wait_until 30 sim_held 1
check_eq "it is let go" "1" "$(sim_release)"
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

# --- a job list is kept for cache.jobs_ttl_s ----------------------------------------------------
before=$(sim_count "GET /api/jobs")
ctl manager.get_last_jobs
ctl manager.find_ids_by_name '{"set_name":"cached"}'
runs=$OUT
ctl manager.get_last_jobs '{"count":5}'
check_eq "within the TTL, every method that reads the job list uses the one fetched" \
        "$before" "$(sim_count "GET /api/jobs")"
check_match "find_ids_by_name answers from the shared list" "\"set_name\":\"$S\",\"jobs\"" "$runs"
set_ttls 1 "$LONG"
wait_until 10 asked_again "GET /api/jobs" "$before" manager.get_last_jobs
t=$(test_now_ms)
check_eq "after the TTL the list is fetched again" "$((before + 1))" "$(sim_count "GET /api/jobs")"
at_least_ms "not before the list was 1 s old" "$t_list" "$t" 1000

# --- health is cached for cache.health_ttl_s ----------------------------------------------------
before=$(sim_count "GET /api/health")
t0=$(test_now_ms)
ctl manager.get_health
first=$OUT
ctl manager.get_health
t=$(test_now_ms)
check_eq "a second get_health within health_ttl_s is answered from the cache" "$((before + 1))" \
        "$(sim_count "GET /api/health")"
check_match "the first answer is fresh" '"stale":false' "$first"
check_match "the cached answer says how old it is" '"stale":false,"age_s":[0-9]+\.[0-9]{3}' "$OUT"
# (1 ms for the rounding of both)
age_ms=$(awk -v a="$(json_num age_s "$OUT")" 'BEGIN { printf "%d", a * 1000 }')
check_match "its age ($age_ms ms) is no more than the time since the first call ($((t - t0)) ms)" \
        '^[0-9]+$' "$((t - t0 + 1 - age_ms))"
set_ttls 1 1
wait_until 10 asked_again "GET /api/health" "$((before + 1))" manager.get_health
t=$(test_now_ms)
check_eq "after health_ttl_s the server is asked again" "$((before + 2))" "$(sim_count "GET /api/health")"
at_least_ms "not before the answer was 1 s old" "$t0" "$t" 1000

# --- a finished job is kept; an unfinished one is not ----------------------------------------------
route="GET /api/jobs/{name}"
before=$(sim_count "$route")
t0=$(test_now_ms)
ctl manager.get_job "{\"name\":\"$J1\"}"
check_match "get_job of a queued job" '"status":"queued"' "$OUT"
wait_until 10 asked_again "$route" "$((before + 1))" manager.get_job "{\"name\":\"$J1\"}"
t=$(test_now_ms)
check_eq "an unfinished job is fetched again once the TTL passed" "$((before + 2))" "$(sim_count "$route")"
at_least_ms "not before it was 1 s old" "$t0" "$t" 1000
sim_tick 20
wait_until 10 asked_again "$route" "$((before + 2))" manager.get_job "{\"name\":\"$J1\"}"
check_match "the job is done now" '"done":true' "$OUT"
check_eq "the finished job was fetched" "$((before + 3))" "$(sim_count "$route")"
# with a TTL of 0 every lookup is past the TTL
set_ttls 0 "$LONG"
for i in 1 2 3; do ctl manager.get_job "{\"name\":\"$J1\"}"; done
check_eq "a finished job is served from the cache, even after the TTL (no second GET)" \
        "$((before + 3))" "$(sim_count "$route")"
check_match "the cached finished job is still returned in full" "\"name\":\"$J1\".*\"done\":true" "$OUT"
check_match "the cached finished job is not stale" '"stale":false' "$OUT"

# --- results of a finished job are kept too ---------------------------------------------------------
# (the job list is fetched anew by each call: its TTL is still 0)
check_eq "the input table is stored" "200" "$(sim_upload_input)"
S2=$(sim_make_set cached-results)
R1=$(sim_make_job "$S2" standard)
sim_tick 20
before=$(sim_count "GET /api/results/{job}")
ctl manager.get_last_results
check_match "get_last_results gives the finished job's results" "\"job\":\"$R1\".*\"shuffled\"" "$OUT"
ctl manager.get_last_results
check_eq "results of a finished job are fetched once" "$((before + 1))" "$(sim_count "GET /api/results/{job}")"

# --- callers that go away while they wait --------------------------------------------------------------
# One caller gives up while a shared request is in flight (held by the simulator); another
# waiting on it still gets the answer, and every method's pending work is dropped cleanly when
# its caller goes.
misses=$(status_num misses)
coalesced=$(status_num coalesced)
sim_hold "GET /api/jobs" 1
"$AVATARCTL" --json call manager.get_last_jobs >/dev/null 2>&1 &
quitter=$!
check "the first caller's request is in flight (a cache miss)" wait_until 10 status_is misses "$((misses + 1))"
"$AVATARCTL" --json --timeout "$(scaled 60)" call manager.get_last_jobs '{"count":2}' >"$TMP/waiter" 2>&1 &
waiter=$!
check "a second caller waits for the same request (coalesced)" wait_until 10 status_is coalesced "$((coalesced + 1))"
kill "$quitter"
wait "$quitter"
check_eq "the first caller gave up while it waited (SIGTERM)" "143" "$?"
# The daemon has read the first caller's end of input once it answers a connection accepted
# after it (libevent handles every descriptor one epoll_wait() reports ready).
"$AVATARCTL" call daemon.ping >/dev/null
check "the shared request waits at the simulator" wait_until 30 sim_held 1
sim_release >/dev/null
wait "$waiter"
CTL_RC=$?
OUT=$(cat "$TMP/waiter")
check_eq "a caller waiting on a shared request gets its answer when another caller gave up" "0" "$CTL_RC"
check_match "it got the job list" "\"name\":\"$J2\"" "$OUT"
# each call waits for the simulator, which holds every API request (every TTL is 0), when
# its caller goes away
set_ttls 0 0
# dispatched_or_gone METHOD N PID: whether the daemon has dispatched N calls of METHOD in all;
# never once the caller PID ended
dispatched_or_gone() {
        kill -0 "$3" 2>/dev/null || return "$WAIT_NEVER"
        status_at_least "$1" "$2"
}
held=0
sim_hold_api
while read -r method params; do
        n=$(status_num "$method")
        "$AVATARCTL" --json call "$method" "$params" </dev/null >/dev/null 2>&1 &
        caller=$!
        dispatched=0
        wait_until 10 dispatched_or_gone "$method" "$((${n:-0} + 1))" "$caller" </dev/null && dispatched=1
        kill "$caller" 2>/dev/null
        wait "$caller"
        # killed by the signal once dispatched: it was still waiting for the answer
        if [ "$?" = 143 ] && [ "$dispatched" = 1 ]; then
                held=$((held + 1))
        else
                echo "# the caller of $method was not waiting for the server"
        fi
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
sim_unhold
check_eq "each of the 8 methods was waiting for the server when its caller went away" "8" "$held"
check "the daemon still answers after callers went away mid-call" "$AVATARCTL" call daemon.ping
ctl manager.get_last_results '{"count":2}'
check_eq "and serves the methods whose callers went away" "0" "$CTL_RC"
# the calls whose callers went away end when their answers come (and go nowhere)
check "daemon.status shows no call left in flight but this one" wait_until 10 status_is requests_in_flight 1

# --- a deletion drops the cached job lists ----------------------------------------------------------------
S3=$(sim_make_set doomed)
D1=$(sim_make_job "$S3" standard)
ctl manager.get_last_jobs '{"count":1}'
check_match "the new job is listed (and the list cached)" "\"$D1\"" "$OUT"
# from now on the lists are fresh for an hour: only the deletion makes the daemon ask again
set_ttls "$LONG" "$LONG"
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
