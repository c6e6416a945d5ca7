/* SPDX-License-Identifier: MIT */
/*
 * The upstream client's circuit breakers (one per scheme://host:port: closed, open, half
 * open with one trial request) and its statistics (answers by label and status, retries,
 * breakers), as daemon.status shows them. See upstream-internal.h.
 */
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "clock.h"
#include "jsonrpc.h"
#include "log.h"
#include "macro.h"
#include "upstream-internal.h"
#include "upstream.h"

/* Distinct statistics labels; further labels are counted under "other" so that paths with
 * identifiers in them cannot grow the table without bound. */
#define UPSTREAM_STATS_LABELS_MAX 256
#define UPSTREAM_STATS_OTHER "other"

/* Hosts with a circuit breaker. Closed, idle breakers are evicted to make room. */
#define UPSTREAM_BREAKERS_MAX 64

static const char *const breaker_state_table[_BREAKER_STATE_MAX] = {
        [BREAKER_CLOSED] = "closed",
        [BREAKER_OPEN] = "open",
        [BREAKER_HALF_OPEN] = "half_open",
};

/* The name of a breaker state. */
static const char *breaker_state_to_string(BreakerState s) {
        if (s < 0 || s >= _BREAKER_STATE_MAX)
                return NULL;
        return breaker_state_table[s];
}

/* ---- statistics ------------------------------------------------------------------------ */

/* Adds one to stats_requests[label][key]. Statistics are best effort: allocation failures
 * are ignored. */
void upstream_stats_count(Upstream *u, const char *label, const char *key) {
        json_object *per_label, *counter;

        if (!u->stats_requests)
                return;
        u->stats_requests_changes++;
        if (!json_object_object_get_ex(u->stats_requests, label, &per_label)) {
                if (json_object_object_length(u->stats_requests) >= UPSTREAM_STATS_LABELS_MAX) {
                        label = UPSTREAM_STATS_OTHER;
                        if (json_object_object_get_ex(u->stats_requests, label, &per_label))
                                goto found;
                }
                per_label = json_object_new_object();
                if (!per_label)
                        return;
                if (json_object_object_add(u->stats_requests, label, per_label) < 0) {
                        json_object_put(per_label);
                        return;
                }
        }
found:
        if (json_object_object_get_ex(per_label, key, &counter)) {
                (void) json_object_set_int64(counter, json_object_get_int64(counter) + 1);
                return;
        }
        counter = json_object_new_int64(1);
        if (counter && json_object_object_add(per_label, key, counter) < 0)
                json_object_put(counter);
}

/* ---- circuit breakers ------------------------------------------------------------------ */

/* The state to report: an open breaker past its cooldown admits a trial, so it is half open. */
static BreakerState breaker_effective_state(const Upstream *u, const Breaker *b, uint64_t now) {
        if (b->state == BREAKER_OPEN &&
            now >= add_sat(b->opened_usec, ms_to_usec(u->opts.breaker_cooldown_ms)))
                return BREAKER_HALF_OPEN;
        return b->state;
}

/* Frees a breaker. */
Breaker *upstream_breaker_free(Breaker *b) {
        if (!b)
                return NULL;
        free(b->key);
        free(b);
        return NULL;
}

/* Finds the breaker of a key. */
static Breaker *breaker_find(const Upstream *u, const char *key) {
        Breaker *b;

        TAILQ_FOREACH(b, &u->breakers, link)
                if (streq(b->key, key))
                        return b;
        return NULL;
}

/* Finds or creates the breaker of a key; NULL when the table is full of busy breakers or
 * memory is short (the request then runs without one). */
Breaker *upstream_breaker_get(Upstream *u, const char *key) {
        Breaker *b;

        b = breaker_find(u, key);
        if (b)
                return b;
        if (u->n_breakers >= UPSTREAM_BREAKERS_MAX) {
                Breaker *victim = NULL;

                TAILQ_FOREACH(b, &u->breakers, link)
                        if (b->users == 0 && b->state == BREAKER_CLOSED) {
                                victim = b;
                                break;
                        }
                if (!victim)
                        return NULL;
                TAILQ_REMOVE(&u->breakers, victim, link);
                u->n_breakers--;
                upstream_breaker_free(victim);
        }
        b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        b->key = strdup(key);
        if (!b->key)
                return upstream_breaker_free(b);
        b->serial = ++u->breakers_made;
        TAILQ_INSERT_TAIL(&u->breakers, b, link);
        u->n_breakers++;
        return b;
}

/* Decides whether a new request may go to its host. Returns 0, or -EHOSTDOWN with a
 * description in *ret_text. */
