#!/usr/bin/env bash
# The README's install steps in a booted systemd (PID 1, systemd 252 on Debian 12): boots a
# throwaway container over this machine's root with ../shared/boot-test.sh, copies the
# checkout into it, and runs the code blocks of README.md's "Running it as a service" as
# pasted, with only these substitutions: `sudo ` removed (we are root), $USER a test user
# made here, and what follows "log in again" run as that user through `runuser -u USER --`.
# A configuration pointing at avatar-sim (built by those steps, on the container's loopback)
# is written to /etc/avatard/avatard.yaml before the first call upstream. Then: socket
# activation on the first connection, a full avatarization, reload with a good and a bad
# configuration, stop keeping state and a restart restoring runners, a user outside the group
# refused, the sandbox's exposure, and a broken configuration ending in start-limit-hit with
# a waiting client told at once. Prints "RESULT: boot-install passed=N failed=M".
#
# Usage: tests/boot/boot-install.sh   (as root; prints SKIPPED and exits 77 when the
#        container cannot be booted here: not root, or no ../shared/boot-test.sh; with CI=true
#        a container that does not boot is a failure)
# Inside the container it runs itself with --inside, the checkout read-only at /src.
set -uo pipefail

NAME=boot-install

# ---- on the host: boot the container ------------------------------------------------------------
if [ "${1:-}" != --inside ]; then
        root=$(cd "$(dirname "$0")/../.." && pwd)
        skip() {
                echo "SKIPPED: $NAME: $*"
                echo "RESULT: $NAME passed=0 failed=0 skipped=1"
                exit 77
        }
        boot_test="$root/../shared/boot-test.sh"
        [ -x "$boot_test" ] || skip "no ../shared/boot-test.sh beside the project root"
        [ "$(id -u)" = 0 ] || skip "booting a container (systemd-nspawn) needs root"
        out=$(mktemp)
        trap 'rm -f "$out"' EXIT
        # the checkout may not be on the root file system that the container overlays
        NSPAWN_ARGS="--bind-ro=$root:/src" "$boot_test" \
                /usr/bin/env AVATARD_TEST_TIME_SCALE="${AVATARD_TEST_TIME_SCALE:-1}" \
                /src/tests/boot/boot-install.sh --inside 2>&1 | tee "$out"
        rc=${PIPESTATUS[0]}
        if [ "$rc" -eq 125 ] && ! grep -q "^RESULT: $NAME " "$out"; then
                [ "${CI:-}" = true ] || skip "the container could not be booted (boot-test.sh exited 125)"
                echo "not ok 1 - the container boots (boot-test.sh exited 125 as root with CI=true)"
                echo "RESULT: $NAME passed=0 failed=1"
                exit 1
        fi
        if ! grep -q "^RESULT: $NAME " "$out"; then
                echo "not ok 1 - the test inside the container reports its result (exit $rc)"
                echo "RESULT: $NAME passed=0 failed=1"
                exit 1
        fi
        exit "$rc"
fi

