#!/usr/bin/env bash
# Black-box tests of the runner's tolerance of older servers: POST /access/batch answered 404
# or 405 falls back to one GET /access per file (and the daemon remembers it), a clear error
# when both fail; advice files in the nested and flat shapes, a clear error for any other;
# PUT /resources answered 201 without a set; then a whole advice + run + download against
# avatar-sim --generation old (201 + Location on resources, no batch, nested advice).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

start_sim --api-key "$SIM_KEY" --job-step-ms 100 || { fail "avatar-sim starts"; finish; exit $?; }
runner_conf >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

# download_shuffled RUNNER OUT-FILE: runner.download of the shuffled table into a descriptor.
download_shuffled() {
        ctl runner.download "{\"runner_id\":\"$1\",\"result\":\"shuffled\",\"table\":\"iris\",\"fd\":{\"fd\":0}}" \
                --out "$2"
}

R1=$(new_iris_runner batchless)
ctl runner.run "{\"runner_id\":\"$R1\",\"jobs\":[\"standard\"]}"
check_eq "a standard run starts" "0" "$CTL_RC"
S1=$(json_str set_name "$OUT")
STD1=$(job_field "$OUT" standard name)
wait_runner "$R1"
check_match "the run finishes" '"done":true' "$OUT"

# --- /access/batch missing: both ways failing is one clear error ------------------------------------
sim_fault '{"route":"POST /api/access/batch","status":404}'
sim_fault '{"route":"GET /api/access","status":403,"count":1}'
batch0=$(sim_count "POST /api/access/batch")
single0=$(sim_count "GET /api/access")
download_shuffled "$R1" "$TMP/fail.csv"
check_fails "a download fails when batch is missing and GET /access is refused" test "$CTL_RC" = 0
check_contains "the error says batch is missing and GET /access failed too" \
        "POST /access/batch is missing (HTTP 404) and GET /access failed too" "$OUT"
check_eq "batch was asked once" "$((batch0 + 1))" "$(sim_count "POST /api/access/batch")"
check_eq "then GET /access once" "$((single0 + 1))" "$(sim_count "GET /api/access")"

# --- the fallback works, and later downloads go straight to GET /access -----------------------------
download_shuffled "$R1" "$TMP/shuffled.csv"
check_eq "with batch missing a download succeeds through GET /access" "0" "$CTL_RC"
check "the file is byte-exact against the simulator's object" \
        cmp "$TMP/shuffled.csv" "$(stored_object "$S1" "$STD1" iris.shuffled-0.csv)"
check_eq "batch was not asked again: the daemon remembers the server lacks it" \
        "$((batch0 + 1))" "$(sim_count "POST /api/access/batch")"
check_eq "one GET /access per file" "$((single0 + 2))" "$(sim_count "GET /api/access")"
check_match "the GET /access names the result's envelope" '"query":"url=[^"]*%2Firis\.shuffled-0\.csv"' \
        "$(sim_requests "GET /api/access" | tail -n 1)"
download_shuffled "$R1" "$TMP/shuffled2.csv"
check_eq "a second download succeeds" "0" "$CTL_RC"
check_eq "still no batch request" "$((batch0 + 1))" "$(sim_count "POST /api/access/batch")"
check_eq "one more GET /access" "$((single0 + 3))" "$(sim_count "GET /api/access")"

# --- 405 (a server with the path for another method) falls back too; a new daemon asks again ------
stop_daemon
sim_unhold
sim_fault '{"route":"POST /api/access/batch","status":405}'
start_daemon || fail "avatard restarts"
download_shuffled "$R1" "$TMP/shuffled3.csv"
check_eq "batch answered 405: the download succeeds through GET /access" "0" "$CTL_RC"
check "and gives the same file" cmp "$TMP/shuffled.csv" "$TMP/shuffled3.csv"
check_eq "a restarted daemon tried batch once more" "$((batch0 + 2))" "$(sim_count "POST /api/access/batch")"
sim_unhold
download_shuffled "$R1" "$TMP/shuffled4.csv"
check_eq "batch is not tried again within the daemon's life" "$((batch0 + 2))" "$(sim_count "POST /api/access/batch")"

