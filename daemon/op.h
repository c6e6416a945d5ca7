/* SPDX-License-Identifier: MIT */
/*
 * Op: the state of one asynchronous method call. A method allocates a struct that starts with
 * an Op (op_new), keeps its pending cache waiter or API request in it, and finishes the call
 * from its completion callbacks with op_finish() + call_reply*(). When the caller
 * disconnects or the daemon stops, the Op's cancel handler stops the upstream work only this
 * call needed (shared cache reads go on for the others), runs the method's cleanup and
 * finishes the call.
 */
#pragma once

#include "api.h"
#include "cache.h"
#include "call.h"
#include "core.h"
#include "storage.h"

typedef struct Op Op;
typedef void (*op_cleanup_fn)(Op *op);
/* Called instead of the default when the call is cancelled; must stop the method's own work
 * (not the Op's waiter/req, which op_free handles). */
typedef void (*op_cancel_fn)(Op *op);

struct Op {
        Call *call;
        Core *core;
        CacheWaiter *waiter;
        ApiRequest *req;
        op_cleanup_fn cleanup;   /* releases the method's own members */
        op_cancel_fn cancel;     /* optional extra stop action */
};

/* Allocates an Op of `size` bytes (a struct that starts with Op) bound to the call. */
void *op_new(Call *c, size_t size);

/* Frees an Op, cancelling what it still waits for. */
void op_free(Op *op);

/* Detaches the Op from its call and frees it; returns the call for the final reply. The
 * caller must have cleared op->waiter / op->req for work that already completed. */
Call *op_finish(Op *op);

/* Undoes op_new() when the method fails before anything is pending; returns r. */
int op_start_failed(Op *op, int r);

/* Reads a cached upstream value; on failure to start, undoes the Op. */
int op_cache_get(Op *op, const CacheRead *read, cache_done_cb cb);

/* Starts an API request; on failure to start, undoes the Op. */
int op_api_start(Op *op, const ApiCall *call, api_done_cb cb);

/* Whether repeating a storage operation that failed so may succeed: a network failure or a
 * timeout, a 5xx, 408 or 429 answer, or an upload the storage no longer knows (NoSuchUpload:
 * it restarted) — error.data.retryable for storage_error. A failure of the caller's
 * descriptor is not. */
bool op_storage_retryable(const StorageResult *res);

/* Finishes a call with an API error. Returns 0. */
int reply_api_error(Call *c, const ApiError *e);

/* A CacheRead of GET path with a TTL and the configured stale bound. */
CacheRead op_read_of(const Core *s, const char *key, const char *path, const char *label, unsigned ttl_s);
