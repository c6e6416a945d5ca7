/* SPDX-License-Identifier: MIT */
/*
 * Directories the daemon owns (the state directory, the socket's directory when it binds the
 * socket itself), created when missing.
 */
#pragma once

#include <sys/types.h>

/* Creates the absolute directory `path` with `mode` when it is missing, and its missing
 * parents with mode 0755; a parent can only be created where the daemon may write, so under
 * systemd (StateDirectory=, ProtectSystem=strict) nothing outside its own directories is. The
 * walk is done component by component with openat()/mkdirat() and O_NOFOLLOW: a symbolic link
 * on the way is followed only when root or the daemon's own user owns it, never one another
 * user could have planted. "." and ".." are refused. Returns 0, or -errno with a malloc'd
 * *ret_error (may be NULL on OOM) naming the component that failed and why. */
int dirs_make(const char *path, mode_t mode, char **ret_error);
