#!/usr/bin/env bash
# Black-box test of avatar-sim: starts it on a free loopback port and drives every part of it
# with curl (storage requests signed with curl --aws-sigv4), then checks the request log.
# Usage: test-avatar-sim.sh PATH/TO/avatar-sim
# AVATAR_SIM_WRAPPER, when set, is put in front of the simulator's command line, e.g.
# AVATAR_SIM_WRAPPER="valgrind --error-exitcode=99 --leak-check=full" (its errors then show
# as a non-zero exit status at SIGTERM).
set -euo pipefail

# shellcheck source=../lib/wait.sh
. "$(dirname "$0")/../lib/wait.sh"

SIM=${1:?usage: test-avatar-sim.sh PATH/TO/avatar-sim}
command -v curl >/dev/null || { echo "1..0 # SKIP curl not found"; exit 77; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/avatar-sim-test.XXXXXX")
PIDS=()
N_PASS=0
N_FAIL=0
declare -A SET_JOBS=()
KEY1='key-with-dashes_and_underscores.123'
KEY2='second-user-key'
UA='avatar-python/1.29.0'
# curl's bound of one request: only hit when the simulator hangs (it may run under valgrind).
MAX_TIME=$(scaled 20)

# Stops every simulator still running and removes the scratch directory.
cleanup() {
        local p
        for p in "${PIDS[@]}"; do
                kill -TERM "$p" 2>/dev/null || true
                wait "$p" 2>/dev/null || true
        done
        rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Records the outcome of one check: check "description" command args...
check() {
        local desc=$1
        shift
        if "$@"; then
                N_PASS=$((N_PASS + 1))
                echo "ok $((N_PASS + N_FAIL)) - $desc"
        else
                N_FAIL=$((N_FAIL + 1))
                echo "not ok $((N_PASS + N_FAIL)) - $desc"
        fi
}

# sim_listening TAG PID: the simulator wrote its port file, or it is gone and never will.
sim_listening() {
        [ -s "$TMP/$1.port" ] && return 0
        kill -0 "$2" 2>/dev/null || return "$WAIT_NEVER"
        return 1
}

# Starts a simulator with the given arguments; sets PORT, BASE, LAST_PID. $1 is a tag.
start_sim() {
        local tag=$1
        shift
        rm -f "$TMP/$tag.port"
        # shellcheck disable=SC2086 # the wrapper is a command line
        ${AVATAR_SIM_WRAPPER:-} "$SIM" --listen 127.0.0.1 --port 0 --port-file "$TMP/$tag.port" "$@" \
                2>>"$TMP/$tag.stderr" &
        LAST_PID=$!
        PIDS+=("$LAST_PID")
        if wait_until 30 sim_listening "$tag" "$LAST_PID"; then
                PORT=$(cat "$TMP/$tag.port")
                BASE="http://127.0.0.1:$PORT"
                return 0
        fi
        echo "# avatar-sim ($tag) did not start:" >&2
        cat "$TMP/$tag.stderr" >&2 || true
        return 1
}

# One HTTP request: req METHOD URL [curl args]. Sets CODE ("000"-style status or
# "curl-error-N"), writes the body to $TMP/body and the headers to $TMP/hdr.
req() {
        local m=$1 u=$2
        shift 2
        local how=(-X "$m")
        [ "$m" = HEAD ] && how=(-I)
        : >"$TMP/body"
        : >"$TMP/hdr"
        CODE=$(curl -sS --max-time "$MAX_TIME" -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' \
                "${how[@]}" "$@" "$u" 2>"$TMP/curl.err") || CODE="curl-error-$?"
}

# An API request with the first user's key: api METHOD PATH [curl args].
api() {
        local m=$1 p=$2
        shift 2
        req "$m" "$BASE$p" -A "$UA" -H "Authorization: api-key-v1 $KEY1" "$@"
}

# A control request: ctl METHOD PATH [JSON body].
ctl() {
        if [ $# -ge 3 ]; then
                req "$1" "$BASE$2" -H 'Content-Type: application/json' --data-binary "$3"
        else
                req "$1" "$BASE$2"
        fi
}

# A signed storage request: s3 METHOD BUCKET/KEY[?QUERY] [curl args]. The payload hash header
# is $PAYLOAD when set, else UNSIGNED-PAYLOAD.
s3() {
        local m=$1 p=$2
        shift 2
        req "$m" "$BASE/storage/$p" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ID:$S3_SECRET" \
                -H "x-amz-content-sha256: ${PAYLOAD:-UNSIGNED-PAYLOAD}" "$@"
}

# Checks the last status and that the body holds every given string.
expect() {
        local st=$1 s
        shift
        if [ "$CODE" != "$st" ]; then
                echo "#   expected HTTP $st, got $CODE: $(head -c 400 "$TMP/body")"
                return 1
        fi
        for s in "$@"; do
                if ! grep -qF -- "$s" "$TMP/body"; then
                        echo "#   body lacks: $s"
                        echo "#   body: $(head -c 600 "$TMP/body")"
                        return 1
                fi
        done
}

# Checks that the body does not hold a string.
lacks() {
        if grep -qF -- "$1" "$TMP/body"; then
                echo "#   body unexpectedly holds: $1"
                return 1
        fi
}

# Checks that a response header (case-insensitive name) holds a value.
header_is() {
        if ! grep -qi "^$1: $2"$'\r'"\?$" "$TMP/hdr"; then
                echo "#   header $1 is not '$2':"
                sed 's/^/#     /' "$TMP/hdr"
                return 1
        fi
}

# Prints the first string value of a JSON key in the last body.
field() {
        { grep -o "\"$1\":\"[^\"]*\"" "$TMP/body" || true; } | head -n 1 | sed 's/^"[^"]*":"//; s/"$//'
}

# Counts occurrences of a string in the last body.
count_in_body() {
        { grep -oF -- "$1" "$TMP/body" || true; } | wc -l | tr -d ' '
}

# Prints the first numeric value of a JSON key in the last body.
number() {
        { grep -o "\"$1\":[0-9.]*" "$TMP/body" || true; } | head -n 1 | sed 's/^"[^"]*"://'
}

# Prints the text of the first <TAG> element of the last body.
xml_value() {
        { grep -o "<$1>[^<]*" "$TMP/body" || true; } | head -n 1 | sed 's/^<[^>]*>//'
}

# Prints the ETag header of the last answer.
etag_header() {
        { grep -i '^etag:' "$TMP/hdr" || true; } | head -n 1 | sed 's/^[^:]*: *//; s/\r$//'
}

# Compares two values: same DESC EXPECTED ACTUAL.
same() {
        if [ "$2" != "$3" ]; then
                echo "#   $1: expected '$2', got '$3'"
                return 1
        fi
}

# job_ended JOB: the job is in a terminal status; sets JOB_STATUS.
job_ended() {
        api GET "/api/jobs/$1"
        JOB_STATUS=$(field status)
        case $JOB_STATUS in
        finished | error | parent_error | lost | orphaned) return 0 ;;
        esac
        return 1
}

# Waits until a job is in a terminal status; sets JOB_STATUS.
wait_job() {
        wait_until 20 job_ended "$1" && return 0
        echo "#   job $1 still $JOB_STATUS"
        return 1
}

# token_expired TOKEN: the simulator answers the Bearer TOKEN with 401 (the answer is in
# CODE and $TMP/body).
token_expired() {
        req GET "$BASE/api/users/me" -H "Authorization: Bearer $1"
        [ "$CODE" = 401 ]
}

# last_logged_without_fault ROUTE: the last request logged (the simulator logs a request
# before its answer leaves) was ROUTE, and no fault applied to it.
last_logged_without_fault() {
        local line
        line=$(tail -n 1 "$REQLOG")
        if ! grep -qF "\"route\":\"$1\"" <<<"$line" || grep -qF '"fault"' <<<"$line"; then
                echo "#   last logged request: $line"
                return 1
        fi
}

# live_connections N: /_sim/stats counts N live connections (its own included).
live_connections() {
        ctl GET /_sim/stats
        grep -qE "\"connections\":$1[,}]" "$TMP/body"
}

# held_now N: /_sim/stats counts N requests held now.
held_now() {
        ctl GET /_sim/stats
        grep -qE "\"held\":$1[,}]" "$TMP/body"
}

# bg_get TAG PATH: GET PATH (first user's key) in the background; its status goes to
# $TMP/TAG.code and its body to $TMP/TAG.body. Sets BG_PID.
bg_get() {
        curl -sS --max-time "$MAX_TIME" -o "$TMP/$1.body" -w '%{http_code}' \
                -H "Authorization: api-key-v1 $KEY1" "$BASE$2" >"$TMP/$1.code" 2>/dev/null &
        BG_PID=$!
}

# logged ROUTE STATUS FAULT_ID: how many requests of ROUTE the log has with that status and
# held by that rule.
logged() {
        { grep -F "\"route\":\"$1\",\"status\":$2," "$REQLOG" || true; } |
                { grep -cF "\"fault\":\"#$3 hold\"" || true; }
}

# keep_alive_get FD: sends GET /api/health on the open connection FD and reads the whole
# answer, leaving the connection open (HTTP/1.1 keep-alive); prints the status code.
keep_alive_get() {
        local fd=$1 line status len=0
        printf 'GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&"$fd"
        IFS= read -r -t "$MAX_TIME" line <&"$fd" || return 0
        status=${line#* }
        status=${status%% *}
        while IFS= read -r -t "$MAX_TIME" line <&"$fd"; do
                line=${line%$'\r'}
                [ -n "$line" ] || break
                case ${line,,} in
                content-length:*) len=${line#*:} && len=${len// /} ;;
                esac
        done
        if [ "$len" -gt 0 ]; then
                IFS= read -r -t "$MAX_TIME" -N "$len" line <&"$fd" || true
        fi
        echo "$status"
}

# Creates a job: new_job SET PARAMETERS DEPENDS_ON_JSON; sets JOB and LOCATION.
new_job() {
        api POST /api/jobs -H 'Content-Type: application/json' \
                --data-binary "{\"set_name\":\"$1\",\"parameters_name\":\"$2\",\"depends_on\":$3}"
        JOB=$(field name)
        LOCATION=$(field Location)
        if [ "$CODE" = 201 ]; then
                SET_JOBS[$1]=$((${SET_JOBS[$1]:-0} + 1))
        fi
}

# Splits an /access envelope into the storage path "BUCKET/KEY".
envelope_path() {
        local inner=${1#*url=s3://}
        echo "$inner"
}

echo "# avatar-sim black-box test"
REQLOG="$TMP/requests.jsonl"
start_sim main --api-key "$KEY1" --api-key "$KEY2" --user alice:wonderland \
        --request-log "$REQLOG" --storage-dir "$TMP/storage" --job-step-ms 20
MAIN_PID=$LAST_PID

# ---------------------------------------------------------------- health and root
req GET "$BASE/api/health"
check "GET /api/health answers ok without auth" expect 200 '{"message":"ok"}'
check "JSON answers carry a Content-Type" header_is Content-Type application/json
req GET "$BASE/api/health/db"
check "GET /api/health/db" expect 200 '{"message":"ok"}'
req GET "$BASE/"
check "GET / names the simulator" expect 200 '{"message":"avatar-sim"}'
req GET "$BASE/api/no/such/thing"
check "unknown API path is 404" expect 404 '{"detail":"Not Found"}'
req PUT "$BASE/api/health"
check "wrong method is 405" expect 405 'Method Not Allowed'

# ---------------------------------------------------------------- authentication
req GET "$BASE/api/users/me"
check "missing auth is 401 Not authenticated" expect 401 '{"detail":"Not authenticated"}'
req GET "$BASE/api/users/me" -H "Authorization: api-key-v1 wrong-key"
check "wrong API key is 401" expect 401 '{"detail":"Not authenticated"}'
req GET "$BASE/api/jobs" -H "Authorization: Bearer nonsense"
check "unknown Bearer token is 401" expect 401 'Not authenticated'
api GET /api/users/me
check "users/me with the key" expect 200 '"organization_id":' '"role":"user"' '"dataset_expiration_days":30'
USER1=$(field id)
req GET "$BASE/api/users/me" -H "Authorization: api-key-v1 $KEY2"
USER2=$(field id)
check "each key is its own user" test -n "$USER1" -a -n "$USER2" -a "$USER1" != "$USER2"
api GET /api/users/credits_info
check "credits_info keeps the null credits key" expect 200 '"credits":null' '"is_credit_enabled":false'
api GET /api/users/features_info
check "features_info" expect 200 '"feature_scopes":[' '"single_table"' '"data_augmentation"'

# ---------------------------------------------------------------- compatibility
req GET "$BASE/api/check_client" -A "$UA"
check "check_client without auth: compatible" expect 200 \
        '{"message":"Client is up to date","most_recent_compatible_client":null,"status":"compatible"}'
api GET /api/check_client
check "check_client with auth" expect 200 '"status":"compatible"'
ctl POST /_sim/compat '{"status":"incompatible","message":"Upgrade now","most_recent_compatible_client":"1.29.0"}'
check "control: compat set" expect 200
api GET /api/check_client
check "check_client incompatible" expect 200 '"message":"Upgrade now"' \
        '"most_recent_compatible_client":"1.29.0"' '"status":"incompatible"'
ctl POST /_sim/compat '{"status":"unknown"}'
api GET /api/check_client
check "check_client unknown" expect 200 '"status":"unknown"'
ctl POST /_sim/compat '{"status":"sideways"}'
check "control: bad compat status is 422" expect 422
ctl POST /_sim/reset
api GET /api/check_client -A 'avatard/0.1.0'
check "reset restores compatible" expect 200 '"status":"compatible"'
ctl GET /_sim/stats
check "stats record the last check_client User-Agent" expect 200 \
        '"last_check_client_user_agent":"avatard/0.1.0"'

# ---------------------------------------------------------------- API keys
api GET /api/api-keys
check "api-keys lists the command-line key" expect 200 '"name":"avatar-sim command line"'
LISTED=$(count_in_body '"id":')
api POST /api/api-keys -H 'Content-Type: application/json' --data-binary '{"name":"ci","expiration_days":7}'
check "expiration_days outside the enum is 422" expect 422 '"expiration_days"'
api POST /api/api-keys -H 'Content-Type: application/json' --data-binary '{"name":"","expiration_days":30}'
check "empty key name is 422" expect 422 'string_too_short'
api POST /api/api-keys -H 'Content-Type: application/json' --data-binary '{"expiration_days":30}'
check "missing key name is 422" expect 422 '"loc":["body","name"]' '"type":"missing"'
api POST /api/api-keys -H 'Content-Type: application/json' --data-binary '{"name":"ci","expiration_days":365}'
check "create an API key" expect 200 '"api_key":{' '"plaintext":"' '"revoked_at":null' '"message":'
NEWKEY=$(field plaintext)
NEWKEY_ID=$(field id)
req GET "$BASE/api/users/me" -H "Authorization: api-key-v1 $NEWKEY"
check "the new key works at once, as the same user" expect 200 "\"id\":\"$USER1\""
api GET /api/api-keys
check "api-keys lists one more key" same "listed keys" $((LISTED + 1)) "$(count_in_body '"id":')"
check "listing never shows plaintext" lacks '"plaintext"'
api GET "/api/api-keys/$NEWKEY_ID"
check "get one API key" expect 200 "\"id\":\"$NEWKEY_ID\"" '"last_used_at":"'
req GET "$BASE/api/api-keys/$NEWKEY_ID" -H "Authorization: api-key-v1 $KEY2"
check "another user cannot see the key" expect 404
api DELETE "/api/api-keys/$NEWKEY_ID"
check "revoke the key" expect 200 '"revoked_at":"'
req GET "$BASE/api/users/me" -H "Authorization: api-key-v1 $NEWKEY"
check "a revoked key stops working" expect 401 'Not authenticated'
api POST /api/api-keys -H 'Content-Type: application/json' --data-binary '{"name":"tmp","expiration_days":30}'
TMPKEY=$(field plaintext)
req DELETE "$BASE/api/api-keys" -H "Authorization: api-key-v1 $KEY2"
check "revoke all keys of the second user" expect 200 '"revoked_count":1'
req GET "$BASE/api/users/me" -H "Authorization: api-key-v1 $KEY2"
check "the second user's key is gone" expect 401
req GET "$BASE/api/users/me" -H "Authorization: api-key-v1 $TMPKEY"
check "the first user's keys are untouched" expect 200

# ---------------------------------------------------------------- legacy login
req POST "$BASE/api/login" --data-urlencode 'username=alice' --data-urlencode 'password=wrong'
check "login with a wrong password is 401" expect 401 'Incorrect username or password'
req POST "$BASE/api/login" --data-urlencode 'username=alice'
check "login without a password is 422" expect 422 '"password"'
req POST "$BASE/api/login" --data-urlencode 'username=alice' --data-urlencode 'password=wonderland' \
        --data-urlencode 'grant_type=password' --data-urlencode 'scope='
check "login returns bearer tokens" expect 200 '"access_token":"' '"refresh_token":"' '"token_type":"bearer"'
AT=$(field access_token)
RT=$(field refresh_token)
req GET "$BASE/api/users/me" -H "Authorization: Bearer $AT"
check "the access token authenticates" expect 200 '"email":"alice@avatar-sim.local"'
ctl POST /_sim/expire-tokens
check "control: expire tokens" expect 200 '"expired":1'
req GET "$BASE/api/users/me" -H "Authorization: Bearer $AT"
check "an expired token is 401 Credentials expired" expect 401 '{"detail":{"message":"Credentials expired"}}'
req POST "$BASE/api/refresh?token=$RT"
check "POST /refresh gives new tokens" expect 200 '"access_token":"'
AT2=$(field access_token)
RT2=$(field refresh_token)
req GET "$BASE/api/users/me" -H "Authorization: Bearer $AT2"
check "the refreshed token works" expect 200
req POST "$BASE/api/refresh?token=$RT"
check "a used refresh token is refused" expect 401
req GET "$BASE/api/refresh?token=$RT2"
check "GET /refresh (old clients) works too" expect 200 '"access_token":"'
# A token with a lifetime works within it (a lifetime no check can outlast), and one with a
# short lifetime expires by itself: not before its lifetime passed, checked by the clock.
ctl POST /_sim/tokens '{"access_ttl_ms":600000}'
req POST "$BASE/api/login" -d 'username=alice&password=wonderland'
AT3=$(field access_token)
req GET "$BASE/api/users/me" -H "Authorization: Bearer $AT3"
check "a token with a lifetime works at first" expect 200
ctl POST /_sim/tokens '{"access_ttl_ms":800}'
T0=$(test_now_ms)
req POST "$BASE/api/login" -d 'username=alice&password=wonderland'
AT4=$(field access_token)
wait_until 30 token_expired "$AT4" || true
T1=$(test_now_ms)
check "a short-lived token expires by itself" expect 401 'Credentials expired'
check "a short-lived token lasts its lifetime" test $((T1 - T0)) -ge $((800 - TEST_TIMER_SLACK_MS))
ctl POST /_sim/tokens '{"access_ttl_ms":0}'
req POST "$BASE/api/login/forgotten_password" -H 'Content-Type: application/json' \
        --data-binary '{"email":"alice@avatar-sim.local"}'
check "forgotten_password" expect 200 '"message":'
req POST "$BASE/api/login/reset_password" -H 'Content-Type: application/json' \
        --data-binary '{"email":"alice@avatar-sim.local","new_password":"a","new_password_repeated":"a","token":"not-a-uuid"}'
check "reset_password needs a UUID token" expect 422 'uuid_parsing'
req POST "$BASE/api/login/reset_password" -H 'Content-Type: application/json' \
        --data-binary '{"email":"alice@avatar-sim.local","new_password":"a","new_password_repeated":"b","token":"8b3b5a2e-1f6c-4d0a-9e8f-3c2b1a0d9e8f"}'
check "reset_password needs matching passwords" expect 422 'Passwords do not match'
req POST "$BASE/api/login/reset_password" -H 'Content-Type: application/json' \
        --data-binary '{"email":"alice@avatar-sim.local","new_password":"looking-glass","new_password_repeated":"looking-glass","token":"8b3b5a2e-1f6c-4d0a-9e8f-3c2b1a0d9e8f"}'
check "reset_password" expect 200
req POST "$BASE/api/login" -d 'username=alice&password=looking-glass'
check "login with the new password" expect 200 '"access_token":"'

# ---------------------------------------------------------------- upload and storage
api GET /api/upload_url
check "upload_url is a JSON string s3://<user>/30d" expect 200 "\"s3://$USER1/30d\""
ENVELOPE="$BASE/api/access?url=s3://$USER1/30d/iris.csv"
api GET /api/access -G --data-urlencode "url=$ENVELOPE"
check "access echoes the envelope and gives credentials" expect 200 "{\"url\":\"$ENVELOPE\"" \
        '"access_key_id":"' '"secret_access_key":"'
S3_ID=$(field access_key_id)
S3_SECRET=$(field secret_access_key)
api GET /api/access -G --data-urlencode "url=s3://$USER2/30d/x.csv"
check "access to another user's bucket is 403" expect 403
api GET /api/access -G --data-urlencode "url=https://example.com/x"
check "access to a non-storage url is 422" expect 422

{
        echo 'sepal_length,sepal_width,petal_length,petal_width,variety'
        for i in $(seq 1 150); do
                case $((i % 3)) in
                0) v='Setosa' ;;
                1) v='"Versi,color"' ;;
                *) v='Virginica' ;;
                esac
                echo "$((4 + i % 4)).$((i % 10)),$((2 + i % 2)).$((i % 7)),1.$((i % 9)),0.$((i % 5)),$v"
        done
} >"$TMP/iris.csv"
IRIS_HASH=$(sha256sum "$TMP/iris.csv" | cut -d ' ' -f 1)
PAYLOAD=$IRIS_HASH s3 PUT "$USER1/30d/iris.csv" --data-binary "@$TMP/iris.csv"
check "PutObject signed with the hashed payload" expect 200
check "PutObject answers an ETag" header_is ETag '"[0-9a-f]\{32\}"'
s3 HEAD "$USER1/30d/iris.csv"
check "HeadObject" expect 200
check "HeadObject Content-Length" header_is Content-Length "$(wc -c <"$TMP/iris.csv" | tr -d ' ')"
s3 GET "$USER1/30d/iris.csv"
check "GetObject returns the bytes" cmp -s "$TMP/body" "$TMP/iris.csv"
s3 GET "$USER1/30d/iris.csv" -H 'Range: bytes=0-11'
check "ranged GetObject is 206" expect 206 'sepal_length'
check "ranged GetObject has 12 bytes" same "range length" 12 "$(wc -c <"$TMP/body" | tr -d ' ')"
check "ranged GetObject Content-Range" header_is Content-Range "bytes 0-11/$(wc -c <"$TMP/iris.csv" | tr -d ' ')"
s3 GET "$USER1/30d/iris.csv" -H 'Range: bytes=999999-'
check "unsatisfiable range is 416" expect 416 '<Code>InvalidRange</Code>'
s3 PUT "$USER1/30d/other.txt" --data-binary 'hello'
s3 GET "$USER1?list-type=2&max-keys=1&prefix=30d%2F"
check "ListObjectsV2 max-keys=1 is truncated" expect 200 '<Key>30d/iris.csv</Key>' \
        '<IsTruncated>true</IsTruncated>' '<NextContinuationToken>'
TOKEN=$(xml_value NextContinuationToken)
s3 GET "$USER1?continuation-token=$TOKEN&list-type=2&max-keys=1&prefix=30d%2F"
check "ListObjectsV2 continues" expect 200 '<Key>30d/other.txt</Key>' '<IsTruncated>false</IsTruncated>'
s3 GET "$USER1?delimiter=%2F&list-type=2"
check "ListObjectsV2 with a delimiter groups prefixes" expect 200 \
        '<CommonPrefixes><Prefix>30d/</Prefix></CommonPrefixes>' '<KeyCount>1</KeyCount>'
s3 HEAD "$USER1"
check "HeadBucket on the own bucket" expect 200
s3 PUT "$USER1"
check "CreateBucket on the own bucket" expect 200
s3 GET "$USER2?list-type=2"
check "another user's bucket is AccessDenied" expect 403 '<Code>AccessDenied</Code>'
PAYLOAD=$IRIS_HASH s3 PUT "$USER1/30d/sum.txt" --data-binary 'hello'
check "a wrong payload hash is XAmzContentSHA256Mismatch" expect 400 '<Code>XAmzContentSHA256Mismatch</Code>'
req GET "$BASE/storage/$USER1/30d/iris.csv" --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user "$S3_ID:not-the-secret" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD"
check "a bad signature is 403 SignatureDoesNotMatch" expect 403 '<Code>SignatureDoesNotMatch</Code>' \
        '<CanonicalRequest>'
check "the error never shows the secret" lacks "$S3_SECRET"
req GET "$BASE/storage/$USER1/30d/iris.csv" --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user "NOSUCHKEY:secret" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD"
check "an unknown key id is 403 InvalidAccessKeyId" expect 403 '<Code>InvalidAccessKeyId</Code>'
req GET "$BASE/storage/$USER1/30d/iris.csv"
check "an unsigned request is 403 AccessDenied" expect 403 '<Code>AccessDenied</Code>'
req GET "$BASE/storage/$USER1/30d/iris.csv" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ID:$S3_SECRET"
check "a request without x-amz-content-sha256 is refused" expect 400 'x-amz-content-sha256'
req GET "$BASE/storage/$USER1/30d/iris.csv" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ID:$S3_SECRET" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "x-amz-date: 20200101T000000Z"
check "a stale x-amz-date is refused" expect 403 'RequestTimeTooSkewed'
s3 GET "$USER1?list-type=2&prefix=30d/"
check "a non-canonical query (unencoded /) does not verify" expect 403 'SignatureDoesNotMatch'
s3 DELETE "$USER1/30d/other.txt"
check "DeleteObject is 204" expect 204
s3 GET "$USER1/30d/other.txt"
check "a deleted object is NoSuchKey" expect 404 '<Code>NoSuchKey</Code>'
s3 PUT "$USER1/30d/a/../b" --data-binary 'x' --path-as-is
check "dot segments in keys are refused" expect 400 'InvalidArgument'

# multipart: CreateMultipartUpload, UploadPart x2, CompleteMultipartUpload
head -c 5242880 /dev/urandom >"$TMP/part1"
head -c 1000 /dev/urandom >"$TMP/part2"
cat "$TMP/part1" "$TMP/part2" >"$TMP/whole"
s3 POST "$USER1/30d/big.bin?uploads="
check "CreateMultipartUpload" expect 200 '<UploadId>'
UPLOAD=$(xml_value UploadId)
s3 PUT "$USER1/30d/big.bin?partNumber=1&uploadId=$UPLOAD" --data-binary "@$TMP/part1"
check "UploadPart 1" expect 200
ETAG1=$(etag_header)
s3 PUT "$USER1/30d/big.bin?partNumber=2&uploadId=$UPLOAD" --data-binary "@$TMP/part2"
check "UploadPart 2" expect 200
ETAG2=$(etag_header)
check "parts have ETags" test -n "$ETAG1" -a -n "$ETAG2"
s3 POST "$USER1/30d/big.bin?uploadId=$UPLOAD" --data-binary \
        "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>$ETAG2</ETag></Part><Part><PartNumber>1</PartNumber><ETag>$ETAG1</ETag></Part></CompleteMultipartUpload>"
check "parts out of order are InvalidPartOrder" expect 400 '<Code>InvalidPartOrder</Code>'
s3 POST "$USER1/30d/big.bin?uploadId=$UPLOAD" --data-binary \
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"0000\"</ETag></Part></CompleteMultipartUpload>"
check "a wrong part ETag is InvalidPart" expect 400 '<Code>InvalidPart</Code>'
s3 POST "$USER1/30d/big.bin?uploadId=$UPLOAD" --data-binary \
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$ETAG1</ETag></Part><Part><PartNumber>2</PartNumber><ETag>$ETAG2</ETag></Part></CompleteMultipartUpload>"
check "CompleteMultipartUpload" expect 200 '<CompleteMultipartUploadResult' '-2&quot;</ETag>'
s3 GET "$USER1/30d/big.bin"
check "the assembled object is the parts in order" cmp -s "$TMP/body" "$TMP/whole"
s3 PUT "$USER1/30d/big.bin?partNumber=3&uploadId=$UPLOAD" --data-binary 'late'
check "a completed upload takes no more parts" expect 404 '<Code>NoSuchUpload</Code>'
s3 POST "$USER1/30d/small.bin?uploads="
UPLOAD2=$(xml_value UploadId)
s3 PUT "$USER1/30d/small.bin?partNumber=1&uploadId=$UPLOAD2" --data-binary 'tiny'
P1=$(etag_header)
s3 PUT "$USER1/30d/small.bin?partNumber=2&uploadId=$UPLOAD2" --data-binary 'tiny'
P2=$(etag_header)
s3 POST "$USER1/30d/small.bin?uploadId=$UPLOAD2" --data-binary \
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$P1</ETag></Part><Part><PartNumber>2</PartNumber><ETag>$P2</ETag></Part></CompleteMultipartUpload>"
check "a part under the minimum size is EntityTooSmall" expect 400 '<Code>EntityTooSmall</Code>'
ctl GET /_sim/uploads
check "/_sim/uploads lists the upload in progress with its parts" expect 200 \
        "{\"id\":\"$UPLOAD2\",\"bucket\":\"$USER1\",\"key\":\"30d/small.bin\",\"parts\":2}"
check "/_sim/uploads does not list a completed upload" lacks "\"$UPLOAD\""
s3 GET "$USER1?prefix=30d&uploads="
check "ListMultipartUploads lists the upload in progress under the prefix" expect 200 \
        '<ListMultipartUploadsResult' "<Key>30d/small.bin</Key><UploadId>$UPLOAD2</UploadId><Initiated>"
check "ListMultipartUploads does not list a completed upload" lacks "$UPLOAD<"
s3 GET "$USER1?prefix=zzz&uploads="
check "ListMultipartUploads: another prefix lists nothing" expect 200 '<ListMultipartUploadsResult'
check "ListMultipartUploads: no upload under another prefix" lacks '<Upload>'
s3 DELETE "$USER1/30d/small.bin?uploadId=$UPLOAD2"
check "AbortMultipartUpload" expect 204
ctl GET /_sim/uploads
check "an aborted upload leaves /_sim/uploads" expect 200 '{"uploads":[]}'
s3 GET "$USER1?uploads="
check "ListMultipartUploads answers after an abort" expect 200 '<IsTruncated>false</IsTruncated>'
check "ListMultipartUploads: an aborted upload is not listed" lacks "$UPLOAD2"
s3 PUT "$USER1/30d/small.bin?partNumber=3&uploadId=$UPLOAD2" --data-binary 'x'
check "an aborted upload is gone" expect 404 'NoSuchUpload'

# ---------------------------------------------------------------- resources
cat >"$TMP/iris.yaml" <<'YAML'
kind: AvatarMetadata
metadata:
  name: avatar-metadata-iris_k5
spec:
  display_name: iris_k5
  pia_metadata:
    datarecipient: unknown
    data_type: unknown
    datasubject: unknown
    sensitivity_level: Undefined
annotations:
  client_type: python
  client_version: 1.29.0

---
kind: AvatarSchema
metadata:
  name: schema
spec:
  tables:
  - name: iris
    data:
      volume: input
      file: iris.csv

---
kind: AvatarSchema
metadata:
  name: schema_avatarized
spec:
  tables:
  - name: iris
    avatars_data:
      auto: true
  schema_ref: schema

---
kind: AvatarParameters
metadata:
  name: standard
spec:
  schema: schema
  avatarization:
    iris:
      k: 5
  results:
    volume: results
    path: standard

---
kind: AvatarPrivacyMetricsParameters
metadata:
  name: privacy_metrics
spec:
  schema: schema_avatarized
  avatarization_ref: standard
  results:
    volume: results
    path: privacy_metrics

---
kind: AvatarSignalMetricsParameters
metadata:
  name: signal_metrics
spec:
  schema: schema_avatarized
  avatarization_ref: standard
  results:
    volume: results
    path: signal_metrics

---
kind: AvatarReportParameters
metadata:
  name: report
spec:
  report_type: basic
  output_format: pdf
  language: en
  results:
    volume: results
    path: report

---
kind: AvatarReportParameters
metadata:
  name: report_pia
spec:
  report_type: pia
  output_format: docx
  language: en
  results:
    volume: results
    path: report_pia
YAML
api PUT /api/resources/iris_k5 -H 'Content-Type: application/yaml' --data-binary "@$TMP/iris.yaml"
check "PUT /resources stores a set" expect 200 '"set_name":"' '"display_name":"iris_k5"'
SET=$(field set_name)
api GET "/api/resources/$SET"
check "GET /resources answers YAML" header_is Content-Type application/yaml
check "GET /resources returns the YAML verbatim" cmp -s "$TMP/body" "$TMP/iris.yaml"
api PUT /api/resources/iris_k5 -H 'Content-Type: application/yaml' --data-binary "@$TMP/iris.yaml"
check "every PUT makes a new set" test "$(field set_name)" != "$SET"
api PUT /api/resources/broken -H 'Content-Type: application/yaml' --data-binary $'kind: [unclosed\n'
check "invalid YAML is 422" expect 422 'Invalid YAML'
api GET /api/resources/6f1c1c1c-0000-4000-8000-000000000000
check "an unknown set is 404" expect 404
req GET "$BASE/api/resources/$SET" -H "Authorization: api-key-v1 $TMPKEY"
check "the owner's other key sees the set" expect 200
api GET /api/resources/not-a-uuid
check "a set name that is no UUID is 422" expect 422

# ---------------------------------------------------------------- jobs: the default run
new_job 6f1c1c1c-0000-4000-8000-000000000000 standard '[]'
check "a job of an unknown set is 404" expect 404
new_job "$SET" nonexistent '[]'
check "an unknown parameters_name is 422" expect 422 'nonexistent'
new_job "$SET" standard '["/jobs/no-such-job"]'
check "an unknown dependency is 422" expect 422 'depends_on'
api POST /api/jobs -H 'Content-Type: application/json' --data-binary '{"set_name":"'"$SET"'"'
check "invalid JSON is a FastAPI 422" expect 422 '"type":"json_invalid"'
# the clock stands still while the chain is created, so the first checks see fresh jobs
ctl POST /_sim/clock '{"job_step_ms":0}'
new_job "$SET" standard '[]'
check "POST /jobs is 201 with name and Location" expect 201 '"name":"' '"Location":"/jobs/'
check "POST /jobs has a Location header" header_is Location "/jobs/$JOB"
STD=$JOB
STD_LOC=$LOCATION
new_job "$SET" signal_metrics "[\"$STD_LOC\"]"
SIG=$JOB
SIG_LOC=$LOCATION
new_job "$SET" privacy_metrics "[\"$BASE/api/jobs/$STD\"]"
check "depends_on takes absolute URLs" expect 201
PRIV=$JOB
PRIV_LOC=$LOCATION
new_job "$SET" report "[\"$PRIV_LOC\",\"$SIG_LOC\"]"
REP=$JOB
new_job "$SET" report_pia "[\"$PRIV\",\"$SIG\"]"
check "depends_on takes bare names" expect 201
PIA=$JOB
api GET "/api/results/$STD"
check "results of an unfinished job are 404 Results file for job" expect 404 \
        "Results file for job $STD"
api GET "/api/jobs/$REP"
check "a new job has every JobResponse key" expect 200 "\"name\":\"$REP\"" "\"set_name\":\"$SET\"" \
        '"parameters_name":"report"' '"display_name":"iris_k5"' '"created_at":"' '"kind":"report"' \
        '"exception":""' '"done":false' '"progress":null' '"deleted_at":null'
check "created_at is timezone-aware ISO-8601" grep -qE '"created_at":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6}\+00:00"' "$TMP/body"
ctl POST /_sim/clock '{"job_step_ms":20}'
for j in "$STD" "$SIG" "$PRIV" "$REP" "$PIA"; do
        wait_job "$j" || true
done
api GET "/api/jobs/$PIA"
check "the whole chain finishes" expect 200 '"status":"finished"' '"done":true' '"progress":1.0'
api GET "/api/jobs/$STD"
check "standard is finished" expect 200 '"status":"finished"' '"kind":"standard"'
api GET "/api/results/$STD"
check "standard results have the contract's keys" expect 200 '"shuffled":[' '"unshuffled":[' \
        '"original_projections":[' '"avatar_projections":[' '"figures":[' '"figures_metadata":[' \
        '"run_metadata":['
check "result URLs are /access envelopes with url last" expect 200 \
        "\"$BASE/api/access?url=s3://$USER1/results/$SET/$STD/iris.shuffled-0.csv\"" \
        "iris.unshuffled-0.csv" "iris.projections.original-0.csv" "iris.projections.avatars-0.csv" \
        "figures_metadata.json" "run_metadata.avatarize.json"
SHUFFLED_URL="$BASE/api/access?url=s3://$USER1/results/$SET/$STD/iris.shuffled-0.csv"
FIGMETA_URL="$BASE/api/access?url=s3://$USER1/results/$SET/$STD/figures_metadata.json"
api POST /api/access/batch -H 'Content-Type: application/json' \
        --data-binary "[\"$SHUFFLED_URL\",\"$BASE/api/access?url=s3://$USER2/x.csv\",\"$FIGMETA_URL\"]"
check "access/batch echoes the URLs it grants" expect 200 "{\"url\":\"$SHUFFLED_URL\"" "{\"url\":\"$FIGMETA_URL\""
check "access/batch leaves out the URLs it refuses" same "granted entries" 2 "$(count_in_body '"credentials":')"
api POST /api/access/batch -H 'Content-Type: application/json' --data-binary '{"urls":[]}'
check "access/batch wants an array" expect 422
s3 GET "$(envelope_path "$SHUFFLED_URL")"
cp "$TMP/body" "$TMP/shuffled.csv"
check "shuffled CSV has the input header" same "header" "$(head -n 1 "$TMP/iris.csv")" "$(head -n 1 "$TMP/shuffled.csv")"
check "shuffled CSV has as many rows as the input" same "lines" "$(wc -l <"$TMP/iris.csv")" "$(wc -l <"$TMP/shuffled.csv")"
check "shuffled rows are the input rows, permuted" same "sorted rows" \
        "$(tail -n +2 "$TMP/iris.csv" | sort | sha256sum)" "$(tail -n +2 "$TMP/shuffled.csv" | sort | sha256sum)"
s3 GET "$USER1/results/$SET/$STD/iris.unshuffled-0.csv"
check "unshuffled CSV keeps the input order" cmp -s "$TMP/body" "$TMP/iris.csv"
s3 GET "$USER1/results/$SET/$STD/iris.projections.avatars-0.csv"
check "projections have one row per input row" same "projection lines" "$(wc -l <"$TMP/iris.csv")" "$(wc -l <"$TMP/body" | tr -d ' ')"
s3 GET "$(envelope_path "$FIGMETA_URL")"
check "figures_metadata lists kind, filename, table_name" expect 200 '"kind":' '"filename":"iris.2d_projection.html"' '"table_name":"iris"'

api GET "/api/results/$PRIV"
check "privacy_metrics results" expect 200 '"privacy_metrics":[' 'iris.privacy.json' \
        'run_metadata.privacy-metrics.json'
s3 GET "$USER1/results/$SET/$PRIV/iris.privacy.json"
check "privacy metrics carry metadata.table_name" expect 200 '"table_name":"iris"' \
        '"computation_type":"standalone"' '"reference":' '"targets":'
api GET "/api/results/$SIG"
check "signal_metrics results" expect 200 '"signal_metrics":[' 'iris.signal.json' 'run_metadata.signal-metrics.json'
api GET "/api/results/$REP"
check "report results" expect 200 '"report":[' '/report.pdf"'
s3 GET "$USER1/results/$SET/$REP/report.pdf"
cp "$TMP/body" "$TMP/report.pdf"
check "the report is a PDF naming the run" grep -q 'Avatar report: iris_k5' "$TMP/report.pdf"
check "the report starts as a PDF 1.4" same "pdf magic" '%PDF-1.4' "$(head -c 8 "$TMP/report.pdf")"
XREF=$(tail -n 2 "$TMP/report.pdf" | head -n 1)
check "startxref points at the xref table" same "xref" xref "$(tail -c +$((XREF + 1)) "$TMP/report.pdf" | head -c 4)"
api GET "/api/results/$PIA"
check "report_pia results" expect 200 '"report":[' 'iris.report.pia.docx'
s3 GET "$USER1/results/$SET/$PIA/iris.report.pia.docx"
check "the PIA report is a ZIP" same "zip magic" "PK" "$(head -c 2 "$TMP/body")"

ctl POST /_sim/cleanup-results "{\"job\":\"$STD\"}"
check "control: clean up results" expect 200
api GET "/api/results/$STD"
check "cleaned-up results are 404 Results file for job" expect 404 "Results file for job $STD not found"
s3 GET "$(envelope_path "$SHUFFLED_URL")"
check "cleaned-up result files are gone" expect 404 NoSuchKey
api GET /api/results/no-such-job
check "results of an unknown job are 404" expect 404 'not found'

# ---------------------------------------------------------------- job clock, step by step
ctl POST /_sim/clock '{"job_step_ms":0}'
check "control: manual clock" expect 200
new_job "$SET" standard '[]'
MAN=$JOB
new_job "$SET" signal_metrics "[\"/jobs/$MAN\"]"
MAN_DEP=$JOB
api GET "/api/jobs/$MAN"
check "a new job is queued" expect 200 '"status":"queued"' '"progress":null'
STATES=""
DEP_STATES=""
for i in $(seq 1 7); do
        ctl POST /_sim/tick
        api GET "/api/jobs/$MAN"
        STATES="$STATES $(field status)/$(grep -o '"progress":[^,}]*' "$TMP/body" | sed 's/.*://')"
        api GET "/api/jobs/$MAN_DEP"
        DEP_STATES="$DEP_STATES $(field status)"
done
check "the lifecycle is queued, created, pending 0..1, finished" same "states" \
        " created/null pending/0.0 pending/0.25 pending/0.5 pending/0.75 finished/1.0 finished/1.0" "$STATES"
check "a dependent job waits in created until its parent finished" same "states" \
        " created created created created created pending pending" "$DEP_STATES"
ctl POST /_sim/clock '{"job_step_ms":20}'

# ---------------------------------------------------------------- failures
ctl POST /_sim/job-failure '{"parameters_name":"standard","status":"error","exception":"Boom: k too large"}'
check "control: plan a job failure" expect 200
new_job "$SET" standard '[]'
BAD=$JOB
new_job "$SET" privacy_metrics "[\"/jobs/$BAD\"]"
BAD_CHILD=$JOB
wait_job "$BAD" || true
api GET "/api/jobs/$BAD"
check "the planned failure ends in error with its exception" expect 200 '"status":"error"' \
        '"exception":"Boom: k too large"' '"done":true'
wait_job "$BAD_CHILD" || true
api GET "/api/jobs/$BAD_CHILD"
check "its dependent ends in parent_error" expect 200 '"status":"parent_error"' 'Boom: k too large'
api GET "/api/results/$BAD"
check "a failed job has no results" expect 404 'Results file for job'
new_job "$SET" standard '[]'
wait_job "$JOB" || true
check "a planned failure hits one job only" same "status" finished "$JOB_STATUS"
ctl POST /_sim/job-failure '{"parameters_name":"standard","status":"lost","exception":"worker gone"}'
new_job "$SET" standard '[]'
wait_job "$JOB" || true
api GET "/api/jobs/$JOB"
check "a job can end lost" expect 200 '"status":"lost"' '"exception":"worker gone"'
ctl POST /_sim/job-failure '{"parameters_name":"signal_metrics","status":"orphaned"}'
new_job "$SET" signal_metrics '[]'
wait_job "$JOB" || true
check "a job can end orphaned" same "status" orphaned "$JOB_STATUS"
ctl POST /_sim/job-failure '{"parameters_name":"standard","status":"finished"}'
check "a planned failure must be a failure status" expect 422
sed 's/file: iris.csv/file: missing.csv/' "$TMP/iris.yaml" >"$TMP/missing.yaml"
api PUT /api/resources/missing -H 'Content-Type: application/yaml' --data-binary "@$TMP/missing.yaml"
MISSING_SET=$(field set_name)
new_job "$MISSING_SET" standard '[]'
wait_job "$JOB" || true
api GET "/api/jobs/$JOB"
check "a missing input file ends the job in error" expect 200 '"status":"error"' \
        '"exception":"Input file missing.csv not found"'

# advice
cat >"$TMP/advice.yaml" <<'YAML'
kind: AvatarSchema
metadata:
  name: schema
spec:
  tables:
  - name: iris
    data:
      volume: input
      file: iris.csv
---
kind: AvatarAdviceParameters
metadata:
  name: advice_parameters
spec:
  schema: schema
  advice:
    iris:
      advisor_type:
      - parameters
  results:
    volume: results
    path: advice
YAML
api PUT /api/resources/iris_advice -H 'Content-Type: application/yaml' --data-binary "@$TMP/advice.yaml"
ADV_SET=$(field set_name)
new_job "$ADV_SET" advice_parameters '[]'
ADV=$JOB
wait_job "$ADV" || true
api GET "/api/jobs/$ADV"
check "advice jobs have kind advice" expect 200 '"kind":"advice"' '"status":"finished"'
api GET "/api/results/$ADV"
check "advice results" expect 200 '"advice":[' 'iris.advice.json'
s3 GET "$USER1/results/$ADV_SET/$ADV/iris.advice.json"
check "advice JSON has the advice fields" expect 200 '"table_name":"iris"' '"k":' '"ncp":' \
        '"use_categorical_reduction":' '"imputation":{' '"summary":{'
tr -d ' \n' <"$TMP/body" >"$TMP/advice.compact" && mv "$TMP/advice.compact" "$TMP/body"
check "current generation: advice parameters are flat" expect 200 '"advice":{"k":'
check "current generation: no nested advice parameters" lacks '"parameters":'

# ---------------------------------------------------------------- job listing and deletion
api GET "/api/jobs?kind=report"
check "kind filter" expect 200 '"kind":"report"'
check "kind filter excludes other kinds" lacks '"kind":"standard"'
api GET "/api/jobs?kind=report&kind=advice"
check "repeated kind filter" expect 200 '"kind":"report"' '"kind":"advice"'
check "repeated kind filter excludes others" lacks '"kind":"signal_metrics"'
api GET "/api/jobs?kind=nonsense"
check "an unknown kind is 422" expect 422
api GET "/api/jobs?display_name=iris_k5&set_name=$SET"
check "display_name with set_name is 422" expect 422 'mutually exclusive'
api GET "/api/jobs?set_name=$SET"
check "set_name filter" same "jobs of the set" "${SET_JOBS[$SET]}" "$(count_in_body "\"set_name\":\"$SET\"")"
api GET "/api/jobs?display_name=iris_advice"
check "display_name filter" same "advice jobs" 1 "$(count_in_body '"name":"')"
api GET "/api/jobs?limit=1"
check "newest job first, limit applied" same "newest" "$ADV" "$(field name)"
check "limit=1 gives one job" same "jobs" 1 "$(count_in_body '"name":"')"
api GET "/api/jobs?limit=x"
check "a bad limit is 422" expect 422
api GET /api/jobs/last_set
check "last_set lists the jobs of the newest set" same "last set" "$ADV" "$(field name)"
req GET "$BASE/api/jobs" -H "Authorization: api-key-v1 $TMPKEY"
ALL=$(count_in_body '"name":"')
req GET "$BASE/api/jobs/$STD" -A "$UA" -H "Authorization: Bearer $AT2"
check "jobs are private to their owner" expect 404
api DELETE "/api/jobs/$MAN"
check "DELETE /jobs soft-deletes" expect 200 '"deleted_at":"2'
api GET "/api/jobs/$MAN"
check "a deleted job is still readable" expect 200 '"deleted_at":"2'
api GET /api/jobs
check "deleted jobs are hidden by default" same "listed" $((ALL - 1)) "$(count_in_body '"name":"')"
api GET "/api/jobs?include_deleted=true"
check "include_deleted=true shows them" same "listed" "$ALL" "$(count_in_body '"name":"')"
NAMES=$(for i in $(seq 1 101); do printf '"n%d",' "$i"; done)
api POST /api/jobs/bulk-delete -H 'Content-Type: application/json' --data-binary "{\"job_names\":[${NAMES%,}]}"
check "bulk-delete of more than 100 names is 422" expect 422 'too_long'
api POST /api/jobs/bulk-delete -H 'Content-Type: application/json' \
        --data-binary "{\"job_names\":[\"$MAN_DEP\",\"no-such-job\"]}"
check "bulk-delete reports deleted and failed jobs" expect 200 "\"deleted_jobs\":[{\"name\":\"$MAN_DEP\"" \
        '"failed_jobs":["no-such-job"]'

# ---------------------------------------------------------------- faults
ctl POST /_sim/fault '{"path":"/api/health","status":502,"count":1}'
check "control: add a status fault" expect 201 '"id":' '"status":502'
req GET "$BASE/api/health"
check "status fault answers 502" expect 502 'injected fault'
req GET "$BASE/api/health"
check "the fault was for one request only" expect 200
ctl POST /_sim/fault '{"route":"GET /api/jobs/{name}","status":401,"count":1}'
api GET /api/jobs
check "a route fault leaves other routes alone" expect 200
api GET "/api/jobs/$STD"
check "a 401 fault answers Not authenticated" expect 401 '{"detail":"Not authenticated"}'
ctl POST /_sim/fault '{"path":"/api/health","retry_after_s":1,"count":2}'
req GET "$BASE/api/health"
check "429 with a retry_after body" expect 429 '"retry_after":1'
check "429 with a Retry-After header" header_is Retry-After 1
req GET "$BASE/api/health"
check "the 429 repeats count times" expect 429
req GET "$BASE/api/health"
check "then the path answers again" expect 200
ctl POST /_sim/fault '{"path":"/api/health","retry_after_s":2,"retry_after_in":"header","count":1}'
req GET "$BASE/api/health"
check "Retry-After header only" header_is Retry-After 2
check "no retry_after in the body then" lacks 'retry_after'
ctl POST /_sim/fault '{"path":"/api/health","latency_ms":400,"count":1}'
T=$(curl -s -o /dev/null -w '%{time_total}' "$BASE/api/health")
check "latency fault delays the answer" awk -v t="$T" 'BEGIN { exit !(t >= 0.35) }'
curl -s -o /dev/null "$BASE/api/health"
check "latency fault with count 1 is gone" last_logged_without_fault "GET /api/health"
ctl POST /_sim/fault '{"path":"/api/health","drop":true,"count":1}'
req GET "$BASE/api/health"
check "drop fault closes the connection without an answer" same "curl" "curl-error-52" "$CODE"
req GET "$BASE/api/health"
check "the server lives on after a drop" expect 200
ctl POST /_sim/fault '{"path":"/api/health","body":"truncated","count":1}'
req GET "$BASE/api/health"
check "truncated body fault cuts the JSON" same "body" '{"messag' "$(cat "$TMP/body")"
ctl POST /_sim/fault '{"path":"/api/health","body":"invalid","count":1}'
req GET "$BASE/api/health"
check "invalid body fault is not JSON" expect 200 '<html>'
check "invalid body keeps the JSON Content-Type" header_is Content-Type application/json
ctl POST /_sim/fault '{"path":"/api/health","body":"short","count":1}'
req GET "$BASE/api/health"
check "short body fault closes mid-body" same "curl" "curl-error-18" "$CODE"
ctl POST /_sim/fault '{"path":"/storage","method":"GET","status":503,"count":1}'
s3 GET "$USER1/30d/iris.csv"
check "storage faults answer S3 XML" expect 503 '<Code>SlowDown</Code>'
ctl POST /_sim/fault '{"path":"/api/jobs","status":500,"response":{"detail":{"message":"custom"}},"count":1}'
api GET /api/jobs
check "a fault can carry its own JSON" expect 500 '{"detail":{"message":"custom"}}'
ctl POST /_sim/fault '{"path":"/api/users","status":500}'
FID=$(number id)
api GET /api/users/me
check "a fault without count is permanent" expect 500
api GET /api/users/me
check "a fault without count is permanent (twice)" expect 500
ctl GET /_sim/faults
check "faults are listed with their hits" expect 200 "\"id\":$FID" '"hits":2'
ctl DELETE "/_sim/fault/$FID"
check "control: remove one fault" expect 200
api GET /api/users/me
check "a removed fault stops" expect 200
ctl POST /_sim/fault '{"path":"/api/health","stauts":500}'
check "a misspelt fault field is 422" expect 422 'stauts'
ctl POST /_sim/fault '{"path":"/api/health"}'
check "a fault without effect is 422" expect 422
ctl POST /_sim/fault '{"path":"/api/health","status":503}'
ctl POST /_sim/reset
req GET "$BASE/api/health"
check "reset removes faults" expect 200

# ---------------------------------------------------------------- hold faults
# A held request waits unanswered, without a timer, until it is released; the checks wait for
# it to arrive with the held count of /_sim/stats, never for time.
ctl POST /_sim/fault '{"route":"GET /api/health","hold":true,"count":1}'
check "control: add a hold fault" expect 201 '"hold":true' '"held":0'
HID=$(number id)
bg_get hold1 /api/health
HOLD1=$BG_PID
check "the held request arrived (stats count it)" wait_until 20 held_now 1
ctl GET /_sim/faults
check "the rule lists what it holds, and stays while it holds with its count spent" \
        expect 200 "\"id\":$HID" '"count":0' '"held":1' '"hits":1'
check "a held request is not answered (nothing logged for it)" same "logged" 0 \
        "$(grep -cF "\"fault\":\"#$HID hold\"" "$REQLOG" || true)"
