# shellcheck shell=bash
# Helpers of the fault-injection tests (tests/faults/test-*.sh): the black-box helpers
# (lib.sh and its fixtures), kill points on simulator events (request N of a route held),
# the daemon killed and started again on the same state directory, a journal of the calls
# that returned success, and invariants.py run as counted checks. Expects $BUILD_ROOT and
# $SOURCE_ROOT, as the black-box tests.

FAULTS_DIR="$SOURCE_ROOT/tests/faults"
# shellcheck source=../blackbox/lib.sh
. "$SOURCE_ROOT/tests/blackbox/lib.sh"
# shellcheck source=../blackbox/sim-fixtures.sh
. "$SOURCE_ROOT/tests/blackbox/sim-fixtures.sh"
# shellcheck source=../blackbox/runner-fixtures.sh
. "$SOURCE_ROOT/tests/blackbox/runner-fixtures.sh"
# shellcheck source=../blackbox/cli-fixtures.sh
. "$SOURCE_ROOT/tests/blackbox/cli-fixtures.sh"

# "RESULT: faults-NAME passed=N failed=M"
T_NAME="faults-${T_NAME#test-}"
JOURNAL="$TMP/journal.jsonl"
WAITS="$TMP/waits.jsonl"
: >"$JOURNAL"
: >"$WAITS"

# With FAULTS_LOGS=DIR, the daemon's and the simulator's logs of a test that failed are kept
# there (the temporary directory goes at the end), for scripts/soak and for debugging.
keep_logs() {
        [ -n "${FAULTS_LOGS:-}" ] && [ "$T_FAILED" -gt 0 ] || return 0
        mkdir -p "$FAULTS_LOGS"
        cp "$DAEMON_LOG" "$FAULTS_LOGS/$T_NAME.avatard.log" 2>/dev/null
        cp "$SIM_LOG" "$FAULTS_LOGS/$T_NAME.sim.log" 2>/dev/null
        cp "$SIM_REQUESTS" "$FAULTS_LOGS/$T_NAME.sim-requests.jsonl" 2>/dev/null
        echo "# logs kept in $FAULTS_LOGS/$T_NAME.*"
}

# The multipart routes of the storage (avatar-sim's route names).
R_MP_CREATE="POST /storage/{bucket}/{key}?uploads"
R_MP_PART="PUT /storage/{bucket}/{key}?partNumber&uploadId"
R_MP_COMPLETE="POST /storage/{bucket}/{key}?uploadId"

# faults_conf [SHUTDOWN-TIMEOUT-S]: the daemon's configuration (one poll a second, multipart
# above 5 MiB in parts of 5 MiB, SIGTERM's drain bounded as given, default 30) on stdout.
faults_conf() {
        cat <<CONF
log_level: debug
limits:
  shutdown_timeout_s: ${1:-30}
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
  multipart_threshold_bytes: 5242880
  multipart_part_bytes: 5242880
CONF
}

