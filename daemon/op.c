/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "core.h"
#include "errors.h"
#include "jsonrpc.h"
#include "macro.h"
#include "op.h"

/* The caller went away or the daemon stops: stop what only this call needed, finish it. */
static void op_on_cancel(Call *c, void *userdata) {
        Op *op = userdata;

        if (op->cancel)
                op->cancel(op);
        op_free(op);
        call_reply_error(c, RPC_SHUTTING_DOWN, "The request was cancelled", NULL);
}

/* Allocates an Op bound to the call. */
void *op_new(Call *c, size_t size) {
        Op *op = calloc(1, size);

        if (!op)
                return NULL;
        op->call = c;
        op->core = c->core;
        call_on_cancel(c, op_on_cancel, op);
        return op;
}

/* Frees an Op. */
void op_free(Op *op) {
        if (!op)
                return;
        cache_waiter_cancel(op->waiter);
        api_cancel(op->req);
        if (op->cleanup)
                op->cleanup(op);
        free(op);
}

/* Detaches the Op from its call and frees it. */
Call *op_finish(Op *op) {
        Call *c = op->call;

        call_on_cancel(c, NULL, NULL);
        op->waiter = NULL;
        op->req = NULL;
        op_free(op);
        return c;
}

/* Undoes op_new(). */
int op_start_failed(Op *op, int r) {
        call_on_cancel(op->call, NULL, NULL);
        op_free(op);
        return r;
}

/* Reads a cached upstream value for an Op. */
int op_cache_get(Op *op, const CacheRead *read, cache_done_cb cb) {
        int r = cache_get(op->core->cache, read, cb, op, &op->waiter);

        return r < 0 ? op_start_failed(op, r) : 0;
}

/* Starts an API request for an Op. */
int op_api_start(Op *op, const ApiCall *call, api_done_cb cb) {
        int r = api_start(op->core->api, call, cb, op, &op->req);

        return r < 0 ? op_start_failed(op, r) : 0;
}

/* Whether repeating a failed storage operation may succeed. */
bool op_storage_retryable(const StorageResult *res) {
        if (res->error >= 0 || res->fd_failed)
                return false;
        if (res->status >= 500 || res->status == 408 || res->status == 429)
                return true;
        if (streq_ptr(res->s3_code, "NoSuchUpload") || streq_ptr(res->s3_code, "RequestTimeout") ||
            streq_ptr(res->s3_code, "SlowDown") || streq_ptr(res->s3_code, "InternalError"))
                return true;
        if (res->status > 0)
                return false;
        switch (res->error) {
        case -ECONNREFUSED:
        case -ECONNRESET:
        case -ECONNABORTED:
        case -EHOSTUNREACH:
        case -ENETUNREACH:
        case -ENETDOWN:
        case -EHOSTDOWN:
        case -EPIPE:
        case -ETIMEDOUT:
        case -ETIME:
        case -EAGAIN:
                return true;
        default:
                return false;
        }
}

/* Finishes a call with an API error. */
int reply_api_error(Call *c, const ApiError *e) {
        return call_reply_error(c, e->code, e->message, api_error_data(e));
}

/* A CacheRead of GET path. */
CacheRead op_read_of(const Core *s, const char *key, const char *path, const char *label, unsigned ttl_s) {
        return (CacheRead){
                .key = key,
                .call = { .method = UPSTREAM_GET, .path = path, .label = label },
                .ttl_usec = (uint64_t) ttl_s * USEC_PER_SEC,
                .stale_max_usec = (uint64_t) s->config->stale_max_s * USEC_PER_SEC,
        };
}
