#!/usr/bin/env bash
# Black-box tests of access control: the roles read, operate and admin from the caller's uid
# and groups (SO_PEERCRED / SO_PEERGROUPS) and the configuration's access section; the
# defaults; denials that name the role a call needs; the public methods.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"

if ! command -v setpriv >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
        echo "# setpriv and root are needed to call the daemon as another user"
        pass "skipped: setpriv or root unavailable"
        finish
        exit $?
fi
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(getent group nogroup | cut -d: -f3)
[ -n "$NOBODY_GID" ] || NOBODY_GID=$(id -g nobody)
NOBODY_GROUP=$(getent group "$NOBODY_GID" | cut -d: -f1)

# as_nobody COMMAND...: runs COMMAND as nobody with only the primary group nobody's group
# (plus the extra groups in $EXTRA_GROUPS, comma-separated gids).
EXTRA_GROUPS=""
as_nobody() {
        if [ -n "$EXTRA_GROUPS" ]; then
                setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --groups="$EXTRA_GROUPS" "$@"
        else
                setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups "$@"
        fi
}
# nctl METHOD [PARAMS]: avatarctl --json call as nobody; output in $OUT, exit code in $CTL_RC.
nctl() {
        OUT=$(as_nobody "$AVATARCTL" --json --timeout "$(scaled 30)" call "$@" 2>&1)
        CTL_RC=$?
}
# nrpc METHOD [PARAMS]: the raw reply to a call made as nobody.
nrpc() {
        RPC_WRAP=as_nobody rpc "$@"
}
# reload_with: replaces the configuration from stdin (plus the common part) and reloads.
reload_with() {
        { common_conf; cat; } >"$CONF"
        ctl daemon.reload
        [ "$CTL_RC" = 0 ]
}
common_conf() {
        cat <<EOF
log_level: debug
socket_mode: "0666"
upstream:
  base_url: $SIM_URL
EOF
}

start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
export AVATAR_API_KEY="$SIM_KEY"

# --- the socket's own mode: 0660 by default keeps others out ---------------------------------
cat > "$CONF" <<EOF
log_level: debug
upstream:
  base_url: $SIM_URL
EOF
start_daemon || { fail "avatard starts"; finish; exit $?; }
check_eq "the socket is mode 0660 by default" "660" "$(stat -c '%a' "$SOCK")"
nctl daemon.ping
check_eq "with mode 0660 another user cannot even connect (exit 5)" "5" "$CTL_RC"
stop_daemon

# --- defaults: root admin, group avatar read+operate, everyone else nothing ---------------------
common_conf >"$CONF"
start_daemon || { fail "avatard starts with socket_mode 0666"; finish; exit $?; }
check_eq "socket_mode \"0666\" gives the socket mode 0666" "666" "$(stat -c '%a' "$SOCK")"

nctl daemon.ping
check_eq "daemon.ping is public" "0" "$CTL_RC"
check_eq "daemon.ping answers anyone" '"pong"' "$OUT"
nctl rpc.discover
check_eq "rpc.discover is public" "0" "$CTL_RC"
check_match "rpc.discover gives anyone the document" '"openrpc":"1\.' "$OUT"

nctl daemon.status
check_eq "by default another user is denied daemon.status (exit 5)" "5" "$CTL_RC"
raw=$(nrpc daemon.status)
check_match "the denial is permission_denied (-32004) naming the read role" \
        "\"code\":-32004,\"message\":\"daemon.status needs the 'read' role; uid $NOBODY_UID has no role\"" "$raw"
check_match "error.data names the required role, the caller's role and uid" \
        "\"required_role\":\"read\",\"role\":\"none\",\"uid\":$NOBODY_UID" "$raw"
before=$(sim_count "GET /api/health")
check_match "get_health needs read" "needs the 'read' role" "$(nrpc manager.get_health)"
check_eq "a denied call makes no upstream request" "$before" "$(sim_count "GET /api/health")"
check_match "delete_job needs operate" "\"message\":\"manager.delete_job needs the 'operate' role" \
        "$(nrpc manager.delete_job '{"name":"x"}')"
check_match "create_api_key needs admin" "\"message\":\"manager.create_api_key needs the 'admin' role" \
        "$(nrpc manager.create_api_key '{"name":"x","expiration_days":30}')"
check_match "daemon.reload needs admin" "needs the 'admin' role" "$(nrpc daemon.reload)"
check_match "the denial is logged with the uid and the role" \
        "Denied daemon.status to uid $NOBODY_UID: needs the read role, has none" "$(cat "$DAEMON_LOG")"
check_eq "a denied call is not counted as run" "0" "$(sim_count "POST /api/api-keys")"

ctl manager.list_api_keys
check_eq "root is admin by default" "0" "$CTL_RC"

