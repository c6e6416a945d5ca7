/* SPDX-License-Identifier: MIT */
/*
 * Client: one accepted connection on the daemon's socket.
 *
 * Input is read with recvmsg() straight into the frame decoder so that SCM_RIGHTS
 * descriptors can be bound to the stream offset at which they arrived (libevent's
 * bufferevents read with recv() and would lose them). Output is an evbuffer written from a
 * write event. Every peer-controlled quantity is bounded: frame size (the decoder), queued
 * descriptors, in-flight calls and queued output (reading pauses until they drop), idle time
 * (re-armed by requests and replies, not by bytes), the time a request line may take
 * (limits.frame_timeout_s, from its first byte), and the input all connections hold together
 * (limits.max_buffered_bytes: past it, the connection whose bytes would not fit gets an
 * overloaded error, is read no more, and is closed once its calls in flight ended).
 *
 * Closing: the peer may shut down its writing side only (shutdown(SHUT_WR), as socat and
 * nc -N do after the last request): that is the end of its input, and every call it made
 * still gets its reply before the daemon closes. A peer that closes the connection (or
 * exits) can receive nothing more: its calls that can stop (waits, watches, uploads,
 * downloads) stop at once, the others finish without a reply, and the requests it sent
 * before closing are still read and run. The two look alike on a read (end of file); the
 * full close is told by POLLHUP, which the host watches on every connection with an epoll
 * instance of its own (registered with no event: only POLLHUP and POLLERR are reported), so
 * that it is noticed at once, also while reading is paused, without a write.
 *
 * Lifetime: refcounted. A call holds a reference on its client (through the Peer the client
 * embeds for dispatch), so a disconnect mid-call never frees memory a pending upstream
 * completion will touch; the socket is closed at once, the struct when the last reference goes
 * (on a later loop turn). States:
 *   RUNNING → CLOSING (flush queued output, then close; after a protocol error) → DEAD.
 *
 * A client knows its owner only as a ClientHost: the services (the configuration in force
 * gives the limits), the dispatcher, the counters it adds to, and the ClientHostOps through
 * which the owner counts and lists its connections.
 */
#pragma once

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core.h"
#include "dispatch.h"
#include "frame.h"
#include "macro.h"

typedef struct Client Client;

typedef enum ClientState {
        CLIENT_RUNNING,
        CLIENT_CLOSING,
        CLIENT_DEAD,
        _CLIENT_STATE_MAX,
        _CLIENT_STATE_INVALID = -EINVAL,
} ClientState;

const char *client_state_to_string(ClientState s);

/* A received descriptor waiting for the frame that carried it. */
typedef struct PendingFd {
        uint64_t offset;
        int fd;
} PendingFd;

/* The owner's side, called with ClientHost.userdata. */
typedef struct ClientHostOps {
        /* A connection is set up: count and list it. A negative errno refuses it (it is closed). */
        int (*attach)(void *userdata, Client *c);
        /* The connection closed: uncount and unlist it. */
        void (*detach)(void *userdata, Client *c);
} ClientHostOps;

/* What the clients add up, for daemon.status. */
typedef struct ClientCounters {
        uint64_t bytes_received;
        uint64_t bytes_sent;
        uint64_t closed_idle;
        uint64_t closed_protocol;
        uint64_t closed_by_peer;       /* full closes noticed by POLLHUP */
        uint64_t closed_frame_timeout; /* a request line not complete within frame_timeout_s */
        uint64_t refused_buffered;     /* input refused at limits.max_buffered_bytes */
} ClientCounters;

/* Given by the owner to every client it creates; outlives them. */
typedef struct ClientHost {
        Core *core;                    /* event base, configuration in force (limits) */
        Dispatch *dispatch;
        const ClientHostOps *ops;
        void *userdata;
        uint64_t next_id;
        ClientCounters counters;
        uint64_t buffered_bytes;       /* unprocessed input held by all connections */
        uint64_t buffered_peak;        /* highest buffered_bytes since the owner reset it */
        int hangup_fd;                 /* epoll instance watching every connection for POLLHUP;
                                        * -1 until client_host_start() */
        struct event *hangup_ev;
        uint64_t refused_logged_usec;  /* when a refusal was last logged (rate limit) */
        unsigned refused_unlogged;
} ClientHost;

/* Starts watching connections for a full close (set hangup_fd to -1 and fill in the rest
 * first). Without it (or when it fails, which is logged) a close is noticed at the next read
 * or write only. Returns 0 or -errno. */
int client_host_start(ClientHost *h);

/* Stops it; call once every client is disconnected. */
void client_host_done(ClientHost *h);

struct Client {
        ClientHost *host;
        unsigned n_ref;
        uint64_t id;
        int fd;
        ClientState state;

        Peer peer;                     /* credentials read at accept; calls in flight */

        FrameDecoder *decoder;         /* NULL once disconnected */
        size_t max_frame;              /* the decoder's limit (limits.max_frame_bytes at accept) */
        size_t buffered;               /* this connection's part of host->buffered_bytes */
        size_t buffered_max;           /* the most it held since its decoder was made */
        struct event *read_ev;
        struct event *write_ev;
        struct event *idle_timer;      /* armed once; re-armed for what is left when it fires */
        uint64_t active_usec;          /* the last activity (CLOCK_MONOTONIC), for idle_timer */
        struct event *frame_timer;     /* deadline of the request line being received */
        bool frame_timer_armed;        /* frame_timer may be pending (added since last removed) */
        struct event *resume_ev;       /* re-runs frame processing after a yield */
        struct evbuffer *out;

        PendingFd *pending_fds;
        size_t n_pending_fds;

        unsigned n_subscriptions;
        bool read_paused;
        bool read_eof;                 /* no more input: end of file, or input refused */
        bool processing;               /* in client_process_frames(): replies are flushed at its end */
        bool hung_up;                  /* the peer closed its end: nothing reaches it any more */
        bool hangup_watched;           /* registered in host->hangup_fd */
        bool input_refused;            /* limits.max_buffered_bytes: read no more */

        TAILQ_ENTRY(Client) link;      /* the owner's list */
};

/* Accepts ownership of a connected socket `fd` and starts serving it. On failure the fd is
 * closed and -errno returned. */
int client_new(ClientHost *h, int fd, Client **ret);

Client *client_ref(Client *c);
Client *client_unref(Client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Client *, client_unref);

/* Closes the connection now (cancels its calls); the struct lives on while referenced. */
void client_disconnect(Client *c, const char *reason);