int upstream_breaker_admit(Upstream *u, UpstreamRequest *req, char **ret_text) {
        Breaker *b = req->breaker;
        uint64_t now = now_usec(), reopen;

        if (!b || b->state == BREAKER_CLOSED)
                return 0;
        if (b->state == BREAKER_OPEN) {
                reopen = add_sat(b->opened_usec, ms_to_usec(u->opts.breaker_cooldown_ms));
                if (now < reopen) {
                        if (asprintf(ret_text,
                                     "circuit open for %s after %u consecutive network "
                                     "failures, retrying in %" PRIu64 " s",
                                     b->key, b->consecutive_failures,
                                     (usec_span_ms(now, reopen) + 999) / 1000) < 0)
                                *ret_text = NULL;
                        return -EHOSTDOWN;
                }
                b->state = BREAKER_HALF_OPEN;
                b->trial = NULL;
                log_warning("Upstream %s circuit half-open: letting one trial request "
                            "through.", b->key);
        }
        if (b->trial) {
                if (asprintf(ret_text, "circuit half-open for %s, a trial request is in flight",
                             b->key) < 0)
                        *ret_text = NULL;
                return -EHOSTDOWN;
        }
        b->trial = req;
        req->breaker_trial = true;
        return 0;
}

/* Records what a request learned about its host. */
void upstream_breaker_record(Upstream *u, UpstreamRequest *req, BreakerOutcome outcome) {
        Breaker *b = req->breaker;

        if (!b)
                return;
        if (b->trial == req)
                b->trial = NULL;
        req->breaker_trial = false;

        switch (outcome) {
        case BREAKER_SUCCESS:
                b->consecutive_failures = 0;
                if (b->state != BREAKER_CLOSED) {
                        b->state = BREAKER_CLOSED;
                        log_warning("Upstream %s circuit closed: the host answers again.",
                                    b->key);
                }
                break;
        case BREAKER_FAILURE:
                if (b->consecutive_failures < UINT_MAX)
                        b->consecutive_failures++;
                if (b->state == BREAKER_HALF_OPEN ||
                    (b->state == BREAKER_CLOSED &&
                     b->consecutive_failures >= u->opts.breaker_threshold)) {
                        b->state = BREAKER_OPEN;
                        b->opened++;
                        b->opened_usec = now_usec();
                        log_warning("Upstream %s circuit open after %u consecutive network "
                                    "failures, retrying in %" PRIu64 " ms.",
                                    b->key, b->consecutive_failures,
                                    u->opts.breaker_cooldown_ms);
                }
                break;
        case BREAKER_NEUTRAL:
        default:
                break;
        }
}

/* Drops a request's reference to its breaker, releasing the trial slot if it held it. */
void upstream_breaker_release(UpstreamRequest *req) {
        Breaker *b = req->breaker;

        if (!b)
                return;
        if (b->trial == req)
                b->trial = NULL;
        assert(b->users > 0);
        b->users--;
        req->breaker = NULL;
        req->breaker_trial = false;
}

/* ---- public API ------------------------------------------------------------------------- */

/* Statistics as JSON. */
json_object *upstream_stats_json(const Upstream *u) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *requests = NULL, *retries, *breakers;
        const Breaker *b;
        uint64_t now = now_usec();

        if (!u)
                return NULL;
        o = json_object_new_object();
        if (!o)
                return NULL;
        if (json_object_deep_copy(u->stats_requests, &requests, NULL) < 0)
                return NULL;
        if (json_object_object_add(o, "requests", requests) < 0) {
                json_object_put(requests);
                return NULL;
        }

        retries = json_object_new_object();
        if (!retries || json_object_object_add(o, "retries", retries) < 0) {
                json_object_put(retries);
                return NULL;
        }
        json_object_object_add(retries, "network",
                               json_object_new_int64((int64_t) u->retries_network));
        json_object_object_add(retries, "rate_limited",
                               json_object_new_int64((int64_t) u->retries_rate_limited));
        json_object_object_add(o, "in_flight", json_object_new_int64(u->in_flight));

        breakers = json_object_new_object();
        if (!breakers || json_object_object_add(o, "breakers", breakers) < 0) {
                json_object_put(breakers);
                return NULL;
        }
        TAILQ_FOREACH(b, &u->breakers, link) {
                json_object *e = json_object_new_object();

                if (!e || json_object_object_add(breakers, b->key, e) < 0) {
                        json_object_put(e);
                        return NULL;
                }
                json_object_object_add(e, "state", json_object_new_string(
                        breaker_state_to_string(breaker_effective_state(u, b, now))));
                json_object_object_add(e, "consecutive_failures",
                                       json_object_new_int64(b->consecutive_failures));
                json_object_object_add(e, "opened", json_object_new_int64(b->opened));
        }
        return TAKE_PTR(o);
}

