/* SPDX-License-Identifier: MIT */
/*
 * libavatar-client: talk to avatard, the Avatar API daemon, over its local Unix socket.
 *
 * Glossary:
 *   call          one JSON-RPC 2.0 request and its reply; avatar_client_call() sends the request
 *                 and blocks (with a timeout) until the reply with the same id arrives.
 *   notification  a message the daemon sends on its own (no id), e.g. "job.progress". It is
 *                 handed to the notification callback, or queued (bounded) when no callback
 *                 is set.
 *   descriptor    an open file passed with a request (SCM_RIGHTS); a param {"fd": N} names
 *                 the N-th descriptor passed with that call, 0-based.
 *
 * Conventions: functions that can fail return 0 (or a non-negative count) on success and a
 * negative errno on failure; out-params are named ret_* and are set only on success (error
 * details excepted, see avatar_client_call()). JSON values are json-c objects; a JSON null is
 * a NULL json_object pointer.
 *
 * An AvatarClient is not thread-safe: use one per thread, or serialize access. Callbacks run
 * inside avatar_client_call(), avatar_client_wait() and avatar_client_process(), and must not
 * call any of those three on the same client (they fail with -EBUSY).
 *
 * The library never changes signal dispositions: writes use MSG_NOSIGNAL, so a daemon that
 * goes away does not raise SIGPIPE.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AVATAR_CLIENT_EXPORT __attribute__((visibility("default")))

/* Where the daemon listens unless $AVATARD_SOCKET or an explicit path says otherwise. */
#define AVATAR_CLIENT_DEFAULT_SOCKET "/run/avatard/avatard.sock"

/* The environment variable that overrides the default socket path. */
#define AVATAR_CLIENT_SOCKET_ENV "AVATARD_SOCKET"

/* Largest reply line accepted by default, in bytes (terminator included). A longer line
 * fails the call with -EMSGSIZE and the connection becomes unusable. */
#define AVATAR_CLIENT_REPLY_MAX_DEFAULT (64u * 1024u * 1024u)

/* Notifications kept when no callback takes them; past this the oldest are dropped. */
#define AVATAR_CLIENT_NOTIFICATION_QUEUE_DEFAULT 1024u

/* Most descriptors one call may pass (the daemon refuses more). */
#define AVATAR_CLIENT_FDS_MAX 8u

typedef struct AvatarClient AvatarClient;

/* An error reply from the daemon. Initialize with AVATAR_CLIENT_ERROR_INIT (all zero) and
 * release with avatar_client_error_done(). */
typedef struct AvatarClientError {
        int code;           /* JSON-RPC error code (-32700..-32000), 0 when unset */
        char *message;      /* owned; the daemon's message, never NULL once set */
        char *name;         /* owned; the stable class name (data.name, or derived from the
                             * code), e.g. "not_found"; NULL when unknown */
        bool retryable;     /* data.retryable */
        json_object *data;  /* owned reference to error.data; NULL when absent */
} AvatarClientError;

#define AVATAR_CLIENT_ERROR_INIT { 0, NULL, NULL, false, NULL }

/* Called for each notification: `method` and `params` are borrowed for the duration of the
 * call (take a reference with json_object_get() to keep params); params may be NULL. */
typedef void (*avatar_client_notification_cb)(const char *method, json_object *params,
                                               void *userdata);

/* Connects to the daemon. `path` NULL means $AVATARD_SOCKET when set and not empty, else
 * AVATAR_CLIENT_DEFAULT_SOCKET. The socket is close-on-exec; all I/O is non-blocking with
 * poll() deadlines. The connect itself gives up after 10 s when the daemon's backlog is full.
 * Returns 0 and a new client in *ret, or a negative errno: -ENOENT (no socket at path),
 * -ECONNREFUSED (nobody listening), -EACCES (no permission), -ENAMETOOLONG (path does not fit
 * sockaddr_un), -ETIMEDOUT, -ENOMEM, ... */
AVATAR_CLIENT_EXPORT int avatar_client_connect(const char *path, AvatarClient **ret);

/* Wraps an already connected AF_UNIX stream socket (e.g. one end of a socketpair()).
 * Takes ownership of `fd` on success only; sets it non-blocking. Returns 0 or -EBADF,
 * -ENOMEM. */
AVATAR_CLIENT_EXPORT int avatar_client_connect_fd(int fd, AvatarClient **ret);

/* Closes the connection and frees the client, its queued notifications and buffers.
 * NULL-safe; returns NULL. */
AVATAR_CLIENT_EXPORT AvatarClient *avatar_client_free(AvatarClient *c);

/* Sets the largest reply line accepted (4 KiB .. 1 GiB; default
 * AVATAR_CLIENT_REPLY_MAX_DEFAULT). Only possible while no partial message is buffered, i.e.
 * right after connecting or between calls. Returns 0, -ERANGE, -EBUSY or -ENOMEM. */
AVATAR_CLIENT_EXPORT int avatar_client_set_max_reply_size(AvatarClient *c, size_t max);

/* Sets how many notifications are queued when no callback is set (at least 1; default
 * AVATAR_CLIENT_NOTIFICATION_QUEUE_DEFAULT). Excess queued ones are dropped, oldest first.
 * Returns 0 or -ERANGE. */
AVATAR_CLIENT_EXPORT int avatar_client_set_notification_queue_max(AvatarClient *c, size_t max);

