/* SPDX-License-Identifier: MIT */
/*
 * avatard-conn: raw connections that misbehave on purpose, for the tests of how the daemon
 * bounds what a connection may hold (tests/security/test-conn-*.sh). Like avatard-probe it
 * speaks the wire protocol by hand.
 *
 *   avatard-conn trickle SOCKET line|blank
 *       One connection sends one byte at a time — "line": an unfinished request line ('{'
 *       then 'x' after 'x'), "blank": empty lines ('\n' after '\n') — each byte after a
 *       daemon.ping answered on a second connection, so bytes keep arriving far more often
 *       than any timeout, paced by the daemon rather than by a clock. Ends when the daemon
 *       closes the first connection: prints what it sent before the close, then
 *       "closed after T ms, B bytes sent" (T from before the connect). Exit 1 when it was
 *       still open at the bound of a hang (60 s, scaled).
 *
 *   avatard-conn cap SOCKET N BYTES REQUEST
 *       The buffered-input cap, in order, each step printed:
 *         1. connection A sends REQUEST (a call the test keeps in flight) and waits until
 *            daemon.status (on another connection) shows a call in flight: "A: in flight";
 *         2. N connections each send BYTES bytes of an unfinished line, one after the other,
 *            each until the daemon has read them all or refused it: "fill I: held" or
 *            "fill I: refused: LINE";
 *         3. A sends a daemon.ping: "A: LINE" (what the daemon answers to it);
 *         4. a new connection B sends a daemon.ping: "B: LINE", then "B: closed";
 *         5. "release": the test now lets A's first call end; every further line of A is
 *            printed ("A: LINE") until the daemon closes it: "A: closed";
 *         6. the N connections close; a new connection C sends a daemon.ping: "C: LINE".
 *
 *   avatard-conn halfclose SOCKET REQUEST
 *       Sends REQUEST, shuts down its writing side (as socat and nc -N do), prints every
 *       line received until the daemon closes, then "closed".
 *
 * Every wait is for the daemon (a reply, a close, a socket's send queue emptied) and bounded
 * by TEST_WAIT_MS, scaled by $AVATARD_TEST_TIME_SCALE (tests/lib/test-wait.h), only against
 * a hang.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "test-wait.h"

#define PING "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"id\":\"ping\"}\n"
#define STATUS "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.status\",\"id\":\"status\"}\n"
#define LINE_MAX_BYTES (1024u * 1024u)

typedef struct Conn {
        int fd;
        char buf[LINE_MAX_BYTES];
        size_t len;
} Conn;

/* Connects to the socket; returns the fd or -1. */
static int connect_unix(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -1;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* A new connection, or NULL (said on stderr). */
static Conn *conn_open(const char *sock) {
        Conn *c = calloc(1, sizeof(Conn));

        if (!c)
                return NULL;
        c->fd = connect_unix(sock);
        if (c->fd < 0) {
                fprintf(stderr, "cannot connect to %s: %m\n", sock);
                free(c);
                return NULL;
        }
        return c;
}

static void conn_close(Conn *c) {
        if (!c)
                return;
        if (c->fd >= 0)
                close(c->fd);
        free(c);
}

/* Sends all bytes; 0 or -errno (-EPIPE once the daemon closed). */
static int send_all(int fd, const char *data, size_t len) {
        size_t off = 0;

        while (off < len) {
                ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (size_t) n;
        }
        return 0;
}

/* Reads one line (without its newline) into *ret (malloc'd). Returns 1, 0 at the end of the
 * stream (or a reset), -ETIMEDOUT after the bound of a hang. */
static int read_line(Conn *c, char **ret) {
        uint64_t deadline = test_now_ms() + test_deadline_ms(TEST_WAIT_MS);

        for (;;) {
                char *nl = memchr(c->buf, '\n', c->len);
                struct pollfd p = { c->fd, POLLIN, 0 };
                uint64_t now = test_now_ms();
                ssize_t n;

                if (nl) {
                        size_t l = (size_t) (nl - c->buf);

                        *ret = strndup(c->buf, l);
                        memmove(c->buf, nl + 1, c->len - l - 1);
                        c->len -= l + 1;
                        return 1;
                }
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) (deadline - now)) <= 0)
                        continue;
                if (c->len == sizeof(c->buf))
                        return -ENOBUFS;
                n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n <= 0)
                        return 0;
                c->len += (size_t) n;
        }
}

