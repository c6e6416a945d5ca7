#!/usr/bin/env bash
# Black-box tests of the foundation: the built avatard on a temporary socket, driven by
# avatarctl and by a raw socket client (avatard-probe).
. "$(dirname "$0")/lib.sh"

cat > "$CONF" <<EOF
# test configuration: no upstream is reachable (a closed loopback port)
log_level: debug
# (short retries: the requests that fail upstream below fail in a fraction of a second)
upstream:
  base_url: http://127.0.0.1:9
  retry_base_ms: 10
  retry_max_ms: 20
limits:
  max_connections_per_uid: 2000
  idle_timeout_s: 600
EOF

check "avatard --check-config accepts the test configuration" "$AVATARD" --check-config --config "$CONF"

start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts and listens"

# --- socket file ---------------------------------------------------------------
mode=$(stat -c '%a' "$SOCK")
check_eq "socket file mode is 0660" "660" "$mode"

# --- avatarctl -------------------------------------------------------------------
out=$("$AVATARCTL" status 2>&1)
check_match "avatarctl status shows the version" "0\.1\.0" "$out"
out=$("$AVATARCTL" --json status)
check_match "avatarctl --json status reports protocol_version" '"protocol_version": ?[0-9]+' "$out"
check_match "daemon.status reports the pid" "\"pid\": ?$DAEMON_PID" "$out"
check_match "daemon.status reports limits" '"max_frame_bytes": ?1048576' "$out"
out=$("$AVATARCTL" methods 2>&1)
check_match "avatarctl methods lists daemon.status with its summary" "daemon\.status.*[Ll]imits" "$out"
check_match "avatarctl methods lists rpc.discover" "rpc\.discover" "$out"
"$AVATARCTL" ping >/dev/null; rc=$?
check_eq "avatarctl ping exits 0 when the daemon answers" "0" "$rc"
check_match "avatarctl ping shows the reply, the socket and the time" "^pong from $SOCK: time=[0-9]+\.[0-9]{3} ms$" \
        "$(on_tty "$AVATARCTL" ping)"
out=$("$AVATARCTL" --json ping)
check_match "avatarctl --json ping gives the reply and the time" '"reply": ?"pong".*"time_ms": ?[0-9]' "$out"
out=$("$AVATARCTL" --socket "$TMP/nowhere.sock" ping 2>&1); rc=$?
check_eq "avatarctl ping of no daemon exits 3" "3" "$rc"
out=$("$AVATARCTL" --json call daemon.ping '{"echo":{"a":[1,2]}}')
check_match "avatarctl call passes params and prints the result" '"a": ?\[ ?1, ?2 ?\]' "$out"
out=$("$AVATARCTL" call no.such.method 2>&1); rc=$?
check_eq "an unknown method exits 2" "2" "$rc"
check_match "an unknown method is explained" "[Mm]ethod not found" "$out"
out=$("$AVATARCTL" call daemon.status '{"bogus":1}' 2>&1); rc=$?
check_eq "invalid params exit 2" "2" "$rc"
check_match "invalid params name the param" "bogus" "$out"
out=$("$AVATARCTL" --socket "$TMP/nowhere.sock" status 2>&1); rc=$?
check_eq "an unreachable daemon exits 3" "3" "$rc"
out=$("$AVATARCTL" call rpc.discover | head -c 200)
check_match "rpc.discover returns the OpenRPC document" '"openrpc"' "$out"

# --- raw socket: the JSON-RPC 2.0 specification's examples and protocol edges ---
check "JSON-RPC 2.0 specification examples" "$PROBE" script "$SOCK" "$SCRIPTS/jsonrpc-spec.conv"
check "protocol edges (ids, CRLF, UTF-8, depth, batches)" "$PROBE" script "$SOCK" "$SCRIPTS/protocol-edges.conv"

# --- abuse ------------------------------------------------------------------------
check "an oversize frame closes only that connection" "$PROBE" oversize "$SOCK" $((1024 * 1024 + 100))
check "a connection stalled mid-line does not delay others" "$PROBE" stall "$SOCK"
check "a burst of 100,000 notifications (more than one buffer of frames) is absorbed" "$PROBE" burst "$SOCK" 100000
ulimit -n 4096 2>/dev/null || true
check "1,000 concurrent connections all get their answers" "$PROBE" flood "$SOCK" 1000

