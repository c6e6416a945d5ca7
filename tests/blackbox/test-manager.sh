#!/usr/bin/env bash
# Black-box tests of the Manager read and delete operations against avatar-sim: health,
# compatibility (and its gate), jobs with the server's filters, last jobs and results, runs by
# name, and deletion (by name, by id, in batches of 100 with a failing batch).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"

start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }

# jobs_ttl_s 0: every job read goes upstream, so the fixtures made below are always seen;
# health_ttl_s 3600: a cached health answer exists while the compatibility gate is tested,
# however slow the machine.
cat > "$CONF" <<EOF
log_level: debug
upstream:
  base_url: $SIM_URL
  max_attempts: 2
  retry_base_ms: 20
  retry_max_ms: 50
cache:
  jobs_ttl_s: 0
  health_ttl_s: 3600
EOF
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

# --- fixtures: runs made through the simulator's API -------------------------------------
# alpha (set A): standard, privacy_metrics, advice; beta (set B): standard, report;
# alpha again (set C): standard, signal_metrics; Alpha (set D, other case): standard;
# then a report in set A, so A holds the newest alpha job although C was made after A.
check_eq "the input table is stored in the simulator" "200" "$(sim_upload_input)"
A=$(sim_make_set alpha)
A_std=$(sim_make_job "$A" standard)
A_pm=$(sim_make_job "$A" privacy_metrics)
A_adv=$(sim_make_job "$A" advice_parameters)
B=$(sim_make_set beta)
B_std=$(sim_make_job "$B" standard)
B_rep=$(sim_make_job "$B" report)
C=$(sim_make_set alpha)
C_std=$(sim_make_job "$C" standard)
C_sm=$(sim_make_job "$C" signal_metrics)
D=$(sim_make_set Alpha)
D_std=$(sim_make_job "$D" standard)
sim_tick 20
A_rep=$(sim_make_job "$A" report)
check_match "fixtures: 9 jobs in 4 runs" '^[0-9a-f-]{36}$' "$A_rep"

# --- manager.get_health ----------------------------------------------------------------
before=$(sim_count "GET /api/health")
ctl manager.get_health; out=$OUT
check_eq "get_health succeeds" "0" "$CTL_RC"
check_match "get_health returns the server's object" '"message":"ok"' "$out"
check_match "get_health marks the answer fresh" '"stale":false' "$out"
check_match "get_health gives the age of the answer" '"age_s":[0-9]' "$out"
check_eq "get_health asked the server once" "$((before + 1))" "$(sim_count "GET /api/health")"

# --- manager.verify_compatibility --------------------------------------------------------
ctl manager.verify_compatibility; out=$OUT
check_eq "verify_compatibility succeeds" "0" "$CTL_RC"
check_match "the server says compatible" '"status":"compatible","compatible":true' "$out"
check_match "the result names the daemon's version" '"daemon_version":"[0-9]+\.[0-9]+' "$out"
check_match "the result shows the User-Agent sent" '"user_agent":"avatar-python/[0-9.]+ avatard/' "$out"

sim_control compat '{"status":"incompatible","message":"Client too old for bb","most_recent_compatible_client":"9.8.7"}' >/dev/null
checks=$(sim_count "GET /api/check_client")
ctl manager.verify_compatibility; out=$OUT
check_eq "without refresh the cached (compatible) answer is used" "0" "$CTL_RC"
check_eq "without refresh the server is not asked" "$checks" "$(sim_count "GET /api/check_client")"
ctl manager.verify_compatibility '{"refresh":true}'; out=$OUT
check_eq "refresh: true re-asks the server" "$((checks + 1))" "$(sim_count "GET /api/check_client")"
check_eq "incompatible: avatarctl exits 7 (upstream problem)" "7" "$CTL_RC"
raw=$(rpc manager.verify_compatibility '{"refresh":true}')
check_match "incompatible: error code -32003" '"code":-32003' "$raw"
check_match "incompatible: error.data.name is incompatible" '"name":"incompatible"' "$raw"
check_match "incompatible: error.data carries the server's message" '"message":"Client too old for bb"' "$raw"
check_match "incompatible: error.data carries most_recent_compatible_client" '"most_recent_compatible_client":"9.8.7"' "$raw"
check_match "incompatible: error.data carries daemon_version" '"daemon_version":"[0-9]+\.[0-9]+' "$raw"
check_match "incompatible: error.message carries the server's message" '"message":"[^"]*Client too old for bb' "$raw"
sim_control compat '{"status":"incompatible","message":"Client too old for bb.","most_recent_compatible_client":"9.8.7"}' >/dev/null
raw=$(rpc manager.verify_compatibility '{"refresh":true}')
check_no_match "incompatible: a server message ending in a full stop gets no second one" 'bb\.\.' "$raw"
check_match "incompatible: with verification on, the message says how to turn it off" 'turn upstream.verify_compatibility off' "$raw"
sim_control compat '{"status":"incompatible","message":"Client too old for bb","most_recent_compatible_client":"9.8.7"}' >/dev/null
rpc manager.verify_compatibility '{"refresh":true}' >/dev/null

