/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "cache.h"
#include "json-util.h"
#include "clock.h"
#include "config.h"
#include "errors.h"
#include "log.h"
#include "jsonrpc.h"
#include "macro.h"
#include "poller.h"

typedef struct PollSet PollSet;

TAILQ_HEAD(WatchList, PollerWatch);

struct PollerWatch {
        PollSet *set;
        poller_cb cb;
        void *userdata;
        bool waiting;               /* waits on the set, rather than only following it */
        json_object *expect;        /* job names expected in the set (array), or NULL */
        unsigned polls;             /* polls delivered to it */
        TAILQ_ENTRY(PollerWatch) link;
};

/* A GET /jobs/{name} that settles whether a job missing from the set's list is lost. */
typedef struct PollCheck {
        PollSet *set;
        char *name;
        ApiRequest *req;
} PollCheck;

struct PollSet {
        Poller *poller;
        char *set_name;
        unsigned n_polls;           /* since the last kick */
        unsigned n_waiting;         /* watchers that wait on the set */
        uint64_t last_poll_usec;    /* when the last poll was answered (0: never) */
        struct event *timer;
        ApiRequest *req;
        json_object *last;          /* the last jobs array seen */
        bool last_stale;            /* a job was created since: last is not shown to a new watcher */
        json_object *pending;       /* an answer waiting for its checks (jobs array) */
        PollCheck checks[POLLER_CHECKS_MAX];
        unsigned n_checks;          /* checks in flight */
        unsigned stalled;           /* answers in a row that changed nothing (or failed) */
        struct WatchList watchers;
        PollerWatch *deliver_next;  /* the watcher set_deliver() tells next */
        bool delivering;
        TAILQ_ENTRY(PollSet) link;
};

TAILQ_HEAD(SetList, PollSet);

struct Poller {
        struct event_base *base;
        Api *api;
        Cache *cache;
        const Config *config;
        struct SetList sets;
        unsigned n_sets, n_watchers;
        uint64_t polls, errors;
};

static void set_schedule(PollSet *s, bool now);
static void set_checks_cancel(PollSet *s);

/* Creates the poller. */
int poller_new(struct event_base *base, Api *api, Cache *cache, const Config *config, Poller **ret) {
        Poller *p = calloc(1, sizeof(Poller));

        if (!p)
                return -ENOMEM;
        p->base = base;
        p->api = api;
        p->cache = cache;
        p->config = config;
        TAILQ_INIT(&p->sets);
        *ret = p;
        return 0;
}

/* Frees a set (its watchers must be gone). */
static void set_free(PollSet *s) {
        Poller *p = s->poller;

        TAILQ_REMOVE(&p->sets, s, link);
        p->n_sets--;
        if (s->timer)
                event_free(s->timer);
        api_cancel(s->req);
        set_checks_cancel(s);
        json_object_put(s->pending);
        json_object_put(s->last);
        free(s->set_name);
        free(s);
}

/* Frees the poller; watchers are dropped without callbacks. */
Poller *poller_free(Poller *p) {
        PollSet *s;

        if (!p)
                return NULL;
        while ((s = TAILQ_FIRST(&p->sets))) {
                PollerWatch *w;

                while ((w = TAILQ_FIRST(&s->watchers))) {
                        TAILQ_REMOVE(&s->watchers, w, link);
                        json_object_put(w->expect);
                        free(w);
                }
                set_free(s);
        }
        free(p);
        return NULL;
}

/* Switches to a new configuration (poll bounds). */
void poller_set_config(Poller *p, const Config *config) {
        p->config = config;
}

/* Finds the set. */
static PollSet *set_find(Poller *p, const char *set_name) {
        PollSet *s;

        TAILQ_FOREACH(s, &p->sets, link)
                if (streq(s->set_name, set_name))
                        return s;
        return NULL;
}

/* The wait before the next poll, in microseconds: clamp(1.2^(n-1), min, max) seconds while
 * someone waits on the set, the slowest interval (max) while it is only followed. */
