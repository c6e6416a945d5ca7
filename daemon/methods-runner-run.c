/* SPDX-License-Identifier: MIT */
/*
 * Runner methods that run and follow jobs: send the YAML as a new set and create the jobs
 * (runner.run), the status, runner.wait until they are done, and manager.watch_jobs.
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

/* ---- runner.run ---------------------------------------------------------------------- */

/* A Location header (a server's bytes) as a message shows it: scrub_clean(), one line of
 * valid UTF-8, bounded. Returns malloc'd, or NULL on OOM. */
static char *location_shown(const char *loc) {
        loc = loc ?: "";
        return scrub_clean(loc, strlen(loc), UPSTREAM_LOCATION_SHOWN_MAX, NULL);
}

/* Whether a text from a server may be kept as a name or a Location (in the runner, its state
 * file, a reply): valid UTF-8 without control characters. */
static bool text_is_clean(const char *s) {
        size_t n = strlen(s);

        for (size_t i = 0, l; i < n; i += l) {
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return false;
                l = utf8_sequence_len((const unsigned char *) s + i, n - i);
                if (l == 0)
                        return false;
        }
        return true;
}

/* Releases what a PUT /resources holds. */
void put_resources_done(PutResources *p) {
        p->location = mfree(p->location);
        json_object_put(p->created);
        p->created = NULL;
}

/* Execution order of the parameters names a run may launch. */
static const char *const run_order[] = { "standard", "signal_metrics", "privacy_metrics", "report", "report_pia" };

typedef struct RunOp {
        Op op;
        Runner *runner;
        json_object *pnames;      /* parameters names to launch, in order */
        json_object *created;     /* [{parameters_name, kind, name, location}] */
        json_object *warnings;
        size_t next;
        bool replaced;
        PutResources put;
} RunOp;

/* Releases the run state. */
static void run_cleanup(Op *op) {
        RunOp *u = (RunOp *) op;

        json_object_put(u->pnames);
        json_object_put(u->created);
        json_object_put(u->warnings);
        put_resources_done(&u->put);
        if (u->runner) {
                u->runner->busy = NULL;
                runner_unref(u->runner);
        }
}

/* The Location of a job created in this run, or NULL. */
static const char *run_location(RunOp *u, const char *pname) {
        for (size_t i = 0; i < json_array_len(u->created); i++) {
                json_object *j = json_object_array_get_idx(u->created, i);

                if (streq_ptr(json_str(j, "parameters_name"), pname))
                        return json_str(j, "location");
        }
        return NULL;
}

/* Records the jobs created so far in the runner (also after a failure part-way). */
static void run_commit_jobs(RunOp *u) {
        (void) runner_set_jobs(u->runner, u->created);
}

/* The run result. */
static json_object *run_result(RunOp *u) {
        Runner *r = u->runner;
        json_object *o = json_object_new_object(), *jobs = runner_jobs_json(r);

        if (!o || !jobs) {
                json_object_put(o);
                json_object_put(jobs);
                return NULL;
        }
        json_object_object_add(o, "runner_id", json_object_new_string(r->id));
        json_object_object_add(o, "set_name", json_object_new_string(r->set_name));
        json_object_object_add(o, "replaced", json_object_new_boolean(u->replaced));
        json_object_object_add(o, "previous_set_name",
                               u->replaced && r->previous_set_name ? json_object_new_string(r->previous_set_name) : NULL);
        json_object_object_add(o, "jobs", jobs);
        json_object_object_add(o, "warnings", json_object_get(u->warnings));
        return o;
}

static void run_next_job(RunOp *u);