check "its client still waits" kill -0 "$HOLD1"
req GET "$BASE/api/health"
check "a hold with count 1 lets the next request through" expect 200
ctl POST /_sim/release
check "release answers how many went on" expect 200 '{"released":1}'
wait "$HOLD1" || true
check "the released request completes with the normal answer" same "status" 200 \
        "$(cat "$TMP/hold1.code")"
check "the released request has the normal body" grep -qF '"message":"ok"' "$TMP/hold1.body"
check "a held request is logged when answered, with its hold" same "logged" 1 \
        "$(logged "GET /api/health" 200 "$HID")"
check "nothing is held after the release" held_now 0
ctl GET /_sim/faults
check "a spent hold rule goes with its last held request" expect 200 '[]'

ctl POST /_sim/fault '{"path":"/api","hold":true}'
HID=$(number id)
bg_get hold2 /api/health
HOLD2=$BG_PID
bg_get hold3 /api/users/me
HOLD3=$BG_PID
check "a path hold holds requests of two routes" wait_until 20 held_now 2
ctl POST /_sim/release '{"route":"GET /api/users/me"}'
check "release by route lets that route go" expect 200 '{"released":1}'
wait "$HOLD3" || true
check "the request of that route completes" same "status" 200 "$(cat "$TMP/hold3.code")"
check "the request of that route has its normal answer" grep -qF '"email":' "$TMP/hold3.body"
check "the request of the other route stays held" held_now 1
ctl POST /_sim/release '{"id":999999}'
check "release of an unknown rule is 404" expect 404
ctl POST /_sim/release '{"rute":"GET /api/health"}'
check "a misspelt release field is 422" expect 422 'rute'
ctl DELETE /_sim/faults
check "removing every fault releases what they hold" expect 200 '"released":1'
wait "$HOLD2" || true
check "the request it released completes" same "status" 200 "$(cat "$TMP/hold2.code")"
check "nothing is held after the faults are removed" held_now 0