static uint64_t set_interval_usec(const PollSet *s) {
        const Config *c = s->poller->config;
        double w = pow(1.2, (double) s->n_polls - 1.0);

        if (s->n_waiting == 0)
                return (uint64_t) c->poll_max_s * USEC_PER_SEC;
        w = CLAMP(w, (double) c->poll_min_s, (double) c->poll_max_s);
        return (uint64_t) (w * 1e6);
}

/* Whether every job of the last answer is done (an empty set is not). */
static bool set_all_done(const PollSet *s) {
        size_t n = json_array_len(s->last);

        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                json_object *done;

                if (!json_object_object_get_ex(json_object_array_get_idx(s->last, i), "done", &done) ||
                    !json_object_get_boolean(done))
                        return false;
        }
        return true;
}

/* A member as text for change detection ("" when absent). */
static const char *member_text(json_object *job, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(job, key, &v) || !v)
                return "";
        return json_object_get_string(v);
}

/* The job of that name in an array, or NULL. */
static json_object *job_in(json_object *jobs, const char *name) {
        for (size_t i = 0; i < json_array_len(jobs); i++) {
                json_object *j = json_object_array_get_idx(jobs, i);

                if (streq_ptr(member_text(j, "name"), name))
                        return j;
        }
        return NULL;
}

/* Names of the jobs that are new or changed between two answers. */
static json_object *jobs_changed(json_object *old, json_object *cur) {
        static const char *const keys[] = { "status", "progress", "done", "exception", "deleted_at" };
        json_object *changed = json_object_new_array();

        for (size_t i = 0; changed && i < json_array_len(cur); i++) {
                json_object *j = json_object_array_get_idx(cur, i), *o;
                const char *name = member_text(j, "name");
                bool diff = false;

                o = job_in(old, name);
                if (!o)
                        diff = true;
                for (size_t k = 0; !diff && k < ELEMENTSOF(keys); k++)
                        diff = !streq(member_text(j, keys[k]), member_text(o, keys[k]));
                if (diff)
                        json_object_array_add(changed, json_object_new_string(name));
        }
        return changed;
}

/* Tells every watcher of the set. */
static void set_deliver(PollSet *s, json_object *jobs, json_object *changed, const ApiError *err) {
        PollerWatch *w, *next;

        /* a callback may unwatch any watcher, the next one included */
        s->delivering = true;
        for (w = TAILQ_FIRST(&s->watchers); w; w = next) {
                s->deliver_next = TAILQ_NEXT(w, link);
                w->polls++;
                w->cb(s->set_name, jobs, changed, err, w->userdata);
                next = s->deliver_next;
        }
        s->deliver_next = NULL;
        s->delivering = false;
}

/* After delivery: free the set when nobody watches, else schedule the next poll. */
static void set_after_poll(PollSet *s) {
        if (TAILQ_EMPTY(&s->watchers)) {
                set_free(s);
                return;
        }
        if (!set_all_done(s))
                set_schedule(s, false);
}

/* Whether a job is one the poller found lost. */
static bool job_is_lost(json_object *job) {
        json_object *v;

        return json_object_object_get_ex(job, "lost_upstream", &v) && json_object_get_boolean(v);
}

/* The job as the poller shows it once lost: the last answer's job (if any) marked so; a job
 * the set's list never showed (only a watcher expected it) is marked "expected_only". */
static json_object *job_lost_new(const char *name, json_object *old, const char *why, bool expected_only) {
        json_object *j = json_object_new_object();

        if (!j)
                return NULL;
        if (json_object_is_type(old, json_type_object)) {
                json_object_object_foreach(old, k, v)
                        json_object_object_add(j, k, json_object_get(v));
        }
        json_object_object_add(j, "name", json_object_new_string(name));
        json_object_object_add(j, "status", json_object_new_string("lost"));
        json_object_object_add(j, "done", json_object_new_boolean(true));
        json_object_object_add(j, "exception", json_object_new_string(why));
        json_object_object_add(j, "lost_upstream", json_object_new_boolean(true));
        if (expected_only)
                json_object_object_add(j, "expected_only", json_object_new_boolean(true));
        return j;
}