# every upstream-dependent call fails the same way, cached answers included
jobs_before=$(sim_count "GET /api/jobs")
incompat='"code":-32003,"message":"[^"]*Client too old for bb[^"]*","data":\{.*"name":"incompatible"'
for m in manager.get_jobs manager.get_last_jobs manager.get_last_results manager.list_api_keys; do
        check_match "while incompatible, $m fails with the incompatibility error" "$incompat" "$(rpc "$m")"
done
# get_health passes no gate (the published client's does not): it diagnoses the incompatibility
healths=$(sim_count "GET /api/health")
ctl manager.get_health
check_eq "while incompatible, get_health still answers" "0" "$CTL_RC"
check_eq "while incompatible, get_health asks the server, not the cache" "$((healths + 1))" "$(sim_count "GET /api/health")"
check_match "while incompatible, get_job fails too" "$incompat" "$(rpc manager.get_job "{\"name\":\"$A_std\"}")"
check_match "while incompatible, find_ids_by_name fails too" "$incompat" \
        "$(rpc manager.find_ids_by_name '{"set_name":"alpha"}')"
check_match "while incompatible, delete_job fails too" "$incompat" "$(rpc manager.delete_job '{"name":"beta"}')"
check_match "while incompatible, delete_jobs reports its batch failed as incompatible" \
        "\"errors\":\\[\\{\"job_names\":\\[\"$B_std\"\\],\"code\":-32003,\"name\":\"incompatible\",\"message\":\"[^\"]*Client too old" \
        "$(rpc manager.delete_jobs "{\"job_names\":[\"$B_std\"]}")"
check_eq "while incompatible, no job request goes upstream" "$jobs_before" "$(sim_count "GET /api/jobs")"
check_eq "while incompatible, nothing is deleted" "0" "$(sim_count "POST /api/jobs/bulk-delete")"
out=$("$AVATARCTL" --json status)
check_match "daemon.status shows upstream.compatibility incompatible" '"compatibility":\{"status":"incompatible"' "$out"
check_match "daemon.status shows the server's answer" '"answer":\{"message":"Client too old for bb"' "$out"

sim_control compat '{"status":"unknown","message":"Who is this client"}' >/dev/null
ctl manager.verify_compatibility '{"refresh":true}'
check_eq "unknown is a failure too (exit 7)" "7" "$CTL_RC"
raw=$(rpc manager.verify_compatibility '{"refresh":true}')
check_match "unknown: class incompatible, saying unknown, with the server's message" \
        '"code":-32003,"message":"[^"]*unknown[^"]*Who is this client.*"name":"incompatible"' "$raw"
check_match "unknown: error.data.status is unknown" '"data":\{"status":"unknown"' "$raw"
check_match "while unknown, get_jobs fails with the incompatibility error" '"code":-32003.*Who is this client' \
        "$(rpc manager.get_jobs)"

sim_control compat '{"status":"compatible"}' >/dev/null
ctl manager.verify_compatibility '{"refresh":true}'; out=$OUT
check_eq "back to compatible after refresh" "0" "$CTL_RC"
ctl manager.get_health; out=$OUT
check_eq "calls work again once compatible" "0" "$CTL_RC"
check_match "daemon.status shows compatible again" '"compatibility":\{"status":"compatible"' "$("$AVATARCTL" --json status)"

# --- manager.get_jobs ------------------------------------------------------------------------
ctl manager.get_jobs; out=$OUT
check_eq "get_jobs succeeds" "0" "$CTL_RC"
check_eq "get_jobs lists every job" "9" "$(json_strs name "$out" | wc -l)"
check_eq "get_jobs lists newest first" "$A_rep" "$(json_strs name "$out" | head -n 1)"