ctl POST /_sim/fault '{"route":"GET /api/health","hold":true,"status":503}'
HID=$(number id)
bg_get hold4 /api/health
HOLD4=$BG_PID
check "a hold with a status holds" wait_until 20 held_now 1
ctl POST /_sim/release "{\"id\":$HID}"
check "release by rule id" expect 200 '{"released":1}'
wait "$HOLD4" || true
check "a released request gets the answer its rule asks for" same "status" 503 \
        "$(cat "$TMP/hold4.code")"
bg_get hold5 /api/health
HOLD5=$BG_PID
check "the rule holds the next request" wait_until 20 held_now 1
ctl DELETE "/_sim/fault/$HID"
check "removing one rule releases what it holds" expect 200 '"released":1'
wait "$HOLD5" || true
check "the request it released completes (the rule's status still applies)" same "status" 503 \
        "$(cat "$TMP/hold5.code")"

ctl POST /_sim/fault '{"route":"GET /api/health","hold":true}'
HID=$(number id)
bg_get hold6 /api/health
HOLD6=$BG_PID
check "a request is held before its client leaves" wait_until 20 held_now 1
kill "$HOLD6"
wait "$HOLD6" || true
check "a held request whose client went away is freed" wait_until 20 held_now 0
ctl GET /_sim/faults
check "its rule no longer counts it" expect 200 "\"id\":$HID" '"held":0'
check "it is logged as dropped (status 0)" same "logged" 1 "$(logged "GET /api/health" 0 "$HID")"
ctl DELETE /_sim/faults
check "then nothing is left to release" expect 200 '"released":0'
req GET "$BASE/api/health"
check "the server answers after a held client left" expect 200