/* Completes the answer of a poll once its checks are done: delivers, caches, schedules. */
static void set_polled(PollSet *s, json_object *jobs) {
        Poller *p = s->poller;
        json_object *changed = jobs_changed(s->last, jobs);

        if (json_array_len(changed) > 0)
                s->stalled = 0;
        else
                s->stalled++;
        /* finished jobs never change again: let the cache serve them, under the key
         * manager.get_job reads (not a lost job: the server may know it again) */
        for (size_t i = 0; i < json_array_len(jobs); i++) {
                json_object *j = json_object_array_get_idx(jobs, i), *done;
                _cleanup_free_ char *path = NULL, *key = NULL;

                if (!json_object_object_get_ex(j, "done", &done) || !json_object_get_boolean(done) || job_is_lost(j))
                        continue;
                path = api_job_path(member_text(j, "name"));
                if (path && asprintf(&key, "GET %s", path) >= 0)
                        (void) cache_put(p->cache, key, j, true);
        }
        json_object_put(s->last);
        s->last = jobs;
        s->last_stale = false;
        set_deliver(s, jobs, changed, NULL);
        json_object_put(changed);
        set_after_poll(s);
}

/* A check answered: a 404, or the job deleted, makes it lost; a job the server still has
 * joins the answer; a failure leaves the job as it was last seen. */
static void on_checked(const ApiResponse *resp, const ApiError *err, void *userdata) {
        PollCheck *c = userdata;
        PollSet *s = c->set;
        _cleanup_free_ char *name = TAKE_PTR(c->name), *why = NULL;
        json_object *old = job_in(s->last, name), *add = NULL;

        c->req = NULL;
        if (resp && json_object_is_type(resp->json, json_type_object)) {
                json_object *job = resp->json;
                const char *jset = json_str(job, "set_name");

                /* a name a watcher gave may be another set's job: nothing of it is shown */
                if (jset ? strcasecmp(jset, s->set_name) != 0 : !old)
                        add = job_lost_new(name, NULL, "The job is not in this set on the server", !old);
                else if (!isempty(member_text(job, "deleted_at"))) {
                        if (asprintf(&why, "The job was deleted on the server (at %s)", member_text(job, "deleted_at")) >= 0)
                                add = job_lost_new(name, job, why, !old);
                } else
                        add = json_object_get(job);
        } else if (err && err->status == 404)
                add = job_lost_new(name, old, "The server no longer knows the job (GET /jobs/{name}: 404)", !old);
        else if (old)
                add = json_object_get(old);
        if (add && job_is_lost(add))
                log_warning("Job %s of set %s is lost upstream: %s", name, s->set_name, member_text(add, "exception"));
        if (add)
                json_object_array_add(s->pending, add);
        assert(s->n_checks > 0);
        if (--s->n_checks > 0)
                return;
        set_polled(s, TAKE_PTR(s->pending));
}

/* Cancels the checks in flight. */
static void set_checks_cancel(PollSet *s) {
        for (size_t i = 0; i < ELEMENTSOF(s->checks); i++) {
                api_cancel(s->checks[i].req);
                s->checks[i].req = NULL;
                s->checks[i].name = mfree(s->checks[i].name);
        }
        s->n_checks = 0;
}

/* Starts the check of a job missing from the answer. Returns false when it cannot be done
 * now (too many, or the request failed to start). */
static bool set_check_start(PollSet *s, const char *name) {
        _cleanup_free_ char *path = api_job_path(name);
        PollCheck *c = NULL;
        ApiCall call;

        for (size_t i = 0; i < ELEMENTSOF(s->checks) && !c; i++)
                if (!s->checks[i].req)
                        c = &s->checks[i];
        if (!c || !path)
                return false;
        c->name = strdup(name);
        if (!c->name)
                return false;
        c->set = s;
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .label = "GET /jobs/{name}" };
        if (api_start(s->poller->api, &call, on_checked, c, &c->req) < 0) {
                c->name = mfree(c->name);
                return false;
        }
        s->n_checks++;
        return true;
}

