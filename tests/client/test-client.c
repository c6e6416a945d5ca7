/* SPDX-License-Identifier: MIT */
/*
 * libavatar-client against a scripted fake daemon (fake-daemon.c) and raw socketpairs:
 * results, errors, notifications interleaved with replies, split and oversize replies, a
 * daemon that closes mid-reply or never answers, stray replies, batches, descriptor passing.
 */
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/time.h>
#include <stdint.h>
#include <sys/socket.h>

#include "avatar-client.h"
#include "fake-daemon.h"
#include "macro.h"
#include "test-wait.h"

/* Generous, and scaled on slow legs: only hit when something is broken, never part of a
 * passing run's duration. */
#define CALL_TIMEOUT_MS ((int) test_deadline_ms(10000))

static FakeDaemon *fake;
static AvatarClient *client;

/* Starts a fake daemon and connects to it. */
static void setup(void) {
        ck_assert_int_eq(fake_daemon_start(NULL, &fake), 0);
        ck_assert_int_eq(avatar_client_connect(fake_daemon_path(fake), &client), 0);
}

/* Disconnects and stops the fake. */
static void teardown(void) {
        client = avatar_client_free(client);
        fake = fake_daemon_stop(fake);
}

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void) {
        return (int64_t) test_now_ms();
}

/* Parses JSON text the test wrote (trusted). */
static json_object *J(const char *text) {
        json_object *o = json_tokener_parse(text);

        ck_assert_ptr_nonnull(o);
        return o;
}

/* Calls with params given as JSON text; returns the result (new reference) via *ret. */
static int call_text(const char *method, const char *params, json_object **ret, AvatarClientError *e) {
        json_object *p = params ? J(params) : NULL;
        int r;

        r = avatar_client_call(client, method, p, NULL, 0, CALL_TIMEOUT_MS, ret, e);
        json_object_put(p);
        return r;
}

/* Collects notifications: their method and params.seq in order. */
typedef struct Seen {
        int n;
        char method[8][32];
        int64_t seq[8];
        int stop_after;
        int nested_r;
        bool try_nested;
} Seen;

/* The notification callback of the tests. */
static void on_notification(const char *method, json_object *params, void *userdata) {
        Seen *s = userdata;
        json_object *v;

        if (s->try_nested)
                s->nested_r = avatar_client_call(client, "echo", NULL, NULL, 0, 100, NULL, NULL);
        if (s->n < 8) {
                snprintf(s->method[s->n], sizeof(s->method[s->n]), "%s", method);
                s->seq[s->n] = json_object_object_get_ex(params, "seq", &v) ? json_object_get_int64(v) : -1;
        }
        s->n++;
        if (s->stop_after > 0 && s->n >= s->stop_after)
                avatar_client_stop_wait(client);
}

