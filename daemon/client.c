/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "client.h"
#include "clock.h"
#include "config.h"
#include "errors.h"
#include "jsonrpc.h"
#include "log.h"
#include "protocol.h"

/* Most supplementary groups read from SO_PEERGROUPS (NGROUPS_MAX is 65536; real systems
 * have a handful). */
#define PEER_GROUPS_MAX 1024

/* Most descriptors queued for frames not yet complete: one message's worth plus slack. */
#define PENDING_FDS_MAX (PROTO_FDS_PER_MESSAGE_MAX * 4)

/* Bytes asked for per recvmsg. */
#define READ_CHUNK (64u * 1024u)

/* A decoder that held more than this is replaced by a fresh one once it is empty, so that a
 * connection that sent one large request does not keep its buffer while it sits idle. */
#define DECODER_KEEP_BYTES (64u * 1024u)

/* Full closes handled per wakeup of the hangup watch (the rest on the next loop turn). */
#define HANGUPS_PER_WAKEUP 64

/* At most one log line per this interval about refused input; the others are counted. */
#define REFUSED_LOG_INTERVAL_USEC (1 * USEC_PER_SEC)

static const char *const client_state_table[_CLIENT_STATE_MAX] = {
        [CLIENT_RUNNING] = "running",
        [CLIENT_CLOSING] = "closing",
        [CLIENT_DEAD] = "dead",
};

/* Returns the name of a state. */
const char *client_state_to_string(ClientState s) {
        if (s < 0 || s >= _CLIENT_STATE_MAX)
                return NULL;
        return client_state_table[s];
}

static void on_readable(evutil_socket_t fd, short what, void *userdata);
static void on_writable(evutil_socket_t fd, short what, void *userdata);
static void on_idle(evutil_socket_t fd, short what, void *userdata);
static void on_frame_deadline(evutil_socket_t fd, short what, void *userdata);
static void on_resume(evutil_socket_t fd, short what, void *userdata);
static int client_send_json(Client *c, json_object *o);
static int client_send_text(Client *c, char *text, size_t len);
static void client_call_finished(Client *c);
static bool client_is_alive(const Client *c);
static void client_maybe_resume(Client *c);
static void client_hung_up(Client *c);

/* The configuration in force: the limits. */
static const Config *client_config(const Client *c) {
        return c->host->core->config;
}

/* The client a Peer is embedded in. */
static Client *client_of(Peer *p) {
        return (Client *) ((char *) p - offsetof(Client, peer));
}

/* PeerOps: what dispatch does with the connection, by the functions below. */
static int peer_send_json(Peer *p, json_object *o) {
        return client_send_json(client_of(p), o);
}

static int peer_send_text(Peer *p, char *text, size_t len) {
        return client_send_text(client_of(p), text, len);
}

static bool peer_alive(Peer *p) {
        return client_is_alive(client_of(p));
}

static void peer_ref(Peer *p) {
        client_ref(client_of(p));
}

static void peer_unref(Peer *p) {
        client_unref(client_of(p));
}

static void peer_call_finished(Peer *p) {
        client_call_finished(client_of(p));
}

static const PeerOps client_peer_ops = {
        .send_json = peer_send_json,
        .send_text = peer_send_text,
        .alive = peer_alive,
        .ref = peer_ref,
        .unref = peer_unref,
        .call_finished = peer_call_finished,
};

/* Logs a state change at debug level and applies it. */
static void client_set_state(Client *c, ClientState s) {
        if (c->state == s)
                return;
        log_debug("Client %" PRIu64 ": %s → %s", c->id, client_state_to_string(c->state),
                  client_state_to_string(s));
        c->state = s;
}

/* Reads SO_PEERCRED, SO_PEERGROUPS and the peer's command name. */
static int client_read_peer(Client *c) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        char path[64];
        int fd;

        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        c->peer.cred.uid = cred.uid;
        c->peer.cred.gid = cred.gid;
        c->peer.cred.pid = cred.pid;

        len = 16 * sizeof(gid_t);
        for (;;) {
                gid_t *g = malloc(len ? len : sizeof(gid_t));

                if (!g)
                        return -ENOMEM;
                if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) >= 0) {
                        c->peer.cred.groups = g;
                        c->peer.cred.n_groups = len / sizeof(gid_t);
                        break;
                }
                free(g);
                if (errno != ERANGE || len / sizeof(gid_t) > PEER_GROUPS_MAX)
                        break; /* older kernels: primary gid only */
        }

        /* the command name is for logs only; a failure leaves it empty */
        snprintf(path, sizeof(path), "/proc/%d/comm", (int) c->peer.cred.pid);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) {
                ssize_t n = read(fd, c->peer.cred.comm, sizeof(c->peer.cred.comm) - 1);

                if (n > 0) {
                        c->peer.cred.comm[n] = '\0';
                        c->peer.cred.comm[strcspn(c->peer.cred.comm, "\n")] = '\0';
                }
                close(fd);
        }
        return 0;
}

