/* SPDX-License-Identifier: MIT */
/*
 * Runner methods, the runners themselves: create them (new, from YAML, from a set id, from a
 * display name), export their YAML, delete their jobs, list and close them. The other
 * families are in methods-runner-*.c (see methods-runner.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cache.h"
#include "config.h"
#include "core.h"
#include "errors.h"
#include "json-util.h"
#include "jsonrpc.h"
#include "log.h"
#include "manager.h"
#include "methods-runner.h"
#include "op.h"
#include "resource-yaml.h"
#include "runner-config.h"
#include "runner.h"
#include "state.h"

/* ---- lookup and ownership ---------------------------------------------------------- */

/* Finds the runner named by params.runner_id and checks the caller may act on it: its owner
 * or an admin. On failure replies and returns NULL. */
Runner *runner_for_call(Call *c, json_object *params) {
        const char *id = json_str(params, "runner_id");
        Runner *r = id && c->core->runners ? runner_find(c->core->runners, id) : NULL;
        Role role;

        if (!r) {
                call_reply_errorf(c, RPC_NOT_FOUND, NULL, "No runner '%s' (runner.list shows yours)", strna(id));
                return NULL;
        }
        role = call_role(c);
        if (r->owner != c->peer->uid && role < ROLE_ADMIN) {
                json_object *data = json_object_new_object();

                if (data)
                        json_object_object_add(data, "required_role", json_object_new_string("admin"));
                call_reply_errorf(c, RPC_PERMISSION_DENIED, data,
                                  "Runner %s belongs to uid %u; only its owner or an admin may use it", r->id,
                                  (unsigned) r->owner);
                return NULL;
        }
        return r;
}

/* Replies invalid_state when the runner is busy; returns true then. */
bool runner_busy_reply(Call *c, Runner *r) {
        if (!r->busy)
                return false;
        call_reply_errorf(c, RPC_INVALID_STATE, NULL, "Runner %s is busy (%s); try again when it is done", r->id, r->busy);
        return true;
}

/* Replies with the runner's status. */
int reply_status(Call *c, Runner *r) {
        json_object *o = runner_status_json(r, false);

        return o ? call_reply(c, o) : -ENOMEM;
}

/* ---- saved or refused ------------------------------------------------------------------ */

/* Finishes the call with state_not_saved. */
int reply_not_saved(Call *c, Runner *r, int error, bool kept) {
        _cleanup_free_ char *m = NULL;
        json_object *data = NULL;

        if (runner_save_error_json(r, error, kept, &m, &data) < 0)
                return call_reply_error(c, RPC_STATE_NOT_SAVED, NULL, NULL);
        return call_reply_error(c, RPC_STATE_NOT_SAVED, m, data);
}

/* Finishes the call with state_not_saved and the caller's message. */
int reply_not_savedf(Call *c, Runner *r, int error, bool kept, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL, *text = NULL;
        json_object *data = NULL;
        int saved = errno, k;
        va_list ap;

        errno = -error;
        va_start(ap, fmt);
        k = vasprintf(&text, fmt, ap);
        va_end(ap);
        errno = saved;
        if (runner_save_error_json(r, error, kept, &m, &data) < 0)
                data = NULL;
        return call_reply_error(c, RPC_STATE_NOT_SAVED, k < 0 ? m : text, data);
}

/* The same as an ApiError. */
void api_error_not_saved(ApiError *e, Runner *r, int error, bool kept) {
        _cleanup_free_ char *m = NULL;
        json_object *data = NULL;

        api_error_done(e);
        e->code = RPC_STATE_NOT_SAVED;
        if (runner_save_error_json(r, error, kept, &m, &data) >= 0) {
                e->message = TAKE_PTR(m);
                e->extra = data;
        }
}

typedef struct CommitOp CommitOp;

/* A change waiting for its save: lives until the save ended, whether the call is still
 * there or not. */
typedef struct CommitWait {
        CommitOp *op;            /* NULL once the call went away */
        Runner *runner;          /* a reference */
        RunnerSnapshot snap;
        json_object *reply;
        uint64_t gen;            /* the save's number (runner.h) */
        bool created;            /* the call created the runner: a failed save closes it */
} CommitWait;