ctl manager.get_jobs '{"kind":["standard","report"]}'; out=$OUT
check_eq "kind filter: standard and report jobs only" "report standard" \
        "$(json_strs kind "$out" | sort -u | tr '\n' ' ' | sed 's/ $//')"
check_eq "kind filter: 6 jobs" "6" "$(json_strs name "$out" | wc -l)"
check_match "kind is sent repeated upstream" '"query":"kind=standard&kind=report"' "$(sim_requests "GET /api/jobs")"

ctl manager.get_jobs '{"display_name":"alpha"}'; out=$OUT
check_eq "display_name filter: every alpha job (advice included)" "6" "$(json_strs name "$out" | wc -l)"
check_eq "display_name filter is exact and case-sensitive" "alpha" "$(json_strs display_name "$out" | sort -u)"

ctl manager.get_jobs "{\"set_name\":\"$B\"}"; out=$OUT
check_eq "set_name filter: the two jobs of that run" "$(printf '%s\n' "$B_rep" "$B_std")" "$(json_strs name "$out")"

n=$(sim_count "GET /api/jobs")
ctl manager.get_jobs "{\"display_name\":\"alpha\",\"set_name\":\"$A\"}"; out=$OUT
check_eq "display_name with set_name: invalid params (exit 2)" "2" "$CTL_RC"
raw=$(rpc manager.get_jobs "{\"display_name\":\"alpha\",\"set_name\":\"$A\"}")
check_match "display_name with set_name: code -32602, saying they are exclusive" \
        '"code":-32602,"message":"[^"]*mutually exclusive' "$raw"
check_eq "display_name with set_name: nothing is sent upstream" "$n" "$(sim_count "GET /api/jobs")"

ctl manager.get_jobs '{"limit":3}'; out=$OUT
check_eq "limit 3: three jobs" "3" "$(json_strs name "$out" | wc -l)"
check_eq "limit 3: the newest one first" "$A_rep" "$(json_strs name "$out" | head -n 1)"
ctl manager.get_jobs '{"limit":0}'; out=$OUT
check_eq "limit 0 is invalid params" "2" "$CTL_RC"
ctl manager.get_jobs '{"kind":["bogus"]}'; out=$OUT
check_eq "an unknown kind is invalid params" "2" "$CTL_RC"

G=$(sim_make_set gamma)
G1=$(sim_make_job "$G" standard)
G2=$(sim_make_job "$G" report)
sim_api DELETE "/jobs/$G1" >/dev/null
ctl manager.get_jobs '{"display_name":"gamma"}'; out=$OUT
check_eq "without include_deleted a deleted job is left out" "$G2" "$(json_strs name "$out")"
ctl manager.get_jobs '{"display_name":"gamma","include_deleted":true}'; out=$OUT
check_eq "include_deleted: true lists it too" "2" "$(json_strs name "$out" | wc -l)"
check_match "include_deleted: the deleted job has deleted_at" "\"name\":\"$G1\"[^}]*\"deleted_at\":\"20" "$out"
check_match "include_deleted is sent upstream" '"query":"display_name=gamma&include_deleted=true"' "$(sim_requests "GET /api/jobs")"
ctl manager.delete_jobs "{\"job_names\":[\"$G2\"]}"; out=$OUT

# --- manager.get_job ------------------------------------------------------------------------
ctl manager.get_job "{\"name\":\"$B_std\"}"; out=$OUT
check_eq "get_job succeeds" "0" "$CTL_RC"
check_match "get_job returns the job" "\"name\":\"$B_std\",\"set_name\":\"$B\"" "$out"
check_match "get_job returns its status" '"status":"finished"' "$out"
check_match "get_job marks freshness" '"stale":false,"age_s":' "$out"
ctl manager.get_job '{"name":"no-such-job"}'; out=$OUT
check_eq "get_job of an unknown job exits 6 (not found)" "6" "$CTL_RC"
raw=$(rpc manager.get_job '{"name":"no-such-job"}')
check_match "get_job of an unknown job: class not_found with the server's message and status" \
        '"code":-32005,"message":"[^"]*Job no-such-job not found","data":\{"status":404,"message":"Job no-such-job not found".*"name":"not_found"' "$raw"

