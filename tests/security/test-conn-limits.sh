#!/usr/bin/env bash
# What a connection may hold, against a peer that sends slowly or much: a request line must be
# complete within limits.frame_timeout_s of its first byte however many bytes keep trickling
# in (slowloris), bytes that make no request do not keep a connection from its idle timeout,
# and past limits.max_buffered_bytes (the unprocessed input of all connections together) new
# input is refused with an overloaded error while the calls already running complete.
# The slow peers (tests/blackbox/avatard-conn.c) are paced by the daemon's own answers on a
# second connection, never by a clock: their bytes arrive far more often than any timeout.
. "$(dirname "$0")/../blackbox/lib.sh"
. "$SOURCE_ROOT/tests/blackbox/sim-fixtures.sh"

CONN="$BUILD_ROOT/tests/blackbox/avatard-conn"

cat >"$CONF" <<EOF
log_level: debug
limits:
  max_connections_per_uid: 200
  idle_timeout_s: 600
  frame_timeout_s: 2
EOF
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts"
check_match "daemon.status shows the line deadline" '"frame_timeout_s":2' "$("$AVATARCTL" --json status)"
check_match "daemon.status shows the buffered input cap (64 MiB by default)" '"max_buffered_bytes":67108864' \
        "$("$AVATARCTL" --json status)"

# --- slowloris: one byte at a time, the line never finished ----------------------------------------
big=$(head -c 100000 /dev/zero | tr '\0' 'a')
out=$("$AVATARCTL" --json call daemon.ping "{\"echo\":\"$big\"}" | head -c 100)
check_match "a large request written at once is served (the deadline is for slow lines only)" '"aaaa' "$out"
out=$("$CONN" trickle "$SOCK" line); rc=$?
echo "# $(tail -n 1 <<<"$out")"
check_eq "a line trickling in byte by byte is cut off by the daemon" "0" "$rc"
ms=$(sed -n 's/^closed after \([0-9]*\) ms, .*/\1/p' <<<"$out")
bytes=$(sed -n 's/.*, \([0-9]*\) bytes sent$/\1/p' <<<"$out")
check "bytes kept arriving until the close (${bytes:-?} of them, each after a ping answered)" test "${bytes:-0}" -ge 10
# a lower bound only: it is the deadline of the whole line, from its first byte
check "not before limits.frame_timeout_s (${ms:-?} ms after the first byte)" \
        test "${ms:-0}" -ge $((2000 - TEST_TIMER_SLACK_MS))
check_match "the peer is told why: a timeout error naming the limit" \
        '^slow: \{"jsonrpc":"2.0","error":\{"code":-32011,.*"limit":"limits.frame_timeout_s"' "$out"
check_match "the daemon logs it, with the bytes received" \
        'sent [0-9]+ byte\(s\) of a request line without finishing it within 2s of its first byte \(limits.frame_timeout_s\): closing the connection' \
        "$(cat "$DAEMON_LOG")"
check_eq "daemon.status counts it" "1" "$(status_num closed_frame_timeout_total)"
check_eq "it was not the idle timeout" "0" "$(status_num closed_idle_total)"

# --- bytes that make no request are no activity -------------------------------------------------------
cat >"$CONF" <<EOF
log_level: debug
limits:
  max_connections_per_uid: 200
  idle_timeout_s: 1
  frame_timeout_s: 0
EOF
reloads=$(status_num reloads)
kill -HUP "$DAEMON_PID"
wait_until 10 status_at_least reloads $((reloads + 1))
out=$("$CONN" trickle "$SOCK" blank); rc=$?
echo "# $(tail -n 1 <<<"$out")"
check_eq "a connection sending only empty lines is closed by the idle timeout" "0" "$rc"
ms=$(sed -n 's/^closed after \([0-9]*\) ms, .*/\1/p' <<<"$out")
check "not before limits.idle_timeout_s (${ms:-?} ms)" test "${ms:-0}" -ge $((1000 - TEST_TIMER_SLACK_MS))
check "daemon.status counts it as idle" test "$(status_num closed_idle_total)" -ge 1
stop_daemon

# --- the cap on the input all connections hold ------------------------------------------------------------
start_sim --api-key "$SIM_KEY" || { fail "avatar-sim starts"; finish; exit $?; }
cat >"$CONF" <<EOF
log_level: debug
upstream:
  base_url: $SIM_URL
limits:
  max_frame_bytes: 64KiB
  max_buffered_bytes: 128KiB
  frame_timeout_s: 0
EOF
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard restarts with a cap of 128 KiB"; finish; exit $?; }
# a call that stays in flight until the test lets the simulator answer
sim_fault '{"route":"GET /api/health","hold":true}'
"$CONN" cap "$SOCK" 2 65535 '{"jsonrpc":"2.0","id":"health","method":"manager.get_health"}' \
        >"$TMP/cap.out" 2>&1 &
capper=$!
if wait_for_output 30 "$TMP/cap.out" '^release$' "$capper"; then
        pass "the input of two connections fills the cap (2 × 65,535 bytes of unfinished lines)"
else
        fail "the input of two connections fills the cap" "$(cat "$TMP/cap.out")"
fi
curl -sS --max-time "$(scaled 10)" -X DELETE "$SIM_URL/_sim/faults" >/dev/null
wait "$capper"
check_eq "the scenario runs to its end" "0" "$?"
out=$(cat "$TMP/cap.out")
check_match "the first fill is held" '^fill 1: held$' "$out"
check_match "the second fill is held: the cap is full" '^fill 2: held$' "$out"
check_match "the connection with a call in flight sends more: overloaded, naming the limit" \
        '^A: \{"jsonrpc":"2.0","error":\{"code":-32008,.*"limit":"limits.max_buffered_bytes"' "$out"
check_match "a new connection's request is refused the same way" \
        '^B: \{"jsonrpc":"2.0","error":\{"code":-32008,' "$out"
check_match "and that connection is closed" '^B: closed$' "$out"
check_match "the call already in flight completes: its reply comes after the refusal" \
        '^A: \{"jsonrpc":"2.0","result":.*"id":"health"\}$' "$out"
check_match "then the refused connection is closed" '^A: closed$' "$out"
check_match "once the fills are gone, new requests are served" '^C: \{"jsonrpc":"2.0","result":"pong"' "$out"
check_match "the daemon logs the refusal with the limit" \
        'Refusing the input of client [0-9]+ .*limits.max_buffered_bytes is 131072' "$(cat "$DAEMON_LOG")"
check "daemon.status counts the refusals" test "$(status_num refused_input_total)" -ge 2
input_gone() { [ "$(status_num buffered_bytes)" = 0 ]; }
check "the input held goes back to nothing" wait_until 10 input_gone

printf 'limits:\n  max_frame_bytes: 1MiB\n  max_buffered_bytes: 512KiB\n' >"$TMP/small-cap.yaml"
out=$("$AVATARD" --check-config --config "$TMP/small-cap.yaml" 2>&1)
check_match "a cap below the frame size is a configuration error" \
        'limits.max_buffered_bytes: must be at least limits.max_frame_bytes' "$out"

check_no_sanitizer_reports
finish
