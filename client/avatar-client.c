/* SPDX-License-Identifier: MIT */
/*
 * libavatar-client: a blocking-with-deadline JSON-RPC 2.0 client for avatard's Unix socket.
 *
 * Glossary:
 *   pending   the one call in flight: its id and, once the reply arrived, its outcome.
 *   broken    the connection cannot carry another call (closed, framing lost, half-sent
 *             request); every later call fails with -ENOTCONN.
 *   queue     notifications read from the socket and not yet handed to the callback.
 *
 * Every wait is a poll() on the socket with a deadline; reads and writes are non-blocking.
 * A call polls for input while its request is still being written, so notifications the
 * daemon sends meanwhile are read and cannot wedge both sides on full socket buffers.
 * Input goes through proto's FrameDecoder (bounded lines), each line through
 * json_parse_strict(); requests are built with jsonrpc_request_new() and jsonrpc_serialize().
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "avatar-client.h"
#include "errors.h"
#include "frame.h"
#include "jsonrpc.h"
#include "macro.h"
#include "protocol.h"

/* JSON nesting accepted in replies. Deeper than requests (PROTO_JSON_DEPTH_MAX): rpc.discover
 * returns JSON schemas, which nest. json-c's tokener keeps its own stack of this depth. */
#define CLIENT_JSON_DEPTH_MAX 128

/* Bounds of avatar_client_set_max_reply_size(): a reply line must hold any error reply, and
 * a client never buffers more than 1 GiB for one line. */
#define CLIENT_REPLY_MAX_MIN (4u * 1024u)
#define CLIENT_REPLY_MAX_MAX (1024u * 1024u * 1024u)

/* How long connect() may block when the daemon's listen backlog is full. */
#define CLIENT_CONNECT_TIMEOUT_S 10

/* Bytes asked from the kernel per read. */
#define CLIENT_READ_CHUNK (64u * 1024u)

/* Reads per avatar_client_process() before returning to the caller's loop (fairness). */
#define CLIENT_READS_PER_PROCESS 64

/* Descriptors a message from the daemon could carry; the daemon sends none today, so any
 * that arrive are closed at once. */
#define CLIENT_RECV_FDS_MAX PROTO_FDS_PER_MESSAGE_MAX

_Static_assert(AVATAR_CLIENT_FDS_MAX == PROTO_FDS_PER_MESSAGE_MAX,
               "the client's descriptor limit is the protocol's");

/* For _cleanup_(unref_jsonp): drops a json-c reference. */
static inline void unref_jsonp(json_object **p) {
        json_object_put(*p);
}

typedef struct Notification {
        char *method;
        json_object *params;
} Notification;

typedef struct PendingCall {
        long long id;
        bool done;
        int r;                  /* 0: result, -EREMOTEIO: error, -EBADMSG: malformed reply */
        json_object *result;
        AvatarClientError error;
} PendingCall;

typedef struct Outgoing {
        const char *buf;
        size_t len;
        size_t sent;
        const int *fds;
        size_t n_fds;
        bool fds_sent;
        bool failed;            /* the daemon stopped reading (EPIPE); we keep reading */
} Outgoing;

struct AvatarClient {
        int fd;
        FrameDecoder *decoder;
        long long next_id;
        int broken;             /* 0, or the negative errno that made the connection unusable */
        bool eof;
        bool in_callback;
        bool waiting;           /* inside avatar_client_wait() */
        bool stop_wait;         /* the callback asked avatar_client_wait() to return */

        avatar_client_notification_cb cb;
        void *userdata;

        Notification *queue;    /* entries [queue_head, queue_head + queue_len) */
        size_t queue_alloc;
        size_t queue_head;
        size_t queue_len;
        size_t queue_max;
        uint64_t n_received;
        uint64_t n_dropped;
};

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The absolute deadline for a timeout in ms; INT64_MAX for "forever". */
static int64_t deadline_from_timeout(int timeout_ms) {
        return timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
}

/* The poll() timeout left until `deadline`: -1 for forever, 0 once it passed. */
static int poll_timeout(int64_t deadline) {
        int64_t left;

        if (deadline == INT64_MAX)
                return -1;
        left = deadline - now_ms();
        if (left <= 0)
                return 0;
        return (int) MIN(left, (int64_t) INT_MAX);
}

