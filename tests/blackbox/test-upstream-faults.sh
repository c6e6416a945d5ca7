#!/usr/bin/env bash
# Black-box tests of the daemon's upstream behaviour against avatar-sim's fault injection:
# error classes, 429 waits, what is retried and what is not, stale answers while the server is
# down, the circuit breaker, and recovery without a restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"

start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
# write_conf BREAKER_COOLDOWN_S STALE_MAX_S: the configuration; a reload changes those two
# where a check needs the state they lead to (an hour: nothing changes however slow the
# machine; 1 s: waited out by asking until the daemon answers otherwise).
write_conf() {
        cat > "$CONF" <<EOF
log_level: debug
upstream:
  base_url: $SIM_URL
  max_attempts: 3
  retry_base_ms: 50
  retry_max_ms: 200
  rate_limit_retries: 1
  breaker_threshold: 3
  breaker_cooldown_s: $1
  connect_timeout_s: $(scaled 2)
  timeout_s: $(scaled 10)
cache:
  jobs_ttl_s: 1
  health_ttl_s: 1
  stale_max_s: $2
EOF
}
write_conf 3600 3600
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"
S=$(sim_make_set faults)
J=$(sim_make_job "$S" standard)

# new_lines ROUTE BEFORE: the statuses of the requests of ROUTE logged after the first BEFORE.
new_statuses() {
        sim_requests "$1" | tail -n +$(($2 + 1)) | grep -o '"status":[0-9]*' | sed 's/.*://' | tr '\n' ' ' | sed 's/ $//'
}
route_lines() {
        sim_requests "$1" | wc -l
}
# answer_is STALE METHOD [PARAMS]: calls METHOD; true when it succeeded with "stale":STALE
# (for wait_until).
answer_is() {
        local stale="$1"
        shift
        ctl "$@"
        [ "$CTL_RC" = 0 ] && grep -q "\"stale\":$stale" <<<"$OUT"
}

# --- 401 → credential_rejected --------------------------------------------------------------
sim_fault '{"route":"GET /api/jobs","status":401,"count":1}'
ctl manager.get_jobs '{"limit":1}'
check_eq "a 401 exits 7 (upstream problem)" "7" "$CTL_RC"
sim_fault '{"route":"GET /api/jobs","status":401,"count":1}'
raw=$(rpc manager.get_jobs '{"limit":1}')
check_match "a 401 maps to credential_rejected (code -32002), not retryable, with the status" \
        '"code":-32002.*"data":\{.*"status":401.*"name":"credential_rejected","retryable":false' "$raw"
check_match "a 401 says the credential was refused" '"message":"You are not authenticated' "$raw"

# --- 429 with Retry-After: 1 waits, then succeeds ------------------------------------------------
n=$(route_lines "GET /api/jobs")
sim_fault '{"route":"GET /api/jobs","retry_after_s":1,"retry_after_in":"header","count":1}'
t0=$(test_now_ms)
ctl manager.get_jobs '{"limit":2}'
t1=$(test_now_ms)
check_eq "a 429 with Retry-After: 1 is waited out and the call succeeds" "0" "$CTL_RC"
check_match "the call returns the jobs" "\"name\":\"$J\"" "$OUT"
at_least_ms "it waited at least 1 s" "$t0" "$t1" 1000
check_eq "two requests logged: the 429, then the success" "429 200" "$(new_statuses "GET /api/jobs" "$n")"
n=$(route_lines "GET /api/jobs")
sim_fault '{"route":"GET /api/jobs","retry_after_s":1,"retry_after_in":"body","count":1}'
t0=$(test_now_ms)
ctl manager.get_jobs '{"limit":3}'
t1=$(test_now_ms)
check_eq "a 429 with retry_after in the body only is waited out too" "0" "$CTL_RC"
at_least_ms "it waited at least 1 s" "$t0" "$t1" 1000
check_eq "two requests logged" "429 200" "$(new_statuses "GET /api/jobs" "$n")"
n=$(route_lines "GET /api/jobs")
sim_fault '{"route":"GET /api/jobs","retry_after_s":1,"count":2}'
ctl manager.get_jobs '{"limit":4}'
check_eq "a 429 that persists past upstream.rate_limit_retries fails with exit 7" "7" "$CTL_RC"
check_eq "one retry only (rate_limit_retries: 1)" "429 429" "$(new_statuses "GET /api/jobs" "$n")"
sim_fault '{"route":"GET /api/jobs","retry_after_s":1,"count":2}'
raw=$(rpc manager.get_jobs '{"limit":4}')
check_match "it fails as rate_limited (retryable), saying when to retry" \
        '"code":-32007.*"retry_after_ms":1000.*"name":"rate_limited","retryable":true' "$raw"
check_match "daemon.status counts the rate-limit retries" '"retries":\{"network":[0-9]+,"rate_limited":4\}' "$("$AVATARCTL" --json status)"

