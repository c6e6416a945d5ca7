#!/usr/bin/env bash
# The service manager protocol without a service manager: socket activation through
# systemd-socket-activate (the daemon adopts the passed socket instead of binding its own),
# and sd_notify messages read from a datagram socket standing in for $NOTIFY_SOCKET
# (READY=1 once listening, STATUS=, RELOADING=1 around a reload, WATCHDOG=1 pings from the
# loop, STOPPING=1).
. "$(dirname "$0")/lib.sh"

if ! "$AVATARD" --version >/dev/null 2>&1 || ! command -v socat >/dev/null 2>&1; then
        fail "avatard and socat are available"
        finish
        exit $?
fi

# --- sd_notify ------------------------------------------------------------------------------------
NOTIFY="$TMP/notify.sock"
NOTES="$TMP/notify.log"
socat -u "UNIX-RECV:$NOTIFY" - >"$NOTES" 2>/dev/null &
listener=$!
wait_for_socket "$NOTIFY" "$listener"
check "a datagram socket stands in for the service manager" test -S "$NOTIFY"

# datagrams arrive back to back, without separators: count occurrences, not lines
notes_count() { tr '\0' '\n' <"$NOTES" | grep -oE -- "$1" | wc -l; }
# notes_at_least REGEX N: whether N messages matching REGEX arrived (for wait_until)
notes_at_least() { [ "$(notes_count "$1")" -ge "$2" ]; }

NOTIFY_SOCKET="$NOTIFY" WATCHDOG_USEC=300000 start_daemon || fail "avatard starts with NOTIFY_SOCKET"
wait_until 10 notes_at_least "READY=1" 1
# the status line follows READY=1, and the watchdog pings come every 150 ms
wait_until 10 notes_at_least "STATUS=Serving" 1
wait_until 10 notes_at_least "WATCHDOG=1" 3
notes=$(tr '\0' '\n' <"$NOTES")
check_match "READY=1 is sent once listening" "READY=1" "$notes"
check_match "STATUS= says what the daemon serves" "STATUS=Serving [0-9]+ connection\(s\) on $SOCK;" "$notes"
check_match "STATUS= names the upstream and its compatibility" "STATUS=.*upstream http://127.0.0.1:9/api: " "$notes"
n=$(notes_count "WATCHDOG=1")
check "WATCHDOG=1 pings come from the loop (every half interval: several of them)" test "$n" -ge 3
kill -HUP "$DAEMON_PID"
# the reload ends with a second READY=1
wait_until 10 notes_at_least "READY=1" 2
notes=$(tr '\0' '\n' <"$NOTES")
check_match "RELOADING=1 is sent for a reload" "RELOADING=1" "$notes"
check_match "RELOADING=1 comes with MONOTONIC_USEC= (Type=notify-reload)" "^MONOTONIC_USEC=[1-9][0-9]*" \
        "$(grep -A1 'RELOADING=1' <<<"$notes" | tail -n 1)"
check_eq "READY=1 follows the reload" "2" "$(grep -o 'READY=1' <<<"$notes" | wc -l)"
stop_daemon
# the daemon sent it before it exited; socat may still be writing it out
wait_until 10 notes_at_least "STOPPING=1" 1
notes=$(tr '\0' '\n' <"$NOTES")
check_match "STOPPING=1 is sent at the graceful stop" "STOPPING=1" "$notes"
kill "$listener" 2>/dev/null
wait "$listener" 2>/dev/null

# --- socket activation -------------------------------------------------------------------------------
ACT="$TMP/activated.sock"
systemd-socket-activate -l "$ACT" "$AVATARD" --config "$CONF" --socket "$TMP/never-bound.sock" \
        --state-directory "$STATE" >>"$DAEMON_LOG" 2>&1 &
activator=$!
wait_for_socket "$ACT" "$activator"
out=$("$AVATARCTL" --socket "$ACT" --json call daemon.status 2>&1)
check_match "a daemon started on the first connection answers on the passed socket" '"socket_activated":true' "$out"
check_match "daemon.status names the adopted socket" "\"socket\":\"$ACT\"" "$out"
check "the daemon did not bind a socket of its own" test ! -e "$TMP/never-bound.sock"
check "a second call is served by the same daemon" "$AVATARCTL" --socket "$ACT" call daemon.ping
DAEMON_PID=$(pgrep -P "$activator" -f avatard || echo "$activator")
kill -TERM "$activator" 2>/dev/null
wait "$activator" 2>/dev/null
DAEMON_PID=""
check "the socket file of the service manager is left alone at exit" test -S "$ACT"

finish