# ---- inside the container, as root ----------------------------------------------------------------
SRC=/src
WORK=/root/avatard              # the copy the README's steps run in
TUSER=avtest                    # $USER of the README
OUTSIDER=avoutsider             # a user outside the avatar group
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The tree: what git knows of the checkout (tracked and untracked, not ignored: no build
# directories), or every file but the build directories outside git, copied so that nothing
# is written to the host's checkout.
mkdir -p "$WORK"
list_tree() {
        git -c safe.directory='*' -C "$SRC" ls-files -z --cached --others --exclude-standard 2>/dev/null ||
                (cd "$SRC" && find . -path './build*' -prune -o -path ./.git -prune -o -type f -print0)
}
list_tree | tar -C "$SRC" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$WORK" -xf -
if [ ! -f "$WORK/tests/blackbox/lib.sh" ]; then
        echo "not ok 1 - the checkout is copied into the container"
        echo "RESULT: $NAME passed=0 failed=1"
        exit 1
fi
export SOURCE_ROOT="$WORK" BUILD_ROOT="$WORK/build"
SIM_KEY="boot-key-$$"
# shellcheck source=../blackbox/lib.sh
. "$WORK/tests/blackbox/lib.sh"
# shellcheck source=../blackbox/sim-fixtures.sh
. "$WORK/tests/blackbox/sim-fixtures.sh"
# lib.sh points the programs at a test daemon; here they use the installed service
unset AVATARD_SOCKET AVATAR_BASE_URL
CSV="$WORK/tests/data/iris.csv"

# as_user USER COMMAND...: COMMAND as USER with a clean environment, as after logging in
as_user() {
        local u="$1" home
        shift
        home=$(getent passwd "$u" | cut -d: -f6)
        (cd "$home" && env -i PATH="$PATH" HOME="$home" USER="$u" LOGNAME="$u" TERM=dumb \
                runuser -u "$u" -- "$@")
}

# unit_prop UNIT PROPERTY: the property's value
unit_prop() {
        systemctl show -p "$2" --value "$1"
}

# The journal of the units on failure, for finish's log tail.
dump_journal() {
        journalctl --no-pager -o short-monotonic -u avatard.service -u avatard.socket >"$DAEMON_LOG" 2>&1
}

# done_now: the closing line (the container is thrown away: nothing to undo).
done_now() {
        dump_journal
        finish
        exit $?
}

useradd -m -s /bin/bash "$TUSER" && useradd -m -s /bin/bash "$OUTSIDER"
check "test users $TUSER and $OUTSIDER exist" id "$TUSER"

# ---- the README's install steps -----------------------------------------------------------------
# the ```sh blocks of the section, split where the reader logs in again
awk '
        /^## Running it as a service/ { on = 1; next }
        on && /^## / { on = 0 }
        on && /^```sh$/ { code = 1; next }
        on && code && /^```$/ { code = 0; next }
        on && code { print }' "$WORK/README.md" | sed 's/\bsudo //g' >"$TMP/readme.sh"
awk 'after { print } /log in again/ { after = 1 }' "$TMP/readme.sh" >"$TMP/readme-user.sh"
awk '{ print } /log in again/ { exit }' "$TMP/readme.sh" >"$TMP/readme-root.sh"
chmod 0644 "$TMP"/readme*.sh
check "the README's service section has install steps up to 'log in again'" \
        grep -q "log in again" "$TMP/readme-root.sh"
check "the README's service section has steps after logging in again" test -s "$TMP/readme-user.sh"
for step in "meson install" "systemd-sysusers" "systemd-tmpfiles --create" "ldconfig" \
        "/etc/avatard/api-key" "systemctl enable --now avatard.socket" "usermod -aG avatar"; do
        check "the README's install steps include $step" grep -qF -- "$step" "$TMP/readme-root.sh"
done
echo "# README steps as root:"
sed 's/^/#   /' "$TMP/readme-root.sh"
echo "# then as $TUSER:"
sed 's/^/#   /' "$TMP/readme-user.sh"

t0=$(test_now_ms)
(cd "$WORK" && env -i PATH="$PATH" HOME=/root USER="$TUSER" LOGNAME=root TERM=dumb \
        AVATAR_API_KEY="$SIM_KEY" bash -e "$TMP/readme-root.sh") >"$TMP/readme-root.log" 2>&1
rc=$?
t1=$(test_now_ms)
check_eq "the README's install steps succeed as pasted, as root ($((t1 - t0)) ms)" "0" "$rc"
if [ "$rc" -ne 0 ]; then
        tail -n 40 "$TMP/readme-root.log" | sed 's/^/#   /'
        done_now
fi

# what they installed
check_eq "avatard.socket is enabled" "enabled" "$(systemctl is-enabled avatard.socket 2>&1)"
check_eq "avatard.socket is listening" "active" "$(systemctl is-active avatard.socket 2>&1)"
check_match "the service runs the installed avatard" "path=/usr/local/sbin/avatard " \
        "$(unit_prop avatard.service ExecStart)"
check_match "avatarctl finds libavatar-client.so.0 installed under /usr/local" \
        "libavatar-client\.so\.0 => /usr/local/lib/" "$(ldd /usr/local/bin/avatarctl)"
check_eq "/etc/avatard: root:avatar 0750" "750 root:avatar" "$(stat -c '%a %U:%G' /etc/avatard)"
check_eq "the key file: root:root 0600" "600 root:root" "$(stat -c '%a %U:%G' /etc/avatard/api-key)"
check_eq "/run/avatard: root:root 0755" "755 root:root" "$(stat -c '%a %U:%G' /run/avatard)"
check_eq "the socket: root:avatar 0660" "660 root:avatar" "$(stat -c '%a %U:%G' /run/avatard/avatard.sock)"
check_match "$TUSER is in the avatar group" "\bavatar\b" "$(id -nG "$TUSER")"
check_no_match "$OUTSIDER is not" "\bavatar\b" "$(id -nG "$OUTSIDER")"

# avatar-sim from the container's build, and a configuration naming it
start_sim --api-key "$SIM_KEY" --job-step-ms 100 || { fail "avatar-sim starts"; done_now; }
# write_conf IDLE_TIMEOUT: the configuration, as an administrator would write it
write_conf() {
        install -m 0640 -g avatar /dev/stdin /etc/avatard/avatard.yaml <<EOF
upstream:
  base_url: $SIM_URL
cache:
  jobs_ttl_s: 0
runners:
  poll_min_s: 1
  poll_max_s: 1
limits:
  idle_timeout_s: $1
EOF
}
write_conf 600

# ---- socket activation ------------------------------------------------------------------------
check_eq "avatard.service is not running before the first connection" "inactive" \
        "$(systemctl is-active avatard.service)"
t0=$(test_now_ms)
out=$(as_user "$TUSER" bash -e "$TMP/readme-user.sh" 2>&1)
rc=$?
t1=$(test_now_ms)
check_eq "the README's steps after logging in again succeed as $TUSER (first answer in $((t1 - t0)) ms)" "0" "$rc"
check_match "avatarctl health answers the simulator's health" '"message":"ok"|Message: ok' "$out"
check_eq "it went upstream to avatar-sim" "1" "$(sim_count "GET /api/health")"
[ "$rc" -eq 0 ] || printf '#   %s\n' "$out"
check_eq "the first connection started avatard.service" "active" "$(systemctl is-active avatard.service)"
main=$(unit_prop avatard.service MainPID)
check_eq "avatard runs as the avatar user" "avatar" "$(ps -o user= -p "$main" | tr -d ' ')"
st=$(avatarctl --json status 2>&1)
check_match "the daemon adopted the socket of avatard.socket" \
        '"socket":"/run/avatard/avatard.sock","socket_activated":true' "$st"
check_match "the daemon read /etc/avatard/avatard.yaml" '"config":"/etc/avatard/avatard.yaml"' "$st"
check_match "the key comes from the systemd credential" '"source":"systemd credential api-key"' "$st"
check_no_match "the key is not in daemon.status" "$SIM_KEY" "$st"

# ---- a full avatarization ---------------------------------------------------------------------
home=$(getent passwd "$TUSER" | cut -d: -f6)
install -o "$TUSER" -m 0644 "$CSV" "$home/patients.csv"
out=$(as_user "$TUSER" avatarctl --json --timeout "$(scaled 300)" avatarize patients.csv --k 5 \
        --output patients-avatars/ 2>&1)
rc=$?
check_eq "avatarctl avatarize patients.csv --k 5 --output patients-avatars/ succeeds" "0" "$rc"
[ "$rc" -eq 0 ] || printf '#   %s\n' "$(head -c 2000 <<<"$out")"
check_match "the run went to the end" '"done":true' "$out"
check_eq "the five results are in files of $TUSER's" \
        "patients.privacy.json patients.report.pia.docx patients.shuffled-0.csv patients.signal.json report.pdf" \
        "$(cd "$home/patients-avatars" 2>/dev/null && printf '%s ' * | sed 's/ $//')"
check_eq "the avatars have the input's header" "$(head -n 1 "$CSV")" \
        "$(head -n 1 "$home/patients-avatars/patients.shuffled-0.csv" 2>/dev/null)"
RID=$(json_str runner_id "$out")
check "avatarize names its runner" test -n "$RID"

# ---- reload ----------------------------------------------------------------------------------
write_conf 321
check "systemctl reload with a good configuration succeeds" systemctl reload avatard.service
check_match "the new value is in use" '"idle_timeout_s":321' "$(avatarctl --json status 2>&1)"
pid_before=$(unit_prop avatard.service MainPID)
printf 'limits:\n  max_frame_bytes: 12\n' >/etc/avatard/avatard.yaml
check_fails "systemctl reload with a bad configuration fails" systemctl reload avatard.service
check_eq "the service is still active" "active" "$(systemctl is-active avatard.service)"
check_eq "by the same process" "$pid_before" "$(unit_prop avatard.service MainPID)"
st=$(avatarctl --json status 2>&1)
check_match "it still serves the old configuration" '"idle_timeout_s":321' "$st"
check_match "daemon.status says why the reload failed" '"last_error":"[^"]*max_frame_bytes' "$st"
check "and still answers" as_user "$TUSER" avatarctl ping
write_conf 321

# ---- stop keeps state, restart restores runners -------------------------------------------------
check "systemctl stop avatard stops the service" systemctl stop avatard.service
check_eq "the service is stopped" "inactive" "$(systemctl is-active avatard.service)"
check_eq "the socket stays" "active" "$(systemctl is-active avatard.socket)"
check_eq "/var/lib/avatard: avatar:avatar 0700" "700 avatar:avatar" "$(stat -c '%a %U:%G' /var/lib/avatard)"
check "the runner is kept in /var/lib/avatard" test -s "/var/lib/avatard/runners/$RID.json"
check_eq "the runner's file is the daemon's, 0600" "600 avatar" \
        "$(stat -c '%a %U' "/var/lib/avatard/runners/$RID.json" 2>&1)"
check_no_match "the state directory does not hold the key" "$SIM_KEY" "$(cat /var/lib/avatard/runners/* 2>&1)"
out=$(as_user "$TUSER" avatarctl --json runner list 2>&1)
check_match "a connection starts it again, and the runner is listed" "\"runner_id\":\"$RID\"" "$out"
check "systemctl restart avatard succeeds" systemctl restart avatard.service
out=$(as_user "$TUSER" avatarctl --json runner list 2>&1)
check_match "after a restart the runner is listed again" "\"runner_id\":\"$RID\"" "$out"

# ---- who may connect ----------------------------------------------------------------------------
out=$(as_user "$OUTSIDER" avatarctl health 2>&1)
rc=$?
check_eq "a user outside the avatar group is refused (exit 5, permission)" "5" "$rc"
check_match "with a clear permission error" "[Pp]ermission denied" "$out"
check "the service user can reach the socket's directory" runuser -u avatar -- test -x /run/avatard
check_fails "but cannot replace the socket (/run/avatard is not writable to it)" \
        runuser -u avatar -- test -w /run/avatard

# ---- the sandbox ------------------------------------------------------------------------------
sec=$(systemd-analyze security --no-pager avatard.service 2>&1)
exposure=$(grep -oE 'Overall exposure level for avatard.service: [0-9.]+' <<<"$sec" | grep -oE '[0-9.]+$')
echo "# systemd-analyze security avatard.service: exposure ${exposure:-?}"
check "systemd-analyze security: exposure ${exposure:-?} <= 2.0" \
        awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.0) }'