# --- manager.get_last_jobs / get_last_results -------------------------------------------------
newest=$(json_strs name "$(sim_api GET '/jobs?limit=3')")
ctl manager.get_last_jobs '{"count":3}'; out=$OUT
check_eq "get_last_jobs succeeds" "0" "$CTL_RC"
check_eq "get_last_jobs count 3: the three most recent jobs, newest first" "$newest" \
        "$(json_strs name "$out")"
check_match "get_last_jobs maps name to job" "\"jobs\":\\{\"$A_rep\":\\{\"name\":\"$A_rep\"" "$out"
ctl manager.get_last_jobs; out=$OUT
check_eq "get_last_jobs defaults to one job: the newest" "$A_rep" "$(json_strs name "$out")"
ctl manager.get_last_jobs '{"count":1000}'; out=$OUT
check_eq "get_last_jobs with a count above the number of jobs returns them all" "9" "$(json_strs name "$out" | wc -l)"

n=$(sim_count "GET /api/results/{job}")
ctl manager.get_last_results '{"count":3}'; out=$OUT
check_eq "get_last_results succeeds" "0" "$CTL_RC"
check_eq "get_last_results: one entry per recent job, newest first" "$newest" "$(json_strs job "$out")"
check_match "a job without results (not finished yet) carries an error" \
        "\"job\":\"$A_rep\"[^{]*\"error\":\\{\"code\":-32005,\"name\":\"not_found\"" "$out"
check_match "a finished job carries its result URLs" "\"job\":\"$D_std\"[^{]*\"results\":\\{\"shuffled\":\\[\"http" "$out"
check_eq "get_last_results asked the server for each job's results" "$((n + 3))" "$(sim_count "GET /api/results/{job}")"
ctl manager.get_last_results; out=$OUT
check_eq "get_last_results defaults to one job" "$A_rep" "$(json_strs job "$out")"

# --- manager.find_ids_by_name ------------------------------------------------------------------
ctl manager.find_ids_by_name '{"set_name":"alpha"}'; out=$OUT
check_eq "find_ids_by_name succeeds" "0" "$CTL_RC"
runs=$(grep -o '"set_name":"[^"]*","jobs"' <<<"$out" | sed 's/"set_name":"//; s/","jobs"//')
check_eq "two alpha runs, the one with the newest job first (A, then C)" "$(printf '%s\n' "$A" "$C")" "$runs"
check_no_match "advice jobs are left out" "$A_adv" "$out"
for j in "$A_std" "$A_pm" "$A_rep" "$C_std" "$C_sm"; do
        check_match "job $j is in its run" "\"name\":\"$j\"" "$out"