/* Accepts ownership of a connected socket and starts serving it. */
int client_new(ClientHost *h, int fd, Client **ret) {
        _cleanup_(client_unrefp) Client *c = NULL;
        int r;

        c = calloc(1, sizeof(Client));
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        c->n_ref = 1;
        c->host = h;
        c->fd = fd;
        c->id = ++h->next_id;
        peer_init(&c->peer, &client_peer_ops);
        c->state = CLIENT_DEAD; /* until fully set up, so a failure path does not unlink */

        r = client_read_peer(c);
        if (r < 0)
                return log_warning_errno(r, "Failed to read peer credentials, refusing connection: %m");

        c->max_frame = (size_t) client_config(c)->max_frame_bytes;
        r = frame_decoder_new(c->max_frame, &c->decoder);
        if (r < 0)
                return r;
        c->out = evbuffer_new();
        c->read_ev = event_new(h->core->base, fd, EV_READ | EV_PERSIST, on_readable, c);
        c->write_ev = event_new(h->core->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
        c->idle_timer = evtimer_new(h->core->base, on_idle, c);
        c->frame_timer = evtimer_new(h->core->base, on_frame_deadline, c);
        c->resume_ev = event_new(h->core->base, -1, 0, on_resume, c);
        if (!c->out || !c->read_ev || !c->write_ev || !c->idle_timer || !c->frame_timer || !c->resume_ev)
                return -ENOMEM;

        r = h->ops->attach(h->userdata, c);
        if (r < 0)
                return r;

        c->state = CLIENT_RUNNING;
        if (h->hangup_fd >= 0) {
                struct epoll_event ev = { .events = 0, .data.ptr = c };

                /* no event asked for: only POLLHUP and POLLERR, that is a full close, wake it */
                if (epoll_ctl(h->hangup_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
                        log_debug_errno(errno, "Client %" PRIu64 ": cannot watch for the peer's close, "
                                        "it is noticed at the next read or write: %m", c->id);
                else
                        c->hangup_watched = true;
        }
        if (event_add(c->read_ev, NULL) < 0) {
                client_disconnect(c, "event_add failed");
                return -EIO;
        }
        c->active_usec = now_usec();
        if (client_config(c)->idle_timeout_s > 0) {
                struct timeval tv = { .tv_sec = client_config(c)->idle_timeout_s };
                evtimer_add(c->idle_timer, &tv);
        }
        log_debug("Client %" PRIu64 " connected: pid=%d uid=%u gid=%u comm=%s", c->id, (int) c->peer.cred.pid,
                  (unsigned) c->peer.cred.uid, (unsigned) c->peer.cred.gid, c->peer.cred.comm);
        if (ret)
                *ret = c;
        TAKE_PTR(c); /* the owner's list holds the initial reference */
        return 0;
}

/* Takes a reference. */
Client *client_ref(Client *c) {
        if (!c)
                return NULL;
        assert(c->n_ref > 0);
        c->n_ref++;
        return c;
}

/* Closes every queued descriptor. */
static void client_close_pending_fds(Client *c) {
        for (size_t i = 0; i < c->n_pending_fds; i++)
                safe_close(c->pending_fds[i].fd);
        c->n_pending_fds = 0;
}

/* Frees the struct (the connection is already closed). */
static Client *client_free(Client *c) {
        assert(c->state == CLIENT_DEAD);
        assert(TAILQ_EMPTY(&c->peer.calls));
        client_close_pending_fds(c);
        free(c->pending_fds);
        if (c->read_ev)
                event_free(c->read_ev);
        if (c->write_ev)
                event_free(c->write_ev);
        if (c->idle_timer)
                event_free(c->idle_timer);
        if (c->frame_timer)
                event_free(c->frame_timer);
        if (c->resume_ev)
                event_free(c->resume_ev);
        if (c->out)
                evbuffer_free(c->out);
        frame_decoder_free(c->decoder);
        safe_close(c->fd);
        free(c->peer.cred.groups);
        free(c);
        return NULL;
}

/* Drops a reference; frees on the last one. */
Client *client_unref(Client *c) {
        if (!c)
                return NULL;
        assert(c->n_ref > 0);
        if (--c->n_ref > 0)
                return NULL;
        return client_free(c);
}

/* Whether the client may still receive data. */
static bool client_is_alive(const Client *c) {
        return c && c->state == CLIENT_RUNNING && !c->hung_up;
}

/* Brings the connection's part of the input all connections hold up to date. */
static void client_account_input(Client *c) {
        ClientHost *h = c->host;
        size_t now = c->decoder ? frame_decoder_pending(c->decoder) : 0;

        h->buffered_bytes = h->buffered_bytes - c->buffered + now;
        c->buffered = now;
        c->buffered_max = MAX(c->buffered_max, now);
        h->buffered_peak = MAX(h->buffered_peak, h->buffered_bytes);
}

/* Replaces the decoder by an empty one, giving its buffer back. Only when no byte and no
 * descriptor is waiting for a frame (stream offsets start again from 0). Returns 0 or
 * -ENOMEM (the old decoder is kept then). */
static int client_renew_decoder(Client *c) {
        FrameDecoder *d;
        int r;

        assert(c->n_pending_fds == 0);
        r = frame_decoder_new(c->max_frame, &d);
        if (r < 0)
                return r;
        frame_decoder_free(c->decoder);
        c->decoder = d;
        c->buffered_max = 0;
        client_account_input(c);
        return 0;
}

/* Stops watching the connection for a full close. */
static void client_unwatch_hangup(Client *c) {
        if (!c->hangup_watched)
                return;
        c->hangup_watched = false;
        if (epoll_ctl(c->host->hangup_fd, EPOLL_CTL_DEL, c->fd, NULL) < 0)
                log_debug_errno(errno, "Client %" PRIu64 ": EPOLL_CTL_DEL failed, ignoring: %m", c->id);
}

/* Closes the connection now and cancels its calls. */
void client_disconnect(Client *c, const char *reason) {
        if (c->state == CLIENT_DEAD)
                return;
        log_debug("Client %" PRIu64 " disconnected: %s", c->id, reason);
        client_set_state(c, CLIENT_DEAD);

        event_del(c->read_ev);
        event_del(c->write_ev);
        event_del(c->idle_timer);
        event_del(c->frame_timer);
        event_del(c->resume_ev);
        client_unwatch_hangup(c);
        c->fd = safe_close(c->fd);
        client_close_pending_fds(c);
        evbuffer_drain(c->out, evbuffer_get_length(c->out));
        /* the input goes now, even while calls in flight keep the struct */
        c->decoder = frame_decoder_free(c->decoder);
        client_account_input(c);

        c->host->ops->detach(c->host->userdata, c);

        /* calls with a cancel callback stop now; others finish on their own and their reply
         * is dropped (they hold a reference, so the struct outlives them) */
        dispatch_cancel_peer(&c->peer);
        client_unref(c); /* the owner's list's reference */
}

/* Notes activity for the idle timer. The timer is not moved on each call (an event_add per
 * call was a measurable part of a cached read's cost): when it fires, handle_idle() arms it
 * again for what is left after the last activity. */
static void client_touch(Client *c) {
        if (client_config(c)->idle_timeout_s > 0 && c->state == CLIENT_RUNNING) {
                c->active_usec = now_usec();
                if (!evtimer_pending(c->idle_timer, NULL)) {
                        struct timeval tv = { .tv_sec = client_config(c)->idle_timeout_s };

                        evtimer_add(c->idle_timer, &tv);
                }
        }
}

/* Whether reading must pause: too many calls in flight or too much queued output. */
static bool client_over_limits(const Client *c) {
        const Config *cfg = client_config(c);

        return c->peer.n_inflight >= cfg->max_inflight_per_connection ||
               evbuffer_get_length(c->out) >= cfg->max_output_bytes;
}

/* Stops reading (backpressure). */
static void client_pause_reading(Client *c) {
        if (c->read_paused)
                return;
        c->read_paused = true;
        event_del(c->read_ev);
}

/* Schedules frame processing on the next loop turn. */
static void client_schedule_resume(Client *c) {
        if (c->state == CLIENT_RUNNING)
                event_active(c->resume_ev, 0, 0);
}

/* Flushes output then closes; used after a protocol error. */
static void client_close_after_flush(Client *c, const char *reason) {
        if (c->state != CLIENT_RUNNING)
                return;
        log_debug("Client %" PRIu64 ": closing after output is flushed: %s", c->id, reason);
        client_set_state(c, CLIENT_CLOSING);
        event_del(c->read_ev);
        c->read_paused = true;
        c->host->counters.closed_protocol++;
        if (evbuffer_get_length(c->out) == 0)
                client_disconnect(c, reason);
        else
                event_add(c->write_ev, NULL);
}

/* Writes queued output at once; only what the socket does not take waits for the write
 * event (saving the event add/remove pair per reply on the common path). Errors are left to
 * the write event, which closes the connection from a callback of its own. */
static void client_flush(Client *c) {
        int n;

        /* a closing connection flushes from the write event, which then closes it */
        if (c->state != CLIENT_RUNNING || c->fd < 0 || evbuffer_get_length(c->out) == 0)
                return;
        n = evbuffer_write(c->out, c->fd);
        if (n > 0)
                c->host->counters.bytes_sent += (uint64_t) n;
        if (n < 0 || evbuffer_get_length(c->out) > 0)
                event_add(c->write_ev, NULL);
}

/* Queues serialized text for sending. */
static int client_send_text(Client *c, char *text, size_t len) {
        _cleanup_free_ char *t = text;

        /* a peer that closed its end reads nothing more: its replies are dropped */
        if (!c || c->state == CLIENT_DEAD || c->fd < 0 || c->hung_up)
                return -ENOTCONN;
        /* replies are bounded by the in-flight limit; only a peer that reads nothing while
         * notifications pile up can get here, and it is let go rather than buffered forever */
        if (evbuffer_get_length(c->out) + len > 2 * client_config(c)->max_output_bytes) {
                log_warning("Client %" PRIu64 " (pid %d) is not reading its replies, disconnecting.",
                            c->id, (int) c->peer.cred.pid);
                client_disconnect(c, "output queue overflow");
                return -ENOBUFS;
        }
        if (evbuffer_add(c->out, t, len) < 0)
                return -ENOMEM;
        /* replies made while frames are processed go out together at the end of the batch */
        if (!c->processing)
                client_flush(c);
        if (client_over_limits(c))
                client_pause_reading(c);
        return 0;
}

/* Queues a JSON value for sending. */
static int client_send_json(Client *c, json_object *o) {
        char *text = NULL;
        size_t len;
        int r;

        if (!c || c->state == CLIENT_DEAD || c->fd < 0)
                return -ENOTCONN;
        r = jsonrpc_serialize(o, &text, &len);
        if (r < 0)
                return r;
        return client_send_text(c, text, len);
}

/* Writes queued output; resumes reading once it drains below half the cap. The event can
 * fire with nothing queued when client_flush() wrote it all meanwhile: evbuffer_write() then
 * returns -1 without setting errno, which is no write error. */
static void handle_writable(Client *c, evutil_socket_t fd, short what) {
        int n = 0;

        (void) fd;
        (void) what;
        if (evbuffer_get_length(c->out) > 0)
                n = evbuffer_write(c->out, c->fd);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return;
                client_disconnect(c, "write error");
                return;
        }
        c->host->counters.bytes_sent += (uint64_t) n;
        client_touch(c);
        if (evbuffer_get_length(c->out) == 0) {
                event_del(c->write_ev);
                if (c->state == CLIENT_CLOSING) {
                        client_disconnect(c, "closed after protocol error");
                        return;
                }
        }
        if (evbuffer_get_length(c->out) <= client_config(c)->max_output_bytes / 2)
                client_maybe_resume(c);
}

/* Runs handle_writable with a reference held, so the client survives its own callbacks. */
static void on_writable(evutil_socket_t fd, short what, void *userdata) {
        Client *c = client_ref(userdata);

        handle_writable(c, fd, what);
        client_unref(c);
}

/* Sends an error reply with id null and closes the connection once it is flushed. */
static void client_protocol_error(Client *c, int code, const char *message, json_object *data) {
        json_object *reply = jsonrpc_error_new(NULL, code, message, data);

        if (reply) {
                (void) client_send_json(c, reply);
                json_object_put(reply);
        }
        client_close_after_flush(c, message);
}

/* Collects the descriptors of one frame (those that arrived within its bytes), closing
 * stray ones that arrived before it. Returns the count placed in fds[]. */
static size_t client_collect_fds(Client *c, const Frame *f, int *fds, size_t max) {
        size_t n = 0, keep = 0;

        for (size_t i = 0; i < c->n_pending_fds; i++) {
                PendingFd *p = &c->pending_fds[i];

                if (p->offset < f->start_offset) {
                        /* arrived with bytes that were not part of any frame (blank lines) */
                        safe_close(p->fd);
                } else if (p->offset < f->end_offset) {
                        if (n < max)
                                fds[n++] = p->fd;
                        else
                                safe_close(p->fd);
                } else
                        c->pending_fds[keep++] = *p;
        }
        c->n_pending_fds = keep;
        return n;
}

/* Closes the connection once the peer has shut down its side (or its input was refused)
 * and everything it sent is done: no complete frame left to handle (a line the peer never
 * terminated is dropped), and — unless the peer closed the connection, so that nothing can
 * reach it — no call in flight and no reply left to write. Returns true when the connection
 * was closed. */
static bool client_maybe_finish_input(Client *c) {
        if (c->state != CLIENT_RUNNING || !c->read_eof || frame_decoder_has_line(c->decoder))
                return false;
        if (!c->hung_up && (c->peer.n_inflight > 0 || evbuffer_get_length(c->out) > 0))
                return false;
        client_disconnect(c, c->hung_up ? "closed by the peer" : "end of input");
        return true;
}

/* Arms, re-arms or stops the deadline of the request line being received: it runs from the
 * first byte of a line to its newline. `progress`: a frame was taken since the last call (the
 * bytes left begin a new line). */
static void client_update_frame_deadline(Client *c, bool progress) {
        unsigned t = client_config(c)->frame_timeout_s;

        if (t == 0 || c->state != CLIENT_RUNNING || c->read_eof || !c->decoder ||
            frame_decoder_pending(c->decoder) == 0) {
                /* the common case after every request: nothing armed, nothing to remove */
                if (c->frame_timer_armed) {
                        event_del(c->frame_timer);
                        c->frame_timer_armed = false;
                }
                return;
        }
        if (progress || !evtimer_pending(c->frame_timer, NULL)) {
                struct timeval tv = { .tv_sec = t };

                evtimer_add(c->frame_timer, &tv);
                c->frame_timer_armed = true;
        }
}

/* Takes the frame processing's leftovers into account: the input held, a large buffer given
 * back once empty, the line deadline. */
static void client_after_input(Client *c, bool progress) {
        if (!c->decoder)
                return;
        client_account_input(c);
        if (c->buffered == 0 && c->buffered_max > DECODER_KEEP_BYTES && c->n_pending_fds == 0)
                (void) client_renew_decoder(c);
        client_update_frame_deadline(c, progress);
}

/* Handles complete frames, at most PROTO_FRAMES_PER_WAKEUP per call (fairness); yields by
 * scheduling itself again when more are buffered. */
static void client_process_frames(Client *c) {
        unsigned handled = 0;
        int r;

        client_ref(c);
        c->processing = true;
        while (c->state == CLIENT_RUNNING && !client_over_limits(c)) {
                int fds[PROTO_FDS_PER_MESSAGE_MAX];
                size_t n_fds;
                Frame f;

                if (handled >= PROTO_FRAMES_PER_WAKEUP) {
                        client_schedule_resume(c);
                        break;
                }
                r = frame_decoder_next(c->decoder, &f);
                if (r == -EMSGSIZE) {
                        json_object *data = json_object_new_object();
                        char detail[128];

                        snprintf(detail, sizeof(detail), "frame larger than %" PRIu64 " bytes",
                                 client_config(c)->max_frame_bytes);
                        if (data)
                                json_object_object_add(data, "detail", json_object_new_string(detail));
                        client_protocol_error(c, RPC_INVALID_REQUEST, "Invalid Request: frame too large",
                                              data);
                        break;
                }
                if (r <= 0)
                        break;
                handled++;
                /* the frame is taken: what it held is no longer buffered input */
                client_account_input(c);
                n_fds = client_collect_fds(c, &f, fds, ELEMENTSOF(fds));
                r = dispatch_frame(c->host->dispatch, &c->peer, f.data, f.len, fds, n_fds);
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                if (r < 0) {
                        log_error_errno(r, "Failed to dispatch a request: %m");
                        client_disconnect(c, "internal error");
                        break;
                }
                /* sent before the peer closed: run, and stopped at once if it can stop */
                if (c->hung_up)
                        dispatch_cancel_peer(&c->peer);
        }
        c->processing = false;
        /* a request is activity; bytes alone are not */
        if (handled > 0)
                client_touch(c);
        client_flush(c);
        if (!client_maybe_finish_input(c))
                client_after_input(c, handled > 0);
        client_unref(c);
}

/* Stores received descriptors at the stream offset they arrived at. */
static int client_take_rights(Client *c, struct msghdr *mh, uint64_t offset) {
        int r = 0;

        for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
                size_t n;
                int *fds;

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                fds = (int *) CMSG_DATA(cm);
                for (size_t i = 0; i < n; i++) {
                        int fd;

                        memcpy(&fd, &fds[i], sizeof(int));
                        if (r < 0 || c->n_pending_fds >= PENDING_FDS_MAX) {
                                safe_close(fd);
                                r = -EMFILE;
                                continue;
                        }
                        if (!c->pending_fds) {
                                c->pending_fds = calloc(PENDING_FDS_MAX, sizeof(PendingFd));
                                if (!c->pending_fds) {
                                        safe_close(fd);
                                        r = -ENOMEM;
                                        continue;
                                }
                        }
                        c->pending_fds[c->n_pending_fds++] = (PendingFd){ offset, fd };
                }
        }
        return r;
}

/* Refuses the connection's input because all connections together hold
 * limits.max_buffered_bytes: an overloaded error (id null), its unprocessed input dropped and
 * nothing more read; its calls in flight end as usual, with their replies, and then it is
 * closed (client_maybe_finish_input). The other connections go on. */
static void client_refuse_input(Client *c) {
        ClientHost *h = c->host;
        uint64_t limit = client_config(c)->max_buffered_bytes, now = now_usec();
        json_object *data = json_object_new_object(), *reply;

        h->counters.refused_buffered++;
        if (now >= h->refused_logged_usec + REFUSED_LOG_INTERVAL_USEC) {
                log_warning("Refusing the input of client %" PRIu64 " (pid %d, uid %u): the connections hold %" PRIu64
                            " bytes of unprocessed requests, limits.max_buffered_bytes is %" PRIu64
                            "; it is closed once its %u call(s) in flight ended (%u more refused since the last message).",
                            c->id, (int) c->peer.cred.pid, (unsigned) c->peer.cred.uid, h->buffered_bytes, limit,
                            c->peer.n_inflight, h->refused_unlogged);
                h->refused_logged_usec = now;
                h->refused_unlogged = 0;
        } else
                h->refused_unlogged++;

        c->input_refused = true;
        c->read_eof = true;
        c->read_paused = true;
        event_del(c->read_ev);
        event_del(c->frame_timer);
        client_close_pending_fds(c);
        if (client_renew_decoder(c) < 0) {
                client_disconnect(c, "out of memory");
                return;
        }
        if (data) {
                json_object_object_add(data, "limit", json_object_new_string("limits.max_buffered_bytes"));
                json_object_object_add(data, "value", json_object_new_uint64(limit));
        }
        reply = jsonrpc_error_new(NULL, RPC_OVERLOADED,
                                  "Overloaded: the daemon holds too much unprocessed input from its connections "
                                  "(limits.max_buffered_bytes); this connection is read no more and closes once "
                                  "its calls in flight ended. Try again later.",
                                  data);
        if (reply) {
                (void) client_send_json(c, reply);
                json_object_put(reply);
        }
        (void) client_maybe_finish_input(c);
}

/* How many more bytes the input of all connections may hold. */
static size_t client_input_room(const Client *c) {
        uint64_t limit = client_config(c)->max_buffered_bytes, held = c->host->buffered_bytes;

        return held >= limit ? 0 : (size_t) MIN(limit - held, (uint64_t) SIZE_MAX);
}

/* Reads what is available with recvmsg() into the decoder, then handles frames. */
static void handle_readable(Client *c, evutil_socket_t fd, short what) {
        union {
                struct cmsghdr cm;
                char buf[CMSG_SPACE(sizeof(int) * PROTO_FDS_PER_MESSAGE_MAX)];
        } control;
        struct iovec iov;
        struct msghdr mh = {};
        uint64_t offset;
        size_t avail, room;
        char *p;
        ssize_t n;
        int r;

        (void) fd;
        (void) what;
        room = client_input_room(c);
        if (room == 0) {
                char b;

                /* nothing fits: is it the end of input, or bytes that are refused? (a peek
                 * without control data installs no descriptor) */
                n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n > 0) {
                        client_refuse_input(c);
                        return;
                }
                room = 1; /* the end of file (or an error): read it as usual */
        }
        r = frame_decoder_reserve(c->decoder, MIN((size_t) READ_CHUNK, room), &p, &avail);
        if (r == -ENOBUFS) {
                /* the buffer holds complete frames not taken yet (fairness cap, backpressure):
                 * stop reading until processing has consumed them */
                client_pause_reading(c);
                client_schedule_resume(c);
                return;
        }
        if (r == -EMSGSIZE) {
                /* the buffer holds an unterminated line at the limit: report and close */
                client_process_frames(c);
                return;
        }
        if (r < 0) {
                client_disconnect(c, "out of memory");
                return;
        }
        iov = (struct iovec){ p, MIN(avail, room) };
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = &control;
        mh.msg_controllen = sizeof(control);
        offset = frame_decoder_offset(c->decoder);

        n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return;
                client_disconnect(c, "read error");
                return;
        }
        r = client_take_rights(c, &mh, offset);
        if (mh.msg_flags & MSG_CTRUNC) {
                client_protocol_error(c, RPC_INVALID_REQUEST, "Invalid Request: too many descriptors",
                                      NULL);
                return;
        }
        if (r < 0) {
                client_protocol_error(c, RPC_INVALID_REQUEST,
                                      "Invalid Request: too many descriptors queued", NULL);
                return;
        }
        if (n == 0) {
                c->read_eof = true;
                event_del(c->read_ev);
                client_process_frames(c);
                return;
        }
        frame_decoder_commit(c->decoder, (size_t) n);
        c->host->counters.bytes_received += (uint64_t) n;
        /* counted at once, so that the next read (of this connection or another) sees it */
        client_account_input(c);
        client_process_frames(c);
}

