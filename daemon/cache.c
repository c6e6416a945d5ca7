/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <json-c/linkhash.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "cache.h"
#include "clock.h"
#include "errors.h"
#include "log.h"
#include "jsonrpc.h"
#include "macro.h"

typedef struct CacheEntry CacheEntry;

TAILQ_HEAD(WaiterList, CacheWaiter);

struct CacheWaiter {
        struct WaiterList *list;    /* the list it is on: the entry's, or one being delivered */
        cache_done_cb cb;
        void *userdata;
        TAILQ_ENTRY(CacheWaiter) link;
};

struct CacheEntry {
        Cache *cache;
        char *key;
        json_object *value;
        uint64_t fetched_usec;
        bool final;
        bool orphan;               /* dropped from the table while its request was in flight */
        bool busy;                 /* delivering: callbacks may not free it */
        ApiRequest *req;
        cache_final_fn is_final;
        uint64_t stale_max_usec;
        struct WaiterList waiters;
        TAILQ_ENTRY(CacheEntry) lru;
};

TAILQ_HEAD(EntryList, CacheEntry);

struct Cache {
        Api *api;
        struct lh_table *table;
        struct EntryList lru;      /* least recently used first */
        size_t n_entries;
        uint64_t hits, misses, coalesced, stale_served, evictions, errors;
};

/* Creates the cache. */
int cache_new(Api *api, Cache **ret) {
        Cache *c = calloc(1, sizeof(Cache));

        if (!c)
                return -ENOMEM;
        /* keys are owned by the entries; the table only points at them */
        c->table = lh_kchar_table_new(256, NULL);
        if (!c->table) {
                free(c);
                return -ENOMEM;
        }
        c->api = api;
        TAILQ_INIT(&c->lru);
        *ret = c;
        return 0;
}

/* Takes an entry out of the table; it lives on (orphan) until its request completes. */
static void entry_orphan(CacheEntry *e) {
        Cache *c = e->cache;

        if (e->orphan)
                return;
        lh_table_delete(c->table, e->key);
        TAILQ_REMOVE(&c->lru, e, lru);
        c->n_entries--;
        e->orphan = true;
}

/* Frees an entry that has no waiters left (cancelling its request). */
static void entry_free(CacheEntry *e) {
        assert(TAILQ_EMPTY(&e->waiters));
        if (e->req)
                api_cancel(e->req);
        entry_orphan(e);
        json_object_put(e->value);
        free(e->key);
        free(e);
}

/* Frees the cache: waiters are dropped without callbacks. */
Cache *cache_free(Cache *c) {
        CacheEntry *e;

        if (!c)
                return NULL;
        while ((e = TAILQ_FIRST(&c->lru))) {
                CacheWaiter *w;

                while ((w = TAILQ_FIRST(&e->waiters))) {
                        TAILQ_REMOVE(&e->waiters, w, link);
                        free(w);
                }
                entry_free(e);
        }
        lh_table_free(c->table);
        free(c);
        return NULL;
}

/* Looks an entry up. */
static CacheEntry *entry_find(Cache *c, const char *key) {
        void *v = NULL;

        if (!lh_table_lookup_ex(c->table, key, &v))
                return NULL;
        return v;
}

/* Marks an entry as just used. */
static void entry_touch(CacheEntry *e) {
        if (e->orphan)
                return;
        TAILQ_REMOVE(&e->cache->lru, e, lru);
        TAILQ_INSERT_TAIL(&e->cache->lru, e, lru);
}

/* Evicts idle entries beyond the bound, least recently used first. */
static void cache_trim(Cache *c) {
        CacheEntry *e, *next;

        for (e = TAILQ_FIRST(&c->lru); e && c->n_entries > CACHE_ENTRIES_MAX; e = next) {
                next = TAILQ_NEXT(e, lru);
                if (e->req || e->busy || !TAILQ_EMPTY(&e->waiters))
                        continue;
                entry_free(e);
                c->evictions++;
        }
}