# --- end of input: a half-closed connection gets every reply before it is closed ---------
# concurrent manager.get_health calls share one upstream request (here a failing one), so their
# replies are made together while later requests are still buffered behind the in-flight limit
for n in 65 1000; do
        out=$("$PROBE" halfclose "$SOCK" "$n" manager.get_health)
        check_eq "$n coalesced requests, then end of input: all answered before the close" \
                "$n/$n requests answered before the close" "$out"
done
out=$("$PROBE" halfclose "$SOCK" 1000 daemon.ping)
check_eq "1000 pings, then end of input: all answered before the close" \
        "1000/1000 requests answered before the close" "$out"

# --- descriptor passing: unclaimed descriptors are closed ------------------------
before=$(fd_count "$DAEMON_PID")
check "10,000 messages carrying descriptors are answered" "$PROBE" fds "$SOCK" 10000
# the probe's connection is closed on the daemon's side once it saw the end of input
fd_count_is() { [ "$(fd_count "$DAEMON_PID")" = "$1" ]; }
wait_until 10 fd_count_is "$before"
after=$(fd_count "$DAEMON_PID")
check_eq "no descriptor leaks after 10,000 messages with descriptors" "$before" "$after"

# --- a second daemon on a live socket refuses to start -----------------------------
out=$(timeout "$(scaled 10)" "$AVATARD" --config "$CONF" --socket "$SOCK" --state-directory "$STATE" 2>&1); rc=$?
check_eq "a second avatard on a live socket exits 1" "1" "$rc"
check_match "it says another daemon is listening" "already listening" "$out"
check "the first daemon still answers" "$AVATARCTL" call daemon.ping

# --- configuration reload --------------------------------------------------------
cp "$CONF" "$TMP/good.yaml"
cat > "$CONF" <<EOF
limits:
  idle_timeout_s: 77
  no_such_key: 1
EOF
kill -HUP "$DAEMON_PID"
# the reload is over once daemon.status counts it (a rejected one as a failure)
wait_until 10 status_at_least failures 1
out=$("$AVATARCTL" --json status)
check_match "a bad file on SIGHUP keeps the old configuration" '"idle_timeout_s": ?600' "$out"
check_match "the rejection is reported in daemon.status" 'limits\.no_such_key' "$out"
check_match "the rejection is logged with the key and line" "avatard.yaml:3: limits.no_such_key: unknown key" "$(cat "$DAEMON_LOG")"
cat > "$CONF" <<EOF
limits:
  idle_timeout_s: 77
  max_connections_per_uid: 2000
EOF
reloads=$(status_num reloads)
kill -HUP "$DAEMON_PID"
wait_until 10 status_at_least reloads $((reloads + 1))
out=$("$AVATARCTL" --json status)
check_match "a good file on SIGHUP is applied" '"idle_timeout_s": ?77' "$out"
out=$("$AVATARCTL" --json call daemon.reload)
check_match "daemon.reload reloads" '"reloaded": ?true' "$out"
"$AVATARCTL" reload >/dev/null; rc=$?
check_eq "avatarctl reload exits 0 on a good file" "0" "$rc"
check_match "avatarctl reload names the file it read" "^Configuration reloaded from .*avatard\.yaml$" \
        "$(on_tty "$AVATARCTL" reload)"
printf 'limits:\n  idle_timeout_s: -5\n' >"$TMP/bad.yaml"
cp "$CONF" "$TMP/kept.yaml"; cp "$TMP/bad.yaml" "$CONF"
out=$("$AVATARCTL" reload 2>&1); rc=$?
check_eq "avatarctl reload of a bad file exits 9 (invalid state)" "9" "$rc"
check_match "avatarctl reload explains the rejection with the line and key" "avatard\.yaml:2: limits\.idle_timeout_s" "$out"
cp "$TMP/kept.yaml" "$CONF"
check_match "after a rejected reload the old configuration is still in force" '"idle_timeout_s": ?77' \
        "$("$AVATARCTL" --json status)"

# --- graceful stop ------------------------------------------------------------------
stop_daemon; rc=$?
check_eq "SIGTERM stops the daemon with status 0" "0" "$rc"
check "the socket file is removed at exit" test ! -e "$SOCK"

