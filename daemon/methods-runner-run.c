/* SPDX-License-Identifier: MIT */
/*
 * runner.run: send the runner's YAML as a new set and create its jobs (methods-runner-wait.c
 * follows them).
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
#include "manager.h"
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
        json_object *created;     /* [{parameters_name, kind, name, location}] created by this call */
        json_object *warnings;
        size_t next;
        bool replaced;
        bool resumed;             /* an interrupted run is finished in its set */
        bool failing;             /* a POST /jobs failed: the set is read before the reply */
        ApiError failure;         /* that POST's error */
        char *failed_job;
        PutResources put;
} RunOp;

/* Releases the run state. */
static void run_cleanup(Op *op) {
        RunOp *u = (RunOp *) op;

        json_object_put(u->pnames);
        json_object_put(u->created);
        json_object_put(u->warnings);
        api_error_done(&u->failure);
        free(u->failed_job);
        put_resources_done(&u->put);
        if (u->runner) {
                u->runner->busy = NULL;
                runner_unref(u->runner);
        }
}

/* The Location of the runner's job of a parameters name (this run's: the set is the run's),
 * or NULL. */
static const char *run_location(RunOp *u, const char *pname) {
        RunnerJob *j = runner_job(u->runner, pname);

        return j && j->name ? j->location : NULL;
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
        json_object_object_add(o, "resumed", json_object_new_boolean(u->resumed));
        json_object_object_add(o, "jobs", jobs);
        json_object_object_add(o, "warnings", json_object_get(u->warnings));
        return o;
}

/* Ends the call with a failed save of the runner (state_not_saved): nothing more is sent
 * upstream. `what` says what the save was for; what the run did so far stays in memory, and
 * the retries save it (data.kept). */
static void run_save_failed(RunOp *u, int q, const char *what) {
        Runner *r = u->runner;
        _cleanup_free_ char *m = NULL;
        json_object *data = NULL;

        log_ctx(LOG_WARNING, &u->op.call->log, "Runner %s: cannot record %s; the run stops there: %s", r->id, what,
                strerror(-q));
        (void) runner_track(r);
        if (runner_save_error_json(r, q, true, &m, &data) >= 0) {
                json_object_object_add(data, "set_name", r->set_name ? json_object_new_string(r->set_name) : NULL);
                json_object_object_add(data, "created_jobs", json_object_get(u->created));
                json_object_object_add(data, "stopped_before", json_object_new_string(what));
        }
        call_reply_error(op_finish(&u->op), RPC_STATE_NOT_SAVED, m, data);
}

static void run_next_job(RunOp *u);
static int run_read_set(RunOp *u);

/* The call is cancelled. A caller that left does not stop the run: it goes on, and only its
 * reply is lost. A stopping daemon ends it where it is: every step is recorded before it is
 * taken, so the runner is interrupted, and runner.run finishes it once the daemon is back. */
static void on_run_cancel(Call *c, void *userdata) {
        RunOp *u = userdata;
        Runner *r = u->runner;
        _cleanup_free_ char *cmd = NULL;
        json_object *data;

        if (!c->core->stopping) {
                call_on_cancel(c, on_run_cancel, u);
                return;
        }
        log_ctx(LOG_NOTICE, &c->log, "Runner %s: the daemon stops in the middle of its run; the run is interrupted.",
                r->id);
        /* the request in flight goes (op_finish() takes it as done) */
        api_cancel(TAKE_PTR(u->op.req));
        if (asprintf(&cmd, "avatarctl runner run %s", r->id) < 0)
                cmd = NULL;
        data = json_object_new_object();
        if (data) {
                json_object_object_add(data, "runner_id", json_object_new_string(r->id));
                json_object_object_add(data, "set_name", r->set_name && r->run ? json_object_new_string(r->set_name) : NULL);
                json_object_object_add(data, "created_jobs", json_object_get(u->created));
                json_object_object_add(data, "resume", cmd ? json_object_new_string(cmd) : NULL);
        }
        call_reply_errorf(op_finish(&u->op), RPC_SHUTTING_DOWN, data,
                          "The daemon is stopping in the middle of the run; the runner knows what it created "
                          "and finishes the run with '%s' (runner.run) once the daemon is back", strna(cmd));
}

/* Ends the call with the POST /jobs error, once the set was read (or could not be). */
static void run_fail_reply(RunOp *u) {
        json_object *data = api_error_data(&u->failure);
        _cleanup_free_ char *msg = NULL;
        Runner *r = u->runner;
        int code = u->failure.code;

        if (data) {
                json_object_object_add(data, "set_name", r->set_name ? json_object_new_string(r->set_name) : NULL);
                json_object_object_add(data, "created_jobs", json_object_get(u->created));
                json_object_object_add(data, "failed_job", json_object_new_string(u->failed_job));
                json_object_object_add(data, "interrupted", json_object_new_boolean(!!r->run));
        }
        /* formatted before op_finish(), which frees u */
        if (asprintf(&msg, "Creating the %s job failed after %zu job(s) were created in set %s: %s%s", u->failed_job,
                     json_array_len(u->created), strna(r->set_name), strna(u->failure.message),
                     r->run ? " (runner.run finishes the run in the same set)" : "") < 0)
                msg = NULL;
        call_reply_error(op_finish(&u->op), code ?: RPC_UPSTREAM_BAD_RESPONSE, msg ?: "Creating a job failed", data);
}

