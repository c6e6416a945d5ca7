/* SPDX-License-Identifier: MIT */
/*
 * Listener: the daemon's listening sockets. Adopts the sockets systemd passes
 * (sd_listen_fds) or binds the configured path itself: under a tight umask, mode from
 * socket_mode, group from socket_group; refuses to start when a live daemon answers on the
 * path and removes a stale socket file. Accepts with accept4(SOCK_CLOEXEC|SOCK_NONBLOCK);
 * on EMFILE/ENFILE stops accepting for a second; over the connection caps answers one
 * "overloaded" error line and closes.
 */
#pragma once

#include <stdbool.h>

typedef struct Listener Listener;
typedef struct Server Server;

/* Creates the listening sockets for `s` and starts accepting. Returns 0 or -errno (logged). */
int listener_new(Server *s, Listener **ret);

/* Stops accepting and closes the sockets; removes a socket file it created. NULL-safe. */
Listener *listener_free(Listener *l);

/* Stops accepting (for a graceful stop) without freeing. */
void listener_stop(Listener *l);

/* The path served (the bound path, or the first adopted socket's path). */
const char *listener_path(const Listener *l);

/* Whether the sockets came from the service manager. */
bool listener_socket_activated(const Listener *l);
