/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "api.h"
#include "build-config.h"
#include "cache.h"
#include "client.h"
#include "clock.h"
#include "core.h"
#include "credential.h"
#include "dirs.h"
#include "dispatch.h"
#include "jsonrpc.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "openrpc.h"
#include "poller.h"
#include "protocol.h"
#include "proxy.h"
#include "runner-uploads.h"
#include "runner.h"
#include "storage.h"
#include "server.h"
#include "upstream.h"

/* The OpenRPC document compiled in from proto/avatard.openrpc.json. */
extern const char openrpc_document_text[];
extern const size_t openrpc_document_text_len;

/* Blocks of at least this size get a mapping of their own (mallopt(M_MMAP_THRESHOLD)): glibc's
 * default before it starts moving the threshold. */
#define SERVER_MMAP_THRESHOLD (128 * 1024)

/* Descriptors kept back from the connection cap for listeners, upstream sockets, state
 * files and descriptors in transit. */
#define FD_RESERVE 256

static void server_update_status(Server *s);
static json_object *server_status_json(Server *s);

/* CoreOps: the server's side of what methods see (core.h). */
static json_object *core_status_json_cb(void *userdata) {
        return server_status_json(userdata);
}

static int core_reload_cb(void *userdata, char **ret_error) {
        return server_reload(userdata, ret_error);
}

static void core_status_changed_cb(void *userdata) {
        server_update_status(userdata);
}

static const CoreOps server_core_ops = {
        .status_json = core_status_json_cb,
        .reload = core_reload_cb,
        .status_changed = core_status_changed_cb,
};

static int client_attach_cb(void *userdata, Client *c);
static void client_detach_cb(void *userdata, Client *c);
static void server_on_idle(void *userdata);
static void server_on_accept(int fd, void *userdata);

static const ClientHostOps server_client_ops = {
        .attach = client_attach_cb,
        .detach = client_detach_cb,
};

static const char *const server_state_table[_SERVER_STATE_MAX] = {
        [SERVER_STARTING] = "starting",
        [SERVER_RUNNING] = "running",
        [SERVER_DRAINING] = "draining",
        [SERVER_STOPPED] = "stopped",
};

/* Returns the name of a state. */
const char *server_state_to_string(ServerState s) {
        if (s < 0 || s >= _SERVER_STATE_MAX)
                return NULL;
        return server_state_table[s];
}

/* Builds a complete configuration from the options: the file given, else the first of
 * $CONFIGURATION_DIRECTORY/avatard.yaml and the compiled default that exists, else none (said
 * in the journal, never silently). */