# request N of a route: "after" lets the first N-1 matching requests through, counted
ctl POST /_sim/fault '{"route":"GET /api/health","hold":true,"after":2,"count":1}'
check "control: a hold from the third request on" expect 201 '"after":2' '"matched":0'
HID=$(number id)
req GET "$BASE/api/health"
check "after: the first matching request is let through" expect 200
req GET "$BASE/api/health"
check "after: the second one too" expect 200
ctl GET /_sim/faults
check "after: the rule counts what it let through" expect 200 '"after":0' '"matched":2' '"hits":0'
bg_get hold7 /api/health
HOLD7=$BG_PID
check "after: the third request is held" wait_until 20 held_now 1
ctl GET /_sim/stats
check "stats name the route of the held request" expect 200 '"held_routes":{"GET /api/health":1}'
ctl POST /_sim/release "{\"id\":$HID}"
wait "$HOLD7" || true
check "after: the held third request is answered once released" same "status" 200 "$(cat "$TMP/hold7.code")"
ctl GET /_sim/stats
check "stats: no held route once released" expect 200 '"held_routes":{}'
ctl POST /_sim/fault '{"route":"GET /api/health","hold":true,"after":-1}'
check "a negative after is refused" expect 422 'after'

# hold_answer: the request takes effect, its answer waits for the release
ctl POST /_sim/fault '{"route":"PUT /storage/{bucket}/{key}","hold_answer":true,"count":1}'
check "control: a hold of the answer" expect 201 '"hold":true' '"hold_answer":true'
HID=$(number id)
printf 'stored before answered' >"$TMP/held-answer.txt"
curl -sS --max-time "$MAX_TIME" -o "$TMP/ha.body" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user "$S3_ID:$S3_SECRET" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
        -T "$TMP/held-answer.txt" "$BASE/storage/$USER1/30d/held-answer.txt" >"$TMP/ha.code" 2>/dev/null &