# --- batch failing otherwise is no reason to fall back ------------------------------------------------
stop_daemon
sim_fault '{"route":"POST /api/access/batch","status":403,"count":1}'
start_daemon || fail "avatard restarts"
single1=$(sim_count "GET /api/access")
download_shuffled "$R1" "$TMP/refused.csv"
check_fails "batch refused (403): the download fails" test "$CTL_RC" = 0
check_eq "a 403 from batch does not fall back to GET /access" "$single1" "$(sim_count "GET /api/access")"
download_shuffled "$R1" "$TMP/shuffled5.csv"
check_eq "nor is it remembered: the next download uses batch again" "0" "$CTL_RC"
check_eq "without GET /access" "$single1" "$(sim_count "GET /api/access")"

# --- advice files: nested and flat shapes, anything else refused ------------------------------------
# advise_with RUNNER JSON: advise_parameters, with the advice file replaced by JSON while the
# daemon's GET /results of the advice job is held (the job has written its file by then).
advise_with() {
        local file
        sim_hold "GET /api/results/{job}" 1
        pcall_bg "$TMP/advice.out" -t 60 runner.advise_parameters "{\"runner_id\":\"$1\"}"
        wait_until 20 sim_held 1 || fail "the daemon asks for the advice results" "$(cat "$TMP/advice.out")"
        file=$(find "$TMP/storage" -newer "$TMP/advice.out" -name iris.advice.json -type f | head -n 1)
        [ -n "$file" ] || fail "the advice job wrote its file"
        printf '%s\n' "$2" >"$file"
        sim_release >/dev/null
        wait "$PCALL_PID"
        OUT=$(reply_of "$(cat "$TMP/advice.out")")
}

RA=$(new_iris_runner nested)
advise_with "$RA" '[{"table_name":"iris","advice":{"parameters":{"k":7,"ncp":3,"use_categorical_reduction":true,"imputation":{"method":"knn","k":4,"training_fraction":0.5,"return_data_imputed":false}},"summary":{"n":150}}}]'
check_match "nested advice (advice.parameters) is applied" \
        '"parameters":\{"iris":\{"k":7,"ncp":3,"use_categorical_reduction":true,"imputation_method":"knn","imputation_k":4' "$OUT"

RF=$(new_iris_runner flat)
advise_with "$RF" '{"table_name":"iris","advice":{"k":6,"ncp":2,"use_categorical_reduction":false,"summary":{}}}'
check_match "flat advice, one object instead of a list, is applied" \
        '"parameters":\{"iris":\{"k":6,"ncp":2,"use_categorical_reduction":false' "$OUT"

RX=$(new_iris_runner odd)
advise_with "$RX" '[{"table_name":"iris","advice":{"parameters":"k=7"}}]'
check_contains "an advice of another shape is a clear error" \
        "The advice for table 'iris' cannot be read: the advice's 'parameters' member is not an object" "$OUT"
advise_with "$RX" '[{"table_name":"iris","advice":{"summary":{"k":9}}}]'
check_contains "an advice without parameters is a clear error" "The advice for table 'iris' cannot be read: the advice holds no parameters" "$OUT"
advise_with "$RX" '[{"advice":{"k":9}}]'
check_contains "an advice item without a table is a clear error" "An advice file item has no table_name or no advice" "$OUT"
ctl runner.export_yaml "{\"runner_id\":\"$RX\"}"
check_match "a refused advice leaves the parameters as they were" 'avatarization:\\n    iris:\\n      k: 5\\n' "$OUT"

# --- a download stopped with its access request in flight leaves nothing behind -----------------
# The daemon stops at once (no drain), cancelling the download while the simulator holds its
# POST /access/batch: no callback comes, and the request's state must still be released (the
# ASan and valgrind legs report a leak in the daemon's log or report at the end).
stop_daemon
runner_conf "$(printf 'limits:\n  shutdown_timeout_s: 0')" >"$CONF"
start_daemon || fail "avatard restarts"
sim_hold "POST /api/access/batch"
pcall_bg "$TMP/held-download.out" -t 60 runner.download \
        "{\"runner_id\":\"$R1\",\"result\":\"shuffled\",\"table\":\"iris\"}"