/* Sets (or with cb NULL, clears) the notification callback. Notifications already queued
 * are handed to a new callback at the next call/wait/process. */
AVATAR_CLIENT_EXPORT void avatar_client_set_notification_callback(AvatarClient *c,
                                                                  avatar_client_notification_cb cb,
                                                                  void *userdata);

/* Calls `method` with `params` (borrowed; NULL sends no params; otherwise an object or an
 * array) and waits for the reply.
 * `fds`/`n_fds`: descriptors to pass with the request (borrowed, not closed; at most
 * AVATAR_CLIENT_FDS_MAX); params refer to them as {"fd": N}.
 * `timeout_ms`: deadline for the whole call, sending included; < 0 waits forever.
 * Notifications that arrive meanwhile go to the callback (or the queue) before this returns.
 * Returns:
 *   0            the daemon answered with a result: *ret_result (when not NULL) receives a
 *                new reference, NULL for a JSON null result;
 *   -EREMOTEIO   the daemon answered with an error: *ret_error (when not NULL) is filled
 *                (release it with avatar_client_error_done()). *ret_error must hold
 *                AVATAR_CLIENT_ERROR_INIT or an earlier error, which is released first;
 *                it is left alone on every other outcome;
 *   -ETIMEDOUT   no reply before the deadline (the connection stays usable; a late reply
 *                is recognized by its id and dropped);
 *   -ECONNRESET  the daemon closed the connection (possibly in the middle of the reply);
 *   -EBADMSG     the reply is not valid JSON-RPC;
 *   -EMSGSIZE    the reply exceeds the maximum reply size;
 *   -ENOTCONN    an earlier failure left the connection unusable;
 *   -EBUSY       called from inside a notification callback;
 *   -EINVAL, -EBADF, -E2BIG (too many descriptors), -ENOMEM, or another errno from the
 *                socket.
 * After -ECONNRESET, -EMSGSIZE, a socket error, or a failure with the request half sent,
 * further calls return -ENOTCONN: reconnect. After -ETIMEDOUT, -EBADMSG and -EREMOTEIO the
 * connection stays usable. */
AVATAR_CLIENT_EXPORT int avatar_client_call(AvatarClient *c, const char *method, json_object *params,
                                            const int *fds, size_t n_fds, int timeout_ms,
                                            json_object **ret_result, AvatarClientError *ret_error);

/* The same for programs that do not use json-c: `params_json` is JSON text (NULL: no
 * params); *ret_result_json (when not NULL) receives a malloc'd compact JSON text of the
 * result ("null" for a null result); the caller frees it. Returns what avatar_client_call()
 * returns, and -EINVAL when params_json is not valid JSON or not an object or array. */
AVATAR_CLIENT_EXPORT int avatar_client_call_json(AvatarClient *c, const char *method,
                                                 const char *params_json, const int *fds,
                                                 size_t n_fds, int timeout_ms,
                                                 char **ret_result_json,
                                                 AvatarClientError *ret_error);

/* Reads and dispatches notifications for up to `timeout_ms` (< 0: forever), until the
 * daemon closes the connection, or until the callback calls avatar_client_stop_wait().
 * Returns the number of notifications dispatched (or queued), or -ECONNRESET when the
 * daemon closed (after dispatching what arrived), -EBUSY, or another negative errno. */
AVATAR_CLIENT_EXPORT int avatar_client_wait(AvatarClient *c, int timeout_ms);

/* Makes the running avatar_client_wait() return once the current notification is handled.
 * Meant to be called from the notification callback. */
AVATAR_CLIENT_EXPORT void avatar_client_stop_wait(AvatarClient *c);

/* The connection's descriptor, for the caller's poll loop: when it is readable, call
 * avatar_client_process(). Borrowed: do not close it or read from it. */
AVATAR_CLIENT_EXPORT int avatar_client_fd(AvatarClient *c);

/* Handles whatever is readable without blocking: reads, dispatches notifications, drops
 * stray replies. Returns the number of notifications dispatched (or queued), -ECONNRESET
 * when the daemon closed, or another negative errno. */
AVATAR_CLIENT_EXPORT int avatar_client_process(AvatarClient *c);

/* Pops the oldest queued notification (queued when no callback was set). Returns 1 with
 * *ret_method (malloc'd, caller frees) and *ret_params (new reference or NULL) set, 0 when
 * the queue is empty. Either out-param may be NULL to discard that part. */
AVATAR_CLIENT_EXPORT int avatar_client_next_notification(AvatarClient *c, char **ret_method,
                                                         json_object **ret_params);

/* Number of notifications dropped because the queue was full, since connect. */
AVATAR_CLIENT_EXPORT uint64_t avatar_client_dropped_notifications(AvatarClient *c);

/* Releases the members of an error and resets it to AVATAR_CLIENT_ERROR_INIT; NULL-safe,
 * idempotent. */
AVATAR_CLIENT_EXPORT void avatar_client_error_done(AvatarClientError *e);

/* The error's class name ("not_found", "invalid_params", ...), or "unknown". Never NULL;
 * borrowed from e. */
AVATAR_CLIENT_EXPORT const char *avatar_client_error_name(const AvatarClientError *e);

/* error.data as compact JSON text. Returns 0 with a malloc'd string in *ret ("null" when
 * there is no data), or -ENOMEM. */
AVATAR_CLIENT_EXPORT int avatar_client_error_data_json(const AvatarClientError *e, char **ret);

#ifdef __cplusplus
}
#endif
