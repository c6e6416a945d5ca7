#!/usr/bin/env bash
# Black-box tests of the upstream URL rules (avatar-api.md §1): AVATAR_BASE_URL with the
# deprecated /api suffix, base_url together with base_api_url or storage_endpoint_url in one
# source, and the refusal of plain http to a host that is not loopback.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"

start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
unset AVATAR_BASE_URL AVATAR_BASE_API_URL AVATAR_STORAGE_ENDPOINT_URL STORAGE_ENDPOINT_URL
export AVATAR_API_KEY="$SIM_KEY"
printf 'log_level: debug\n' >"$CONF"

# start_refused DESCRIPTION PATTERN [ENV=VALUE...]: avatard (a real start, not --check-config)
# with that environment exits 78 (EX_CONFIG) with a message matching PATTERN and leaves no socket.
start_refused() {
        local desc="$1" pattern="$2" out rc
        shift 2
        out=$(env "$@" timeout "$(scaled 10)" "$AVATARD" --config "$CONF" --socket "$SOCK" --state-directory "$STATE" 2>&1)
        rc=$?
        check_eq "$desc: avatard exits 78" "78" "$rc"
        check_match "$desc: the error says why" "$pattern" "$out"
        check "$desc: no socket is left" test ! -e "$SOCK"
}

# --- AVATAR_BASE_URL with a trailing /api ------------------------------------------------------------
for suffix in /api /api/; do
        export AVATAR_BASE_URL="$SIM_URL$suffix"
        start_daemon || fail "avatard starts with AVATAR_BASE_URL=...$suffix"
        st=$("$AVATARCTL" --json status)
        check_match "AVATAR_BASE_URL=...$suffix: the API root is BASE/api, not BASE/api/api" \
                "\"api_url\":\"$SIM_URL/api\"" "$st"
        check_match "AVATAR_BASE_URL=...$suffix: the storage endpoint is BASE/storage" \
                "\"storage_url\":\"$SIM_URL/storage\"" "$st"
        n=$(sim_count "GET /api/health")
        ctl manager.get_health
        check_eq "AVATAR_BASE_URL=...$suffix: get_health works" "0" "$CTL_RC"
        check_eq "AVATAR_BASE_URL=...$suffix: the request went to /api/health" "$((n + 1))" "$(sim_count "GET /api/health")"
        stop_daemon
        unset AVATAR_BASE_URL
done
check_eq "no request ever went to /api/api/..." "0" "$(grep -c '"path":"/api/api' "$SIM_REQUESTS")"

# --- base_url together with base_api_url or storage_endpoint_url ------------------------------------------
out=$(env AVATAR_BASE_URL="$SIM_URL" AVATAR_BASE_API_URL="$SIM_URL/api" "$AVATARD" --check-config --config "$CONF" 2>&1); rc=$?
check_eq "AVATAR_BASE_URL with AVATAR_BASE_API_URL: --check-config fails" "78" "$rc"
check_match "the error names AVATAR_BASE_URL and the base_api_url it conflicts with" \
        'AVATAR_BASE_URL: cannot set base_url together with (AVATAR_)?base_api_url' "$out"
check_match "the error says the conflict is in the environment" 'environment' "$out"
start_refused "AVATAR_BASE_URL with AVATAR_BASE_API_URL" 'AVATAR_BASE_URL: .*base_api_url' \
        AVATAR_BASE_URL="$SIM_URL" AVATAR_BASE_API_URL="$SIM_URL/api"
start_refused "AVATAR_BASE_URL with AVATAR_STORAGE_ENDPOINT_URL" 'AVATAR_BASE_URL: .*storage_endpoint_url' \
        AVATAR_BASE_URL="$SIM_URL" AVATAR_STORAGE_ENDPOINT_URL="$SIM_URL/storage"

cat > "$CONF" <<EOF
upstream:
  base_url: $SIM_URL
  base_api_url: $SIM_URL/api
EOF
out=$("$AVATARD" --check-config --config "$CONF" 2>&1); rc=$?
check_eq "upstream.base_url with upstream.base_api_url in the file: --check-config fails" "78" "$rc"
check_match "the error names the file, upstream.base_url and base_api_url" \
        "$CONF: upstream.base_url: cannot set base_url together with base_api_url" "$out"
start_refused "base_url with base_api_url in the file" 'upstream\.base_url: .*base_api_url'

# in different sources the file replaces the environment's URLs: no conflict
cat > "$CONF" <<EOF
log_level: debug
upstream:
  base_url: $SIM_URL
EOF
export AVATAR_BASE_API_URL="http://127.0.0.1:9/api"
start_daemon || fail "avatard starts with base_url in the file and AVATAR_BASE_API_URL in the environment"
check_match "base_url in the file wins over AVATAR_BASE_API_URL in the environment" \
        "\"api_url\":\"$SIM_URL/api\"" "$("$AVATARCTL" --json status)"
ctl manager.get_health
check_eq "and the daemon talks to the file's server" "0" "$CTL_RC"
stop_daemon
unset AVATAR_BASE_API_URL

# AVATAR_BASE_API_URL alone: the storage endpoint is not derived from it
printf 'log_level: debug\n' >"$CONF"
export AVATAR_BASE_API_URL="$SIM_URL/api"
start_daemon || fail "avatard starts with AVATAR_BASE_API_URL only"
st=$("$AVATARCTL" --json status)
check_match "AVATAR_BASE_API_URL alone sets the API root" "\"api_url\":\"$SIM_URL/api\"" "$st"
check_match "AVATAR_BASE_API_URL alone leaves the storage endpoint at its default" \
        '"storage_url":"https://www\.octopize\.app/storage"' "$st"
stop_daemon
unset AVATAR_BASE_API_URL

# --- plain http only to loopback, unless upstream.allow_insecure_http -----------------------------------------
start_refused "AVATAR_BASE_URL=http://avatar.example.com" \
        "'http://avatar.example.com/api' uses plain http to a host that is not loopback.*allow_insecure_http" \
        AVATAR_BASE_URL=http://avatar.example.com
printf 'upstream:\n  base_url: http://10.1.2.3:8080\n' >"$CONF"
start_refused "upstream.base_url: http://10.1.2.3:8080" 'not loopback.*allow_insecure_http'
printf 'upstream:\n  base_url: http://10.1.2.3:8080\n  allow_insecure_http: true\n' >"$CONF"
out=$("$AVATARD" --check-config --config "$CONF" 2>&1); rc=$?
check_eq "plain http to another host is accepted with upstream.allow_insecure_http: true" "0" "$rc"
printf 'upstream:\n  base_url: https://avatar.example.com/api/\n' >"$CONF"
out=$("$AVATARD" --check-config --config "$CONF" 2>&1); rc=$?
check_eq "https to any host is accepted" "0" "$rc"
printf 'upstream:\n  base_url: http://localhost:8080\n' >"$CONF"
out=$("$AVATARD" --check-config --config "$CONF" 2>&1); rc=$?
check_eq "plain http to localhost is accepted" "0" "$rc"
printf 'upstream:\n  base_url: ftp://avatar.example.com\n' >"$CONF"
out=$("$AVATARD" --check-config --config "$CONF" 2>&1); rc=$?
check_eq "another scheme is refused" "78" "$rc"
check_no_match "allow_insecure_http is not suggested for another scheme" 'allow_insecure_http' "$out"

check_no_sanitizer_reports
finish
