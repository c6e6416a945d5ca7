/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "config.h"
#include "dirs.h"
#include "errors.h"
#include "jsonrpc.h"
#include "listener.h"
#include "log.h"
#include "notify.h"

#define LISTENERS_MAX 8
#define LISTEN_BACKLOG 4096

typedef struct ListenSocket {
        Listener *listener;
        int fd;
        struct event *ev;
} ListenSocket;

struct Listener {
        listener_accept_cb cb;
        void *userdata;
        ListenSocket sockets[LISTENERS_MAX];
        size_t n_sockets;
        char *path;             /* served path */
        bool bound;             /* we created the socket file (and remove it) */
        bool activated;
        bool stopped;
        struct event *backoff_timer;
};

static void on_accept(evutil_socket_t fd, short what, void *userdata);
static void on_backoff_done(evutil_socket_t fd, short what, void *userdata);

/* Fills a sockaddr_un for path. */
static int sockaddr_un_set(struct sockaddr_un *sa, const char *path, socklen_t *ret_len) {
        size_t n = strlen(path);

        if (n == 0 || n >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
        memcpy(sa->sun_path, path, n);
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

/* Probes a socket path: 1 when a live server accepts on it, 0 when it is stale or absent. */
static int probe_live(const char *path) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa;
        socklen_t len;
        int r;

        r = sockaddr_un_set(&sa, path, &len);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* a blocking connect on a Unix socket returns at once: accepted, refused or absent */
        if (connect(fd, (struct sockaddr *) &sa, len) == 0)
                return 1;
        if (errno == ECONNREFUSED || errno == ENOENT)
                return 0;
        if (errno == EAGAIN)
                return 1; /* backlog full: something is listening */
        return -errno;
}

/* Binds the configured path. */
static int listener_bind(Listener *l, const Config *cfg) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa;
        struct stat st;
        socklen_t len;
        mode_t old_umask;
        int r;

        r = sockaddr_un_set(&sa, cfg->socket_path, &len);
        if (r < 0)
                return log_error_errno(r, "Socket path '%s' is too long.", cfg->socket_path);

        if (lstat(cfg->socket_path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return log_error_errno(EEXIST, "'%s' exists and is not a socket, refusing to replace it.",
                                               cfg->socket_path);
                r = probe_live(cfg->socket_path);
                if (r > 0)
                        return log_error_errno(EADDRINUSE,
                                               "Another avatard is already listening on '%s', refusing to start.",
                                               cfg->socket_path);
                if (r < 0)
                        return log_error_errno(r, "Failed to probe '%s': %m", cfg->socket_path);
                log_info("Removing stale socket '%s'.", cfg->socket_path);
                if (unlink(cfg->socket_path) < 0 && errno != ENOENT)
                        return log_error_errno(errno, "Failed to remove stale socket '%s': %m",
                                               cfg->socket_path);
        }

        /* outside systemd (RuntimeDirectory=) nobody made the socket's directory: the daemon
         * does, where it may, as avatar group members must reach the socket: 0755 */
        {
                _cleanup_free_ char *dir = strdup(cfg->socket_path), *why = NULL;
                char *slash = dir ? strrchr(dir, '/') : NULL;

                if (!dir)
                        return log_oom();
                if (slash && slash != dir) {
                        *slash = '\0';
                        if (access(dir, F_OK) < 0 && errno == ENOENT &&
                            (r = dirs_make(dir, 0755, &why)) < 0)
                                return log_error_errno(r, "Cannot create the socket's directory %s.",
                                                       why ?: dir);
                }
        }

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create socket: %m");

        /* nobody may connect between bind() and chmod(): create it with no access for others */
        old_umask = umask(0177);
        r = bind(fd, (struct sockaddr *) &sa, len);
        umask(old_umask);
        if (r < 0)
                return log_error_errno(errno, "Failed to bind '%s': %m", cfg->socket_path);
        l->bound = true;

        if (cfg->socket_group) {
                char buf[4096];
                struct group grp, *res = NULL;

                if (getgrnam_r(cfg->socket_group, &grp, buf, sizeof(buf), &res) == 0 && res) {
                        if (chown(cfg->socket_path, (uid_t) -1, res->gr_gid) < 0)
                                log_warning_errno(errno, "Failed to give '%s' to group '%s', ignoring: %m",
                                                  cfg->socket_path, cfg->socket_group);
                } else
                        log_debug("Group '%s' does not exist; '%s' keeps its group.", cfg->socket_group,
                                  cfg->socket_path);
        }
        if (chmod(cfg->socket_path, cfg->socket_mode) < 0)
                return log_error_errno(errno, "Failed to set the mode of '%s': %m", cfg->socket_path);
        if (listen(fd, LISTEN_BACKLOG) < 0)
                return log_error_errno(errno, "Failed to listen on '%s': %m", cfg->socket_path);

        l->sockets[l->n_sockets++] = (ListenSocket){ .listener = l, .fd = TAKE_FD(fd) };
        l->path = strdup(cfg->socket_path);
        return l->path ? 0 : log_oom();
}

/* Adopts the sockets passed by the service manager; returns how many. */
static int listener_adopt(Listener *l) {
        int n = notify_listen_fds();

        if (n < 0)
                return log_error_errno(n, "Failed to read the sockets passed by the service manager: %m");
        for (int i = 0; i < n; i++) {
                int fd = 3 + i;
                int r = notify_is_unix_listener(fd);

                if (r <= 0) {
                        log_warning("Passed descriptor %d is not a listening Unix stream socket, ignoring.", fd);
                        continue;
                }
                if (l->n_sockets >= LISTENERS_MAX) {
                        log_warning("More than %d sockets passed, ignoring descriptor %d.", LISTENERS_MAX, fd);
                        continue;
                }
                if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
                    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                        return log_error_errno(errno, "Failed to configure passed socket %d: %m", fd);
                l->sockets[l->n_sockets++] = (ListenSocket){ .listener = l, .fd = fd };
                if (!l->path) {
                        struct sockaddr_un sa;
                        socklen_t len = sizeof(sa);

                        if (getsockname(fd, (struct sockaddr *) &sa, &len) == 0 && sa.sun_path[0])
                                l->path = strndup(sa.sun_path, sizeof(sa.sun_path));
                }
        }
        l->activated = l->n_sockets > 0;
        return (int) l->n_sockets;
}

/* Creates the listening sockets and starts accepting. */
int listener_new(struct event_base *base, const Config *config, listener_accept_cb cb, void *userdata,
                 Listener **ret) {
        Listener *l;
        int r;

        l = calloc(1, sizeof(Listener));
        if (!l)
                return log_oom();
        l->cb = cb;
        l->userdata = userdata;

        r = listener_adopt(l);
        if (r == 0)
                r = listener_bind(l, config);
        if (r < 0) {
                listener_free(l);
                return r;
        }
        l->backoff_timer = evtimer_new(base, on_backoff_done, l);
        if (!l->backoff_timer) {
                listener_free(l);
                return log_oom();
        }
        for (size_t i = 0; i < l->n_sockets; i++) {
                ListenSocket *ls = &l->sockets[i];

                ls->ev = event_new(base, ls->fd, EV_READ | EV_PERSIST, on_accept, ls);
                if (!ls->ev || event_add(ls->ev, NULL) < 0) {
                        listener_free(l);
                        return log_oom();
                }
        }
        log_info("Listening on '%s'%s.", strna(l->path), l->activated ? " (socket activation)" : "");
        *ret = l;
        return 0;
}

/* Stops accepting. */
void listener_stop(Listener *l) {
        if (!l || l->stopped)
                return;
        l->stopped = true;
        for (size_t i = 0; i < l->n_sockets; i++)
                if (l->sockets[i].ev)
                        event_del(l->sockets[i].ev);
        if (l->backoff_timer)
                event_del(l->backoff_timer);
        /* a socket file we created goes away with us; systemd's stays for the next start */
        if (l->bound && l->path) {
                (void) unlink(l->path);
                l->bound = false;
        }
}

/* Frees the listener. */
Listener *listener_free(Listener *l) {
        if (!l)
                return NULL;
        listener_stop(l);
        for (size_t i = 0; i < l->n_sockets; i++) {
                if (l->sockets[i].ev)
                        event_free(l->sockets[i].ev);
                safe_close(l->sockets[i].fd);
        }
        if (l->backoff_timer)
                event_free(l->backoff_timer);
        free(l->path);
        free(l);
        return NULL;
}

/* The path served. */
const char *listener_path(const Listener *l) {
        return l ? l->path : NULL;
}

/* Whether the sockets came from the service manager. */
bool listener_socket_activated(const Listener *l) {
        return l && l->activated;
}

/* Stops accepting for a second when out of descriptors (tmux's accept backoff). */
static void listener_backoff(Listener *l) {
        struct timeval tv = { .tv_sec = 1 };

        for (size_t i = 0; i < l->n_sockets; i++)
                event_del(l->sockets[i].ev);
        evtimer_add(l->backoff_timer, &tv);
}

/* Re-enables accepting after a backoff. */
static void on_backoff_done(evutil_socket_t fd, short what, void *userdata) {
        Listener *l = userdata;

        (void) fd;
        (void) what;
        if (l->stopped)
                return;
        for (size_t i = 0; i < l->n_sockets; i++)
                event_add(l->sockets[i].ev, NULL);
}

/* Answers a connection that is not served with one error line, then closes it. */
void listener_reject(int fd, const char *message) {
        json_object *reply = jsonrpc_error_new(NULL, RPC_OVERLOADED, message, NULL);
        _cleanup_free_ char *text = NULL;
        size_t len;

        if (reply && jsonrpc_serialize(reply, &text, &len) >= 0)
                (void) send(fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        json_object_put(reply);
        safe_close(fd);
}

/* Accepts pending connections. */
static void on_accept(evutil_socket_t lfd, short what, void *userdata) {
        ListenSocket *ls = userdata;
        Listener *l = ls->listener;

        (void) what;
        for (unsigned i = 0; i < 64; i++) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE) {
                                log_warning_errno(errno, "Cannot accept connections: %m; pausing for a second.");
                                listener_backoff(l);
                        } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_warning_errno(errno, "accept() failed, ignoring: %m");
                        return;
                }
                l->cb(fd, l->userdata);
        }
}