/* Connecting fails cleanly: no socket, a path too long, an empty path, a bad fd. */
START_TEST(test_connect_errors) {
        AvatarClient *c = NULL;
        char longpath[200];

        ck_assert_int_eq(avatar_client_connect("/nonexistent-dir/avatard.sock", &c), -ENOENT);
        memset(longpath, 'a', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = '\0';
        ck_assert_int_eq(avatar_client_connect(longpath, &c), -ENAMETOOLONG);
        ck_assert_int_eq(avatar_client_connect("", &c), -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(avatar_client_connect_fd(-1, &c), -EBADF);
}
END_TEST

/* $AVATARD_SOCKET picks the socket when no path is given; the socket is close-on-exec. */
START_TEST(test_connect_env) {
        AvatarClient *c = NULL;
        json_object *r = NULL;

        /* The fake serves one connection at a time. */
        client = avatar_client_free(client);
        ck_assert_int_eq(setenv(AVATAR_CLIENT_SOCKET_ENV, fake_daemon_path(fake), 1), 0);
        ck_assert_int_eq(avatar_client_connect(NULL, &c), 0);
        ck_assert_int_eq(avatar_client_call(c, "echo", NULL, NULL, 0, CALL_TIMEOUT_MS, &r, NULL), 0);
        ck_assert_ptr_null(r);
        ck_assert_int_eq(fcntl(avatar_client_fd(c), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        avatar_client_free(c);
        ck_assert_int_eq(setenv(AVATAR_CLIENT_SOCKET_ENV, "/nonexistent-dir/x.sock", 1), 0);
        ck_assert_int_eq(avatar_client_connect(NULL, &c), -ENOENT);
        unsetenv(AVATAR_CLIENT_SOCKET_ENV);
}
END_TEST

/* Results come back intact, for object, array and no params, many times on one connection. */
START_TEST(test_call_echo) {
        json_object *r = NULL, *v;

        ck_assert_int_eq(call_text("echo", "{\"a\":1,\"path\":\"x/y\",\"s\":\"line\\nbreak\"}", &r, NULL), 0);
        ck_assert(json_object_object_get_ex(r, "a", &v));
        ck_assert_int_eq(json_object_get_int(v), 1);
        ck_assert(json_object_object_get_ex(r, "s", &v));
        ck_assert_str_eq(json_object_get_string(v), "line\nbreak");
        json_object_put(r);

        /* Positional params, and a result we do not ask for. */
        ck_assert_int_eq(call_text("echo", "[1,2,3]", NULL, NULL), 0);
        /* Several calls on one connection. */
        for (int i = 0; i < 50; i++) {
                ck_assert_int_eq(call_text("echo", "[true]", &r, NULL), 0);
                ck_assert(json_object_is_type(r, json_type_array));
                json_object_put(r);
        }
}
END_TEST

/* The JSON-text API: results as compact text, bad params text refused, errors filled. */
START_TEST(test_call_json) {
        AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        char *s = NULL;

        ck_assert_int_eq(avatar_client_call_json(client, "echo", "{\"k\":\"a/b\"}", NULL, 0,
                                                 CALL_TIMEOUT_MS, &s, NULL), 0);
        ck_assert_str_eq(s, "{\"k\":\"a/b\"}");
        free(s);
        ck_assert_int_eq(avatar_client_call_json(client, "echo", NULL, NULL, 0, CALL_TIMEOUT_MS, &s, NULL), 0);
        ck_assert_str_eq(s, "null");
        free(s);
        ck_assert_int_eq(avatar_client_call_json(client, "echo", "{bad", NULL, 0, CALL_TIMEOUT_MS, &s, NULL), -EINVAL);
        ck_assert_int_eq(avatar_client_call_json(client, "echo", "42", NULL, 0, CALL_TIMEOUT_MS, &s, NULL), -EINVAL);
        ck_assert_int_eq(avatar_client_call_json(client, "nope", "{}", NULL, 0, CALL_TIMEOUT_MS, &s, &e), -EREMOTEIO);
        ck_assert_int_eq(e.code, -32601);
        ck_assert_str_eq(avatar_client_error_name(&e), "method_not_found");
        ck_assert_int_eq(avatar_client_error_data_json(&e, &s), 0);
        ck_assert_ptr_nonnull(strstr(s, "\"method\":\"nope\""));
        free(s);
        avatar_client_error_done(&e);
        avatar_client_error_done(&e);
}
END_TEST

/* Bad arguments fail before anything is sent, and the connection stays usable. */
START_TEST(test_invalid_arguments) {
        int fds[AVATAR_CLIENT_FDS_MAX + 1] = {}, bad = -1;
        json_object *scalar = json_object_new_int(3);

        ck_assert_int_eq(avatar_client_call(client, NULL, NULL, NULL, 0, 100, NULL, NULL), -EINVAL);
        ck_assert_int_eq(avatar_client_call(client, "", NULL, NULL, 0, 100, NULL, NULL), -EINVAL);
        ck_assert_int_eq(avatar_client_call(client, "echo", scalar, NULL, 0, 100, NULL, NULL), -EINVAL);
        ck_assert_int_eq(avatar_client_call(client, "echo", NULL, NULL, 1, 100, NULL, NULL), -EINVAL);
        ck_assert_int_eq(avatar_client_call(client, "echo", NULL, &bad, 1, 100, NULL, NULL), -EBADF);
        ck_assert_int_eq(avatar_client_call(client, "echo", NULL, fds, ELEMENTSOF(fds), 100, NULL, NULL), -E2BIG);
        ck_assert_int_eq(avatar_client_set_max_reply_size(client, 10), -ERANGE);
        ck_assert_int_eq(avatar_client_set_notification_queue_max(client, 0), -ERANGE);
        json_object_put(scalar);
        /* Nothing went out: the connection still works. */
        ck_assert_int_eq(call_text("echo", "{}", NULL, NULL), 0);
}
END_TEST

/* Error replies fill code, message, name (from data or the code), retryable and data. */
START_TEST(test_error_reply) {
        AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        json_object *r = NULL, *v;

        ck_assert_int_eq(call_text("fail",
                                   "{\"code\":-32006,\"name\":\"ambiguous\",\"message\":\"2 runs named x\","
                                   "\"data\":{\"candidates\":[\"a\",\"b\"]}}", &r, &e), -EREMOTEIO);
        ck_assert_ptr_null(r);
        ck_assert_int_eq(e.code, -32006);
        ck_assert_str_eq(e.message, "2 runs named x");
        ck_assert_str_eq(e.name, "ambiguous");
        ck_assert(!e.retryable);
        ck_assert(json_object_object_get_ex(e.data, "candidates", &v));
        ck_assert_int_eq(json_object_array_length(v), 2);

        /* No data: the name comes from the code. */
        ck_assert_int_eq(call_text("fail", "{\"code\":-32005,\"no_data\":1}", NULL, &e), -EREMOTEIO);
        ck_assert_str_eq(avatar_client_error_name(&e), "not_found");
        ck_assert_ptr_null(e.data);
        /* An unknown code and no name. */
        ck_assert_int_eq(call_text("fail", "{\"code\":-32099,\"no_data\":1}", NULL, &e), -EREMOTEIO);
        ck_assert_str_eq(avatar_client_error_name(&e), "unknown");
        avatar_client_error_done(&e);
        /* ret_error NULL is fine. */
        ck_assert_int_eq(call_text("fail", "{\"code\":-32005}", NULL, NULL), -EREMOTEIO);
        ck_assert_int_eq(call_text("echo", "{}", NULL, NULL), 0);
}
END_TEST

/* Notifications that precede the reply reach the callback, in order, before call returns. */
START_TEST(test_notifications_before_reply) {
        Seen s = {};
        json_object *r = NULL;

        avatar_client_set_notification_callback(client, on_notification, &s);
        ck_assert_int_eq(call_text("notify_then_reply", "{\"count\":5}", &r, NULL), 0);
        ck_assert_str_eq(json_object_get_string(r), "done");
        json_object_put(r);
        ck_assert_int_eq(s.n, 5);
        for (int i = 0; i < 5; i++) {
                ck_assert_str_eq(s.method[i], "test.event");
                ck_assert_int_eq(s.seq[i], i);
        }
}
END_TEST

/* Without a callback notifications queue up to the bound, dropping the oldest. */
START_TEST(test_notification_queue) {
        char *method = NULL;
        json_object *params = NULL, *v;
        Seen s = {};

        ck_assert_int_eq(avatar_client_set_notification_queue_max(client, 4), 0);
        ck_assert_int_eq(call_text("notify_then_reply", "{\"count\":10}", NULL, NULL), 0);
        ck_assert_int_eq(avatar_client_dropped_notifications(client), 6);
        for (int i = 6; i < 8; i++) {
                ck_assert_int_eq(avatar_client_next_notification(client, &method, &params), 1);
                ck_assert_str_eq(method, "test.event");
                ck_assert(json_object_object_get_ex(params, "seq", &v));
                ck_assert_int_eq(json_object_get_int(v), i);
                free(method);
                json_object_put(params);
        }
        /* The rest goes to a callback set later. */
        avatar_client_set_notification_callback(client, on_notification, &s);
        ck_assert_int_eq(call_text("echo", "{}", NULL, NULL), 0);
        ck_assert_int_eq(s.n, 2);
        ck_assert_int_eq(s.seq[0], 8);
        ck_assert_int_eq(s.seq[1], 9);
        ck_assert_int_eq(avatar_client_next_notification(client, NULL, NULL), 0);
}
END_TEST

/* A reply written in many small pieces is reassembled. */
START_TEST(test_split_reply) {
        json_object *r = NULL;

        ck_assert_int_eq(call_text("split", "{\"size\":200000,\"chunk\":997}", &r, NULL), 0);
        ck_assert_int_eq(json_object_get_string_len(r), 200000);
        json_object_put(r);
        ck_assert_int_eq(call_text("split", "{\"size\":300,\"chunk\":1}", &r, NULL), 0);
        ck_assert_int_eq(json_object_get_string_len(r), 300);
        json_object_put(r);
}
END_TEST

/* A reply over the size limit fails with -EMSGSIZE and ends the connection. */
START_TEST(test_oversize_reply) {
        json_object *r = NULL;

        ck_assert_int_eq(avatar_client_set_max_reply_size(client, 64 * 1024), 0);
        ck_assert_int_eq(call_text("oversize", "{\"size\":60000}", &r, NULL), 0);
        json_object_put(r);
        r = NULL;
        ck_assert_int_eq(call_text("oversize", "{\"size\":131072}", &r, NULL), -EMSGSIZE);
        ck_assert_ptr_null(r);
        ck_assert_int_eq(call_text("echo", "{}", NULL, NULL), -ENOTCONN);
}
END_TEST

/* A daemon that closes in the middle of a reply gives -ECONNRESET, then -ENOTCONN. */
START_TEST(test_close_mid_reply) {
        ck_assert_int_eq(call_text("close_mid", "{}", NULL, NULL), -ECONNRESET);
        ck_assert_int_eq(call_text("echo", "{}", NULL, NULL), -ENOTCONN);
        ck_assert_int_eq(avatar_client_wait(client, 0), -ENOTCONN);
}
END_TEST

/* A call times out on time; its late reply is later dropped as stray. */
START_TEST(test_timeout_then_stray_reply) {
        json_object *r = NULL;
        int64_t t0 = now_ms(), dt;

        ck_assert_int_eq(avatar_client_call(client, "never", NULL, NULL, 0, 150, &r, NULL), -ETIMEDOUT);
        dt = now_ms() - t0;
        ck_assert_int_ge(dt, 140);
        /* and not much later: the bound is scaled, a slow leg is slow everywhere */
        ck_assert_int_lt(dt, (int64_t) test_deadline_ms(5000));
        /* The late reply to "never" arrives first and must be dropped. */
        ck_assert_int_eq(call_text("echo", "[\"fresh\"]", &r, NULL), 0);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(r, 0)), "fresh");
        json_object_put(r);
        /* A zero timeout fails at once. */
        ck_assert_int_eq(avatar_client_call(client, "never", NULL, NULL, 0, 0, NULL, NULL), -ETIMEDOUT);
}
END_TEST

/* Unknown ids, batch replies, daemon requests, garbage and id-null errors are handled. */
START_TEST(test_stray_batch_garbage) {
        AvatarClientError e = AVATAR_CLIENT_ERROR_INIT;
        json_object *r = NULL;

        ck_assert_int_eq(call_text("stray_first", NULL, &r, NULL), 0);
        ck_assert_str_eq(json_object_get_string(r), "real");
        json_object_put(r);

        ck_assert_int_eq(call_text("batch", NULL, &r, NULL), 0);
        ck_assert_str_eq(json_object_get_string(r), "in a batch");
        json_object_put(r);

        ck_assert_int_eq(call_text("server_request", NULL, &r, NULL), 0);
        ck_assert_str_eq(json_object_get_string(r), "real");
        json_object_put(r);

        ck_assert_int_eq(call_text("garbage", NULL, NULL, NULL), -EBADMSG);
        ck_assert_int_eq(call_text("bad_reply", NULL, NULL, NULL), -EBADMSG);
        /* Framing is intact after a bad line: the connection goes on. */
        ck_assert_int_eq(call_text("echo", "{}", NULL, NULL), 0);

        ck_assert_int_eq(call_text("null_id_error", NULL, NULL, &e), -EREMOTEIO);
        ck_assert_int_eq(e.code, -32600);
        ck_assert_str_eq(e.name, "invalid_request");
        avatar_client_error_done(&e);
}
END_TEST

/* Creates an unlinked temporary file holding `content`. */
static int temp_file(const char *content) {
        char path[] = "/tmp/avatar-client-test-XXXXXX";
        int fd = mkstemp(path);

        ck_assert_int_ge(fd, 0);
        unlink(path);
        if (content)
                ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t) strlen(content));
        return fd;
}

