#!/usr/bin/env bash
# Black-box test of the daemon against both server generations avatar-sim simulates (see
# tests/avatar-sim/README.md, "Server generations"): the current one of avatar-api.md and an
# old one (GET-only /refresh, PUT /resources answered 201 + Location, no /access/batch, nested
# advice parameters, space-separated timestamps, a /check_client that answers "unknown" to any
# User-Agent but avatar-python/<known>). Against each: avatarctl health, avatarctl avatarize of
# iris.csv (every job, results downloaded and checked) and of a table large enough for a
# multipart upload, the advice of parameters, a job listing, and a legacy login whose token is
# refreshed. The simulator's request log shows which way each difference was taken.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

IRIS_ROWS=$(($(wc -l <"$IRIS") - 1))
SIM_USER='gen-user'
SIM_PASSWORD='gen-password-1'

# a CSV of a little over 12 MiB: a multipart upload of three parts from the 8 MiB threshold
BIG="$TMP/big.csv"
make_csv "$BIG" 400000
BIG_ROWS=400000
BIG_BYTES=$(stat -c %s "$BIG")
check "the large table is over 10 MiB ($BIG_BYTES bytes)" test "$BIG_BYTES" -gt $((10 * 1024 * 1024))

# logged ROUTE STATUS: how many requests of ROUTE the simulator logged with that status.
logged() {
        grep -c -F "\"route\":\"$1\",\"status\":$2," "$SIM_REQUESTS" 2>/dev/null || true
}

# stats_str KEY: a string of the simulator's /_sim/stats.
stats_str() {
        json_str "$1" "$(sim_control stats)"
}

# avatarize DIR FILE [OPTIONS]: avatarctl avatarize FILE in DIR; $OUT and $CTL_RC.
avatarize() {
        local dir="$1"
        shift
        OUT=$(cd "$dir" && "$AVATARCTL" --json --timeout "$(scaled 180)" avatarize "$@" 2>&1)
        CTL_RC=$?
}

