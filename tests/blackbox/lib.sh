# Shared helpers for the black-box tests: start and stop the built daemon and the simulator
# on temporary paths, assertions that count, and the closing "RESULT:" line scripts/test sums.
# Sourced by the test-*.sh scripts; expects $BUILD_ROOT (meson's build directory) and
# $SOURCE_ROOT.

set -u
set -o pipefail

: "${BUILD_ROOT:?BUILD_ROOT must point at the build directory}"
: "${SOURCE_ROOT:?SOURCE_ROOT must point at the source directory}"

AVATARD="$BUILD_ROOT/daemon/avatard"
AVATARCTL="$BUILD_ROOT/client/avatarctl"
PROBE="$BUILD_ROOT/tests/blackbox/avatard-probe"
AVATAR_SIM="$BUILD_ROOT/tests/avatar-sim/avatar-sim"
SCRIPTS="$SOURCE_ROOT/tests/blackbox/scripts"
# shellcheck source=../lib/wait.sh
. "$SOURCE_ROOT/tests/lib/wait.sh"

# Wrap the daemon in e.g. "valgrind --leak-check=full" when AVATARD_WRAPPER is set (the
# simulator has SIM_WRAPPER). Under valgrind each daemon process writes its own report, which
# finish() reads: any error or definite leak fails the test.
AVATARD_WRAPPER="${AVATARD_WRAPPER:-}"
SIM_WRAPPER="${SIM_WRAPPER:-}"

T_PASSED=0
T_FAILED=0
T_NAME="$(basename "$0" .sh)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/avatard-test.XXXXXX")"
chmod 0755 "$TMP"
DAEMON_PID=""
SIM_PID=""
SOCK="$TMP/avatard.sock"
STATE="$TMP/state"
CONF="$TMP/avatard.yaml"
DAEMON_LOG="$TMP/avatard.log"
SIM_LOG="$TMP/sim.log"
SIM_REQUESTS="$TMP/sim-requests.jsonl"
SIM_PORT=""
SIM_URL=""
mkdir -p "$STATE"
: > "$CONF"

export AVATARD_SOCKET="$SOCK"
# no test talks to the real service: without a URL of its own, upstream is a closed port
export AVATAR_BASE_URL="${AVATAR_BASE_URL:-http://127.0.0.1:9}"

# Records a passed check.
pass() {
        T_PASSED=$((T_PASSED + 1))
        printf 'ok %d - %s\n' $((T_PASSED + T_FAILED)) "$1"
}

# Records a failed check (and shows why).
fail() {
        T_FAILED=$((T_FAILED + 1))
        printf 'not ok %d - %s\n' $((T_PASSED + T_FAILED)) "$1"
        shift
        [ $# -gt 0 ] && printf '#   %s\n' "$@"
        return 0
}

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
        local desc="$1" out
        shift
        if out=$("$@" 2>&1); then
                pass "$desc"
        else
                fail "$desc" "command: $*" "output: $(printf '%s' "$out" | head -c 2000)"
        fi
}

# check_fails DESCRIPTION COMMAND...: passes when the command fails.
check_fails() {
        local desc="$1" out
        shift
        if out=$("$@" 2>&1); then
                fail "$desc" "command unexpectedly succeeded: $*" "output: $(printf '%s' "$out" | head -c 2000)"
        else
                pass "$desc"
        fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
        if [ "$2" = "$3" ]; then
                pass "$1"
        else
                fail "$1" "expected: $2" "actual:   $3"
        fi
}

# check_match DESCRIPTION REGEX TEXT: passes when TEXT matches the extended regex.
check_match() {
        # a here-string, not a pipe: grep -q stops at the first match and would SIGPIPE printf
        if grep -Eq -- "$2" <<<"$3"; then
                pass "$1"
        else
                fail "$1" "pattern: $2" "text: $(printf '%s' "$3" | head -c 2000)"
        fi
}