# faults_start [SIM-ARGS...]: avatar-sim (jobs stepping every 20 ms unless SIM-ARGS say
# otherwise) and avatard with faults_conf.
faults_start() {
        [ $# -gt 0 ] || set -- --job-step-ms 20
        start_sim --api-key "$SIM_KEY" "$@" || return 1
        faults_conf >"$CONF"
        export AVATAR_API_KEY="$SIM_KEY"
        start_daemon
}

# kill_daemon SIGNAL: signals the daemon and waits for it; its exit status in KILL_RC, the
# milliseconds it took to exit in KILL_MS.
KILL_RC=0
KILL_MS=0
kill_daemon() {
        local t0
        KILL_RC=0
        [ -n "$DAEMON_PID" ] || return 0
        t0=$(test_now_ms)
        kill "-$1" "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || KILL_RC=$?
        KILL_MS=$(($(test_now_ms) - t0))
        DAEMON_PID=""
}

# reap_daemon: waits for the daemon, already signalled, to exit; KILL_RC as kill_daemon.
reap_daemon() {
        KILL_RC=0
        [ -n "$DAEMON_PID" ] || return 0
        wait "$DAEMON_PID" 2>/dev/null || KILL_RC=$?
        DAEMON_PID=""
}

# sigterms_logged: how many times the daemon logged that it received SIGTERM (all runs).
sigterms_logged() {
        grep -c 'Received SIGTERM, stopping' "$DAEMON_LOG" 2>/dev/null || true
}

# sigterm_seen N PID: the daemon logged its Nth SIGTERM (for wait_until); never once it exited.
sigterm_seen() {
        [ "$(sigterms_logged)" -ge "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return "$WAIT_NEVER"
        return 1
}

# hold_at ROUTE N [answer]: the simulator holds request N of ROUTE (counted from now), and
# that one only, unanswered until released: a kill point on a simulator event. With
# "answer", the request is served first and only its answer held (a job created, a part
# stored, that the client never hears of). Prints the rule's id (rule_held waits for it).
hold_at() {
        local how='"hold":true'
        [ "${3:-}" = answer ] && how='"hold_answer":true'
        json_num id "$(sim_control fault "{\"route\":\"$1\",$how,\"after\":$(($2 - 1)),\"count\":1}")"
}

# rule_held ID PID: the hold rule ID holds a request now (for wait_until); never once process
# PID (the client that should get there) ended.
rule_held() {
        sim_control faults 2>/dev/null | python3 -c '
import json, sys
sys.exit(0 if any(f["id"] == int(sys.argv[1]) and f["held"] > 0 for f in json.load(sys.stdin)) else 1)' "$1" &&
                return 0
        kill -0 "$2" 2>/dev/null || return "$WAIT_NEVER"
        return 1
}

# journal JSON: records a call that returned success (invariants.py --journal).
journal() {
        printf '%s\n' "$1" >>"$JOURNAL"
}

# reset_journals: forgets the calls and waits recorded (a new iteration, or a run replaced).
reset_journals() {
        : >"$JOURNAL"
        : >"$WAITS"
}

# record_wait LABEL ELAPSED-MS DEADLINE-MS ERROR DONE: records a wait (true/false for the
# last two) for invariants.py --waits.
record_wait() {
        printf '{"label":"%s","elapsed_ms":%s,"deadline_ms":%s,"error":%s,"done":%s}\n' \
                "$1" "$2" "$3" "$4" "$5" >>"$WAITS"
}

# check_invariants LABEL [INVARIANTS-ARGS...]: runs invariants.py against the simulator and the
# daemon; each invariant is a counted check.
check_invariants() {
        local label="$1" out line text detail=()
        shift
        out=$(python3 "$FAULTS_DIR/invariants.py" --sim "$SIM_URL" --avatarctl "$AVATARCTL" \
                --timeout "$(scaled 30)" --label "$label" --journal "$JOURNAL" --waits "$WAITS" --seen-uploads "$TMP/seen-uploads" "$@" 2>&1)
        text=""
        while IFS= read -r line; do
                case "$line" in
                "ok - "* | "not ok - "*)
                        _emit_invariant "$text" "${detail[@]}"
                        text="$line"
                        detail=()
                        ;;
                "#   "*) detail+=("${line#\#   }") ;;
                *) [ -n "$line" ] && detail+=("$line") ;;
                esac
        done <<<"$out"
        _emit_invariant "$text" "${detail[@]}"
        # nothing printed at all: the checker itself failed
        grep -qE '^(not )?ok - ' <<<"$out" || fail "$label: invariants.py ran" "$out"
}
_emit_invariant() {
        local text="$1"
        shift
        case "$text" in
        "ok - "*) pass "${text#ok - }" ;;
        "not ok - "*) fail "${text#not ok - }" "$@" ;;
        esac
}