/* Descriptors reach the daemon, which reads one and writes the other. */
START_TEST(test_fd_passing) {
        json_object *r = NULL, *v;
        int fds[2];
        char buf[64] = {};

        fds[0] = temp_file("table,contents\n1,2\n");
        fds[1] = temp_file(NULL);
        ck_assert_int_eq(avatar_client_call(client, "fds", NULL, fds, 2, CALL_TIMEOUT_MS, &r, NULL), 0);
        ck_assert(json_object_object_get_ex(r, "n_fds", &v));
        ck_assert_int_eq(json_object_get_int(v), 2);
        ck_assert(json_object_object_get_ex(r, "content", &v));
        ck_assert_str_eq(json_object_get_string(v), "table,contents\n1,2\n");
        json_object_put(r);

        ck_assert_int_eq(pread(fds[1], buf, sizeof(buf) - 1, 0), 16);
        ck_assert_str_eq(buf, "written by fake\n");
        /* Our descriptors stay ours and open. */
        ck_assert_int_ge(fcntl(fds[0], F_GETFD), 0);
        close(fds[0]);
        close(fds[1]);
}
END_TEST

/* A request larger than the socket buffer still carries its descriptor. */
START_TEST(test_large_request_with_fd) {
        json_object *r = NULL, *params, *v;
        size_t n = 3 * 1024 * 1024;
        char *big = malloc(n + 1);
        int fd = temp_file("x");

        /* Larger than the socket buffer: sendmsg writes it in several pieces and the
         * descriptor must travel with the first. */
        ck_assert_ptr_nonnull(big);
        memset(big, 'a', n);
        big[n] = '\0';
        params = json_object_new_object();
        json_object_object_add(params, "blob", json_object_new_string(big));
        free(big);
        ck_assert_int_eq(avatar_client_call(client, "size", params, &fd, 1, CALL_TIMEOUT_MS, &r, NULL), 0);
        ck_assert(json_object_object_get_ex(r, "n_fds", &v));
        ck_assert_int_eq(json_object_get_int(v), 1);
        ck_assert(json_object_object_get_ex(r, "length", &v));
        ck_assert_int_gt(json_object_get_int64(v), (int64_t) n);
        json_object_put(r);
        json_object_put(params);
        close(fd);
}
END_TEST