/* Marks the connection unusable for further calls; keeps the first reason. */
static int client_break(AvatarClient *c, int r) {
        if (c->broken == 0)
                c->broken = r;
        return r;
}

/* Releases what a notification holds. */
static void notification_done(Notification *n) {
        free(n->method);
        json_object_put(n->params);
}

/* Appends a notification to the queue, dropping the oldest when full. Takes method and
 * params. Returns 0 or -ENOMEM (then both are released). */
static int queue_push(AvatarClient *c, char *method, json_object *params) {
        if (c->queue_len >= c->queue_max) {
                notification_done(&c->queue[c->queue_head]);
                c->queue_head++;
                c->queue_len--;
                c->n_dropped++;
        }

        if (c->queue_head + c->queue_len == c->queue_alloc) {
                if (c->queue_head > 0) {
                        memmove(c->queue, c->queue + c->queue_head,
                                c->queue_len * sizeof(Notification));
                        c->queue_head = 0;
                } else {
                        size_t n = MAX(c->queue_alloc * 2, (size_t) 8);
                        Notification *q;

                        n = MIN(n, MAX(c->queue_max, c->queue_len + 1));
                        q = reallocarray(c->queue, n, sizeof(Notification));
                        if (!q) {
                                free(method);
                                json_object_put(params);
                                return -ENOMEM;
                        }
                        c->queue = q;
                        c->queue_alloc = n;
                }
        }

        c->queue[c->queue_head + c->queue_len++] = (Notification) {
                .method = method,
                .params = params,
        };
        c->n_received++;
        return 0;
}

/* Removes the oldest queued notification into *ret. Returns 1, or 0 when empty. */
static int queue_pop(AvatarClient *c, Notification *ret) {
        if (c->queue_len == 0)
                return 0;
        *ret = c->queue[c->queue_head];
        c->queue_head++;
        c->queue_len--;
        if (c->queue_len == 0)
                c->queue_head = 0;
        return 1;
}

/* Hands queued notifications to the callback, stopping early when avatar_client_wait() was
 * asked to stop (the rest stay queued for the next dispatch).
 * Returns how many were dispatched. */
static int dispatch_notifications(AvatarClient *c) {
        Notification n;
        int count = 0;

        while (c->cb && !(c->waiting && c->stop_wait) && queue_pop(c, &n) > 0) {
                c->in_callback = true;
                c->cb(n.method, n.params, c->userdata);
                c->in_callback = false;
                notification_done(&n);
                count++;
        }
        return count;
}

/* Resolves the pending call with an outcome, unless it already has one. */
static void pending_resolve(PendingCall *p, int r) {
        if (!p || p->done)
                return;
        p->done = true;
        p->r = r;
}

/* Fills an AvatarClientError from a JSON-RPC error object (borrowed).
 * Returns 0, -EBADMSG when it lacks an integer code or a string message, -ENOMEM. */
static int error_from_json(json_object *err, AvatarClientError *ret) {
        _cleanup_free_ char *message = NULL, *name = NULL;
        json_object *code, *msg, *data = NULL, *v;
        bool retryable = false;
        int64_t code_value;

        if (!json_object_is_type(err, json_type_object))
                return -EBADMSG;
        if (!json_object_object_get_ex(err, "code", &code) ||
            !json_object_is_type(code, json_type_int))
                return -EBADMSG;
        if (!json_object_object_get_ex(err, "message", &msg) ||
            !json_object_is_type(msg, json_type_string))
                return -EBADMSG;
        code_value = json_object_get_int64(code);
        if (code_value < INT_MIN || code_value > INT_MAX)
                return -EBADMSG;

        message = strdup(json_object_get_string(msg));
        if (!message)
                return -ENOMEM;

        (void) json_object_object_get_ex(err, "data", &data);
        if (json_object_is_type(data, json_type_object)) {
                if (json_object_object_get_ex(data, "name", &v) &&
                    json_object_is_type(v, json_type_string)) {
                        name = strdup(json_object_get_string(v));
                        if (!name)
                                return -ENOMEM;
                }
                if (json_object_object_get_ex(data, "retryable", &v) &&
                    json_object_is_type(v, json_type_boolean))
                        retryable = json_object_get_boolean(v);
        }
        if (!name) {
                const RpcErrorInfo *info = rpc_error_info((int) code_value);

                if (info && info->code == code_value && info->name) {
                        name = strdup(info->name);
                        if (!name)
                                return -ENOMEM;
                }
        }

        *ret = (AvatarClientError) {
                .code = (int) code_value,
                .message = TAKE_PTR(message),
                .name = TAKE_PTR(name),
                .retryable = retryable,
                .data = json_object_get(data),
        };
        return 0;
}