/* Runs handle_readable with a reference held, so the client survives its own callbacks. */
static void on_readable(evutil_socket_t fd, short what, void *userdata) {
        Client *c = client_ref(userdata);

        handle_readable(c, fd, what);
        client_unref(c);
}

/* Continues frame processing after a yield or after backpressure cleared. */
static void handle_resume(Client *c, evutil_socket_t fd, short what) {

        (void) fd;
        (void) what;
        client_maybe_resume(c);
}

/* Runs handle_resume with a reference held, so the client survives its own callbacks. */
static void on_resume(evutil_socket_t fd, short what, void *userdata) {
        Client *c = client_ref(userdata);

        handle_resume(c, fd, what);
        client_unref(c);
}

/* Re-evaluates backpressure and resumes reading and processing if possible. */
static void client_maybe_resume(Client *c) {
        if (c->state != CLIENT_RUNNING || client_over_limits(c))
                return;
        if (c->read_paused && !c->read_eof) {
                c->read_paused = false;
                event_add(c->read_ev, NULL);
        }
        client_process_frames(c);
}

/* Called when one of its calls finished. */
static void client_call_finished(Client *c) {
        /* finished while its frames are handled (a call answered at once): the frame loop
         * goes on by itself, and notes the activity and the end of input when it ends */
        if (c->processing)
                return;
        client_touch(c);
        if (client_maybe_finish_input(c))
                return;
        if (c->state == CLIENT_RUNNING && !client_over_limits(c))
                client_schedule_resume(c);
}