HA=$!
check "hold_answer: the answer is held" wait_until 20 held_now 1
check "hold_answer: its client has no answer yet" test ! -s "$TMP/ha.code"
s3 GET "$USER1/30d/held-answer.txt"
check "hold_answer: the request took effect before its answer" expect 200 'stored before answered'
ctl POST /_sim/release "{\"id\":$HID}"
check "hold_answer: release sends the answer" expect 200 '{"released":1}'
wait "$HA" || true
check "hold_answer: the client gets the handler's answer" same "status" 200 "$(cat "$TMP/ha.code")"
check "hold_answer: logged with its rule when answered" grep -qF "\"fault\":\"#$HID hold-answer\"" "$REQLOG"

# ---------------------------------------------------------------- robustness
api POST /api/jobs -H 'Content-Type: application/json' --data-binary "@-" < <(head -c 2000000 /dev/zero | tr '\0' ' ')
check "an oversized JSON body is 413" expect 413
req GET "$BASE/api/health" -H "X-Big: $(head -c 70000 /dev/zero | tr '\0' a)"
check "oversized headers are refused" grep -qE '^(400|413|431|curl-error-[0-9]+)$' <<<"$CODE"
req GET "$BASE/api/jobs/%zz" -H "Authorization: api-key-v1 $KEY1"
check "a malformed request target is 400" expect 400
req GET "$BASE/_sim/nothing"
check "unknown control path is 404" expect 404
CPIDS=()
for i in $(seq 1 20); do
        curl -s -o /dev/null -H "Authorization: api-key-v1 $KEY1" "$BASE/api/jobs" &
        CPIDS+=($!)
