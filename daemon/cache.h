/* SPDX-License-Identifier: MIT */
/*
 * A cache of upstream reads, keyed by the request ("GET /jobs", "GET /jobs/<name>"), that
 * shares one upstream request between all concurrent callers (coalescing) and serves the last
 * good answer, marked stale with its age, while upstream is unreachable — up to
 * cache.stale_max_s, after which callers get the upstream error.
 *
 * An entry whose value can never change (a finished job, the results of a finished job) is
 * "final": it never expires. The cache holds at most CACHE_ENTRIES_MAX entries; the least
 * recently used entry without waiters is evicted beyond that.
 *
 * Callbacks: a fresh hit calls back synchronously from cache_get(); everything else from a
 * libevent callback. A waiter can be cancelled (its caller went away) without stopping the
 * shared request.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"

#define CACHE_ENTRIES_MAX 4096

typedef struct Cache Cache;
typedef struct CacheWaiter CacheWaiter;

/* Completion: value (borrowed) with its age, or err. stale is true when the value was
 * served because upstream failed. */
typedef void (*cache_done_cb)(json_object *value, double age_s, bool stale, const ApiError *err,
                              void *userdata);

/* Decides from a fetched value whether it is final. NULL: never final. */
typedef bool (*cache_final_fn)(json_object *value);

typedef struct CacheRead {
        const char *key;          /* copied */
        ApiCall call;             /* how to fetch it (path etc. copied by the Api) */
        uint64_t ttl_usec;        /* answers younger than this are served without a request */
        uint64_t stale_max_usec;  /* how old an answer may be to be served stale */
        cache_final_fn is_final;
        bool force;               /* skip a fresh value (still coalesces with one in flight) */
} CacheRead;

int cache_new(Api *api, Cache **ret);
Cache *cache_free(Cache *c);

/* Gets a value; see the top for when the callback runs. *ret_waiter (optional) is set
 * only when the callback has not run yet. Returns 0 or -ENOMEM. */
int cache_get(Cache *c, const CacheRead *read, cache_done_cb cb, void *userdata, CacheWaiter **ret_waiter);

/* The fresh value of a read when the cache has one (the hit cache_get() would answer at once,
 * counted as one): true with a borrowed *ret_value (valid until the loop turns) and its age;
 * false when cache_get() would have to wait. For callers that answer a hit without setting up
 * a wait. */
bool cache_peek(Cache *c, const CacheRead *read, json_object **ret_value, double *ret_age_s);

/* Stops waiting; the callback will not be called. NULL-safe. */
void cache_waiter_cancel(CacheWaiter *w);

/* Drops every entry whose key starts with prefix (after a change upstream). */
void cache_invalidate(Cache *c, const char *prefix);

/* Stores a value as if fetched now (e.g. a job seen in a list). Borrows value. */
int cache_put(Cache *c, const char *key, json_object *value, bool final);

/* {"entries", "hits", "misses", "coalesced", "stale_served", "evictions"}. New reference. */
json_object *cache_stats_json(const Cache *c);
/* cache_stats_json()'s text, byte for byte, appended to t (daemon.status); m (may be NULL)
 * keeps it while the figures are the same. */
void cache_stats_text(const Cache *c, JsonText *t, JsonTextMemo *m);