done
check_no_match "jobs of other names are not listed" "$B_std|$D_std" "$out"
ctl manager.find_ids_by_name '{"set_name":"Alpha"}'; out=$OUT
check_eq "the match is case-sensitive: Alpha is its own run" "$D" \
        "$(grep -o '"set_name":"[^"]*","jobs"' <<<"$out" | sed 's/"set_name":"//; s/","jobs"//')"
ctl manager.find_ids_by_name '{"set_name":"alph"}'; out=$OUT
check_match "the match is exact: a prefix finds nothing" '"runs":\[\]' "$out"
ctl manager.find_ids_by_name '{"set_name":"no-such-name"}'; out=$OUT
check_eq "an unknown name is not an error" "0" "$CTL_RC"
check_match "an unknown name gives an empty list" '"runs":\[\]' "$out"

# --- ordering by created_at, whatever order the server answers in ------------------------------------
# A job list in no particular order, with fractions of seconds and UTC offsets: the daemon
# must order by the instant, not by position or by the text.
job_json() { # NAME SET KIND CREATED_AT
        printf '{"name":"%s","set_name":"%s","parameters_name":"%s","display_name":"crafted","created_at":"%s","kind":"%s","status":"finished","exception":"","done":true,"progress":1.0,"deleted_at":null}' \
                "$1" "$2" "$3" "$4" "$3"
}
S1=11111111-1111-4111-8111-111111111111
S2=22222222-2222-4222-8222-222222222222
S3=33333333-3333-4333-8333-333333333333
list="{\"jobs\":[$(job_json j-offset "$S2" standard 2026-01-01T10:30:00+02:00),$(job_json j-old "$S1" standard 2026-01-01T08:00:00Z),$(job_json j-advice "$S2" advice 2026-01-01T12:00:00+00:00),$(job_json j-frac "$S3" signal_metrics 2026-01-01T09:00:00.25Z),$(job_json j-new "$S1" report 2026-01-01T09:00:00.500000+00:00)]}"
sim_fault "{\"route\":\"GET /api/jobs\",\"status\":200,\"response\":$list}"
ctl manager.get_last_jobs '{"count":3}'
check_eq "get_last_jobs orders by creation instant, not by the server's order" "j-advice j-new j-frac" \
        "$(json_strs name "$OUT" | tr '\n' ' ' | sed 's/ $//')"
ctl manager.get_last_jobs '{"count":5}'
check_eq "get_last_jobs: +02:00 is taken into account (10:30+02:00 is before 09:00Z)" "j-advice j-new j-frac j-offset j-old" \
        "$(json_strs name "$OUT" | tr '\n' ' ' | sed 's/ $//')"
ctl manager.find_ids_by_name '{"set_name":"crafted"}'
check_eq "find_ids_by_name sorts runs by their newest non-advice job (fractions and offsets included)" \
        "$S1 $S3 $S2" \
        "$(grep -o '"set_name":"[^"]*","jobs"' <<<"$OUT" | sed 's/"set_name":"//; s/","jobs"//' | tr '\n' ' ' | sed 's/ $//')"
check_match "the run of j-old and j-new holds both" "\"set_name\":\"$S1\",\"jobs\":\\[\\{\"name\":\"j-old\".*\\{\"name\":\"j-new\"" "$OUT"
check_no_match "the advice job is in no run" 'j-advice' "$OUT"
ctl manager.delete_job '{"name":"crafted"}'
check_eq "delete_job on the crafted list: three runs are ambiguous" "9" "$CTL_RC"
curl -sS -X DELETE "$SIM_URL/_sim/faults" >/dev/null

# --- manager.delete_job / delete_job_by_id -------------------------------------------------------
bulk=$(sim_count "POST /api/jobs/bulk-delete")
ctl manager.delete_job '{"name":"no-such-name"}'; out=$OUT
check_eq "delete_job of an unknown name exits 6" "6" "$CTL_RC"
check_match "delete_job of an unknown name: not_found, naming it" \
        '"code":-32005,"message":"No jobs found for display name .no-such-name.' "$(rpc manager.delete_job '{"name":"no-such-name"}')"

ctl manager.delete_job '{"name":"alpha"}'; out=$OUT
check_eq "delete_job of a name with two runs exits 9" "9" "$CTL_RC"
raw=$(rpc manager.delete_job '{"name":"alpha"}')
check_match "two runs: class ambiguous (code -32006)" '"code":-32006,.*"name":"ambiguous"' "$raw"
for s in "$A" "$C"; do
        check_match "ambiguous: error.data.candidates lists run $s with its delete_job_by_id call" \
                "\"set_name\":\"$s\"[^]]*\"call\":\\{\"method\":\"manager.delete_job_by_id\",\"params\":\\{\"id\":\"$s\"\\}\\}" "$raw"
        check_contains "ambiguous: the message gives the exact call for run $s" \
                "manager.delete_job_by_id {\\\"id\\\": \\\"$s\\\"}" "$raw"
done
check_eq "no deletion when the name is unknown or ambiguous" "$bulk" "$(sim_count "POST /api/jobs/bulk-delete")"
ctl manager.find_ids_by_name '{"set_name":"alpha"}'
check_eq "both alpha runs are still there" "2" "$(grep -o '"set_name":"[^"]*","jobs"' <<<"$OUT" | wc -l)"

ctl manager.delete_job '{"name":"beta"}'; out=$OUT
check_eq "delete_job of a name with one run succeeds" "0" "$CTL_RC"
check_eq "one bulk-delete request" "$((bulk + 1))" "$(sim_count "POST /api/jobs/bulk-delete")"
check_eq "every job of the run is in deleted_jobs" "$(printf '%s\n' "$B_rep" "$B_std" | sort)" \
        "$(json_strs name "$out" | sort)"
check_match "no failed jobs" '"failed_jobs":\[\]' "$out"
check_match "no batch errors" '"errors":\[\]' "$out"
ctl manager.get_jobs '{"display_name":"beta"}'; out=$OUT
check_match "the run's jobs are gone afterwards" '"jobs":\[\]' "$out"
ctl manager.find_ids_by_name '{"set_name":"beta"}'; out=$OUT
check_match "find_ids_by_name no longer finds the run" '"runs":\[\]' "$out"

ctl manager.delete_job_by_id "{\"id\":\"$C\"}"; out=$OUT
check_eq "delete_job_by_id succeeds" "0" "$CTL_RC"
check_eq "delete_job_by_id deletes every job of the run" "$(printf '%s\n' "$C_sm" "$C_std" | sort)" \
        "$(json_strs name "$out" | sort)"
check_match "delete_job_by_id looked the run up by set_name" "\"query\":\"set_name=$C\"" "$(sim_requests "GET /api/jobs")"
ctl manager.find_ids_by_name '{"set_name":"alpha"}'; out=$OUT
check_eq "afterwards only run A is left under alpha" "$A" \
        "$(grep -o '"set_name":"[^"]*","jobs"' <<<"$out" | sed 's/"set_name":"//; s/","jobs"//')"
ctl manager.delete_job_by_id '{"id":"not-a-uuid"}'; out=$OUT
check_eq "delete_job_by_id checks the id is a UUID (invalid params)" "2" "$CTL_RC"
n=$(sim_count "POST /api/jobs/bulk-delete")
ctl manager.delete_jobs '{"job_names":[]}'
check_match "delete_jobs with no names: an empty result" '"deleted_jobs":\[\],"failed_jobs":\[\],"errors":\[\],"batches":0' "$OUT"
check_eq "delete_jobs with no names sends nothing" "$n" "$(sim_count "POST /api/jobs/bulk-delete")"

# --- manager.delete_jobs: batches of 100 ----------------------------------------------------------
# 250 names of 36 characters each (three real jobs at positions 0, 150 and 249, the rest
# unknown): three bulk-delete requests of 100, 100 and 50 names, i.e. 15 + 39 * n bytes.
E=$(sim_make_set bulk)
E1=$(sim_make_job "$E" standard); E2=$(sim_make_job "$E" report); E3=$(sim_make_job "$E" signal_metrics)
make_names() { # REAL0 REAL150 REAL249
        local i names=()
        for i in $(seq 0 249); do
                case $i in
                0) names+=("\"$1\"") ;;
                150) names+=("\"$2\"") ;;
                249) names+=("\"$3\"") ;;
                *) names+=("\"$(printf '00000000-0000-4000-8000-%012d' "$i")\"") ;;
                esac
        done
        local IFS=,
        printf '{"job_names":[%s]}' "${names[*]}"
}
printf '%s' "$(make_names "$E1" "$E2" "$E3")" >"$TMP/names.json"
before_lines=$(sim_requests "POST /api/jobs/bulk-delete" | wc -l)
out=$("$AVATARCTL" --json call manager.delete_jobs - <"$TMP/names.json" 2>&1); rc=$?
check_eq "delete_jobs with 250 names succeeds" "0" "$rc"
sizes=$(sim_requests "POST /api/jobs/bulk-delete" | tail -n +$((before_lines + 1)) | grep -o '"bytes_in":[0-9]*' | sed 's/.*://' | tr '\n' ' ')
check_eq "exactly three bulk-delete requests of 100, 100 and 50 names" "$((15 + 39 * 100)) $((15 + 39 * 100)) $((15 + 39 * 50)) " "$sizes"
check_eq "deleted_jobs merges the three batches" "$(printf '%s\n' "$E1" "$E2" "$E3" | sort)" "$(json_strs name "$out" | sort)"
check_eq "failed_jobs merges the unknown names of all batches" "247" "$(grep -o '"00000000-0000-4000-8000-[0-9]*"' <<<"$out" | wc -l)"
check_match "three batches were made" '"batches":3' "$out"

