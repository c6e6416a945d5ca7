/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for a connection as the daemon serves it (daemon/client.c): one end of a
 * socketpair is handed to client_new(), the harness writes to the other end with sendmsg()
 * — bytes and SCM_RIGHTS descriptors as the input says — and reads what comes back. So the
 * input reaches what a local peer controls: the stream cut anywhere, descriptors bound to the
 * stream offset they arrived at (collected by the frame that holds them, closed when they
 * came with blank lines, too many in one message or queued), a half close (shutdown) or a full
 * close, and behind it the real dispatcher, method handlers and services of fuzz-env.h over
 * the fake Upstream. The peer is this process (uid 0: admin).
 *
 * Input (fuzz-env.h gives the sections after the harness's part): messages, each starting with
 * a line
 *   @@ N      the bytes up to the next "@@" line (its newline included) go in one sendmsg()
 *             with N descriptors of fuzz-env.h's eight (0..N-1, then again from 0: up to 16,
 *             so more than a message may carry);
 *   @@shut    shutdown(SHUT_WR): the peer sends nothing more but still reads;
 *   @@close   the peer closes its end.
 * Bytes before the first "@@" line are a message without descriptors. After the last message
 * time runs on while calls are in flight, then the peer closes.
 *
 * Checked: everything the daemon writes is lines of JSON-RPC 2.0 (replies, notifications) with
 * documented error codes, never the API key (unless the requests hold it or create a key);
 * every call finishes once the connection is gone;
 * no descriptor is left open (the process has as many open after an input as before it);
 * nothing leaks.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "errors.h"
#include "fuzz-check.h"
#include "fuzz-env.h"
#include "jsonrpc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FDS_PER_SEND_MAX 16
#define ROUNDS_BEFORE_CLOSE 32
#define ROUNDS_AFTER_CLOSE 512
#define REPLY_DEPTH_MAX 160
#define OUT_MAX (8u * 1024u * 1024u)

static ClientHost host;
static Client *client;          /* NULL once detached */
static char *out;               /* what the daemon wrote, not yet a whole line */
static size_t out_len;
static bool trace;
static bool key_may_appear;

static int host_attach(void *userdata, Client *c) {
        (void) userdata;
        client = c;
        return 0;
}

static void host_detach(void *userdata, Client *c) {
        (void) userdata;
        assert(c == client);
        client = NULL;
}

static const ClientHostOps host_ops = {
        .attach = host_attach,
        .detach = host_detach,
};

static unsigned count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;

        assert(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        int r;

        (void) argc;
        (void) argv;
        trace = getenv("FUZZ_TRACE");
        fuzz_env_init();
        host = (ClientHost){
                .core = fuzz_env_core(),
                .dispatch = fuzz_env_dispatch(),
                .ops = &host_ops,
                .hangup_fd = -1,
        };
        r = client_host_start(&host);
        assert(r == 0);
        out = malloc(OUT_MAX);
        assert(out);
        return 0;
}

/* One line the daemon wrote (without its newline). */
static void check_line(const char *text, size_t len) {
        json_object *o = NULL;
        int r;

        if (trace)
                fprintf(stderr, "<- %.*s\n", (int) len, text);
        r = json_parse_strict(text, len, REPLY_DEPTH_MAX, &o);
        if (r < 0) {
                fprintf(stderr, "a reply that is not valid JSON (%s): %.*s\n", strerror(-r), (int) len, text);
                abort();
        }
        if (json_object_is_type(o, json_type_array)) {
                assert(json_object_array_length(o) > 0);
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        fuzz_check_message(json_object_array_get_idx(o, i));
        } else
                fuzz_check_message(o);
        if (!key_may_appear && memmem(text, len, FUZZ_API_KEY, strlen(FUZZ_API_KEY))) {
                fprintf(stderr, "the API key reached a client: %.*s\n", (int) len, text);
                abort();
        }
        json_object_put(o);
}

/* Reads what the daemon wrote so far and checks every whole line. */
static void drain(int fd) {
        for (;;) {
                char *nl;
                ssize_t k;

                if (out_len == OUT_MAX) {
                        /* one line of 8 MiB: more than any reply may be */
                        fprintf(stderr, "a line of the daemon longer than %u bytes\n", OUT_MAX);
                        abort();
                }
                k = recv(fd, out + out_len, OUT_MAX - out_len, MSG_DONTWAIT);
                if (k <= 0)
                        break;
                out_len += (size_t) k;
                while ((nl = memchr(out, '\n', out_len))) {
                        size_t n = (size_t) (nl - out);

                        check_line(out, n);
                        memmove(out, nl + 1, out_len - n - 1);
                        out_len -= n + 1;
                }
        }
}