struct CommitOp {
        Op op;
        CommitWait *wait;
};

/* The call went away (or was finished): the save goes on without it. */
static void commit_cleanup(Op *op) {
        CommitOp *o = (CommitOp *) op;

        if (o->wait)
                o->wait->op = NULL;
}

static void commit_wait_free(CommitWait *w) {
        runner_snapshot_done(&w->snap);
        json_object_put(w->reply);
        runner_unref(w->runner);
        free(w);
}

/* The save ended: reply, or undo the change (while no later save carries it) and refuse. */
static int reply_create_failed(Call *c, int q);

static void on_committed(Runner *r, int error, void *userdata) {
        CommitWait *w = userdata;
        bool undo = error < 0 && r->save_gen == w->gen && !r->closed;

        if (error < 0 && w->created) {
                /* a runner whose creation could not be saved is not created */
                if (!r->closed)
                        runner_close(r);
                if (w->op) {
                        CommitOp *o = w->op;

                        o->wait = NULL;
                        reply_create_failed(op_finish(&o->op), error);
                }
                commit_wait_free(w);
                return;
        }
        if (undo) {
                runner_snapshot_restore(r, &w->snap);
                log_info("Runner %s: a change could not be saved and was undone.", r->id);
        }
        if (w->op) {
                CommitOp *o = w->op;
                Call *c;

                o->wait = NULL;
                c = op_finish(&o->op);
                if (error < 0)
                        reply_not_saved(c, r, error, !undo);
                else
                        call_reply(c, TAKE_PTR(w->reply));
        }
        commit_wait_free(w);
}

/* Saves a change off the event loop, then replies or refuses. */
static int commit_start(Call *c, Runner *r, RunnerSnapshot *snap, json_object *reply, bool created) {
        CommitOp *o = reply ? op_new(c, sizeof(CommitOp)) : NULL;
        CommitWait *w = o ? calloc(1, sizeof(CommitWait)) : NULL;
        int q;

        if (!w) {
                if (o)
                        op_start_failed(&o->op, 0);
                json_object_put(reply);
                runner_snapshot_restore(r, snap);
                runner_snapshot_done(snap);
                return -ENOMEM;
        }
        *w = (CommitWait){ .op = o, .runner = runner_ref(r), .snap = *snap, .reply = reply, .gen = r->save_gen + 1,
                           .created = created };
        *snap = (RunnerSnapshot){};
        o->op.cleanup = commit_cleanup;
        o->wait = w;
        q = runner_save_async(r, on_committed, w);
        if (q < 0) {
                o->wait = NULL;
                op_start_failed(&o->op, 0);
                runner_snapshot_restore(r, &w->snap);
                commit_wait_free(w);
                return q;
        }
        return 0;
}

int runner_commit_reply(Call *c, Runner *r, RunnerSnapshot *snap, json_object *reply) {
        return commit_start(c, r, snap, reply, false);
}

/* A runner the call created (runner_new_unsaved()) is saved off the event loop; the call gets
 * `reply` (taken) once it is on disk, or state_not_saved with the runner closed. Returns 0, or
 * -ENOMEM with the runner closed and the call not finished. */
static int runner_create_reply(Call *c, Runner *r, json_object *reply) {
        RunnerSnapshot none = {};
        int q = commit_start(c, r, &none, reply, true);

        if (q < 0)
                runner_close(r);
        return q;
}

/* The reply to a runner_new() that failed: its save (state_not_saved, nothing created), or
 * memory. */
