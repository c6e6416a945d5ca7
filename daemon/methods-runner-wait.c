/* SPDX-License-Identifier: MIT */
/*
 * Runner methods that follow jobs: the status (runner.get_status), runner.wait until the
 * run's jobs are done, and manager.watch_jobs.
 *
 * Every wait ends: jobs the server lost (poller.h: a 404, or deleted on the server) end
 * runner.wait and manager.watch_jobs with jobs_lost naming them; a set whose answers change
 * nothing for WAIT_STALLED_POLLS polls in a row says so in every progress notification after
 * ("stalled_polls"); a stopping daemon ends them at once with shutting_down and how to
 * attach again (server.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "core.h"
#include "errors.h"
#include "json-util.h"
#include "jsonrpc.h"
#include "log.h"
#include "methods-runner.h"
#include "op.h"
#include "poller.h"
#include "resource-yaml.h"
#include "runner-config.h"
#include "runner.h"
#include "scrub.h"
#include "upstream.h"

/* Polls in a row without news after which a wait says it is stalled. */
#define WAIT_STALLED_POLLS 3u

/* ---- runner.get_status / runner.wait ------------------------------------------------------- */

/* runner.get_status: the runner, its tables and jobs as last seen (refresh: poll now). */
static int method_get_status(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        json_object *v;

        if (!r)
                return 0;
        /* a poll now, whose jobs the runner also adopts when it does not know them (a run
         * interrupted between a POST /jobs and its record) */
        if (json_object_object_get_ex(params, "refresh", &v) && json_object_get_boolean(v) && r->set_name)
                runner_reconcile(r);
        return reply_status(c, r);
}

typedef struct WaitOp {
        Op op;
        Runner *runner;
        RunnerWaiter *waiter;
        json_object *which;
        struct event *deadline;
        Notifier notifier;
        PollerWatch *watch;      /* the run's set, for lost jobs and stalled polls */
} WaitOp;

/* Releases the wait state. */
static void wait_cleanup(Op *op) {
        WaitOp *w = (WaitOp *) op;

        runner_waiter_remove(w->waiter);
        poller_unwatch(w->watch);
        if (w->deadline)
                event_free(w->deadline);
        json_object_put(w->which);
        runner_unref(w->runner);
}

/* The jobs of the wait, as the API shows them. */
static json_object *wait_jobs(WaitOp *w) {
        json_object *a = json_object_new_array();
        Runner *r = w->runner;

        for (size_t i = 0; a && i < r->n_jobs; i++)
                if (!w->which || json_array_has_str(w->which, r->jobs[i].parameters_name))
                        json_object_array_add(a, runner_job_json(&r->jobs[i]));
        return a;
}

/* Finishes a wait with its outcome. */
static void wait_finish(WaitOp *w, bool done, bool timed_out) {
        json_object *o = json_object_new_object();
        Call *c;

        if (o) {
                json_object_object_add(o, "runner_id", json_object_new_string(w->runner->id));
                json_object_object_add(o, "done", json_object_new_boolean(done));
                json_object_object_add(o, "timed_out", json_object_new_boolean(timed_out));
                json_object_object_add(o, "set_name", w->runner->set_name ? json_object_new_string(w->runner->set_name) : NULL);
                json_object_object_add(o, "jobs", wait_jobs(w));
                json_object_object_add(o, "subscription", json_object_new_string(w->notifier.id));
        }
        c = op_finish(&w->op);
        if (o)
                call_reply(c, o);
        else
                call_reply_errno(c, -ENOMEM, NULL);
}

/* Whether a job (a JobResponse, or NULL) is one the poller found lost upstream. */
static bool job_lost_upstream(json_object *job) {
        json_object *v;

        return job && json_object_object_get_ex(job, "lost_upstream", &v) && json_object_get_boolean(v);
}

/* A lost job as error.data.lost lists it. */
static json_object *lost_entry(const char *parameters_name, const char *name, json_object *job) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (parameters_name)
                json_object_object_add(o, "job", json_object_new_string(parameters_name));
        json_object_object_add(o, "job_name", name ? json_object_new_string(name) : NULL);
        json_object_object_add(o, "exception", json_object_new_string(json_str(job, "exception") ?: ""));
        return o;
}

/* The jobs_lost error: "Jobs lost upstream: a (name), b (name)". Takes data (its "lost"
 * array names them). */