# --- HTTP errors are not retried ----------------------------------------------------------------
n=$(route_lines "POST /api/jobs/bulk-delete")
sim_fault '{"route":"POST /api/jobs/bulk-delete","status":502,"count":1}'
ctl manager.delete_jobs "{\"job_names\":[\"$J\"]}"
check_eq "a POST that gets 502 is sent once" "502" "$(new_statuses "POST /api/jobs/bulk-delete" "$n")"
check_match "the 502 is reported as the batch's failure" \
        "\"failed_jobs\":\\[\"$J\"\\],\"errors\":\\[\\{\"job_names\":\\[\"$J\"\\],\"code\":-32001,\"name\":\"upstream_http_error\",\"message\":\"[^\"]*502[^\"]*\",\"status\":502\\}\\]" "$OUT"
n=$(route_lines "GET /api/jobs")
sim_fault '{"route":"GET /api/jobs","status":502,"count":1}'
ctl manager.get_jobs '{"limit":5}'
check_eq "a GET that gets 502 fails with exit 7" "7" "$CTL_RC"
check_eq "a GET that gets 502 is sent once" "502" "$(new_statuses "GET /api/jobs" "$n")"
sim_fault '{"route":"GET /api/jobs","status":502,"count":1}'
raw=$(rpc manager.get_jobs '{"limit":5}')
check_match "a GET that gets 502: upstream_http_error with the status and the server's message" \
        '"code":-32001.*"data":\{"status":502,"message":"avatar-sim injected fault: 502 Bad Gateway".*"name":"upstream_http_error"' "$raw"
n=$(route_lines "GET /api/jobs")
sim_fault '{"route":"GET /api/jobs","status":503,"count":1}'
ctl manager.get_jobs '{"limit":6}'
check_eq "a 503 is not retried either" "503" "$(new_statuses "GET /api/jobs" "$n")"

# --- a dropped connection: a GET is retried, a POST is not -------------------------------------------
n=$(route_lines "GET /api/jobs")
sim_fault '{"route":"GET /api/jobs","drop":true,"count":1}'
ctl manager.get_jobs '{"limit":7}'
check_eq "a GET whose connection drops is retried and succeeds" "0" "$CTL_RC"
check_eq "two GET requests logged (the dropped one, then the answered one)" "0 200" \
        "$(new_statuses "GET /api/jobs" "$n")"
n=$(route_lines "GET /api/jobs")
sim_fault '{"route":"GET /api/jobs","drop":true,"count":2}'
ctl manager.get_jobs '{"limit":8}'
check_eq "a GET dropped twice is retried again and succeeds (upstream.max_attempts 3)" "0" "$CTL_RC"
check_eq "three GET requests logged" "0 0 200" "$(new_statuses "GET /api/jobs" "$n")"
check_match "daemon.status counts the network retries" '"retries":\{"network":[1-9]' "$("$AVATARCTL" --json status)"
# A POST is never retried by the daemon. (libcurl itself resends any request once when a
# reused keep-alive connection turns out to be closed before the answer, so a drop on a
# reused connection may show two requests; a third would be a retry of the daemon's own.)
n=$(route_lines "POST /api/jobs/bulk-delete")
sim_fault '{"route":"POST /api/jobs/bulk-delete","drop":true,"count":3}'
ctl manager.delete_jobs '{"job_names":["no-such-job-drop"]}'
curl -sS -X DELETE "$SIM_URL/_sim/faults" >/dev/null
check_match "a POST whose connection drops is not retried by the daemon" '^0( 0)?$' \
        "$(new_statuses "POST /api/jobs/bulk-delete" "$n")"
check_match "the dropped POST is reported as upstream_unreachable" \
        '"errors":\[\{"job_names":\["no-such-job-drop"\],"code":-32000,"name":"upstream_unreachable"' "$OUT"

# --- a 2xx answer the daemon cannot use ------------------------------------------------------------
sim_fault '{"route":"GET /api/health","body":"invalid","count":1}'
check_match "a 200 with a broken JSON body is upstream_bad_response" '"code":-32017.*"name":"upstream_bad_response"' \
        "$(rpc manager.get_health)"

# --- upstream down: stale answers, then the error; the circuit breaker ------------------------------
# (cache.stale_max_s and upstream.breaker_cooldown_s are an hour until the checks that need
# them passed)
ctl manager.get_last_jobs
check_match "the job list is cached while upstream is up" '"stale":false' "$OUT"
ctl manager.get_health
check_match "health is cached while upstream is up" '"stale":false' "$OUT"
stop_sim
# once an answer is older than its TTL (1 s), the daemon asks the server, which is gone
wait_until 10 answer_is true manager.get_last_jobs
check_eq "upstream down: a cached read still succeeds" "0" "$CTL_RC"
check_match "upstream down: the answer is marked stale" '"stale":true' "$OUT"
check_match "upstream down: the stale answer gives its age (>= 1 s)" '"age_s":[1-9][0-9]*\.[0-9]+' "$OUT"
check_match "upstream down: the stale answer holds the cached jobs" "\"name\":\"$J\"" "$OUT"
wait_until 10 answer_is true manager.get_health
check_match "upstream down: health is served stale too" '"message":"ok","stale":true' "$OUT"
t_open=$(test_now_ms)
ctl manager.get_jobs '{"limit":10}'
check_eq "upstream down: an uncached read fails with exit 7" "7" "$CTL_RC"
check_match "upstream down: an uncached read is upstream_unreachable" '"code":-32000.*"name":"upstream_unreachable"' \
        "$(rpc manager.get_jobs '{"limit":12}')"
