/* SPDX-License-Identifier: MIT */
/*
 * Dispatch: from a parsed JSON-RPC message to method handlers and back to replies.
 *
 * For each call: look the method up (-32601), check the caller's role against the method's
 * x-avatard-role (permission_denied naming the role), validate params against the OpenRPC
 * document (-32602 naming the param), then run the handler (call.h has the handler
 * contract). A batch is answered as one array once all its calls finished.
 *
 * Dispatch knows the connection a frame came from only as a Peer: its credentials, the calls
 * in flight on it (kept here), and the PeerOps the connection implements to take replies
 * and notifications and to be held while calls run.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "call.h"
typedef struct JsonText JsonText;
typedef struct JsonTextMemo JsonTextMemo;

typedef struct Dispatch Dispatch;
typedef struct DispatchCall DispatchCall;
typedef struct OpenRpc OpenRpc;
typedef struct Peer Peer;

/* The connection's side. */
typedef struct PeerOps {
        /* Queues a JSON value (borrowed) or serialized text (taken) for sending. Returns 0,
         * -ENOTCONN when the connection is gone (the value is dropped), -ENOBUFS, -ENOMEM. */
        int (*send_json)(Peer *p, json_object *o);
        int (*send_text)(Peer *p, char *text, size_t len);
        /* Whether the connection may still receive notifications. */
        bool (*alive)(Peer *p);
        /* Holds and releases the connection: a call holds it until it finished. */
        void (*ref)(Peer *p);
        void (*unref)(Peer *p);
        /* One of its calls finished (it left the list and the in-flight count). */
        void (*call_finished)(Peer *p);
} PeerOps;

TAILQ_HEAD(PeerCallList, DispatchCall);

/* Embedded in the connection. */
struct Peer {
        const PeerOps *ops;
        PeerCred cred;
        struct PeerCallList calls;     /* in flight, in arrival order (dispatch's) */
        unsigned n_inflight;
};

/* Initializes the dispatch part of a peer. */
void peer_init(Peer *p, const PeerOps *ops);

/* Called when the last call in flight (of every peer) finished. */
typedef void (*dispatch_idle_cb)(void *userdata);

/* Builds the method table from the handler tables and checks it against the OpenRPC
 * document: every documented method needs a handler and every handler a document entry.
 * Returns 0, -EINVAL with *ret_missing naming the first mismatch (static or borrowed), -ENOMEM. */
int dispatch_new(Core *core, const OpenRpc *doc, dispatch_idle_cb idle, void *userdata, Dispatch **ret,
                 const char **ret_missing);
Dispatch *dispatch_free(Dispatch *d);

/* Parses and runs one frame from peer `p` with the descriptors that came with it
 * (borrowed; the caller closes them after this returns). Errors that concern the frame are
 * answered here. Returns 0, or -ENOMEM. */
int dispatch_frame(Dispatch *d, Peer *p, const char *frame, size_t len, const int *fds, size_t n_fds);

/* The daemon is stopping: new calls are refused with shutting_down (idempotent); the Core
 * says so (Core.stopping) to the calls cancelled from now on. */
void dispatch_stop(Dispatch *d);

/* Asks every call of the peer to stop (call_cancel()): those with a cancel callback finish
 * now, the others on their own. */
void dispatch_cancel_peer(Peer *p);

/* Asks the long waits of the peer (METHOD_LONG_WAIT) to stop, as dispatch_cancel_peer()
 * does; its other calls go on. */
void dispatch_cancel_peer_waits(Peer *p);

/* Calls started and not finished, all peers. */
unsigned dispatch_inflight(const Dispatch *d);

/* Per-method request counts and per-class error counts as JSON objects (new references). */
json_object *dispatch_requests_json(const Dispatch *d);
json_object *dispatch_errors_json(const Dispatch *d);
/* Their texts, byte for byte, appended to t (daemon.status); m (may be NULL) keeps the
 * errors' while the counts are the same. */
void dispatch_requests_text(const Dispatch *d, JsonText *t);
void dispatch_errors_text(const Dispatch *d, JsonText *t, JsonTextMemo *m);
uint64_t dispatch_requests_total(const Dispatch *d);
