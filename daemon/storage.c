/* SPDX-License-Identifier: MIT */
/*
 * Storage: S3 (path-style, SigV4 by libcurl) over Upstream. The contract is storage.h; how an
 * operation runs, and which file holds what, is in storage-internal.h. This file is the client
 * itself: its options, cancelling, freeing and the counters.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "jsonrpc.h"
#include "log.h"
#include "macro.h"
#include "storage-internal.h"

/* ---- options ------------------------------------------------------------------------------ */

/* Validates options and derives the strings we keep. */
static int options_parse(const StorageOptions *o, char **ret_endpoint, char **ret_sigv4) {
        _cleanup_free_ char *endpoint = NULL, *sigv4 = NULL;
        const char *region;
        size_t l;

        assert_return(o, -EINVAL);
        if (isempty(o->endpoint_url) ||
            !(startswith(o->endpoint_url, "http://") || startswith(o->endpoint_url, "https://")))
                return -EINVAL;
        if (o->part_size < STORAGE_PART_MIN || o->part_size > STORAGE_PART_MAX)
                return -EINVAL;
        if (o->multipart_threshold > STORAGE_PUT_MAX)
                return -EINVAL;
        if (o->concurrency > STORAGE_CONCURRENCY_MAX)
                return -EINVAL;

        region = o->region ?: STORAGE_DEFAULT_REGION;
        l = strlen(region);
        if (l == 0 || l > STORAGE_REGION_MAX)
                return -EINVAL;
        for (const char *p = region; *p; p++)
                if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
                    !(*p >= '0' && *p <= '9') && *p != '-' && *p != '_')
                        return -EINVAL;

        endpoint = strdup(o->endpoint_url);
        if (!endpoint)
                return -ENOMEM;
        for (l = strlen(endpoint); l > 0 && endpoint[l - 1] == '/'; l--)
                endpoint[l - 1] = '\0';
        if (asprintf(&sigv4, "aws:amz:%s:s3", region) < 0)
                return -ENOMEM;

        *ret_endpoint = TAKE_PTR(endpoint);
        *ret_sigv4 = TAKE_PTR(sigv4);
        return 0;
}

/* Creates the client. */
int storage_new(struct event_base *base, Upstream *upstream, const StorageOptions *opts,
                Storage **ret) {
        _cleanup_free_ char *endpoint = NULL, *sigv4 = NULL;
        Storage *s;
        int r;

        assert_return(base, -EINVAL);
        assert_return(upstream, -EINVAL);
        assert_return(opts, -EINVAL);
        assert_return(ret, -EINVAL);

        r = options_parse(opts, &endpoint, &sigv4);
        if (r < 0)
                return r;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base = base;
        s->upstream = upstream;
        s->endpoint = TAKE_PTR(endpoint);
        s->sigv4 = TAKE_PTR(sigv4);
        s->threshold = opts->multipart_threshold;
        s->part_size = opts->part_size;
        s->timeout_ms = opts->timeout_ms;
        s->concurrency = opts->concurrency ?: STORAGE_CONCURRENCY_DEFAULT;
        LIST_INIT(&s->ops);
        LIST_INIT(&s->aborts);
        *ret = s;
        return 0;
}

/* Replaces the options for operations started from now on. */
int storage_set_options(Storage *s, const StorageOptions *opts) {
        char *endpoint, *sigv4;
        int r;

        assert_return(s, -EINVAL);

        r = options_parse(opts, &endpoint, &sigv4);
        if (r < 0)
                return r;
        free(s->endpoint);
        free(s->sigv4);
        s->endpoint = endpoint;
        s->sigv4 = sigv4;
        s->threshold = opts->multipart_threshold;
        s->part_size = opts->part_size;
        s->timeout_ms = opts->timeout_ms;
        s->concurrency = opts->concurrency ?: STORAGE_CONCURRENCY_DEFAULT;
        return 0;
}