# --- stale socket --------------------------------------------------------------------
cp "$TMP/good.yaml" "$CONF"
start_daemon || fail "avatard restarts"
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=""
check "a killed daemon leaves its socket file behind" test -S "$SOCK"
start_daemon && pass "a stale socket file is replaced at start" || fail "a stale socket file is replaced at start"
check "the restarted daemon answers" "$AVATARCTL" call daemon.ping
stop_daemon

# --- per-uid connection cap and idle timeout -------------------------------------
# The cap first, with connections that do not go idle for the daemon: the probe holds three
# (each answered once, so the daemon counts them) until the test lets go of its input.
cat > "$CONF" <<EOF
limits:
  idle_timeout_s: 600
  max_connections_per_uid: 3
EOF
start_daemon
mkfifo "$TMP/hold.in"
"$PROBE" hold "$SOCK" 3 <"$TMP/hold.in" >"$TMP/hold.out" 2>&1 &
holder=$!
exec 8>"$TMP/hold.in"
wait_for_output 10 "$TMP/hold.out" "connections open" "$holder"
check_match "three connections up to the per-uid cap are served" "^3/3 connections open" "$(cat "$TMP/hold.out")"
out=$("$AVATARCTL" call daemon.ping 2>&1); rc=$?
check_match "a connection over the per-uid cap is refused as overloaded" "[Tt]oo many connections" "$out"
check_eq "avatarctl exits 10 when the daemon is overloaded" "10" "$rc"
exec 8>&-
wait "$holder"
check_match "the held connections stay open until their client lets go" "^released; 0/3" "$(tail -n 1 "$TMP/hold.out")"
# Then a one-second idle timeout: the probe waits for the daemon to close its connections.
# Until the daemon has seen the three above go, a status call may still be refused:
# wait_until asks again.
cat > "$CONF" <<EOF
limits:
  idle_timeout_s: 1
  max_connections_per_uid: 3
EOF
reloads_now() { reloads=$(status_num reloads); [ -n "$reloads" ]; }
wait_until 10 reloads_now
kill -HUP "$DAEMON_PID"
wait_until 10 status_at_least reloads $((reloads + 1))
out=$("$PROBE" hold "$SOCK" 2 idle </dev/null)
check_match "idle connections are closed by the daemon" "^2/2 connections closed by the daemon" "$out"
ms=$(sed -n 's/.*the first after \([0-9]*\) ms$/\1/p' <<<"$out")
# a lower bound only; libevent's coarse clock may run a few milliseconds behind
check "they are not closed before limits.idle_timeout_s (${ms:-?} ms after the first connect)" \
        test "${ms:-0}" -ge 950
check "daemon.status counts them as closed for idleness" test "$(status_num closed_idle_total)" -ge 2
stop_daemon

# --- configuration errors name key and line ----------------------------------------
cat > "$TMP/bad.yaml" <<EOF
log_level: info
limits:
  max_frame_bytes: 12
EOF
out=$("$AVATARD" --check-config --config "$TMP/bad.yaml" 2>&1); rc=$?
check_eq "--check-config rejects an out-of-range value (exit 78, EX_CONFIG)" "78" "$rc"
check_match "the error names the key, the line and the range" "bad.yaml:3: limits.max_frame_bytes: must be between" "$out"
printf 'socket: [1, 2\n' > "$TMP/bad2.yaml"
out=$("$AVATARD" --check-config --config "$TMP/bad2.yaml" 2>&1); rc=$?
check_eq "--check-config rejects invalid YAML" "78" "$rc"
out=$("$AVATARD" --check-config --config "$TMP/missing.yaml" 2>&1); rc=$?
check_eq "an explicit missing file is an error" "78" "$rc"

# --- systemd units --------------------------------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
        units="$TMP/units"
        mkdir -p "$units"
        cp "$BUILD_ROOT/tests/blackbox/avatard.service" "$SOURCE_ROOT/systemd/avatard.socket" "$units/"
        out=$(cd "$units" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
                ./avatard.socket ./avatard.service 2>&1); rc=$?
        check_eq "systemd-analyze verify passes on the units" "0" "$rc"
        [ "$rc" -ne 0 ] && printf '#   %s\n' "$out"
        check_match "the service is Type=notify with a watchdog" "WatchdogSec=" "$(cat "$units/avatard.service")"
else
        fail "systemd-analyze is available"
fi

finish