/* A job was created. */
static void on_job_created(const ApiResponse *resp, const ApiError *err, void *userdata) {
        RunOp *u = userdata;
        const char *pname = json_object_get_string(json_object_array_get_idx(u->pnames, u->next));
        const char *name = json_str(resp ? resp->json : NULL, "name"),
                   *loc = json_str(resp ? resp->json : NULL, "Location");
        _cleanup_free_ char *synth = NULL;
        json_object *j;

        u->op.req = NULL;
        if (err || !name) {
                json_object *data = err ? api_error_data(err) : json_object_new_object();
                _cleanup_free_ char *msg = NULL;

                run_commit_jobs(u);
                if (data) {
                        json_object_object_add(data, "set_name", json_object_new_string(u->runner->set_name));
                        json_object_object_add(data, "created_jobs", json_object_get(u->created));
                        json_object_object_add(data, "failed_job", json_object_new_string(pname));
                }
                /* formatted before op_finish(), which frees u (pname points into u->pnames) */
                if (asprintf(&msg, "Creating the %s job failed after %zu job(s) were created in set %s: %s", pname,
                             json_array_len(u->created), u->runner->set_name,
                             err ? strna(err->message) : "the answer has no job name") < 0)
                        msg = NULL;
                call_reply_error(op_finish(&u->op), err ? err->code : RPC_UPSTREAM_BAD_RESPONSE,
                                 msg ?: "Creating a job failed", data);
                return;
        }
        /* a Location header that is not clean text (the body's is JSON, so UTF-8) would put
         * its bytes in the state file and replies: the job is then named by its path */
        if (!loc && resp->location && text_is_clean(resp->location))
                loc = resp->location;
        if (!loc && asprintf(&synth, "/jobs/%s", name) >= 0)
                loc = synth;
        j = json_object_new_object();
        json_object_object_add(j, "parameters_name", json_object_new_string(pname));
        json_object_object_add(j, "kind", json_object_new_string(runner_config_job_kind(pname)));
        json_object_object_add(j, "name", json_object_new_string(name));
        json_object_object_add(j, "location", json_object_new_string(strna(loc)));
        json_object_array_add(u->created, j);
        u->next++;
        run_next_job(u);
}

/* Creates the next job (POST /jobs), or finishes. */
static void run_next_job(RunOp *u) {
        const char *pname;
        json_object *body, *deps;
        ApiCall call;
        Call *c;
        int q;

        if (u->next >= json_array_len(u->pnames)) {
                json_object *o;

                run_commit_jobs(u);
                o = run_result(u);
                /* before op_finish(), which frees u */
                log_ctx(LOG_INFO, &u->op.call->log, "Runner %s: launched %zu job(s) in set %s.", u->runner->id,
                        json_array_len(u->pnames), strna(u->runner->set_name));
                c = op_finish(&u->op);
                if (o)
                        call_reply(c, o);
                else
                        call_reply_errno(c, -ENOMEM, NULL);
                return;
        }
        pname = json_object_get_string(json_object_array_get_idx(u->pnames, u->next));
        deps = json_object_new_array();
        if (streq(pname, "signal_metrics") || streq(pname, "privacy_metrics")) {
                if (run_location(u, "standard"))
                        json_object_array_add(deps, json_object_new_string(run_location(u, "standard")));
        } else if (streq(pname, "report") || streq(pname, "report_pia")) {
                json_object_array_add(deps, json_object_new_string(strna(run_location(u, "privacy_metrics"))));
                json_object_array_add(deps, json_object_new_string(strna(run_location(u, "signal_metrics"))));
        }
        body = json_object_new_object();
        json_object_object_add(body, "set_name", json_object_new_string(u->runner->set_name));
        json_object_object_add(body, "parameters_name", json_object_new_string(pname));
        json_object_object_add(body, "depends_on", deps);
        call = (ApiCall){ .method = UPSTREAM_POST, .path = "/jobs", .json = body, .label = "POST /jobs" };
        q = api_start(u->op.core->api, &call, on_job_created, u, &u->op.req);
        json_object_put(body);
        if (q < 0)
                call_reply_errno(op_finish(&u->op), q, NULL);
}