/* Whether a name was checked already in this round (or is being). */
static bool set_checking(const PollSet *s, const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(s->checks); i++)
                if (s->checks[i].name && streq(s->checks[i].name, name))
                        return true;
        return false;
}

/* A job expected in the set (seen before, or named by a watcher) and missing from the
 * answer: a lost job stays lost, another is checked. */
static void set_missing(PollSet *s, json_object *jobs, const char *name) {
        json_object *old = job_in(s->last, name);

        if (isempty(name) || job_in(jobs, name) || set_checking(s, name))
                return;
        if (old && job_is_lost(old)) {
                json_object_array_add(jobs, json_object_get(old));
                return;
        }
        if (!set_check_start(s, name) && old)
                json_object_array_add(jobs, json_object_get(old)); /* as last seen */
}

/* The answer of a poll: jobs missing from it are checked before it is delivered. */
static void on_polled(const ApiResponse *resp, const ApiError *err, void *userdata) {
        PollSet *s = userdata;
        Poller *p = s->poller;
        json_object *jobs = NULL;
        PollerWatch *w;

        s->req = NULL;
        p->polls++;
        s->last_poll_usec = now_usec();
        if (resp) {
                json_object *list;

                if (json_object_object_get_ex(resp->json, "jobs", &list) && json_object_is_type(list, json_type_array))
                        jobs = json_object_get(list);
        } else if (err && err->status == 404)
                jobs = json_object_new_array(); /* the set is gone: so are its jobs */
        if (!jobs) {
                ApiError bad = { .code = 0, .retry_after_ms = -1 };

                p->errors++;
                s->stalled++;
                if (!err) {
                        api_error_setf(&bad, RPC_UPSTREAM_BAD_RESPONSE, "GET /jobs?set_name=%s: unexpected answer", s->set_name);
                        err = &bad;
                }
                log_warning("Polling the jobs of set %s failed, retrying: %s", s->set_name, strna(err->message));
                set_deliver(s, s->last, NULL, err);
                api_error_done(&bad);
                set_after_poll(s);
                return;
        }
        /* a copy: the answer is shared with the cache and other readers */
        {
                json_object *copy = json_object_new_array();

                for (size_t i = 0; copy && i < json_array_len(jobs); i++) {
                        json_object *j = json_object_array_get_idx(jobs, i);

                        if (!isempty(member_text(j, "deleted_at")) && !job_is_lost(j))
                                json_object_array_add(copy, job_lost_new(member_text(j, "name"), j,
                                                                         "The job was deleted on the server", false));
                        else
                                json_object_array_add(copy, json_object_get(j));
                }
                json_object_put(jobs);
                if (!copy) {
                        set_schedule(s, false);
                        return;
                }
                jobs = copy;
        }
        for (size_t i = 0; i < json_array_len(s->last); i++)
                set_missing(s, jobs, member_text(json_object_array_get_idx(s->last, i), "name"));
        TAILQ_FOREACH(w, &s->watchers, link)
                for (size_t i = 0; i < json_array_len(w->expect); i++)
                        set_missing(s, jobs, json_object_get_string(json_object_array_get_idx(w->expect, i)));
        if (s->n_checks > 0) {
                s->pending = jobs;
                return;
        }
        set_polled(s, jobs);
}

/* Timer: poll the set now. */
static void on_poll_timer(evutil_socket_t fd, short what, void *userdata) {
        PollSet *s = userdata;
        _cleanup_free_ char *path = NULL, *esc = api_escape(s->set_name);
        ApiCall call;
        int r;

        (void) fd;
        (void) what;
        if (s->req || s->n_checks > 0)
                return;
        s->n_polls++;
        if (!esc || asprintf(&path, "/jobs?set_name=%s", esc) < 0) {
                set_schedule(s, false);
                return;
        }
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .label = "GET /jobs?set_name" };
        r = api_start(s->poller->api, &call, on_polled, s, &s->req);
        if (r < 0) {
                log_warning_errno(r, "Cannot poll set %s, retrying: %m", s->set_name);
                set_schedule(s, false);
        }
}

