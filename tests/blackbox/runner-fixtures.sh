# shellcheck shell=bash
# Helpers for the black-box tests of the runner methods: the configuration they share, raw
# calls through avatard-probe with descriptors and notifications, JSON and YAML extraction
# without jq, and lookups in the simulator's storage. Sourced after lib.sh and
# sim-fixtures.sh.

IRIS="$SOURCE_ROOT/tests/data/iris.csv"

# runner_conf [EXTRA-YAML]: a configuration for runner tests (one poll a second) on stdout.
runner_conf() {
        cat <<EOF
log_level: debug
upstream:
  base_url: $SIM_URL
  max_attempts: 3
  retry_base_ms: 50
  retry_max_ms: 200
cache:
  jobs_ttl_s: 0
runners:
  poll_min_s: 1
  poll_max_s: 1
EOF
        [ $# -gt 0 ] && printf '%s\n' "$1"
        return 0
}

# pcall [-f PATH] [-o PATH] [-t SECONDS] METHOD PARAMS-JSON: one request through the raw client
# with descriptors attached; every line received (notifications, then the reply) is on
# stdout, one per line.
PCALL_ID=100
pcall() {
        pcall_argv "$@"
        "${PCALL_ARGV[@]}"
}

# pcall_bg FILE [-f PATH] [-o PATH] [-t SECONDS] METHOD PARAMS-JSON: pcall in the background,
# its output in FILE; PCALL_PID is the probe's own process, for `wait` or for a test that makes
# the caller leave (kill) at the moment it chooses.
PCALL_PID=""
pcall_bg() {
        local file="$1"
        shift
        pcall_argv "$@"
        "${PCALL_ARGV[@]}" >"$file" 2>&1 &
        PCALL_PID=$!
}

# Sets PCALL_ARGV to the probe's command line for pcall's arguments.
pcall_argv() {
        local opts=()
        while [ $# -gt 2 ]; do
                opts+=("$1" "$2")
                shift 2
        done
        PCALL_ID=$((PCALL_ID + 1))
        PCALL_ARGV=("$PROBE" call "$SOCK" "${opts[@]}"
                "{\"jsonrpc\":\"2.0\",\"id\":$PCALL_ID,\"method\":\"$1\",\"params\":$2}")
}

# call_in_two_strides FILE REGEX METHOD PARAMS-JSON: pcall_bg of a call that follows jobs
# (output in FILE); once the daemon runs it, the simulator's jobs move three steps, and once
# REGEX is in the output, thirty more; then waits for the call to end. The jobs move only when
# the call is in place, so it sees them pending first and finished later, however fast the
# daemon polls.
call_in_two_strides() {
        local file="$1" regex="$2" method="$3" params="$4" calls
        calls=$(status_num "$method")
        pcall_bg "$file" -t 120 "$method" "$params"
        wait_for_calls "$method" $((${calls:-0} + 1))
        sim_tick 3
        wait_for_output 10 "$file" "$regex" "$PCALL_PID"
        sim_tick 30
        wait "$PCALL_PID"
}

# make_csv PATH ROWS: a CSV table of ROWS rows and four columns (about 30 bytes a row), e.g.
# 400,000 rows (12 MiB) for a multipart upload with an 8 MiB threshold.
make_csv() {
        awk -v n="$2" 'BEGIN {
                print "id,x,y,label"
                for (i = 0; i < n; i++) printf "%d,%.3f,%.3f,label-%d\n", i, i / 7, i / 13, i % 17
        }' >"$1"
}

# reply_of LINES: the last line (the reply of a pcall).
reply_of() {
        tail -n 1 <<<"$1"
}

# notes_of LINES METHOD: the notification lines of that method.
notes_of() {
        grep -F "\"method\":\"$2\"" <<<"$1" || true
}

# runner_id_of TEXT: the first runner_id.
runner_id_of() {
        json_str runner_id "$1"
}

# job_field TEXT PARAMETERS-NAME KEY: a string member of the job with that parameters_name
# (the first job object in TEXT that has it).
job_field() {
        grep -o "{\"parameters_name\":\"$2\"[^{}]*}" <<<"$1" | head -n 1 | grep -o "\"$3\":\"[^\"]*\"" |
                head -n 1 | sed 's/^"[^"]*":"//; s/"$//'
}

# json_raw_str KEY TEXT: the first string value of KEY with its escapes kept (\n, \").
json_raw_str() {
        sed -n "s/.*\"$1\":\"\\(\\([^\"\\\\]\\|\\\\.\\)*\\)\".*/\\1/p" <<<"$2" | head -n 1
}

# json_unescape: a JSON string body (escapes kept) on stdin to its text on stdout (enough for
# YAML and CSV: \n, \t, \", \/, \\).
json_unescape() {
        local s
        s=$(cat)
        s=${s//\\\\/$'\001'}
        s=${s//\\n/$'\n'}
        s=${s//\\t/$'\t'}
        s=${s//\\\"/\"}
        s=${s//\\\//\/}
        s=${s//$'\001'/\\}
        printf '%s\n' "$s"
}

# stored_object SET JOB FILE: the path of a result file in the simulator's storage.
stored_object() {
        find "$TMP/storage" -path "*/results/$1/$2/$3" -type f 2>/dev/null | head -n 1
}

# wait_runner RUNNER-ID [TIMEOUT-S]: runner.wait through avatarctl; $OUT, $CTL_RC (those of
# sim-fixtures.sh's ctl). The timeout (scaled) only bounds a hang.
# shellcheck disable=SC2034
wait_runner() {
        OUT=$("$AVATARCTL" --json --timeout "$(scaled "${2:-60}")" call runner.wait "{\"runner_id\":\"$1\"}" 2>&1)
        CTL_RC=$?
}

# sim_job_status SET KIND: the status of the set's first job of that kind as the simulator
# has it (what the daemon's polls catch up with).
sim_job_status() {
        json_str status "$(sim_api GET "/jobs?set_name=$1&kind=$2")"
}

# new_iris_runner NAME [K]: a runner with the iris table uploaded by descriptor and k set;
# prints its id.
new_iris_runner() {
        local out id
        out=$("$AVATARCTL" --json call manager.create_runner "{\"set_name\":\"$1\"}")
        id=$(runner_id_of "$out")
        "$AVATARCTL" --json call runner.add_table \
                "{\"runner_id\":\"$id\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$IRIS" >/dev/null
        "$AVATARCTL" --json call runner.set_parameters \
                "{\"runner_id\":\"$id\",\"table_name\":\"iris\",\"k\":${2:-5}}" >/dev/null
        printf '%s\n' "$id"
}

# seqs_consecutive LINES: whether the "seq" values of the lines are 1, 2, 3, ... in order.
seqs_consecutive() {
        local expect=1 s
        for s in $(grep -o '"seq":[0-9]*' <<<"$1" | cut -d: -f2); do
                [ "$s" = "$expect" ] || return 1
                expect=$((expect + 1))
        done
        [ "$expect" -gt 1 ]
}

# a_uuid TEXT: whether TEXT is a UUID.
is_uuid() {
        grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' <<<"$1"
}

# check_substr DESCRIPTION SUBSTRING TEXT: passes when TEXT contains SUBSTRING (which may span
# several lines).
check_substr() {
        if [[ "$3" == *"$2"* ]]; then
                pass "$1"
        else
                fail "$1" "substring: $2" "text: $(printf '%s' "$3" | head -c 2000)"
        fi
}
