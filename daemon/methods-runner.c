/* SPDX-License-Identifier: MIT */
/*
 * Runner methods: create runners (new, from YAML, from a set id, from a display name), add
 * tables (uploading them from the caller's descriptor to storage), links and parameters, ask
 * the server for advice, run the jobs, follow them, list and download results, export the
 * YAML, delete jobs, close runners; and manager.watch_jobs.
 *
 * Long operations (uploads, runs, waits, downloads) are asynchronous Ops (op.h) that hold a
 * reference on their runner and mark it busy while they change it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "cache.h"
#include "client.h"
#include "config.h"
#include "dispatch.h"
#include "errors.h"
#include "json-util.h"
#include "jsonrpc.h"
#include "log.h"
#include "manager.h"
#include "op.h"
#include "poller.h"
#include "protocol.h"
#include "resource-yaml.h"
#include "runner-config.h"
#include "runner.h"
#include "server.h"
#include "state.h"
#include "storage.h"

/* Default and largest runner.wait deadline, in seconds. */
#define WAIT_DEFAULT_S 3600
/* Results downloaded to memory for the daemon's own use (advice JSON). */
#define RESULT_MEMORY_MAX (16u * 1024u * 1024u)

/* ---- lookup and ownership ---------------------------------------------------------- */

/* Finds the runner named by params.runner_id and checks the caller may act on it: its owner
 * or an admin. On failure replies and returns NULL. */
static Runner *runner_for_call(Call *c, json_object *params) {
        const char *id = json_str(params, "runner_id");
        Runner *r = id && c->server->runners ? runner_find(c->server->runners, id) : NULL;
        Role role;

        if (!r) {
                call_reply_errorf(c, RPC_NOT_FOUND, NULL, "No runner '%s' (runner.list shows yours)", strna(id));
                return NULL;
        }
        role = call_role(c);
        if (r->owner != c->client->uid && role < ROLE_ADMIN) {
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
static bool runner_busy_reply(Call *c, Runner *r) {
        if (!r->busy)
                return false;
        call_reply_errorf(c, RPC_INVALID_STATE, NULL, "Runner %s is busy (%s); try again when it is done", r->id, r->busy);
        return true;
}

/* Replies with the runner's status. */
static int reply_status(Call *c, Runner *r) {
        json_object *o = runner_status_json(r, false);

        return o ? call_reply(c, o) : -ENOMEM;
}

/* ---- notifications ----------------------------------------------------------------- */

typedef struct Notifier {
        char id[24];
        uint64_t seq;
} Notifier;

/* Gives a call a subscription id for its notifications. */
static void notifier_init(Notifier *n, Server *s) {
        static uint64_t counter; /* ids only need to be unique within the process */

        snprintf(n->id, sizeof(n->id), "s%llu", (unsigned long long) ++counter);
        n->seq = 0;
        (void) s;
}

/* Sends a notification on the call's connection (if it is still there). Takes params. */
static void notify(Call *c, Notifier *n, const char *method, json_object *params) {
        if (!params)
                return;
        json_object_object_add(params, "subscription", json_object_new_string(n->id));
        json_object_object_add(params, "seq", json_object_new_uint64(++n->seq));
        if (c->client && client_is_alive(c->client))
                (void) client_send_notification(c->client, method, params);
        else
                json_object_put(params);
}

/* ---- manager.create_runner and friends ----------------------------------------------- */

/* Checks the per-user runner cap; replies and returns true when it is reached. */
static bool runner_cap_reached(Call *c) {
        size_t n = runners_count_owned(c->server->runners, c->client->uid);

        if (n < c->server->config->max_runners_per_uid)
                return false;
        call_reply_errorf(c, RPC_OVERLOADED, NULL,
                          "uid %u already holds %zu runners (runners.max_runners_per_uid); close some with runner.close",
                          (unsigned) c->client->uid, n);
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

        q = runner_new(c->server->runners, c->client->uid, display_name, docs, options, &r);
        if (q < 0)
                return call_reply_errno(c, q, "Cannot create the runner: %m");
        log_ctx(LOG_INFO, &c->log, "Created runner %s '%s' for uid %u.", r->id, r->display_name,
                (unsigned) r->owner);
        o = runner_status_json(r, false);
        return o ? call_reply(c, o) : -ENOMEM;
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

/* Whether a job is finished (done and not failed). */
static bool job_finished(json_object *job) {
        return job_done(job) && !job_failed(job);
}

static void from_id_next_results(FromIdOp *f);

/* Builds the runner once the documents, jobs and results are known. */
static void from_id_finish(FromIdOp *f) {
        json_object *jobs = json_object_new_array(), *options;
        _cleanup_free_ char *display = NULL;
        Call *c = f->op.call;
        Runner *r = NULL;
        int q;

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
        q = runner_new(f->op.server->runners, c->client->uid, display, TAKE_PTR(f->docs), options, &r);
        if (q < 0) {
                json_object_put(jobs);
                call_reply_errno(op_finish(&f->op), q, "Cannot create the runner: %m");
                return;
        }
        r->set_name = strdup(f->set_name);
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
        (void) runner_save(r);
        (void) runner_track(r);
        c = op_finish(&f->op);
        log_ctx(LOG_INFO, &c->log, "Loaded set %s into runner %s '%s'.", r->set_name, r->id, r->display_name);
        reply_status(c, r);
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
                read = op_read_of(f->op.server, key, path, "GET /results/{job}", 0);
                q = cache_get(f->op.server->cache, &read, on_from_id_results, f, &f->op.waiter);
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
                /* docs_from_yaml replied; the Op goes with the call */
                (void) op_start_failed(&f->op, 0);
                return;
        }
        esc = api_escape(f->set_name);
        if (!esc || asprintf(&path, "/jobs?set_name=%s", esc) < 0) {
                call_reply_errno(op_finish(&f->op), -ENOMEM, NULL);
                return;
        }
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .label = "GET /jobs?set_name" };
        q = api_start(f->op.server->api, &call, on_from_id_jobs, f, &f->op.req);
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

/* manager.create_runner_from_id: a runner bound to an existing set, with its jobs and results. */
static int method_create_runner_from_id(Call *c, json_object *params) {
        if (runner_cap_reached(c))
                return 0;
        return from_id_start(c, json_str(params, "set_name"));
}

typedef struct FromNameOp {
        Op op;
        char *name;
} FromNameOp;

/* Releases the name. */
static void from_name_cleanup(Op *op) {
        free(((FromNameOp *) op)->name);
}

/* The job list arrived: load the most recent run with that display name. */
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
        if (json_array_len(runs) > 0)
                set = strdup(strna(json_str(json_object_array_get_idx(runs, 0), "set_name")));
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
        read = op_read_of(c->server, "GET /jobs", "/jobs", "GET /jobs", c->server->config->jobs_ttl_s);
        read.force = true;
        return op_cache_get(&f->op, &read, on_from_name_jobs);
}

/* ---- runner.add_table ------------------------------------------------------------------ */

typedef struct UploadItem {
        char *key;                /* object key, e.g. "iris.csv" */
        int fd;                   /* -1 for inline data */
        int64_t size;
        char *inline_data;
        size_t inline_len;
        char *storage_url;        /* s3://... */
        uint64_t bytes;
} UploadItem;

typedef struct AddTableOp {
        Op op;
        Runner *runner;
        json_object *params;
        UploadItem items[2];
        size_t n_items, cur;
        char *base;               /* GET /upload_url answer */
        StorageOp *storage;
        Notifier notifier;
        uint64_t last_notified;
} AddTableOp;

/* Releases an upload item. */
static void upload_item_done(UploadItem *it) {
        free(it->key);
        safe_close(it->fd);
        free(it->inline_data);
        free(it->storage_url);
}

/* Releases the add_table state and the runner. */
static void add_table_cleanup(Op *op) {
        AddTableOp *a = (AddTableOp *) op;

        storage_cancel(a->storage);
        for (size_t i = 0; i < a->n_items; i++)
                upload_item_done(&a->items[i]);
        free(a->base);
        json_object_put(a->params);
        if (a->runner) {
                a->runner->busy = NULL;
                runner_unref(a->runner);
        }
}

/* Finishes add_table with an error (printf-style), or with the table added. */
static void add_table_fail(AddTableOp *a, int code, json_object *data, const char *msg) {
        Call *c = op_finish(&a->op);

        call_reply_error(c, code, msg, data);
}

/* Records the table in the documents and replies. */
static void add_table_finish(AddTableOp *a) {
        Runner *r = a->runner;
        _cleanup_free_ char *err = NULL;
        json_object *t = json_copy(a->params), *up = json_object_new_object(), *o;
        const char *table = json_str(a->params, "table_name");
        Call *c;
        int q;

        if (!t || !up) {
                json_object_put(t);
                json_object_put(up);
                call_reply_errno(op_finish(&a->op), -ENOMEM, NULL);
                return;
        }
        json_object_object_add(t, "file", json_object_new_string(a->items[0].key));
        if (a->n_items > 1)
                json_object_object_add(t, "avatar_file", json_object_new_string(a->items[1].key));
        q = runner_config_add_table(r->docs, t, &err);
        json_object_put(t);
        if (q < 0) {
                json_object_put(up);
                if (q == -ENOMEM)
                        call_reply_errno(op_finish(&a->op), q, NULL);
                else
                        add_table_fail(a, RPC_INVALID_PARAMS, NULL, err);
                return;
        }
        json_object_object_add(up, "file", json_object_new_string(a->items[0].key));
        json_object_object_add(up, "bytes", json_object_new_uint64(a->items[0].bytes));
        json_object_object_add(up, "storage_url", json_object_new_string(a->items[0].storage_url));
        if (a->n_items > 1) {
                json_object_object_add(up, "avatar_file", json_object_new_string(a->items[1].key));
                json_object_object_add(up, "avatar_bytes", json_object_new_uint64(a->items[1].bytes));
        }
        json_object_object_add(r->tables, table, json_object_get(up));
        (void) runner_save(r);
        o = json_object_new_object();
        json_object_object_add(o, "runner_id", json_object_new_string(r->id));
        json_object_object_add(o, "table_name", json_object_new_string(table));
        json_object_object_add(o, "upload", up);
        json_object_object_add(o, "tables", runner_config_tables(r->docs));
        json_object_object_add(o, "subscription", json_object_new_string(a->notifier.id));
        /* table points into a->params, which op_finish() frees */
        log_ctx(LOG_INFO, &a->op.call->log, "Runner %s: added table '%s' (%s).", r->id, table, "uploaded");
        c = op_finish(&a->op);
        call_reply(c, o);
}

static void upload_next(AddTableOp *a);

/* Upload progress: a notification at most every 1 MiB (and at the end). */
static void on_upload_progress(uint64_t done, uint64_t total, void *userdata) {
        AddTableOp *a = userdata;
        json_object *p;

        if (done != total && done - a->last_notified < 1024 * 1024)
                return;
        a->last_notified = done;
        p = json_object_new_object();
        if (!p)
                return;
        json_object_object_add(p, "runner_id", json_object_new_string(a->runner->id));
        json_object_object_add(p, "event", json_object_new_string("upload"));
        json_object_object_add(p, "table_name", json_object_new_string(json_str(a->params, "table_name")));
        json_object_object_add(p, "file", json_object_new_string(a->items[a->cur].key));
        json_object_object_add(p, "bytes", json_object_new_uint64(done));
        json_object_object_add(p, "total", json_object_new_uint64(total));
        notify(a->op.call, &a->notifier, "runner.progress", p);
}

/* The object is stored. */
static void on_uploaded(const StorageResult *res, void *userdata) {
        AddTableOp *a = userdata;
        UploadItem *it = &a->items[a->cur];

        a->storage = NULL;
        if (res->error < 0) {
                json_object *data = json_object_new_object();

                if (data) {
                        if (res->status > 0)
                                json_object_object_add(data, "status", json_object_new_int64(res->status));
                        if (res->s3_code)
                                json_object_object_add(data, "code", json_object_new_string(res->s3_code));
                        json_object_object_add(data, "file", json_object_new_string(it->key));
                }
                add_table_fail(a, res->error == -EREMOTEIO || res->status > 0 ? RPC_STORAGE_ERROR :
                                  rpc_error_code_from_errno(res->error), data, res->message);
                return;
        }
        it->bytes = res->bytes;
        a->cur++;
        upload_next(a);
}

/* The storage credentials for the item arrived: upload. */
static void on_upload_access(const ApiResponse *resp, const ApiError *err, void *userdata) {
        AddTableOp *a = userdata;
        UploadItem *it = &a->items[a->cur];
        json_object *creds;
        StorageCredentials sc;
        int q;

        a->op.req = NULL;
        if (err) {
                reply_api_error(op_finish(&a->op), err);
                return;
        }
        if (!json_object_object_get_ex(resp->json, "credentials", &creds) || !json_str(creds, "access_key_id") ||
            !json_str(creds, "secret_access_key")) {
                add_table_fail(a, RPC_UPSTREAM_BAD_RESPONSE, NULL, "The answer to GET /access holds no storage credentials");
                return;
        }
        sc = (StorageCredentials){ json_str(creds, "access_key_id"), json_str(creds, "secret_access_key") };
        if (it->fd >= 0)
                q = storage_put_fd(a->op.server->storage, it->storage_url, &sc, it->fd, it->size, on_upload_progress,
                                   on_uploaded, a, &a->storage);
        else
                q = storage_put_memory(a->op.server->storage, it->storage_url, &sc, it->inline_data, it->inline_len,
                                       on_uploaded, a, &a->storage);
        explicit_bzero((char *) sc.secret_access_key, strlen(sc.secret_access_key));
        if (q < 0)
                call_reply_errno(op_finish(&a->op), q, "Cannot start the upload: %m");
}

/* Asks /access for the credentials of the current item. */
static void upload_request_access(AddTableOp *a) {
        UploadItem *it = &a->items[a->cur];
        _cleanup_free_ char *envelope = NULL, *esc = NULL, *path = NULL;
        ApiCall call;
        int q;

        free(it->storage_url);
        if (asprintf(&it->storage_url, "%s/%s", a->base, it->key) < 0 ||
            asprintf(&envelope, "%s/access?url=%s", a->op.server->config->api_url, it->storage_url) < 0 ||
            !(esc = api_escape(envelope)) || asprintf(&path, "/access?url=%s", esc) < 0) {
                call_reply_errno(op_finish(&a->op), -ENOMEM, NULL);
                return;
        }
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .label = "GET /access" };
        q = api_start(a->op.server->api, &call, on_upload_access, a, &a->op.req);
        if (q < 0)
                call_reply_errno(op_finish(&a->op), q, NULL);
}