# a batch that fails upstream: its names are failed with the reason, the others still happen
F=$(sim_make_set faulty)
F1=$(sim_make_job "$F" standard); F2=$(sim_make_job "$F" report); F3=$(sim_make_job "$F" signal_metrics)
printf '%s' "$(make_names "$F1" "$F2" "$F3")" >"$TMP/names2.json"
sim_fault '{"route":"POST /api/jobs/bulk-delete","status":500,"count":1}'
before_lines=$(sim_requests "POST /api/jobs/bulk-delete" | wc -l)
out=$("$AVATARCTL" --json call manager.delete_jobs - <"$TMP/names2.json" 2>&1); rc=$?
check_eq "delete_jobs with a failing batch still succeeds as a whole" "0" "$rc"
statuses=$(sim_requests "POST /api/jobs/bulk-delete" | tail -n +$((before_lines + 1)) | grep -o '"status":[0-9]*' | sed 's/.*://' | tr '\n' ' ')
check_eq "the failed batch is not retried; the other two are sent" "500 200 200 " "$statuses"
check_eq "the jobs of the other batches are deleted" "$(printf '%s\n' "$F2" "$F3" | sort)" \
        "$(json_strs name "$(grep -o '"deleted_jobs":\[[^]]*\]' <<<"$out")" | sort)"