AVATAR_GID=$(getent group avatar | cut -d: -f3)
if [ -n "$AVATAR_GID" ]; then
        EXTRA_GROUPS="$AVATAR_GID"
        nctl daemon.status
        check_eq "by default group avatar may read" "0" "$CTL_RC"
        nctl manager.delete_jobs '{"job_names":["no-such-job"]}'
        check_eq "by default group avatar may operate" "0" "$CTL_RC"
        check_match "by default group avatar is not admin" "needs the 'admin' role; uid $NOBODY_UID has operate" \
                "$(nrpc manager.list_api_keys)"
        EXTRA_GROUPS=""
else
        echo "# no group 'avatar' on this system: the default read+operate rule for it is not exercised"
fi

# --- access: read for a user ------------------------------------------------------------------------
reload_with <<EOF
access:
  read:
    users: [nobody]
EOF
check_eq "a configuration with access: read: {users: [nobody]} is loaded" "0" "$CTL_RC"
nctl daemon.status
check_eq "read: daemon.status works" "0" "$CTL_RC"
nctl manager.get_health
check_eq "read: get_health works" "0" "$CTL_RC"
check_match "read: get_health gives the server's answer" '"message":"ok"' "$OUT"
nctl manager.get_jobs
check_eq "read: get_jobs works" "0" "$CTL_RC"
nctl manager.delete_job '{"name":"x"}'
check_eq "read: delete_job is denied (exit 5)" "5" "$CTL_RC"
raw=$(nrpc manager.delete_job '{"name":"x"}')
check_match "read: the denial of delete_job names operate" \
        "\"message\":\"manager.delete_job needs the 'operate' role; uid $NOBODY_UID has read\".*\"required_role\":\"operate\",\"role\":\"read\"" "$raw"
check_match "read: delete_jobs is denied, naming operate" "needs the 'operate' role" \
        "$(nrpc manager.delete_jobs '{"job_names":["x"]}')"
check_match "read: list_api_keys is denied, naming admin" "needs the 'admin' role; uid $NOBODY_UID has read" \
        "$(nrpc manager.list_api_keys)"
check_eq "no deletion was sent for the denied calls" "0" "$(sim_count "POST /api/jobs/bulk-delete")"
ctl manager.list_api_keys
check_eq "root stays admin when the configuration does not name it" "0" "$CTL_RC"

# --- access: operate for a group (primary or supplementary) ----------------------------------------
reload_with <<EOF
access:
  operate:
    groups: [$NOBODY_GROUP]
EOF
check_eq "a configuration with access: operate: {groups: [$NOBODY_GROUP]} is loaded" "0" "$CTL_RC"
nctl manager.get_jobs
check_eq "operate implies read" "0" "$CTL_RC"
nctl manager.delete_jobs '{"job_names":["no-such-job"]}'
check_eq "operate: delete_jobs works" "0" "$CTL_RC"
check_match "operate: delete_jobs reached the server" '"failed_jobs":\["no-such-job"\]' "$OUT"
check_match "operate: list_api_keys is denied, naming admin" "needs the 'admin' role; uid $NOBODY_UID has operate" \
        "$(nrpc manager.list_api_keys)"
USERS_GID=$(getent group users | cut -d: -f3)
if [ -n "$USERS_GID" ]; then
        reload_with <<EOF
access:
  operate:
    groups: [users]
EOF
        nctl daemon.status
        check_eq "without the group in its groups, nobody is denied" "5" "$CTL_RC"
        EXTRA_GROUPS="$USERS_GID"
        nctl manager.delete_jobs '{"job_names":["no-such-job"]}'
        check_eq "a supplementary group gives its role (SO_PEERGROUPS)" "0" "$CTL_RC"
        EXTRA_GROUPS=""
fi

# --- access: admin for a user --------------------------------------------------------------------------
reload_with <<EOF
access:
  admin:
    users: [nobody]
EOF
nctl manager.list_api_keys
check_eq "admin: list_api_keys works" "0" "$CTL_RC"
check_match "admin: list_api_keys gives the keys" '"api_keys":\[' "$OUT"
nctl manager.delete_jobs '{"job_names":["no-such-job"]}'
check_eq "admin implies operate" "0" "$CTL_RC"
nctl daemon.reload
check_eq "admin: daemon.reload works" "0" "$CTL_RC"

# --- a bad access section is rejected and the old one kept -----------------------------------------------
{ common_conf; printf 'access:\n  read:\n    users: [no-such-user-bb]\n'; } >"$CONF"
raw=$(rpc daemon.reload)
check_match "an unknown user in access is rejected, naming the key" '"code":-32010.*access\.read\.users.*no-such-user-bb' "$raw"
nctl manager.list_api_keys
check_eq "the rejected configuration left the previous access rules in place" "0" "$CTL_RC"
{ common_conf; printf 'access:\n  superuser:\n    users: [nobody]\n'; } >"$CONF"
check_match "an unknown role is rejected" 'unknown role .superuser.' "$(rpc daemon.reload)"

check_no_sanitizer_reports
finish
