/* SPDX-License-Identifier: MIT */
/*
 * avatard-probe: a raw socket client for black-box tests. It speaks the wire protocol by
 * hand (no client library) so tests see exactly what travels on the socket.
 *
 *   avatard-probe script SOCKET FILE    run a conversation script (below)
 *   avatard-probe flood SOCKET N        N concurrent connections, one ping each, all answered
 *   avatard-probe fds SOCKET N          N messages on one connection, each carrying a descriptor
 *   avatard-probe oversize SOCKET BYTES send a BYTES-long line; expect an error and a close,
 *                                       while a second connection keeps being served
 *   avatard-probe stall SOCKET          a connection stalls mid-line while another is served
 *   avatard-probe hold SOCKET N [idle]  open N connections, each answered once (so the daemon
 *                                       has accepted it), print "N/N connections open", then
 *                                       hold them until standard input ends (the test lets
 *                                       go); with "idle", until the daemon closed every one
 *                                       of them instead, printing how long the first one
 *                                       stayed open
 *   avatard-probe halfclose SOCKET N METHOD
 *                                       N requests for METHOD in one write, then the writing
 *                                       side shut down: every request must be answered before
 *                                       the daemon closes
 *   avatard-probe call SOCKET [-f PATH] [-o PATH] [-t SECONDS] REQUEST
 *                                       send one request line with descriptors attached
 *                                       (-f: PATH opened read-only, -o: PATH created for
 *                                       writing, numbered from 0 in option order) and print
 *                                       every line received (notifications, then the reply)
 *                                       until the reply; exit 1 when none came in time
 *
 * Every deadline (a reply awaited, -t) only bounds a hang: it is multiplied by
 * $AVATARD_TEST_TIME_SCALE (tests/lib/test-wait.h).
 *
 * Script lines:
 *   # comment / blank          ignored
 *   > TEXT                     send TEXT and a newline (TEXT verbatim)
 *   >x TEXT                    same, with \xHH escapes decoded (raw bytes, e.g. bad UTF-8)
 *   < JSON                     the next reply must equal JSON: objects compared without
 *                              regard to member order, a top-level array as a multiset, and an
 *                              error's "data" ignored unless the expected error has one
 *   <match TEXT                the next reply must contain TEXT
 *   <none                      no reply is pending (checked with a sentinel ping)
 *   <closed                    the daemon closes the connection
 *   fd PATH                    attach PATH (opened read-only) to the next "> " line
 *   reconnect                  close and open a new connection
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "test-wait.h"

/* How long a reply may take before the daemon is deemed stuck (scaled by reply_ms()). */
#define TIMEOUT_MS 10000
#define STRLEN(s) (sizeof(s) - 1)
#define streq_opt(a, b) (strcmp((a), (b)) == 0)
#define LINE_MAX_BYTES (8u * 1024u * 1024u)
#define SENTINEL "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"params\":{\"echo\":\"__sentinel__\"},\"id\":\"__sentinel__\"}"

typedef struct Conn {
        int fd;
        char *buf;
        size_t len, cap;
        bool eof;
} Conn;

/* Connects to the socket; returns the fd or -1. */
static int connect_unix(const char *path, bool nonblock) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -1;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
        if (fd < 0)
                return -1;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
                close(fd);
                return -1;
        }
        return fd;
}

/* Milliseconds since an arbitrary start. */
static long long now_ms(void) {
        return (long long) test_now_ms();
}

/* The bound of a wait for a reply: TIMEOUT_MS, scaled for slow legs. */
static int reply_ms(void) {
        return (int) test_deadline_ms(TIMEOUT_MS);
}

/* Sends all bytes, with descriptors attached to the first chunk. */
static int send_all(int fd, const char *data, size_t len, const int *fds, size_t n_fds) {
        size_t off = 0;

        while (off < len) {
                char control[CMSG_SPACE(sizeof(int) * 16)];
                struct iovec iov = { (char *) data + off, len - off };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
                ssize_t n;

                if (off == 0 && n_fds > 0) {
                        struct cmsghdr *cm;

                        memset(control, 0, sizeof(control));
                        mh.msg_control = control;
                        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                        cm = CMSG_FIRSTHDR(&mh);
                        cm->cmsg_level = SOL_SOCKET;
                        cm->cmsg_type = SCM_RIGHTS;
                        cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
                }
                n = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { fd, POLLOUT, 0 };
                                poll(&p, 1, reply_ms());
                                continue;
                        }
                        return -errno;
                }
                off += (size_t) n;
        }
        return 0;
}