# check_no_match DESCRIPTION REGEX TEXT
check_no_match() {
        if grep -Eq -- "$2" <<<"$3"; then
                fail "$1" "pattern unexpectedly found: $2" "text: $(printf '%s' "$3" | head -c 2000)"
        else
                pass "$1"
        fi
}

# at_least_ms DESCRIPTION T0 T1 MS: passes when T1 - T0 (test_now_ms) is at least MS, less
# the timer slack (TEST_TIMER_SLACK_MS): a lower bound on how long a feature waited.
at_least_ms() {
        local took=$(($3 - $2))
        if [ "$took" -ge $(($4 - TEST_TIMER_SLACK_MS)) ]; then
                pass "$1 ($took ms)"
        else
                fail "$1 ($took ms)" "expected at least $4 ms"
        fi
}

# on_tty COMMAND [ARGS...]: COMMAND's output with a pseudo-terminal as its stdout (script(1)),
# as a user at a terminal sees it; avatarctl prints JSON to pipes.
on_tty() {
        script -qec "$(printf '%q ' "$@")" /dev/null </dev/null | tr -d '\r'
}

# Whether PATH is a socket; fails for good once process PID died (wait_until then stops).
_socket_or_dead() {
        [ -S "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return "$WAIT_NEVER"
        return 1
}

# Waits until PATH exists as a socket (or the process PID died). Returns non-zero otherwise.
wait_for_socket() {
        wait_until 10 _socket_or_dead "$1" "$2" && [ -S "$1" ]
}

# Starts avatard with $CONF, $SOCK and $STATE plus extra arguments. Sets DAEMON_PID.
start_daemon() {
        local wrapper="$AVATARD_WRAPPER"
        case "$wrapper" in
        *valgrind*) wrapper="$wrapper --log-file=$TMP/valgrind.%p.log" ;;
        esac
        # shellcheck disable=SC2086
        $wrapper "$AVATARD" --config "$CONF" --socket "$SOCK" --state-directory "$STATE" \
                --log-level debug "$@" >>"$DAEMON_LOG" 2>&1 &
        DAEMON_PID=$!
        if ! wait_for_socket "$SOCK" "$DAEMON_PID"; then
                echo "# avatard did not start; log follows" >&2
                tail -n 50 "$DAEMON_LOG" >&2
                return 1
        fi
        # under a wrapper the socket appears before the loop runs: wait for an answer
        if ! wait_until 20 "$AVATARCTL" --timeout 2 call daemon.ping >/dev/null 2>&1; then
                echo "# avatard does not answer daemon.ping; log follows" >&2
                tail -n 50 "$DAEMON_LOG" >&2
                return 1
        fi
}

# Stops the daemon with SIGTERM and waits; returns its exit status.
stop_daemon() {
        local rc=0
        [ -n "$DAEMON_PID" ] || return 0
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" || rc=$?
        DAEMON_PID=""
        return $rc
}

# Starts avatar-sim on a free loopback port with extra arguments. Sets SIM_PID, SIM_PORT, SIM_URL.
start_sim() {
        rm -f "$TMP/sim.port"
        $SIM_WRAPPER "$AVATAR_SIM" --listen 127.0.0.1 --port 0 --port-file "$TMP/sim.port" \
                --request-log "$SIM_REQUESTS" --storage-dir "$TMP/storage" "$@" >>"$SIM_LOG" 2>&1 &
        SIM_PID=$!
        if wait_until 10 _file_or_dead "$TMP/sim.port" "$SIM_PID" && [ -s "$TMP/sim.port" ]; then
                SIM_PORT=$(cat "$TMP/sim.port")
                SIM_URL="http://127.0.0.1:$SIM_PORT"
                return 0
        fi
        echo "# avatar-sim did not start; log follows" >&2
        tail -n 50 "$SIM_LOG" >&2
        return 1
}

# Whether FILE is not empty; fails for good once process PID died.
_file_or_dead() {
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return "$WAIT_NEVER"
        return 1
}