/* The upload base arrived. */
static void on_upload_url(const ApiResponse *resp, const ApiError *err, void *userdata) {
        AddTableOp *a = userdata;
        const char *base;
        size_t n;

        a->op.req = NULL;
        if (err) {
                reply_api_error(op_finish(&a->op), err);
                return;
        }
        /* a JSON string (FastAPI's default) or plain text */
        base = json_object_is_type(resp->json, json_type_string) ? json_object_get_string(resp->json) : resp->body;
        n = strcspn(base, "\r\n");
        free(a->base);
        a->base = strndup(base, n);
        if (!a->base) {
                call_reply_errno(op_finish(&a->op), -ENOMEM, NULL);
                return;
        }
        while (n > 0 && a->base[n - 1] == '/')
                a->base[--n] = '\0';
        if (!startswith(a->base, "s3://")) {
                add_table_fail(a, RPC_UPSTREAM_BAD_RESPONSE, NULL,
                               "GET /upload_url answered a location that is not s3://; this daemon uploads to S3 storage only");
                return;
        }
        upload_request_access(a);
}

/* Uploads the next item, or finishes. */
static void upload_next(AddTableOp *a) {
        ApiCall call = { .method = UPSTREAM_GET, .path = "/upload_url", .label = "GET /upload_url" };
        int q;

        if (a->cur >= a->n_items) {
                add_table_finish(a);
                return;
        }
        /* the contract asks for /upload_url once per file */
        q = api_start(a->op.server->api, &call, on_upload_url, a, &a->op.req);
        if (q < 0)
                call_reply_errno(op_finish(&a->op), q, NULL);
}

/* The extension to give an uploaded object: that of file_name, else ".csv". */
static const char *extension_of(const char *file_name) {
        const char *dot = file_name ? strrchr(file_name, '.') : NULL, *slash = file_name ? strrchr(file_name, '/') : NULL;

        if (!dot || (slash && dot < slash) || dot == file_name || strlen(dot) > 16 || strchr(dot, ' '))
                return ".csv";
        return dot;
}

/* Prepares one upload item from a "data"-like param: {"fd": N} or an inline string. */
static int upload_item_init(Call *c, UploadItem *it, json_object *value, const char *table, const char *suffix,
                            const char *file_name) {
        struct stat st;

        it->fd = -1;
        if (asprintf(&it->key, "%s%s%s", table, suffix, extension_of(file_name)) < 0)
                return -ENOMEM;
        if (json_object_is_type(value, json_type_string)) {
                it->inline_len = (size_t) json_object_get_string_len(value);
                it->inline_data = malloc(it->inline_len + 1);
                if (!it->inline_data)
                        return -ENOMEM;
                memcpy(it->inline_data, json_object_get_string(value), it->inline_len + 1);
                return 0;
        }
        it->fd = call_take_fd_param(c, value);
        if (it->fd < 0)
                return -EBADF;
        if (fstat(it->fd, &st) < 0)
                return -errno;
        it->size = S_ISREG(st.st_mode) ? (int64_t) st.st_size : -1;
        return 0;
}