static void reply_jobs_lost(Call *c, json_object *data, const char *what) {
        json_object *lost = json_object_object_get(data, "lost");
        _cleanup_free_ char *list = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&list, &len);

        for (size_t i = 0; f && i < json_array_len(lost); i++) {
                json_object *e = json_object_array_get_idx(lost, i);
                const char *job = json_str(e, "job"), *name = json_str(e, "job_name");

                if (job)
                        fprintf(f, "%s%s (%s)", i > 0 ? ", " : "", job, strna(name));
                else
                        fprintf(f, "%s%s", i > 0 ? ", " : "", strna(name));
        }
        if (f)
                fclose(f);
        call_reply_errorf(c, RPC_JOBS_LOST, data, "Jobs lost upstream: %s; the server no longer knows them "
                          "(it restarted, or the run was deleted): %s", strna(list), what);
}

/* Finishes a wait with the failure of a job. */
static void wait_fail(WaitOp *w, const RunnerJob *j) {
        const char *exc = j->job ? json_str(j->job, "exception") : NULL;
        json_object *data = json_object_new_object();

        /* lost jobs: name every one the wait awaits */
        for (size_t i = 0; job_lost_upstream(j->job) && data && i < w->runner->n_jobs; i++) {
                const RunnerJob *k = &w->runner->jobs[i];
                json_object *lost;

                if (!job_lost_upstream(k->job) || (w->which && !json_array_has_str(w->which, k->parameters_name)))
                        continue;
                if (!json_object_object_get_ex(data, "lost", &lost)) {
                        lost = json_object_new_array();
                        json_object_object_add(data, "lost", lost);
                        json_object_object_add(data, "runner_id", json_object_new_string(w->runner->id));
                        json_object_object_add(data, "set_name", w->runner->set_name ?
                                               json_object_new_string(w->runner->set_name) : NULL);
                }
                json_object_array_add(lost, lost_entry(k->parameters_name, k->name, k->job));
        }
        if (job_lost_upstream(j->job) && data) {
                _cleanup_free_ char *what = NULL;

                if (asprintf(&what, "runner.run %s runs them again", w->runner->id) < 0)
                        what = NULL;
                reply_jobs_lost(op_finish(&w->op), data, strna(what));
                return;
        }

        if (data) {
                json_object_object_add(data, "job", json_object_new_string(j->parameters_name));
                /* not "name": error.data.name is the error class (job_failed) */
                json_object_object_add(data, "job_name", j->name ? json_object_new_string(j->name) : NULL);
                json_object_object_add(data, "status", json_object_new_string(strna(j->job ? json_str(j->job, "status") : NULL)));
                json_object_object_add(data, "exception", json_object_new_string(exc ?: ""));
                json_object_object_add(data, "runner_id", json_object_new_string(w->runner->id));
        }
        if (isempty(exc))
                call_reply_errorf(op_finish(&w->op), RPC_JOB_FAILED, data, "Job %s failed: internal error (status %s)",
                                  j->parameters_name, strna(j->job ? json_str(j->job, "status") : NULL));
        else
                call_reply_errorf(op_finish(&w->op), RPC_JOB_FAILED, data, "Job %s failed with exception: %s",
                                  j->parameters_name, exc);
}

/* Jobs changed (or failed, or all done, or the runner closed). */
static void on_wait_event(Runner *r, json_object *changed, const RunnerJob *failed, bool all_done, void *userdata) {
        WaitOp *w = userdata;
        json_object *p, *jobs;

        if (!changed && !failed && !all_done) {
                /* the runner was closed */
                call_reply_errorf(op_finish(&w->op), RPC_NOT_FOUND, NULL, "Runner %s was closed", r->id);
                return;
        }
        jobs = json_object_new_array();
        for (size_t i = 0; jobs && i < json_array_len(changed); i++) {
                RunnerJob *j = runner_job(r, json_object_get_string(json_object_array_get_idx(changed, i)));

                if (j)
                        json_object_array_add(jobs, runner_job_json(j));
        }
        if (json_array_len(jobs) > 0) {
                p = json_object_new_object();
                if (p) {
                        json_object_object_add(p, "runner_id", json_object_new_string(r->id));
                        json_object_object_add(p, "event", json_object_new_string("jobs"));
                        json_object_object_add(p, "jobs", json_object_get(jobs));
                        notifier_send(w->op.call, &w->notifier, "runner.progress", p);
                }
        }
        json_object_put(jobs);
        if (failed)
                wait_fail(w, failed);
        else if (all_done)
                wait_finish(w, true, false);
}

/* A poll of the run's set: says when it has brought nothing new for a while (the runner's
 * own watch tells the changes). */
