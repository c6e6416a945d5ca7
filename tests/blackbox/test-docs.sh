#!/usr/bin/env bash
# Every method of the OpenRPC document is described in PROTOCOL.md and reachable from
# avatarctl's documentation (avatarctl(1)), and the daemon serves exactly the documented methods.
. "$(dirname "$0")/lib.sh"

doc="$SOURCE_ROOT/proto/avatard.openrpc.json"
methods=$(grep -oE '"name": "[a-z]+\.[a-z_]+"' "$doc" | sed 's/"name": "//; s/"$//' | sort -u)
check "the OpenRPC document lists methods" test -n "$methods"
for m in $methods; do
        check "PROTOCOL.md describes $m" grep -qF "\`$m\`" "$SOURCE_ROOT/proto/PROTOCOL.md"
        check "avatarctl(1) says which command calls $m" grep -qF "$m" "$SOURCE_ROOT/client/avatarctl.1"
done

start_daemon || { fail "avatard starts"; finish; exit $?; }
served=$("$AVATARCTL" --json call rpc.discover | grep -oE '"name":"[a-z]+\.[a-z_]+"' | sed 's/"name":"//; s/"$//' | sort -u)
check_eq "rpc.discover returns the document's methods" "$methods" "$served"
listed=$("$AVATARCTL" methods 2>&1)
for m in $methods; do
        check_match "avatarctl methods lists $m" "$m" "$listed"
done
finish