/* Whether a table name is usable as an object key and a YAML key. */
static bool table_name_ok(const char *t) {
        if (isempty(t) || strlen(t) > 200 || streq(t, ".") || streq(t, ".."))
                return false;
        for (const char *p = t; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == '/' || *p == '\\')
                        return false;
        return true;
}

/* runner.add_table: upload the table (and its avatar data) and add it to the schema. */
static int method_add_table(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        const char *table = json_str(params, "table_name");
        json_object *v;
        AddTableOp *a;
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        if (!table_name_ok(table))
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL,
                                         "Invalid params: table_name must be 1 to 200 characters without '/' or control characters");
        a = op_new(c, sizeof(AddTableOp));
        if (!a)
                return -ENOMEM;
        a->op.cleanup = add_table_cleanup;
        a->runner = runner_ref(r);
        a->params = json_copy(params);
        notifier_init(&a->notifier, c->server);
        a->items[0].fd = a->items[1].fd = -1;
        if (!a->params)
                return op_start_failed(&a->op, -ENOMEM);
        json_object_object_del(a->params, "runner_id");
        json_object_object_del(a->params, "data");
        json_object_object_del(a->params, "avatar_data");
        json_object_object_del(a->params, "file_name");
        json_object_object_del(a->params, "avatar_file_name");

        a->n_items = 1;
        q = upload_item_init(c, &a->items[0], json_object_object_get(params, "data"), table, "",
                             json_str(params, "file_name"));
        if (q >= 0 && json_object_object_get_ex(params, "avatar_data", &v) && v) {
                a->n_items = 2;
                q = upload_item_init(c, &a->items[1], v, table, "_avatars",
                                     json_str(params, "avatar_file_name") ?: json_str(params, "file_name"));
        }
        if (q == -EBADF) {
                op_start_failed(&a->op, 0);
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL,
                                         "Invalid params: data must be inline text or {\"fd\": N} naming a descriptor sent with this message");
        }
        if (q < 0)
                return op_start_failed(&a->op, q);
        r->busy = "uploading";
        upload_next(a);
        return 0;
}

/* ---- links and parameters (synchronous) ---------------------------------------------------- */

/* runner.add_link */
static int method_add_link(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        _cleanup_free_ char *err = NULL;
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        q = runner_config_add_link(r->docs, json_str(params, "parent_table_name"), json_str(params, "parent_field"),
                                   json_str(params, "child_table_name"), json_str(params, "child_field"),
                                   json_str(params, "method"), &err);
        if (q == -EINVAL)
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL, "Invalid params: %s", strna(err));
        if (q < 0)
                return q;
        (void) runner_save(r);
        return reply_status(c, r);
}

/* set_parameters and update_parameters: apply, then reply with the table's parameters and
 * the warnings this call raised. */
static int parameters_common(Call *c, json_object *params, bool update) {
        Runner *r = runner_for_call(c, params);
        _cleanup_free_ char *err = NULL;
        const char *table = json_str(params, "table_name");
        json_object *p, *warnings, *o;
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        p = json_copy(params);
        warnings = json_object_new_array();
        if (!p || !warnings) {
                json_object_put(p);
                json_object_put(warnings);
                return -ENOMEM;
        }
        json_object_object_del(p, "runner_id");
        json_object_object_del(p, "table_name");
        if (update)
                q = runner_config_update_parameters(r->docs, r->options, table, p, warnings, &err);
        else
                q = runner_config_set_parameters(r->docs, r->options, table, p, warnings, &err);
        json_object_put(p);
        if (q < 0) {
                json_object_put(warnings);
                if (q == -EINVAL)
                        return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL, "Invalid params: %s", strna(err));
                return q;
        }
        for (size_t i = 0; i < json_array_len(warnings); i++)
                runner_warn(r, json_object_get_string(json_object_array_get_idx(warnings, i)));
        (void) runner_save(r);
        o = json_object_new_object();
        if (!o) {
                json_object_put(warnings);
                return -ENOMEM;
        }
        json_object_object_add(o, "runner_id", json_object_new_string(r->id));
        json_object_object_add(o, "table_name", json_object_new_string(table));
        json_object_object_add(o, "parameters", runner_config_get_parameters(r->docs, table));
        json_object_object_add(o, "warnings", warnings);
        return call_reply(c, o);
}

/* runner.set_parameters */
static int method_set_parameters(Call *c, json_object *params) {
        return parameters_common(c, params, false);
}

/* runner.update_parameters */
static int method_update_parameters(Call *c, json_object *params) {
        return parameters_common(c, params, true);
}

/* ---- runner.run ---------------------------------------------------------------------- */

/* A PUT /resources in flight. Older servers answer 201 + Location instead of 200 + the
 * set: the Location is read (GET) as the published client's generic request path does. Lives
 * in the Op, so a cancelled call leaves nothing behind. */
typedef struct PutResources {
        Op *op;
        api_done_cb cb;           /* called with userdata = op */
        char *location;           /* the Location being read, NULL before */
        json_object *created;     /* the 201 answer's JSON, or NULL */
} PutResources;

static void put_resources_done(PutResources *p) {
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
        json_object *o = json_object_new_object(), *jobs = json_object_new_array();

        if (!o || !jobs) {
                json_object_put(o);
                json_object_put(jobs);
                return NULL;
        }
        for (size_t i = 0; i < r->n_jobs; i++)
                json_object_array_add(jobs, runner_job_json(&r->jobs[i]));
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
        if (!loc)
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
        q = api_start(u->op.server->api, &call, on_job_created, u, &u->op.req);
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

/* Reads the Location of a 201 answer. Returns 0, -EINVAL (*ret_error set) or -ENOMEM. */
static int put_resources_follow(PutResources *p, const ApiResponse *resp) {
        _cleanup_free_ char *path = NULL;
        ApiCall call;

        if (!(p->location = strdup(resp->location)))
                return -ENOMEM;
        path = runner_location_api_path(p->op->server->config->api_url, resp->location);
        if (!path)
                return -EINVAL;
        p->created = json_object_get(resp->json);
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .label = "GET /resources/{set}" };
        return api_start(p->op->server->api, &call, on_put_resources, p, &p->op->req);
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
                        p->cb(resp, err, op);
                        return;
                }
                q = put_resources_follow(p, resp);
                if (q >= 0)
                        return;
                if (q == -EINVAL)
                        api_error_setf(&e, RPC_UPSTREAM_BAD_RESPONSE,
                                       "PUT /resources answered 201 with a Location outside the API: %s", resp->location);
                else
                        api_error_setf(&e, RPC_INTERNAL_ERROR, "Cannot follow the Location of PUT /resources: %s",
                                       strerror(-q));
                p->cb(NULL, &e, op);
                api_error_done(&e);
                return;
        }
        if (err) {
                if (api_error_copy(err, &e) < 0) {
                        p->cb(NULL, err, op);
                        return;
                }
                free(e.message);
                if (asprintf(&e.message, "PUT /resources answered 201 with Location %s, and reading it failed: %s",
                             p->location, strna(err->message)) < 0)
                        e.message = NULL;
                p->cb(NULL, e.message ? &e : err, op);
                api_error_done(&e);
                return;
        }
        /* the resource read as a 200 answer is; a YAML or empty answer names the set by the
         * 201 body or the Location's last segment */
        if (json_str(resp->json, "set_name")) {
                p->cb(resp, NULL, op);
                return;
        }
        name = json_str(p->created, "set_name");
        if (!name && (segment = runner_location_last_segment(p->location)))
                name = segment;
        if (name && (set = json_object_new_object())) {
                json_object_object_add(set, "set_name", json_object_new_string(name));
                if (json_str(p->created, "display_name"))
                        json_object_object_add(set, "display_name",
                                               json_object_new_string(json_str(p->created, "display_name")));
        }
        p->cb(&(ApiResponse){ .status = resp->status, .json = set, .body = resp->body, .body_len = resp->body_len,
                              .content_type = resp->content_type },
              NULL, op);
        json_object_put(set);
}

