/* SPDX-License-Identifier: MIT */
/*
 * Listener: the daemon's listening sockets. Adopts the sockets systemd passes
 * (sd_listen_fds) or binds the configured path itself: under a tight umask, mode from
 * socket_mode, group from socket_group; refuses to start when a live daemon answers on the
 * path and removes a stale socket file. Accepts with accept4(SOCK_CLOEXEC|SOCK_NONBLOCK);
 * on EMFILE/ENFILE stops accepting for a second. Each accepted connection goes to the
 * owner's callback, which decides whether to serve it (the connection caps are the owner's);
 * one it refuses gets listener_reject().
 */
#pragma once

#include <event2/event.h>
#include <stdbool.h>

typedef struct Config Config;
typedef struct Listener Listener;

/* An accepted connection (nonblocking, close-on-exec); the callback owns fd. */
typedef void (*listener_accept_cb)(int fd, void *userdata);

/* Creates the listening sockets configured in `config` (socket_path, socket_mode,
 * socket_group; read now only) and starts accepting on `base`. Returns 0 or -errno (logged). */
int listener_new(struct event_base *base, const Config *config, listener_accept_cb cb, void *userdata,
                 Listener **ret);

/* Stops accepting and closes the sockets; removes a socket file it created. NULL-safe. */
Listener *listener_free(Listener *l);

/* Stops accepting (for a graceful stop) without freeing. */
void listener_stop(Listener *l);

/* The path served (the bound path, or the first adopted socket's path). */
const char *listener_path(const Listener *l);

/* Whether the sockets came from the service manager. */
bool listener_socket_activated(const Listener *l);

/* Answers a connection that is not served with one "overloaded" error line naming why, then
 * closes it. */
void listener_reject(int fd, const char *message);
