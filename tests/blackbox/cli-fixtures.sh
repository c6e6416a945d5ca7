# shellcheck shell=bash
# Helpers for the black-box tests of avatarctl as a person or a script uses it
# (test-cli-*.sh): the daemon against avatar-sim, avatarctl run with its stdout, stderr and
# exit status kept apart, or on a pseudo-terminal, and tables of CSV to avatarize. Sourced
# after lib.sh, sim-fixtures.sh and runner-fixtures.sh.

# cli_conf: the daemon's configuration for these tests (one poll a second, a health cache of
# a second) on stdout.
cli_conf() {
        cat <<CONF
log_level: debug
upstream:
  base_url: $SIM_URL
  max_attempts: 3
  retry_base_ms: 50
  retry_max_ms: 200
cache:
  jobs_ttl_s: 0
  health_ttl_s: 1
runners:
  poll_min_s: 1
  poll_max_s: 1
CONF
}

# cli_start [SIM-ARGS...]: avatar-sim (jobs stepping every 50 ms unless SIM-ARGS say
# otherwise) and avatard with cli_conf.
cli_start() {
        if [ $# -eq 0 ]; then
                set -- --job-step-ms 50
        fi
        start_sim --api-key "$SIM_KEY" "$@" || return 1
        cli_conf >"$CONF"
        export AVATAR_API_KEY="$SIM_KEY"
        start_daemon
}

# run_ctl ARGS...: avatarctl with stdin from /dev/null; $OUT (stdout), $ERR (stderr), $RC.
run_ctl() {
        "$AVATARCTL" "$@" >"$TMP/ctl.out" 2>"$TMP/ctl.err" </dev/null
        RC=$?
        OUT=$(cat "$TMP/ctl.out")
        ERR=$(cat "$TMP/ctl.err")
}

# tty_ctl ARGS...: avatarctl on a pseudo-terminal (stdout and stderr both), carriage returns
# kept; $OUT, $RC. TTY_SETUP (e.g. "stty cols 60;") runs first in the terminal.
TTY_SETUP=""
tty_ctl() {
        script -qec "${TTY_SETUP}$(printf '%q ' "$AVATARCTL" "$@")" /dev/null </dev/null >"$TMP/tty.out" 2>&1
        RC=$?
        OUT=$(cat "$TMP/tty.out")
}

# make_patients FILE ROWS: a table of patients (id, age, sex, weight).
make_patients() {
        awk -v n="$2" 'BEGIN {
                print "id,age,sex,weight"
                for (i = 1; i <= n; i++) printf "%d,%d,%s,%d\n", i, 20 + (i * 7) % 70, (i % 2) ? "F" : "M", 50 + (i * 13) % 60
        }' >"$1"
}

# make_visits FILE ROWS PATIENTS: a table of visits (visit_id, patient_id, ward, days).
make_visits() {
        awk -v n="$2" -v p="$3" 'BEGIN {
                split("cardio neuro ortho", w, " ")
                print "visit_id,patient_id,ward,days"
                for (i = 1; i <= n; i++) printf "%d,%d,%s,%d\n", i, 1 + (i * 5) % p, w[1 + i % 3], 1 + (i * 3) % 15
        }' >"$1"
}

# runners_named NAME: how many of the caller's runners have that display name.
runners_named() {
        "$AVATARCTL" --json runner list | grep -o "\"display_name\":\"$1\"" | wc -l
}