/* Closes the connection when it was idle for limits.idle_timeout_s: no call in flight, and
 * neither a request handled nor a byte of output taken by the peer meanwhile (output the peer
 * does not read is no activity). */
static void handle_idle(Client *c, evutil_socket_t fd, short what) {

        uint64_t timeout = (uint64_t) client_config(c)->idle_timeout_s * USEC_PER_SEC, now = now_usec();

        (void) fd;
        (void) what;
        if (timeout == 0 || c->state != CLIENT_RUNNING)
                return; /* turned off by a reload */
        if (c->peer.n_inflight > 0 || c->n_subscriptions > 0) {
                client_touch(c);
                return;
        }
        if (now - c->active_usec < timeout) {
                uint64_t left = timeout - (now - c->active_usec);
                struct timeval tv = { .tv_sec = (time_t) (left / USEC_PER_SEC),
                                      .tv_usec = (suseconds_t) (left % USEC_PER_SEC) };

                evtimer_add(c->idle_timer, &tv);
                return;
        }
        c->host->counters.closed_idle++;
        client_disconnect(c, "idle timeout");
}

/* Runs handle_idle with a reference held, so the client survives its own callbacks. */
static void on_idle(evutil_socket_t fd, short what, void *userdata) {
        Client *c = client_ref(userdata);

        handle_idle(c, fd, what);
        client_unref(c);
}

