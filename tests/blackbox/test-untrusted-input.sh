#!/usr/bin/env bash
# Black-box tests of what a hostile local user or a misbehaving server sends, and what the
# daemon makes of it: URLs with credentials and a 100,000-level configuration are refused
# with a clear error (the password never repeated); control characters in set names, table
# names, method names and the peer's comm cannot forge a log line; JSON-RPC ids beyond 64 bits
# are echoed byte for byte; a directory or a procfs file passed as a table is invalid params,
# a download into a descriptor that refuses writes is io_error, and a redirect of the API is
# "redirect not followed (302 to ...)" without the Location's credentials or query.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

PW="pw-$$-Zq9"

# --- configuration: credentials in URLs, nesting -----------------------------------------------

out=$(AVATAR_BASE_URL="https://alice:$PW@avatar.example.com" "$AVATARD" --config "$CONF" --check-config 2>&1)
check_eq "AVATAR_BASE_URL with user:password@ is refused (exit 78)" "78" "$?"
check_contains "the error names the variable and why" \
        "AVATAR_BASE_URL: must not contain a user name or password" "$out"
check_no_match "the error does not repeat the password" "$PW" "$out"

printf 'log_level: info\nupstream:\n  storage_endpoint_url: http://bob:%s@127.0.0.1:9000/storage\n' "$PW" >"$TMP/cred.yaml"
out=$("$AVATARD" --config "$TMP/cred.yaml" --check-config 2>&1)
check_eq "storage_endpoint_url with credentials in the file is refused (exit 78)" "78" "$?"
check_contains "the error names the file, the line and the key" \
        "$TMP/cred.yaml:3: upstream.storage_endpoint_url: must not contain a user name or password" "$out"
check_no_match "nor does it repeat this password" "$PW" "$out"

python3 -c 'import sys; d = 100000; sys.stdout.write("limits: " + "[" * d + "]" * d + "\n")' >"$TMP/deep.yaml"
t0=$(test_now_ms)
out=$("$AVATARD" --config "$TMP/deep.yaml" --check-config 2>&1)
rc=$?
t1=$(test_now_ms)
check_eq "a configuration nested 100,000 levels deep is refused (exit 78)" "78" "$rc"
check_contains "at its line, naming the limit ($((t1 - t0)) ms)" "$TMP/deep.yaml:1: (structure): nested deeper than 64 levels" "$out"

# --- the daemon against the simulator ------------------------------------------------------------

start_sim --api-key "$SIM_KEY" --job-step-ms 50 || { fail "avatar-sim starts"; finish; exit $?; }
runner_conf >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

# a reload with the deep file is refused as quickly, and the daemon goes on
cp "$CONF" "$TMP/good.yaml"
cp "$TMP/deep.yaml" "$CONF"
ctl daemon.reload '{}'
check_match "daemon.reload of the deep file fails with the limit" "nested deeper than 64 levels" "$OUT"
cp "$TMP/good.yaml" "$CONF"
check "the daemon still answers" "$AVATARCTL" --timeout "$(scaled 10)" call daemon.ping

# --- log lines -----------------------------------------------------------------------------------

FORGED='avatard[1]: err: FORGED'
ctl manager.create_runner "{\"set_name\":\"evil\\n$FORGED\\u001b[2K\\u009b1A\\u202e\"}"
check_eq "create_runner takes a set name with control characters" "0" "$CTL_RC"
RE=$(runner_id_of "$OUT")
out=$(pcall -f "$IRIS" runner.add_table "{\"runner_id\":\"$RE\",\"table_name\":\"t\\u007f\\u001b\",\"data\":{\"fd\":0}}")
check_match "add_table refuses a table name with ESC" '"code":-32602' "$(reply_of "$out")"
out=$(pcall -f "$IRIS" runner.add_table "{\"runner_id\":\"$RE\",\"table_name\":\"t\\u007f\\u009b\\u2028x\",\"data\":{\"fd\":0}}")
check_match "add_table takes a table name with DEL, CSI and a line separator" '"tables":\[' "$(reply_of "$out")"
rpc "no.such\\n$FORGED" >/dev/null
# the peer's comm: programs whose names hold a newline (the comm is read up to it), and ESC
# and a tab
ln -s "$AVATARCTL" "$TMP/x"$'\n'"FORGED"
ln -s "$AVATARCTL" "$TMP/y"$'\e[31m\t'"FORGED"
if "$TMP/x"$'\n'"FORGED" --timeout "$(scaled 10)" call daemon.status >/dev/null 2>&1 &&
   "$TMP/y"$'\e[31m\t'"FORGED" --timeout "$(scaled 10)" call daemon.status >/dev/null 2>&1; then
        pass "clients whose comm holds a newline, ESC or a tab are served"
else
        fail "clients whose comm holds a newline, ESC or a tab are served"
fi
check "the peer's comm is logged escaped" grep -Fq 'comm=y\x1b[31m\tFORGED' "$DAEMON_LOG"
check "the set name is logged escaped" grep -Fq "'evil\\n$FORGED\\x1b[2K\\u009b1A\\u202e'" "$DAEMON_LOG"
check "the table name is logged escaped" grep -Fq "'t\\x7f\\u009b\\u2028x'" "$DAEMON_LOG"
check_no_match "no log line starts with forged text" '^(avatard\[1\]|FORGED)' "$(cat "$DAEMON_LOG")"
check_eq "no ESC, DEL or other control byte in the log" "0" \
        "$(LC_ALL=C tr -d '\n' <"$DAEMON_LOG" | LC_ALL=C tr -cd '\000-\037\177' | wc -c)"
check_eq "no C1 control, line separator or bidirectional override in the log" "0" \
        "$(LC_ALL=C grep -c $'\xc2[\x80-\x9f]\|\xe2\x80[\xa8-\xae]\|\xe2\x81[\xa6-\xa9]' "$DAEMON_LOG")"