/* True when `id` is the integer id of the pending call. */
static bool id_matches(json_object *id, const PendingCall *p) {
        return p && json_object_is_type(id, json_type_int) && json_object_get_int64(id) == p->id;
}

/* Handles a reply (an object with an id) for the pending call; stray ids are dropped. */
static int handle_reply(json_object *o, json_object *id, PendingCall *p) {
        json_object *version, *result = NULL, *error = NULL;
        bool has_result, has_error;
        int r;

        /* A reply with id null answers a request the daemon could not read (parse error,
         * invalid request, oversize frame). We have at most one request in flight, so it is
         * the pending call's answer. */
        if (!id_matches(id, p) && !(id == NULL && p))
                return 0;
        if (p->done)
                return 0;

        has_result = json_object_object_get_ex(o, "result", &result);
        has_error = json_object_object_get_ex(o, "error", &error);
        if (!json_object_object_get_ex(o, "jsonrpc", &version) ||
            !json_object_is_type(version, json_type_string) ||
            !streq(json_object_get_string(version), "2.0") ||
            has_result == has_error) {
                pending_resolve(p, -EBADMSG);
                return 0;
        }
        if (id == NULL && !has_error)
                return 0; /* a result for id null is nobody's */

        if (has_result) {
                p->result = json_object_get(result);
                pending_resolve(p, 0);
                return 0;
        }

        r = error_from_json(error, &p->error);
        if (r == -ENOMEM)
                return r;
        pending_resolve(p, r < 0 ? -EBADMSG : -EREMOTEIO);
        return 0;
}

/* Handles one message object: a notification, a reply, or something we do not expect. */
static int handle_message(AvatarClient *c, json_object *o, PendingCall *p) {
        json_object *method, *id, *params = NULL;
        char *m;

        if (!json_object_is_type(o, json_type_object)) {
                pending_resolve(p, -EBADMSG);
                return 0;
        }

        if (json_object_object_get_ex(o, "method", &method)) {
                if (!json_object_is_type(method, json_type_string))
                        return 0;
                /* A request from the daemon (method and id) is not part of the protocol;
                 * ignore it rather than answer. */
                if (json_object_object_get_ex(o, "id", NULL))
                        return 0;
                (void) json_object_object_get_ex(o, "params", &params);
                m = strdup(json_object_get_string(method));
                if (!m)
                        return -ENOMEM;
                return queue_push(c, m, json_object_get(params));
        }

        if (json_object_object_get_ex(o, "id", &id))
                return handle_reply(o, id, p);

        pending_resolve(p, -EBADMSG);
        return 0;
}