/* The set was created. */
static void on_resources_put(const ApiResponse *resp, const ApiError *err, void *userdata) {
        RunOp *u = userdata;
        const char *set = json_str(resp ? resp->json : NULL, "set_name");
        Runner *r = u->runner;

        u->op.req = NULL;
        if (err) {
                reply_api_error(op_finish(&u->op), err);
                return;
        }
        if (!set) {
                call_reply_errorf(op_finish(&u->op), RPC_UPSTREAM_BAD_RESPONSE, NULL,
                                  "The answer to PUT /resources holds no set_name");
                return;
        }
        if (u->replaced) {
                free(r->previous_set_name);
                r->previous_set_name = r->set_name;
        } else
                free(r->set_name);
        r->set_name = strdup(set);
        (void) runner_set_jobs(r, NULL);
        run_next_job(u);
}

static void on_put_resources(const ApiResponse *resp, const ApiError *err, void *userdata);

/* Hands the answer to the caller; a new set is first recorded as the runner owner's (sets.h),
 * and one that already belongs to another user is refused. */
static void put_resources_deliver(PutResources *p, const ApiResponse *resp, const ApiError *err) {
        const char *set = err || !resp ? NULL : json_str(resp->json, "set_name");
        ApiError e = { .retry_after_ms = -1 };

        if (set && p->runner && runner_record_set(p->runner, set, "created") == -EEXIST) {
                api_error_setf(&e, RPC_UPSTREAM_BAD_RESPONSE,
                               "PUT /resources answered set %s, which belongs to another user of this daemon", set);
                p->cb(NULL, &e, p->op);
                api_error_done(&e);
                return;
        }
        p->cb(resp, err, p->op);
}

/* Reads the Location of a 201 answer. Returns 0, -EINVAL (*ret_error set) or -ENOMEM. */
static int put_resources_follow(PutResources *p, const ApiResponse *resp) {
        _cleanup_free_ char *path = NULL;
        ApiCall call;

        if (!(p->location = strdup(resp->location)))
                return -ENOMEM;
        path = runner_location_api_path(p->op->core->config->api_url, resp->location);
        if (!path)
                return -EINVAL;
        p->created = json_object_get(resp->json);
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .label = "GET /resources/{set}" };
        return api_start(p->op->core->api, &call, on_put_resources, p, &p->op->req);
}

/* The PUT /resources answer, or the answer of its Location. */
static void on_put_resources(const ApiResponse *resp, const ApiError *err, void *userdata) {
        PutResources *p = userdata;
        Op *op = p->op;
        _cleanup_free_ char *segment = NULL;
        ApiError e = { .retry_after_ms = -1 };
        json_object *set = NULL;
        const char *name;
        int q;

        op->req = NULL;
        if (!p->location) {
                if (err || resp->status != 201 || isempty(resp->location)) {
                        put_resources_deliver(p, resp, err);
                        return;
                }
                q = put_resources_follow(p, resp);
                if (q >= 0)
                        return;
                if (q == -EINVAL) {
                        _cleanup_free_ char *shown = location_shown(resp->location);

                        api_error_setf(&e, RPC_UPSTREAM_BAD_RESPONSE,
                                       "PUT /resources answered 201 with a Location outside the API: %s",
                                       strna(shown));
                } else
                        api_error_setf(&e, RPC_INTERNAL_ERROR, "Cannot follow the Location of PUT /resources: %s",
                                       strerror(-q));
                p->cb(NULL, &e, op);
                api_error_done(&e);
                return;
        }
        if (err) {
                _cleanup_free_ char *shown = location_shown(p->location);

                if (!shown || api_error_copy(err, &e) < 0) {
                        p->cb(NULL, err, op);
                        return;
                }
                free(e.message);
                if (asprintf(&e.message, "PUT /resources answered 201 with Location %s, and reading it failed: %s",
                             shown, strna(err->message)) < 0)
                        e.message = NULL;
                p->cb(NULL, e.message ? &e : err, op);
                api_error_done(&e);
                return;
        }
        /* the resource read as a 200 answer is; a YAML or empty answer names the set by the
         * 201 body or the Location's last segment */
        if (json_str(resp->json, "set_name")) {
                put_resources_deliver(p, resp, NULL);
                return;
        }
        name = json_str(p->created, "set_name");
        /* percent-decoded, the segment may be any bytes: only clean text names a set */
        if (!name && (segment = runner_location_last_segment(p->location)) && text_is_clean(segment))
                name = segment;
        if (name && (set = json_object_new_object())) {
                json_object_object_add(set, "set_name", json_object_new_string(name));
                if (json_str(p->created, "display_name"))
                        json_object_object_add(set, "display_name",
                                               json_object_new_string(json_str(p->created, "display_name")));
        }
        put_resources_deliver(p, &(ApiResponse){ .status = resp->status, .json = set, .body = resp->body,
                                                 .body_len = resp->body_len, .content_type = resp->content_type },
                              NULL);
        json_object_put(set);
}