/* avatar_client_wait() dispatches until the callback stops it, or until its timeout. */
START_TEST(test_wait_and_stop) {
        Seen s = { .stop_after = 3 };
        int64_t t0;

        /* Without a callback during the call, whatever arrives with the reply is queued. */
        ck_assert_int_eq(call_text("subscribe", "{\"count\":5}", NULL, NULL), 0);
        avatar_client_set_notification_callback(client, on_notification, &s);
        t0 = now_ms();
        ck_assert_int_ge(avatar_client_wait(client, CALL_TIMEOUT_MS), 0);
        ck_assert_int_lt(now_ms() - t0, CALL_TIMEOUT_MS / 2);
        ck_assert_int_eq(s.n, 3);
        s.stop_after = 5;
        ck_assert_int_ge(avatar_client_wait(client, CALL_TIMEOUT_MS), 0);
        ck_assert_int_eq(s.n, 5);
        ck_assert_str_eq(s.method[4], "job.progress");
        ck_assert_int_eq(s.seq[4], 4);
        /* Nothing more comes: the wait ends at its timeout. */
        s.stop_after = 0;
        ck_assert_int_eq(avatar_client_wait(client, 50), 0);
        ck_assert_int_eq(s.n, 5);
}
END_TEST

/* avatar_client_wait() returns -ECONNRESET when the daemon closes, after dispatching. */
START_TEST(test_wait_until_close) {
        Seen s = {};

        avatar_client_set_notification_callback(client, on_notification, &s);
        ck_assert_int_eq(call_text("subscribe", "{\"count\":4,\"close\":1}", NULL, NULL), 0);
        ck_assert_int_eq(avatar_client_wait(client, CALL_TIMEOUT_MS), -ECONNRESET);
        ck_assert_int_eq(s.n, 4);
}
END_TEST