static void on_wait_polled(const char *set_name, json_object *jobs, json_object *changed, const ApiError *err,
                           void *userdata) {
        WaitOp *w = userdata;
        unsigned n = poller_watch_stalled_polls(w->watch);
        json_object *p;

        (void) set_name;
        (void) jobs;
        (void) changed;
        if (n < WAIT_STALLED_POLLS || !(p = json_object_new_object()))
                return;
        json_object_object_add(p, "runner_id", json_object_new_string(w->runner->id));
        json_object_object_add(p, "event", json_object_new_string("stalled"));
        json_object_object_add(p, "stalled_polls", json_object_new_int64(n));
        if (err)
                json_object_object_add(p, "last_error", json_object_new_string(strna(err->message)));
        notifier_send(w->op.call, &w->notifier, "runner.progress", p);
}

/* The job names of the wait's jobs. */
static json_object *wait_job_names(WaitOp *w) {
        json_object *a = json_object_new_array();
        Runner *r = w->runner;

        for (size_t i = 0; a && i < r->n_jobs; i++)
                if (r->jobs[i].name && (!w->which || json_array_has_str(w->which, r->jobs[i].parameters_name)))
                        json_object_array_add(a, json_object_new_string(r->jobs[i].name));
        return a;
}

/* The daemon stops (a caller that left does not see the answer): the wait ends at once with
 * shutting_down and the command that attaches again; the jobs go on upstream. */
static void on_wait_cancel(Call *c, void *userdata) {
        WaitOp *w = userdata;
        json_object *data = json_object_new_object();
        _cleanup_free_ char *cmd = NULL;

        (void) c;
        if (asprintf(&cmd, "avatarctl runner wait %s", w->runner->id) < 0)
                cmd = NULL;
        if (data) {
                json_object_object_add(data, "runner_id", json_object_new_string(w->runner->id));
                json_object_object_add(data, "reattach", cmd ? json_object_new_string(cmd) : NULL);
        }
        call_reply_errorf(op_finish(&w->op), RPC_SHUTTING_DOWN, data, "The daemon is stopping; the jobs go on upstream: "
                          "wait for them again with '%s' (runner.wait) once it is back", strna(cmd));
}

/* The deadline passed. */
static void on_wait_deadline(evutil_socket_t fd, short what, void *userdata) {
        (void) fd;
        (void) what;
        wait_finish(userdata, false, true);
}

/* runner.wait: until the jobs are done (or one failed), or the deadline; progress
 * notifications meanwhile. */
static int method_wait(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        json_object *v, *which = json_object_object_get(params, "jobs");
        const RunnerJob *failed = NULL;
        double timeout = WAIT_DEFAULT_S;
        struct timeval tv;
        WaitOp *w;
        int q;

        if (!r)
                return 0;
        if (r->n_jobs == 0)
                return call_reply_errorf(c, RPC_INVALID_STATE, NULL, "Runner %s has no job: call runner.run first", r->id);
        for (size_t i = 0; i < json_array_len(which); i++) {
                const char *p = json_object_get_string(json_object_array_get_idx(which, i));

                if (!runner_job(r, p))
                        return call_reply_errorf(c, RPC_NOT_FOUND, NULL, "Runner %s has no job '%s'", r->id, p);
        }
        if (json_object_object_get_ex(params, "timeout_s", &v) && v)
                timeout = json_object_get_double(v);
        w = op_new(c, sizeof(WaitOp));
        if (!w)
                return -ENOMEM;
        w->op.cleanup = wait_cleanup;
        call_on_cancel(c, on_wait_cancel, w);
        w->runner = runner_ref(r);
        w->which = json_object_get(which);
        notifier_init(&w->notifier);
        if (runner_jobs_done(r, which, &failed) || failed) {
                if (failed)
                        wait_fail(w, failed);
                else
                        wait_finish(w, true, false);
                return 0;
        }
        q = runner_waiter_add(r, which, on_wait_event, w, &w->waiter);
        if (q < 0)
                return op_start_failed(&w->op, q);
        w->deadline = evtimer_new(c->core->base, on_wait_deadline, w);
        if (!w->deadline)
                return op_start_failed(&w->op, -ENOMEM);
        tv.tv_sec = (time_t) timeout;
        tv.tv_usec = (suseconds_t) ((timeout - (double) tv.tv_sec) * 1e6);
        evtimer_add(w->deadline, &tv);
        (void) runner_track(r);
        if (r->set_name) {
                _cleanup_(json_object_putp) json_object *names = wait_job_names(w);

                q = poller_watch(c->core->poller, r->set_name, on_wait_polled, w, &w->watch);
                if (q >= 0)
                        q = poller_watch_expect(w->watch, names);
                if (q < 0)
                        log_warning_errno(q, "Runner %s: cannot watch set %s for lost jobs, ignoring: %m", r->id,
                                          r->set_name);
        }
        return 0;
}