/* Reads one line (without the newline) into *ret (malloc'd). Returns 1, 0 on EOF, -ETIMEDOUT. */
static int read_line(Conn *c, int timeout_ms, char **ret) {
        long long deadline = now_ms() + timeout_ms;

        for (;;) {
                char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
                struct pollfd p = { c->fd, POLLIN, 0 };
                long long left;
                ssize_t n;

                if (nl) {
                        size_t l = (size_t) (nl - c->buf);

                        *ret = strndup(c->buf, l);
                        memmove(c->buf, nl + 1, c->len - l - 1);
                        c->len -= l + 1;
                        return 1;
                }
                if (c->eof)
                        return 0;
                left = deadline - now_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) left) <= 0)
                        continue;
                if (c->cap - c->len < 65536) {
                        size_t ncap = c->cap ? c->cap * 2 : 131072;

                        if (ncap > LINE_MAX_BYTES)
                                return -E2BIG;
                        c->buf = realloc(c->buf, ncap);
                        c->cap = ncap;
                }
                n = read(c->fd, c->buf + c->len, c->cap - c->len);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        if (errno == ECONNRESET) {
                                c->eof = true;
                                continue;
                        }
                        return -errno;
                }
                if (n == 0)
                        c->eof = true;
                c->len += (size_t) n;
        }
}

/* Removes error.data from each reply when the expected counterpart has none. */
static void strip_error_data(json_object *actual, json_object *expected) {
        json_object *ae, *ee, *tmp;

        if (!json_object_is_type(actual, json_type_object) || !json_object_is_type(expected, json_type_object))
                return;
        if (json_object_object_get_ex(actual, "error", &ae) && json_object_object_get_ex(expected, "error", &ee) &&
            json_object_is_type(ae, json_type_object) && !json_object_object_get_ex(ee, "data", &tmp))
                json_object_object_del(ae, "data");
}

/* Compares a reply with the expectation as documented above. */
static bool replies_equal(json_object *actual, json_object *expected) {
        size_t n;
        bool *used;
        bool ok = true;

        if (!json_object_is_type(actual, json_type_array) || !json_object_is_type(expected, json_type_array)) {
                strip_error_data(actual, expected);
                return json_object_equal(actual, expected);
        }
        n = json_object_array_length(expected);
        if (json_object_array_length(actual) != n)
                return false;
        used = calloc(n ? n : 1, sizeof(bool));
        for (size_t i = 0; i < n && ok; i++) {
                json_object *e = json_object_array_get_idx(expected, i);
                bool found = false;

                for (size_t j = 0; j < n && !found; j++) {
                        json_object *a = json_object_array_get_idx(actual, j), *copy = NULL;

                        if (used[j])
                                continue;
                        json_object_deep_copy(a, &copy, NULL);
                        strip_error_data(copy, e);
                        if (json_object_equal(copy, e))
                                found = used[j] = true;
                        json_object_put(copy);
                }
                ok = found;
        }
        free(used);
        return ok;
}

/* Decodes \xHH escapes in place; returns the new length. */
static size_t unescape(char *s) {
        size_t o = 0;

        for (size_t i = 0; s[i]; i++) {
                if (s[i] == '\\' && s[i + 1] == 'x' && s[i + 2] && s[i + 3]) {
                        char h[3] = { s[i + 2], s[i + 3], 0 };
                        s[o++] = (char) strtol(h, NULL, 16);
                        i += 3;
                } else
                        s[o++] = s[i];
        }
        s[o] = '\0';
        return o;
}