/* Whether the daemon closed the connection (a read gives the end of the stream or a reset
 * at once); lines it sent before are printed with `who`. */
static bool conn_closed_now(Conn *c, const char *who) {
        for (;;) {
                struct pollfd p = { c->fd, POLLIN, 0 };
                char b[4096];
                ssize_t n;

                if (poll(&p, 1, 0) <= 0)
                        return false;
                n = read(c->fd, b, sizeof(b));
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        return false;
                if (n <= 0)
                        return true;
                printf("%s: %.*s", who, (int) n, b);
                if (b[n - 1] != '\n')
                        printf("\n");
        }
}

/* Sends a ping and reads its answer; true when it came. */
static bool ping_ok(Conn *c) {
        char *line = NULL;
        bool ok;

        if (send_all(c->fd, PING, strlen(PING)) < 0 || read_line(c, &line) <= 0)
                return false;
        ok = strstr(line, "\"pong\"") != NULL;
        free(line);
        return ok;
}

static int cmd_trickle(const char *sock, const char *mode) {
        bool blank = strcmp(mode, "blank") == 0;
        /* before the connect: the idle timer starts when the daemon accepts */
        uint64_t t0 = test_now_ms(), deadline;
        Conn *slow = conn_open(sock), *pacer = conn_open(sock);
        size_t sent = 0;
        int rc = 1;

        if (!slow || !pacer)
                goto out;
        deadline = t0 + test_deadline_ms(2 * TEST_WAIT_MS);
        for (;;) {
                char byte = blank ? '\n' : sent == 0 ? '{' : 'x';

                if (conn_closed_now(slow, "slow"))
                        break;
                if (test_now_ms() >= deadline) {
                        fprintf(stderr, "still open after %llu ms and %zu bytes\n",
                                (unsigned long long) (test_now_ms() - t0), sent);
                        goto out;
                }
                if (send_all(slow->fd, &byte, 1) < 0) {
                        char *line = NULL;

                        /* closed by the daemon: what it said before */
                        while (read_line(slow, &line) > 0) {
                                printf("slow: %s\n", line);
                                free(line);
                                line = NULL;
                        }
                        break;
                }
                sent++;
                if (!ping_ok(pacer)) {
                        fprintf(stderr, "the pacing connection got no answer\n");
                        goto out;
                }
        }
        printf("closed after %llu ms, %zu bytes sent\n", (unsigned long long) (test_now_ms() - t0), sent);
        rc = 0;
out:
        conn_close(slow);
        conn_close(pacer);
        return rc;
}

/* Whether daemon.status (asked on a connection of its own) shows another call in flight. */
static bool call_in_flight(const char *sock) {
        Conn *s = conn_open(sock);
        char *line = NULL;
        bool yes = false;

        /* the status call counts itself */
        if (s && send_all(s->fd, STATUS, strlen(STATUS)) >= 0 && read_line(s, &line) > 0) {
                const char *n = strstr(line, "\"requests_in_flight\":");

                yes = n && atoi(n + strlen("\"requests_in_flight\":")) >= 2;
        }
        free(line);
        conn_close(s);
        return yes;
}

static bool a_call_in_flight(void *arg) {
        return call_in_flight(arg);
}

/* Whether the daemon sent something (or closed the connection). */
static bool readable(Conn *c) {
        struct pollfd p = { c->fd, POLLIN, 0 };

        return c->len > 0 || poll(&p, 1, 0) > 0;
}

/* Whether the daemon read everything sent on the connection, or answered or closed it. */
static bool send_queue_empty(void *arg) {
        Conn *c = arg;
        int n = 0;

        if (readable(c))
                return true;
        return ioctl(c->fd, SIOCOUTQ, &n) == 0 && n == 0;
}