static int server_build_config(const ServerOptions *o, Config **ret, char **ret_error) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *found = NULL, *tried = NULL;
        ConfigError e = {};
        int r;

        r = config_new(&c);
        if (r < 0)
                return r;
        r = config_apply_env(c, o->envp, &e);
        if (r >= 0 && o->config_path)
                r = config_load_file(c, o->config_path, o->config_optional, &e);
        else if (r >= 0) {
                r = config_find_file(o->envp, &found, &tried);
                if (r >= 0 && found)
                        r = config_load_file(c, found, false, &e);
                else if (r >= 0)
                        log_notice("No configuration file found (tried %s): using the defaults and the environment.",
                                   strna(tried));
        }
        for (char *const *ov = o->overrides; r >= 0 && ov && ov[0] && ov[1]; ov += 2)
                r = config_set(c, ov[0], ov[1], &e);
        if (r >= 0)
                r = config_finalize(c, &e);
        if (r < 0) {
                if (ret_error)
                        *ret_error = e.message ? config_error_to_string(&e) : strdup(strerror(-r));
                config_error_done(&e);
                return r == -ENOMEM ? r : -EINVAL;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* The upstream client's options from the configuration. */
static void upstream_options_from(const Config *c, UpstreamOptions *o) {
        *o = (UpstreamOptions){
                .user_agent = config_user_agent(c),
                .verify_ssl = c->should_verify_ssl,
                .ca_file = c->ca_file,
                .allow_insecure_http = c->allow_insecure_http,
                .connect_timeout_ms = (uint64_t) c->connect_timeout_s * 1000,
                .request_timeout_ms = (uint64_t) c->timeout_s * 1000,
                .max_body_bytes = c->max_body_bytes,
                .max_network_attempts = c->max_attempts,
                .retry_base_ms = c->retry_base_ms,
                .retry_max_ms = c->retry_max_ms,
                /* 0 in the configuration means no 429 is waited out, not the default */
                .max_rate_limit_retries = c->rate_limit_retries ?: UPSTREAM_RETRIES_NONE,
                .max_retry_after_ms = (uint64_t) c->max_retry_after_s * 1000,
                .max_total_connections = c->upstream_max_connections,
                .max_host_connections = MAX(c->upstream_max_connections / 4, 1u),
                .breaker_threshold = c->breaker_threshold,
                .breaker_cooldown_ms = (uint64_t) c->breaker_cooldown_s * 1000,
                .http_proxy = config_proxy(c, "http"),
                .https_proxy = config_proxy(c, "https"),
                .no_proxy = config_no_proxy(c),
        };
}

/* The storage client's options from the configuration. */
static void storage_options_from(const Config *c, StorageOptions *o) {
        *o = (StorageOptions){
                .endpoint_url = c->storage_url,
                .region = c->storage_region,   /* NULL: the storage client's us-east-1 */
                .multipart_threshold = c->multipart_threshold_bytes,
                .part_size = c->multipart_part_bytes,
                .timeout_ms = (uint64_t) c->timeout_s * 1000,
                .concurrency = c->transfer_concurrency,
        };
}

/* Loads the credential for config c. Returns 0 with *ret (possibly of kind NONE) or -errno
 * with a description in *ret_error. */
static int server_load_credential(const Server *s, const Config *c, Credential **ret, char **ret_error) {
        _cleanup_free_ char *err = NULL;
        int r;

        r = credential_load(c, s->options.envp, ret, &err);
        if (r < 0 && ret_error) {
                if (asprintf(ret_error, "cannot load the API key: %s", err ?: strerror(-r)) < 0)
                        *ret_error = NULL;
        }
        return r;
}

/* Creates the server and its configuration. */
int server_new(struct event_base *base, const ServerOptions *opts, Server **ret, char **ret_error) {
        _cleanup_(server_freep) Server *s = NULL;
        const char *err = NULL;
        int r;

        s = calloc(1, sizeof(Server));
        if (!s)
                return -ENOMEM;
        s->core.base = base;
        s->core.ops = &server_core_ops;
        s->core.userdata = s;
        s->client_host = (ClientHost){ .core = &s->core, .ops = &server_client_ops, .userdata = s, .hangup_fd = -1 };
        s->options = *opts;
        s->state = SERVER_STARTING;
        s->start_usec = now_usec();
        s->pid = getpid();
        s->start_realtime_usec = now_realtime_usec();
        TAILQ_INIT(&s->clients);

        r = server_build_config(opts, &s->core.config, ret_error);
        if (r < 0)
                return r;
        log_set_max_level(s->core.config->log_level);
        s->max_connections = s->core.config->max_connections;

        r = openrpc_load(openrpc_document_text, openrpc_document_text_len, &s->core.openrpc, &err);
        if (r < 0) {
                if (ret_error)
                        *ret_error = strdup(err ?: "the built-in OpenRPC document is invalid");
                /* -EINVAL is kept for the administrator's mistakes */
                return r == -EINVAL ? -EPROTO : r;
        }
        {
                UpstreamOptions uo;
                Credential *cred = NULL;

                upstream_options_from(s->core.config, &uo);
                r = upstream_new(base, &uo, &s->core.upstream);
                if (r < 0) {
                        if (ret_error && asprintf(ret_error, "cannot set up the upstream client: %s", strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
                r = api_new(base, s->core.upstream, s->core.config, &s->core.api);
                if (r < 0)
                        return r;
                r = cache_new(s->core.api, &s->core.cache);
                if (r < 0)
                        return r;
                r = poller_new(base, s->core.api, s->core.cache, s->core.config, &s->core.poller);
                if (r < 0)
                        return r;
                {
                        StorageOptions so;

                        storage_options_from(s->core.config, &so);
                        r = storage_new(base, s->core.upstream, &so, &s->core.storage);
                        if (r < 0)
                                return r;
                }
                r = server_load_credential(s, s->core.config, &cred, ret_error);
                if (r < 0)
                        return -EINVAL;
                api_set_credential(s->core.api, cred);
        }
        r = dispatch_new(&s->core, s->core.openrpc, server_on_idle, s, &s->dispatch, &err);
        if (r < 0) {
                if (ret_error && asprintf(ret_error, "method '%s' lacks a handler or a description",
                                          strna(err)) < 0)
                        *ret_error = NULL;
                return r == -EINVAL ? -EPROTO : r;
        }
        s->client_host.dispatch = s->dispatch;
        /* without it a closed connection is noticed at the next read or write only */
        (void) client_host_start(&s->client_host);
        *ret = TAKE_PTR(s);
        return 0;
}

/* Frees the server. */
Server *server_free(Server *s) {
        Client *c;

        if (!s)
                return NULL;
        s->state = SERVER_STOPPED;
        if (s->dispatch)
                dispatch_stop(s->dispatch);
        while ((c = TAILQ_FIRST(&s->clients)))
                client_disconnect(c, "daemon stopped");
        client_host_done(&s->client_host);
        listener_free(s->listener);
        runners_free(s->core.runners);
        storage_free(s->core.storage);
        poller_free(s->core.poller);
        cache_free(s->core.cache);
        api_free(s->core.api);
        upstream_free(s->core.upstream);
        dispatch_free(s->dispatch);
        openrpc_free(s->core.openrpc);
        config_free(s->core.config);
        if (s->sig_term)
                event_free(s->sig_term);
        if (s->sig_int)
                event_free(s->sig_int);
        if (s->sig_hup)
                event_free(s->sig_hup);
        if (s->watchdog_timer)
                event_free(s->watchdog_timer);
        if (s->drain_timer)
                event_free(s->drain_timer);
        if (s->trim_timer)
                event_free(s->trim_timer);
        free(s->uid_counts);
        free(s->proxy_text);
        free(s->status_buf);
        for (size_t i = 0; i < ELEMENTSOF(s->status_memos); i++)
                json_text_memo_done(&s->status_memos[i]);
        free(s->last_reload_error);
        free(s);
        return NULL;
}

/* Raises the soft descriptor limit to the hard limit and sizes the connection cap from it. */
static void server_raise_nofile(Server *s) {
        struct rlimit rl;

        s->fd_limit = (uint64_t) s->core.config->max_connections + FD_RESERVE;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (rl.rlim_cur < rl.rlim_max) {
                rlim_t old = rl.rlim_cur;

                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                        log_debug_errno(errno, "Failed to raise RLIMIT_NOFILE, ignoring: %m");
                        rl.rlim_cur = old;
                }
        }
        s->fd_limit = (uint64_t) s->core.config->max_connections + FD_RESERVE;
        if (rl.rlim_cur != RLIM_INFINITY)
                s->fd_limit = MIN(s->fd_limit, (uint64_t) rl.rlim_cur);
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > FD_RESERVE &&
            rl.rlim_cur - FD_RESERVE < s->core.config->max_connections) {
                s->max_connections = (unsigned) (rl.rlim_cur - FD_RESERVE);
                log_notice("Limiting connections to %u (RLIMIT_NOFILE is %llu).", s->max_connections,
                           (unsigned long long) rl.rlim_cur);
        } else
                s->max_connections = s->core.config->max_connections;
}

/* SIGTERM/SIGINT: graceful stop. */
static void on_stop_signal(evutil_socket_t sig, short what, void *userdata) {
        Server *s = userdata;

        (void) what;
        log_info("Received %s, stopping.", sig == SIGINT ? "SIGINT" : "SIGTERM");
        server_stop(s);
}

/* SIGHUP: reload. */
static void on_hup(evutil_socket_t sig, short what, void *userdata) {
        (void) sig;
        (void) what;
        log_info("Received SIGHUP, reloading the configuration.");
        (void) server_reload(userdata, NULL);
}

/* Watchdog ping from the loop: proves the loop turns. */
static void on_watchdog(evutil_socket_t fd, short what, void *userdata) {
        (void) fd;
        (void) what;
        (void) userdata;
        notify_watchdog();
}

/* The part of limits.shutdown_timeout_s kept, at the end of a stop, for the aborts of the
 * multipart uploads it cancels: a quarter, at most DRAIN_ABORT_MAX_USEC. */
#define DRAIN_ABORT_MAX_USEC (5 * USEC_PER_SEC)
static uint64_t drain_abort_usec(const Server *s) {
        return MIN((uint64_t) s->core.config->shutdown_timeout_s * USEC_PER_SEC / 4, DRAIN_ABORT_MAX_USEC);
}

/* Leaves the loop: the stop is over. */
static void server_leave(Server *s) {
        s->state = SERVER_STOPPED;
        event_del(s->drain_timer);
        storage_on_drained(s->core.storage, NULL, NULL);
        event_base_loopexit(s->core.base, NULL);
}

/* The last detached upload abort was answered. */
static void server_on_aborts_answered(void *userdata) {
        Server *s = userdata;

        log_info("The aborted uploads were cleaned up on the storage.");
        server_leave(s);
}

/* The requests are done (or cancelled): leave once the aborts of the uploads cancelled are
 * answered, waiting for them at most the abort reserve. Idempotent. */
static void server_finish_drain(Server *s) {
        unsigned n = storage_pending_aborts(s->core.storage);

        if (s->drain_aborting || s->state != SERVER_DRAINING)
                return;
        s->drain_aborting = true;
        if (n == 0) {
                server_leave(s);
                return;
        }
        log_info("Waiting up to %" PRIu64 " ms for %u multipart upload abort(s).", drain_abort_usec(s) / USEC_PER_MSEC, n);
        notify_status("Stopping: waiting for %u upload abort(s)", n);
        storage_on_drained(s->core.storage, server_on_aborts_answered, s);
        event_del(s->drain_timer);
        {
                struct timeval tv = usec_to_timeval(drain_abort_usec(s));

                evtimer_add(s->drain_timer, &tv);
        }
}

/* The drain deadline passed: cancel the requests still in flight (their uploads are aborted),
 * then wait for the aborts; or, that wait over too, leave the loop. */
static void on_drain_deadline(evutil_socket_t fd, short what, void *userdata) {
        Server *s = userdata;
        Client *c, *next;

        (void) fd;
        (void) what;
        if (s->drain_aborting) {
                log_warning("Stopping with %u multipart upload abort(s) unanswered.",
                            storage_pending_aborts(s->core.storage));
                server_leave(s);
                return;
        }
        log_warning("Cancelling %u request(s) still in flight after %" PRIu64 " ms of the %us to stop.",
                    dispatch_inflight(s->dispatch),
                    ((uint64_t) s->core.config->shutdown_timeout_s * USEC_PER_SEC - drain_abort_usec(s)) / USEC_PER_MSEC,
                    s->core.config->shutdown_timeout_s);
        for (c = TAILQ_FIRST(&s->clients); c; c = next) {
                next = TAILQ_NEXT(c, link);
                dispatch_cancel_peer(&c->peer);
        }
        /* calls that cannot be cancelled are left behind */
        server_finish_drain(s);
}

/* Whether connections (or the input they held) dropped enough since the last trim for the
 * heap to be worth trimming: the last client left, or at least TRIM_CLIENTS_DROP of them and
 * half of the peak went, or TRIM_BUFFERED_DROP bytes of input were let go. */
#define TRIM_CLIENTS_DROP 64u
#define TRIM_BUFFERED_DROP (8u * 1024u * 1024u)
static bool server_trim_due(const Server *s) {
        const ClientHost *h = &s->client_host;

        return s->n_clients == 0 ||
               (s->clients_peak - s->n_clients >= TRIM_CLIENTS_DROP && s->n_clients <= s->clients_peak / 2) ||
               h->buffered_peak - h->buffered_bytes >= TRIM_BUFFERED_DROP;
}

/* The heap trim timer: connections went: give the memory they held back to the system. */
static void on_trim(evutil_socket_t fd, short what, void *userdata) {
        Server *s = userdata;

        (void) fd;
        (void) what;
        if (!server_trim_due(s))
                return;
        (void) malloc_trim(0);
        s->trims++;
        s->clients_peak = s->n_clients;
        s->client_host.buffered_peak = s->client_host.buffered_bytes;
}

/* Schedules a heap trim two seconds after enough connections left (a trim already armed is
 * kept, so that clients coming and going all the time cannot put it off forever). */
static void server_schedule_trim(Server *s) {
        struct timeval tv = { .tv_sec = 2 };

        if (s->trim_timer && s->state == SERVER_RUNNING && server_trim_due(s) &&
            !evtimer_pending(s->trim_timer, NULL))
                evtimer_add(s->trim_timer, &tv);
}

/* Descriptor numbers whose libevent slot is made ahead (server_reserve_fd_slots()): at start,
 * and each time accepted descriptors come near the end of what is reserved. */
#define FD_SLOTS_INITIAL 1024
#define FD_SLOTS_MAX (64 * 1024)

/* The callback of the reserving event (never run: the event is removed at once). */
static void on_reserved_slot(evutil_socket_t fd, short what, void *userdata) {
        (void) fd;
        (void) what;
        (void) userdata;
}

/* libevent keeps a small entry for every descriptor number it has watched, made the first
 * time the number is seen and never freed. Made in the middle of a burst of connections, these
 * entries sit between the connections' buffers, and once the connections are gone each of them
 * keeps a page of the heap that malloc_trim() cannot give back (4,000 connections left 5 MiB
 * behind). So they are made ahead, together, for the numbers below `upto`: a descriptor (an
 * eventfd, duplicated to a free number, never over one in use) is added and removed once. */
static void server_reserve_fd_slots(Server *s, int upto) {
        _cleanup_close_ int efd = -EBADF;
        struct event *ev;

        upto = MIN(upto, (int) MIN(s->fd_limit, (uint64_t) FD_SLOTS_MAX));
        if (upto <= s->fd_slots)
                return;
        efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd < 0)
                return;
        ev = event_new(s->core.base, -1, 0, NULL, NULL);
        if (!ev)
                return;
        for (int n = s->fd_slots; n < upto;) {
                /* the lowest free number from n on: never one in use */
                int fd = fcntl(efd, F_DUPFD_CLOEXEC, n);

                if (fd < 0 || fd >= upto) {
                        safe_close(fd);
                        break;
                }
                if (event_assign(ev, s->core.base, fd, EV_READ, on_reserved_slot, NULL) == 0 &&
                    event_add(ev, NULL) == 0)
                        (void) event_del(ev);
                safe_close(fd);
                n = fd + 1;
        }
        event_free(ev);
        s->fd_slots = upto;
}

/* Starts serving. */
int server_start(Server *s) {
        struct sigaction sa = { .sa_handler = SIG_IGN };
        uint64_t watchdog_usec;
        int r;

        /* CURLOPT_NOSIGNAL stops libcurl from ignoring SIGPIPE for us, and clients vanish */
        (void) sigaction(SIGPIPE, &sa, NULL);
        /* a fixed threshold: large blocks (the buffers of long request lines) are always mapped
         * on their own and unmapped when freed; glibc's moving threshold would otherwise put
         * them on the heap after the first one was freed, where a flood of connections leaves
         * the memory behind */
        (void) mallopt(M_MMAP_THRESHOLD, SERVER_MMAP_THRESHOLD);
        server_raise_nofile(s);
        server_reserve_fd_slots(s, FD_SLOTS_INITIAL);

        {
                _cleanup_free_ char *why = NULL;

                r = dirs_make(s->core.config->state_directory, 0700, &why);
                if (r < 0)
                        return log_error_errno(r, "Cannot create the state directory '%s': %s. Create it for the "
                                               "daemon's user, or set StateDirectory= in the unit, --state-directory "
                                               "or state_directory: in the configuration.",
                                               s->core.config->state_directory, why ?: strerror(-r));
        }
        r = runners_new(s->core.poller, s->core.config->state_directory, &s->core.runners);
        if (r < 0)
                return r;
        r = runners_set_event_base(s->core.runners, s->core.base);
        if (r < 0)
                return log_oom();
        r = listener_new(s->core.base, s->core.config, server_on_accept, s, &s->listener);
        if (r < 0)
                return r;

        s->sig_term = evsignal_new(s->core.base, SIGTERM, on_stop_signal, s);
        s->sig_int = evsignal_new(s->core.base, SIGINT, on_stop_signal, s);
        s->sig_hup = evsignal_new(s->core.base, SIGHUP, on_hup, s);
        s->drain_timer = evtimer_new(s->core.base, on_drain_deadline, s);
        s->trim_timer = evtimer_new(s->core.base, on_trim, s);
        if (!s->sig_term || !s->sig_int || !s->sig_hup || !s->drain_timer || !s->trim_timer ||
            evsignal_add(s->sig_term, NULL) < 0 || evsignal_add(s->sig_int, NULL) < 0 ||
            evsignal_add(s->sig_hup, NULL) < 0)
                return log_oom();

        watchdog_usec = notify_watchdog_usec();
        if (watchdog_usec > 0) {
                struct timeval tv = {
                        .tv_sec = (time_t) (watchdog_usec / 2 / USEC_PER_SEC),
                        .tv_usec = (suseconds_t) (watchdog_usec / 2 % USEC_PER_SEC),
                };

                s->watchdog_timer = event_new(s->core.base, -1, EV_PERSIST, on_watchdog, s);
                if (!s->watchdog_timer || event_add(s->watchdog_timer, &tv) < 0)
                        return log_oom();
                log_debug("Watchdog enabled: pinging every %" PRIu64 " ms.", watchdog_usec / 2 / 1000);
        }

        {
                const Credential *cred = api_get_credential(s->core.api);

                if (cred && cred->kind != CREDENTIAL_NONE)
                        log_info("Upstream %s with an API key from %s.", s->core.config->api_url, strna(cred->source));
                else
                        log_warning("No Avatar API key found (systemd credential api-key, upstream.api_key_file, "
                                    "AVATAR_API_KEY): upstream calls fail until one is given or manager.authenticate "
                                    "is called.");
        }
        {
                const char *proxy = NULL;
                _cleanup_free_ char *m = NULL;

                if (proxy_pick_url(config_proxy(s->core.config, "http"), config_proxy(s->core.config, "https"),
                                   config_no_proxy(s->core.config), s->core.config->api_url, &proxy) >= 0 && proxy &&
                    (m = proxy_mask(proxy)))
                        log_info("Upstream requests go through the proxy %s (from the %s).", m,
                                 streq(config_proxy_source(s->core.config), "config") ? "configuration" : "environment");
        }
        api_compat_check(s->core.api);
        /* the multipart uploads a killed daemon left upstream (runner-uploads.h) */
        if (runners_abort_uploads(s->core.runners, s->core.api, s->core.storage, s->core.config->api_url, NULL, NULL,
                                  NULL) < 0)
                return log_oom();

        s->state = SERVER_RUNNING;
        server_update_status(s);
        notify_ready();
        log_info("avatard " AVATARD_VERSION " ready (protocol %d, pid %d).", PROTOCOL_VERSION, (int) getpid());
        return 0;
}

/* Begins the graceful stop. */
void server_stop(Server *s) {
        Client *c, *next;

        if (s->state == SERVER_DRAINING || s->state == SERVER_STOPPED)
                return;
        s->state = SERVER_DRAINING;
        dispatch_stop(s->dispatch);
        notify_stopping();
        listener_stop(s->listener);

        /* long waits (runner.wait, watches) end now with shutting_down; the rest may finish */
        for (c = TAILQ_FIRST(&s->clients); c; c = next) {
                next = TAILQ_NEXT(c, link);
                dispatch_cancel_peer_waits(&c->peer);
        }

        if (s->state != SERVER_DRAINING || s->drain_aborting)
                return; /* the last wait's end finished the drain already */
        if (dispatch_inflight(s->dispatch) == 0) {
                server_finish_drain(s);
                return;
        }
        log_info("Waiting up to %us for %u request(s) in flight.", s->core.config->shutdown_timeout_s,
                 dispatch_inflight(s->dispatch));
        notify_status("Stopping: waiting for %u request(s)", dispatch_inflight(s->dispatch));
        {
                struct timeval tv = usec_to_timeval((uint64_t) s->core.config->shutdown_timeout_s * USEC_PER_SEC -
                                                    drain_abort_usec(s));

                evtimer_add(s->drain_timer, &tv);
        }
}

/* Dispatch's idle callback: once a drain has no more calls in flight, it ends (after the
 * aborts of the uploads it cancelled). */
static void server_on_idle(void *userdata) {
        Server *s = userdata;

        if (s->state != SERVER_DRAINING || dispatch_inflight(s->dispatch) > 0)
                return;
        log_info("All requests finished.");
        server_finish_drain(s);
}

/* Ends a reload whose configuration was rejected, the current one staying in force: counts
 * and logs the failure, keeps its description (taken, may be NULL) for daemon.status and
 * ret_error, and tells systemd the reload is over. Returns -EINVAL. */
static int server_reload_rejected(Server *s, char *error, char **ret_error) {
        _cleanup_free_ char *err = error;

        s->reload_failures++;
        log_error("Configuration rejected, keeping the current one: %s", strna(err));
        free(s->last_reload_error);
        s->last_reload_error = err ? strdup(err) : NULL;
        notify_ready();
        server_update_status(s);
        if (ret_error)
                *ret_error = TAKE_PTR(err);
        return -EINVAL;
}

/* Re-reads the configuration. */
int server_reload(Server *s, char **ret_error) {
        _cleanup_free_ char *err = NULL;
        Config *n = NULL;
        int r;

        notify_reloading();
        r = server_build_config(&s->options, &n, &err);
        if (r < 0)
                return server_reload_rejected(s, TAKE_PTR(err), ret_error);
        {
                Credential *cred = NULL;
                const Credential *cur = api_get_credential(s->core.api);
                UpstreamOptions uo;

                r = server_load_credential(s, n, &cred, &err);
                if (r < 0) {
                        config_free(n);
                        return server_reload_rejected(s, TAKE_PTR(err), ret_error);
                }
                upstream_options_from(n, &uo);
                r = upstream_set_options(s->core.upstream, &uo);
                if (r < 0) {
                        credential_free(cred);
                        config_free(n);
                        if (asprintf(&err, "cannot apply the upstream options: %s", strerror(-r)) < 0)
                                err = NULL;
                        return server_reload_rejected(s, TAKE_PTR(err), ret_error);
                }
                /* a key only the environment held, or a login session, outlives reloads */
                if (cred->kind == CREDENTIAL_NONE && cur && cur->kind != CREDENTIAL_NONE)
                        credential_free(cred);
                else {
                        if (!cur || cred->kind != cur->kind || !streq_ptr(cred->source, cur->source))
                                log_info("Credential: %s from %s.", credential_kind_to_string(cred->kind), strna(cred->source));
                        api_set_credential(s->core.api, cred);
                }
        }
        if (!streq(n->socket_path, s->core.config->socket_path))
                log_notice("The socket path changed to '%s'; it takes effect at the next start.",
                           n->socket_path);
        if (n->max_frame_bytes != s->core.config->max_frame_bytes)
                log_notice("limits.max_frame_bytes applies to new connections.");

        api_set_config(s->core.api, n);
        poller_set_config(s->core.poller, n);
        {
                StorageOptions so;

                storage_options_from(n, &so);
                (void) storage_set_options(s->core.storage, &so);
        }
        config_free(s->core.config);
        s->core.config = n;
        s->proxy_text = mfree(s->proxy_text);
        s->proxy_text_config = NULL;
        log_set_max_level(n->log_level);
        /* SIGHUP also refreshes the compatibility answer */
        api_compat_invalidate(s->core.api);
        api_compat_check(s->core.api);
        server_raise_nofile(s);
        s->reloads++;
        s->last_reload_error = mfree(s->last_reload_error);
        log_info("Configuration reloaded%s%s.", n->source ? " from " : "", n->source ?: "");
        notify_ready();
        server_update_status(s);
        return 0;
}

/* Sends the one-line status. */
static void server_update_status(Server *s) {
        if (s->state != SERVER_RUNNING)
                return;
        const Credential *cred = api_get_credential(s->core.api);

        notify_status("Serving %u connection(s) on %s; upstream %s: %s; credential: %s",
                      s->n_clients, strna(listener_path(s->listener)), s->core.config->api_url,
                      compat_status_to_string(api_compat_status(s->core.api)),
                      cred ? credential_kind_to_string(cred->kind) : "none");
}

/* Finds the slot of a uid in the per-uid table. */
static UidCount *uid_slot(const Server *s, uid_t uid) {
        for (size_t i = 0; i < s->n_uid_counts; i++)
                if (s->uid_counts[i].uid == uid)
                        return &s->uid_counts[i];
        return NULL;
}

/* Counts a new connection of uid. */
static int server_uid_ref(Server *s, uid_t uid) {
        UidCount *u = uid_slot(s, uid);

        if (!u) {
                UidCount *n = reallocarray(s->uid_counts, s->n_uid_counts + 1, sizeof(UidCount));

                if (!n)
                        return -ENOMEM;
                s->uid_counts = n;
                u = &s->uid_counts[s->n_uid_counts++];
                *u = (UidCount){ .uid = uid };
        }
        u->count++;
        return 0;
}

/* Uncounts a connection of uid (the slot goes when it reaches zero). */
static void server_uid_unref(Server *s, uid_t uid) {
        UidCount *u = uid_slot(s, uid);

        if (!u)
                return;
        if (--u->count == 0) {
                *u = s->uid_counts[--s->n_uid_counts];
        }
}

/* Connections of uid. */
static unsigned server_uid_count(const Server *s, uid_t uid) {
        const UidCount *u = uid_slot(s, uid);

        return u ? u->count : 0;
}

/* ClientHostOps.attach: counts and lists a new client. */
static int client_attach_cb(void *userdata, Client *c) {
        Server *s = userdata;
        int r;

        r = server_uid_ref(s, c->peer.cred.uid);
        if (r < 0)
                return r;
        TAILQ_INSERT_TAIL(&s->clients, c, link);
        s->n_clients++;
        s->clients_peak = MAX(s->clients_peak, s->n_clients);
        return 0;
}

/* ClientHostOps.detach: a client closed. */
static void client_detach_cb(void *userdata, Client *c) {
        Server *s = userdata;

        TAILQ_REMOVE(&s->clients, c, link);
        s->n_clients--;
        server_uid_unref(s, c->peer.cred.uid);
        server_update_status(s);
        server_schedule_trim(s);
}

/* The listener accepted a connection: serve it unless the daemon stops or a cap is reached. */
static void server_on_accept(int fd, void *userdata) {
        Server *s = userdata;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int r;

        if (s->state != SERVER_RUNNING) {
                listener_reject(fd, "The daemon is stopping");
                return;
        }
        if (s->n_clients >= s->max_connections) {
                s->connections_rejected++;
                log_warning("Connection limit (%u) reached, refusing a connection.", s->max_connections);
                listener_reject(fd, "Too many connections");
                return;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
            server_uid_count(s, cred.uid) >= s->core.config->max_connections_per_uid) {
                s->connections_rejected++;
                log_warning("Connection limit per user (%u) reached for uid %u, refusing a connection.",
                            s->core.config->max_connections_per_uid, (unsigned) cred.uid);
                listener_reject(fd, "Too many connections for this user");
                return;
        }
        /* the descriptors come near the end of the numbers reserved: reserve twice as many */
        if (fd >= s->fd_slots - s->fd_slots / 4)
                server_reserve_fd_slots(s, MAX(s->fd_slots, FD_SLOTS_INITIAL) * 2);
        r = client_new(&s->client_host, fd, NULL);
        if (r < 0) {
                log_warning_errno(r, "Failed to set up a connection, ignoring: %m");
                return;
        }
        s->connections_accepted++;
}

/* The proxy of a URL for daemon.status: masked, or null when the URL is reached directly. */
static json_object *proxy_url_json(const Config *c, const char *url) {
        _cleanup_free_ char *m = NULL;
        const char *p = NULL;

        if (proxy_pick_url(config_proxy(c, "http"), config_proxy(c, "https"), config_no_proxy(c), url, &p) < 0 || !p)
                return NULL;
        m = proxy_mask(p);
        return m ? json_object_new_string(m) : NULL;
}

/* The proxy block of daemon.status: the proxy each upstream goes through (credentials masked),
 * where the setting comes from, and no_proxy. */
static json_object *server_proxy_json(const Config *c) {
        json_object *o = json_object_new_object();
        const char *source = config_proxy_source(c), *var = NULL, *no_proxy = config_no_proxy(c);

        json_object_object_add(o, "api", proxy_url_json(c, c->api_url));
        json_object_object_add(o, "storage", proxy_url_json(c, c->storage_url));
        json_object_object_add(o, "source", json_object_new_string(source));
        if (streq(source, "environment"))
                /* the variable that gives the API's proxy */
                var = strncasecmp(c->api_url, "https:", 6) == 0 ? c->env_https_proxy_var : c->env_http_proxy_var;
        json_object_object_add(o, "variable", var ? json_object_new_string(var) : NULL);
        json_object_object_add(o, "no_proxy", no_proxy ? json_object_new_string(no_proxy) : NULL);
        json_object_object_add(o, "no_proxy_source",
                               json_object_new_string(c->no_proxy ? "config" : c->env_no_proxy ? c->env_no_proxy_var : "none"));
        return o;
}

/* ---- daemon.status as text ----
 * daemon.status is written straight to text, in the order and form the object it replaces had
 * (tests/blackbox/test-status-shape holds it to that object's golden shape): the daemon's own
 * counters and every other module's block written as text into one JsonText (jsonrpc.h),
 * without objects; what only changes with the configuration (the proxy block) or with an
 * answer (the compatibility answer, the upstream request counts) kept as text until it does.
 * One clock read a call. */

typedef JsonText StatusText;

/* The text's buffer is kept for the next call unless it grew larger than this. */
#define STATUS_BUF_KEEP_BYTES (64u * 1024u)

#define st_put json_text_add
#define st_puts json_text_add_literal
#define st_u64 json_text_add_u64
#define st_i64 json_text_add_i64
#define st_bool json_text_add_bool
#define st_str json_text_add_str
#define st_rounded json_text_add_rounded

/* The proxy block's text: made once per configuration (server_reload() forgets it). */
static void server_proxy_text(Server *s, JsonText *t) {
        if (!s->proxy_text || s->proxy_text_config != s->core.config) {
                JsonText p = {};

                json_object *o = server_proxy_json(s->core.config);

                if (o)
                        json_text_add_value(&p, o);
                else
                        p.oom = true;
                json_object_put(o);
                if (p.oom) {
                        free(p.p);
                        t->oom = true;
                        return;
                }
                free(s->proxy_text);
                s->proxy_text = p.p;
                s->proxy_text_len = p.n;
                s->proxy_text_config = s->core.config;
        }
        json_text_add(t, s->proxy_text, s->proxy_text_len);
}

/* The limits block of daemon.status. */
static void server_limits_text(const Server *s, StatusText *t) {
        const Config *c = s->core.config;

        st_puts(t, "{\"max_frame_bytes\":");
        st_u64(t, c->max_frame_bytes);
        st_puts(t, ",\"max_json_depth\":");
        st_i64(t, PROTO_JSON_DEPTH_MAX);
        st_puts(t, ",\"max_batch\":");
        st_i64(t, PROTO_BATCH_MAX);
        st_puts(t, ",\"max_fds_per_message\":");
        st_i64(t, PROTO_FDS_PER_MESSAGE_MAX);
        st_puts(t, ",\"max_inflight_per_connection\":");
        st_i64(t, c->max_inflight_per_connection);
        st_puts(t, ",\"max_connections\":");
        st_i64(t, s->max_connections);
        st_puts(t, ",\"max_connections_per_uid\":");
        st_i64(t, c->max_connections_per_uid);
        st_puts(t, ",\"max_output_bytes\":");
        st_u64(t, c->max_output_bytes);
        st_puts(t, ",\"max_buffered_bytes\":");
        st_u64(t, c->max_buffered_bytes);
        st_puts(t, ",\"idle_timeout_s\":");
        st_i64(t, c->idle_timeout_s);
        st_puts(t, ",\"frame_timeout_s\":");
        st_i64(t, c->frame_timeout_s);
        st_puts(t, ",\"shutdown_timeout_s\":");
        st_i64(t, c->shutdown_timeout_s);
        st_puts(t, "}");
}

/* The upstream block of daemon.status: URLs, credential kind and source (never the secret),
 * the proxy, compatibility, HTTP statistics and breakers. */
static void server_upstream_text(Server *s, StatusText *t, uint64_t now) {
        const Credential *cred = api_get_credential(s->core.api);

        st_puts(t, ",\"credential\":{\"kind\":");
        st_str(t, cred ? credential_kind_to_string(cred->kind) : "none");
        st_puts(t, ",\"source\":");
        st_str(t, cred ? cred->source : NULL);
        st_puts(t, "},\"compatibility\":{\"status\":");
        st_str(t, compat_status_to_string(api_compat_status(s->core.api)));
        st_puts(t, ",\"verification\":");
        st_bool(t, s->core.config->verify_compatibility);
        st_puts(t, ",\"answer\":");
        api_compat_answer_text(s->core.api, t);
        st_puts(t, ",\"age_s\":");
        st_rounded(t, api_compat_age_s_at(s->core.api, now), 3);
        st_puts(t, "},\"breaker\":");
        st_str(t, upstream_breaker_state_at(s->core.upstream, s->core.config->api_url, now));
        st_puts(t, ",\"http\":");
        upstream_stats_text(s->core.upstream, t, now, &s->status_memos[STATUS_MEMO_HTTP]);
        st_puts(t, ",\"api\":");
        api_stats_text(s->core.api, t, &s->status_memos[STATUS_MEMO_API]);
        st_puts(t, "}");
}

/* daemon.status: a raw value (json_raw_new()) of its text, NULL on OOM. */
static json_object *server_status_json(Server *s) {
        /* the buffer of the last call, kept (the reply copies the text) */
        StatusText t = { .p = TAKE_PTR(s->status_buf), .cap = s->status_buf_cap };
        const ClientCounters *cc = &s->client_host.counters;
        uint64_t now = now_usec();
        /* what changes only with the configuration, the listener or a reload is kept as
         * text while the values it is written from are the same */
        const uint64_t key_conf[] = { (uintptr_t) s->core.config, s->reloads, s->reload_failures,
                                      s->max_connections, (uintptr_t) s->listener,
                                      listener_socket_activated(s->listener), (uint64_t) s->pid };
        JsonTextMemo *m;
        size_t start;
        json_object *o;

        st_puts(&t, "{\"version\":");
        st_str(&t, AVATARD_VERSION);
        st_puts(&t, ",\"protocol_version\":");
        st_i64(&t, PROTOCOL_VERSION);
        st_puts(&t, ",\"pid\":");
        st_i64(&t, (int) s->pid);
        st_puts(&t, ",\"state\":");
        st_str(&t, server_state_to_string(s->state));
        st_puts(&t, ",\"uptime_s\":");
        st_rounded(&t, (double) (now - s->start_usec) / 1e6, 3);
        m = &s->status_memos[STATUS_MEMO_LIMITS];
        if (!json_text_memo_hit(m, &t, key_conf, ELEMENTSOF(key_conf), &start)) {
                st_puts(&t, ",\"started_at_unix\":");
                st_i64(&t, (int64_t) (s->start_realtime_usec / USEC_PER_SEC));
                st_puts(&t, ",\"socket\":");
                st_str(&t, strna(listener_path(s->listener)));
                st_puts(&t, ",\"socket_activated\":");
                st_bool(&t, listener_socket_activated(s->listener));
                st_puts(&t, ",\"limits\":");
                server_limits_text(s, &t);
                json_text_memo_keep(m, &t, start);
        }

        st_puts(&t, ",\"connections\":{\"current\":");
        st_i64(&t, s->n_clients);
        st_puts(&t, ",\"accepted_total\":");
        st_u64(&t, s->connections_accepted);
        st_puts(&t, ",\"rejected_total\":");
        st_u64(&t, s->connections_rejected);
        st_puts(&t, ",\"closed_idle_total\":");
        st_u64(&t, cc->closed_idle);
        st_puts(&t, ",\"closed_protocol_error_total\":");
        st_u64(&t, cc->closed_protocol);
        st_puts(&t, ",\"closed_by_peer_total\":");
        st_u64(&t, cc->closed_by_peer);
        st_puts(&t, ",\"closed_frame_timeout_total\":");
        st_u64(&t, cc->closed_frame_timeout);
        st_puts(&t, ",\"refused_input_total\":");
        st_u64(&t, cc->refused_buffered);
        st_puts(&t, ",\"buffered_bytes\":");
        st_u64(&t, s->client_host.buffered_bytes);
        st_puts(&t, ",\"heap_trims_total\":");
        st_u64(&t, s->trims);
        st_puts(&t, ",\"per_uid\":{");
        for (size_t i = 0; i < s->n_uid_counts; i++) {
                st_puts(&t, i > 0 ? ",\"" : "\"");
                st_u64(&t, (unsigned) s->uid_counts[i].uid);
                st_puts(&t, "\":");
                st_i64(&t, s->uid_counts[i].count);
        }
        st_puts(&t, "}}");

        st_puts(&t, ",\"requests_in_flight\":");
        st_i64(&t, dispatch_inflight(s->dispatch));
        st_puts(&t, ",\"requests_total\":");
        st_u64(&t, dispatch_requests_total(s->dispatch));
        st_puts(&t, ",\"requests\":");
        dispatch_requests_text(s->dispatch, &t);
        st_puts(&t, ",\"errors\":");
        dispatch_errors_text(s->dispatch, &t, &s->status_memos[STATUS_MEMO_ERRORS]);
        st_puts(&t, ",\"bytes_received\":");
        st_u64(&t, cc->bytes_received);
        st_puts(&t, ",\"bytes_sent\":");
        st_u64(&t, cc->bytes_sent);

        m = &s->status_memos[STATUS_MEMO_CONFIGURATION];
        if (!json_text_memo_hit(m, &t, key_conf, ELEMENTSOF(key_conf), &start)) {
                st_puts(&t, ",\"configuration\":{\"config\":");
                st_str(&t, s->core.config->source);
                st_puts(&t, ",\"reloads\":");
                st_u64(&t, s->reloads);
                st_puts(&t, ",\"failures\":");
                st_u64(&t, s->reload_failures);
                st_puts(&t, ",\"last_error\":");
                st_str(&t, s->last_reload_error);
                st_puts(&t, "},\"upstream\":{\"api_url\":");
                st_str(&t, s->core.config->api_url);
                st_puts(&t, ",\"storage_url\":");
                st_str(&t, s->core.config->storage_url);
                st_puts(&t, ",\"proxy\":");
                server_proxy_text(s, &t);
                json_text_memo_keep(m, &t, start);
        }
        server_upstream_text(s, &t, now);
        st_puts(&t, ",\"cache\":");
        cache_stats_text(s->core.cache, &t, &s->status_memos[STATUS_MEMO_CACHE]);
        st_puts(&t, ",\"poller\":");
        poller_stats_text(s->core.poller, &t, &s->status_memos[STATUS_MEMO_POLLER]);
        st_puts(&t, ",\"storage\":");
        storage_stats_text(s->core.storage, &t, &s->status_memos[STATUS_MEMO_STORAGE]);
        if (s->core.runners) {
                st_puts(&t, ",\"runners\":");
                runners_stats_text(s->core.runners, &t, &s->status_memos[STATUS_MEMO_RUNNERS]);
        }
        st_puts(&t, "}");

        o = t.oom ? NULL : json_raw_new(t.p, t.n);
        if (t.cap <= STATUS_BUF_KEEP_BYTES) {
                s->status_buf = t.p;
                s->status_buf_cap = t.cap;
        } else {
                free(t.p);
                s->status_buf_cap = 0;
        }
        return o;
}