/* ---- manager.watch_jobs ------------------------------------------------------------------- */

typedef struct WatchOp {
        Op op;
        PollerWatch *watch;
        json_object *names;      /* job names to report, or NULL for all of the set */
        struct event *deadline;
        Notifier notifier;
        char *set_name;
        json_object *last;       /* last jobs seen */
        json_object *expect;     /* job names expected in the set (names, or the runner's) */
} WatchOp;

/* Releases the watch. */
static void watch_cleanup(Op *op) {
        WatchOp *w = (WatchOp *) op;

        poller_unwatch(w->watch);
        if (w->deadline)
                event_free(w->deadline);
        json_object_put(w->names);
        json_object_put(w->last);
        json_object_put(w->expect);
        free(w->set_name);
}

/* Finishes the watch with the jobs as last seen. */
static void watch_finish(WatchOp *w, bool done) {
        json_object *o = json_object_new_object();

        if (o) {
                json_object_object_add(o, "subscription", json_object_new_string(w->notifier.id));
                json_object_object_add(o, "set_name", json_object_new_string(w->set_name));
                json_object_object_add(o, "done", json_object_new_boolean(done));
                json_object_object_add(o, "jobs", w->last ? json_object_get(w->last) : json_object_new_array());
                json_object_object_add(o, "notifications", json_object_new_uint64(w->notifier.seq));
        }
        if (o)
                call_reply(op_finish(&w->op), o);
        else
                call_reply_errno(op_finish(&w->op), -ENOMEM, NULL);
}

/* A poll of the watched set. */
static void on_watch_polled(const char *set_name, json_object *jobs, json_object *changed, const ApiError *err,
                            void *userdata) {
        WatchOp *w = userdata;
        json_object *mine = json_object_new_array(), *p, *lost = NULL;
        unsigned stalled = poller_watch_stalled_polls(w->watch);
        bool all_done = true;

        (void) set_name;
        if (err || !mine) {
                json_object_put(mine);
                if (err && stalled >= WAIT_STALLED_POLLS && (p = json_object_new_object())) {
                        json_object_object_add(p, "set_name", json_object_new_string(w->set_name));
                        json_object_object_add(p, "jobs", json_object_new_array());
                        json_object_object_add(p, "stalled_polls", json_object_new_int64(stalled));
                        json_object_object_add(p, "last_error", json_object_new_string(strna(err->message)));
                        notifier_send(w->op.call, &w->notifier, "jobs.changed", p);
                }
                return;
        }
        json_object_put(w->last);
        w->last = json_object_new_array();
        for (size_t i = 0; i < json_array_len(jobs); i++) {
                json_object *j = json_object_array_get_idx(jobs, i);
                const char *name = json_str(j, "name");

                if (w->names && !json_array_has_str(w->names, name))
                        continue;
                /* a lost job only some watcher expected (maybe not even this set's) */
                if (json_object_get_boolean(json_object_object_get(j, "expected_only")) &&
                    !json_array_has_str(w->expect, name))
                        continue;
                json_object_array_add(w->last, json_object_get(j));
                if (!job_done(j))
                        all_done = false;
                if (job_lost_upstream(j)) {
                        if (!lost)
                                lost = json_object_new_array();
                        if (lost)
                                json_object_array_add(lost, lost_entry(json_str(j, "parameters_name"), name, j));
                }
                if (json_array_has_str(changed, name))
                        json_object_array_add(mine, json_object_get(j));
        }
        if ((json_array_len(mine) > 0 || stalled >= WAIT_STALLED_POLLS) && (p = json_object_new_object())) {
                json_object_object_add(p, "set_name", json_object_new_string(w->set_name));
                json_object_object_add(p, "jobs", json_object_get(mine));
                if (stalled >= WAIT_STALLED_POLLS)
                        json_object_object_add(p, "stalled_polls", json_object_new_int64(stalled));
                notifier_send(w->op.call, &w->notifier, "jobs.changed", p);
        }
        json_object_put(mine);
        if (lost) {
                json_object *data = json_object_new_object();

                if (!data) {
                        json_object_put(lost);
                        call_reply_errno(op_finish(&w->op), -ENOMEM, NULL);
                        return;
                }
                json_object_object_add(data, "set_name", json_object_new_string(w->set_name));
                json_object_object_add(data, "lost", lost);
                reply_jobs_lost(op_finish(&w->op), data, "watching them again cannot help");
        } else if (all_done && json_array_len(w->last) > 0)
                watch_finish(w, true);
}

