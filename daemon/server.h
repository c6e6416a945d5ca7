/* SPDX-License-Identifier: MIT */
/*
 * Server: the one event loop and everything hanging off it — configuration, listeners,
 * connected clients, the method dispatcher, signals, the watchdog and the graceful stop.
 * There is no global state: tests create a Server on their own event_base.
 *
 * Lifecycle: server_new() → server_start() (listen, READY=1) → event_base_dispatch() →
 * SIGTERM/SIGINT: server_stop() closes the listeners, sends STOPPING=1, refuses new
 * requests (shutting_down), ends the long waits at once (shutting_down, with how to attach
 * again), lets the other requests (uploads, downloads, short calls) finish until
 * limits.shutdown_timeout_s less the abort reserve (a quarter of it, at most 5 s), then
 * cancels those left and waits, for the rest of the budget, for the AbortMultipartUploads of
 * the uploads it cancelled to be answered; then leaves the loop → server_free().
 */
#pragma once

#include <event2/event.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "client.h"
#include "clock.h"
#include "config.h"
#include "core.h"
#include "jsonrpc.h"
#include "macro.h"

typedef struct Dispatch Dispatch;
typedef struct Listener Listener;
typedef struct Server Server;

typedef enum ServerState {
        SERVER_STARTING,
        SERVER_RUNNING,
        SERVER_DRAINING,
        SERVER_STOPPED,
        _SERVER_STATE_MAX,
        _SERVER_STATE_INVALID = -EINVAL,
} ServerState;

const char *server_state_to_string(ServerState s);

/* How the configuration is built, kept for reloads. */
typedef struct ServerOptions {
        const char *config_path;        /* NULL: the default path, which may be absent */
        bool config_optional;           /* a missing file is fine (the default path) */
        char *const *overrides;         /* NULL-terminated key, value, key, value, ... */
        char *const *envp;              /* environment to read AVATAR_* from; NULL: none */
} ServerOptions;

typedef struct UidCount {
        uid_t uid;
        unsigned count;
} UidCount;

TAILQ_HEAD(ClientList, Client);

/* The blocks of daemon.status kept as text while their figures are the same. */
typedef enum StatusMemo {
        STATUS_MEMO_LIMITS,
        STATUS_MEMO_ERRORS,
        STATUS_MEMO_CONFIGURATION,
        STATUS_MEMO_HTTP,
        STATUS_MEMO_API,
        STATUS_MEMO_CACHE,
        STATUS_MEMO_POLLER,
        STATUS_MEMO_STORAGE,
        STATUS_MEMO_RUNNERS,
        _STATUS_MEMO_MAX,
} StatusMemo;

struct Server {
        Core core;                     /* event base, configuration, services: what methods see */
        ServerOptions options;
        Dispatch *dispatch;
        Listener *listener;

        ClientHost client_host;        /* what every client gets; its counters */
        struct ClientList clients;
        unsigned n_clients;
        UidCount *uid_counts;
        size_t n_uid_counts;

        ServerState state;
        uint64_t start_usec;           /* CLOCK_MONOTONIC */
        uint64_t start_realtime_usec;
        unsigned max_connections;      /* config value clamped to what RLIMIT_NOFILE allows */
        uint64_t fd_limit;             /* descriptor numbers the connections may reach */
        int fd_slots;                  /* numbers below it have their libevent entry made */

        struct event *sig_term, *sig_int, *sig_hup;
        struct event *watchdog_timer;
        struct event *drain_timer;
        bool drain_aborting;           /* the last part of a stop: waiting for upload aborts */
        struct event *trim_timer;      /* gives freed heap back after many clients left */
        unsigned clients_peak;         /* most clients at once since the last trim */
        uint64_t trims;

        /* statistics (the clients add theirs to client_host.counters) */
        uint64_t connections_accepted;
        uint64_t connections_rejected;
        uint64_t reloads;
        uint64_t reload_failures;
        char *last_reload_error;

        /* daemon.status */
        pid_t pid;
        char *status_buf;              /* the last call's text buffer, for the next */
        size_t status_buf_cap;
        JsonTextMemo status_memos[_STATUS_MEMO_MAX]; /* blocks kept with their figures */
        char *proxy_text;              /* the proxy block's text for proxy_text_config */
        size_t proxy_text_len;
        const Config *proxy_text_config;
};

/* Builds the configuration from `opts` (defaults, environment, file, overrides) and the
 * server around it on `base` (borrowed; must outlive the server). Does not listen yet.
 * On a configuration error (the configuration, or the API key it names) returns -EINVAL and,
 * when ret_error is not NULL, a malloc'd one-line description; any other failure is another
 * -errno (with a description when there is one). */
int server_new(struct event_base *base, const ServerOptions *opts, Server **ret, char **ret_error);

/* Frees everything; NULL-safe; returns NULL. */
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);

/* Adopts systemd's sockets or binds the configured path, installs signal handlers and the
 * watchdog, raises RLIMIT_NOFILE, and sends READY=1. Returns 0 or -errno (logged). */
int server_start(Server *s);

/* Begins the graceful stop (idempotent). */
void server_stop(Server *s);

/* Re-reads the configuration. On success swaps it in and returns 0; on failure keeps the old
 * one, logs, stores the error for daemon.status, returns -EINVAL and (if ret_error) a
 * malloc'd description. */
int server_reload(Server *s, char **ret_error);
