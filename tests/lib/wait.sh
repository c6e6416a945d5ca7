# The one place where the shell tests wait; sourced by every test script. A test waits for
# the event it needs (a file, a socket, a log line, a state an avatarctl call reports),
# never for time: wait_until polls a condition, and its deadline only bounds a hang. The
# deadline is multiplied by $AVATARD_TEST_TIME_SCALE, which scripts/test sets for the
# sanitizer and valgrind legs, so a slow leg waits longer but asserts the same things.
# scripts/test rejects any other `sleep` in tests/.

# The deadline factor (a whole number, at least 1).
TEST_TIME_SCALE="${AVATARD_TEST_TIME_SCALE:-1}"
case "$TEST_TIME_SCALE" in
''|*[!0-9]*|0) TEST_TIME_SCALE=1 ;;
esac

# Milliseconds of the monotonic-enough wall clock.
test_now_ms() {
        local t
        t=$(date +%s%N)
        echo $((t / 1000000))
}

# How much earlier than asked a timer may be seen to fire (the daemon's and the simulator's
# coarse clocks against `date`): lower bounds on a feature's waits allow this much, in ms.
TEST_TIMER_SLACK_MS=10

# Exit status of a condition that will never hold (the process it waits on died).
WAIT_NEVER=111

# wait_until SECONDS COMMAND [ARGS...]: runs COMMAND until it succeeds, with a short,
# growing pause between tries; returns non-zero when SECONDS (scaled) passed first or when
# COMMAND exits with $WAIT_NEVER.
wait_until() {
        local limit="$1" deadline pause=0.01 rc
        shift
        deadline=$(($(test_now_ms) + limit * 1000 * TEST_TIME_SCALE))
        while :; do
                rc=0
                "$@" || rc=$?
                [ "$rc" -eq 0 ] && return 0
                [ "$rc" -ne "$WAIT_NEVER" ] || return 1
                [ "$(test_now_ms)" -lt "$deadline" ] || return 1
                sleep "$pause"
                case "$pause" in
                0.01) pause=0.02 ;;
                0.02) pause=0.05 ;;
                0.05) pause=0.1 ;;
                esac
        done
}

# wait_for_file SECONDS PATH: until PATH exists and is not empty.
wait_for_file() {
        wait_until "$1" test -s "$2"
}

# wait_for_line SECONDS FILE REGEX: until a line of FILE matches the extended regex.
wait_for_line() {
        wait_until "$1" grep -Eq -- "$3" "$2"
}

# wait_for_exit SECONDS PID: until the process PID is gone (not our child: see `wait`).
wait_for_exit() {
        wait_until "$1" _wait_gone "$2"
}
_wait_gone() {
        ! kill -0 "$1" 2>/dev/null
}

# quiet_period SECONDS: lets SECONDS (unscaled) pass, for a check that nothing more happens
# after the event a test waited for. It never triggers the step under test.
quiet_period() {
        sleep "$1"
}

# scaled SECONDS: SECONDS times the deadline factor, for a deadline handed to a program
# (avatarctl --timeout, a config's request timeout) that bounds a hang, never a check.
scaled() {
        echo $(($1 * TEST_TIME_SCALE))
}
