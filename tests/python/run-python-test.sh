#!/usr/bin/env bash
# Runs one Python test module of the avatard package (client/python) with /usr/bin/python3
# (Debian's, which has python3-pandas; another python3 may come first on PATH), against the
# built avatard and avatar-sim started here as the black-box tests start them.
#
# Usage: run-python-test.sh MODULE.py [key|login|access|none]
#   key    the daemon holds the simulator's API key (the usual case)
#   login  the daemon starts without a credential; the simulator knows the user alice
#   access as key, with a socket everyone may connect to and the operate role for nobody
#          (other uids have no role)
#   none   no daemon and no simulator (checks that read only the sources)
# The module sees AVATARD_SOCKET and AVATARD_TEST_* (the simulator's URL, key, storage and
# request log, a scratch directory, alice's password) and prints the RESULT line of its
# checks; this script adds its own (the daemon and the simulator started, no sanitizer or
# valgrind report) and fails when the module did.
. "$SOURCE_ROOT/tests/blackbox/lib.sh"
. "$SOURCE_ROOT/tests/blackbox/sim-fixtures.sh"
. "$SOURCE_ROOT/tests/blackbox/runner-fixtures.sh"

module="${1:?usage: run-python-test.sh MODULE.py [key|login|access|none]}"
mode="${2:-key}"
T_NAME="python-$(basename "$module" .py | sed 's/^test_//; s/_/-/g')-daemon"
PYTHON="${AVATARD_TEST_PYTHON:-/usr/bin/python3}"   # another interpreter for a try: AVATARD_TEST_PYTHON
ALICE_PW="pw-alice-$$"

if [ "$mode" != none ]; then
        start_sim --api-key "$SIM_KEY" --user "alice:$ALICE_PW" --job-step-ms 50 ||
                { fail "avatar-sim starts"; finish; exit $?; }
        if [ "$mode" = access ]; then
                runner_conf 'socket_mode: "0666"
access:
  operate:
    users: [nobody]' >"$CONF"
        else
                runner_conf >"$CONF"
        fi
        if [ "$mode" != login ]; then
                export AVATAR_API_KEY="$SIM_KEY"
        else
                unset AVATAR_API_KEY
        fi
        start_daemon || { fail "avatard starts"; finish; exit $?; }
        pass "avatard starts against avatar-sim ($mode)"
        # the module's processes never see the key: the daemon holds it
        unset AVATAR_API_KEY
fi

mkdir -p "$TMP/py"
py_rc=0
AVATARD_TEST_SIM_URL="$SIM_URL" AVATARD_TEST_SIM_KEY="$SIM_KEY" \
        AVATARD_TEST_STORAGE="$TMP/storage" AVATARD_TEST_SIM_REQUESTS="$SIM_REQUESTS" \
        AVATARD_TEST_TMP="$TMP/py" AVATARD_TEST_ALICE_PASSWORD="$ALICE_PW" \
        AVATARD_TEST_DAEMON_PID="$DAEMON_PID" AVATARD_TEST_PYTHON="$PYTHON" \
        AVATARD_TEST_REFERENCE="${AVATARD_TEST_REFERENCE:-$SOURCE_ROOT/../shared/reference}" \
        PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$SOURCE_ROOT/client/python" \
        "$PYTHON" -X dev "$SOURCE_ROOT/tests/python/$module" || py_rc=$?
[ "$py_rc" -eq 0 ] || echo "# $module exited $py_rc"

# without a daemon there is nothing of this script's own to report
[ "$mode" = none ] && exit "$py_rc"
finish
rc=$?
[ "$py_rc" -eq 0 ] || rc=1
exit "$rc"
