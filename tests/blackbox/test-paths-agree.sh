#!/usr/bin/env bash
# One set of system paths, whatever the prefix: the compiled defaults (avatard --help,
# avatarctl --help) are /etc/avatard/avatard.yaml, /run/avatard/avatard.sock and
# /var/lib/avatard, and the generated service, the socket unit, tmpfiles.d, sysusers.d,
# avatard(8), avatarctl(1) and README.md name those paths (and the key file
# /etc/avatard/api-key, the user and group avatar) and no other path of avatard's (but the
# encrypted key /etc/avatard/api-key.cred that README.md offers instead of the plain file).
# The service must name the programs where meson installs them ($AVATARD_SBINDIR, $AVATARD_BINDIR).
. "$(dirname "$0")/lib.sh"

CONFIG=/etc/avatard/avatard.yaml
CONFIG_DIR=/etc/avatard
KEY_FILE=/etc/avatard/api-key
SOCKET=/run/avatard/avatard.sock
RUNTIME_DIR=/run/avatard
STATE_DIR=/var/lib/avatard
USER_NAME=avatar

SERVICE="$BUILD_ROOT/systemd/avatard.service"
SOCKET_UNIT="$SOURCE_ROOT/systemd/avatard.socket"
TMPFILES="$SOURCE_ROOT/systemd/avatard.tmpfiles"
SYSUSERS="$SOURCE_ROOT/systemd/avatard.sysusers"
MAN8="$SOURCE_ROOT/daemon/avatard.8"
MAN1="$SOURCE_ROOT/client/avatarctl.1"
README="$SOURCE_ROOT/README.md"

# unit_key FILE KEY: the values of KEY= in a unit file, one per line
unit_key() {
        sed -n "s/^$2=//p" "$1"
}

# troff_text FILE: the page's text with troff's escapes of '-' and font changes removed
troff_text() {
        sed 's/\\-/-/g; s/\\f[BIRP]//g; s/\\(em/-/g' "$1"
}

# avatard_paths TEXT: every absolute path of avatard's under /etc, /run, /var or /usr/local
# that TEXT names, one per line, unique
avatard_paths() {
        grep -oE '(/usr/local)?/(etc|run|var)(/[A-Za-z0-9._-]+)*/avatard?[A-Za-z0-9._/-]*' <<<"$1" |
                sed 's/[.]$//' | sort -u
}