/* Lets the daemon work until nothing is due, reading what it writes meanwhile. */
static void settle(int fd) {
        fuzz_env_settle();
        drain(fd);
        fuzz_env_settle();
        drain(fd);
}

/* Sends one message: its bytes with n descriptors on the first of them. */
static void send_message(int fd, const char *p, size_t len, unsigned n) {
        union {
                struct cmsghdr cm;
                char buf[CMSG_SPACE(sizeof(int) * FDS_PER_SEND_MAX)];
        } control = {};
        const int *menu = fuzz_env_fds();
        bool first = true;

        while (len > 0 || (first && n > 0)) {
                struct iovec iov = { (void *) p, len };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
                ssize_t k;

                if (len == 0)
                        break; /* descriptors need at least one byte to travel with */
                if (first && n > 0) {
                        struct cmsghdr *cm;

                        mh.msg_control = &control;
                        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
                        cm = CMSG_FIRSTHDR(&mh);
                        cm->cmsg_level = SOL_SOCKET;
                        cm->cmsg_type = SCM_RIGHTS;
                        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
                        for (unsigned i = 0; i < n; i++)
                                memcpy(CMSG_DATA(cm) + i * sizeof(int), &menu[i % FUZZ_FDS], sizeof(int));
                }
                k = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno != EAGAIN)
                                return; /* the daemon closed the connection */
                        settle(fd);
                        if (!client)
                                return;
                        continue;
                }
                first = false;
                p += k;
                len -= (size_t) k;
                settle(fd);
        }
}

static unsigned inflight(void) {
        return dispatch_inflight(fuzz_env_dispatch());
}

static void run_while_busy(int fd, unsigned rounds) {
        for (unsigned i = 0; i < rounds && inflight() > 0; i++) {
                if (!fuzz_env_advance())
                        break;
                drain(fd);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        unsigned fds_at_start = count_fds();
        const char *p, *end;
        size_t len;
        int s[2], peer, r;
        unsigned n_fds = 0;

        p = fuzz_env_begin((const char *) data, size, &len);
        end = p + len;
        /* the requests may name the key themselves, or create one the server names; without a
         * credential the daemon has no key to leak */
        key_may_appear = memmem(p, len, FUZZ_API_KEY, strlen(FUZZ_API_KEY)) || memmem(p, len, "create_api_key", 14) ||
                         !fuzz_env_has_key();
        out_len = 0;

        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, s) == 0);
        peer = s[1];
        r = client_new(&host, s[0], NULL);
        assert(r == 0 && client);

        while (p < end && peer >= 0 && client) {
                const char *next = p;

                /* the message's bytes: up to the next "@@" line */
                if (end - p >= 2 && memcmp(p, "@@", 2) == 0) {
                        const char *nl = memchr(p, '\n', (size_t) (end - p));
                        size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);

                        if (n == 6 && memcmp(p, "@@shut", 6) == 0)
                                (void) shutdown(peer, SHUT_WR);
                        else if (n == 7 && memcmp(p, "@@close", 7) == 0)
                                peer = safe_close(peer);
                        else if (n >= 3 && p[2] == ' ')
                                n_fds = (unsigned) strtoul(p + 3, NULL, 10) % (FDS_PER_SEND_MAX + 1);
                        p += n + (nl ? 1 : 0);
                        if (peer < 0)
                                break;
                        settle(peer);
                        continue;
                }
                for (;;) {
                        const char *nl = memchr(next, '\n', (size_t) (end - next));

                        next = nl ? nl + 1 : end;
                        if (next >= end || (end - next >= 2 && memcmp(next, "@@", 2) == 0))
                                break;
                }
                send_message(peer, p, (size_t) (next - p), n_fds);
                n_fds = 0;
                p = next;
        }
        if (peer >= 0) {
                settle(peer);
                run_while_busy(peer, ROUNDS_BEFORE_CLOSE);
        }

        /* the peer goes away; then whatever it started must end */
        peer = safe_close(peer);
        fuzz_env_settle();
        if (client)
                client_disconnect(client, "fuzz input ended");
        assert(!client);
        for (unsigned i = 0; i < ROUNDS_AFTER_CLOSE && inflight() > 0; i++)
                if (!fuzz_env_advance())
                        break;
        fuzz_env_end();
        /* every descriptor that came with a message was closed or handed back */
        if (count_fds() != fds_at_start) {
                fprintf(stderr, "%u descriptor(s) left open after the input\n", count_fds() - fds_at_start);
                abort();
        }
        return 0;
}