/* Sends the runner's YAML as a new set. Used by run and advise; cb gets op as userdata. */
int put_resources(Op *op, PutResources *p, Runner *r, api_done_cb cb) {
        _cleanup_free_ char *yaml = NULL, *esc = NULL, *path = NULL;
        size_t len;
        ApiCall call;
        int q;

        q = resource_yaml_emit(r->docs, &yaml, &len);
        if (q < 0)
                return q;
        esc = api_escape(r->display_name);
        if (!esc || asprintf(&path, "/resources/%s", esc) < 0)
                return -ENOMEM;
        put_resources_done(p);
        *p = (PutResources){ .op = op, .cb = cb, .runner = r };
        call = (ApiCall){
                .method = UPSTREAM_PUT,
                .path = path,
                .body = yaml,
                .body_len = len,
                .content_type = "application/yaml",
                .label = "PUT /resources/{display_name}",
        };
        return api_start(op->core->api, &call, on_put_resources, p, &op->req);
}

/* Whether the runner ran jobs other than advice. */
bool runner_has_run(const Runner *r) {
        for (size_t i = 0; i < r->n_jobs; i++)
                if (!streq(r->jobs[i].parameters_name, "advice_parameters"))
                        return true;
        return false;
}

/* runner.run: send the YAML as a new set and create the jobs with their depends_on chain.
 * It runs to its end even when its caller disconnects or the daemon stops (within
 * limits.shutdown_timeout_s). */
static int method_run(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        _cleanup_free_ char *err = NULL;
        json_object *jobs = json_object_object_get(params, "jobs"), *pnames, *v;
        bool ignore = json_object_object_get_ex(params, "ignore_warnings", &v) && json_object_get_boolean(v);
        RunOp *u;
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        pnames = json_object_new_array();
        if (!pnames)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(run_order); i++) {
                const char *kind = streq(run_order[i], "report_pia") ? "report" : run_order[i];

                if (!jobs || json_array_has_str(jobs, kind))
                        json_object_array_add(pnames, json_object_new_string(run_order[i]));
        }
        if (json_array_len(pnames) == 0) {
                json_object_put(pnames);
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL, "Invalid params: no job to run");
        }
        if (json_array_has_str(pnames, "report") &&
            !(json_array_has_str(pnames, "privacy_metrics") && json_array_has_str(pnames, "signal_metrics"))) {
                json_object_put(pnames);
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL,
                                         "Invalid params: the report jobs need privacy_metrics and signal_metrics in the same run");
        }
        q = runner_config_prepare_run(r->docs, r->options, pnames, &err);
        if (q < 0) {
                json_object_put(pnames);
                if (q == -EINVAL)
                        return call_reply_errorf(c, RPC_INVALID_STATE, NULL, "Cannot run: %s", strna(err));
                return q;
        }
        u = op_new(c, sizeof(RunOp));
        if (!u) {
                json_object_put(pnames);
                return -ENOMEM;
        }
        u->op.cleanup = run_cleanup;
        /* not stopped when the caller goes: a run cut half-way would leave a set and some of
         * its jobs upstream that no runner records; it completes its sequence and records
         * the jobs it created, and only its reply is lost */
        call_on_cancel(c, NULL, NULL);
        u->runner = runner_ref(r);
        u->pnames = pnames;
        u->created = json_object_new_array();
        u->warnings = json_object_new_array();
        if (!u->created || !u->warnings)
                return op_start_failed(&u->op, -ENOMEM);
        if (runner_has_run(r) && r->set_name) {
                _cleanup_free_ char *w = NULL;

                u->replaced = true;
                if (!ignore &&
                    asprintf(&w, "This runner already has results for set_name '%s'. Re-running creates a new set_name; "
                             "previous results are no longer accessible from this runner. To access them later: "
                             "manager.create_runner_from_id {\"set_name\": \"%s\"} (avatarctl runs load %s).",
                             r->set_name, r->set_name, r->set_name) >= 0) {
                        json_object_array_add(u->warnings, json_object_new_string(w));
                        runner_warn(r, w);
                }
        }
        r->busy = "submitting";
        q = put_resources(&u->op, &u->put, r, on_resources_put);
        return q < 0 ? op_start_failed(&u->op, q) : 0;
}