static int reply_create_failed(Call *c, int q) {
        const char *dir = c->core->runners->dir;
        json_object *data;

        if (q == -ENOMEM)
                return call_reply_errno(c, q, "Cannot create the runner: %m");
        data = json_object_new_object();
        if (data) {
                json_object_object_add(data, "state_directory", json_object_new_string(dir));
                json_object_object_add(data, "errno", json_object_new_string(strerrorname_np(-q) ?: "unknown"));
                json_object_object_add(data, "kept", json_object_new_boolean(false));
                json_object_object_add(data, "retryable", json_object_new_boolean(state_error_retryable(q)));
        }
        return call_reply_errorf(c, RPC_STATE_NOT_SAVED, data,
                                 "The new runner could not be saved in '%s': %s. Nothing was created; try again "
                                 "when the state directory has room", dir, strerror(-q));
}

/* ---- notifications ----------------------------------------------------------------- */

/* Gives a call a subscription id for its notifications. */
void notifier_init(Notifier *n) {
        static uint64_t counter; /* ids only need to be unique within the process */

        snprintf(n->id, sizeof(n->id), "s%llu", (unsigned long long) ++counter);
        n->seq = 0;
}

/* Sends a notification on the call's connection (if it is still there). Takes params. */
void notifier_send(Call *c, Notifier *n, const char *method, json_object *params) {
        if (!params)
                return;
        json_object_object_add(params, "subscription", json_object_new_string(n->id));
        json_object_object_add(params, "seq", json_object_new_uint64(++n->seq));
        call_notify(c, method, params);
}

/* ---- manager.create_runner and friends ----------------------------------------------- */

/* Checks the per-user runner cap; replies and returns true when it is reached. */
static bool runner_cap_reached(Call *c) {
        size_t n = runners_count_owned(c->core->runners, c->peer->uid);

        if (n < c->core->config->max_runners_per_uid)
                return false;
        call_reply_errorf(c, RPC_OVERLOADED, NULL,
                          "uid %u already holds %zu runners (runners.max_runners_per_uid); close some with runner.close",
                          (unsigned) c->peer->uid, n);
        return true;
}

/* The create_runner options of params (everything but set_name), new object. */
static json_object *options_of(json_object *params) {
        static const char *const keys[] = { "seed", "max_distribution_plots", "pia_data_recipient", "pia_data_type",
                                            "pia_data_subject", "pia_sensitivity_level", "report_language" };
        json_object *o = json_object_new_object(), *v;

        for (size_t i = 0; o && i < ELEMENTSOF(keys); i++)
                if (json_object_object_get_ex(params, keys[i], &v) && v)
                        json_object_object_add(o, keys[i], json_object_get(v));
        return o;
}

/* Registers a runner for the caller (runner_new() saves it) and replies with its status.
 * Takes docs and options. */
static int create_and_reply(Call *c, const char *display_name, json_object *docs, json_object *options) {
        Runner *r = NULL;
        json_object *o;
        int q;

        q = runner_new_unsaved(c->core->runners, c->peer->uid, display_name, docs, options, &r);
        if (q < 0)
                return reply_create_failed(c, q);
        log_ctx(LOG_INFO, &c->log, "Created runner %s '%s' for uid %u.", r->id, r->display_name,
                (unsigned) r->owner);
        o = runner_status_json(r, false);
        /* replied once it is saved */
        return runner_create_reply(c, r, o);
}

/* manager.create_runner: a new runner with its AvatarMetadata. */
static int method_create_runner(Call *c, json_object *params) {
        const char *name = json_str(params, "set_name");
        json_object *options, *docs;

        if (runner_cap_reached(c))
                return 0;
        options = options_of(params);
        docs = options ? runner_config_new(name, options) : NULL;
        if (!docs) {
                json_object_put(options);
                return -ENOMEM;
        }
        return create_and_reply(c, name, docs, options);
}

/* Parses and checks resource YAML; replies and returns NULL on error. */
static json_object *docs_from_yaml(Call *c, const char *text, size_t len) {
        _cleanup_free_ char *err = NULL;
        json_object *docs = NULL;
        int q;

        q = resource_yaml_parse(text, len, &docs, &err);
        if (q >= 0)
                q = runner_config_validate(docs, &err);
        if (q < 0) {
                json_object_put(docs);
                if (q == -ENOMEM)
                        call_reply_errno(c, q, NULL);
                else
                        call_reply_errorf(c, RPC_INVALID_PARAMS, NULL, "Invalid params: the resource YAML is invalid: %s",
                                          strna(err));
                return NULL;
        }
        return docs;
}