/* Runs a conversation script. */
static int cmd_script(const char *sock, const char *file) {
        FILE *f = fopen(file, "re");
        Conn c = { .fd = -1 };
        char *line = NULL;
        size_t cap = 0;
        unsigned lineno = 0, checks = 0;
        int pending_fds[16], n_pending = 0, r;
        ssize_t len;

        if (!f) {
                perror(file);
                return 2;
        }
        c.fd = connect_unix(sock, false);
        if (c.fd < 0) {
                fprintf(stderr, "cannot connect to %s: %m\n", sock);
                return 1;
        }
        while ((len = getline(&line, &cap, f)) >= 0) {
                char *reply = NULL;

                lineno++;
                while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        line[--len] = '\0';
                if (len == 0 || line[0] == '#')
                        continue;
                if (strncmp(line, ">x ", 3) == 0 || strncmp(line, "> ", 2) == 0) {
                        bool hex = line[1] == 'x';
                        char *text = line + (hex ? 3 : 2);
                        size_t tl = hex ? unescape(text) : strlen(text);
                        char *out = malloc(tl + 1);

                        memcpy(out, text, tl);
                        out[tl] = '\n';
                        r = send_all(c.fd, out, tl + 1, pending_fds, (size_t) n_pending);
                        free(out);
                        for (int i = 0; i < n_pending; i++)
                                close(pending_fds[i]);
                        n_pending = 0;
                        if (r < 0) {
                                fprintf(stderr, "%s:%u: send failed: %s\n", file, lineno, strerror(-r));
                                return 1;
                        }
                } else if (strncmp(line, "fd ", 3) == 0) {
                        int fd = open(line + 3, O_RDONLY | O_CLOEXEC);

                        if (fd < 0 || n_pending >= 16) {
                                fprintf(stderr, "%s:%u: cannot open %s\n", file, lineno, line + 3);
                                return 2;
                        }
                        pending_fds[n_pending++] = fd;
                } else if (strcmp(line, "reconnect") == 0) {
                        close(c.fd);
                        c.len = 0;
                        c.eof = false;
                        c.fd = connect_unix(sock, false);
                        if (c.fd < 0) {
                                fprintf(stderr, "%s:%u: cannot reconnect\n", file, lineno);
                                return 1;
                        }
                } else if (strcmp(line, "<none") == 0) {
                        r = send_all(c.fd, SENTINEL "\n", strlen(SENTINEL) + 1, NULL, 0);
                        if (r >= 0)
                                r = read_line(&c, reply_ms(), &reply);
                        if (r <= 0 || !strstr(reply, "__sentinel__")) {
                                fprintf(stderr, "%s:%u: expected no reply, got: %s\n", file, lineno,
                                        r > 0 ? reply : r == 0 ? "(connection closed)" : strerror(-r));
                                return 1;
                        }
                        checks++;
                } else if (strcmp(line, "<closed") == 0) {
                        for (;;) {
                                r = read_line(&c, reply_ms(), &reply);
                                if (r <= 0)
                                        break;
                                free(reply);
                                reply = NULL;
                        }
                        if (r != 0) {
                                fprintf(stderr, "%s:%u: expected the connection to close: %s\n", file,
                                        lineno, strerror(-r));
                                return 1;
                        }
                        checks++;
                } else if (strncmp(line, "<match ", 7) == 0 || strncmp(line, "< ", 2) == 0) {
                        bool match = line[1] == 'm';

                        r = read_line(&c, reply_ms(), &reply);
                        if (r <= 0) {
                                fprintf(stderr, "%s:%u: expected a reply: %s\n", file, lineno,
                                        r == 0 ? "connection closed" : strerror(-r));
                                return 1;
                        }
                        if (match) {
                                if (!strstr(reply, line + 7)) {
                                        fprintf(stderr, "%s:%u: reply lacks '%s':\n  %s\n", file, lineno,
                                                line + 7, reply);
                                        return 1;
                                }
                        } else {
                                json_object *a = json_tokener_parse(reply), *e = json_tokener_parse(line + 2);

                                if (!e) {
                                        fprintf(stderr, "%s:%u: bad expectation JSON\n", file, lineno);
                                        return 2;
                                }
                                if (!a || !replies_equal(a, e)) {
                                        fprintf(stderr, "%s:%u: reply mismatch\n  expected: %s\n  got:      %s\n",
                                                file, lineno, line + 2, reply);
                                        return 1;
                                }
                                json_object_put(a);
                                json_object_put(e);
                        }
                        checks++;
                } else {
                        fprintf(stderr, "%s:%u: unknown script line\n", file, lineno);
                        return 2;
                }
                free(reply);
        }
        free(line);
        fclose(f);
        close(c.fd);
        free(c.buf);
        printf("%s: %u checks passed\n", file, checks);
        return 0;
}

/* Closes and frees n connections and their poll array. */
static void conns_free(Conn *c, struct pollfd *p, int n) {
        for (int i = 0; i < n; i++) {
                if (c[i].fd >= 0)
                        close(c[i].fd);
                free(c[i].buf);
        }
        free(c);
        free(p);
}