/* One turn of a caller's poll loop: processes the client's socket when poll() says it is
 * readable. True once six notifications were dispatched. */
static bool poll_turn(void *userdata) {
        Seen *s = userdata;
        struct pollfd p = { .fd = avatar_client_fd(client), .events = POLLIN };
        int r = poll(&p, 1, 0);

        ck_assert_int_ge(r, 0);
        if (r > 0)
                ck_assert_int_ge(avatar_client_process(client), 0);
        return s->n >= 6;
}

/* avatar_client_fd() + avatar_client_process() drive notifications from a poll loop. */
START_TEST(test_process_in_poll_loop) {
        Seen s = {};

        avatar_client_set_notification_callback(client, on_notification, &s);
        ck_assert_int_eq(call_text("subscribe", "{\"count\":6}", NULL, NULL), 0);
        ck_assert_msg(test_poll_until(poll_turn, &s, TEST_WAIT_MS), "%d of 6 notifications", s.n);
        ck_assert_int_eq(s.n, 6);
        /* Nothing readable: process returns at once. */
        ck_assert_int_eq(avatar_client_process(client), 0);
}
END_TEST

/* A callback cannot start a call on the same client. */
START_TEST(test_no_reentrancy) {
        Seen s = { .try_nested = true };

        avatar_client_set_notification_callback(client, on_notification, &s);
        ck_assert_int_eq(call_text("notify_then_reply", "{\"count\":1}", NULL, NULL), 0);
        ck_assert_int_eq(s.n, 1);
        ck_assert_int_eq(s.nested_r, -EBUSY);
}
END_TEST