/* manager.create_runner_from_yaml: a new runner from resource YAML, inline or by descriptor. */
static int method_create_runner_from_yaml(Call *c, json_object *params) {
        _cleanup_free_ char *text = NULL, *display = NULL;
        json_object *docs, *options, *fdp;
        const char *inline_yaml = json_str(params, "yaml");
        size_t len = 0;
        int q;

        if (runner_cap_reached(c))
                return 0;
        if (json_object_object_get_ex(params, "fd", &fdp)) {
                _cleanup_close_ int fd = call_take_fd_param(c, fdp);

                if (fd < 0)
                        return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL,
                                                 "Invalid params: 'fd' names no descriptor sent with this message");
                q = state_read_fd(fd, RESOURCE_YAML_MAX_BYTES, &text, &len);
                if (q == -EBADFD)
                        return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL,
                                                 "Invalid params: the YAML descriptor must be a regular file (or pass 'yaml' inline)");
                if (q == -EFBIG)
                        return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL,
                                                 "Invalid params: the YAML is larger than %u bytes", RESOURCE_YAML_MAX_BYTES);
                if (q < 0)
                        return call_reply_errno(c, q, "Cannot read the YAML descriptor: %m");
        } else if (inline_yaml) {
                text = strdup(inline_yaml);
                len = text ? strlen(text) : 0;
                if (!text)
                        return -ENOMEM;
        } else
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL, "Invalid params: give 'yaml' or 'fd'");

        docs = docs_from_yaml(c, text, len);
        if (!docs)
                return 0;
        display = runner_increment_display_name(json_str(params, "set_name"));
        if (!display || runner_config_set_display_name(docs, display) < 0) {
                json_object_put(docs);
                return -ENOMEM;
        }
        options = runner_config_options_from_docs(docs);
        return create_and_reply(c, display, docs, options);
}

/* ---- create_runner_from_id / from_name ------------------------------------------------ */

typedef struct FromIdOp {
        Op op;
        char *set_name;
        json_object *docs;
        json_object *jobs;        /* the set's jobs as the server lists them */
        json_object *results;     /* job name → results */
        json_object *warnings;
        size_t next;
        bool missing_warned;
} FromIdOp;

/* Releases the state of a from_id operation. */
static void from_id_cleanup(Op *op) {
        FromIdOp *f = (FromIdOp *) op;

        free(f->set_name);
        json_object_put(f->docs);
        json_object_put(f->jobs);
        json_object_put(f->results);
        json_object_put(f->warnings);
}

static void from_id_next_results(FromIdOp *f);