# --- JSON-RPC ids beyond 64 bits -----------------------------------------------------------------

cat >"$TMP/ids.conv" <<'EOF'
> {"jsonrpc":"2.0","method":"daemon.ping","id":18446744073709551616}
<match "id":18446744073709551616}
> {"jsonrpc":"2.0","method":"daemon.ping","id":18446744073709551617}
<match "id":18446744073709551617}
> {"jsonrpc":"2.0","method":"daemon.ping","id":-9223372036854775809}
<match "id":-9223372036854775809}
> {"jsonrpc":"2.0","method":"daemon.ping","id":9223372036854775807}
<match "id":9223372036854775807}
> {"jsonrpc":"2.0","method":"daemon.ping","id":-9223372036854775808}
<match "id":-9223372036854775808}
> {"jsonrpc":"2.0","method":"daemon.ping","id":1.5}
<match "id":1.5}
> {"jsonrpc":"2.0","method":"daemon.ping","id":1e3}
<match "id":1e3}
> {"jsonrpc":"2.0","method":"daemon.ping","id":-0}
<match "id":-0}
> {"jsonrpc":"2.0","method":"no.such","id":123456789012345678901234567890}
<match "id":123456789012345678901234567890}
> [{"jsonrpc":"2.0","method":"daemon.ping","id":99999999999999999999},{"jsonrpc":"1.0","method":"daemon.ping","id":99999999999999999998}]
<match "id":99999999999999999998}
EOF
check "ids beyond 64 bits, -0, 1.5 and 1e3 are echoed byte for byte" "$PROBE" script "$SOCK" "$TMP/ids.conv"

# --- error classes of passed descriptors ---------------------------------------------------------

mkdir -p "$TMP/adir"
out=$(pcall -f "$TMP/adir" runner.add_table "{\"runner_id\":\"$RE\",\"table_name\":\"d\",\"data\":{\"fd\":0}}")
check_match "a directory passed as a table: invalid params" '"code":-32602' "$(reply_of "$out")"
check_match "that names the directory" 'names a directory' "$(reply_of "$out")"
out=$(pcall -f /proc/self/status runner.add_table "{\"runner_id\":\"$RE\",\"table_name\":\"p\",\"data\":{\"fd\":0}}")
check_match "a procfs file passed as a table: invalid params" '"code":-32602' "$(reply_of "$out")"
check_match "that says its size is unknown" 'size the kernel does not tell' "$(reply_of "$out")"
check_no_match "and nothing was stored for it" '"p"' "$(reply_of "$out")"
ctl runner.get_status "{\"runner_id\":\"$RE\"}"
check_no_match "the runner has no table p" '"tables":\[[^]]*"p"' "$OUT"

ctl manager.create_runner '{"set_name":"classes"}'
RC=$(runner_id_of "$OUT")
ctl runner.add_table "{\"runner_id\":\"$RC\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$IRIS"
check_eq "classes: add_table" "0" "$CTL_RC"
ctl runner.set_parameters "{\"runner_id\":\"$RC\",\"table_name\":\"iris\",\"k\":5}"
ctl runner.run "{\"runner_id\":\"$RC\"}"
check_eq "classes: run" "0" "$CTL_RC"
wait_runner "$RC"
check_match "classes: the run finishes" '"done":true' "$OUT"
out=$(pcall -f "$TMP/adir" runner.download "{\"runner_id\":\"$RC\",\"result\":\"shuffled\",\"fd\":{\"fd\":0}}")
check_match "a download into a directory: invalid params" '"code":-32602' "$(reply_of "$out")"
out=$(pcall -o /dev/full runner.download "{\"runner_id\":\"$RC\",\"result\":\"shuffled\",\"fd\":{\"fd\":0}}")
check_match "a download into a descriptor that refuses writes (/dev/full): io_error" \
        '"code":-32015.*"name":"io_error"' "$(reply_of "$out")"
check_match "that says the write failed" 'write to the download descriptor: No space left on device' "$(reply_of "$out")"
check "the daemon still answers" "$AVATARCTL" --timeout "$(scaled 10)" call daemon.ping

# --- a redirect of the API -----------------------------------------------------------------------

stop_daemon >/dev/null 2>&1
python3 - "$TMP/redirect.port" >"$TMP/redirect.log" 2>&1 <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        self.send_response(302)
        self.send_header("Location", "https://carol:KEYINLOC@elsewhere.example/login?api_key=KEYINQUERY#KEYINFRAG")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    do_GET = do_POST = do_PUT = do_DELETE = answer
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
EOF
REDIRECT_PID=$!
if wait_for_file 10 "$TMP/redirect.port"; then
        printf 'log_level: debug\nupstream:\n  base_url: http://127.0.0.1:%s\n  max_attempts: 1\n' \
                "$(cat "$TMP/redirect.port")" >"$CONF"
        start_daemon || fail "avatard starts against the redirecting server"
        ctl manager.get_health '{}'
        check_match "a redirect is an upstream_http_error" 'upstream_http_error' "$OUT"
        check_match "that says where it pointed" \
                'redirect not followed \(302 to https://elsewhere\.example/login\)' "$OUT"
        check_no_match "not the body" 'Internal error' "$OUT"
        check_no_match "nor the Location's credentials, query or fragment" 'KEYIN|carol' "$OUT"
        check_no_match "the log neither" 'KEYIN|carol' "$(cat "$DAEMON_LOG")"
else
        fail "the redirecting server starts" "$(cat "$TMP/redirect.log")"
fi
kill "$REDIRECT_PID" 2>/dev/null
wait "$REDIRECT_PID" 2>/dev/null

finish