/* Arms the timer for the next poll (now, or after the backoff interval). */
static void set_schedule(PollSet *s, bool now) {
        uint64_t usec = now ? 0 : set_interval_usec(s);
        struct timeval tv = usec_to_timeval(usec);

        if (s->req || s->n_checks > 0)
                return;
        evtimer_add(s->timer, &tv);
}

/* Whether anyone waits on the set changed: the poll armed comes one interval (of the new
 * kind) after the last poll, or at once when that is past. A poll under way, a set not
 * polled any more (all done) and a first poll keep their course. */
static void set_reschedule(PollSet *s) {
        uint64_t now, due;

        if (s->req || s->n_checks > 0 || s->last_poll_usec == 0 || !evtimer_pending(s->timer, NULL))
                return;
        now = now_usec();
        due = s->last_poll_usec + set_interval_usec(s);
        {
                struct timeval tv = usec_to_timeval(due > now ? due - now : 0);

                evtimer_add(s->timer, &tv);
        }
}

/* Finds or creates the set. */
static PollSet *set_get(Poller *p, const char *set_name) {
        PollSet *s = set_find(p, set_name);

        if (s)
                return s;
        s = calloc(1, sizeof(PollSet));
        if (!s)
                return NULL;
        s->poller = p;
        s->set_name = strdup(set_name);
        s->timer = evtimer_new(p->base, on_poll_timer, s);
        TAILQ_INIT(&s->watchers);
        if (!s->set_name || !s->timer) {
                if (s->timer)
                        event_free(s->timer);
                free(s->set_name);
                free(s);
                return NULL;
        }
        TAILQ_INSERT_TAIL(&p->sets, s, link);
        p->n_sets++;
        return s;
}

/* Watches a set. */
int poller_watch(Poller *p, const char *set_name, poller_cb cb, void *userdata, PollerWatch **ret) {
        PollSet *s = set_get(p, set_name);
        PollerWatch *w;
        bool fresh;

        if (!s)
                return -ENOMEM;
        w = calloc(1, sizeof(PollerWatch));
        if (!w) {
                if (TAILQ_EMPTY(&s->watchers) && !s->req)
                        set_free(s);
                return -ENOMEM;
        }
        fresh = TAILQ_EMPTY(&s->watchers);
        w->set = s;
        w->cb = cb;
        w->userdata = userdata;
        w->waiting = true;
        TAILQ_INSERT_TAIL(&s->watchers, w, link);
        p->n_watchers++;
        if (s->n_waiting++ == 0 && !fresh)
                set_reschedule(s);
        /* a new set is polled at once; joining a set already followed waits for its next poll,
         * unless it was no longer being polled (all done) */
        if (fresh || (!s->req && s->n_checks == 0 && !evtimer_pending(s->timer, NULL)))
                set_schedule(s, true);
        if (ret)
                *ret = w;
        return 0;
}

/* Stops watching. */
void poller_unwatch(PollerWatch *w) {
        bool last_waiter;
        PollSet *s;

        if (!w)
                return;
        s = w->set;
        if (s->deliver_next == w)
                s->deliver_next = TAILQ_NEXT(w, link);
        TAILQ_REMOVE(&s->watchers, w, link);
        s->poller->n_watchers--;
        last_waiter = w->waiting && --s->n_waiting == 0;
        json_object_put(w->expect);
        free(w);
        if (TAILQ_EMPTY(&s->watchers) && !s->delivering)
                set_free(s); /* with its poll or checks in flight */
        else if (last_waiter && !s->delivering)
                set_reschedule(s); /* followed only now: the slowest interval */
}