done
CONC_FAIL=0
for p in "${CPIDS[@]}"; do
        wait "$p" || CONC_FAIL=1
done
check "20 concurrent clients are all answered" same "failures" 0 "$CONC_FAIL"
req GET "$BASE/api/health"
check "the server survives concurrent clients" expect 200

# ---------------------------------------------------------------- stats and the request log
ctl GET /_sim/stats
check "stats count requests per route" expect 200 '"routes":{' '"GET /api/jobs/{name}":' \
        '"PUT /storage/{bucket}/{key}":' '"connections":'
LOGGED_JOBS=$(grep -c '"route":"GET /api/jobs"' "$REQLOG" || true)
STATS_JOBS=$({ grep -o '"GET /api/jobs":[0-9]*' "$TMP/body" || true; } | sed 's/.*://')
check "the log and the counters agree on GET /api/jobs" same "GET /api/jobs" "$STATS_JOBS" "$LOGGED_JOBS"
ctl POST /_sim/reset '{"stats":true}'
CPIDS=()
for i in $(seq 1 5); do
        curl -s -o /dev/null -H "Authorization: api-key-v1 $KEY1" "$BASE/api/jobs?limit=1" &
        CPIDS+=($!)
done
for p in "${CPIDS[@]}"; do
        wait "$p" || true