/* Builds the runner once the documents, jobs and results are known. */
static void from_id_finish(FromIdOp *f) {
        json_object *jobs, *options;
        _cleanup_free_ char *display = NULL;
        Call *c = f->op.call;
        Runner *r = NULL;
        int q;

        /* again: another user may have adopted the set while its jobs were read */
        if (set_access(c, f->set_name) == SET_REFUSED) {
                _cleanup_free_ char *set = TAKE_PTR(f->set_name); /* op_finish() frees f */

                set_refused_reply(op_finish(&f->op), set, "load it into a runner");
                return;
        }
        jobs = json_object_new_array();
        for (size_t i = 0; jobs && i < json_array_len(f->jobs); i++) {
                json_object *job = json_object_array_get_idx(f->jobs, i), *j = json_object_new_object();
                const char *name = json_str(job, "name"), *pname = json_str(job, "parameters_name");
                _cleanup_free_ char *loc = NULL;

                if (!name || !pname || asprintf(&loc, "/jobs/%s", name) < 0) {
                        json_object_put(j);
                        continue;
                }
                json_object_object_add(j, "parameters_name", json_object_new_string(pname));
                json_object_object_add(j, "kind", json_object_new_string(runner_config_job_kind(pname)));
                json_object_object_add(j, "name", json_object_new_string(name));
                json_object_object_add(j, "location", json_object_new_string(loc));
                json_object_array_add(jobs, j);
        }
        display = runner_increment_display_name(runner_config_display_name(f->docs) ?: "run");
        options = runner_config_options_from_docs(f->docs);
        if (!jobs || !display || !options || runner_config_set_display_name(f->docs, display) < 0) {
                json_object_put(jobs);
                json_object_put(options);
                call_reply_errno(op_finish(&f->op), -ENOMEM, NULL);
                return;
        }
        q = runner_new_unsaved(f->op.core->runners, c->peer->uid, display, TAKE_PTR(f->docs), options, &r);
        if (q < 0) {
                json_object_put(jobs);
                reply_create_failed(op_finish(&f->op), q);
                return;
        }
        r->set_name = strdup(f->set_name);
        /* a set nobody owned is the caller's from now on (sets.h); an owned one keeps its owner */
        (void) runner_record_set(r, f->set_name, "adopted");
        /* saved and tracked once, below, when the jobs know their state: tracking them now
         * would watch a set whose jobs may all be done */
        (void) runner_replace_jobs(r, jobs);
        json_object_put(jobs);
        /* what the server said of each job, and the results of the finished ones */
        for (size_t i = 0; i < r->n_jobs; i++) {
                RunnerJob *j = &r->jobs[i];
                json_object *res;

                for (size_t k = 0; k < json_array_len(f->jobs); k++) {
                        json_object *job = json_object_array_get_idx(f->jobs, k);

                        if (streq_ptr(json_str(job, "name"), j->name))
                                j->job = json_object_get(job);
                }
                if (json_object_object_get_ex(f->results, j->name, &res)) {
                        if (res)
                                j->results = json_object_get(res);
                        else
                                j->results_missing = true;
                }
        }
        for (size_t i = 0; i < json_array_len(f->warnings); i++)
                runner_warn(r, json_object_get_string(json_object_array_get_idx(f->warnings, i)));
        runner_warn(r, "Running this runner again creates a new set; the results of the loaded set stay "
                       "available through manager.create_runner_from_id.");
        (void) runner_track(r);
        c = op_finish(&f->op);
        log_ctx(LOG_INFO, &c->log, "Loaded set %s into runner %s '%s'.", r->set_name, r->id, r->display_name);
        /* replied once saved; if it cannot be, the runner made for the set goes again: nothing
         * was loaded, and nothing upstream changed */
        q = runner_create_reply(c, r, runner_status_json(r, false));
        if (q < 0)
                call_reply_errno(c, q, NULL);
}

/* The results of one finished job arrived (or not). */
static void on_from_id_results(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        FromIdOp *f = userdata;
        json_object *job = json_object_array_get_idx(f->jobs, f->next);
        const char *name = json_str(job, "name");

        (void) age_s;
        (void) stale;
        f->op.waiter = NULL;
        if (err) {
                bool missing = err->status == 404 && err->server_message &&
                               strcasestr(err->server_message, "Results file for job");

                if (!missing) {
                        reply_api_error(op_finish(&f->op), err);
                        return;
                }
                json_object_object_add(f->results, name, NULL);
                if (!f->missing_warned) {
                        json_object *tables = runner_config_tables(f->docs);
                        _cleanup_free_ char *w = NULL;

                        if (asprintf(&w, "Results for job '%s' are no longer available on the server. Input data has "
                                     "also been cleaned up. You need to reupload the following tables: %s. You can "
                                     "relaunch the job with the same configuration with runner.run after re-uploading "
                                     "your data with runner.add_table.",
                                     name, json_object_to_json_string_ext(tables, JSONRPC_WIRE_FLAGS)) >= 0)
                                json_object_array_add(f->warnings, json_object_new_string(w));
                        json_object_put(tables);
                        f->missing_warned = true;
                }
        } else
                json_object_object_add(f->results, name, json_copy(value));
        f->next++;
        from_id_next_results(f);
}