check_match "the failed batch's real job is among failed_jobs" "\"failed_jobs\":\\[\"$F1\"" "$out"
check_eq "failed_jobs: the 100 names of the failed batch and 147 unknown names" "248" \
        "$(grep -o '"failed_jobs":\[[^]]*\]' <<<"$out" | grep -o '"[0-9a-f-]\{36\}"' | wc -l)"
check_match "errors names the failed batch's reason (class and status)" \
        '"errors":\[\{"job_names":\[[^]]*\],"code":-32001,"name":"upstream_http_error","message":"[^"]*500[^"]*","status":500\}\]' "$out"
check_eq "the error lists the 100 names of that batch" "100" \
        "$(grep -o '"errors":\[{"job_names":\[[^]]*\]' <<<"$out" | grep -o '"[0-9a-f-]\{36\}"' | wc -l)"
ctl manager.get_job "{\"name\":\"$F1\"}"; out=$OUT
check_match "the job of the failed batch still exists" '"deleted_at":null' "$out"

# --- the compatibility check at start-up (server started with --compat) -------------------------------
stop_daemon
stop_sim
checks=$(sim_count "GET /api/check_client")
healths=$(sim_count "GET /api/health")
start_sim --api-key "$SIM_KEY" --job-step-ms 0 --port "$SIM_PORT" --compat incompatible \
        --compat-message "Start-up says no" --compat-recent 7.7.7 || fail "avatar-sim restarts with --compat"
start_daemon || fail "avatard starts against an incompatible server"
# the check runs in the background from the start: wait for its answer
compat_incompatible() {
        "$AVATARCTL" --json status | grep -q '"compatibility":{"status":"incompatible"'
}
wait_for compat_incompatible
st=$("$AVATARCTL" --json status)
check_match "at start-up the daemon asks /check_client and daemon.status shows incompatible" \
        '"compatibility":\{"status":"incompatible","verification":true,"answer":\{"message":"Start-up says no","most_recent_compatible_client":"7.7.7"' "$st"
check_eq "the start-up check was made once" "$((checks + 1))" "$(sim_count "GET /api/check_client")"
check_match "after an incompatible start-up check, get_jobs fails with the incompatibility error" \
        '"code":-32003.*Start-up says no.*"most_recent_compatible_client":"7.7.7","daemon_version":"' "$(rpc manager.get_jobs)"
check_match "after an incompatible start-up check, get_health still answers" '"message":"ok"' "$(rpc manager.get_health)"
check_eq "get_health asked the server once" "$((healths + 1))" "$(sim_count "GET /api/health")"
check_match "the incompatibility is logged" 'says this client is incompatible' "$(cat "$DAEMON_LOG")"

# with upstream.verify_compatibility off the answer is still reported but gates nothing
sed -i 's/^upstream:$/upstream:\n  verify_compatibility: false/' "$CONF"
ctl daemon.reload
check_eq "the configuration with verify_compatibility: false is loaded" "0" "$CTL_RC"
ctl manager.get_health
check_eq "verification off: calls work although the server says incompatible" "0" "$CTL_RC"
raw=$(rpc manager.verify_compatibility '{"refresh":true}')
check_match "verification off: verify_compatibility still reports the incompatibility" \
        '"code":-32003.*"verification":false' "$raw"
ctl manager.get_health
check_eq "verification off: and calls still work after it" "0" "$CTL_RC"

check_no_sanitizer_reports
finish