# run_generation GEN: the whole exchange against a simulator of generation GEN.
run_generation() {
        local gen="$1" G="[$1]" dir="$TMP/$1" out rc set std sim_k ua n
        mkdir -p "$dir"
        rm -rf "$TMP/storage" "$STATE"
        mkdir -p "$STATE"
        : >"$SIM_REQUESTS"
        if ! start_sim --generation "$gen" --api-key "$SIM_KEY" --user "$SIM_USER:$SIM_PASSWORD" \
                --job-step-ms 50 --storage-credentials "$S3_KEY" --wire-log "$TMP/$gen-wire.jsonl"; then
                fail "$G avatar-sim starts"
                return
        fi
        {
                runner_conf
                printf '  multipart_threshold_bytes: 8388608\n  multipart_part_bytes: 5242880\n'
        } >"$CONF" # runner_conf ends with its runners: section
        if ! start_daemon; then
                fail "$G avatard starts"
                stop_sim
                return
        fi
        pass "$G avatard starts against a simulator of the $gen generation"

        # --- health, and the compatibility gate ------------------------------------------------------
        out=$("$AVATARCTL" --json health 2>&1)
        check_eq "$G avatarctl health succeeds" "0" "$?"
        check_match "$G avatarctl health shows the server's answer" '"message":"ok"' "$out"
        out=$("$AVATARCTL" --json compat --refresh 2>&1)
        rc=$?
        check_eq "$G avatarctl compat succeeds" "0" "$rc"
        check_match "$G the server finds the daemon compatible" '"status":"compatible"' "$out"
        ua=$(stats_str last_check_client_user_agent)
        check_match "$G the daemon's User-Agent leads with avatar-python/<version> ($ua)" \
                '^avatar-python/[0-9]+(\.[0-9]+)* avatard/' "$ua"

        # --- avatarize iris.csv: every job, results downloaded ---------------------------------------
        cp "$IRIS" "$dir/flowers.csv"
        avatarize "$dir" flowers.csv --output "$dir/flowers-out"
        check_eq "$G avatarize flowers.csv succeeds" "0" "$CTL_RC"
        check_match "$G avatarize ran the runner to the end" '"display_name":"flowers",.*"done":true' "$OUT"
        check_eq "$G avatarize wrote the five result files" \
                "flowers.privacy.json flowers.report.pia.docx flowers.shuffled-0.csv flowers.signal.json report.pdf" \
                "$(cd "$dir/flowers-out" 2>/dev/null && printf '%s ' * | sed 's/ $//')"
        check_eq "$G the avatars have the input's header and row count" \
                "$(head -n 1 "$IRIS") $IRIS_ROWS" \
                "$(head -n 1 "$dir/flowers-out/flowers.shuffled-0.csv" 2>/dev/null) $(($(wc -l <"$dir/flowers-out/flowers.shuffled-0.csv" 2>/dev/null || echo 0) - 1))"
        set=$(json_str set_name "$OUT")
        check "$G the set is a UUID ($set)" is_uuid "$set"
        check "$G the avatars are the simulator's, byte for byte" cmp "$dir/flowers-out/flowers.shuffled-0.csv" \
                "$(stored_object "$set" "$(job_field "$OUT" standard name)" flowers.shuffled-0.csv)"
        check "$G the report is the simulator's PDF" cmp "$dir/flowers-out/report.pdf" \
                "$(stored_object "$set" "$(job_field "$OUT" report name)" report.pdf)"
        check "$G the PIA report is the simulator's" cmp "$dir/flowers-out/flowers.report.pia.docx" \
                "$(stored_object "$set" "$(job_field "$OUT" report_pia name)" flowers.report.pia.docx)"
        check_match "$G the privacy metrics name their table" '"table_name": *"flowers"' \
                "$(cat "$dir/flowers-out/flowers.privacy.json" 2>/dev/null)"
        check_match "$G the signal metrics name their table" '"table_name": *"flowers"' \
                "$(cat "$dir/flowers-out/flowers.signal.json" 2>/dev/null)"

        # --- avatarize a table over the multipart threshold ------------------------------------------
        ln -sf "$BIG" "$dir/big.csv"
        avatarize "$dir" big.csv --jobs standard --output "$dir/big-out"
        check_eq "$G avatarize big.csv (multipart) succeeds" "0" "$CTL_RC"
        check_eq "$G the large table went up in a multipart upload" "1" \
                "$(logged 'POST /storage/{bucket}/{key}?uploads' 200)"
        n=$(logged 'PUT /storage/{bucket}/{key}?partNumber&uploadId' 200)
        check "$G ... of three parts or more ($n)" test "${n:-0}" -ge 3
        std=$(job_field "$OUT" standard name)
        check "$G the large avatars are the simulator's, byte for byte" cmp "$dir/big-out/big.shuffled-0.csv" \
                "$(stored_object "$(json_str set_name "$OUT")" "$std" big.shuffled-0.csv)"
        check_eq "$G the large avatars have the input's header and row count" \
                "$(head -n 1 "$BIG") $BIG_ROWS" \
                "$(head -n 1 "$dir/big-out/big.shuffled-0.csv" 2>/dev/null) $(($(wc -l <"$dir/big-out/big.shuffled-0.csv" 2>/dev/null || echo 0) - 1))"
        check "$G the large avatars hold the input's rows" \
                cmp <(tail -n +2 "$BIG" | sort) <(tail -n +2 "$dir/big-out/big.shuffled-0.csv" | sort)

        # --- advice --------------------------------------------------------------------------------------
        ctl manager.create_runner '{"set_name":"advised"}'
        R=$(runner_id_of "$OUT")
        ctl runner.add_table "{\"runner_id\":\"$R\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$IRIS"
        check_eq "$G add_table for the advice" "0" "$CTL_RC"
        ctl runner.advise_parameters "{\"runner_id\":\"$R\"}"
        check_eq "$G advise_parameters succeeds" "0" "$CTL_RC"
        out=$(find "$TMP/storage" -name iris.advice.json -type f -exec cat {} + | tr -d ' \n')
        if [ "$gen" = old ]; then
                check_match "$G the simulator's advice is nested" '"advice":\{"parameters":\{"k":' "$out"
        else
                check_match "$G the simulator's advice is flat" '"advice":\{"k":' "$out"
        fi
        sim_k=$(grep -o '"k":[0-9]*' <<<"$out" | head -n 1 | cut -d: -f2)
        check_match "$G the simulator advised a k ($sim_k)" '^[0-9]+$' "$sim_k"
        # the server's advice as it came (either shape), and the parameters drawn from it
        check_match "$G the daemon returns the simulator's advice" \
                "\"advice\":\\{\"iris\":\\{(\"parameters\":\\{)?\"k\":$sim_k," "$OUT"
        check_match "$G the parameters get k, ncp and the imputation from the advice" \
                "\"parameters\":\\{\"iris\":\\{\"k\":$sim_k,\"ncp\":[0-9]+,\"use_categorical_reduction\":false,\"imputation_method\":\"knn\"" "$OUT"

        # --- job listings ----------------------------------------------------------------------------------
        out=$("$AVATARCTL" --json jobs --set "$set" 2>&1)
        check_eq "$G avatarctl jobs --set succeeds" "0" "$?"
        check_eq "$G ... and lists the five jobs of the iris run" "5" "$(json_strs set_name "$out" | grep -c -F "$set")"
        check_match "$G ... with their creation times" '"created_at":"[0-9]{4}-[0-9]{2}-[0-9]{2}' "$out"
        out=$("$AVATARCTL" --json jobs 2>&1)
        check_eq "$G avatarctl jobs succeeds" "0" "$?"
        check_eq "$G ... and lists every job of the account (5 + 1 + 1)" "7" "$(json_strs kind "$out" | grep -c .)"
        out=$("$AVATARCTL" --json jobs --last 2 2>&1)
        check_eq "$G avatarctl jobs --last 2 succeeds" "0" "$?"
        check_eq "$G ... and lists two jobs" "2" "$(json_strs parameters_name "$out" | grep -c .)"

        # --- the differences, as the simulator saw them -------------------------------------------------
        if [ "$gen" = old ]; then
                check_eq "$G every PUT /resources was answered 201" "0" \
                        "$(logged 'PUT /api/resources/{display_name}' 200)"
                check "$G ... and its Location was read" test \
                        "$(logged 'GET /api/resources/{set_name}' 200)" -ge "$(logged 'PUT /api/resources/{display_name}' 201)"
                check "$G /access/batch was missing ($(logged 'POST /api/access/batch' 404) times)" test \
                        "$(logged 'POST /api/access/batch' 404)" -ge 1
                check "$G ... and the files were granted one by one" test "$(logged 'GET /api/access' 200)" -ge 6
                check_eq "$G no /check_client answer was unknown (the User-Agent is known)" "$ua" \
                        "$(stats_str last_check_client_user_agent)"
        else
                check_eq "$G PUT /resources is answered 200" "0" "$(logged 'PUT /api/resources/{display_name}' 201)"
                check "$G downloads are granted by /access/batch" test "$(logged 'POST /api/access/batch' 200)" -ge 1
                check_eq "$G /access/batch never missed" "0" "$(logged 'POST /api/access/batch' 404)"
        fi

        # --- a legacy login whose token expires and is refreshed ---------------------------------------
        # a login is for a daemon without an API key
        stop_daemon
        rm -f "$STATE/api-key"
        unset AVATAR_API_KEY
        start_daemon || fail "$G avatard starts without an API key"
        export AVATAR_API_KEY="$SIM_KEY"
        ctl manager.authenticate "{\"username\":\"$SIM_USER\",\"password\":\"$SIM_PASSWORD\"}"
        check_eq "$G a legacy login succeeds" "0" "$CTL_RC"
        check_match "$G the daemon now uses the login session" '"credential":\{"kind":"login"' \
                "$("$AVATARCTL" --json status)"
        sim_control expire-tokens '{}' >/dev/null
        out=$("$AVATARCTL" --json jobs --kind advice 2>&1)
        check_eq "$G a call after the token expired succeeds" "0" "$?"
        if [ "$gen" = old ]; then
                check_eq "$G the token was refreshed with GET" "1" "$(logged 'GET /api/refresh' 200)"
        else
                check_eq "$G the token was refreshed" "1" \
                        "$(($(logged 'POST /api/refresh' 200) + $(logged 'GET /api/refresh' 200)))"
        fi

        check_no_sanitizer_reports
        stop_daemon
        check_eq "$G avatard exits 0" "0" "$?"
        stop_sim
        cp "$SIM_REQUESTS" "$TMP/$gen-requests.jsonl"

        # --- AWS's own signer recomputes every storage request's signature ----------------------------
        n=$(wc -l <"$TMP/$gen-wire.jsonl")
        out=$(/usr/bin/python3 "$SOURCE_ROOT/tests/blackbox/verify-sigv4.py" --all --key "$S3_KEY" \
                "$TMP/$gen-wire.jsonl" 2>&1)
        rc=$?
        if [ "$rc" = 0 ]; then
                pass "$G botocore verifies the signature of each of the $n storage requests"
        else
                fail "$G botocore verifies the signature of each of the $n storage requests" \
                        "$(grep -v '^ok ' <<<"$out" | head -n 20)"
        fi
        check_eq "$G every storage request was checked" "$n" "$(grep -c '^ok ' <<<"$out")"
}

# storage credentials of the simulator's, for botocore to re-sign the daemon's requests with
S3_KEY="bbGenerationsKey:bbGenerationsSecret0123456789"
export AVATAR_API_KEY="$SIM_KEY"
run_generation current
run_generation old

finish
