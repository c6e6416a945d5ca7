#!/usr/bin/env bash
# Paths from systemd: with no --socket, --config or --state-directory, the daemon takes
# $RUNTIME_DIRECTORY/avatard.sock, $CONFIGURATION_DIRECTORY/avatard.yaml and $STATE_DIRECTORY
# (the first of several colon-separated paths), below the file and the command line; it says in
# its log which configuration files it tried when it finds none, at start and at reload;
# --help shows the defaults after the environment; the state directory is created 0700 with
# its parents where the daemon may write, and a clear error names the path where it may not.
. "$(dirname "$0")/lib.sh"

DEFAULT_CONFIG=$(sed -n 's/^#define AVATARD_DEFAULT_CONFIG "\(.*\)"$/\1/p' "$BUILD_ROOT/build-config.h")
unset AVATARD_SOCKET STATE_DIRECTORY RUNTIME_DIRECTORY CONFIGURATION_DIRECTORY

RT="$TMP/run/avatard"
ETC="$TMP/etc/avatard"
VAR="$TMP/var/lib/avatard"
mkdir -p "$RT" "$ETC"
LOG="$TMP/paths.log"

# run_env_daemon ENV=VALUE...: avatard with that environment and no path option (log in $LOG);
# sets DAEMON_PID and waits for the socket $RT/avatard.sock.
run_env_daemon() {
        keep_log
        # shellcheck disable=SC2046
        env "$@" $(wrapper) "$AVATARD" --log-level debug >>"$LOG" 2>&1 &
        DAEMON_PID=$!
        wait_for_socket "$RT/avatard.sock" "$DAEMON_PID" &&
                wait_until 20 "$AVATARCTL" --socket "$RT/avatard.sock" --timeout 2 call daemon.ping >/dev/null 2>&1
}

# wrapper: $AVATARD_WRAPPER as start_daemon() uses it (valgrind writes a report per process).
wrapper() {
        case "$AVATARD_WRAPPER" in
        *valgrind*) echo "$AVATARD_WRAPPER --log-file=$TMP/valgrind.%p.log" ;;
        *) echo "$AVATARD_WRAPPER" ;;
        esac
}

# keep_log: moves $LOG to the end of $DAEMON_LOG, where finish() looks for sanitizer reports.
keep_log() {
        [ -f "$LOG" ] && cat "$LOG" >>"$DAEMON_LOG"
        : >"$LOG"
}

# st: daemon.status through the socket under $RT.
st() {
        "$AVATARCTL" --socket "$RT/avatard.sock" --json status
}

# --- every path from the environment ------------------------------------------------------------
cat >"$ETC/avatard.yaml" <<'EOF'
limits:
  idle_timeout_s: 77
EOF
out=$(env RUNTIME_DIRECTORY="$RT" STATE_DIRECTORY="$VAR:$TMP/second" CONFIGURATION_DIRECTORY="$ETC" \
        "$AVATARD" --help)
check_match "--help shows the socket under \$RUNTIME_DIRECTORY" "--socket PATH .*\\(default $RT/avatard.sock\\)" "$out"
check_match "--help shows the first \$STATE_DIRECTORY" "--state-directory DIR .*\\(default $VAR\\)" "$out"
check_match "--help shows the configuration file found in \$CONFIGURATION_DIRECTORY" \
        "--config PATH .*\\(default $ETC/avatard.yaml\\)" "$out"

if run_env_daemon RUNTIME_DIRECTORY="$RT" STATE_DIRECTORY="$VAR:$TMP/second" CONFIGURATION_DIRECTORY="$ETC"; then
        pass "avatard starts with only the environment naming its paths"
        s=$(st)
        check_match "it listens on \$RUNTIME_DIRECTORY/avatard.sock" "\"socket\":\"$RT/avatard.sock\"" "$s"
        check_match "daemon.status names \$CONFIGURATION_DIRECTORY/avatard.yaml" \
                "\"configuration\":\\{\"config\":\"$ETC/avatard.yaml\"" "$s"
        check_match "the file's settings are in force" '"idle_timeout_s":77' "$s"
        check "the state directory and its parents were created" test -d "$VAR/runners"
        check_eq "the state directory is private (0700)" "700" "$(stat -c %a "$VAR")"
        check "the second path of \$STATE_DIRECTORY is left alone" test ! -e "$TMP/second"
        check_no_match "no 'no configuration file' notice when one was found" "No configuration file found" "$(cat "$LOG")"
else
        fail "avatard starts with only the environment naming its paths" "$(tail -n 20 "$LOG")"
fi
stop_daemon

# --- the file and the command line come first ----------------------------------------------------
cat >"$ETC/avatard.yaml" <<EOF
state_directory: $TMP/from-file
EOF
if run_env_daemon RUNTIME_DIRECTORY="$RT" STATE_DIRECTORY="$VAR" CONFIGURATION_DIRECTORY="$ETC"; then
        check "state_directory: in the file wins over \$STATE_DIRECTORY" test -d "$TMP/from-file/runners"