static int cmd_cap(const char *sock, int n, size_t bytes, const char *request) {
        Conn *a = conn_open(sock), *b = NULL, *cc = NULL, **fill = calloc((size_t) n, sizeof(Conn *));
        char *line = NULL, *pad = malloc(bytes);
        int rc = 1, r;

        if (!a || !fill || !pad)
                goto out;
        if (send_all(a->fd, request, strlen(request)) < 0 || send_all(a->fd, "\n", 1) < 0)
                goto out;
        if (!test_poll_until(a_call_in_flight, (void *) sock, TEST_WAIT_MS)) {
                fprintf(stderr, "the call of A never showed in flight\n");
                goto out;
        }
        printf("A: in flight\n");
        fflush(stdout);

        memset(pad, 'a', bytes);
        memcpy(pad, "{\"pad\":\"", 8);
        for (int i = 0; i < n; i++) {
                fill[i] = conn_open(sock);
                if (!fill[i])
                        goto out;
                r = send_all(fill[i]->fd, pad, bytes);
                if (r < 0 && r != -EPIPE && r != -ECONNRESET)
                        goto out;
                if (!test_poll_until(send_queue_empty, fill[i], TEST_WAIT_MS)) {
                        fprintf(stderr, "the daemon neither read nor refused fill %d\n", i + 1);
                        goto out;
                }
                /* all read and nothing said: held; refused, the daemon answered (and closes) */
                if (readable(fill[i]) && read_line(fill[i], &line) > 0) {
                        printf("fill %d: refused: %s\n", i + 1, line);
                        free(line);
                        line = NULL;
                } else
                        printf("fill %d: held\n", i + 1);
                fflush(stdout);
        }

        if (send_all(a->fd, PING, strlen(PING)) < 0 || read_line(a, &line) <= 0) {
                fprintf(stderr, "A got no answer to its ping\n");
                goto out;
        }
        printf("A: %s\n", line);
        free(line);
        line = NULL;

        b = conn_open(sock);
        if (!b)
                goto out;
        r = send_all(b->fd, PING, strlen(PING));
        if (r >= 0 && read_line(b, &line) > 0) {
                printf("B: %s\n", line);
                free(line);
                line = NULL;
        }
        if (read_line(b, &line) == 0)
                printf("B: closed\n");
        free(line);
        line = NULL;

        printf("release\n");
        fflush(stdout);
        while ((r = read_line(a, &line)) > 0) {
                printf("A: %s\n", line);
                fflush(stdout);
                free(line);
                line = NULL;
        }
        if (r < 0) {
                fprintf(stderr, "A was not closed: %s\n", strerror(-r));
                goto out;
        }
        printf("A: closed\n");

        for (int i = 0; i < n; i++) {
                conn_close(fill[i]);
                fill[i] = NULL;
        }
        cc = conn_open(sock);
        if (!cc || send_all(cc->fd, PING, strlen(PING)) < 0 || read_line(cc, &line) <= 0) {
                fprintf(stderr, "C got no answer\n");
                goto out;
        }
        printf("C: %s\n", line);
        rc = 0;
out:
        fflush(stdout);
        free(line);
        free(pad);
        for (int i = 0; fill && i < n; i++)
                conn_close(fill[i]);
        free(fill);
        conn_close(a);
        conn_close(b);
        conn_close(cc);
        return rc;
}

static int cmd_halfclose(const char *sock, const char *request) {
        Conn *c = conn_open(sock);
        char *line = NULL;
        int r, rc = 1;

        if (!c || send_all(c->fd, request, strlen(request)) < 0 || send_all(c->fd, "\n", 1) < 0)
                goto out;
        if (shutdown(c->fd, SHUT_WR) < 0) {
                fprintf(stderr, "shutdown: %m\n");
                goto out;
        }
        while ((r = read_line(c, &line)) > 0) {
                printf("%s\n", line);
                fflush(stdout);
                free(line);
                line = NULL;
        }
        if (r < 0) {
                fprintf(stderr, "not closed: %s\n", strerror(-r));
                goto out;
        }
        printf("closed\n");
        rc = 0;
out:
        conn_close(c);
        return rc;
}

int main(int argc, char *argv[]) {
        if (argc == 4 && strcmp(argv[1], "trickle") == 0)
                return cmd_trickle(argv[2], argv[3]);
        if (argc == 6 && strcmp(argv[1], "cap") == 0)
                return cmd_cap(argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 10), argv[5]);
        if (argc == 4 && strcmp(argv[1], "halfclose") == 0)
                return cmd_halfclose(argv[2], argv[3]);
        fprintf(stderr, "usage: avatard-conn trickle SOCKET line|blank | cap SOCKET N BYTES REQUEST | "
                        "halfclose SOCKET REQUEST\n");
        return 2;
}