/* Does nothing: its only purpose is to interrupt system calls. */
static void on_alarm(int sig) {
        (void) sig;
}

/* Signals without SA_RESTART interrupt poll() and recvmsg(): a call still waits its whole
 * timeout, and still assembles whole replies. */
START_TEST(test_eintr) {
        struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
        struct itimerval it = { .it_interval = { 0, 3000 }, .it_value = { 0, 3000 } };
        json_object *r = NULL;
        int64_t t0;

        ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
        ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);

        t0 = now_ms();
        ck_assert_int_eq(avatar_client_call(client, "never", NULL, NULL, 0, 200, NULL, NULL), -ETIMEDOUT);
        ck_assert_int_ge(now_ms() - t0, 190);
        ck_assert_int_eq(call_text("split", "{\"size\":100000,\"chunk\":500}", &r, NULL), 0);
        ck_assert_int_eq(json_object_get_string_len(r), 100000);
        json_object_put(r);

        it = (struct itimerval) {};
        ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}
END_TEST

/* A client on one end of a socketpair; the test plays the daemon on *ret_peer. */
static AvatarClient *pair_client(int *ret_peer) {
        AvatarClient *c = NULL;
        int sv[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(avatar_client_connect_fd(sv[0], &c), 0);
        *ret_peer = sv[1];
        return c;
}

/* Writes a string to the fake end of a socketpair. */
static void peer_write(int fd, const char *s) {
        ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t) strlen(s));
}