/* Parses one frame and handles the message or batch it holds. */
static int handle_frame(AvatarClient *c, const Frame *f, PendingCall *p) {
        _cleanup_(unref_jsonp) json_object *o = NULL;
        size_t i, n;
        int r;

        r = json_parse_strict(f->data, f->len, CLIENT_JSON_DEPTH_MAX, &o);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* The line was not JSON. Framing is intact, so the connection stays usable,
                 * but we cannot tell whose reply this was: fail the call in flight. */
                pending_resolve(p, -EBADMSG);
                return 0;
        }

        if (!json_object_is_type(o, json_type_array))
                return handle_message(c, o, p);

        n = json_object_array_length(o);
        for (i = 0; i < n; i++) {
                r = handle_message(c, json_object_array_get_idx(o, i), p);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Handles every complete frame buffered in the decoder. */
static int drain_frames(AvatarClient *c, PendingCall *p) {
        Frame f;
        int r;

        for (;;) {
                r = frame_decoder_next(c->decoder, &f);
                if (r == -EMSGSIZE)
                        return client_break(c, r);
                if (r < 0)
                        return r;
                if (r == 0)
                        return 0;
                r = handle_frame(c, &f, p);
                if (r < 0)
                        return r;
        }
}

/* Closes descriptors that arrived in control data (the daemon has no reason to send any). */
static void close_received_fds(struct msghdr *mh) {
        struct cmsghdr *cmsg;

        for (cmsg = CMSG_FIRSTHDR(mh); cmsg; cmsg = CMSG_NXTHDR(mh, cmsg)) {
                size_t i, n;
                int *fds;

                if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
                        continue;
                n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                fds = (int *) CMSG_DATA(cmsg);
                for (i = 0; i < n; i++) {
                        int fd;

                        memcpy(&fd, fds + i, sizeof(fd));
                        (void) safe_close(fd);
                }
        }
}

/* Reads once into the decoder. Returns the number of bytes read (0 after EINTR), -EAGAIN
 * when nothing is readable, or a negative errno. End of stream sets c->eof and returns 0. */
static int read_some(AvatarClient *c) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * CLIENT_RECV_FDS_MAX)];
        } control;
        struct msghdr mh = {};
        struct iovec iov;
        size_t avail;
        ssize_t n;
        char *p;
        int r;

        r = frame_decoder_reserve(c->decoder, CLIENT_READ_CHUNK, &p, &avail);
        if (r == -EMSGSIZE)
                return client_break(c, r);
        if (r < 0)
                return r;

        iov = (struct iovec) { .iov_base = p, .iov_len = avail };
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = &control;
        mh.msg_controllen = sizeof(control);

        n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
                if (errno == EINTR)
                        return 0;
                if (errno == EAGAIN)
                        return -EAGAIN;
                if (errno == ECONNRESET || errno == EPIPE)
                        return client_break(c, -ECONNRESET);
                return client_break(c, negative_errno());
        }
        close_received_fds(&mh);

        if (n == 0) {
                c->eof = true;
                return 0;
        }
        frame_decoder_commit(c->decoder, (size_t) n);
        return (int) MIN(n, (ssize_t) INT_MAX);
}

/* Writes as much of the request as the socket takes; descriptors go with the first byte
 * written. Returns 0 (also when nothing could be written yet) or a negative errno; a daemon
 * that stopped reading sets o->failed and returns 0 so the caller can still read its
 * answer. */
static int send_some(AvatarClient *c, Outgoing *o) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * AVATAR_CLIENT_FDS_MAX)];
        } control;
        struct msghdr mh = {};
        struct iovec iov;
        ssize_t n;

        if (o->failed || o->sent >= o->len)
                return 0;

        iov = (struct iovec) { .iov_base = (char *) o->buf + o->sent, .iov_len = o->len - o->sent };
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;

        if (!o->fds_sent && o->n_fds > 0) {
                struct cmsghdr *cmsg;

                memset(&control, 0, sizeof(control));
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * o->n_fds);
                cmsg = CMSG_FIRSTHDR(&mh);
                cmsg->cmsg_level = SOL_SOCKET;
                cmsg->cmsg_type = SCM_RIGHTS;
                cmsg->cmsg_len = CMSG_LEN(sizeof(int) * o->n_fds);
                memcpy(CMSG_DATA(cmsg), o->fds, sizeof(int) * o->n_fds);
        }

        n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                        return 0;
                if (errno == EPIPE || errno == ECONNRESET) {
                        /* The daemon closed its side, maybe after an error reply that is
                         * waiting in our receive buffer: keep reading. */
                        o->failed = true;
                        return 0;
                }
                return client_break(c, negative_errno());
        }
        o->sent += (size_t) n;
        o->fds_sent = true;
        return 0;
}

/* Checks whether the client can start an operation now. */
static int client_usable(AvatarClient *c) {
        if (c->in_callback)
                return -EBUSY;
        if (c->broken < 0)
                return -ENOTCONN;
        return 0;
}

/* Builds a client around a connected socket; takes fd on success. */
static int client_new(int fd, AvatarClient **ret) {
        _cleanup_free_ AvatarClient *c = NULL;
        int r;

        c = calloc(1, sizeof(AvatarClient));
        if (!c)
                return -ENOMEM;
        r = frame_decoder_new(AVATAR_CLIENT_REPLY_MAX_DEFAULT, &c->decoder);
        if (r < 0)
                return r;
        c->fd = fd;
        c->next_id = 1;
        c->queue_max = AVATAR_CLIENT_NOTIFICATION_QUEUE_DEFAULT;
        *ret = TAKE_PTR(c);
        return 0;
}