/* Sends the runner's YAML as a new set. Used by run and advise; cb gets op as userdata. */
static int put_resources(Op *op, PutResources *p, Runner *r, api_done_cb cb) {
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
        *p = (PutResources){ .op = op, .cb = cb };
        call = (ApiCall){
                .method = UPSTREAM_PUT,
                .path = path,
                .body = yaml,
                .body_len = len,
                .content_type = "application/yaml",
                .label = "PUT /resources/{display_name}",
        };
        return api_start(op->server->api, &call, on_put_resources, p, &op->req);
}

/* Whether the runner ran jobs other than advice. */
static bool runner_has_run(const Runner *r) {
        for (size_t i = 0; i < r->n_jobs; i++)
                if (!streq(r->jobs[i].parameters_name, "advice_parameters"))
                        return true;
        return false;
}

/* runner.run: send the YAML as a new set and create the jobs with their depends_on chain. */
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
                poller_kick(c->server->poller, r->set_name);
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
                        notify(w->op.call, &w->notifier, "runner.progress", p);
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
        notifier_init(&w->notifier, c->server);
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
        w->deadline = evtimer_new(c->server->base, on_wait_deadline, w);
        if (!w->deadline)
                return op_start_failed(&w->op, -ENOMEM);
        tv.tv_sec = (time_t) timeout;
        tv.tv_usec = (suseconds_t) ((timeout - (double) tv.tv_sec) * 1e6);
        evtimer_add(w->deadline, &tv);
        (void) runner_track(r);
        return 0;
}

/* ---- results: listing and downloads ------------------------------------------------------ */

/* What runner.download can fetch: the job (parameters name) and the key of GET /results. */
static const struct {
        const char *result;
        const char *pname;
        const char *key;
        bool per_table;
} result_kinds[] = {
        { "shuffled", "standard", "shuffled", true },
        { "unshuffled", "standard", "unshuffled", true },
        { "original_projections", "standard", "original_projections", true },
        { "avatar_projections", "standard", "avatar_projections", true },
        { "projections", "standard", "avatar_projections", true },
        { "figures", "standard", "figures", true },
        { "figures_metadata", "standard", "figures_metadata", false },
        { "metadata", "standard", "run_metadata", false },
        { "run_metadata", "standard", "run_metadata", false },
        { "privacy_metrics", "privacy_metrics", "privacy_metrics", true },
        { "signal_metrics", "signal_metrics", "signal_metrics", true },
        { "report", "report", "report", false },
        { "report_pia", "report_pia", "report", true },
        { "advice", "advice_parameters", "advice", true },
};

/* Whether a result kind exists once per table. */
static bool result_kinds_per_table(const char *result) {
        for (size_t i = 0; i < ELEMENTSOF(result_kinds); i++)
                if (streq(result_kinds[i].result, result))
                        return result_kinds[i].per_table;
        return false;
}

/* Decodes %XX escapes. Returns malloc'd. */
static char *percent_decode(const char *s, size_t n) {
        char *o = malloc(n + 1);
        size_t k = 0;

        if (!o)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char) s[i + 1]) &&
                    isxdigit((unsigned char) s[i + 2])) {
                        char h[3] = { s[i + 1], s[i + 2], 0 };

                        o[k++] = (char) strtol(h, NULL, 16);
                        i += 2;
                } else
                        o[k++] = s[i];
        }
        o[k] = '\0';
        return o;
}

/* The storage URL inside an /access?url= envelope (the last url parameter), malloc'd; a bare
 * s3:// URL is returned as is. NULL when there is none. */