/* Creates an entry for key. */
static CacheEntry *entry_new(Cache *c, const char *key) {
        CacheEntry *e = calloc(1, sizeof(CacheEntry));

        if (!e)
                return NULL;
        e->key = strdup(key);
        if (!e->key) {
                free(e);
                return NULL;
        }
        e->cache = c;
        TAILQ_INIT(&e->waiters);
        if (lh_table_insert(c->table, e->key, e) < 0) {
                free(e->key);
                free(e);
                return NULL;
        }
        TAILQ_INSERT_TAIL(&c->lru, e, lru);
        c->n_entries++;
        cache_trim(c);
        return e;
}

/* Age of an entry's value in seconds. */
static double entry_age_s(const CacheEntry *e) {
        return (double) (now_usec() - e->fetched_usec) / 1e6;
}

/* Delivers a result to every waiter of an entry. */
static void entry_deliver(CacheEntry *e, json_object *value, bool stale, const ApiError *err) {
        struct WaiterList list = TAILQ_HEAD_INITIALIZER(list);
        CacheWaiter *w;
        double age = value ? entry_age_s(e) : 0;

        /* callbacks may add waiters to this entry (a new request): they are not this round's */
        TAILQ_CONCAT(&list, &e->waiters, link);
        TAILQ_FOREACH(w, &list, link)
                w->list = &list;
        json_object_get(value);
        while ((w = TAILQ_FIRST(&list))) {
                TAILQ_REMOVE(&list, w, link);
                w->cb(value, age, stale, err, w->userdata);
                free(w);
        }
        json_object_put(value);
}

/* Completion of the shared request. */
static void on_fetched(const ApiResponse *resp, const ApiError *err, void *userdata) {
        CacheEntry *e = userdata;
        Cache *c = e->cache;

        e->req = NULL;
        e->busy = true;
        if (resp) {
                json_object_put(e->value);
                e->value = json_object_get(resp->json);
                e->fetched_usec = now_usec();
                e->final = e->is_final && e->is_final(e->value);
                entry_deliver(e, e->value, false, NULL);
        } else if (err->code == RPC_UPSTREAM_UNREACHABLE && e->value &&
                   now_usec() - e->fetched_usec <= e->stale_max_usec) {
                c->stale_served++;
                log_debug("Serving '%s' stale (%.1fs old): %s", e->key, entry_age_s(e), strna(err->message));
                entry_deliver(e, e->value, true, NULL);
        } else {
                c->errors++;
                entry_deliver(e, NULL, false, err);
        }
        e->busy = false;
        /* an orphan is done with, and an entry without a value is not worth keeping */
        if ((e->orphan || !e->value) && !e->req && TAILQ_EMPTY(&e->waiters))
                entry_free(e);
}

/* The entry of a read when it holds a fresh value that may be served. */
static CacheEntry *entry_fresh(Cache *c, const CacheRead *read) {
        CacheEntry *e = entry_find(c, read->key);

        /* while the server says incompatible, the gate in api_start() answers, not the cache */
        if (e && e->value && !read->force && !api_compat_blocks(c->api) &&
            (e->final || now_usec() - e->fetched_usec < read->ttl_usec))
                return e;
        return NULL;
}

/* A fresh value without a wait, see cache.h. */
bool cache_peek(Cache *c, const CacheRead *read, json_object **ret_value, double *ret_age_s) {
        CacheEntry *e;

        assert_return(c && read && read->key && ret_value && ret_age_s, false);
        e = entry_fresh(c, read);
        if (!e)
                return false;
        c->hits++;
        entry_touch(e);
        *ret_value = e->value;
        *ret_age_s = entry_age_s(e);
        return true;
}

