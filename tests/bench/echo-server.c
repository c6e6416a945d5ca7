/* SPDX-License-Identifier: MIT */
/*
 * echo-server: the ceiling for scripts/bench. A minimal newline-delimited JSON-RPC server on a
 * Unix stream socket: one thread, epoll, non-blocking sockets. For each request line it
 * answers {"jsonrpc":"2.0","result":"pong","id":<id>} (the reply daemon.ping gives), with the
 * id copied as raw text from the last "id": member of the line; nothing else is parsed or
 * validated. Whatever avatard does per call beyond reading a line and writing one costs more
 * than this; the ratio to it is what scripts/bench reports.
 *
 *   echo-server --socket PATH
 *
 * Runs until SIGTERM or SIGINT; removes the socket at exit.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_CHUNK (64u * 1024u)
#define LINE_MAX_BYTES (1024u * 1024u)
#define REPLY_HEAD "{\"jsonrpc\":\"2.0\",\"result\":\"pong\",\"id\":"

typedef struct Conn {
        int fd;
        char *in;
        size_t in_len, in_cap;
        char *out;
        size_t out_len, out_off, out_cap;
        bool want_out;
} Conn;

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        (void) sig;
        stop = 1;
}

static void conn_free(int ep, Conn *c) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        free(c->in);
        free(c->out);
        free(c);
}

static bool out_append(Conn *c, const char *p, size_t n) {
        if (c->out_cap - c->out_len < n) {
                size_t cap = c->out_cap ? c->out_cap : 4096;
                while (cap - c->out_len < n)
                        cap *= 2;
                char *o = realloc(c->out, cap);
                if (!o)
                        return false;
                c->out = o;
                c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, p, n);
        c->out_len += n;
        return true;
}

/* The raw id: the text after the last "id": up to the next ',' or '}' (strings taken whole). */
static bool reply(Conn *c, const char *line, size_t len) {
        const char *id = NULL;
        size_t id_len = 0;
        for (const char *p = line; (p = memmem(p, len - (size_t) (p - line), "\"id\":", 5)); p += 5)
                id = p + 5;
        if (id) {
                const char *e = id, *end = line + len;
                while (e < end && *e == ' ')
                        e++;
                id = e;
                if (e < end && *e == '"') {
                        for (e++; e < end && *e != '"'; e++)
                                if (*e == '\\' && e + 1 < end)
                                        e++;
                        if (e < end)
                                e++;
                } else
                        while (e < end && *e != ',' && *e != '}' && *e != ' ')
                                e++;
                id_len = (size_t) (e - id);
        }
        if (!id || id_len == 0) {
                id = "null";
                id_len = 4;
        }
        return out_append(c, REPLY_HEAD, strlen(REPLY_HEAD)) && out_append(c, id, id_len) && out_append(c, "}\n", 2);
}

/* Writes what is queued; returns false when the connection is gone. */
static bool flush_out(int ep, Conn *c) {
        while (c->out_off < c->out_len) {
                ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return false;
                }
                c->out_off += (size_t) k;
        }
        if (c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
        bool want = c->out_len > 0;
        if (want != c->want_out) {
                struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };
                if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                        return false;
                c->want_out = want;
        }
        return true;
}

/* Reads what is there, answers every complete line; returns false when the connection is gone. */
static bool on_readable(int ep, Conn *c) {
        for (;;) {
                if (c->in_cap - c->in_len < READ_CHUNK) {
                        if (c->in_cap >= LINE_MAX_BYTES * 2)
                                return false;
                        size_t cap = c->in_cap ? c->in_cap * 2 : READ_CHUNK * 2;
                        char *b = realloc(c->in, cap);
                        if (!b)
                                return false;
                        c->in = b;
                        c->in_cap = cap;
                }
                ssize_t k = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
                if (k == 0)
                        return false;
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return false;
                }
                size_t start = 0, old = c->in_len;
                c->in_len += (size_t) k;
                for (char *p = c->in + old, *nl; (nl = memchr(p, '\n', c->in_len - (size_t) (p - c->in))); p = nl + 1) {
                        size_t len = (size_t) (nl - (c->in + start));
                        if (len > 0 && !reply(c, c->in + start, len))
                                return false;
                        start = (size_t) (nl + 1 - c->in);
                }
                if (start) {
                        memmove(c->in, c->in + start, c->in_len - start);
                        c->in_len -= start;
                }
                if ((size_t) k < c->in_cap - old)
                        break; /* short read: drained */
        }
        return flush_out(ep, c);
}

int main(int argc, char **argv) {
        const char *path = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
                        path = argv[++i];
                else {
                        fprintf(stderr, "Usage: echo-server --socket PATH\n");
                        return 2;
                }
        }
        if (!path) {
                fprintf(stderr, "Usage: echo-server --socket PATH\n");
                return 2;
        }

        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(addr.sun_path)) {
                fprintf(stderr, "echo-server: socket path too long\n");
                return 1;
        }
        strcpy(addr.sun_path, path);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0) {
                perror("echo-server: socket");
                return 1;
        }
        unlink(path);
        if (bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(lfd, 4096) < 0) {
                perror("echo-server: bind/listen");
                return 1;
        }
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
                perror("echo-server: epoll");
                return 1;
        }

        struct epoll_event ev[256];
        while (!stop) {
                int n = epoll_wait(ep, ev, 256, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("echo-server: epoll_wait");
                        break;
                }
                for (int i = 0; i < n; i++) {
                        Conn *c = ev[i].data.ptr;
                        if (!c) {
                                for (;;) {
                                        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                                        if (fd < 0)
                                                break;
                                        c = calloc(1, sizeof(*c));
                                        if (!c) {
                                                close(fd);
                                                continue;
                                        }
                                        c->fd = fd;
                                        struct epoll_event cev = { .events = EPOLLIN, .data.ptr = c };
                                        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) {
                                                close(fd);
                                                free(c);
                                        }
                                }
                                continue;
                        }
                        bool ok = true;
                        if (ev[i].events & EPOLLOUT)
                                ok = flush_out(ep, c);
                        if (ok && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                                ok = on_readable(ep, c);
                        if (!ok)
                                conn_free(ep, c);
                }
        }
        close(lfd);
        unlink(path);
        return 0;
}
