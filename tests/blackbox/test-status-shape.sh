#!/usr/bin/env bash
# daemon.status is written as text, without an object per call: its reply keeps the shape the
# object gave, byte for byte once the values that vary between runs (strings, numbers, uids,
# URLs) are masked. The golden text (scripts/status-shape.golden) is the reply of the object
# path after the same calls; regenerate it with STATUS_GOLDEN_UPDATE=1 when daemon.status
# changes on purpose. Also: the counters the reply shows move with the calls made.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"

GOLDEN="$SOURCE_ROOT/tests/blackbox/scripts/status-shape.golden"

start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
export AVATAR_API_KEY="$SIM_KEY" AVATAR_BASE_URL="$SIM_URL"
printf 'log_level: debug\n' >"$CONF"
start_daemon || { fail "avatard starts"; finish; exit $?; }

# the same calls as when the golden text was made: the compatibility answer, a cached read, a
# ping, an unknown method (the errors block), a runner (the runners block)
ctl manager.verify_compatibility
check_eq "manager.verify_compatibility answers" "0" "$CTL_RC"
ctl manager.get_health
check_eq "manager.get_health answers" "0" "$CTL_RC"
"$PROBE" call "$SOCK" '{"jsonrpc":"2.0","method":"no.such_method","id":1}' >/dev/null
ctl manager.create_runner '{"set_name":"status-shape"}'
check_eq "manager.create_runner answers" "0" "$CTL_RC"

# mask_status: the varying values of a reply masked (strings, numbers, numeric and URL keys)
mask_status() {
        sed -E 's/:"([^"\\]|\\.)*"/:"S"/g; s/"[0-9]+":/"K":/g; s/"https?:[^"]*":/"U":/g;
                s/:-?[0-9][0-9.eE+-]*/:N/g; s/\[[0-9][0-9,]*\]/[N]/g'
}

reply=$("$PROBE" call "$SOCK" '{"jsonrpc":"2.0","method":"daemon.status","id":7}')
check_match "daemon.status answers" '^\{"jsonrpc":"2.0","result":\{"version":' "$reply"
masked=$(printf '%s\n' "$reply" | mask_status)
if [ "${STATUS_GOLDEN_UPDATE:-0}" = 1 ]; then
        printf '%s\n' "$masked" >"$GOLDEN"
        pass "golden text written to $GOLDEN"
else
        check_eq "the reply has the golden shape, byte for byte once masked" "$(cat "$GOLDEN")" "$masked"
fi
check_match "numbers are written as json-c writes them (uptime_s with 3 decimals)" '"uptime_s":[0-9]+\.[0-9]{3},' "$reply"
check_match "the calls are counted by method" '"requests":\{[^}]*"daemon.status":1[,}]' "$reply"
check_match "the unknown method is counted" '"errors":\{"method_not_found":1\}' "$reply"

# the values follow the calls: a second status counts itself and the ping between
"$PROBE" call "$SOCK" '{"jsonrpc":"2.0","method":"daemon.ping","id":2}' >/dev/null
reply2=$("$PROBE" call "$SOCK" '{"jsonrpc":"2.0","method":"daemon.status","id":"s/1"}')
check_match "a second daemon.status counts both" '"daemon.status":2' "$reply2"
check_match "and the ping" '"daemon.ping":2' "$reply2"
check_match "a string id is echoed" ',"id":"s/1"\}$' "$reply2"
check_eq "its shape is the same" "${masked%,\"id\":N\}},\"id\":\"S\"}" "$(printf '%s\n' "$reply2" | mask_status)"

stop_daemon
finish