/* The set's jobs arrived (a resumed run, or after a failed POST /jobs): the runner adopts
 * those it does not know. */
static void on_set_read(const ApiResponse *resp, const ApiError *err, void *userdata) {
        RunOp *u = userdata;
        Runner *r = u->runner;
        json_object *jobs = err ? NULL : manager_jobs_array(resp->json), *mine;
        int q;

        u->op.req = NULL;
        if (!jobs) {
                if (u->failing) {
                        /* the poller reads the set again */
                        runner_reconcile(r);
                        run_fail_reply(u);
                } else if (err)
                        reply_api_error(op_finish(&u->op), err);
                else
                        call_reply_errorf(op_finish(&u->op), RPC_UPSTREAM_BAD_RESPONSE, NULL,
                                          "The answer to GET /jobs?set_name=%s has no job list", r->set_name);
                return;
        }
        /* a server that ignores the filter lists other sets' jobs too */
        mine = manager_filter_jobs(jobs, r->set_name, NULL, NULL, -1);
        q = mine ? runner_adopt_jobs(r, mine, NULL) : -ENOMEM;
        json_object_put(mine);
        if (q < 0) {
                call_reply_errno(op_finish(&u->op), q, NULL);
                return;
        }
        if (q > 0)
                log_ctx(LOG_INFO, &u->op.call->log, "Runner %s: adopted %d job(s) of set %s.", r->id, q, r->set_name);
        r->reconcile = false;
        if (u->failing) {
                /* the set holds no job: the run left nothing to finish */
                if (r->n_jobs == 0)
                        (void) runner_run_abandon(r);
                else {
                        (void) runner_save(r);
                        (void) runner_track(r);
                }
                run_fail_reply(u);
                return;
        }
        run_next_job(u);
}

/* Reads the jobs of the run's set (GET /jobs?set_name=). Returns 0 or -errno. */
static int run_read_set(RunOp *u) {
        _cleanup_free_ char *esc = api_escape(u->runner->set_name), *path = NULL;
        ApiCall call;

        if (!esc || asprintf(&path, "/jobs?set_name=%s", esc) < 0)
                return -ENOMEM;
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .label = "GET /jobs?set_name" };
        return api_start(u->op.core->api, &call, on_set_read, u, &u->op.req);
}