/* N concurrent connections, one ping each; every one must be answered with its own echo. */
static int cmd_flood(const char *sock, int n) {
        Conn *c = calloc((size_t) n, sizeof(Conn));
        struct pollfd *p = calloc((size_t) n, sizeof(struct pollfd));
        int answered = 0, failed = 0;
        long long deadline;

        for (int i = 0; i < n; i++) {
                char req[160];

                c[i].fd = connect_unix(sock, false);
                if (c[i].fd < 0) {
                        fprintf(stderr, "connection %d failed: %m\n", i);
                        return 1;
                }
                snprintf(req, sizeof(req),
                         "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"params\":{\"echo\":%d},\"id\":%d}\n", i, i);
                if (send_all(c[i].fd, req, strlen(req), NULL, 0) < 0) {
                        fprintf(stderr, "send on connection %d failed\n", i);
                        return 1;
                }
        }
        deadline = now_ms() + (long long) test_deadline_ms(30000);
        while (answered + failed < n && now_ms() < deadline) {
                int k = 0;

                for (int i = 0; i < n; i++) {
                        p[i] = (struct pollfd){ c[i].fd, POLLIN, 0 };
                        if (c[i].fd < 0)
                                p[i].fd = -1;
                }
                k = poll(p, (nfds_t) n, 1000);
                if (k <= 0)
                        continue;
                for (int i = 0; i < n; i++) {
                        char *reply = NULL, expect[96];
                        int r;

                        if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        r = read_line(&c[i], 1000, &reply);
                        if (r == -ETIMEDOUT)
                                continue;
                        snprintf(expect, sizeof(expect), "\"result\":%d,\"id\":%d", i, i);
                        if (r > 0 && strstr(reply, expect))
                                answered++;
                        else {
                                if (failed < 10)
                                        fprintf(stderr, "connection %d: bad answer: %s\n", i, r > 0 ? reply : "(none)");
                                failed++;
                        }
                        free(reply);
                        close(c[i].fd);
                        c[i].fd = -1;
                }
        }
        printf("%d/%d connections answered\n", answered, n);
        conns_free(c, p, n);
        return answered == n ? 0 : 1;
}

/* N messages on one connection, each with a descriptor, in windows of 32. */
static int cmd_fds(const char *sock, int n) {
        Conn c = { .fd = connect_unix(sock, false) };
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC), got = 0;

        if (c.fd < 0 || devnull < 0) {
                fprintf(stderr, "setup failed: %m\n");
                return 1;
        }
        for (int sent = 0; sent < n;) {
                int window = n - sent < 32 ? n - sent : 32;

                for (int i = 0; i < window; i++, sent++) {
                        char req[128];

                        snprintf(req, sizeof(req),
                                 "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"params\":[%d],\"id\":%d}\n", sent, sent);
                        if (send_all(c.fd, req, strlen(req), &devnull, 1) < 0) {
                                fprintf(stderr, "send failed at %d: %m\n", sent);
                                return 1;
                        }
                }
                for (int i = 0; i < window; i++) {
                        char *reply = NULL;

                        if (read_line(&c, reply_ms(), &reply) <= 0 || !strstr(reply, "\"result\"")) {
                                fprintf(stderr, "missing or bad reply after %d: %s\n", got, reply ? reply : "(none)");
                                return 1;
                        }
                        free(reply);
                        got++;
                }
        }
        printf("%d messages with descriptors answered\n", got);
        close(devnull);
        close(c.fd);
        free(c.buf);
        return 0;
}

/* Checks that a connection is served: a ping gets its answer. */
static bool ping_ok(Conn *c) {
        char *reply = NULL;
        bool ok;

        if (send_all(c->fd, SENTINEL "\n", strlen(SENTINEL) + 1, NULL, 0) < 0)
                return false;
        ok = read_line(c, reply_ms(), &reply) > 0 && strstr(reply, "__sentinel__");
        free(reply);
        return ok;
}

