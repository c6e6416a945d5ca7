# shellcheck shell=bash
# Helpers for the black-box tests of the Manager operations: fixtures built in avatar-sim
# through its own HTTP API (curl), raw JSON-RPC calls through avatard-probe, and value
# extraction without jq. Sourced after lib.sh; uses $SIM_URL, $SIM_REQUESTS, $SOCK, $PROBE.

# The API key the simulator accepts and the daemon uses (tests may change it before start_sim).
SIM_KEY="${SIM_KEY:-bb-key-$$}"

# sim_api METHOD PATH [CURL-ARGS...]: an authenticated call of the simulator's API; prints the body.
sim_api() {
        local method="$1" path="$2"
        shift 2
        curl -sS --max-time "$(scaled 10)" -X "$method" -H "Authorization: api-key-v1 $SIM_KEY" "$@" "$SIM_URL/api$path"
}

# sim_control PATH [JSON]: a call of the /_sim control API (POST with a JSON body, or GET
# without one); prints the body.
sim_control() {
        if [ $# -ge 2 ]; then
                curl -sS --max-time "$(scaled 10)" -X POST -H 'Content-Type: application/json' -d "$2" "$SIM_URL/_sim/$1"
        else
                curl -sS --max-time "$(scaled 10)" "$SIM_URL/_sim/$1"
        fi
}

# sim_fault JSON: adds a fault rule.
sim_fault() {
        sim_control fault "$1" >/dev/null
}

# json_str KEY TEXT: the first string value of "KEY" in TEXT.
json_str() {
        grep -o "\"$1\":\"[^\"]*\"" <<<"$2" | head -n 1 | sed 's/^"[^"]*":"//; s/"$//'
}

# json_strs KEY TEXT: every string value of "KEY" in TEXT, one per line.
json_strs() {
        grep -o "\"$1\":\"[^\"]*\"" <<<"$2" | sed 's/^"[^"]*":"//; s/"$//'
}

# json_num KEY TEXT: the first number value of "KEY" in TEXT.
json_num() {
        grep -o "\"$1\":-\?[0-9][0-9.]*" <<<"$2" | head -n 1 | sed 's/^"[^"]*"://'
}

# count_lines TEXT: the number of non-empty lines.
count_lines() {
        grep -c . <<<"$1" || true
}

# The resource YAML of a set with one parameters document of every job kind.
sim_set_yaml() {
        cat <<EOF
kind: AvatarMetadata
metadata:
  name: avatar-metadata-$1
spec:
  display_name: $1
---
kind: AvatarSchema
metadata:
  name: schema
spec:
  tables:
  - name: iris
    data:
      volume: input
      file: iris.csv
---
kind: AvatarSchema
metadata:
  name: schema_avatarized
spec:
  tables:
  - name: iris
    avatars_data:
      auto: true
  schema_ref: schema
---
kind: AvatarAdviceParameters
metadata:
  name: advice_parameters
spec:
  schema: schema
  advice:
    advisor_type:
    - parameters
  results:
    volume: results
    path: advice
---
kind: AvatarParameters
metadata:
  name: standard
spec:
  schema: schema
  avatarization:
    iris:
      k: 5
  results:
    volume: results
    path: standard
---
kind: AvatarPrivacyMetricsParameters
metadata:
  name: privacy_metrics
spec:
  schema: schema_avatarized
  avatarization_ref: standard
  results:
    volume: results
    path: privacy_metrics
---
kind: AvatarSignalMetricsParameters
metadata:
  name: signal_metrics
spec:
  schema: schema_avatarized
  avatarization_ref: standard
  results:
    volume: results
    path: signal_metrics
---
kind: AvatarReportParameters
metadata:
  name: report
spec:
  report_type: basic
  output_format: pdf
  language: en
  results:
    volume: results
    path: report
EOF
}

# sim_make_set DISPLAY_NAME: PUT /resources/DISPLAY_NAME; prints the new set_name (a UUID).
sim_make_set() {
        local out
        out=$(sim_set_yaml "$1" | sim_api PUT "/resources/$1" -H 'Content-Type: application/yaml' --data-binary @-)
        json_str set_name "$out"
}

# sim_make_job SET_NAME PARAMETERS_NAME: POST /jobs; prints the job name.
# (standard, privacy_metrics, signal_metrics, report, advice_parameters)
sim_make_job() {
        local out
        out=$(sim_api POST /jobs -H 'Content-Type: application/json' \
                -d "{\"set_name\":\"$1\",\"parameters_name\":\"$2\",\"depends_on\":[]}")
        json_str name "$out"
}

# sim_upload_input: stores iris.csv in the user's upload area through /access and SigV4 S3,
# so that standard jobs of sim_set_yaml sets finish with results.
sim_upload_input() {
        local me uid acc kid secret
        me=$(sim_api GET /users/me)
        uid=$(json_str id "$me")
        acc=$(sim_api GET /access -G --data-urlencode "url=s3://$uid/30d/iris.csv")
        kid=$(json_str access_key_id "$acc")
        secret=$(json_str secret_access_key "$acc")
        printf 'sepal_length,sepal_width,species\n5.1,3.5,setosa\n4.9,3.0,setosa\n6.2,2.9,versicolor\n' >"$TMP/iris.csv"
        curl -sS --max-time "$(scaled 10)" -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
                --user "$kid:$secret" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
                -T "$TMP/iris.csv" "$SIM_URL/storage/$uid/30d/iris.csv"
}

# sim_tick N: advances every job N steps.
sim_tick() {
        sim_control tick "{\"count\":$1}" >/dev/null
}

# sim_requests ROUTE: the request-log lines of a route.
sim_requests() {
        [ -f "$SIM_REQUESTS" ] || return 0
        grep -F "\"route\":\"$1\"" "$SIM_REQUESTS" || true
}

# ctl METHOD [PARAMS]: avatarctl --json call; stdout and stderr together in $OUT, the exit
# code in $CTL_RC (not in a subshell, so both stay set).
OUT=""
CTL_RC=0
ctl() {
        OUT=$("$AVATARCTL" --json --timeout "$(scaled 30)" call "$@" 2>&1)
        CTL_RC=$?
}

# rpc METHOD [PARAMS-JSON]: one raw JSON-RPC request on the socket; prints the reply line as
# it travelled (an expectation that never matches makes the probe print the reply). The
# probe runs under $RPC_WRAP (e.g. a command that changes the user) when set.
RPC_WRAP=""
rpc() {
        local script="$TMP/rpc.$$.$RANDOM.conv" params="${2:-}"
        [ -n "$params" ] || params='{}'
        printf '> {"jsonrpc":"2.0","id":1,"method":"%s","params":%s}\n<match \001\n' "$1" "$params" >"$script"
        chmod 0644 "$script"
        # shellcheck disable=SC2086
        $RPC_WRAP "$PROBE" script "$SOCK" "$script" 2>&1 | sed -n 's/^  //p' | head -n 1
        rm -f "$script"
}

# check_contains DESCRIPTION FIXED-STRING TEXT: passes when TEXT contains the string.
check_contains() {
        if grep -Fq -- "$2" <<<"$3"; then
                pass "$1"
        else
                fail "$1" "string: $2" "text: $(printf '%s' "$3" | head -c 2000)"
        fi
}

# check_no_sanitizer_reports: stops the daemon (leak reports come at exit) and fails when its
# log holds an AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer report.
check_no_sanitizer_reports() {
        stop_daemon >/dev/null 2>&1 || true
        if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)' "$DAEMON_LOG" 2>/dev/null; then
                fail "no sanitizer report in the daemon's log" "$(grep -E -m 5 -A 3 'ERROR:|runtime error:' "$DAEMON_LOG")"
        else
                pass "no sanitizer report in the daemon's log"
        fi
}

