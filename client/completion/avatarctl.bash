# bash completion for avatarctl(1). The candidates come from avatarctl itself
# ("avatarctl __complete -- WORD..."): its commands and options as this build has them, and the
# daemon's runners (ids and display names) where a RUNNER goes.
# SPDX-License-Identifier: MIT

_avatarctl() {
        local cur=${COMP_WORDS[COMP_CWORD]} line IFS=$'\n'
        local -a words candidates=()

        words=("${COMP_WORDS[@]:1:COMP_CWORD}")
        while IFS= read -r line; do
                if [[ $line == __files__ ]]; then
                        compopt -o filenames 2>/dev/null
                        mapfile -t -O "${#candidates[@]}" candidates < <(compgen -f -- "$cur")
                else
                        candidates+=("$line")
                fi
        done < <("${COMP_WORDS[0]}" __complete -- "${words[@]}" 2>/dev/null)
        mapfile -t COMPREPLY < <(compgen -W "${candidates[*]}" -- "$cur")
}

complete -F _avatarctl avatarctl