/* Fetches the results of the next finished job, or finishes. */
static void from_id_next_results(FromIdOp *f) {
        for (; f->next < json_array_len(f->jobs); f->next++) {
                json_object *job = json_object_array_get_idx(f->jobs, f->next);
                _cleanup_free_ char *esc = NULL, *path = NULL, *key = NULL;
                CacheRead read;
                int q;

                if (!job_finished(job) || !json_str(job, "name"))
                        continue;
                esc = api_escape(json_str(job, "name"));
                if (!esc || asprintf(&path, "/results/%s", esc) < 0 || asprintf(&key, "GET %s", path) < 0) {
                        call_reply_errno(op_finish(&f->op), -ENOMEM, NULL);
                        return;
                }
                read = op_read_of(f->op.core, key, path, "GET /results/{job}", 0);
                q = cache_get(f->op.core->cache, &read, on_from_id_results, f, &f->op.waiter);
                if (q < 0)
                        call_reply_errno(op_finish(&f->op), q, NULL);
                return;
        }
        from_id_finish(f);
}

/* The set's jobs arrived. */
static void on_from_id_jobs(const ApiResponse *resp, const ApiError *err, void *userdata) {
        FromIdOp *f = userdata;
        json_object *jobs;

        f->op.req = NULL;
        if (err) {
                reply_api_error(op_finish(&f->op), err);
                return;
        }
        if (!json_object_object_get_ex(resp->json, "jobs", &jobs) || !json_object_is_type(jobs, json_type_array)) {
                _cleanup_free_ char *set = TAKE_PTR(f->set_name); /* op_finish() frees f */

                call_reply_errorf(op_finish(&f->op), RPC_UPSTREAM_BAD_RESPONSE, NULL,
                                  "The answer to GET /jobs?set_name=%s has no job list", set);
                return;
        }
        f->jobs = json_object_get(jobs);
        f->next = 0;
        from_id_next_results(f);
}

/* The set's YAML arrived. */
static void on_from_id_yaml(const ApiResponse *resp, const ApiError *err, void *userdata) {
        FromIdOp *f = userdata;
        _cleanup_free_ char *path = NULL, *esc = NULL;
        ApiCall call;
        int q;

        f->op.req = NULL;
        if (err) {
                reply_api_error(op_finish(&f->op), err);
                return;
        }
        f->docs = docs_from_yaml(f->op.call, resp->body, resp->body_len);
        if (!f->docs) {
                /* docs_from_yaml replied, which finished and freed the call: the Op goes
                 * without touching it (op_start_failed() would clear its cancel callback) */
                op_free(&f->op);
                return;
        }
        esc = api_escape(f->set_name);
        if (!esc || asprintf(&path, "/jobs?set_name=%s", esc) < 0) {
                call_reply_errno(op_finish(&f->op), -ENOMEM, NULL);
                return;
        }
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .label = "GET /jobs?set_name" };
        q = api_start(f->op.core->api, &call, on_from_id_jobs, f, &f->op.req);
        if (q < 0)
                call_reply_errno(op_finish(&f->op), q, NULL);
}

/* Starts loading set `set_name` into a new runner for the call. */
static int from_id_start(Call *c, const char *set_name) {
        FromIdOp *f;
        _cleanup_free_ char *path = NULL, *esc = NULL;
        ApiCall call;

        f = op_new(c, sizeof(FromIdOp));
        if (!f)
                return -ENOMEM;
        f->op.cleanup = from_id_cleanup;
        f->set_name = strdup(set_name);
        f->results = json_object_new_object();
        f->warnings = json_object_new_array();
        esc = api_escape(set_name);
        if (!f->set_name || !f->results || !f->warnings || !esc || asprintf(&path, "/resources/%s", esc) < 0)
                return op_start_failed(&f->op, -ENOMEM);
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .flags = API_RAW, .label = "GET /resources/{set}" };
        return op_api_start(&f->op, &call, on_from_id_yaml);
}

/* manager.create_runner_from_id: a runner bound to an existing set, with its jobs and results:
 * for the set's owner or an admin, or anyone with operate for a set nobody owns (who adopts
 * it). Another user's set is refused before anything is asked upstream. */