# ---- a broken configuration: start-limit-hit, and a waiting client told at once -------------------
# systemd 252 keeps the service's Result at the failure of its last run ("exit-code") when the
# start limit then refuses a start (systemd issue #32203): the socket unit's Result says it.
printf 'limits:\n  max_frame_bytes: 12\n' >/etc/avatard/avatard.yaml
t0=$(test_now_ms)
check_fails "systemctl restart with a broken configuration fails" systemctl restart avatard.service
check_eq "the daemon said so with exit status 78 (EX_CONFIG), which is not restarted" "78" \
        "$(unit_prop avatard.service ExecMainStatus)"
check_match "the journal says what is wrong" "max_frame_bytes" \
        "$(journalctl --no-pager -u avatard.service 2>&1 | tail -n 20)"
# a client that connects meanwhile: the socket starts the service for it again and again until
# the start limit trips, then the socket unit stops and the client is told
as_user "$TUSER" avatarctl --timeout 120 health >"$TMP/waiter.out" 2>&1 &
waiter=$!
tw=$(test_now_ms)
wait_for_exit 60 "$waiter"
t2=$(test_now_ms)
rc=0
if kill -0 "$waiter" 2>/dev/null; then
        fail "a client waiting on the socket is told within 60 s (it still waits)"
        kill "$waiter"