static char *envelope_inner(const char *envelope) {
        const char *q = strchr(envelope, '?'), *p, *found = NULL;

        if (startswith(envelope, "s3://"))
                return strdup(envelope);
        if (!q)
                return NULL;
        for (p = q + 1; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
                if (startswith(p, "url="))
                        found = p + 4;
        if (!found)
                return NULL;
        /* the server does not encode the value, but a client may: decode either way */
        return percent_decode(found, strlen(found));
}

/* The file name of a result URL (its last path segment), malloc'd. */
static char *result_file_name(const char *url) {
        _cleanup_free_ char *inner = envelope_inner(url);
        const char *s = inner ? inner : url, *slash = strrchr(s, '/');

        return strdup(slash ? slash + 1 : s);
}

/* The table a result file belongs to: the part before the first '.', with the server's
 * escapes undone (_dot_, _slash_, _ampersand_, _plus_). Malloc'd. */
static char *result_table(const char *file_name) {
        static const struct {
                const char *from, *to;
        } esc[] = { { "_dot_", "." }, { "_slash_", "/" }, { "_ampersand_", "&" }, { "_plus_", "+" } };
        size_t n = strcspn(file_name, ".");
        char *t = malloc(n + 1);
        size_t k = 0;

        if (!t)
                return NULL;
        for (size_t i = 0; i < n;) {
                bool done = false;

                for (size_t e = 0; e < ELEMENTSOF(esc) && !done; e++)
                        if (strncmp(file_name + i, esc[e].from, strlen(esc[e].from)) == 0 &&
                            i + strlen(esc[e].from) <= n) {
                                t[k++] = esc[e].to[0];
                                i += strlen(esc[e].from);
                                done = true;
                        }
                if (!done)
                        t[k++] = file_name[i++];
        }
        t[k] = '\0';
        return t;
}

/* Whether a result file belongs to a table: "<table>.<what>.<ext>" does; the run's metadata
 * files and one-dot names ("report.pdf", "privacy_metrics_summary.json") do not. */
static bool result_file_per_table(const char *key, const char *file_name) {
        if (streq(key, "run_metadata") || streq(key, "figures_metadata"))
                return false;
        return strchr(file_name, '.') != strrchr(file_name, '.');
}

/* Lists the files of a results answer: [{result, file_name, table, url}]. */
static json_object *results_files(json_object *results) {
        json_object *a = json_object_new_array();

        if (!a || !json_object_is_type(results, json_type_object))
                return a;
        json_object_object_foreach(results, key, urls) {
                for (size_t i = 0; i < json_array_len(urls); i++) {
                        const char *u = json_object_get_string(json_object_array_get_idx(urls, i));
                        _cleanup_free_ char *fn = u ? result_file_name(u) : NULL, *tb = fn ? result_table(fn) : NULL;
                        json_object *f = json_object_new_object();

                        if (!f || !fn)
                                continue;
                        json_object_object_add(f, "result", json_object_new_string(key));
                        json_object_object_add(f, "file_name", json_object_new_string(fn));
                        json_object_object_add(f, "table", tb && result_file_per_table(key, fn) ?
                                               json_object_new_string(tb) : NULL);
                        json_object_array_add(a, f);
                }
        }
        return a;
}

typedef struct ResultsFetch ResultsFetch;
typedef void (*results_fetch_cb)(Op *op, const ApiError *err);

/* Fetches the missing GET /results of the finished jobs of a runner (all, or one), one after
 * the other, then calls back. The results are stored in the runner, which is saved once when
 * the fetch ends (or its Op goes, see results_fetch_flush()). */
struct ResultsFetch {
        Runner *runner;
        const char *only;        /* one parameters name, or NULL */
        size_t next;
        results_fetch_cb cb;
        Op *op;
        bool dirty;              /* results were stored since the last save */
};

static void results_fetch_next(ResultsFetch *f);

/* Saves the runner if the fetch stored results in it. For the cleanup of an Op that may go
 * in the middle of a fetch; NULL-runner safe (a fetch never started). */
static void results_fetch_flush(ResultsFetch *f) {
        if (!f->dirty)
                return;
        f->dirty = false;
        (void) runner_save(f->runner);
}

/* Ends the fetch: saves what it stored, then calls back with the outcome. */
static void results_fetch_end(ResultsFetch *f, const ApiError *err) {
        results_fetch_flush(f);
        f->cb(f->op, err);
}

/* One job's results arrived. */
static void on_results_fetched(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        ResultsFetch *f = userdata;
        RunnerJob *j = &f->runner->jobs[f->next];

        (void) age_s;
        (void) stale;
        f->op->waiter = NULL;
        if (err) {
                if (err->status == 404 && err->server_message && strcasestr(err->server_message, "Results file for job")) {
                        j->results_missing = true;
                        f->dirty = true;
                } else {
                        results_fetch_end(f, err);
                        return;
                }
        } else {
                json_object_put(j->results);
                j->results = json_copy(value);
                f->dirty = true;
        }
        f->next++;
        results_fetch_next(f);
}

/* Continues with the next job that needs its results. */
static void results_fetch_next(ResultsFetch *f) {
        for (; f->next < f->runner->n_jobs; f->next++) {
                RunnerJob *j = &f->runner->jobs[f->next];
                _cleanup_free_ char *esc = NULL, *path = NULL, *key = NULL;
                CacheRead read;
                int q;

                if (j->results || j->results_missing || !j->name || !j->job || !job_finished(j->job))
                        continue;
                if (f->only && !streq(f->only, j->parameters_name))
                        continue;
                esc = api_escape(j->name);
                if (!esc || asprintf(&path, "/results/%s", esc) < 0 || asprintf(&key, "GET %s", path) < 0) {
                        ApiError e = { .code = RPC_INTERNAL_ERROR, .retry_after_ms = -1 };

                        results_fetch_end(f, &e);
                        return;
                }
                read = op_read_of(f->op->server, key, path, "GET /results/{job}", 0);
                q = cache_get(f->op->server->cache, &read, on_results_fetched, f, &f->op->waiter);
                if (q < 0) {
                        ApiError e = { .code = RPC_INTERNAL_ERROR, .retry_after_ms = -1 };

                        results_fetch_end(f, &e);
                }
                return;
        }
        results_fetch_end(f, NULL);
}

typedef struct ListResultsOp {
        Op op;
        Runner *runner;
        ResultsFetch fetch;
} ListResultsOp;

/* Saves what the fetch stored and releases the runner. */
static void list_results_cleanup(Op *op) {
        ListResultsOp *l = (ListResultsOp *) op;

        results_fetch_flush(&l->fetch);
        runner_unref(l->runner);
}

/* All results are known: reply with the files of each job. */
static void on_list_results_ready(Op *op, const ApiError *err) {
        ListResultsOp *l = (ListResultsOp *) op;
        Runner *r = l->runner;
        json_object *o, *jobs;

        if (err) {
                reply_api_error(op_finish(op), err);
                return;
        }
        o = json_object_new_object();
        jobs = json_object_new_array();
        for (size_t i = 0; o && jobs && i < r->n_jobs; i++) {
                RunnerJob *j = &r->jobs[i];
                json_object *e = runner_job_json(j);

                json_object_object_add(e, "files", j->results ? results_files(j->results) : json_object_new_array());
                json_object_array_add(jobs, e);
        }
        if (o) {
                json_object_object_add(o, "runner_id", json_object_new_string(r->id));
                json_object_object_add(o, "set_name", r->set_name ? json_object_new_string(r->set_name) : NULL);
                json_object_object_add(o, "jobs", jobs);
        } else
                json_object_put(jobs);
        if (o)
                call_reply(op_finish(op), o);
        else
                call_reply_errno(op_finish(op), -ENOMEM, NULL);
}

/* runner.list_results: the result files of the runner's finished jobs. */
static int method_list_results(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        ListResultsOp *l;

        if (!r)
                return 0;
        l = op_new(c, sizeof(ListResultsOp));
        if (!l)
                return -ENOMEM;
        l->op.cleanup = list_results_cleanup;
        l->runner = runner_ref(r);
        l->fetch = (ResultsFetch){ .runner = r, .cb = on_list_results_ready, .op = &l->op };
        results_fetch_next(&l->fetch);
        return 0;
}

/* The credentials and storage URL of one result file: from POST /access/batch, or from
 * GET /access?url= when the server has no batch endpoint (API ≤ 1.0.8). Each request names one
 * file and an Op holds at most one at a time, so the per-file path never fans out. The
 * AccessReq lives in the Op that asks (its cleanup calls access_done()): an Op cancelled with
 * the request in flight gets no callback, and must still release it. */
typedef void (*access_cb)(Op *op, const char *s3url, const StorageCredentials *cred, const ApiError *err);

typedef struct AccessReq {
        Op *op;
        char *url;               /* the envelope asked for */
        access_cb cb;
        long batch_status;       /* the HTTP status that showed batch missing, 0 when not tried */
} AccessReq;

/* Releases what an access request holds (its Op's cleanup, or its end). */
static void access_done(AccessReq *a) {
        free(a->url);
        a->url = NULL;
}

/* Whether the configured server is known to lack POST /access/batch. */
static bool access_batch_missing(const Server *s) {
        return s->runners && s->runners->access_batch_missing &&
               streq(s->runners->access_batch_missing, s->config->api_url);
}

/* Remembers that the configured server lacks POST /access/batch (a new API URL forgets it). */
static void access_batch_set_missing(Server *s) {
        char *u;

        if (!s->runners || access_batch_missing(s) || !(u = strdup(s->config->api_url)))
                return;
        free(s->runners->access_batch_missing);
        s->runners->access_batch_missing = u;
        log_info("The server has no POST /access/batch: result files are read through GET /access from now on.");
}

/* Hands the credentials of a FileAccess (or an error) to the waiting callback. `how` names
 * the request for the error. Ends a. */
static void access_finish(AccessReq *a, json_object *fa, const char *inner, const char *how) {
        Op *op = a->op;
        access_cb cb = a->cb;
        _cleanup_free_ char *url = TAKE_PTR(a->url);
        json_object *creds = NULL;

        if (fa)
                json_object_object_get_ex(fa, "credentials", &creds);
        if (!creds || !inner || !json_str(creds, "access_key_id") || !json_str(creds, "secret_access_key")) {
                ApiError e = { .retry_after_ms = -1 };

                api_error_setf(&e, inner || creds ? RPC_UPSTREAM_BAD_RESPONSE : RPC_PERMISSION_DENIED,
                               "%s gave no access to %s", how, url);
                cb(op, NULL, NULL, &e);
                api_error_done(&e);
                return;
        }
        cb(op, inner, &(StorageCredentials){ json_str(creds, "access_key_id"), json_str(creds, "secret_access_key") },
           NULL);
}

/* The GET /access answer arrived. */
static void on_access_single(const ApiResponse *resp, const ApiError *err, void *userdata) {
        AccessReq *a = userdata;
        _cleanup_free_ char *inner = NULL;

        a->op->req = NULL;
        if (err) {
                Op *op = a->op;
                access_cb cb = a->cb;
                ApiError e = { .retry_after_ms = -1 };

                if (a->batch_status == 0 || api_error_copy(err, &e) < 0) {
                        access_done(a);
                        cb(op, NULL, NULL, err);
                        return;
                }
                /* both ways failed: say so, with the per-file failure's details */
                free(e.message);
                if (asprintf(&e.message, "POST /access/batch is missing (HTTP %ld) and GET /access failed too: %s",
                             a->batch_status, strna(err->message)) < 0)
                        e.message = NULL;
                access_done(a);
                cb(op, NULL, NULL, e.message ? &e : err);
                api_error_done(&e);
                return;
        }
        /* the file asked for is the one we named, whatever url the answer echoes */
        inner = envelope_inner(a->url);
        access_finish(a, json_object_is_type(resp->json, json_type_object) ? resp->json : NULL, inner, "GET /access");
}

/* Asks GET /access?url= for one envelope URL. */
static int access_single_start(AccessReq *a) {
        _cleanup_free_ char *esc = api_escape(a->url), *path = NULL;
        ApiCall call;

        if (!esc || asprintf(&path, "/access?url=%s", esc) < 0)
                return -ENOMEM;
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .label = "GET /access" };
        return api_start(a->op->server->api, &call, on_access_single, a, &a->op->req);
}

/* The /access/batch answer arrived. */
static void on_access_batch(const ApiResponse *resp, const ApiError *err, void *userdata) {
        AccessReq *a = userdata;
        _cleanup_free_ char *inner = NULL;
        json_object *found = NULL;

        a->op->req = NULL;
        if (err && (err->status == 404 || err->status == 405)) {
                Op *op = a->op;
                access_cb cb = a->cb;
                int q;

                /* an older server: no batch endpoint, one GET /access per file instead */
                access_batch_set_missing(op->server);
                a->batch_status = err->status;
                q = access_single_start(a);
                if (q < 0) {
                        access_done(a);
                        cb(op, NULL, NULL, err);
                }
                return;
        }
        if (err) {
                Op *op = a->op;
                access_cb cb = a->cb;

                access_done(a);
                cb(op, NULL, NULL, err);
                return;
        }
        for (size_t i = 0; i < json_array_len(resp->json); i++) {
                json_object *fa = json_object_array_get_idx(resp->json, i);

                /* the server echoes the exact string sent */
                if (streq_ptr(json_str(fa, "url"), a->url)) {
                        found = fa;
                        inner = envelope_inner(json_str(fa, "url"));
                        break;
                }
        }
        access_finish(a, found, inner, "POST /access/batch");
}

/* Asks for access to one envelope URL: POST /access/batch, or GET /access when the server is
 * known to lack the batch endpoint. The Op's req holds the request, a (the Op's own) its
 * state. */