static int method_create_runner_from_id(Call *c, json_object *params) {
        const char *set = json_str(params, "set_name");

        if (runner_cap_reached(c))
                return 0;
        if (set_access(c, set) == SET_REFUSED)
                return set_refused_reply(c, set, "load it into a runner");
        return from_id_start(c, set);
}

typedef struct FromNameOp {
        Op op;
        char *name;
} FromNameOp;

/* Releases the name. */
static void from_name_cleanup(Op *op) {
        free(((FromNameOp *) op)->name);
}

/* The job list arrived: load the most recent run with that display name that the caller may
 * load (another user's runs are passed over; when they are all there is, refused). */
static void on_from_name_jobs(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        FromNameOp *f = userdata;
        _cleanup_free_ char *name = TAKE_PTR(f->name), *set = NULL;
        json_object *jobs, *runs;
        Call *c;

        (void) age_s;
        (void) stale;
        f->op.waiter = NULL;
        c = op_finish(&f->op);
        if (err) {
                reply_api_error(c, err);
                return;
        }
        if (!json_object_object_get_ex(value, "jobs", &jobs) || !(runs = manager_find_runs(jobs, name))) {
                call_reply_errorf(c, RPC_UPSTREAM_BAD_RESPONSE, NULL, "The answer to GET /jobs has no job list");
                return;
        }
        for (size_t i = 0; !set && i < json_array_len(runs); i++) {
                const char *s = json_str(json_object_array_get_idx(runs, i), "set_name");

                if (s && set_access(c, s) != SET_REFUSED)
                        set = strdup(s);
        }
        if (!set && json_array_len(runs) > 0) {
                set = strdup(strna(json_str(json_object_array_get_idx(runs, 0), "set_name")));
                json_object_put(runs);
                set_refused_reply(c, strna(set), "load it into a runner");
                return;
        }
        json_object_put(runs);
        if (!set) {
                call_reply_errorf(c, RPC_NOT_FOUND, NULL, "No jobs found for display name '%s'", name);
                return;
        }
        if (from_id_start(c, set) < 0)
                call_reply_errno(c, -ENOMEM, NULL);
}

/* manager.create_runner_from_name: the most recent run with that display name. */
static int method_create_runner_from_name(Call *c, json_object *params) {
        FromNameOp *f;
        CacheRead read;

        if (runner_cap_reached(c))
                return 0;
        f = op_new(c, sizeof(FromNameOp));
        if (!f)
                return -ENOMEM;
        f->op.cleanup = from_name_cleanup;
        f->name = strdup(json_str(params, "display_name"));
        if (!f->name)
                return op_start_failed(&f->op, -ENOMEM);
        read = op_read_of(c->core, "GET /jobs", "/jobs", "GET /jobs", c->core->config->jobs_ttl_s);
        read.force = true;
        return op_cache_get(&f->op, &read, on_from_name_jobs);
}

/* ---- export, delete, list, close ------------------------------------------------------------ */

/* runner.export_yaml: the runner's resource YAML. */
static int method_export_yaml(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        _cleanup_free_ char *yaml = NULL;
        json_object *o;
        size_t len;
        int q;

        if (!r)
                return 0;
        q = resource_yaml_emit(r->docs, &yaml, &len);
        if (q < 0)
                return call_reply_errno(c, q, "Cannot emit the YAML: %m");
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "runner_id", json_object_new_string(r->id));
        json_object_object_add(o, "display_name", json_object_new_string(r->display_name));
        json_object_object_add(o, "yaml", json_object_new_string_len(yaml, (int) len));
        return call_reply(c, o);
}

typedef struct RunnerDeleteOp {
        Op op;
        Runner *runner;
} RunnerDeleteOp;

/* Releases the runner. */
static void runner_delete_cleanup(Op *op) {
        runner_unref(((RunnerDeleteOp *) op)->runner);
}

/* The bulk deletion answered: the job lists and the results read before it are out of date,
 * as after manager.delete_jobs. */