# settle_invariants LABEL: lets the daemon catch up (a reconciliation it starts on restart)
# until every invariant holds, for SETTLE_S seconds (scaled) at most, then checks them.
SETTLE_S=${SETTLE_S:-5}
settle_invariants() {
        # (on a copy of the uploads reported already: these tries report nothing)
        cp "$TMP/seen-uploads" "$TMP/seen-uploads.try" 2>/dev/null || : >"$TMP/seen-uploads.try"
        wait_until "$SETTLE_S" _invariants_hold
        check_invariants "$@"
}
_invariants_hold() {
        cp "$TMP/seen-uploads.try" "$TMP/seen-uploads.try2"
        python3 "$FAULTS_DIR/invariants.py" --sim "$SIM_URL" --avatarctl "$AVATARCTL" \
                --timeout "$(scaled 30)" --journal "$JOURNAL" --waits "$WAITS" \
                --seen-uploads "$TMP/seen-uploads.try2" >/dev/null 2>&1
}

# clean_upstream: removes every job the simulator still holds (after an iteration's checks),
# so each iteration starts from an empty upstream.
clean_upstream() {
        python3 "$FAULTS_DIR/invariants.py" --sim "$SIM_URL" --avatarctl "$AVATARCTL" --clean >/dev/null
}

# runner_by_name NAME: the id of the caller's runner of that display name (empty when none).
runner_by_name() {
        "$AVATARCTL" --json --timeout "$(scaled 30)" runner list 2>/dev/null |
                grep -o "\"runner_id\":\"[^\"]*\",\"display_name\":\"$1\"" | head -n 1 | cut -d'"' -f4
}

# runner_json ID: the runner's status (runner.get_status) on stdout.
runner_json() {
        "$AVATARCTL" --json --timeout "$(scaled 30)" call runner.get_status "{\"runner_id\":\"$1\"}" 2>&1
}

# job_names TEXT: the job names (UUIDs) of a run or status reply, one per line, sorted.
job_names() {
        grep -o '"name":"[0-9a-f-]\{36\}"' <<<"$1" | cut -d'"' -f4 | sort -u
}

# json_array_of NAMES: the words of NAMES as a JSON array of strings.
json_array_of() {
        local first=1 n out="["
        for n in $1; do
                [ $first -eq 1 ] || out="$out,"
                out="$out\"$n\""
                first=0
        done
        printf '%s]' "$out"
}

# resume_avatarize NAME FILE OUTDIR [ARGS...]: the CLI's one resume command for a runner an
# interrupted avatarize left (or a whole avatarize when none was created); $OUT, $ERR, $RC.
resume_avatarize() {
        local name="$1" file="$2" dir="$3"
        shift 3
        if [ -n "$(runner_by_name "$name")" ]; then
                run_ctl --timeout "$(scaled 120)" avatarize --resume "$name" "$file" -o "$dir" "$@"
        else
                run_ctl --timeout "$(scaled 120)" avatarize "$file" --name "$name" -o "$dir" "$@"
        fi
}

# check_results_exact LABEL RUNNER-ID DIR: every file of DIR is byte for byte the object the
# simulator stored under the runner's set (a download cut by a kill is not kept as a result).
check_results_exact() {
        local label="$1" set dir="$3" f base obj bad=""
        set=$(json_str set_name "$(runner_json "$2")")
        for f in "$dir"/*; do
                [ -f "$f" ] || continue
                base=$(basename "$f")
                obj=$(find "$TMP/storage" -path "*/results/$set/*/$base" -type f 2>/dev/null | head -n 1)
                if [ -z "$obj" ] || ! cmp -s "$f" "$obj"; then
                        bad="$bad $base"
                fi
        done
        if [ -z "$bad" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
                pass "$label: every result file is byte-exact ($(find "$dir" -type f | wc -l) files)"
        else
                fail "$label: every result file is byte-exact" "differ or missing upstream:${bad:- (no file)}"
        fi
}