check_match "upstream down: delete_job never deletes from a stale job list" \
        '"code":-32000,"message":"The Avatar server is unreachable; nothing was deleted"' \
        "$(rpc manager.delete_job '{"name":"faults"}')"
st=$("$AVATARCTL" --json status)
check_match "after repeated failures daemon.status shows the circuit breaker open" '"breaker":"open"' "$st"
check_match "daemon.status shows the breaker's failures and openings" \
        "\"http://127.0.0.1:$SIM_PORT\":\\{\"state\":\"open\",\"consecutive_failures\":[3-9],\"opened\":1\\}" "$st"
check_match "daemon.status counts network retries" '"network":[1-9]' "$st"
raw=$(rpc manager.get_jobs '{"limit":11}')
check_match "while the circuit is open calls fail at once, saying so" '"message":"[^"]*circuit open' "$raw"
check_match "upstream_unreachable is code -32000 and retryable" '"code":-32000.*"name":"upstream_unreachable","retryable":true' "$raw"
ctl manager.get_last_jobs
check_match "while the circuit is open, cached job lists are still served stale" '"stale":true' "$OUT"
ctl manager.get_health
check_match "while the circuit is open, cached health is still served stale" '"stale":true' "$OUT"

# past cache.stale_max_s the upstream error comes through: with 1 s (reloaded), the cached
# answers, served stale once over 1 s old, are past it
write_conf 3600 1
reload_config || fail "the daemon reloads with cache.stale_max_s: 1" "$OUT"
ctl manager.get_last_jobs
check_eq "past stale_max_s a cached read fails with exit 7" "7" "$CTL_RC"
raw=$(rpc manager.get_last_jobs)
check_match "past stale_max_s the error is upstream_unreachable" '"code":-32000.*"name":"upstream_unreachable"' "$raw"
check_no_match "past stale_max_s nothing stale is served" '"stale":true' "$raw"
check_match "past stale_max_s health fails as upstream_unreachable too" '"code":-32000.*"name":"upstream_unreachable"' \
        "$(rpc manager.get_health)"

# --- recovery without a restart ---------------------------------------------------------------------
start_sim --api-key "$SIM_KEY" --job-step-ms 0 --port "$SIM_PORT" || fail "avatar-sim restarts on port $SIM_PORT"
S2=$(sim_make_set recovered)
J2=$(sim_make_job "$S2" standard)
# a cooldown of 1 s (reloaded): the first request after it is the trial that closes the circuit
write_conf 1 1
reload_config || fail "the daemon reloads with upstream.breaker_cooldown_s: 1" "$OUT"
wait_until 10 answer_is false manager.get_last_jobs
t=$(test_now_ms)
check_match "once upstream is back, calls succeed again without a restart (after the cooldown)" \
        '"stale":false' "$OUT"
at_least_ms "not before the cooldown since the circuit opened" "$t_open" "$t" 1000
check_match "the fresh answer holds the new job" "\"name\":\"$J2\"" "$OUT"
ctl manager.get_health
check_match "health is fresh again" '"stale":false' "$OUT"
check_match "the circuit breaker is closed again" '"breaker":"closed"' "$("$AVATARCTL" --json status)"
check_eq "the daemon did not restart" "$DAEMON_PID" "$(json_num pid "$("$AVATARCTL" --json status)")"
check_match "the breaker opening and closing is logged" 'circuit closed' "$(cat "$DAEMON_LOG")"

# --- upstream.rate_limit_retries: 0 means a 429 is not waited out --------------------------------------
# (the configuration accepts 0, and avatard(8) says the key is how many 429 answers are waited
# out: 0 must not fall back to the upstream client's default)
sed -i 's/rate_limit_retries: 1/rate_limit_retries: 0/' "$CONF"
ctl daemon.reload
check_eq "the configuration with upstream.rate_limit_retries: 0 is loaded" "0" "$CTL_RC"
n=$(route_lines "GET /api/jobs")
sim_fault '{"route":"GET /api/jobs","retry_after_s":1,"count":1}'
raw=$(rpc manager.get_jobs '{"limit":20}')
check_match "with rate_limit_retries: 0 a 429 fails at once as rate_limited" '"name":"rate_limited"' "$raw"
check_eq "with rate_limit_retries: 0 the 429 is not repeated" "429" "$(new_statuses "GET /api/jobs" "$n")"

check_no_sanitizer_reports
finish