/* The request line being received did not end within limits.frame_timeout_s of its first
 * byte: an error (id null), then the connection is closed at once (what the socket does not
 * take of the error is dropped: a peer that sends this slowly may not read either). */
static void handle_frame_deadline(Client *c, evutil_socket_t fd, short what) {
        unsigned t = client_config(c)->frame_timeout_s;
        json_object *data, *reply;
        char msg[160];
        size_t pending;

        (void) fd;
        (void) what;
        if (c->state != CLIENT_RUNNING || !c->decoder)
                return;
        /* held up on the daemon's side (reading paused behind calls in flight or unread
         * output), or a complete line waits its turn: not the peer's doing */
        if ((c->read_paused && !c->read_eof) || frame_decoder_has_line(c->decoder)) {
                client_update_frame_deadline(c, true);
                return;
        }
        pending = frame_decoder_pending(c->decoder);
        c->host->counters.closed_frame_timeout++;
        log_warning("Client %" PRIu64 " (pid %d, uid %u) sent %zu byte(s) of a request line without finishing it within "
                    "%us of its first byte (limits.frame_timeout_s): closing the connection.",
                    c->id, (int) c->peer.cred.pid, (unsigned) c->peer.cred.uid, pending, t);
        data = json_object_new_object();
        if (data) {
                json_object_object_add(data, "limit", json_object_new_string("limits.frame_timeout_s"));
                json_object_object_add(data, "seconds", json_object_new_int64(t));
                json_object_object_add(data, "bytes", json_object_new_uint64(pending));
        }
        snprintf(msg, sizeof(msg), "Timeout: the request line was not completed within %us of its first byte", t);
        reply = jsonrpc_error_new(NULL, RPC_TIMEOUT, msg, data);
        if (reply) {
                (void) client_send_json(c, reply);
                json_object_put(reply);
        }
        client_flush(c);
        client_disconnect(c, "request line timeout");
}

