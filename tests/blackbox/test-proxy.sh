#!/usr/bin/env bash
# The daemon behind a corporate proxy, through a real one we did not write (tinyproxy, with
# basic authentication): upstream.proxy carries every request to the API and to the storage
# (a small avatarization, its upload and its download); upstream.no_proxy bypasses it; the
# environment's http_proxy does the same without the key (HTTP_PROXY does not, as for
# libcurl), and proxy: "" turns the environment's off; a dead proxy gives an error that names
# it; daemon.status shows the proxy in use; the proxy's password appears in no reply, log line
# or error. The simulator listens on 127.0.0.1: requests to a loopback host go through the
# proxy unless no_proxy lists it. Skipped, with the reason, when tinyproxy is not installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

TINYPROXY=$(command -v tinyproxy || true)
if [ -z "$TINYPROXY" ]; then
        echo "1..0 # SKIP tinyproxy is not installed (scripts/install-deps installs tinyproxy-bin)"
        exit 77
fi

PROXY_USER=alice
PROXY_PASSWORD="pw-$$-$RANDOM"
TP_LOG="$TMP/tinyproxy.log"
TP_PID=""
TP_PORT=""

# free_port: a loopback TCP port nobody listens on right now.
free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_tinyproxy: tinyproxy on 127.0.0.1 with its own configuration and log in $TMP,
# requiring basic authentication. Sets TP_PID and TP_PORT.
start_tinyproxy() {
        local try
        for try in 1 2 3; do
                TP_PORT=$(free_port)
                cat >"$TMP/tinyproxy.conf" <<EOF
Port $TP_PORT
Listen 127.0.0.1
Allow 127.0.0.1
Timeout 60
MaxClients 50
LogFile "$TP_LOG"
LogLevel Connect
BasicAuth $PROXY_USER $PROXY_PASSWORD
EOF
                : >"$TP_LOG"
                "$TINYPROXY" -d -c "$TMP/tinyproxy.conf" >>"$TMP/tinyproxy.out" 2>&1 &
                TP_PID=$!
                if wait_until 10 _listening_or_dead "$TP_PORT" "$TP_PID"; then
                        return 0
                fi
                kill "$TP_PID" 2>/dev/null
                wait "$TP_PID" 2>/dev/null
                TP_PID=""
        done
        return 1
}

# Whether something accepts on 127.0.0.1:PORT; fails for good once process PID died.
_listening_or_dead() {
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return "$WAIT_NEVER"
        return 1
}

# proxied ROUTE-REGEX: how many requests tinyproxy forwarded whose "METHOD URL" matches.
proxied() {
        grep -cE "Request \(file descriptor [0-9]+\): $1" "$TP_LOG" || true
}

# sim_total: requests the simulator received.
sim_total() {
        [ -f "$SIM_REQUESTS" ] && wc -l <"$SIM_REQUESTS" || echo 0
}

# health_proxied: the GET /api/health requests tinyproxy forwarded.
health_proxied() {
        proxied "GET $SIM_RE/api/health "
}

# health_sim: the GET /api/health requests the simulator received.
health_sim() {
        sim_count "GET /api/health"
}

# all_came_through: whether the simulator received as many requests as the proxy forwarded.
all_came_through() {
        [ "$(sim_total)" = "$(proxied "")" ]
}

# proxy_conf YAML-LINES...: runner_conf (health never cached) plus lines under upstream:.
proxy_conf() {
        printf '%s\n' "$@" >"$TMP/upstream-lines"
        runner_conf | sed -e 's/^cache:$/cache:\n  health_ttl_s: 0/' -e "/^upstream:\$/r $TMP/upstream-lines"
}

# no_password TEXT DESCRIPTION: the proxy's password is not in TEXT.
no_password() {
        check_no_match "$1" "$PROXY_PASSWORD" "$2"
}