/* Puts a socket into non-blocking mode. */
static int fd_nonblock(int fd) {
        int flags;

        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return negative_errno();
        if (flags & O_NONBLOCK)
                return 0;
        if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return negative_errno();
        return 0;
}

/* Connects to the daemon's socket (path, $AVATARD_SOCKET or the default). */
_public_ int avatar_client_connect(const char *path, AvatarClient **ret) {
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
        } sa = { .un.sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = CLIENT_CONNECT_TIMEOUT_S };
        _cleanup_close_ int fd = -1;
        socklen_t salen;
        size_t l;
        int r;

        assert_return(ret, -EINVAL);

        if (!path) {
                path = secure_getenv(AVATAR_CLIENT_SOCKET_ENV);
                if (isempty(path))
                        path = AVATAR_CLIENT_DEFAULT_SOCKET;
        }
        l = strlen(path);
        if (l == 0)
                return -EINVAL;
        if (l >= sizeof(sa.un.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.un.sun_path, path, l);
        salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1);
        if (path[0] == '@') {
                /* Linux abstract namespace, as ss(8) and systemd write it. */
                sa.un.sun_path[0] = '\0';
                salen--;
        }

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();

        /* A blocking connect bounded by SO_SNDTIMEO: a non-blocking connect on AF_UNIX fails
         * with EAGAIN when the backlog is full and cannot be polled for completion. */
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        for (;;) {
                if (connect(fd, &sa.sa, salen) >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EINPROGRESS)
                        return -ETIMEDOUT;
                return negative_errno();
        }
        tv = (struct timeval) {};
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

        r = fd_nonblock(fd);
        if (r < 0)
                return r;
        r = client_new(fd, ret);
        if (r < 0)
                return r;
        TAKE_FD(fd);
        return 0;
}

/* Wraps a connected stream socket the caller already has. */
_public_ int avatar_client_connect_fd(int fd, AvatarClient **ret) {
        int type = 0, r;
        socklen_t l = sizeof(type);

        assert_return(ret, -EINVAL);
        assert_return(fd >= 0, -EBADF);

        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0)
                return negative_errno();
        if (type != SOCK_STREAM)
                return -ESOCKTNOSUPPORT;
        r = fd_nonblock(fd);
        if (r < 0)
                return r;
        return client_new(fd, ret);
}

/* Closes the connection and frees everything the client holds. */
_public_ AvatarClient *avatar_client_free(AvatarClient *c) {
        Notification n;

        if (!c)
                return NULL;
        while (queue_pop(c, &n) > 0)
                notification_done(&n);
        free(c->queue);
        frame_decoder_free(c->decoder);
        (void) safe_close(c->fd);
        free(c);
        return NULL;
}

/* Replaces the decoder with one of the new line limit, between messages only. */
_public_ int avatar_client_set_max_reply_size(AvatarClient *c, size_t max) {
        FrameDecoder *d;
        int r;

        assert_return(c, -EINVAL);

        if (max < CLIENT_REPLY_MAX_MIN || max > CLIENT_REPLY_MAX_MAX)
                return -ERANGE;
        if (frame_decoder_pending(c->decoder) > 0)
                return -EBUSY;
        r = frame_decoder_new(max, &d);
        if (r < 0)
                return r;
        frame_decoder_free(c->decoder);
        c->decoder = d;
        return 0;
}

/* Bounds the queue of undelivered notifications, dropping the oldest beyond it. */
_public_ int avatar_client_set_notification_queue_max(AvatarClient *c, size_t max) {
        Notification n;

        assert_return(c, -EINVAL);

        if (max < 1 || max > SIZE_MAX / sizeof(Notification))
                return -ERANGE;
        c->queue_max = max;
        while (c->queue_len > max && queue_pop(c, &n) > 0) {
                notification_done(&n);
                c->n_dropped++;
        }
        return 0;
}

/* Sets where notifications go; queued ones follow at the next dispatch. */
_public_ void avatar_client_set_notification_callback(AvatarClient *c,
                                                      avatar_client_notification_cb cb,
                                                      void *userdata) {
        if (!c)
                return;
        c->cb = cb;
        c->userdata = userdata;
}

