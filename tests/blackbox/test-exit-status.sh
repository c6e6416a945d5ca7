#!/usr/bin/env bash
# What the service manager and a user see when something is wrong: avatard's exit statuses
# (78 for an invalid configuration, 1 for other failures to start, 2 for usage errors);
# avatarctl reload exiting 0 only for a configuration the daemon applied, non-zero with the
# daemon's reason otherwise; avatarctl's one-line errors when the daemon cannot be reached (no
# socket, a refused connection, a connection dropped before any answer as when a socket-
# activated service fails to start) or when the socket is not accessible.
. "$(dirname "$0")/lib.sh"

HINT="avatard is not running or failed to start; see 'systemctl status avatard.socket avatard.service' and 'journalctl -u avatard'"
# the hint as an extended regex
HINT_RE=$(sed 's/[.]/\\./g' <<<"$HINT")

# --- exit statuses ------------------------------------------------------------------------------------
out=$("$AVATARD" --no-such-option 2>&1); rc=$?
check_eq "a usage error exits 2" "2" "$rc"

printf 'limits:\n  max_connections: 0\n' >"$TMP/bad.yaml"
out=$(timeout "$(scaled 10)" "$AVATARD" --config "$TMP/bad.yaml" --socket "$SOCK" --state-directory "$STATE" 2>&1); rc=$?
check_eq "an invalid configuration at start exits 78 (EX_CONFIG)" "78" "$rc"
check_match "the log names file, line and key" \
        "Invalid configuration: $TMP/bad.yaml:2: limits.max_connections: must be between" "$out"
check "no socket is left behind" test ! -e "$SOCK"
out=$("$AVATARD" --check-config --config "$TMP/bad.yaml" 2>&1); rc=$?
check_eq "--check-config exits 78 for it too" "78" "$rc"
out=$(timeout "$(scaled 10)" "$AVATARD" --config "$TMP/missing.yaml" --socket "$SOCK" --state-directory "$STATE" 2>&1); rc=$?
check_eq "a --config file that does not exist exits 78" "78" "$rc"
out=$(timeout "$(scaled 10)" "$AVATARD" --config "$CONF" --set upstream.proxy=gopher://x:70 \
        --socket "$SOCK" --state-directory "$STATE" 2>&1); rc=$?
check_eq "an invalid --set value exits 78" "78" "$rc"

: >"$TMP/not-a-socket"
out=$(timeout "$(scaled 10)" "$AVATARD" --config "$CONF" --socket "$TMP/not-a-socket" --state-directory "$STATE" 2>&1); rc=$?
check_eq "another failure to start (a file in the socket's place) exits 1" "1" "$rc"
check_match "and says why" "exists and is not a socket" "$out"

# --- avatarctl reload: the daemon's verdict ---------------------------------------------------------
printf 'limits:\n  idle_timeout_s: 41\n' >"$CONF"
start_daemon || { fail "avatard starts"; finish; exit $?; }
printf 'limits:\n  idle_timeout_s: 42\n' >"$CONF"
out=$("$AVATARCTL" --json reload 2>&1); rc=$?
check_eq "avatarctl reload of a good file exits 0" "0" "$rc"
check_match "it names the file applied" "\"config\":\"$CONF\"" "$out"
check_match "the new value is in force when it returns" '"idle_timeout_s":42' "$("$AVATARCTL" --json status)"

printf 'limits:\n  idle_timeout_s: 43\n  max_connections: 0\n' >"$CONF"
out=$("$AVATARCTL" reload 2>&1); rc=$?
check_eq "avatarctl reload of a rejected file exits 9" "9" "$rc"
check_match "it prints the daemon's reason with file, line and key" \
        "rejected and the current one kept: $CONF:3: limits.max_connections: must be between 1 and" "$out"
s=$("$AVATARCTL" --json status)
check_match "the daemon keeps serving the previous configuration" '"idle_timeout_s":42' "$s"
check_match "daemon.status counts the failure" '"reloads":1,"failures":1' "$s"
printf 'limits:\n  idle_timeout_s: 44\n' >"$CONF"
check "a good file after a rejected one is applied again" "$AVATARCTL" reload
check_match "and in force" '"idle_timeout_s":44' "$("$AVATARCTL" --json status)"

# --- a socket the user may not use --------------------------------------------------------------------
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
        # root passes every permission check: ask as nobody, outside the socket's group
        out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$AVATARCTL" --socket "$SOCK" status 2>&1); rc=$?
else
        stop_daemon
        start_daemon --set socket_mode=0000 || fail "avatard starts with socket_mode 0000"
        out=$("$AVATARCTL" --socket "$SOCK" status 2>&1); rc=$?
fi
check_eq "permission denied on the socket exits 5" "5" "$rc"
check_match "it says to join the avatar group and log in again" \
        "cannot connect to $SOCK: Permission denied; only root and members of the 'avatar' group may use avatard: join it with 'sudo usermod -aG avatar \\\$USER' and log in again" "$out"
check_eq "on one line" "1" "$(wc -l <<<"$out")"
stop_daemon

# --- the daemon cannot be reached -------------------------------------------------------------------
out=$("$AVATARCTL" --socket "$TMP/nowhere.sock" status 2>&1); rc=$?
check_eq "no socket: avatarctl exits 3" "3" "$rc"
check_match "no socket: it says avatard is not running and where to look" \
        "^avatarctl: cannot connect to $TMP/nowhere.sock: No such file or directory; $HINT_RE\$" "$out"
check_eq "no socket: on one line" "1" "$(wc -l <<<"$out")"

if command -v systemd-socket-activate >/dev/null 2>&1; then
        # the service manager holds the socket and starts a service that cannot start: the
        # connection it accepted on the service's behalf is dropped without an answer
        ACT="$TMP/activated.sock"
        systemd-socket-activate -l "$ACT" "$AVATARD" --config "$TMP/bad.yaml" \
                --state-directory "$STATE" >>"$DAEMON_LOG" 2>&1 &
        activator=$!
        wait_for_socket "$ACT" "$activator" || fail "systemd-socket-activate listens"
        out=$("$AVATARCTL" --socket "$ACT" status 2>&1); rc=$?
        wait "$activator"; arc=$?
        check_eq "the activated service with a bad configuration exits 78" "78" "$arc"
        check_eq "a connection dropped before any answer: avatarctl exits 3" "3" "$rc"
        check_match "it says the daemon closed the connection, that it is not running, and where to look" \
                "^avatarctl: status: the daemon closed the connection before answering; $HINT_RE\$" "$out"
        check_eq "dropped: on one line" "1" "$(wc -l <<<"$out")"

        # the socket file stays behind with nobody listening
        out=$("$AVATARCTL" --socket "$ACT" status 2>&1); rc=$?
        check_eq "a socket nobody listens on: avatarctl exits 3" "3" "$rc"
        check_match "refused: it says avatard is not running and where to look" \
                "^avatarctl: cannot connect to $ACT: Connection refused; $HINT_RE\$" "$out"
else
        echo "# systemd-socket-activate is not installed: the dropped and refused connections are not tested"
fi

finish