/* Runs handle_frame_deadline with a reference held, so the client survives its own callbacks. */
static void on_frame_deadline(evutil_socket_t fd, short what, void *userdata) {
        Client *c = client_ref(userdata);

        handle_frame_deadline(c, fd, what);
        client_unref(c);
}

/* The peer closed the connection (POLLHUP; a shutdown of its writing side alone gives none):
 * nothing reaches it any more. Its output is dropped, its calls that can stop stop now, and
 * what it sent before closing is still read and run (those calls stopped as they start);
 * the connection is closed at the end of that input. */
static void client_hung_up(Client *c) {
        if (c->state == CLIENT_DEAD || c->hung_up)
                return;
        client_unwatch_hangup(c);
        c->hung_up = true;
        c->host->counters.closed_by_peer++;
        log_debug("Client %" PRIu64 ": the peer closed the connection, %u call(s) in flight.", c->id,
                  c->peer.n_inflight);
        evbuffer_drain(c->out, evbuffer_get_length(c->out));
        event_del(c->write_ev);
        if (c->state == CLIENT_CLOSING) {
                client_disconnect(c, "closed by the peer");
                return;
        }
        dispatch_cancel_peer(&c->peer);
        if (client_maybe_finish_input(c))
                return;
        client_maybe_resume(c);
}