/* Gets a value. */
int cache_get(Cache *c, const CacheRead *read, cache_done_cb cb, void *userdata, CacheWaiter **ret_waiter) {
        CacheEntry *e;
        CacheWaiter *w;
        int r;

        assert_return(c && read && read->key && cb, -EINVAL);
        if (ret_waiter)
                *ret_waiter = NULL;
        e = entry_fresh(c, read);
        if (e) {
                c->hits++;
                entry_touch(e);
                cb(e->value, entry_age_s(e), false, NULL, userdata);
                return 0;
        }
        e = entry_find(c, read->key);
        if (!e) {
                e = entry_new(c, read->key);
                if (!e)
                        return -ENOMEM;
        }
        w = calloc(1, sizeof(CacheWaiter));
        if (!w) {
                if (!e->value && !e->req && TAILQ_EMPTY(&e->waiters))
                        entry_free(e);
                return -ENOMEM;
        }
        w->list = &e->waiters;
        w->cb = cb;
        w->userdata = userdata;
        entry_touch(e);

        if (e->req) {
                c->coalesced++;
                TAILQ_INSERT_TAIL(&e->waiters, w, link);
        } else {
                c->misses++;
                e->is_final = read->is_final;
                e->stale_max_usec = read->stale_max_usec;
                TAILQ_INSERT_TAIL(&e->waiters, w, link);
                r = api_start(c->api, &read->call, on_fetched, e, &e->req);
                if (r < 0) {
                        TAILQ_REMOVE(&e->waiters, w, link);
                        free(w);
                        e->req = NULL;
                        if (!e->value && TAILQ_EMPTY(&e->waiters))
                                entry_free(e);
                        return r;
                }
        }
        if (ret_waiter)
                *ret_waiter = w;
        return 0;
}

/* Stops waiting. */
void cache_waiter_cancel(CacheWaiter *w) {
        if (!w)
                return;
        TAILQ_REMOVE(w->list, w, link);
        free(w);
}

/* Drops entries whose key starts with prefix. */
void cache_invalidate(Cache *c, const char *prefix) {
        CacheEntry *e, *next;
        size_t n = strlen(prefix);

        for (e = TAILQ_FIRST(&c->lru); e; e = next) {
                next = TAILQ_NEXT(e, lru);
                if (strncmp(e->key, prefix, n) != 0)
                        continue;
                if (e->req || e->busy || !TAILQ_EMPTY(&e->waiters))
                        entry_orphan(e); /* its answer predates the change: deliver, do not keep */
                else
                        entry_free(e);
        }
}

/* Stores a value as if fetched now. */
int cache_put(Cache *c, const char *key, json_object *value, bool final) {
        CacheEntry *e = entry_find(c, key);

        if (!e) {
                e = entry_new(c, key);
                if (!e)
                        return -ENOMEM;
        }
        json_object_put(e->value);
        e->value = json_object_get(value);
        e->fetched_usec = now_usec();
        e->final = final;
        entry_touch(e);
        return 0;
}

/* Statistics. */
json_object *cache_stats_json(const Cache *c) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "entries", json_object_new_uint64(c->n_entries));
        json_object_object_add(o, "hits", json_object_new_uint64(c->hits));
        json_object_object_add(o, "misses", json_object_new_uint64(c->misses));
        json_object_object_add(o, "coalesced", json_object_new_uint64(c->coalesced));
        json_object_object_add(o, "stale_served", json_object_new_uint64(c->stale_served));
        json_object_object_add(o, "errors", json_object_new_uint64(c->errors));
        json_object_object_add(o, "evictions", json_object_new_uint64(c->evictions));
        return o;
}

void cache_stats_text(const Cache *c, JsonText *t, JsonTextMemo *m) {
        uint64_t key[] = { c->n_entries, c->hits, c->misses, c->coalesced, c->stale_served, c->errors, c->evictions };
        size_t start;

        if (m && json_text_memo_hit(m, t, key, ELEMENTSOF(key), &start))
                return;
        json_text_add_literal(t, "{\"entries\":");
        json_text_add_u64(t, c->n_entries);
        json_text_add_literal(t, ",\"hits\":");
        json_text_add_u64(t, c->hits);
        json_text_add_literal(t, ",\"misses\":");
        json_text_add_u64(t, c->misses);
        json_text_add_literal(t, ",\"coalesced\":");
        json_text_add_u64(t, c->coalesced);
        json_text_add_literal(t, ",\"stale_served\":");
        json_text_add_u64(t, c->stale_served);
        json_text_add_literal(t, ",\"errors\":");
        json_text_add_u64(t, c->errors);
        json_text_add_literal(t, ",\"evictions\":");
        json_text_add_u64(t, c->evictions);
        json_text_add_literal(t, "}");
        if (m)
                json_text_memo_keep(m, t, start);
}