static int access_start(Op *op, AccessReq *a, const char *url, access_cb cb) {
        json_object *body = NULL;
        ApiCall call;
        int q;

        access_done(a);
        *a = (AccessReq){ .op = op, .cb = cb, .url = strdup(url) };
        if (!a->url)
                return -ENOMEM;
        if (access_batch_missing(op->server))
                q = access_single_start(a);
        else {
                body = json_object_new_array();
                if (!body)
                        q = -ENOMEM;
                else {
                        json_object_array_add(body, json_object_new_string(url));
                        call = (ApiCall){ .method = UPSTREAM_POST, .path = "/access/batch", .json = body,
                                          .flags = API_IDEMPOTENT, .label = "POST /access/batch" };
                        q = api_start(op->server->api, &call, on_access_batch, a, &op->req);
                        json_object_put(body);
                }
        }
        if (q < 0)
                access_done(a);
        return q;
}

typedef struct DownloadOp {
        Op op;
        Runner *runner;
        const char *result;
        const char *pname;
        const char *key;
        char *table;
        char *file_name;
        int64_t index;
        int fd;                  /* -1: inline */
        ResultsFetch fetch;
        StorageOp *storage;
        AccessReq access;
        Notifier notifier;
} DownloadOp;

/* Releases the download state. */
static void download_cleanup(Op *op) {
        DownloadOp *d = (DownloadOp *) op;

        storage_cancel(d->storage);
        access_done(&d->access);
        safe_close(d->fd);
        free(d->table);
        free(d->file_name);
        results_fetch_flush(&d->fetch);
        runner_unref(d->runner);
}

/* Whether a file is binary (pdf, docx, parquet...) and must travel base64 inline. */
static bool binary_file(const char *file_name, const char *data, size_t len) {
        if (endswith(file_name, ".pdf") || endswith(file_name, ".docx") || endswith(file_name, ".parquet") ||
            endswith(file_name, ".png") || endswith(file_name, ".zip"))
                return true;
        return data && memchr(data, '\0', len) != NULL;
}

/* Base64 of data, malloc'd. */
static char *base64(const char *data, size_t len) {
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *o = malloc((len + 2) / 3 * 4 + 1), *p = o;

        if (!o)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) (unsigned char) data[i] << 16;

                if (i + 1 < len)
                        v |= (uint32_t) (unsigned char) data[i + 1] << 8;
                if (i + 2 < len)
                        v |= (unsigned char) data[i + 2];
                *p++ = tab[(v >> 18) & 63];
                *p++ = tab[(v >> 12) & 63];
                *p++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
                *p++ = i + 2 < len ? tab[v & 63] : '=';
        }
        *p = '\0';
        return o;
}

/* The download finished. */
static void on_downloaded(const StorageResult *res, void *userdata) {
        DownloadOp *d = userdata;
        json_object *o;
        Call *c;

        d->storage = NULL;
        if (res->error < 0) {
                json_object *data = json_object_new_object();

                if (data && res->status > 0)
                        json_object_object_add(data, "status", json_object_new_int64(res->status));
                if (data && res->s3_code)
                        json_object_object_add(data, "code", json_object_new_string(res->s3_code));
                c = op_finish(&d->op);
                call_reply_error(c, res->error == -EFBIG ? RPC_INVALID_PARAMS :
                                    res->error == -EREMOTEIO || res->status > 0 ? RPC_STORAGE_ERROR :
                                    rpc_error_code_from_errno(res->error),
                                 res->error == -EFBIG ? "The result is too large to return inline: pass a descriptor "
                                                        "({\"fd\": 0}) to write it into" : res->message, data);
                return;
        }
        o = json_object_new_object();
        if (!o) {
                call_reply_errno(op_finish(&d->op), -ENOMEM, NULL);
                return;
        }
        json_object_object_add(o, "runner_id", json_object_new_string(d->runner->id));
        json_object_object_add(o, "result", json_object_new_string(d->result));
        json_object_object_add(o, "table", d->table ? json_object_new_string(d->table) : NULL);
        json_object_object_add(o, "file_name", json_object_new_string(d->file_name));
        json_object_object_add(o, "bytes", json_object_new_uint64(res->bytes));
        if (d->fd < 0) {
                bool bin = binary_file(d->file_name, res->data, res->len);
                json_object *text = NULL;

                /* text must be valid UTF-8 to travel as a JSON string */
                for (size_t i = 0, l; !bin && i < res->len; i += l) {
                        l = utf8_sequence_len((const unsigned char *) res->data + i, res->len - i);
                        if (l == 0)
                                bin = true;
                }
                if (!bin) {
                        text = json_object_new_string_len(res->data ?: "", (int) res->len);
                        if (!text)
                                bin = true;
                }
                if (bin) {
                        _cleanup_free_ char *b64 = base64(res->data, res->len);

                        json_object_put(text);
                        json_object_object_add(o, "encoding", json_object_new_string("base64"));
                        json_object_object_add(o, "data", b64 ? json_object_new_string(b64) : NULL);
                } else {
                        json_object_object_add(o, "encoding", json_object_new_string("utf-8"));
                        json_object_object_add(o, "data", text);
                }
        }
        c = op_finish(&d->op);
        call_reply(c, o);
}

/* Progress of a download into a descriptor. */
static void on_download_progress(uint64_t done, uint64_t total, void *userdata) {
        DownloadOp *d = userdata;
        json_object *p = json_object_new_object();

        if (!p)
                return;
        json_object_object_add(p, "runner_id", json_object_new_string(d->runner->id));
        json_object_object_add(p, "event", json_object_new_string("download"));
        json_object_object_add(p, "file_name", json_object_new_string(d->file_name));
        json_object_object_add(p, "bytes", json_object_new_uint64(done));
        json_object_object_add(p, "total", json_object_new_uint64(total));
        notify(d->op.call, &d->notifier, "runner.progress", p);
}

/* Access to the file was granted: fetch it. */
static void on_download_access(Op *op, const char *s3url, const StorageCredentials *cred, const ApiError *err) {
        DownloadOp *d = (DownloadOp *) op;
        int q;

        if (err) {
                reply_api_error(op_finish(op), err);
                return;
        }
        if (d->fd >= 0)
                q = storage_get_fd(op->server->storage, s3url, cred, d->fd, on_download_progress, on_downloaded, d,
                                   &d->storage);
        else
                q = storage_get_memory(op->server->storage, s3url, cred, PROTO_INLINE_RESULT_MAX, on_downloaded, d,
                                       &d->storage);
        if (q < 0)
                call_reply_errno(op_finish(op), q, "Cannot start the download: %m");
}

/* The job's results are known: pick the file and ask for access to it. */
static void on_download_results(Op *op, const ApiError *err) {
        DownloadOp *d = (DownloadOp *) op;
        RunnerJob *j = runner_job(d->runner, d->pname);
        json_object *urls, *tables, *matches;
        const char *url = NULL;
        int q;

        if (err) {
                reply_api_error(op_finish(op), err);
                return;
        }
        if (j->results_missing) {
                const char *pname = d->pname; /* static; d goes with op_finish() */

                call_reply_errorf(op_finish(op), RPC_NOT_FOUND, NULL,
                                  "The results of job %s are no longer available on the server (they were cleaned up); "
                                  "run the runner again to compute them anew", pname);
                return;
        }
        if (!j->results || !json_object_object_get_ex(j->results, d->key, &urls) || json_array_len(urls) == 0) {
                const char *pname = d->pname, *result = d->result; /* static; d goes with op_finish() */

                call_reply_errorf(op_finish(op), RPC_NOT_FOUND, NULL, "Job %s has no %s result", pname, result);
                return;
        }
        tables = json_object_new_array();
        matches = json_object_new_array();
        for (size_t i = 0; tables && matches && i < json_array_len(urls); i++) {
                const char *u = json_object_get_string(json_object_array_get_idx(urls, i));
                _cleanup_free_ char *fn = u ? result_file_name(u) : NULL, *tb = fn ? result_table(fn) : NULL;

                if (!tb)
                        continue;
                if (!json_array_has_str(tables, tb))
                        json_object_array_add(tables, json_object_new_string(tb));
                if (!d->table || streq(tb, d->table))
                        json_object_array_add(matches, json_object_new_string(u));
        }
        if (!d->table && json_array_len(tables) > 1 && result_kinds_per_table(d->result)) {
                json_object *data = json_object_new_object();
                const char *result = d->result;

                json_object_object_add(data, "tables", json_object_get(tables));
                json_object_put(tables);
                json_object_put(matches);
                call_reply_errorf(op_finish(op), RPC_AMBIGUOUS, data,
                                  "The %s result exists for several tables: name one with 'table'", result);
                return;
        }
        json_object_put(tables);
        if (d->index >= 0 && (size_t) d->index < json_array_len(matches))
                url = json_object_get_string(json_object_array_get_idx(matches, (size_t) d->index));
        if (!url) {
                _cleanup_free_ char *table = TAKE_PTR(d->table);
                const char *result = d->result;
                long long index = (long long) d->index;

                json_object_put(matches);
                call_reply_errorf(op_finish(op), RPC_NOT_FOUND, NULL, "No %s result%s%s (file %lld)", result,
                                  table ? " for table " : "", table ? table : "", index);
                return;
        }
        free(d->file_name);
        d->file_name = result_file_name(url);
        if (!d->table && result_kinds_per_table(d->result) && d->file_name)
                d->table = result_table(d->file_name);
        q = access_start(op, &d->access, url, on_download_access);
        json_object_put(matches);
        if (q < 0)
                call_reply_errno(op_finish(op), q, NULL);
}

