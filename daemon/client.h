/* SPDX-License-Identifier: MIT */
/*
 * Client: one accepted connection on the daemon's socket.
 *
 * Input is read with recvmsg() straight into the frame decoder so that SCM_RIGHTS
 * descriptors can be bound to the stream offset at which they arrived (libevent's
 * bufferevents read with recv() and would lose them). Output is an evbuffer written from a
 * write event. Every peer-controlled quantity is bounded: frame size (the decoder), queued
 * descriptors, in-flight calls and queued output (reading pauses until they drop), idle time.
 *
 * Lifetime: refcounted. A Call holds a reference on its client, so a disconnect mid-call
 * never frees memory a pending upstream completion will touch; the socket is closed at once,
 * the struct when the last reference goes (on a later loop turn). States:
 *   RUNNING → CLOSING (flush queued output, then close; after a protocol error) → DEAD.
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

#include "frame.h"
#include "macro.h"

typedef struct Call Call;
typedef struct Server Server;
typedef struct Subscription Subscription;

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

TAILQ_HEAD(CallList, Call);

typedef struct Client {
        Server *server;
        unsigned n_ref;
        uint64_t id;
        int fd;
        ClientState state;

        /* peer, read at accept */
        uid_t uid;
        gid_t gid;
        pid_t pid;
        gid_t *groups;
        size_t n_groups;
        char comm[32];

        FrameDecoder *decoder;
        struct event *read_ev;
        struct event *write_ev;
        struct event *idle_timer;
        struct event *resume_ev;       /* re-runs frame processing after a yield */
        struct evbuffer *out;

        PendingFd *pending_fds;
        size_t n_pending_fds;

        struct CallList calls;
        unsigned n_inflight;
        unsigned n_subscriptions;
        bool read_paused;
        bool read_eof;
        bool processing;               /* in client_process_frames(): replies are flushed at its end */

        TAILQ_ENTRY(Client) link;
} Client;

/* Accepts ownership of a connected socket `fd` and starts serving it. On failure the fd is
 * closed and -errno returned. */
int client_new(Server *s, int fd, Client **ret);

Client *client_ref(Client *c);
Client *client_unref(Client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Client *, client_unref);

/* Closes the connection now (cancels its calls); the struct lives on while referenced. */
void client_disconnect(Client *c, const char *reason);

/* Queues a JSON value (a reply, batch reply or notification) for sending. Borrows `o`.
 * Returns 0, -ENOTCONN when the client is gone (the value is dropped), -ENOBUFS when the
 * client is too far behind (it is disconnected), -ENOMEM. */
int client_send_json(Client *c, json_object *o);

/* Queues already serialized text (one or more complete lines). Takes text. Same returns as
 * client_send_json(). */
int client_send_text(Client *c, char *text, size_t len);

/* Sends a notification {"jsonrpc":"2.0","method":..,"params":..}. Takes params. */
int client_send_notification(Client *c, const char *method, json_object *params);

/* Whether the client may still receive data. */
bool client_is_alive(const Client *c);

/* Called when one of its calls finished: updates counts, resumes reading if paused. */
void client_call_finished(Client *c, Call *call);

/* Re-evaluates backpressure and resumes processing if possible. */
void client_maybe_resume(Client *c);