/* Input that arrived before the call (CRLF, empty lines, notifications) is handled. */
START_TEST(test_pair_reply_queued_early) {
        json_object *r = NULL;
        int peer;
        AvatarClient *c = pair_client(&peer);

        /* Notifications, CRLF, empty lines and the reply are all waiting before the call. */
        peer_write(peer, "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":{\"seq\":1}}\r\n\n"
                         "{\"jsonrpc\":\"2.0\",\"result\":{\"ok\":true},\"id\":1}\n"
                         "{\"jsonrpc\":\"2.0\",\"method\":\"b\"}\n");
        ck_assert_int_eq(avatar_client_call(c, "x", NULL, NULL, 0, CALL_TIMEOUT_MS, &r, NULL), 0);
        ck_assert(json_object_is_type(r, json_type_object));
        json_object_put(r);
        /* Both notifications were read and queued. */
        ck_assert_int_eq(avatar_client_next_notification(c, NULL, NULL), 1);
        ck_assert_int_eq(avatar_client_next_notification(c, NULL, NULL), 1);
        ck_assert_int_eq(avatar_client_next_notification(c, NULL, NULL), 0);
        avatar_client_free(c);
        close(peer);
}
END_TEST

/* EOF after part of a line is -ECONNRESET. */
START_TEST(test_pair_eof_partial_line) {
        int peer;
        AvatarClient *c = pair_client(&peer);

        peer_write(peer, "{\"jsonrpc\":\"2.0\",\"result\":1,\"i");
        close(peer);
        ck_assert_int_eq(avatar_client_call(c, "x", NULL, NULL, 0, CALL_TIMEOUT_MS, NULL, NULL), -ECONNRESET);
        avatar_client_free(c);
}
END_TEST

/* avatar_client_process() delivers what arrived, then reports EOF. */
START_TEST(test_pair_process_eof) {
        int peer;
        AvatarClient *c = pair_client(&peer);
        char *m = NULL;

        peer_write(peer, "{\"jsonrpc\":\"2.0\",\"method\":\"bye\"}\n");
        close(peer);
        ck_assert_int_eq(avatar_client_process(c), -ECONNRESET);
        ck_assert_int_eq(avatar_client_next_notification(c, &m, NULL), 1);
        ck_assert_str_eq(m, "bye");
        free(m);
        avatar_client_free(c);
}
END_TEST

/* The test suite. */
static Suite *client_suite(void) {
        Suite *s = suite_create("client");
        TCase *tc;

        tc = tcase_create("library");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 30 * test_time_scale());
        tcase_add_test(tc, test_connect_errors);
        tcase_add_test(tc, test_connect_env);
        tcase_add_test(tc, test_call_echo);
        tcase_add_test(tc, test_call_json);
        tcase_add_test(tc, test_invalid_arguments);
        tcase_add_test(tc, test_error_reply);
        tcase_add_test(tc, test_notifications_before_reply);
        tcase_add_test(tc, test_notification_queue);
        tcase_add_test(tc, test_split_reply);
        tcase_add_test(tc, test_oversize_reply);
        tcase_add_test(tc, test_close_mid_reply);
        tcase_add_test(tc, test_timeout_then_stray_reply);
        tcase_add_test(tc, test_stray_batch_garbage);
        tcase_add_test(tc, test_fd_passing);
        tcase_add_test(tc, test_large_request_with_fd);
        tcase_add_test(tc, test_wait_and_stop);
        tcase_add_test(tc, test_wait_until_close);
        tcase_add_test(tc, test_process_in_poll_loop);
        tcase_add_test(tc, test_no_reentrancy);
        tcase_add_test(tc, test_eintr);
        suite_add_tcase(s, tc);

        tc = tcase_create("socketpair");
        tcase_set_timeout(tc, 30 * test_time_scale());
        tcase_add_test(tc, test_pair_reply_queued_early);
        tcase_add_test(tc, test_pair_eof_partial_line);
        tcase_add_test(tc, test_pair_process_eof);
        suite_add_tcase(s, tc);

        return s;
}

/* Runs the suite; the exit status is the result. */
int main(void) {
        SRunner *sr = srunner_create(client_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