/* The hangup watch is readable: connections whose peer closed. One at a time, so that a
 * client another one's close disconnects is never reached through a stale event. */
static void on_hangup(evutil_socket_t fd, short what, void *userdata) {
        ClientHost *h = userdata;

        (void) fd;
        (void) what;
        for (unsigned i = 0; i < HANGUPS_PER_WAKEUP; i++) {
                struct epoll_event ev;
                Client *c;
                int n = epoll_wait(h->hangup_fd, &ev, 1, 0);

                if (n <= 0)
                        break;
                c = client_ref(ev.data.ptr);
                client_hung_up(c);
                client_unref(c);
        }
}

/* Starts watching connections for a full close. */
int client_host_start(ClientHost *h) {
        h->hangup_fd = epoll_create1(EPOLL_CLOEXEC);
        if (h->hangup_fd < 0)
                return log_warning_errno(errno, "Cannot watch connections for their peer's close, "
                                         "it is noticed at the next read or write: %m");
        h->hangup_ev = event_new(h->core->base, h->hangup_fd, EV_READ | EV_PERSIST, on_hangup, h);
        if (!h->hangup_ev || event_add(h->hangup_ev, NULL) < 0) {
                client_host_done(h);
                return log_oom();
        }
        return 0;
}

/* Stops watching. */
void client_host_done(ClientHost *h) {
        if (h->hangup_ev)
                event_free(h->hangup_ev);
        h->hangup_ev = NULL;
        h->hangup_fd = safe_close(h->hangup_fd);
}