start_sim --api-key "$SIM_KEY" --job-step-ms 20 || { fail "avatar-sim starts"; finish; exit $?; }
start_tinyproxy || { fail "tinyproxy starts" "$(cat "$TMP/tinyproxy.out")"; finish; exit $?; }
pass "tinyproxy listens on 127.0.0.1:$TP_PORT"
PROXY_URL="http://$PROXY_USER:$PROXY_PASSWORD@127.0.0.1:$TP_PORT"
MASKED="http://\\*\\*\\*@127.0.0.1:$TP_PORT"
SIM_RE=$(sed 's/[.]/\\./g' <<<"$SIM_URL")
export AVATAR_API_KEY="$SIM_KEY"
unset AVATAR_BASE_URL http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# --- upstream.proxy: every request, API and storage ----------------------------------------------
proxy_conf "  proxy: $PROXY_URL" >"$CONF"
start_daemon || { fail "avatard starts with upstream.proxy"; finish; exit $?; }
st=$("$AVATARCTL" --json status)
check_match "daemon.status shows the API's proxy, credentials masked" "\"proxy\":\\{\"api\":\"$MASKED\"" "$st"
check_match "daemon.status shows the storage's proxy and where the setting comes from" \
        "\"storage\":\"$MASKED\",\"source\":\"config\",\"variable\":null,\"no_proxy\":null" "$st"
no_password "daemon.status never shows the proxy's password" "$st"
check_match "the log says at start which proxy the requests go through" \
        "Upstream requests go through the proxy $MASKED \(from the configuration\)" "$(cat "$DAEMON_LOG")"

ctl manager.get_health
check_eq "get_health works through the proxy" "0" "$CTL_RC"
check_eq "the proxy forwarded GET /api/health (a loopback host is not exempt)" "1" "$(proxied "GET $SIM_RE/api/health ")"

out=$("$AVATARCTL" --timeout "$(scaled 60)" avatarize "$IRIS" --name iris-proxy --jobs standard \
        --output "$TMP/results" 2>&1); rc=$?
check_eq "an avatarization works through the proxy" "0" "$rc"
[ "$rc" = 0 ] || printf '#   %s\n' "$out"
check "its avatars were downloaded" test -s "$(ls "$TMP/results"/* 2>/dev/null | head -n 1)"
check "the proxy forwarded the upload to the storage (PUT)" test "$(proxied "PUT $SIM_RE/storage/")" -ge 1
check "the proxy forwarded the download from the storage (GET)" test "$(proxied "GET $SIM_RE/storage/")" -ge 1
check "the proxy forwarded the job creation (POST /api/jobs)" test "$(proxied "POST $SIM_RE/api/jobs ")" -ge 1
wait_until 10 all_came_through
check_eq "every request the simulator received came through the proxy" "$(sim_total)" "$(proxied "")"
no_password "the daemon's log never shows the proxy's password" "$(cat "$DAEMON_LOG")"

# --- upstream.no_proxy bypasses it ------------------------------------------------------------------
proxy_conf "  proxy: $PROXY_URL" "  no_proxy: localhost, 127.0.0.0/8" >"$CONF"
check "the daemon reloads with no_proxy" "$AVATARCTL" reload
before=$(health_proxied)
sims=$(health_sim)
ctl manager.get_health
check_eq "get_health works with the simulator in no_proxy" "0" "$CTL_RC"
check_eq "the request reached the simulator" "$((sims + 1))" "$(health_sim)"
check_eq "it did not go through the proxy" "$before" "$(health_proxied)"
check_match "daemon.status: no proxy for the API, and the no_proxy in force" \
        '"proxy":\{"api":null,"storage":null,"source":"config","variable":null,"no_proxy":"localhost, 127.0.0.0/8","no_proxy_source":"config"\}' \
        "$("$AVATARCTL" --json status)"
stop_daemon

# --- the environment: http_proxy without the key; HTTP_PROXY is not read -------------------------
proxy_conf >"$CONF"
before=$(health_proxied)
http_proxy="$PROXY_URL" start_daemon || fail "avatard starts with http_proxy"
ctl manager.get_health
check_eq "get_health works with http_proxy" "0" "$CTL_RC"
check_eq "http_proxy: the request went through the proxy" "$((before + 1))" "$(health_proxied)"
st=$("$AVATARCTL" --json status)
check_match "daemon.status: the proxy from the environment, masked, and its variable" \
        "\"proxy\":\\{\"api\":\"$MASKED\",\"storage\":\"$MASKED\",\"source\":\"environment\",\"variable\":\"http_proxy\"" "$st"