/* A job was created. */
static void on_job_created(const ApiResponse *resp, const ApiError *err, void *userdata) {
        RunOp *u = userdata;
        const char *pname = json_object_get_string(json_object_array_get_idx(u->pnames, u->next));
        const char *name = json_str(resp ? resp->json : NULL, "name"),
                   *loc = json_str(resp ? resp->json : NULL, "Location");
        _cleanup_free_ char *synth = NULL;
        json_object *j;
        int q;

        u->op.req = NULL;
        if (err || !name) {
                /* the job may exist although its answer was lost: the set is read and what it
                 * holds adopted before the reply */
                u->failing = true;
                u->failed_job = strdup(pname);
                if (err)
                        q = api_error_copy(err, &u->failure);
                else {
                        api_error_setf(&u->failure, RPC_UPSTREAM_BAD_RESPONSE, "the answer has no job name");
                        q = u->failure.message ? 0 : -ENOMEM;
                }
                if (q >= 0 && u->failed_job)
                        q = run_read_set(u);
                if (q < 0 || !u->failed_job) {
                        runner_reconcile(u->runner);
                        call_reply_errno(op_finish(&u->op), q < 0 ? q : -ENOMEM, NULL);
                }
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
        /* recorded at once: a daemon stopped from here on knows the job */
        q = runner_run_created(u->runner, pname, name, loc);
        if (q == -ENOMEM) {
                call_reply_errno(op_finish(&u->op), q, NULL);
                return;
        }
        u->next++;
        run_next_job(u);
}

/* Creates the next job that the runner does not have yet (POST /jobs), or finishes. */
static void run_next_job(RunOp *u) {
        Runner *r = u->runner;
        const char *pname;
        json_object *body, *deps;
        ApiCall call;
        Call *c;
        int q;

        /* a resumed run skips the jobs the set already holds */
        while (u->next < json_array_len(u->pnames)) {
                RunnerJob *j = runner_job(r, json_object_get_string(json_object_array_get_idx(u->pnames, u->next)));

                if (!j || !j->name)
                        break;
                u->next++;
        }
        if (u->next >= json_array_len(u->pnames)) {
                json_object *o;

                q = runner_run_end(r);
                if (q < 0) {
                        run_save_failed(u, q, "the end of the run (every job is created upstream)");
                        return;
                }
                o = run_result(u);
                /* before op_finish(), which frees u */
                log_ctx(LOG_INFO, &u->op.call->log, "Runner %s: %s %zu job(s) in set %s.", r->id,
                        u->resumed ? "resumed its run, created" : "launched", json_array_len(u->created),
                        strna(r->set_name));
                c = op_finish(&u->op);
                if (o)
                        call_reply(c, o);
                else
                        call_reply_errno(c, -ENOMEM, NULL);
                return;
        }
        pname = json_object_get_string(json_object_array_get_idx(u->pnames, u->next));
        /* the intent first: a daemon stopped during the POST finds the job by its set */
        q = runner_run_creating(r, pname);
        if (q < 0) {
                _cleanup_free_ char *what = NULL;

                run_save_failed(u, q, asprintf(&what, "creating the %s job", pname) < 0 ? "creating a job" : what);
                return;
        }
        deps = json_object_new_array();
        if (streq(pname, "signal_metrics") || streq(pname, "privacy_metrics")) {
                if (run_location(u, "standard"))
                        json_object_array_add(deps, json_object_new_string(run_location(u, "standard")));
        } else if (streq(pname, "report") || streq(pname, "report_pia")) {
                json_object_array_add(deps, json_object_new_string(strna(run_location(u, "privacy_metrics"))));
                json_object_array_add(deps, json_object_new_string(strna(run_location(u, "signal_metrics"))));
        }
        body = json_object_new_object();
        json_object_object_add(body, "set_name", json_object_new_string(r->set_name));
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
        int q;

        u->op.req = NULL;
        if (err || !set) {
                /* no set known: no job can have been created, the record goes */
                (void) runner_run_end(u->runner);
                if (err)
                        reply_api_error(op_finish(&u->op), err);
                else
                        call_reply_errorf(op_finish(&u->op), RPC_UPSTREAM_BAD_RESPONSE, NULL,
                                          "The answer to PUT /resources holds no set_name");
                return;
        }
        /* the earlier set and its jobs go to past_sets in the same save */
        q = runner_run_set_created(u->runner, set, u->replaced);
        if (q < 0) {
                run_save_failed(u, q, "recording the new set");
                return;
        }
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
        json_object *jobs = json_object_object_get(params, "jobs"), *pnames, *v, *planned;
        bool ignore = json_object_object_get_ex(params, "ignore_warnings", &v) && json_object_get_boolean(v);
        RunOp *u;
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        /* an interrupted run is finished: its plan, and the jobs asked for besides */
        planned = runner_run_planned(r);
        pnames = json_object_new_array();
        if (!pnames)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(run_order); i++) {
                const char *kind = streq(run_order[i], "report_pia") ? "report" : run_order[i];

                if (planned ? json_array_has_str(planned, run_order[i]) || json_array_has_str(jobs, kind)
                            : !jobs || json_array_has_str(jobs, kind))
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
        u->runner = runner_ref(r);
        u->pnames = pnames;
        u->created = json_object_new_array();
        u->warnings = json_object_new_array();
        if (!u->created || !u->warnings)
                return op_start_failed(&u->op, -ENOMEM);
        u->resumed = planned && runner_run_set(r) && streq_ptr(runner_run_set(r), r->set_name);
        if (!u->resumed && runner_has_run(r) && r->set_name) {
                _cleanup_free_ char *w = NULL;

                u->replaced = true;
                if (!ignore &&
                    asprintf(&w, "This runner already has results for set_name '%s'. Re-running creates a new set_name; "
                             "the runner keeps the earlier set and its jobs in past_sets, and its results are no longer "
                             "read through this runner. To access them later: "
                             "manager.create_runner_from_id {\"set_name\": \"%s\"} (avatarctl runs load %s).",
                             r->set_name, r->set_name, r->set_name) >= 0)
                        json_object_array_add(u->warnings, json_object_new_string(w));
        }
        /* the intent before anything is sent: a run that cannot be recorded is not started */
        q = runner_run_begin(r, pnames);
        if (q < 0) {
                log_ctx(LOG_WARNING, &c->log, "Runner %s: cannot record the run; not started: %s", r->id, strerror(-q));
                op_start_failed(&u->op, 0);
                return q == -ENOMEM ? q : reply_not_saved(c, r, q, false);
        }
        for (size_t i = 0; i < json_array_len(u->warnings); i++)
                runner_warn(r, json_object_get_string(json_object_array_get_idx(u->warnings, i)));
        r->busy = "submitting";
        /* not stopped when the caller goes, only when the daemon stops (on_run_cancel()) */
        call_on_cancel(c, on_run_cancel, u);
        q = u->resumed ? run_read_set(u) : put_resources(&u->op, &u->put, r, on_resources_put);
        return q < 0 ? op_start_failed(&u->op, q) : 0;
}

const MethodDef methods_runner_run[] = {
        { "runner.run", method_run, METHOD_MUTATING },
        {}
};