done
ctl GET /_sim/stats
check "counters restart after a stats reset" expect 200 '"GET /api/jobs":5'
check "the request log has one line per request" same "log lines" \
        "$(grep -c '"route":' "$REQLOG")" "$(wc -l <"$REQLOG" | tr -d ' ')"
check "the log records storage requests as sigv4" grep -q '"route":"PUT /storage/{bucket}/{key}","status":200,"user_agent":"curl/[^"]*","auth":"sigv4"' "$REQLOG"
check "the log records API-key requests" grep -q '"route":"GET /api/users/me","status":200,"user_agent":"avatar-python/1.29.0","auth":"api-key"' "$REQLOG"
check "the log records dropped requests with status 0" grep -q '"status":0,.*"fault":"#' "$REQLOG"
check "the log records queries" grep -q '"query":"limit=1"' "$REQLOG"
check "the log records control calls" grep -q '"route":"POST /_sim/fault"' "$REQLOG"
LEAKED=""
for secret in "$KEY1" "$KEY2" "$NEWKEY" "$TMPKEY" "$S3_SECRET" "$AT" "$RT" "$RT2" wonderland looking-glass; do
        grep -qF -- "$secret" "$REQLOG" && LEAKED="$LEAKED ${secret:0:6}..."
done
check "the request log holds no secret" same "secrets found" "" "$LEAKED"
check "refresh tokens in queries are redacted" grep -q '"query":"token=REDACTED"' "$REQLOG"

# ---------------------------------------------------------------- a second instance: options
start_sim second --legacy-auth no --compat incompatible --compat-message 'Too old' \
        --compat-recent 2.0.0 --storage-credentials 'ADMINKEY:admin-secret' \
        --public-url 'https://avatar.example.com/' --job-step-ms 10 --log-level info
SECOND_PID=$LAST_PID
req POST "$BASE/api/login" -d 'username=a&password=b'
check "--legacy-auth no: /login is 404" expect 404
req POST "$BASE/api/refresh?token=x"
check "--legacy-auth no: /refresh is 404" expect 404
req GET "$BASE/api/check_client"
check "--compat flags" expect 200 '"message":"Too old"' '"most_recent_compatible_client":"2.0.0"' '"status":"incompatible"'
req GET "$BASE/api/users/me" -H 'Authorization: api-key-v1 avatar-sim-key'
check "without --api-key the default key works" expect 200
DUSER=$(field id)
req GET "$BASE/api/access" -G --data-urlencode "url=s3://$DUSER/30d/t.csv" -H 'Authorization: api-key-v1 avatar-sim-key'
check "--storage-credentials: /access hands out the fixed pair" expect 200 \
        '"access_key_id":"ADMINKEY"' '"secret_access_key":"admin-secret"'
S3_ID=ADMINKEY
S3_SECRET=admin-secret
s3 PUT "$DUSER/30d/t.csv" --data-binary $'a,b\n1,2\n'
check "the fixed pair signs storage requests" expect 200
s3 PUT "some-other-bucket"
check "the fixed pair may create any bucket" expect 200
req PUT "$BASE/api/resources/t" -H 'Authorization: api-key-v1 avatar-sim-key' --data-binary \
        $'kind: AvatarSchema\nmetadata:\n  name: schema\nspec:\n  tables:\n  - name: t\n    data:\n      volume: input\n      file: t.csv\n---\nkind: AvatarParameters\nmetadata:\n  name: standard\nspec:\n  schema: schema\n'
T_SET=$(field set_name)
req POST "$BASE/api/jobs" -H 'Authorization: api-key-v1 avatar-sim-key' -H 'Content-Type: application/json' \
        --data-binary "{\"set_name\":\"$T_SET\",\"parameters_name\":\"standard\"}"
T_JOB=$(field name)
# results_ready: the job finished on the instance's own clock and its results are listed.
results_ready() {
        req GET "$BASE/api/results/$T_JOB" -H 'Authorization: api-key-v1 avatar-sim-key'
        [ "$CODE" = 200 ]
}
wait_until 20 results_ready || true
check "--public-url is the base of result envelopes" expect 200 \
        "\"https://avatar.example.com/api/access?url=s3://$DUSER/results/$T_SET/$T_JOB/t.shuffled-0.csv\""