check "the download's access request is held at the simulator" wait_until 30 sim_held 1
stop_daemon
check_eq "the daemon stops with the access request in flight" "0" "$?"
wait "$PCALL_PID"
check_fails "the cancelled download is not answered as a success" grep -q '"result"' "$TMP/held-download.out"
sim_unhold
runner_conf >"$CONF"
start_daemon || fail "avatard restarts"

# --- PUT /resources answered 201 with neither a set nor a Location ----------------------------------
RP=$(new_iris_runner put201)
sim_fault '{"route":"PUT /api/resources/{display_name}","status":201,"response":{"message":"Created"},"count":1}'
ctl runner.run "{\"runner_id\":\"$RP\",\"jobs\":[\"standard\"]}"
check_fails "a 201 without a set or a Location fails the run" test "$CTL_RC" = 0
check_contains "and says why" "The answer to PUT /resources holds no set_name" "$OUT"

# --- an older server end to end: 201 + Location, no batch, nested advice ------------------------------
stop_daemon
stop_sim
start_sim --api-key "$SIM_KEY" --job-step-ms 100 --generation old ||
        { fail "avatar-sim --generation old starts"; finish; exit $?; }
# a User-Agent the old server knows: its compatibility gate is not what this test is about
runner_conf | sed "s|^  base_url: .*|&\n  user_agent: \"avatar-python/1.0.8 avatard-test\"|" >"$CONF"
start_daemon || { fail "avatard starts against an old server"; finish; exit $?; }
batch0=$(sim_count "POST /api/access/batch")
single0=$(sim_count "GET /api/access")
RO=$(new_iris_runner old)
ctl runner.advise_parameters "{\"runner_id\":\"$RO\"}"
check_eq "old server: advise_parameters succeeds" "0" "$CTL_RC"
advice_file=$(find "$TMP/storage" -newer "$TMP/advice.out" -name iris.advice.json -type f | head -n 1)
check_match "old server: the advice file nests the parameters" '"advice":\{"parameters":\{"k"' "$(tr -d ' \n' <"$advice_file")"
old_k=$(tr -d ' \n' <"$advice_file" | grep -o '"k":[0-9]*' | head -n 1 | cut -d: -f2)
check_match "old server: the nested advice is applied" "\"parameters\":\\{\"iris\":\\{\"k\":$old_k,\"ncp\":[0-9]+" "$OUT"
check_eq "old server: PUT /resources was followed to its Location" "1" \
        "$(sim_requests "GET /api/resources/{set_name}" | grep -c '"status":200')"
ctl runner.run "{\"runner_id\":\"$RO\",\"jobs\":[\"standard\"]}"
check_eq "old server: run succeeds" "0" "$CTL_RC"
SO=$(json_str set_name "$OUT")
check "old server: the set named by the Location is the run's" is_uuid "$SO"
check_match "old server: its PUT was answered 201" '"status":201' \
        "$(sim_requests "PUT /api/resources/{display_name}" | tail -n 1)"
check_match "old server: the run's Location was read" "\"path\":\"/api/resources/$SO\"" \
        "$(sim_requests "GET /api/resources/{set_name}")"
STDO=$(job_field "$OUT" standard name)
wait_runner "$RO"
check_match "old server: the run finishes" '"done":true' "$OUT"
download_shuffled "$RO" "$TMP/old.csv"
check_eq "old server: the download succeeds without /access/batch" "0" "$CTL_RC"
check "old server: the file is byte-exact" cmp "$TMP/old.csv" "$(stored_object "$SO" "$STDO" iris.shuffled-0.csv)"
check_eq "old server: batch was tried once (advice file), then remembered" \
        "$((batch0 + 1))" "$(sim_count "POST /api/access/batch")"

check_no_sanitizer_reports
finish
