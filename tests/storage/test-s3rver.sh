#!/usr/bin/env bash
# Interoperability of daemon/storage.c (through storage-cli) with s3rver, a third-party S3
# implementation from the npm registry: PutObject, multipart uploads from a file and from a
# pipe, GetObject into a file and into a pipe, byte for byte, keys that need encoding, and an
# S3 error answer.
#
# s3rver@3 is installed into $BUILD_ROOT/node when it is not there yet (npm, network). When
# node, npm or the registry are not available the test FAILS with the reason: it never skips.
# Note: s3rver 3 checks that a SigV4 request is well formed and that the key id exists, but
# does not recompute the signature; signatures are checked against avatar-sim (test-storage).
#
# Usage: test-s3rver.sh STORAGE_CLI   (BUILD_ROOT in the environment)
set -uo pipefail

# shellcheck source=../lib/wait.sh
. "$(dirname "$0")/../lib/wait.sh"

cli=${1:?usage: test-s3rver.sh STORAGE_CLI}
root=${BUILD_ROOT:?BUILD_ROOT is not set}
prefix="$root/node"
s3rver="$prefix/node_modules/.bin/s3rver"
bucket=interop
passed=0
failed=0

# Prints the totals (scripts/test reads the RESULT line) and exits.
finish() {
        echo "RESULT: storage-s3rver passed=$passed failed=$failed"
        [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
        exit
}

# A failure that stops the test.
fatal() {
        echo "FAIL: $*"
        failed=$((failed + 1))
        finish
}

# Records one check.
check() {
        local name=$1
        shift
        if "$@"; then
                echo "ok - $name"
                passed=$((passed + 1))
        else
                echo "not ok - $name"
                failed=$((failed + 1))
        fi
}

command -v node >/dev/null 2>&1 || fatal "node is not installed (scripts/install-deps --with-node installs it)"
command -v npm >/dev/null 2>&1 || fatal "npm is not installed (scripts/install-deps --with-node installs it)"
[ -x "$cli" ] || fatal "storage-cli not found at $cli"

if [ ! -x "$s3rver" ]; then
        mkdir -p "$prefix" || fatal "cannot create $prefix"
        echo "# installing s3rver@3 into $prefix"
        # one install at a time when several test runs share the build directory
        (
                flock 9
                [ -x "$s3rver" ] || npm install --prefix "$prefix" --no-audit --no-fund \
                        --loglevel=error s3rver@3 >"$prefix/npm-install.log" 2>&1
        ) 9>"$prefix/.install.lock"
        [ -x "$s3rver" ] || fatal "npm install s3rver@3 failed (is the npm registry reachable?): $(tail -5 "$prefix/npm-install.log" 2>/dev/null)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-s3rver.XXXXXX") || fatal "mktemp failed"