SECOND_STORAGE=$(sed -n 's/.*(storage in \(.*\))$/\1/p' "$TMP/second.stderr" | head -n 1)
check "the default storage is a temporary directory" test -d "$SECOND_STORAGE"
# a request still held at exit is freed with the rest (valgrind: no leak)
ctl POST /_sim/fault '{"path":"/api/health","hold":true}'
check "a hold fault on the second instance" expect 201
bg_get exit-held /api/health
EXIT_HELD=$BG_PID
check "a request is held at exit" wait_until 20 held_now 1
kill -TERM "$SECOND_PID"
RC=0
wait "$SECOND_PID" || RC=$?
check "SIGTERM exits 0 (with a request held)" same "exit code" 0 "$RC"
wait "$EXIT_HELD" || true
check "the held request was never answered" same "status" 000 "$(cat "$TMP/exit-held.code")"
check "the temporary storage is removed at exit" test ! -e "$SECOND_STORAGE"
check "the port file is removed at exit" test ! -e "$TMP/second.port"

# ---------------------------------------------------------------- the old server generation
# Every difference of --generation old, each checked against what the current generation (the
# main instance above) answers.
mkdir -p "$TMP/old-storage/$USER1/30d"
cp "$TMP/iris.csv" "$TMP/old-storage/$USER1/30d/iris.csv"
start_sim old --generation old --api-key "$KEY1" --user alice:wonderland \
        --storage-dir "$TMP/old-storage" --job-step-ms 0
OLD_PID=$LAST_PID
# the compatibility gate keys on the User-Agent
old_compat() {
        req GET "$BASE/api/check_client" -A "$1"
        expect 200 "\"status\":\"$2\""
}
check "old: avatar-python/<known> is compatible" old_compat 'avatar-python/1.29.0' compatible
check "old: avatar-python/1.0.8 is known" old_compat 'avatar-python/1.0.8' compatible
check "old: 1.20 is the known 1.20.0" old_compat 'avatar-python/1.20' compatible
check "old: more products may follow the client's" old_compat 'avatar-python/1.29.0 avatard/0.1.0' compatible
check "old: an unknown release is unknown" old_compat 'avatar-python/1.28.0' unknown
check "old: a version with a suffix is unknown" old_compat 'avatar-python/1.29.0x' unknown
check "old: avatard/<v> alone is unknown" old_compat 'avatard/0.1.0' unknown
check "old: avatar-python not leading is unknown" old_compat 'avatard/0.1.0 avatar-python/1.29.0' unknown
check "old: an empty version is unknown" old_compat 'avatar-python/' unknown
req GET "$BASE/api/check_client" -H 'User-Agent:'
check "old: no User-Agent is unknown" expect 200 '"status":"unknown"' '"message":"Unknown client version"'
ctl POST /_sim/compat '{"status":"incompatible","message":"Upgrade now"}'
check "old: a known client gets the configured answer" old_compat 'avatar-python/1.29.0' incompatible
check "old: an unknown one is still unknown" old_compat 'avatard/0.1.0' unknown
ctl POST /_sim/reset
# token refresh is GET only
req POST "$BASE/api/login" --data-urlencode 'username=alice' --data-urlencode 'password=wonderland'
check "old: login" expect 200 '"refresh_token":"'
ORT=$(field refresh_token)
req POST "$BASE/api/refresh?token=$ORT"
check "old: POST /refresh is 405" expect 405 'Method Not Allowed'
req GET "$BASE/api/refresh?token=$ORT"
check "old: GET /refresh gives new tokens" expect 200 '"access_token":"' '"refresh_token":"'
OAT=$(field access_token)
req GET "$BASE/api/users/me" -H "Authorization: Bearer $OAT"
check "old: the refreshed token works" expect 200
# PUT /resources answers 201 + Location, read there
api PUT /api/resources/iris_old -H 'Content-Type: application/yaml' --data-binary "@$TMP/advice.yaml"
check "old: PUT /resources is 201" expect 201
check "old: ... without the set in the body" lacks '"set_name"'
OLD_LOC=$(sed -n 's/^[Ll]ocation: *\([^[:space:]]*\).*/\1/p' "$TMP/hdr")
check "old: ... with a Location relative to the API base" grep -qE '^/resources/[0-9a-f-]{36}$' <<<"$OLD_LOC"
api GET "/api$OLD_LOC"
check "old: the Location answers the set" expect 200 '"set_name":"' '"display_name":"iris_old"'
OLD_SET=$(field set_name)
check "old: ... the set the Location names" same "set" "/resources/$OLD_SET" "$OLD_LOC"
api GET "/api$OLD_LOC" -H 'Accept: application/yaml'
check "old: the YAML to a client that asks for it" cmp -s "$TMP/body" "$TMP/advice.yaml"
# no /access/batch, with or without credentials; /access works
api POST /api/access/batch -H 'Content-Type: application/json' --data-binary '[]'
check "old: /access/batch is 404" expect 404 '{"detail":"Not Found"}'
req POST "$BASE/api/access/batch" -H 'Content-Type: application/json' --data-binary '[]'
check "old: /access/batch is 404 without credentials too" expect 404
api GET /api/access -G --data-urlencode "url=$BASE/api/access?url=s3://$USER1/30d/iris.csv"
check "old: /access works" expect 200 '"access_key_id":"'
# advice results are nested, timestamps have a space separator
new_job "$OLD_SET" advice_parameters '[]'
OLD_ADV=$JOB
ctl POST /_sim/tick '{"count":10}'
api GET "/api/jobs/$OLD_ADV"
check "old: the advice job finishes" expect 200 '"status":"finished"'
check "old: job timestamps have a space separator" \
        grep -qE '"created_at":"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}\.[0-9]{6}\+00:00"' "$TMP/body"
api GET "/api/jobs?set_name=$OLD_SET"
check "old: ... in listings too" grep -qE '"created_at":"[0-9-]{10} [0-9:]{8}' "$TMP/body"
OLD_ADVICE="$TMP/old-storage/$USER1/results/$OLD_SET/$OLD_ADV/iris.advice.json"
check "old: the advice file is written" test -s "$OLD_ADVICE"
tr -d ' \n' <"$OLD_ADVICE" >"$TMP/body" 2>/dev/null || : >"$TMP/body"
CODE=200
check "old: advice parameters are nested" expect 200 '"advice":{"parameters":{"k":' '"ncp":' \
        '"use_categorical_reduction":' '"imputation":{' '"summary":{'
check "old: the summary stays beside the parameters" grep -qE '\},"summary":\{' "$TMP/body"
kill -TERM "$OLD_PID"
RC=0
wait "$OLD_PID" || RC=$?
check "the old-generation instance exits 0" same "exit code" 0 "$RC"
# bad values are refused at start
RC=0
"$SIM" --generation ancient --port-file "$TMP/no/such/dir/port" 2>/dev/null || RC=$?
check "--generation refuses an unknown generation" same "exit code" 2 "$RC"
RC=0
"$SIM" --known-client 'avatar-python/1.0' --port-file "$TMP/no/such/dir/port" 2>/dev/null || RC=$?
check "--known-client refuses a version with a '/'" same "exit code" 2 "$RC"
# --known-client replaces the list
start_sim known --generation old --known-client 2.0 --job-step-ms 0
KNOWN_PID=$LAST_PID
check "--known-client: the given version is known" old_compat 'avatar-python/2.0.0' compatible
check "--known-client: the default list is replaced" old_compat 'avatar-python/1.29.0' unknown
kill -TERM "$KNOWN_PID"
RC=0
wait "$KNOWN_PID" || RC=$?
check "the --known-client instance exits 0" same "exit code" 0 "$RC"

# ---------------------------------------------------------------- a third instance: connection cap
start_sim third --max-connections 2 --job-step-ms 0
# Two clients that keep their connection open after an answer (HTTP/1.1 keep-alive) hold the
# two places; a third connection is over the cap while they stay open.
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
keep_alive_get 5 >"$TMP/cap.1"
exec 6<>"/dev/tcp/127.0.0.1/$PORT"
keep_alive_get 6 >"$TMP/cap.2"
curl -s -o /dev/null --max-time "$MAX_TIME" -w '%{http_code}\n' "$BASE/api/health" >"$TMP/cap.3" || true
req GET "$BASE/_sim/stats"
check "stats count live connections" expect 200 '"connections":3'
check "connections over the cap are answered 503" same "answers" "200 200 503" \
        "$(cat "$TMP/cap.1" "$TMP/cap.2" "$TMP/cap.3" | tr '\n' ' ' | sed 's/ $//')"
exec 5>&- 6>&-
# the places are free again once the simulator saw both connections close
check "closed connections leave the count" wait_until 20 live_connections 1
req HEAD "$BASE/api/health"
check "HEAD is served by GET routes" expect 200
kill -TERM "$LAST_PID"
RC=0
wait "$LAST_PID" || RC=$?
check "the third instance exits 0" same "exit code" 0 "$RC"

kill -TERM "$MAIN_PID"
RC=0
wait "$MAIN_PID" || RC=$?
check "the main instance exits 0 on SIGTERM" same "exit code" 0 "$RC"
check "a given --storage-dir is kept" test -s "$TMP/storage/$USER1/30d/iris.csv"
PIDS=()

echo "1..$((N_PASS + N_FAIL))"
echo "# passed $N_PASS, failed $N_FAIL"
[ "$N_FAIL" -eq 0 ]