/* Whether the watch waits on the set or only follows it. */
void poller_watch_set_waiting(PollerWatch *w, bool waiting) {
        PollSet *s;

        if (!w || w->waiting == waiting)
                return;
        s = w->set;
        w->waiting = waiting;
        if (waiting)
                s->n_waiting++;
        else
                s->n_waiting--;
        /* the first waiter brings the next poll forward, the last one's leaving pushes it back */
        if (s->n_waiting == (waiting ? 1u : 0u) && !s->delivering)
                set_reschedule(s);
}

/* The job names the watch expects in the set. */
int poller_watch_expect(PollerWatch *w, json_object *names) {
        json_object *copy = NULL;

        if (!w)
                return 0;
        if (names) {
                copy = json_object_new_array();
                for (size_t i = 0; copy && i < json_array_len(names) && i < POLLER_CHECKS_MAX; i++) {
                        const char *n = json_object_get_string(json_object_array_get_idx(names, i));

                        if (!isempty(n) && json_object_array_add(copy, json_object_new_string(n)) < 0)
                                break;
                }
                if (!copy)
                        return -ENOMEM;
        }
        json_object_put(w->expect);
        w->expect = copy;
        /* a set no longer polled (all done) is polled again for the names it lacks */
        if (copy && !w->set->req && w->set->n_checks == 0 && !evtimer_pending(w->set->timer, NULL))
                set_schedule(w->set, true);
        return 0;
}

/* Answers in a row that changed nothing. */
unsigned poller_watch_stalled_polls(const PollerWatch *w) {
        return w ? MIN(w->set->stalled, w->polls) : 0;
}

/* Polls a set now and restarts its backoff. */
void poller_kick(Poller *p, const char *set_name) {
        PollSet *s = set_find(p, set_name);

        if (!s || TAILQ_EMPTY(&s->watchers))
                return;
        s->n_polls = 0;
        set_schedule(s, true);
}

/* The last jobs seen for a set. */
json_object *poller_last_jobs(Poller *p, const char *set_name) {
        PollSet *s = set_find(p, set_name);

        return s && !s->last_stale ? s->last : NULL;
}

/* A job was created in a set: its last list is missing it until the next poll. */
void poller_set_grew(Poller *p, const char *set_name) {
        PollSet *s = set_find(p, set_name);

        if (s)
                s->last_stale = true;
}

/* Statistics. */
json_object *poller_stats_json(const Poller *p) {
        json_object *o = json_object_new_object();
        const PollSet *s;
        int64_t n_waited = 0;

        if (!o)
                return NULL;
        TAILQ_FOREACH(s, &p->sets, link)
                if (s->n_waiting > 0)
                        n_waited++;
        json_object_object_add(o, "sets", json_object_new_int64(p->n_sets));
        json_object_object_add(o, "watchers", json_object_new_int64(p->n_watchers));
        json_object_object_add(o, "polls", json_object_new_uint64(p->polls));
        json_object_object_add(o, "errors", json_object_new_uint64(p->errors));
        json_object_object_add(o, "sets_waited", json_object_new_int64(n_waited));
        return o;
}

void poller_stats_text(const Poller *p, JsonText *t, JsonTextMemo *m) {
        const PollSet *s;
        int64_t n_waited = 0;
        size_t start;

        TAILQ_FOREACH(s, &p->sets, link)
                if (s->n_waiting > 0)
                        n_waited++;
        uint64_t key[] = { p->n_sets, p->n_watchers, p->polls, p->errors, (uint64_t) n_waited };
        if (m && json_text_memo_hit(m, t, key, ELEMENTSOF(key), &start))
                return;
        json_text_add_literal(t, "{\"sets\":");
        json_text_add_i64(t, p->n_sets);
        json_text_add_literal(t, ",\"watchers\":");
        json_text_add_i64(t, p->n_watchers);
        json_text_add_literal(t, ",\"polls\":");
        json_text_add_u64(t, p->polls);
        json_text_add_literal(t, ",\"errors\":");
        json_text_add_u64(t, p->errors);
        json_text_add_literal(t, ",\"sets_waited\":");
        json_text_add_i64(t, n_waited);
        json_text_add_literal(t, "}");
        if (m)
                json_text_memo_keep(m, t, start);
}