/* upstream_stats_json()'s text, written into t (daemon.status): the same bytes, without the
 * objects; the requests' text is kept until they change. */
void upstream_stats_text(const Upstream *u, JsonText *t, uint64_t now, JsonTextMemo *memo) {
        Upstream *m = (Upstream *) u; /* the kept text only */
        uint64_t key[JSON_TEXT_MEMO_KEY_MAX];
        size_t n_key = 0, start;
        const Breaker *b;

        if (!u) {
                json_text_add_literal(t, "null");
                return;
        }
        /* the figures of the block, each breaker by its serial (never reused) */
        if (memo && 5 + 4 * (size_t) u->n_breakers <= ELEMENTSOF(key)) {
                key[n_key++] = u->stats_requests_changes;
                key[n_key++] = u->retries_network;
                key[n_key++] = u->retries_rate_limited;
                key[n_key++] = u->in_flight;
                key[n_key++] = u->n_breakers;
                TAILQ_FOREACH(b, &u->breakers, link) {
                        key[n_key++] = b->serial;
                        key[n_key++] = breaker_effective_state(u, b, now);
                        key[n_key++] = b->consecutive_failures;
                        key[n_key++] = b->opened;
                }
                if (json_text_memo_hit(memo, t, key, n_key, &start))
                        return;
        } else
                memo = NULL;
        if (!m->stats_text_valid || m->stats_text_changes != u->stats_requests_changes) {
                JsonText r = {};

                json_text_add_value(&r, u->stats_requests ?: NULL);
                if (r.oom) {
                        free(r.p);
                        t->oom = true;
                        return;
                }
                free(m->stats_text);
                m->stats_text = r.p;
                m->stats_text_len = r.n;
                m->stats_text_changes = u->stats_requests_changes;
                m->stats_text_valid = true;
        }
        json_text_add_literal(t, "{\"requests\":");
        json_text_add(t, m->stats_text, m->stats_text_len);
        json_text_add_literal(t, ",\"retries\":{\"network\":");
        json_text_add_i64(t, (int64_t) u->retries_network);
        json_text_add_literal(t, ",\"rate_limited\":");
        json_text_add_i64(t, (int64_t) u->retries_rate_limited);
        json_text_add_literal(t, "},\"in_flight\":");
        json_text_add_i64(t, u->in_flight);
        json_text_add_literal(t, ",\"breakers\":{");
        TAILQ_FOREACH(b, &u->breakers, link) {
                json_text_add_literal(t, b == TAILQ_FIRST(&u->breakers) ? "" : ",");
                json_text_add_str(t, b->key);
                json_text_add_literal(t, ":{\"state\":");
                json_text_add_str(t, breaker_state_to_string(breaker_effective_state(u, b, now)));
                json_text_add_literal(t, ",\"consecutive_failures\":");
                json_text_add_i64(t, b->consecutive_failures);
                json_text_add_literal(t, ",\"opened\":");
                json_text_add_i64(t, b->opened);
                json_text_add_literal(t, "}");
        }
        json_text_add_literal(t, "}}");
        if (memo)
                json_text_memo_keep(memo, t, start);
}

/* The breaker state of the host of a URL. The URL's key is kept for the next call with the
 * same URL (daemon.status asks about the API's URL on every call). */
const char *upstream_breaker_state(const Upstream *u, const char *url) {
        return upstream_breaker_state_at(u, url, now_usec());
}

const char *upstream_breaker_state_at(const Upstream *u, const char *url, uint64_t now) {
        Upstream *m = (Upstream *) u; /* the kept key only */
        const Breaker *b;

        if (!u || !url)
                return "closed";
        if (!m->state_url || !streq(m->state_url, url)) {
                _cleanup_(curl_url_cleanupp) CURLU *h = NULL;
                _cleanup_free_ char *url_log = NULL, *key = NULL, *copy = NULL;

                if (upstream_url_parse(url, &h) < 0 ||
                    upstream_url_describe(h, UPSTREAM_GET, &url_log, NULL, &key) < 0)
                        return "closed";
                copy = strdup(url);
                if (!copy) {
                        b = breaker_find(u, key);
                        return b ? breaker_state_to_string(breaker_effective_state(u, b, now)) : "closed";
                }
                free(m->state_url);
                free(m->state_url_key);
                m->state_url = TAKE_PTR(copy);
                m->state_url_key = TAKE_PTR(key);
        }
        b = m->state_url_key ? breaker_find(u, m->state_url_key) : NULL;
        if (!b)
                return "closed";
        return breaker_state_to_string(breaker_effective_state(u, b, now));
}