/* ---- runner.get_status / runner.wait ------------------------------------------------------- */

/* runner.get_status: the runner, its tables and jobs as last seen (refresh: poll now). */
static int method_get_status(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        json_object *v;

        if (!r)
                return 0;
        if (json_object_object_get_ex(params, "refresh", &v) && json_object_get_boolean(v) && r->set_name)
                poller_kick(c->core->poller, r->set_name);
        return reply_status(c, r);
}

typedef struct WaitOp {
        Op op;
        Runner *runner;
        RunnerWaiter *waiter;
        json_object *which;
        struct event *deadline;
        Notifier notifier;
} WaitOp;

/* Releases the wait state. */
static void wait_cleanup(Op *op) {
        WaitOp *w = (WaitOp *) op;

        runner_waiter_remove(w->waiter);
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

/* Finishes a wait with the failure of a job. */
static void wait_fail(WaitOp *w, const RunnerJob *j) {
        const char *exc = j->job ? json_str(j->job, "exception") : NULL;
        json_object *data = json_object_new_object();

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
} WatchOp;

/* Releases the watch. */
static void watch_cleanup(Op *op) {
        WatchOp *w = (WatchOp *) op;

        poller_unwatch(w->watch);
        if (w->deadline)
                event_free(w->deadline);
        json_object_put(w->names);
        json_object_put(w->last);
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
        json_object *mine = json_object_new_array(), *p;
        bool all_done = true;

        (void) set_name;
        if (err || !mine) {
                json_object_put(mine);
                return;
        }
        json_object_put(w->last);
        w->last = json_object_new_array();
        for (size_t i = 0; i < json_array_len(jobs); i++) {
                json_object *j = json_object_array_get_idx(jobs, i);
                const char *name = json_str(j, "name");

                if (w->names && !json_array_has_str(w->names, name))
                        continue;
                json_object_array_add(w->last, json_object_get(j));
                if (!job_done(j))
                        all_done = false;
                if (json_array_has_str(changed, name))
                        json_object_array_add(mine, json_object_get(j));
        }
        if (json_array_len(mine) > 0 && (p = json_object_new_object())) {
                json_object_object_add(p, "set_name", json_object_new_string(w->set_name));
                json_object_object_add(p, "jobs", json_object_get(mine));
                notifier_send(w->op.call, &w->notifier, "jobs.changed", p);
        }
        json_object_put(mine);
        if (all_done && json_array_len(w->last) > 0)
                watch_finish(w, true);
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
        notifier_init(&w->notifier);
        w->deadline = evtimer_new(c->core->base, on_watch_deadline, w);
        if (!w->set_name || !w->deadline)
                return op_start_failed(&w->op, -ENOMEM);
        q = poller_watch(c->core->poller, set, on_watch_polled, w, &w->watch);
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

const MethodDef methods_runner_run[] = {
        { "manager.watch_jobs", method_watch_jobs, 0 },
        { "runner.run", method_run, METHOD_MUTATING },
        { "runner.get_status", method_get_status, 0 },
        { "runner.wait", method_wait, 0 },
        {}
};