# only_known WHERE TEXT: every avatard path in TEXT is one of the system paths (or in them)
only_known() {
        local p bad=""
        for p in $(avatard_paths "$2"); do
                case "$p" in
                "$CONFIG" | "$KEY_FILE" | "$KEY_FILE.cred" | "$SOCKET" | "$CONFIG_DIR" | "$CONFIG_DIR/" | \
                "$RUNTIME_DIR" | "$RUNTIME_DIR/" | "$STATE_DIR" | "$STATE_DIR"/*) ;;
                *) bad="$bad $p" ;;
                esac
        done
        if [ -z "$bad" ]; then
                pass "$1 names no other path of avatard's"
        else
                fail "$1 names no other path of avatard's" "unknown:$bad"
        fi
}

# ---- the compiled defaults ----------------------------------------------------------------------
help=$("$AVATARD" --help 2>&1)
check_match "avatard's default configuration is $CONFIG" "--config PATH .*\(default $CONFIG[:)]" "$help"
check_match "avatard's default socket is $SOCKET" "--socket PATH .*\(default $SOCKET[:)]" "$help"
check_match "avatard's default state directory is $STATE_DIR" \
        "--state-directory DIR .*\(default $STATE_DIR[:)]" "$help"
only_known "avatard --help" "$help"
ctl_help=$("$AVATARCTL" --help 2>&1)
check_match "avatarctl's default socket is $SOCKET" "--socket PATH .*else $SOCKET\)" "$ctl_help"

# ---- the service --------------------------------------------------------------------------------
check "the service is generated" test -s "$SERVICE"
check_eq "ExecStart= is the installed avatard" "${AVATARD_SBINDIR:-?}/avatard" "$(unit_key "$SERVICE" ExecStart)"
check_eq "ExecReload= is the installed avatarctl reload, as root" "+${AVATARD_BINDIR:-?}/avatarctl reload" \
        "$(unit_key "$SERVICE" ExecReload)"
check_eq "the service loads the key file as the credential api-key" "api-key:$KEY_FILE" \
        "$(unit_key "$SERVICE" LoadCredential)"
check_eq "User= is $USER_NAME" "$USER_NAME" "$(unit_key "$SERVICE" User)"
check_eq "Group= is $USER_NAME" "$USER_NAME" "$(unit_key "$SERVICE" Group)"
check_eq "StateDirectory= is $STATE_DIR" "$STATE_DIR" "/var/lib/$(unit_key "$SERVICE" StateDirectory)"
check_eq "StateDirectoryMode= is 0700" "0700" "$(unit_key "$SERVICE" StateDirectoryMode)"
check_eq "ConfigurationDirectory= is $CONFIG_DIR" "$CONFIG_DIR" "/etc/$(unit_key "$SERVICE" ConfigurationDirectory)"
check_eq "ConfigurationDirectoryMode= is tmpfiles.d's 0750" "0750" "$(unit_key "$SERVICE" ConfigurationDirectoryMode)"
check_eq "no RuntimeDirectory= (the socket's directory is root's)" "" "$(unit_key "$SERVICE" RuntimeDirectory)"
check_no_match "the service names no placeholder left" "@[a-z]+@" "$(cat "$SERVICE")"
only_known "the service" "$(cat "$SERVICE")"

# ---- the socket unit ----------------------------------------------------------------------------
check_eq "the socket unit listens on $SOCKET" "$SOCKET" "$(unit_key "$SOCKET_UNIT" ListenStream)"
check_eq "SocketGroup= is $USER_NAME" "$USER_NAME" "$(unit_key "$SOCKET_UNIT" SocketGroup)"
check_eq "SocketMode= is 0660" "0660" "$(unit_key "$SOCKET_UNIT" SocketMode)"
check_eq "DirectoryMode= is 0755 (root's directory)" "0755" "$(unit_key "$SOCKET_UNIT" DirectoryMode)"
only_known "the socket unit" "$(cat "$SOCKET_UNIT")"

# ---- tmpfiles.d and sysusers.d ------------------------------------------------------------------
tmpfiles=$(grep -v '^#' "$TMPFILES")
check_match "tmpfiles.d makes $CONFIG_DIR root:$USER_NAME 0750" "^d $CONFIG_DIR 0750 root $USER_NAME " "$tmpfiles"
check_match "tmpfiles.d makes $RUNTIME_DIR root:root 0755" "^d $RUNTIME_DIR 0755 root root " "$tmpfiles"
only_known "tmpfiles.d" "$(cat "$TMPFILES")"
check_match "sysusers.d makes the user $USER_NAME with its home in $STATE_DIR" \
        "^u $USER_NAME - \"[^\"]*\" $STATE_DIR$" "$(grep -v '^#' "$SYSUSERS")"

# ---- the documentation --------------------------------------------------------------------------
man8=$(troff_text "$MAN8")
files8=$(sed -n '/^\.SH FILES/,/^\.SH /p' <<<"$man8")
for p in "$CONFIG" "$KEY_FILE" "$SOCKET" "$STATE_DIR" "$CONFIG_DIR" "$RUNTIME_DIR"; do
        check "avatard(8) FILES names $p" grep -qxF ".I $p" <<<"$files8"
done
options8=$(sed -n '/^\.SH OPTIONS/,/^\.SH CONFIGURATION/p' <<<"$man8")
check_match "avatard(8) documents --config's default" "^\.IR? $CONFIG( |$)" \
        "$(sed -n '/--config "/,/^\.TP/p' <<<"$options8")"
check_match "avatard(8) documents --socket's default" "^\.IR? $SOCKET( |$)" \
        "$(sed -n '/--socket "/,/^\.TP/p' <<<"$options8")"
check_match "avatard(8) documents --state-directory's default" "^\.IR? $STATE_DIR( |$)" \
        "$(sed -n '/--state-directory "/,/^\.TP/p' <<<"$options8")"
check_match "avatard(8) names the user and group $USER_NAME" "group $USER_NAME" "$files8"
only_known "avatard(8)" "$man8"

man1=$(troff_text "$MAN1")
check_match "avatarctl(1) names the default socket" "$SOCKET" "$man1"
only_known "avatarctl(1)" "$man1"

service_section=$(sed -n '/^## Running it as a service/,/^## [^R]/p' "$README")
for p in "$CONFIG" "$KEY_FILE" "$SOCKET" "$STATE_DIR" "$CONFIG_DIR" "$RUNTIME_DIR"; do
        check_match "README's service section names $p" "$p" "$service_section"
done
check_match "README's service section adds the user to the group $USER_NAME" \
        "usermod -aG $USER_NAME " "$service_section"
only_known "README.md" "$(cat "$README")"

finish