/* Sends one request and runs the read/write loop until its reply, the deadline or EOF. */
_public_ int avatar_client_call(AvatarClient *c, const char *method, json_object *params,
                                const int *fds, size_t n_fds, int timeout_ms,
                                json_object **ret_result, AvatarClientError *ret_error) {
        _cleanup_(unref_jsonp) json_object *request = NULL;
        _cleanup_free_ char *line = NULL;
        PendingCall p = { .error = AVATAR_CLIENT_ERROR_INIT };
        Outgoing out = {};
        int64_t deadline;
        size_t i, len;
        int r;

        assert_return(c, -EINVAL);
        assert_return(!isempty(method), -EINVAL);
        assert_return(!params || json_object_is_type(params, json_type_object) ||
                      json_object_is_type(params, json_type_array), -EINVAL);
        assert_return(n_fds == 0 || fds, -EINVAL);
        if (n_fds > AVATAR_CLIENT_FDS_MAX)
                return -E2BIG;
        for (i = 0; i < n_fds; i++)
                if (fds[i] < 0)
                        return -EBADF;
        r = client_usable(c);
        if (r < 0)
                return r;

        deadline = deadline_from_timeout(timeout_ms);
        p.id = c->next_id++;

        request = jsonrpc_request_new(method, json_object_get(params), p.id);
        if (!request)
                return -ENOMEM;
        r = jsonrpc_serialize(request, &line, &len);
        if (r < 0)
                return r;
        if (len > PROTO_FRAME_MAX_MAX)
                return -EMSGSIZE; /* no daemon configuration accepts a longer line */

        out = (Outgoing) { .buf = line, .len = len, .fds = fds, .n_fds = n_fds };
        r = send_some(c, &out);
        if (r < 0)
                goto finish;

        for (;;) {
                struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
                int t;

                r = drain_frames(c, &p);
                if (r < 0)
                        goto finish;
                (void) dispatch_notifications(c);
                if (p.done)
                        break;
                if (c->eof) {
                        r = client_break(c, -ECONNRESET);
                        goto finish;
                }

                if (!out.failed && out.sent < out.len)
                        pfd.events |= POLLOUT;
                t = poll_timeout(deadline);
                if (t == 0) {
                        r = -ETIMEDOUT;
                        goto finish;
                }
                if (poll(&pfd, 1, t) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto finish;
                }
                if (pfd.revents & POLLNVAL) {
                        r = client_break(c, -EBADF);
                        goto finish;
                }
                if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = read_some(c);
                        if (r < 0 && r != -EAGAIN)
                                goto finish;
                }
                if (pfd.revents & POLLOUT) {
                        r = send_some(c, &out);
                        if (r < 0)
                                goto finish;
                }
        }

        r = p.r;
        if (r == 0 && ret_result)
                *ret_result = TAKE_PTR(p.result);
        else if (r == -EREMOTEIO && ret_error) {
                avatar_client_error_done(ret_error);
                *ret_error = p.error;
                p.error = (AvatarClientError) AVATAR_CLIENT_ERROR_INIT;
        }

finish:
        /* Part of our line is on the wire: whatever we send next would be glued to it. */
        if (out.sent > 0 && out.sent < out.len)
                client_break(c, -ENOTCONN);
        /* The line may carry a secret (a password for manager.authenticate): do not leave it
         * in freed memory. */
        explicit_bzero(line, len);
        json_object_put(p.result);
        avatar_client_error_done(&p.error);
        return r;
}

/* avatar_client_call() with JSON text in and out. */
_public_ int avatar_client_call_json(AvatarClient *c, const char *method, const char *params_json,
                                     const int *fds, size_t n_fds, int timeout_ms,
                                     char **ret_result_json, AvatarClientError *ret_error) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *result = NULL;
        const char *s;
        char *text;
        int r;

        assert_return(c, -EINVAL);

        if (params_json) {
                r = json_parse_strict(params_json, strlen(params_json), CLIENT_JSON_DEPTH_MAX, &params);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return -EINVAL;
                if (params && !json_object_is_type(params, json_type_object) &&
                    !json_object_is_type(params, json_type_array))
                        return -EINVAL;
        }

        r = avatar_client_call(c, method, params, fds, n_fds, timeout_ms, &result, ret_error);
        if (r < 0)
                return r;

        if (ret_result_json) {
                s = json_object_to_json_string_ext(result, JSONRPC_WIRE_FLAGS);
                text = strdup(s ? s : "null");
                if (!text)
                        return -ENOMEM;
                *ret_result_json = text;
        }
        return 0;
}