/* Builds the canonical endpoint URL for bucket/key plus an optional query. */
char *storage_object_url(const Storage *s, const char *bucket, const char *key,
                         const char *const *query) {
        if (!s || !bucket || !key)
                return NULL;
        return object_url(s->endpoint, bucket, key, query);
}

/* ---- cancel, free, statistics ------------------------------------------------------------- */

/* Cancels an operation. */
void storage_cancel(StorageOp *op) {
        if (!op || op->phase == PHASE_CANCELLED || op->phase == PHASE_DELIVERING)
                return;
        log_debug("s3://%s/%s: cancelled in phase %s", op->bucket, op->key,
                  storage_phase_to_string(op->phase));
        storage_op_stop(op);
        op->phase = PHASE_CANCELLED;
        /* Freed from the loop: the caller may be one of this operation's callbacks. */
        storage_op_arm(op, 0);
}

/* Cancels every operation and frees the client. */
Storage *storage_free(Storage *s) {
        StorageOp *op;

        if (!s)
                return NULL;
        while ((op = LIST_FIRST(&s->ops))) {
                if (op->phase != PHASE_CANCELLED)
                        storage_op_stop(op);
                LIST_REMOVE(op, link);
                op->storage = NULL;
                storage_op_free(op);
        }
        storage_aborts_cancel(s);
        free(s->endpoint);
        free(s->sigv4);
        free(s);
        return NULL;
}

/* Detached aborts in flight. */
unsigned storage_pending_aborts(const Storage *s) {
        return s ? s->n_aborts : 0;
}

/* Calls cb once the last detached abort in flight answered. */
void storage_on_drained(Storage *s, storage_drained_cb cb, void *userdata) {
        s->drained = cb;
        s->drained_userdata = userdata;
}

/* Adds one counter to a statistics object. */
static int stats_add(json_object *o, const char *name, uint64_t v) {
        json_object *n = json_object_new_int64((int64_t) MIN(v, (uint64_t) INT64_MAX));

        if (!n || json_object_object_add(o, name, n) < 0) {
                json_object_put(n);
                return -ENOMEM;
        }
        return 0;
}

/* storage_stats_json()'s text (daemon.status). */
void storage_stats_text(const Storage *s, JsonText *t, JsonTextMemo *m) {
        static const char *const names[] = { "{\"puts\":", ",\"multipart_uploads\":", ",\"parts\":",
                                             ",\"gets\":", ",\"bytes_up\":", ",\"bytes_down\":", ",\"errors\":" };
        uint64_t v[ELEMENTSOF(names)];
        size_t start;

        if (!s) {
                json_text_add_literal(t, "null");
                return;
        }
        v[0] = s->n_puts, v[1] = s->n_multipart, v[2] = s->n_parts, v[3] = s->n_gets;
        v[4] = s->bytes_up, v[5] = s->bytes_down, v[6] = s->n_errors;
        if (m && json_text_memo_hit(m, t, v, ELEMENTSOF(v), &start))
                return;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                json_text_add_literal(t, names[i]);
                json_text_add_u64(t, MIN(v[i], (uint64_t) INT64_MAX));
        }
        json_text_add_literal(t, "}");
        if (m)
                json_text_memo_keep(m, t, start);
}

/* Counters for daemon.status. */
struct json_object *storage_stats_json(const Storage *s) {
        json_object *o;

        if (!s)
                return NULL;
        o = json_object_new_object();
        if (!o)
                return NULL;
        if (stats_add(o, "puts", s->n_puts) < 0 ||
            stats_add(o, "multipart_uploads", s->n_multipart) < 0 ||
            stats_add(o, "parts", s->n_parts) < 0 || stats_add(o, "gets", s->n_gets) < 0 ||
            stats_add(o, "bytes_up", s->bytes_up) < 0 ||
            stats_add(o, "bytes_down", s->bytes_down) < 0 ||
            stats_add(o, "errors", s->n_errors) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}