static void on_runner_deleted(const ApiResponse *resp, const ApiError *err, void *userdata) {
        RunnerDeleteOp *d = userdata;
        Core *s = d->op.core;

        d->op.req = NULL;
        cache_invalidate(s->cache, "GET /jobs");
        cache_invalidate(s->cache, "GET /results/");
        if (err) {
                reply_api_error(op_finish(&d->op), err);
                return;
        }
        call_reply(op_finish(&d->op), json_copy(resp->json));
}

/* runner.delete: delete the runner's jobs upstream (all, or the named ones). */
static int method_runner_delete(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        json_object *which = json_object_object_get(params, "jobs"), *names, *body;
        RunnerDeleteOp *d;
        ApiCall call;
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        names = json_object_new_array();
        for (size_t i = 0; names && i < r->n_jobs; i++)
                if (r->jobs[i].name && (!which || json_array_has_str(which, r->jobs[i].parameters_name)))
                        json_object_array_add(names, json_object_new_string(r->jobs[i].name));
        if (!names)
                return -ENOMEM;
        if (json_array_len(names) == 0) {
                json_object_put(names);
                return call_reply_errorf(c, RPC_NOT_FOUND, NULL, "Runner %s has no such job to delete", r->id);
        }
        body = json_object_new_object();
        json_object_object_add(body, "job_names", names);
        d = op_new(c, sizeof(RunnerDeleteOp));
        if (!d) {
                json_object_put(body);
                return -ENOMEM;
        }
        d->op.cleanup = runner_delete_cleanup;
        d->runner = runner_ref(r);
        call = (ApiCall){ .method = UPSTREAM_POST, .path = "/jobs/bulk-delete", .json = body,
                          .label = "POST /jobs/bulk-delete" };
        q = op_api_start(&d->op, &call, on_runner_deleted);
        json_object_put(body);
        return q;
}

/* runner.list: the caller's runners (all runners for an admin asking for all). */
static int method_runner_list(Call *c, json_object *params) {
        json_object *v, *a = json_object_new_array(), *o;
        bool all = json_object_object_get_ex(params, "all", &v) && json_object_get_boolean(v);
        Runner *r;

        if (!a)
                return -ENOMEM;
        if (all && call_role(c) < ROLE_ADMIN) {
                json_object_put(a);
                return call_reply_errorf(c, RPC_PERMISSION_DENIED, NULL, "Listing every user's runners needs the 'admin' role");
        }
        TAILQ_FOREACH(r, &c->core->runners->list, link)
                if (all || r->owner == c->peer->uid)
                        json_object_array_add(a, runner_status_json(r, false));
        o = json_object_new_object();
        if (!o) {
                json_object_put(a);
                return -ENOMEM;
        }
        json_object_object_add(o, "runners", a);
        return call_reply(c, o);
}

/* runner.close: forget the runner (its jobs upstream stay). */
static int method_runner_close(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        json_object *o;

        if (!r || runner_busy_reply(c, r))
                return 0;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "runner_id", json_object_new_string(r->id));
        json_object_object_add(o, "closed", json_object_new_boolean(true));
        json_object_object_add(o, "set_name", r->set_name ? json_object_new_string(r->set_name) : NULL);
        log_ctx(LOG_INFO, &c->log, "Closed runner %s '%s'.", r->id, r->display_name);
        runner_close(r);
        return call_reply(c, o);
}

const MethodDef methods_runner[] = {
        { "manager.create_runner", method_create_runner, METHOD_MUTATING },
        { "manager.create_runner_from_yaml", method_create_runner_from_yaml, METHOD_MUTATING },
        { "manager.create_runner_from_id", method_create_runner_from_id, METHOD_MUTATING },
        { "manager.create_runner_from_name", method_create_runner_from_name, METHOD_MUTATING },
        { "runner.export_yaml", method_export_yaml, 0 },
        { "runner.delete", method_runner_delete, METHOD_MUTATING },
        { "runner.list", method_runner_list, 0 },
        { "runner.close", method_runner_close, METHOD_MUTATING },
        {}
};
