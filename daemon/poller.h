/* SPDX-License-Identifier: MIT */
/*
 * Poller: the one place that follows unfinished jobs upstream, for every runner and watcher
 * at once. Jobs are followed per resource set: one GET /jobs?set_name=<uuid> per poll
 * returns every job of the set, however many clients wait on them. Polls back off as the
 * Python client does (avatar-api.md §5.5): the wait before poll n+1 is
 * clamp(1.2^(n-1) s, runners.poll_min_s, runners.poll_max_s) — 5 s growing to 20 s by default.
 * A set stops being polled when every job in it is done and nobody asked for more.
 *
 * A watch either waits on the set (someone is waiting for its jobs: a runner.wait, a
 * manager.watch_jobs) or only follows it (a runner keeping its jobs up to date while nobody
 * waits). A set that only followers watch is polled at the slowest interval
 * (runners.poll_max_s); when the last waiter leaves, the poll already armed is pushed back to
 * one slowest interval after the last poll, and when a waiter comes, brought forward to one
 * backoff interval after it.
 *
 * Watchers are told after every poll: the set's jobs, which of them changed since the last
 * poll (status, progress, done, exception), or the error when the poll failed (polling goes
 * on). Finished jobs are also stored in the cache as final, under the key manager.get_job
 * reads ("GET " + api_job_path(name): the name escaped).
 *
 * Lost jobs: a job the set's list showed before, or that a watcher expects
 * (poller_watch_expect()), and that the list lacks is checked with GET /jobs/{name} before
 * the answer is delivered: a 404 (the server restarted), or a job deleted on the server, makes
 * it lost; a job the server still has joins the answer; a failed check leaves it as last
 * seen. A set the server answers 404 for is an empty list. A lost job is delivered as its
 * last answer (if any) with "status": "lost", "done": true, "exception" saying why and
 * "lost_upstream": true, and stays so (it is not checked again, nor cached); so it fails
 * like a job the server calls lost, and its watchers end. A job the list never showed (a
 * watcher expected it; it may not even be the set's: a 200 for another set's job shows
 * nothing of it) is also marked "expected_only": true, and only a watcher that expects it
 * may take it as a job of the set. At most POLLER_CHECKS_MAX checks run per poll; the
 * others wait for the next one.
 */
#pragma once

#include <event2/event.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "api.h"

#define POLLER_CHECKS_MAX 16u

typedef struct Cache Cache;
typedef struct Config Config;
typedef struct Poller Poller;
typedef struct PollerWatch PollerWatch;

/* After a poll: jobs (array, borrowed), changed (array of job names, borrowed), or err. */
typedef void (*poller_cb)(const char *set_name, json_object *jobs, json_object *changed, const ApiError *err,
                          void *userdata);

int poller_new(struct event_base *base, Api *api, Cache *cache, const Config *config, Poller **ret);
Poller *poller_free(Poller *p);
void poller_set_config(Poller *p, const Config *config);

/* Watches a set: polls it (the first poll at once unless one is due soon) until unwatched.
 * The watch waits on the set until poller_watch_set_waiting() says otherwise. The callback
 * runs from libevent callbacks only. Returns 0 or -ENOMEM. */
int poller_watch(Poller *p, const char *set_name, poller_cb cb, void *userdata, PollerWatch **ret);

/* Whether the watch waits on the set (true) or only follows it (false): see above. NULL-safe. */
void poller_watch_set_waiting(PollerWatch *w, bool waiting);

/* The job names (array of strings, borrowed; NULL: none; at most POLLER_CHECKS_MAX are kept)
 * the watch expects in the set: missing ones are checked as lost jobs are (above), also
 * when the poller never saw them (a daemon restarted since they were created). A set no
 * longer polled is polled again. Returns 0 or -ENOMEM. NULL-safe. */
int poller_watch_expect(PollerWatch *w, json_object *names);

/* How many answers in a row changed nothing in the watch's set (failed polls count too),
 * since the watch began; 0 after an answer that changed something. NULL-safe. */
unsigned poller_watch_stalled_polls(const PollerWatch *w);

/* Stops watching; the callback is not called again. NULL-safe. */
void poller_unwatch(PollerWatch *w);

/* Polls a set now and restarts its backoff (a job was just created in it). */
void poller_kick(Poller *p, const char *set_name);

/* The last jobs seen for a set (borrowed array), or NULL (none yet, or a job was created in
 * the set since: a new watcher then waits for the next poll rather than see a list without it). */
json_object *poller_last_jobs(Poller *p, const char *set_name);

/* Tells the poller a job was just created in the set. */
void poller_set_grew(Poller *p, const char *set_name);

/* {"sets": n, "watchers": n, "polls": n, "errors": n, "sets_waited": n (sets someone waits
 * on; the others are polled at the slowest interval)}. New reference. */
json_object *poller_stats_json(const Poller *p);
/* poller_stats_json()'s text, byte for byte, appended to t (daemon.status); m (may be NULL)
 * keeps it while the figures are the same. */
void poller_stats_text(const Poller *p, JsonText *t, JsonTextMemo *m);