/* runner.download: one result file, into a descriptor the caller passes or inline. */
static int method_download(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        const char *result = json_str(params, "result"), *table = json_str(params, "table");
        json_object *fdp, *v;
        RunnerJob *j;
        DownloadOp *d;
        size_t k;

        if (!r)
                return 0;
        for (k = 0; k < ELEMENTSOF(result_kinds); k++)
                if (streq(result_kinds[k].result, result))
                        break;
        if (k == ELEMENTSOF(result_kinds))
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL, "Invalid params: unknown result '%s'", result);
        j = runner_job(r, result_kinds[k].pname);
        if (!j)
                return call_reply_errorf(c, RPC_NOT_FOUND, NULL, "Runner %s has no %s job: run it first", r->id,
                                         result_kinds[k].pname);
        if (!j->job || !job_finished(j->job))
                return call_reply_errorf(c, RPC_INVALID_STATE, NULL, "Job %s is not finished (status %s): runner.wait first",
                                         j->parameters_name, j->job ? strna(json_str(j->job, "status")) : "unknown");
        d = op_new(c, sizeof(DownloadOp));
        if (!d)
                return -ENOMEM;
        d->op.cleanup = download_cleanup;
        d->runner = runner_ref(r);
        d->fd = -1;
        d->result = result_kinds[k].result;
        d->pname = result_kinds[k].pname;
        d->key = result_kinds[k].key;
        d->index = json_object_object_get_ex(params, "index", &v) && v ? json_object_get_int64(v) : 0;
        notifier_init(&d->notifier, c->server);
        if (table && !(d->table = strdup(table)))
                return op_start_failed(&d->op, -ENOMEM);
        if (json_object_object_get_ex(params, "fd", &fdp) && fdp) {
                d->fd = call_take_fd_param(c, fdp);
                if (d->fd < 0) {
                        op_start_failed(&d->op, 0);
                        return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL,
                                                 "Invalid params: 'fd' names no descriptor sent with this message");
                }
        }
        d->fetch = (ResultsFetch){ .runner = r, .only = d->pname, .cb = on_download_results, .op = &d->op };
        results_fetch_next(&d->fetch);
        return 0;
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
        Server *s = d->op.server;

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
        TAILQ_FOREACH(r, &c->server->runners->list, link)
                if (all || r->owner == c->client->uid)
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

/* ---- runner.advise_parameters -------------------------------------------------------------- */

typedef struct AdviseOp {
        Op op;
        Runner *runner;
        char *table;             /* only this table, or NULL */
        RunnerWaiter *waiter;
        ResultsFetch fetch;
        json_object *urls;       /* advice files to read */
        size_t next;
        json_object *advice;     /* table → advice */
        StorageOp *storage;
        struct event *deadline;
        PutResources put;
        AccessReq access;
} AdviseOp;

/* Releases the advice state. */
static void advise_cleanup(Op *op) {
        AdviseOp *a = (AdviseOp *) op;

        storage_cancel(a->storage);
        runner_waiter_remove(a->waiter);
        if (a->deadline)
                event_free(a->deadline);
        json_object_put(a->urls);
        json_object_put(a->advice);
        put_resources_done(&a->put);
        access_done(&a->access);
        free(a->table);
        results_fetch_flush(&a->fetch);
        if (a->runner) {
                a->runner->busy = NULL;
                runner_unref(a->runner);
        }
}

/* Applies the advice to the tables and replies. */
static void advise_apply(AdviseOp *a) {
        Runner *r = a->runner;
        json_object *warnings = json_object_new_array(), *params = json_object_new_object(), *o;

        json_object_object_foreach(a->advice, table, adv) {
                json_object *p = NULL;
                _cleanup_free_ char *err = NULL;

                if (a->table && !streq(a->table, table))
                        continue;
                /* checked when the file was read: only ENOMEM can fail here */
                if (runner_config_advice_parameters(adv, &p, &err) < 0)
                        continue;
                if (runner_config_set_parameters(r->docs, r->options, table, p, warnings, &err) >= 0)
                        json_object_object_add(params, table, runner_config_get_parameters(r->docs, table));
                else {
                        _cleanup_free_ char *w = NULL;

                        if (asprintf(&w, "The advice for table '%s' could not be applied: %s", table, strna(err)) >= 0)
                                json_object_array_add(warnings, json_object_new_string(w));
                }
                json_object_put(p);
        }
        for (size_t i = 0; i < json_array_len(warnings); i++)
                runner_warn(r, json_object_get_string(json_object_array_get_idx(warnings, i)));
        (void) runner_save(r);
        o = json_object_new_object();
        json_object_object_add(o, "runner_id", json_object_new_string(r->id));
        json_object_object_add(o, "set_name", r->set_name ? json_object_new_string(r->set_name) : NULL);
        json_object_object_add(o, "advice", json_object_get(a->advice));
        json_object_object_add(o, "parameters", params);
        json_object_object_add(o, "warnings", warnings);
        call_reply(op_finish(&a->op), o);
}

static void advise_next_file(AdviseOp *a);

/* One advice file arrived. */
static void on_advice_file(const StorageResult *res, void *userdata) {
        AdviseOp *a = userdata;
        json_object *j = NULL;

        a->storage = NULL;
        if (res->error < 0) {
                call_reply_error(op_finish(&a->op), RPC_STORAGE_ERROR, res->message, NULL);
                return;
        }
        if (json_parse_strict(res->data, res->len, 32, &j) < 0) {
                call_reply_errorf(op_finish(&a->op), RPC_UPSTREAM_BAD_RESPONSE, NULL, "An advice file is not valid JSON");
                return;
        }
        /* a list of {table_name, advice}, or one such object */
        if (json_object_is_type(j, json_type_object)) {
                json_object *arr = json_object_new_array();

                json_object_array_add(arr, j);
                j = arr;
        }
        if (!json_object_is_type(j, json_type_array)) {
                json_object_put(j);
                call_reply_errorf(op_finish(&a->op), RPC_UPSTREAM_BAD_RESPONSE, NULL,
                                  "An advice file is neither a list of {table_name, advice} nor one such object");
                return;
        }
        for (size_t i = 0; i < json_array_len(j); i++) {
                json_object *e = json_object_array_get_idx(j, i), *adv = NULL, *p = NULL;
                const char *t = json_str(e, "table_name");
                _cleanup_free_ char *err = NULL;
                int q;

                if (!t || !json_object_object_get_ex(e, "advice", &adv)) {
                        json_object_put(j);
                        call_reply_errorf(op_finish(&a->op), RPC_UPSTREAM_BAD_RESPONSE, NULL,
                                          "An advice file item has no table_name or no advice");
                        return;
                }
                /* both shapes are accepted; anything else is refused before any table changes */
                q = a->table && !streq(a->table, t) ? 0 : runner_config_advice_parameters(adv, &p, &err);
                json_object_put(p);
                if (q < 0) {
                        /* t lives in j: reply before releasing it */
                        if (q == -EINVAL)
                                call_reply_errorf(op_finish(&a->op), RPC_UPSTREAM_BAD_RESPONSE, NULL,
                                                  "The advice for table '%s' cannot be read: %s", t, strna(err));
                        else
                                call_reply_errno(op_finish(&a->op), q, NULL);
                        json_object_put(j);
                        return;
                }
                json_object_object_add(a->advice, t, json_object_get(adv));
        }
        json_object_put(j);
        a->next++;
        advise_next_file(a);
}

/* Access to an advice file was granted. */
static void on_advice_access(Op *op, const char *s3url, const StorageCredentials *cred, const ApiError *err) {
        AdviseOp *a = (AdviseOp *) op;
        int q;

        if (err) {
                reply_api_error(op_finish(op), err);
                return;
        }
        q = storage_get_memory(op->server->storage, s3url, cred, RESULT_MEMORY_MAX, on_advice_file, a, &a->storage);
        if (q < 0)
                call_reply_errno(op_finish(op), q, NULL);
}

