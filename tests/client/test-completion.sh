#!/bin/bash
# SPDX-License-Identifier: MIT
# The bash completion of avatarctl (client/completion/avatarctl.bash) against fake-avatard:
# commands, subcommands, options, option values, files, and the daemon's runners where a
# RUNNER goes; and meson installs both completions where bash and zsh look.
# Usage: test-completion.sh AVATARCTL FAKE-AVATARD SOURCE_ROOT BUILD_ROOT
set -u

# shellcheck source=../lib/wait.sh
. "$(dirname "$0")/../lib/wait.sh"

ctl=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fake=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
src=$3
build=$4
dir=$(mktemp -d "${TMPDIR:-/tmp}/avatarctl-completion.XXXXXX")
sock=$dir/avatard.sock
failures=0
passes=0
fake_pid=

cleanup() {
        if [ -n "$fake_pid" ]; then
                kill "$fake_pid" 2>/dev/null
                wait "$fake_pid" 2>/dev/null
        fi
        rm -rf "$dir"
}
trap cleanup EXIT

# same WANT GOT WHAT: GOT is exactly WANT.
same() {
        if [ "$1" = "$2" ]; then
                passes=$((passes + 1))
        else
                printf 'FAIL: %s:\n  expected: %s\n  got:      %s\n' "$3" "$(tr '\n' ' ' <<<"$1")" "$(tr '\n' ' ' <<<"$2")"
                failures=$((failures + 1))
        fi
}

# has WORD TEXT WHAT: TEXT holds the line WORD.
has() {
        if grep -qxF -- "$1" <<<"$2"; then
                passes=$((passes + 1))
        else
                printf 'FAIL: %s: no line "%s" in: %s\n' "$3" "$1" "$(tr '\n' ' ' <<<"$2")"
                failures=$((failures + 1))
        fi
}

fake_listening() {
        [ -S "$sock" ] && return 0
        kill -0 "$fake_pid" 2>/dev/null || return "$WAIT_NEVER"
        return 1
}

"$fake" "$sock" &
fake_pid=$!
wait_until 20 fake_listening
[ -S "$sock" ] || { echo "fake-avatard did not start"; echo "RESULT: completion passed=0 failed=1"; exit 1; }
export AVATARD_SOCKET=$sock

# avatarctl as the shell finds it: on PATH.
mkdir -p "$dir/bin" "$dir/work"
ln -s "$ctl" "$dir/bin/avatarctl"
export PATH="$dir/bin:$PATH"
# shellcheck source=../../client/completion/avatarctl.bash
. "$src/client/completion/avatarctl.bash"
same "_avatarctl" "$(complete -p avatarctl | awk '{ print $3 }')" "the completion is registered for avatarctl"

# comp WORD...: what completes the last WORD of "avatarctl WORD...", sorted, one per line.
comp() {
        COMP_WORDS=(avatarctl "$@")
        COMP_CWORD=$#
        COMPREPLY=()
        _avatarctl
        printf '%s\n' "${COMPREPLY[@]}" | sort
}

same "runner
runs" "$(comp ru)" "commands"
same "status" "$(comp runner st)" "a group's subcommands"
same "delete
delete-link
delete-parameters
delete-table
download" "$(comp runner d)" "a group's subcommands, several"
same "delete" "$(comp jobs de)" "a command that is also a group"
same "--force
--format" "$(comp runner download --fo)" "options: the command's and the global ones"
same "--wait-timeout" "$(comp avatarize --wait)" "avatarize --wait-timeout, not the old spelling"
same "json" "$(comp --format j)" "--format's values"
same "json" "$(comp runner list --format j)" "--format's values after a command"
out=$(comp runner status '')
has "7c0a5a2e-2222-4b4b-9c9c-000000000002" "$out" "a RUNNER: the daemon's runner ids"
has "iris" "$out" "a RUNNER: the daemon's runners' display names"
same "7c0a5a2e-2222-4b4b-9c9c-000000000002" "$(comp avatarize --resume 7c)" "--resume: a runner id"
same "shuffled" "$(comp runner download iris shu)" "a RESULT"
same "standard" "$(comp runner run iris --jobs sta)" "--jobs: the jobs"
same "status" "$(comp help runner sta)" "help: the commands"
touch "$dir/work/patients.csv" "$dir/work/visits.csv"
same "$dir/work/patients.csv" "$(comp avatarize "$dir/work/pa")" "a FILE: file names"
same "$dir/work/visits.csv" "$(comp runner download iris shuffled -o "$dir/work/v")" "-o: file names"
same "" "$(comp runner bogus '')" "nothing after an unknown command"

# No daemon: commands and options still complete, runners do not (and nothing is printed).
same "status" "$(AVATARD_SOCKET=$dir/none.sock comp runner sta)" "without a daemon: subcommands"
same "" "$(AVATARD_SOCKET=$dir/none.sock comp runner status '' 2>&1)" "without a daemon: no runners, no error"

# zsh's: the same questions, and a script zsh reads.
grep -q '^#compdef avatarctl' "$src/client/completion/_avatarctl"
same 0 $? "the zsh completion declares itself for avatarctl"
grep -q '__complete --' "$src/client/completion/_avatarctl"
same 0 $? "the zsh completion asks avatarctl __complete"
if command -v zsh >/dev/null 2>&1; then
        zsh -n "$src/client/completion/_avatarctl"
        same 0 $? "zsh reads the completion"
fi

# Installed where bash-completion and zsh look, under the prefix's datadir.
if command -v meson >/dev/null 2>&1; then
        installed=$(meson introspect "$build" --installed 2>/dev/null)
        grep -q 'share/bash-completion/completions/avatarctl"' <<<"$installed"
        same 0 $? "meson installs the bash completion as share/bash-completion/completions/avatarctl"
        grep -q 'share/zsh/site-functions/_avatarctl"' <<<"$installed"
        same 0 $? "meson installs the zsh completion as share/zsh/site-functions/_avatarctl"
fi

echo "RESULT: completion passed=$passes failed=$failures"
[ "$failures" -eq 0 ]