# Stops the simulator.
stop_sim() {
        [ -n "$SIM_PID" ] || return 0
        kill -TERM "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
        SIM_PID=""
}

# Counts requests in the simulator's log whose route equals ROUTE (e.g. "GET /api/jobs").
sim_count() {
        [ -f "$SIM_REQUESTS" ] || { echo 0; return; }
        grep -c -F "\"route\":\"$1\"" "$SIM_REQUESTS" || true
}

# Number of open descriptors of a process.
fd_count() {
        ls "/proc/$1/fd" 2>/dev/null | wc -l
}

# Fails the test when a sanitizer or valgrind reported a problem in a daemon run.
check_memory_reports() {
        local f bad=""
        if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$DAEMON_LOG" 2>/dev/null; then
                fail "no sanitizer report in the daemon's log" \
                        "$(grep -m 5 -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$DAEMON_LOG")"
        fi
        for f in "$TMP"/valgrind.*.log; do
                [ -e "$f" ] || continue
                if grep -qE "ERROR SUMMARY: [1-9]|definitely lost: [1-9]" "$f"; then
                        bad="$bad $f"
                        fail "valgrind reports no error and no definite leak ($(basename "$f"))" \
                                "$(grep -E "ERROR SUMMARY|definitely lost|Invalid|uninitialised" "$f" | head -n 10)"
                fi
        done
        if [ -n "$AVATARD_WRAPPER" ] && [ -z "$bad" ] && ls "$TMP"/valgrind.*.log >/dev/null 2>&1; then
                pass "valgrind reports no error and no definite leak in the daemon"
        fi
}

# Prints the totals and exits non-zero when a check failed. Always the last call.
finish() {
        stop_daemon >/dev/null 2>&1 || true
        stop_sim
        check_memory_reports
        if [ "$T_FAILED" -gt 0 ]; then
                echo "# daemon log tail:"
                tail -n 40 "$DAEMON_LOG" 2>/dev/null | sed 's/^/#   /'
        fi
        echo "RESULT: $T_NAME passed=$T_PASSED failed=$T_FAILED"
        rm -rf "$TMP"
        [ "$T_FAILED" -eq 0 ] && [ "$T_PASSED" -gt 0 ]
}

# Cleans up on interruption.
on_exit() {
        [ -n "$DAEMON_PID" ] && kill -KILL "$DAEMON_PID" 2>/dev/null
        [ -n "$SIM_PID" ] && kill -KILL "$SIM_PID" 2>/dev/null
        [ -d "$TMP" ] && rm -rf "$TMP"
        return 0
}
trap on_exit EXIT

# status_num KEY: the first number value of "KEY" in daemon.status (avatarctl --json status),
# e.g. closed_idle_total, reloads or a method's call count (runner.wait); prints nothing when
# the daemon does not answer.
status_num() {
        "$AVATARCTL" --json --timeout "$(scaled 30)" status 2>/dev/null | grep -oE "\"$1\":[0-9]+" |
                head -n 1 | cut -d: -f2
}

# status_at_least KEY N: whether daemon.status shows N or more for KEY (for wait_until).
status_at_least() {
        local v
        v=$(status_num "$1")
        [ -n "$v" ] && [ "$v" -ge "$2" ]
}

# wait_for_calls METHOD N: until the daemon has dispatched N calls of METHOD in all (its
# handler has run, so e.g. a runner.wait is registered).
wait_for_calls() {
        wait_until 10 status_at_least "$1" "$2"
}

# wait_for_output SECONDS FILE REGEX PID: until a line of FILE (the output of process PID)
# matches the extended regex; fails at once when the process ended without writing it.
wait_for_output() {
        wait_until "$1" _line_or_dead "$2" "$3" "$4"
}
_line_or_dead() {
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null && return 1
        # it may have written the line just before it ended
        grep -Eq -- "$2" "$1" 2>/dev/null || return "$WAIT_NEVER"
}