/* Reads the next advice file, or applies the advice. */
static void advise_next_file(AdviseOp *a) {
        int q;

        if (a->next >= json_array_len(a->urls)) {
                advise_apply(a);
                return;
        }
        q = access_start(&a->op, &a->access, json_object_get_string(json_object_array_get_idx(a->urls, a->next)), on_advice_access);
        if (q < 0)
                call_reply_errno(op_finish(&a->op), q, NULL);
}

/* The advice job's results are known. */
static void on_advice_results(Op *op, const ApiError *err) {
        AdviseOp *a = (AdviseOp *) op;
        RunnerJob *j = runner_job(a->runner, "advice_parameters");
        json_object *urls;

        if (err) {
                reply_api_error(op_finish(op), err);
                return;
        }
        if (!j || !j->results || !json_object_object_get_ex(j->results, "advice", &urls)) {
                call_reply_errorf(op_finish(op), RPC_UPSTREAM_BAD_RESPONSE, NULL, "The advice job has no advice result");
                return;
        }
        a->urls = json_object_get(urls);
        a->next = 0;
        advise_next_file(a);
}

/* The advice job changed. */
static void on_advice_event(Runner *r, json_object *changed, const RunnerJob *failed, bool all_done, void *userdata) {
        AdviseOp *a = userdata;

        (void) changed;
        if (!failed && !all_done) {
                if (!changed)
                        call_reply_errorf(op_finish(&a->op), RPC_NOT_FOUND, NULL, "Runner %s was closed", r->id);
                return;
        }
        runner_waiter_remove(a->waiter);
        a->waiter = NULL;
        if (failed) {
                const char *exc = failed->job ? json_str(failed->job, "exception") : NULL;

                call_reply_errorf(op_finish(&a->op), RPC_JOB_FAILED, NULL, "Job advice_parameters failed with exception: %s",
                                  isempty(exc) ? "internal error" : exc);
                return;
        }
        a->fetch = (ResultsFetch){ .runner = r, .only = "advice_parameters", .cb = on_advice_results, .op = &a->op };
        results_fetch_next(&a->fetch);
}

/* The advice job was created: wait for it. */
static void on_advice_job(const ApiResponse *resp, const ApiError *err, void *userdata) {
        AdviseOp *a = userdata;
        const char *name = json_str(resp ? resp->json : NULL, "name");
        _cleanup_free_ char *loc = NULL;
        json_object *which;
        int q;

        a->op.req = NULL;
        if (err || !name) {
                if (err)
                        reply_api_error(op_finish(&a->op), err);
                else
                        call_reply_errorf(op_finish(&a->op), RPC_UPSTREAM_BAD_RESPONSE, NULL, "POST /jobs gave no job name");
                return;
        }
        if (asprintf(&loc, "/jobs/%s", name) < 0 || runner_add_job(a->runner, "advice_parameters", name, loc) < 0) {
                call_reply_errno(op_finish(&a->op), -ENOMEM, NULL);
                return;
        }
        which = json_object_new_array();
        json_object_array_add(which, json_object_new_string("advice_parameters"));
        q = runner_waiter_add(a->runner, which, on_advice_event, a, &a->waiter);
        json_object_put(which);
        if (q < 0)
                call_reply_errno(op_finish(&a->op), q, NULL);
}

/* The advice set was created: create the advice job. */
static void on_advice_set(const ApiResponse *resp, const ApiError *err, void *userdata) {
        AdviseOp *a = userdata;
        const char *set = json_str(resp ? resp->json : NULL, "set_name");
        json_object *body;
        ApiCall call;
        int q;

        a->op.req = NULL;
        if (err || !set) {
                if (err)
                        reply_api_error(op_finish(&a->op), err);
                else
                        call_reply_errorf(op_finish(&a->op), RPC_UPSTREAM_BAD_RESPONSE, NULL, "PUT /resources gave no set_name");
                return;
        }
        free(a->runner->set_name);
        a->runner->set_name = strdup(set);
        body = json_object_new_object();
        json_object_object_add(body, "set_name", json_object_new_string(set));
        json_object_object_add(body, "parameters_name", json_object_new_string("advice_parameters"));
        json_object_object_add(body, "depends_on", json_object_new_array());
        call = (ApiCall){ .method = UPSTREAM_POST, .path = "/jobs", .json = body, .label = "POST /jobs" };
        q = api_start(a->op.server->api, &call, on_advice_job, a, &a->op.req);
        json_object_put(body);
        if (q < 0)
                call_reply_errno(op_finish(&a->op), q, NULL);
}

/* The advice did not come in time: give the runner back. */
static void on_advise_deadline(evutil_socket_t fd, short what, void *userdata) {
        AdviseOp *a = userdata;

        (void) fd;
        (void) what;
        call_reply_errorf(op_finish(&a->op), RPC_TIMEOUT, NULL,
                          "The advice job did not finish in time; the runner is free again (its job keeps running upstream)");
}

/* runner.advise_parameters: ask the server for parameters and apply them. */
static int method_advise_parameters(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        const char *table = json_str(params, "table_name");
        AdviseOp *a;
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        if (runner_has_run(r))
                return call_reply_errorf(c, RPC_INVALID_STATE, NULL,
                                         "Runner %s has already run: ask for advice before runner.run", r->id);
        if (table) {
                json_object *tables = runner_config_tables(r->docs);
                bool known = json_array_has_str(tables, table);

                json_object_put(tables);
                if (!known)
                        return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL, "Invalid params: no table '%s'", table);
        }
        q = runner_config_add_advice(r->docs);
        if (q < 0)
                return q;
        a = op_new(c, sizeof(AdviseOp));
        if (!a)
                return -ENOMEM;
        a->op.cleanup = advise_cleanup;
        a->runner = runner_ref(r);
        a->advice = json_object_new_object();
        if (!a->advice || (table && !(a->table = strdup(table))))
                return op_start_failed(&a->op, -ENOMEM);
        /* an advice job that never ends must not hold the runner forever */
        a->deadline = evtimer_new(c->server->base, on_advise_deadline, a);
        if (!a->deadline)
                return op_start_failed(&a->op, -ENOMEM);
        {
                json_object *v;
                double t = json_object_object_get_ex(params, "timeout_s", &v) && v ? json_object_get_double(v) : WAIT_DEFAULT_S;
                struct timeval tv = { .tv_sec = (time_t) t, .tv_usec = (suseconds_t) ((t - (double) (time_t) t) * 1e6) };

                evtimer_add(a->deadline, &tv);
        }
        r->busy = "advising";
        q = put_resources(&a->op, &a->put, r, on_advice_set);
        return q < 0 ? op_start_failed(&a->op, q) : 0;
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
                notify(w->op.call, &w->notifier, "jobs.changed", p);
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
        notifier_init(&w->notifier, c->server);
        w->deadline = evtimer_new(c->server->base, on_watch_deadline, w);
        if (!w->set_name || !w->deadline)
                return op_start_failed(&w->op, -ENOMEM);
        q = poller_watch(c->server->poller, set, on_watch_polled, w, &w->watch);
        if (q < 0)
                return op_start_failed(&w->op, q);
        /* joining a set that is already followed: start from what its last poll saw */
        {
                json_object *last = poller_last_jobs(c->server->poller, set), *names = json_object_new_array();

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

const MethodDef methods_runner[] = {
        { "manager.create_runner", method_create_runner, METHOD_MUTATING },
        { "manager.create_runner_from_yaml", method_create_runner_from_yaml, METHOD_MUTATING },
        { "manager.create_runner_from_id", method_create_runner_from_id, METHOD_MUTATING },
        { "manager.create_runner_from_name", method_create_runner_from_name, METHOD_MUTATING },
        { "manager.watch_jobs", method_watch_jobs, 0 },
        { "runner.add_table", method_add_table, METHOD_MUTATING },
        { "runner.add_link", method_add_link, 0 },
        { "runner.set_parameters", method_set_parameters, 0 },
        { "runner.update_parameters", method_update_parameters, 0 },
        { "runner.advise_parameters", method_advise_parameters, METHOD_MUTATING },
        { "runner.run", method_run, METHOD_MUTATING },
        { "runner.get_status", method_get_status, 0 },
        { "runner.wait", method_wait, 0 },
        { "runner.list_results", method_list_results, 0 },
        { "runner.download", method_download, 0 },
        { "runner.export_yaml", method_export_yaml, 0 },
        { "runner.delete", method_runner_delete, METHOD_MUTATING },
        { "runner.list", method_runner_list, 0 },
        { "runner.close", method_runner_close, METHOD_MUTATING },
        {}
};