/* An oversize line gets an error reply and a close; another connection is unaffected. */
static int cmd_oversize(const char *sock, size_t bytes) {
        Conn bad = { .fd = connect_unix(sock, false) }, good = { .fd = connect_unix(sock, false) };
        char *line = malloc(bytes + 1), *reply = NULL;
        int r;

        if (bad.fd < 0 || good.fd < 0 || !line)
                return 1;
        memset(line, ' ', bytes);
        memcpy(line, "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"params\":[\"", 51);
        line[bytes] = '\n';
        /* the daemon may close before all bytes are sent: a send error is expected then */
        (void) send_all(bad.fd, line, bytes + 1, NULL, 0);
        free(line);
        r = read_line(&bad, reply_ms(), &reply);
        if (r <= 0 || !strstr(reply, "-32600")) {
                fprintf(stderr, "expected an Invalid Request error, got: %s\n", r > 0 ? reply : "(none)");
                return 1;
        }
        printf("oversize frame answered: %s\n", reply);
        free(reply);
        reply = NULL;
        r = read_line(&bad, reply_ms(), &reply);
        if (r != 0) {
                fprintf(stderr, "expected the connection to be closed\n");
                return 1;
        }
        if (!ping_ok(&good)) {
                fprintf(stderr, "the other connection was not served\n");
                return 1;
        }
        printf("other connection still served\n");
        close(bad.fd);
        close(good.fd);
        free(bad.buf);
        free(good.buf);
        return 0;
}

/* A connection that stalls mid-line does not delay another one. */
static int cmd_stall(const char *sock) {
        Conn stall = { .fd = connect_unix(sock, false) }, good = { .fd = connect_unix(sock, false) };
        const char *partial = "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.pi";
        long long t0;

        if (stall.fd < 0 || good.fd < 0)
                return 1;
        if (send_all(stall.fd, partial, strlen(partial), NULL, 0) < 0)
                return 1;
        t0 = now_ms();
        for (int i = 0; i < 100; i++)
                if (!ping_ok(&good)) {
                        fprintf(stderr, "ping %d failed while another connection stalls\n", i);
                        return 1;
                }
        printf("100 pings answered in %lld ms while another connection stalls mid-line\n", now_ms() - t0);
        /* finish the stalled line: it is then answered too */
        if (send_all(stall.fd, "ng\",\"id\":7}\n", 12, NULL, 0) < 0)
                return 1;
        {
                char *reply = NULL;

                if (read_line(&stall, reply_ms(), &reply) <= 0 || !strstr(reply, "\"pong\"")) {
                        fprintf(stderr, "stalled request not answered once complete\n");
                        return 1;
                }
                free(reply);
        }
        close(stall.fd);
        close(good.fd);
        free(stall.buf);
        free(good.buf);
        return 0;
}

/* N notifications in one burst (many frames per read, more than the decoder holds), then a
 * request: the request is answered and the connection stays up. */
static int cmd_burst(const char *sock, int n) {
        static const char note[] = "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\"}\n";
        Conn c = { .fd = connect_unix(sock, false) };
        size_t len = (size_t) n * STRLEN(note);
        char *buf = malloc(len), *reply = NULL;
        int r;

        if (c.fd < 0 || !buf)
                return 1;
        for (int i = 0; i < n; i++)
                memcpy(buf + (size_t) i * STRLEN(note), note, STRLEN(note));
        r = send_all(c.fd, buf, len, NULL, 0);
        free(buf);
        if (r < 0) {
                fprintf(stderr, "send failed: %s\n", strerror(-r));
                return 1;
        }
        /* replies come in the order of the requests: a notification answered by mistake
         * shows up before the ping's reply */
        if (send_all(c.fd, SENTINEL "\n", strlen(SENTINEL) + 1, NULL, 0) < 0)
                return 1;
        while ((r = read_line(&c, reply_ms(), &reply)) > 0 && !strstr(reply, "__sentinel__")) {
                fprintf(stderr, "a notification was answered: %s\n", reply);
                return 1;
        }
        if (r <= 0) {
                fprintf(stderr, "no answer after a burst of %d notifications\n", n);
                return 1;
        }
        free(reply);
        /* and nothing comes after it: the next line is the reply to the next ping */
        if (!ping_ok(&c)) {
                fprintf(stderr, "a second ping after the burst was not answered first\n");
                return 1;
        }
        printf("%d notifications (%zu bytes) in one burst, then a request answered\n", n, len);
        close(c.fd);
        free(c.buf);
        return 0;
}

/* Holds N connections, each answered once, until standard input ends or (until_closed) until
 * the daemon closed every one of them; the test decides when, not a timer. */