server=""
cleanup() {
        if [ -n "$server" ]; then
                kill "$server" 2>/dev/null
                wait "$server" 2>/dev/null
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT

# Port 0: s3rver picks a free port and prints it.
"$s3rver" --directory "$tmp/data" --address 127.0.0.1 --port 0 --silent \
        --configure-bucket "$bucket" >"$tmp/s3rver.out" 2>"$tmp/s3rver.err" &
server=$!

# s3rver_port: sets $port once s3rver printed it; gives up when s3rver is gone.
s3rver_port() {
        port=$(sed -n 's/^S3rver listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/s3rver.out")
        [ -n "$port" ] && return 0
        kill -0 "$server" 2>/dev/null || return "$WAIT_NEVER"
        return 1
}

port=""
wait_until 30 s3rver_port
[ -n "$port" ] || fatal "s3rver did not start: $(cat "$tmp/s3rver.err" "$tmp/s3rver.out" 2>/dev/null | tail -5)"
endpoint="http://127.0.0.1:$port"
echo "# s3rver $(node -e 'console.log(require(process.argv[1]).version)' "$prefix/node_modules/s3rver/package.json" 2>/dev/null) on $endpoint"

export STORAGE_ACCESS_KEY_ID=S3RVER STORAGE_SECRET_ACCESS_KEY=S3RVER
run_cli() {
        "$cli" "$@" 2>>"$tmp/cli.log"
}

# Files: every byte value, and random data past several parts.
for i in $(seq 0 255); do printf "\\$(printf %03o "$i")"; done >"$tmp/bytes"
for _ in 1 2 3 4; do cat "$tmp/bytes"; done >"$tmp/small"
head -c 100000 /dev/urandom >>"$tmp/small"
head -c $((12 * 1024 * 1024 + 7)) /dev/urandom >"$tmp/large"

key_small="plain/small.bin"
key_odd="dir one/a+b c/caf$(printf '\303\251') (1)~.bin"

check "put small" run_cli put "$endpoint" "s3://$bucket/$key_small" "$tmp/small"
check "get small into a file" run_cli get "$endpoint" "s3://$bucket/$key_small" "$tmp/small.out"
check "small is byte-exact" cmp -s "$tmp/small" "$tmp/small.out"

check "put under a key with spaces, '+' and UTF-8" run_cli put "$endpoint" "s3://$bucket/$key_odd" "$tmp/small"
check "get it back" run_cli get "$endpoint" "s3://$bucket/$key_odd" "$tmp/odd.out"
check "odd key is byte-exact" cmp -s "$tmp/small" "$tmp/odd.out"

: >"$tmp/cli.log"
check "put-multipart 12 MiB in 5 MiB parts" run_cli put-multipart "$endpoint" "s3://$bucket/big/large.bin" "$tmp/large"
check "three parts went up" grep -q '"multipart_uploads":1,"parts":3' "$tmp/cli.log"
check "get large into a file" run_cli get "$endpoint" "s3://$bucket/big/large.bin" "$tmp/large.out"
check "large is byte-exact" cmp -s "$tmp/large" "$tmp/large.out"

: >"$tmp/cli.log"
check "put a pipe of 12 MiB (multipart)" bash -c "cat '$tmp/large' | '$cli' put '$endpoint' 's3://$bucket/pipe/large.bin' - 2>>'$tmp/cli.log'"
check "the pipe went up in three parts" grep -q '"multipart_uploads":1,"parts":3' "$tmp/cli.log"
check "put a small pipe (one PutObject)" bash -c "cat '$tmp/small' | '$cli' put '$endpoint' 's3://$bucket/pipe/small.bin' - 2>>'$tmp/cli.log'"
check "get the pipe upload into a pipe" bash -c "'$cli' get '$endpoint' 's3://$bucket/pipe/large.bin' - 2>>'$tmp/cli.log' | cmp -s - '$tmp/large'"
check "get the small pipe upload" bash -c "'$cli' get '$endpoint' 's3://$bucket/pipe/small.bin' - 2>>'$tmp/cli.log' | cmp -s - '$tmp/small'"

: >"$tmp/cli.log"
check "a missing key fails" bash -c "! '$cli' get '$endpoint' 's3://$bucket/no/such/key' '$tmp/none.out' 2>>'$tmp/cli.log'"
check "with NoSuchKey and 404" grep -q 'HTTP 404, NoSuchKey' "$tmp/cli.log"
: >"$tmp/cli.log"
check "an unknown key id fails" bash -c "! STORAGE_ACCESS_KEY_ID=NOBODY '$cli' get '$endpoint' 's3://$bucket/$key_small' '$tmp/none.out' 2>>'$tmp/cli.log'"
check "with InvalidAccessKeyId and 403" grep -q 'HTTP 403, InvalidAccessKeyId' "$tmp/cli.log"

if [ "$failed" -gt 0 ]; then
        echo "# storage-cli said:"
        sed 's/^/#   /' "$tmp/cli.log"
fi
finish