no_password "daemon.status never shows the environment's proxy password" "$st"
check_match "the log says the proxy comes from the environment" \
        "Upstream requests go through the proxy $MASKED \(from the environment\)" "$(cat "$DAEMON_LOG")"
stop_daemon

before=$(health_proxied)
HTTP_PROXY="$PROXY_URL" start_daemon || fail "avatard starts with HTTP_PROXY"
ctl manager.get_health
check_eq "get_health works with HTTP_PROXY set" "0" "$CTL_RC"
check_eq "HTTP_PROXY (which a CGI request can set) is not used, as libcurl does not" "$before" "$(health_proxied)"
stop_daemon

http_proxy="$PROXY_URL" no_proxy="127.0.0.1" start_daemon || fail "avatard starts with http_proxy and no_proxy"
ctl manager.get_health
check_eq "get_health works with no_proxy from the environment" "0" "$CTL_RC"
check_eq "the environment's no_proxy bypasses the proxy" "$before" "$(health_proxied)"
check_match "daemon.status names the no_proxy variable" '"no_proxy":"127.0.0.1","no_proxy_source":"no_proxy"' \
        "$("$AVATARCTL" --json status)"
stop_daemon

# --- proxy: "" turns the environment's proxy off ------------------------------------------------------
proxy_conf '  proxy: ""' >"$CONF"
http_proxy="$PROXY_URL" start_daemon || fail "avatard starts with proxy: \"\" and http_proxy"
ctl manager.get_health
check_eq "get_health works with proxy: \"\"" "0" "$CTL_RC"
check_eq "proxy: \"\" wins over http_proxy: no request through the proxy" "$before" "$(health_proxied)"
check_match "daemon.status: no proxy, by the configuration" '"proxy":\{"api":null,"storage":null,"source":"config"' \
        "$("$AVATARCTL" --json status)"
stop_daemon

# --- a dead proxy: the error names it, credentials masked --------------------------------------------
DEAD=$(free_port)
proxy_conf "  proxy: http://bob:dead-$PROXY_PASSWORD@127.0.0.1:$DEAD" | sed 's/max_attempts: 3/max_attempts: 1/' >"$CONF"
start_daemon || fail "avatard starts with a proxy that does not answer"
ctl manager.get_health
check_eq "get_health through a dead proxy fails as an upstream problem (exit 7)" "7" "$CTL_RC"
check_match "the error names the proxy it could not connect to, credentials masked" \
        "Failed to connect to proxy http://\\*\\*\\*@127.0.0.1:$DEAD \\(" "$OUT"
no_password "the error does not show the proxy's password" "$OUT"
no_password "nor does the daemon's log" "$(cat "$DAEMON_LOG")"
stop_daemon

# --- invalid proxies are configuration errors ---------------------------------------------------------
printf 'upstream:\n  base_url: %s\n  proxy: ftp://%s@127.0.0.1:21\n' "$SIM_URL" "$PROXY_PASSWORD" >"$TMP/bad-proxy.yaml"
out=$("$AVATARD" --check-config --config "$TMP/bad-proxy.yaml" 2>&1); rc=$?
check_eq "upstream.proxy with another scheme is refused (exit 78)" "78" "$rc"
check_match "the error names file, line and key" \
        "bad-proxy.yaml:3: upstream.proxy: must use the scheme http, https, socks5 or socks5h" "$out"
no_password "it does not repeat the URL's password" "$out"
out=$(https_proxy="gopher://u:$PROXY_PASSWORD@proxy:70" "$AVATARD" --check-config --config "$CONF" 2>&1); rc=$?
check_eq "an invalid https_proxy is refused (exit 78)" "78" "$rc"
check_match "the error names the variable" "https_proxy: must use the scheme" "$out"
no_password "it does not repeat the variable's password" "$out"

kill "$TP_PID" 2>/dev/null
wait "$TP_PID" 2>/dev/null
finish