/* The daemon stops: the watch ends at once with shutting_down and the command that attaches
 * again. */
static void on_watch_cancel(Call *c, void *userdata) {
        WatchOp *w = userdata;
        json_object *data = json_object_new_object();
        _cleanup_free_ char *cmd = NULL;

        (void) c;
        if (asprintf(&cmd, "avatarctl watch %s", w->set_name) < 0)
                cmd = NULL;
        if (data) {
                json_object_object_add(data, "set_name", json_object_new_string(w->set_name));
                json_object_object_add(data, "reattach", cmd ? json_object_new_string(cmd) : NULL);
        }
        call_reply_errorf(op_finish(&w->op), RPC_SHUTTING_DOWN, data, "The daemon is stopping; the jobs go on upstream: "
                          "follow them again with '%s' (manager.watch_jobs) once it is back", strna(cmd));
}

/* The watch deadline passed. */
static void on_watch_deadline(evutil_socket_t fd, short what, void *userdata) {
        (void) fd;
        (void) what;
        watch_finish(userdata, false);
}

/* manager.watch_jobs: notifications about the jobs of a set until they are done, the
 * deadline passes or the caller disconnects; the reply comes at the end. */
static int method_watch_jobs(Call *c, json_object *params) {
        const char *set = json_str(params, "set_name"), *rid = json_str(params, "runner_id");
        _cleanup_(json_object_putp) json_object *expect = NULL;
        json_object *v;
        double timeout = WAIT_DEFAULT_S;
        struct timeval tv;
        WatchOp *w;
        int q;

        if (!set && rid) {
                Runner *r = runner_for_call(c, params);

                if (!r)
                        return 0;
                if (!r->set_name)
                        return call_reply_errorf(c, RPC_INVALID_STATE, NULL, "Runner %s has not run yet", r->id);
                set = r->set_name;
                /* the runner's jobs are expected in the set, even before a poll showed them */
                expect = json_object_new_array();
                for (size_t i = 0; expect && i < r->n_jobs; i++)
                        if (r->jobs[i].name)
                                json_object_array_add(expect, json_object_new_string(r->jobs[i].name));
        }
        if (!set)
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL, "Invalid params: give set_name or runner_id");
        if (json_object_object_get_ex(params, "timeout_s", &v) && v)
                timeout = json_object_get_double(v);
        w = op_new(c, sizeof(WatchOp));
        if (!w)
                return -ENOMEM;
        w->op.cleanup = watch_cleanup;
        w->set_name = strdup(set);
        w->names = json_object_get(json_object_object_get(params, "jobs"));
        if (w->set_name)
                call_on_cancel(c, on_watch_cancel, w);
        notifier_init(&w->notifier);
        w->deadline = evtimer_new(c->core->base, on_watch_deadline, w);
        if (!w->set_name || !w->deadline)
                return op_start_failed(&w->op, -ENOMEM);
        q = poller_watch(c->core->poller, set, on_watch_polled, w, &w->watch);
        w->expect = json_object_get(w->names ?: expect);
        if (q >= 0)
                q = poller_watch_expect(w->watch, w->expect);
        if (q < 0)
                return op_start_failed(&w->op, q);
        /* joining a set that is already followed: start from what its last poll saw */
        {
                json_object *last = poller_last_jobs(c->core->poller, set), *names = json_object_new_array();

                for (size_t i = 0; names && i < json_array_len(last); i++) {
                        const char *n = json_str(json_object_array_get_idx(last, i), "name");

                        if (n)
                                json_object_array_add(names, json_object_new_string(n));
                }
                if (json_array_len(names) > 0) {
                        json_object_get(last);
                        on_watch_polled(set, last, names, NULL, w);
                        json_object_put(last);
                }
                json_object_put(names);
                /* the snapshot may already show every job done (and the call finished) */
                if (c->finished)
                        return 0;
        }
        tv.tv_sec = (time_t) timeout;
        tv.tv_usec = (suseconds_t) ((timeout - (double) tv.tv_sec) * 1e6);
        evtimer_add(w->deadline, &tv);
        return 0;
}

const MethodDef methods_runner_wait[] = {
        { "manager.watch_jobs", method_watch_jobs, METHOD_LONG_WAIT },
        { "runner.get_status", method_get_status, 0 },
        { "runner.wait", method_wait, METHOD_LONG_WAIT },
        {}
};