static int cmd_hold(const char *sock, int n, bool until_closed) {
        Conn *c = calloc((size_t) n, sizeof(Conn));
        struct pollfd *p = calloc((size_t) n + 1, sizeof(struct pollfd));
        long long t0 = now_ms(), first_close = -1, deadline;
        int ok = 0, closed = 0, rc = 0;
        bool released = false;

        if (!c || !p)
                return 1;
        /* every time is measured from before the first connect, which precedes anything the
         * daemon does with these connections: a lower bound of how long they were open */
        for (int i = 0; i < n; i++) {
                c[i].fd = connect_unix(sock, false);
                if (c[i].fd >= 0 && ping_ok(&c[i]))
                        ok++;
                else if (c[i].fd >= 0) {
                        close(c[i].fd);
                        c[i].fd = -1;
                }
        }
        printf("%d/%d connections open\n", ok, n);
        fflush(stdout);
        /* the bound of a hang only: the test lets go or the daemon closes long before */
        deadline = now_ms() + (long long) test_deadline_ms(TEST_WAIT_MS);
        while (!released && closed < ok) {
                long long left = deadline - now_ms();
                int k = 0;

                if (left <= 0) {
                        fprintf(stderr, "still held after %lld ms: %d/%d closed by the daemon\n",
                                now_ms() - t0, closed, ok);
                        rc = 1;
                        break;
                }
                if (!until_closed)
                        p[k++] = (struct pollfd){ STDIN_FILENO, POLLIN, 0 };
                for (int i = 0; i < n; i++)
                        p[k++] = (struct pollfd){ c[i].fd, POLLIN, 0 };
                if (poll(p, (nfds_t) k, (int) (left < INT_MAX ? left : INT_MAX)) <= 0)
                        continue;
                for (int j = 0; j < k; j++) {
                        char buf[4096];
                        ssize_t r;

                        if (p[j].fd < 0 || !(p[j].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        r = read(p[j].fd, buf, sizeof(buf));
                        if (r < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        if (p[j].fd == STDIN_FILENO) {
                                if (r <= 0)
                                        released = true;
                                continue;
                        }
                        if (r > 0)
                                continue; /* nothing is expected; the daemon may say why it closes */
                        for (int i = 0; i < n; i++)
                                if (c[i].fd == p[j].fd) {
                                        close(c[i].fd);
                                        c[i].fd = -1;
                                }
                        if (first_close < 0)
                                first_close = now_ms() - t0;
                        closed++;
                }
        }
        if (until_closed)
                printf("%d/%d connections closed by the daemon, the first after %lld ms\n", closed, ok,
                       first_close);
        else
                printf("released; %d/%d connections closed by the daemon before\n", closed, ok);
        conns_free(c, p, n);
        return rc == 0 && ok == n && (!until_closed || closed == ok) ? 0 : 1;
}

/* N requests in one write, then shutdown(SHUT_WR): the daemon must answer all N before it
 * closes the connection at the end of input. */
static int cmd_halfclose(const char *sock, int n, const char *method) {
        Conn c = { .fd = connect_unix(sock, false) };
        size_t len = 0, cap = (size_t) n * (strlen(method) + 64) + 1;
        char *buf = malloc(cap), *reply = NULL;
        int replies = 0, r;

        if (c.fd < 0 || !buf) {
                fprintf(stderr, "setup failed: %m\n");
                return 1;
        }
        for (int i = 0; i < n; i++)
                len += (size_t) snprintf(buf + len, cap - len,
                                         "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"id\":%d}\n", method, i);
        r = send_all(c.fd, buf, len, NULL, 0);
        free(buf);
        if (r < 0) {
                fprintf(stderr, "send failed: %s\n", strerror(-r));
                return 1;
        }
        if (shutdown(c.fd, SHUT_WR) < 0) {
                fprintf(stderr, "shutdown failed: %m\n");
                return 1;
        }
        while ((r = read_line(&c, reply_ms(), &reply)) > 0) {
                if (strstr(reply, "\"id\":"))
                        replies++;
                free(reply);
                reply = NULL;
        }
        if (r < 0)
                fprintf(stderr, "the connection was not closed: %s\n", strerror(-r));
        printf("%d/%d requests answered before the close\n", replies, n);
        close(c.fd);
        free(c.buf);
        return r == 0 && replies == n ? 0 : 1;
}

/* Whether a line is a reply (an object with an id and no method), not a notification. */
static bool is_reply(const char *line) {
        json_object *o = json_tokener_parse(line), *v;
        bool reply;

        if (!o)
                return false;
        reply = json_object_is_type(o, json_type_array) ||
                (json_object_object_get_ex(o, "id", &v) && !json_object_object_get_ex(o, "method", &v));
        json_object_put(o);
        return reply;
}

/* One request with descriptors; prints what comes back until the reply. */
static int cmd_call(const char *sock, int argc, char *argv[]) {
        Conn c = { .fd = -1 };
        int fds[8], n_fds = 0, timeout_s = 60, r;
        const char *request = NULL;
        char *out;
        size_t len;
        long long deadline;

        for (int i = 0; i < argc; i++) {
                if ((streq_opt(argv[i], "-f") || streq_opt(argv[i], "-o")) && i + 1 < argc) {
                        bool w = argv[i][1] == 'o';
                        int fd = w ? open(argv[i + 1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) :
                                     open(argv[i + 1], O_RDONLY | O_CLOEXEC);

                        if (fd < 0 || n_fds >= 8) {
                                fprintf(stderr, "cannot open %s: %m\n", argv[i + 1]);
                                return 2;
                        }
                        fds[n_fds++] = fd;
                        i++;
                } else if (streq_opt(argv[i], "-t") && i + 1 < argc)
                        timeout_s = atoi(argv[++i]);
                else
                        request = argv[i];
        }
        if (!request) {
                fprintf(stderr, "call: no request\n");
                return 2;
        }
        c.fd = connect_unix(sock, false);
        if (c.fd < 0) {
                fprintf(stderr, "cannot connect to %s: %m\n", sock);
                return 1;
        }
        len = strlen(request);
        out = malloc(len + 1);
        memcpy(out, request, len);
        out[len] = '\n';
        r = send_all(c.fd, out, len + 1, fds, (size_t) n_fds);
        free(out);
        for (int i = 0; i < n_fds; i++)
                close(fds[i]);
        if (r < 0) {
                fprintf(stderr, "send failed: %s\n", strerror(-r));
                return 1;
        }
        deadline = now_ms() + (long long) test_deadline_ms((uint64_t) timeout_s * 1000);
        for (;;) {
                char *line = NULL;
                long long left = deadline - now_ms();

                r = left > 0 ? read_line(&c, (int) left, &line) : -ETIMEDOUT;
                if (r <= 0) {
                        fprintf(stderr, "no reply: %s\n", r == 0 ? "connection closed" : strerror(-r));
                        return 1;
                }
                printf("%s\n", line);
                fflush(stdout);
                if (is_reply(line)) {
                        free(line);
                        break;
                }
                free(line);
        }
        close(c.fd);
        free(c.buf);
        return 0;
}

int main(int argc, char *argv[]) {
        if (argc >= 4 && strcmp(argv[1], "script") == 0)
                return cmd_script(argv[2], argv[3]);
        if (argc >= 4 && strcmp(argv[1], "flood") == 0)
                return cmd_flood(argv[2], atoi(argv[3]));
        if (argc >= 4 && strcmp(argv[1], "fds") == 0)
                return cmd_fds(argv[2], atoi(argv[3]));
        if (argc >= 4 && strcmp(argv[1], "oversize") == 0)
                return cmd_oversize(argv[2], strtoul(argv[3], NULL, 10));
        if (argc >= 3 && strcmp(argv[1], "stall") == 0)
                return cmd_stall(argv[2]);
        if (argc >= 4 && strcmp(argv[1], "burst") == 0)
                return cmd_burst(argv[2], atoi(argv[3]));
        if (argc >= 4 && strcmp(argv[1], "hold") == 0)
                return cmd_hold(argv[2], atoi(argv[3]), argc >= 5 && strcmp(argv[4], "idle") == 0);
        if (argc >= 5 && strcmp(argv[1], "halfclose") == 0)
                return cmd_halfclose(argv[2], atoi(argv[3]), argv[4]);
        if (argc >= 4 && strcmp(argv[1], "call") == 0)
                return cmd_call(argv[2], argc - 3, argv + 3);
        fprintf(stderr, "usage: avatard-probe script|flood|fds|oversize|stall|burst|hold|halfclose|call SOCKET ...\n");
        return 2;
}