# wait_for COMMAND...: until the command succeeds (its output dropped), for up to 10 s (scaled).
wait_for() {
        wait_until 10 _quietly "$@"
}
_quietly() {
        "$@" >/dev/null 2>&1
}

# sim_hold ROUTE [COUNT]: the simulator holds requests of ROUTE (the next COUNT ones, default
# every one) unanswered until sim_release lets them go on: an answer held until the test has
# seen what it waits for, however slow the machine. The simulator answers everything else,
# control calls included.
sim_hold() {
        if [ $# -ge 2 ]; then
                sim_fault "{\"route\":\"$1\",\"hold\":true,\"count\":$2}"
        else
                sim_fault "{\"route\":\"$1\",\"hold\":true}"
        fi
}

# sim_release [ROUTE]: the held requests (of ROUTE) go on and are answered as usual; prints
# how many.
sim_release() {
        local out
        if [ $# -ge 1 ]; then
                out=$(sim_control release "{\"route\":\"$1\"}")
        else
                out=$(sim_control release '{}')
        fi
        json_num released "$out"
}

# sim_held N: whether exactly N requests are held at the simulator now (for wait_until);
# never once the simulator is gone.
sim_held() {
        kill -0 "$SIM_PID" 2>/dev/null || return "$WAIT_NEVER"
        [ "$(json_num held "$(sim_control stats)")" = "$1" ]
}

# sim_hold_api: the simulator holds every API request until sim_unhold.
sim_hold_api() {
        sim_fault '{"path":"/api","hold":true}'
}

# sim_unhold: removes every fault rule; what they held goes on and is answered.
sim_unhold() {
        curl -sS --max-time "$(scaled 10)" -X DELETE "$SIM_URL/_sim/faults" >/dev/null
}

# status_is KEY N: whether daemon.status shows exactly N for KEY (for wait_until); never
# once the daemon is gone.
status_is() {
        kill -0 "$DAEMON_PID" 2>/dev/null || return "$WAIT_NEVER"
        [ "$(status_num "$1")" = "$2" ]
}

# reload_config: re-reads $CONF (daemon.reload); fails when the daemon rejected it.
reload_config() {
        ctl daemon.reload
        [ "$CTL_RC" = 0 ] || { echo "# daemon.reload failed: $OUT" >&2; return 1; }
}