/* Reads and dispatches notifications until the deadline, EOF or a stop request. */
_public_ int avatar_client_wait(AvatarClient *c, int timeout_ms) {
        uint64_t start;
        int64_t deadline;
        int r;

        assert_return(c, -EINVAL);

        r = client_usable(c);
        if (r < 0)
                return r;

        deadline = deadline_from_timeout(timeout_ms);
        start = c->n_received;
        c->stop_wait = false;
        c->waiting = true;

        for (;;) {
                struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
                int t;

                r = drain_frames(c, NULL);
                if (r < 0)
                        break;
                (void) dispatch_notifications(c);
                if (c->stop_wait)
                        break;
                if (c->eof) {
                        r = client_break(c, -ECONNRESET);
                        break;
                }
                t = poll_timeout(deadline);
                if (t == 0)
                        break;
                if (poll(&pfd, 1, t) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        break;
                }
                if (pfd.revents & POLLNVAL) {
                        r = client_break(c, -EBADF);
                        break;
                }
                if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = read_some(c);
                        if (r < 0 && r != -EAGAIN)
                                break;
                        r = 0;
                }
        }

        c->waiting = false;
        c->stop_wait = false;
        if (r < 0)
                return r;
        return (int) MIN(c->n_received - start, (uint64_t) INT_MAX);
}

/* Asks the running avatar_client_wait() to return. */
_public_ void avatar_client_stop_wait(AvatarClient *c) {
        if (c && c->waiting)
                c->stop_wait = true;
}

/* The socket, for the caller's poll loop. */
_public_ int avatar_client_fd(AvatarClient *c) {
        assert_return(c, -EINVAL);
        return c->fd;
}

/* Reads what is available without blocking and dispatches it. */
_public_ int avatar_client_process(AvatarClient *c) {
        uint64_t start;
        unsigned i;
        int r;

        assert_return(c, -EINVAL);

        r = client_usable(c);
        if (r < 0)
                return r;

        start = c->n_received;
        for (i = 0; i < CLIENT_READS_PER_PROCESS && !c->eof; i++) {
                r = read_some(c);
                if (r == -EAGAIN)
                        break;
                if (r < 0)
                        return r;
                r = drain_frames(c, NULL);
                if (r < 0)
                        return r;
        }
        r = drain_frames(c, NULL);
        if (r < 0)
                return r;
        (void) dispatch_notifications(c);
        if (c->eof)
                return client_break(c, -ECONNRESET);
        return (int) MIN(c->n_received - start, (uint64_t) INT_MAX);
}

/* Pops the oldest queued notification. */
_public_ int avatar_client_next_notification(AvatarClient *c, char **ret_method,
                                             json_object **ret_params) {
        Notification n;

        assert_return(c, -EINVAL);

        if (queue_pop(c, &n) == 0)
                return 0;
        if (ret_method)
                *ret_method = n.method;
        else
                free(n.method);
        if (ret_params)
                *ret_params = n.params;
        else
                json_object_put(n.params);
        return 1;
}

/* Counts notifications dropped on a full queue. */
_public_ uint64_t avatar_client_dropped_notifications(AvatarClient *c) {
        return c ? c->n_dropped : 0;
}

/* Releases an error's members and resets it. */
_public_ void avatar_client_error_done(AvatarClientError *e) {
        if (!e)
                return;
        free(e->message);
        free(e->name);
        json_object_put(e->data);
        *e = (AvatarClientError) AVATAR_CLIENT_ERROR_INIT;
}

/* The error's class name, or "unknown". */
_public_ const char *avatar_client_error_name(const AvatarClientError *e) {
        return e && e->name ? e->name : "unknown";
}

/* error.data as compact JSON text. */
_public_ int avatar_client_error_data_json(const AvatarClientError *e, char **ret) {
        const char *s;
        char *text;

        assert_return(e, -EINVAL);
        assert_return(ret, -EINVAL);

        s = json_object_to_json_string_ext(e->data, JSONRPC_WIRE_FLAGS);
        text = strdup(s ? s : "null");
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}