else
        fail "avatard starts with state_directory in the file" "$(tail -n 20 "$LOG")"
fi
stop_daemon
keep_log
# shellcheck disable=SC2046
env RUNTIME_DIRECTORY="$RT" STATE_DIRECTORY="$VAR" CONFIGURATION_DIRECTORY="$ETC" \
        $(wrapper) "$AVATARD" --socket "$TMP/flag.sock" --state-directory "$TMP/from-flag" --config "$CONF" >>"$LOG" 2>&1 &
DAEMON_PID=$!
if wait_for_socket "$TMP/flag.sock" "$DAEMON_PID"; then
        pass "--socket wins over \$RUNTIME_DIRECTORY"
        check "--state-directory wins over the file and \$STATE_DIRECTORY" test -d "$TMP/from-flag/runners"
        check_match "--config wins over \$CONFIGURATION_DIRECTORY" "\"config\":\"$CONF\"" \
                "$("$AVATARCTL" --socket "$TMP/flag.sock" --json status)"
else
        fail "--socket wins over \$RUNTIME_DIRECTORY" "$(tail -n 20 "$LOG")"
fi
stop_daemon

# --- no configuration file: a notice naming the paths tried, at start and at reload ----------------
if [ -e "$DEFAULT_CONFIG" ]; then
        echo "# $DEFAULT_CONFIG exists on this machine: the no-configuration case is not observable"
else
        EMPTY="$TMP/etc-empty"
        mkdir -p "$EMPTY"
        if run_env_daemon RUNTIME_DIRECTORY="$RT" STATE_DIRECTORY="$VAR" CONFIGURATION_DIRECTORY="$EMPTY"; then
                notice="No configuration file found \\(tried $EMPTY/avatard.yaml, $DEFAULT_CONFIG\\): using the defaults and the environment"
                check_match "without a file the log says so and names the paths tried" "notice: $notice" "$(cat "$LOG")"
                check_match "daemon.status shows no configuration file" '"configuration":\{"config":null' "$(st)"
                check "avatarctl reload succeeds without a file" "$AVATARCTL" --socket "$RT/avatard.sock" reload
                check_eq "the reload says it again" "2" "$(grep -cE "$notice" "$LOG")"
                # a file appearing later is read at the next reload
                printf 'limits:\n  idle_timeout_s: 55\n' >"$EMPTY/avatard.yaml"
                out=$("$AVATARCTL" --json --socket "$RT/avatard.sock" reload 2>&1)
                check_match "a file created later is found at reload" "\"config\":\"$EMPTY/avatard.yaml\"" "$out"
                check_match "and applied" '"idle_timeout_s":55' "$(st)"
        else
                fail "avatard starts without any configuration file" "$(tail -n 20 "$LOG")"
        fi
        stop_daemon
fi

# --- the socket's directory is made when missing ----------------------------------------------------
rm -rf "$RT"
if run_env_daemon RUNTIME_DIRECTORY="$RT" STATE_DIRECTORY="$VAR" CONFIGURATION_DIRECTORY="$ETC"; then
        pass "a missing \$RUNTIME_DIRECTORY is created for the socket"
        check_eq "group members can reach the socket through it (0755)" "755" "$(stat -c %a "$RT")"
else
        fail "a missing \$RUNTIME_DIRECTORY is created for the socket" "$(tail -n 20 "$LOG")"
fi
stop_daemon

# --- a state directory the daemon may not create ---------------------------------------------------
printf 'log_level: info\n' >"$ETC/avatard.yaml"
if [ "$(id -u)" = 0 ]; then
        # root writes anywhere but in pseudo file systems
        forbidden=/sys/avatard-test/state
        parent=/sys/avatard-test
else
        mkdir -m 0500 "$TMP/locked"
        forbidden=$TMP/locked/lib/avatard
        parent=$TMP/locked/lib
fi
out=$(env RUNTIME_DIRECTORY="$RT" STATE_DIRECTORY="$forbidden" CONFIGURATION_DIRECTORY="$ETC" \
        timeout "$(scaled 10)" "$AVATARD" 2>&1); rc=$?
check_eq "a state directory that cannot be created stops the start (exit 1)" "1" "$rc"
check_match "the error names the state directory and the part that failed" \
        "Cannot create the state directory '$forbidden': '$parent': cannot create it" "$out"
check_match "the error says how to fix it" "StateDirectory= in the unit, --state-directory" "$out"
check "no socket is left behind" test ! -e "$RT/avatard.sock"
[ -d "$TMP/locked" ] && chmod 0700 "$TMP/locked"

# --- a relative path from the environment is a configuration error --------------------------------
out=$(env RUNTIME_DIRECTORY="$RT" STATE_DIRECTORY="var/lib/x" CONFIGURATION_DIRECTORY="$ETC" \
        timeout "$(scaled 10)" "$AVATARD" 2>&1); rc=$?
check_eq "a relative \$STATE_DIRECTORY is an invalid configuration (exit 78)" "78" "$rc"
check_match "the error names the variable" "STATE_DIRECTORY: must be an absolute path" "$out"

keep_log
finish