else
        wait "$waiter" || rc=$?
        echo "# a waiting client was answered after $((t2 - tw)) ms: exit $rc: $(head -c 300 "$TMP/waiter.out")"
        check "a client waiting on the socket gets an error ($((t2 - tw)) ms), not the timeout" \
                test "$rc" -ne 0 -a "$rc" -ne 4
fi
result_is() { [ "$(unit_prop "$1" Result)" = "$2" ]; }
check "the socket unit ends in result service-start-limit-hit" \
        wait_until 60 result_is avatard.socket service-start-limit-hit
t3=$(test_now_ms)
echo "# start-limit-hit $((t3 - t0)) ms after the restart with the broken configuration"
check_eq "the socket unit is failed" "failed" "$(systemctl is-active avatard.socket)"
check_eq "the service is failed" "failed" "$(systemctl is-active avatard.service)"
check_match "the service hit its start limit" "avatard.service: Start request repeated too quickly" \
        "$(journalctl --no-pager -u avatard.service 2>&1 | tail -n 20)"
check_fails "a start is refused while the limit holds" systemctl start avatard.service
t0=$(test_now_ms)
out=$(as_user "$TUSER" avatarctl --timeout 120 health 2>&1)
rc=$?
t1=$(test_now_ms)
check_eq "a new client is told at once that avatard is not running (exit 3, $((t1 - t0)) ms)" "3" "$rc"
echo "#   $out"
# the way back, as the README says
write_conf 321
check "after the fix, reset-failed and starting the socket bring it back" \
        systemctl reset-failed avatard.service avatard.socket
check "avatard.socket starts again" systemctl start avatard.socket
check "avatarctl health answers again" as_user "$TUSER" avatarctl health

done_now
