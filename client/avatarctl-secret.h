/* SPDX-License-Identifier: MIT */
/*
 * avatarctl: reading passwords. A password never comes from the command line (other users
 * see argv in ps and /proc): it is typed on the terminal with echo off, or read from stdin.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Longest secret accepted, in bytes (the line terminator excluded). */
#define CTL_SECRET_MAX 4096u

/* Reads one line holding a secret from stdin. When stdin is a terminal, echo is off for the
 * read (and restored afterwards, also when SIGINT, SIGTERM, SIGHUP or SIGQUIT interrupt it),
 * and `prompt`, when not NULL, is written to stderr first; when stdin is not a terminal the
 * prompt is not written. Reads byte by byte, so the next call gets the next line. The line
 * ends at '\n' (a '\r' before it is dropped) or at the end of input.
 * Returns 0 with a malloc'd string in *ret (release it with erase_and_free()), -ENODATA when
 * the input ended before the first byte, -EFBIG when the line exceeds CTL_SECRET_MAX bytes,
 * -ENOMEM, or a read error. */
int ctl_read_secret(const char *prompt, char **ret);

/* read(2) that goes on after a signal (EINTR). Returns the bytes read (0 at the end), or a
 * negative errno. */
ssize_t ctl_read_retry(int fd, void *buf, size_t size);
