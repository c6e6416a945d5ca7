/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "json-util.h"
#include "jsonrpc.h"
#include "log.h"
#include "macro.h"
#include "openrpc.h"
#include "poller.h"
#include "runner-config.h"
#include "runner.h"
#include "sets.h"
#include "state.h"

#define RUNNER_FILE_VERSION 1

static void on_runner_polled(const char *set_name, json_object *jobs, json_object *changed, const ApiError *err,
                             void *userdata);
static void runner_restore_sets(Runner *r);

/* Whether a job status is a failure. */
bool job_status_failed(const char *status) {
        return streq_ptr(status, "error") || streq_ptr(status, "parent_error") || streq_ptr(status, "lost") ||
               streq_ptr(status, "orphaned");
}

/* Whether a job (a JobResponse, or NULL) is done. */
bool job_done(json_object *job) {
        json_object *v;

        return json_object_object_get_ex(job, "done", &v) && json_object_get_boolean(v);
}

/* Whether a job (a JobResponse, or NULL) failed. */
bool job_failed(json_object *job) {
        return job_status_failed(json_str(job, "status"));
}

/* Writes a random UUID4 into buf (37 bytes). */
static int uuid4(char buf[RUNNER_ID_LEN + 1]) {
        uint8_t b[16];

        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return -errno;
        b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80);
        snprintf(buf, RUNNER_ID_LEN + 1,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                 b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}

/* Releases the members of a job. */
static void runner_job_clear(RunnerJob *j) {
        free(j->parameters_name);
        free(j->kind);
        free(j->name);
        free(j->location);
        json_object_put(j->job);
        json_object_put(j->results);
        *j = (RunnerJob){};
}

/* Frees the runner struct. */
static void runner_free(Runner *r) {
        for (size_t i = 0; i < r->n_jobs; i++)
                runner_job_clear(&r->jobs[i]);
        free(r->jobs);
        free(r->display_name);
        free(r->set_name);
        free(r->previous_set_name);
        json_object_put(r->docs);
        json_object_put(r->options);
        json_object_put(r->tables);
        json_object_put(r->warnings);
        json_object_put(r->last_error);
        json_object_put(r->run);
        json_object_put(r->past_sets);
        json_object_put(r->uploads);
        free(r);
}

/* Takes a reference. */
Runner *runner_ref(Runner *r) {
        if (r)
                r->n_ref++;
        return r;
}

/* Drops a reference. */
Runner *runner_unref(Runner *r) {
        if (!r)
                return NULL;
        assert(r->n_ref > 0);
        if (--r->n_ref == 0)
                runner_free(r);
        return NULL;
}

/* A bare runner struct. */
static Runner *runner_alloc(Runners *rs) {
        Runner *r = calloc(1, sizeof(Runner));

        if (!r)
                return NULL;
        r->runners = rs;
        r->n_ref = 1;
        TAILQ_INIT(&r->waiters);
        r->tables = json_object_new_object();
        r->warnings = json_object_new_array();
        r->past_sets = json_object_new_array();
        if (!r->tables || !r->warnings || !r->past_sets) {
                runner_free(r);
                return NULL;
        }
        return r;
}

/* Links a runner into the registry. */
static void runners_link(Runners *rs, Runner *r) {
        TAILQ_INSERT_TAIL(&rs->list, r, link);
        rs->n++;
}

/* A job as the API shows it. */
json_object *runner_job_json(const RunnerJob *j) {
        json_object *o = json_object_new_object(), *v;
        static const char *const copy[] = { "status", "progress", "done", "exception", "created_at" };

        if (!o)
                return NULL;
        json_object_object_add(o, "parameters_name", json_object_new_string(j->parameters_name));
        json_object_object_add(o, "kind", json_object_new_string(j->kind ?: ""));
        json_object_object_add(o, "name", j->name ? json_object_new_string(j->name) : NULL);
        for (size_t i = 0; i < ELEMENTSOF(copy); i++) {
                if (j->job && json_object_object_get_ex(j->job, copy[i], &v))
                        json_object_object_add(o, copy[i], json_object_get(v));
                else if (streq(copy[i], "status"))
                        json_object_object_add(o, "status", json_object_new_string(""));
                else if (streq(copy[i], "done"))
                        json_object_object_add(o, "done", json_object_new_boolean(false));
        }
        if (j->results_missing)
                json_object_object_add(o, "results_missing", json_object_new_boolean(true));
        return o;
}

/* The persisted form of a runner. */
static json_object *runner_to_file_json(const Runner *r) {
        json_object *o = json_object_new_object(), *jobs = json_object_new_array();

        if (!o || !jobs) {
                json_object_put(o);
                json_object_put(jobs);
                return NULL;
        }
        json_object_object_add(o, "version", json_object_new_int(RUNNER_FILE_VERSION));
        json_object_object_add(o, "id", json_object_new_string(r->id));
        json_object_object_add(o, "owner", json_object_new_int64(r->owner));
        json_object_object_add(o, "display_name", json_object_new_string(r->display_name));
        json_object_object_add(o, "set_name", r->set_name ? json_object_new_string(r->set_name) : NULL);
        json_object_object_add(o, "previous_set_name",
                               r->previous_set_name ? json_object_new_string(r->previous_set_name) : NULL);
        json_object_object_add(o, "docs", json_object_get(r->docs));
        json_object_object_add(o, "options", json_object_get(r->options));
        json_object_object_add(o, "tables", json_object_get(r->tables));
        json_object_object_add(o, "warnings", json_object_get(r->warnings));
        for (size_t i = 0; i < r->n_jobs; i++) {
                const RunnerJob *j = &r->jobs[i];
                json_object *jo = json_object_new_object();

                json_object_object_add(jo, "parameters_name", json_object_new_string(j->parameters_name));
                json_object_object_add(jo, "kind", j->kind ? json_object_new_string(j->kind) : NULL);
                json_object_object_add(jo, "name", j->name ? json_object_new_string(j->name) : NULL);
                json_object_object_add(jo, "location", j->location ? json_object_new_string(j->location) : NULL);
                json_object_object_add(jo, "job", json_object_get(j->job));
                json_object_object_add(jo, "results", json_object_get(j->results));
                json_object_object_add(jo, "results_missing", json_object_new_boolean(j->results_missing));
                json_object_array_add(jobs, jo);
        }
        json_object_object_add(o, "jobs", jobs);
        json_object_object_add(o, "run", json_object_get(r->run));
        json_object_object_add(o, "past_sets", json_object_get(r->past_sets));
        if (json_array_len(r->uploads) > 0)
                json_object_object_add(o, "uploads", json_object_get(r->uploads));
        json_object_object_add(o, "created_at", json_object_new_int64((int64_t) r->created_at));
        json_object_object_add(o, "updated_at", json_object_new_int64((int64_t) r->updated_at));
        return o;
}

/* The file name of a runner. */
static char *runner_file(const Runner *r) {
        char *n = NULL;

        if (asprintf(&n, "%s.json", r->id) < 0)
                return NULL;
        return n;
}

/* Marks the runner saved or unsaved, keeping the registry's count. */
static void runner_set_unsaved(Runner *r, bool unsaved) {
        Runners *rs = r->runners;

        if (r->unsaved == unsaved)
                return;
        r->unsaved = unsaved;
        if (!rs)
                return;
        if (unsaved)
                rs->n_unsaved++;
        else {
                assert(rs->n_unsaved > 0);
                rs->n_unsaved--;
        }
}

/* How many saves failed and wait for the retries: runners and set owner records. */
static size_t runners_pending(const Runners *rs) {
        return rs->n_unsaved + (rs->sets ? set_owners_unsaved(rs->sets) : 0);
}

/* Arms the retry timer: after `ms`, unless it is armed already. */
static void runners_arm_retry(Runners *rs, unsigned ms) {
        struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (suseconds_t) (ms % 1000) * 1000 };

        if (!rs->save_retry || runners_pending(rs) == 0 || evtimer_pending(rs->save_retry, NULL))
                return;
        (void) evtimer_add(rs->save_retry, &tv);
}

/* A save's outcome, in the order the saves were asked for: a save older than the last one
 * whose outcome is known (a write_now one that overtook the delivery of queued ones) changes
 * nothing but the counters. */
static void runner_saved(Runner *r, uint64_t gen, int q, bool replaced) {
        Runners *rs = r->runners;

        if (r->closed || !rs)
                return;
        if (q < 0)
                rs->save_errors++;
        else
                rs->saves++;
        if (gen < r->save_gen_done)
                return;
        r->save_gen_done = gen;
        r->file_replaced = q < 0 && replaced;
        if (q < 0) {
                r->save_error = q;
                rs->last_save_error = q;
                runner_set_unsaved(r, true);
                runners_arm_retry(rs, rs->save_retry_ms);
                log_error_errno(q, "Failed to save runner %s in '%s': %m%s", r->id, rs->dir,
                                state_error_retryable(q) ? "; saving it again as soon as possible" : "");
                return;
        }
        rs->last_save_error = 0;
        if (r->unsaved)
                log_info("Runner %s is saved again.", r->id);
        runner_set_unsaved(r, false);
        r->save_error = 0;
        /* the disk takes writes again: the others are due now */
        rs->save_retry_ms = RUNNER_SAVE_RETRY_MIN_MS;
        runners_arm_retry(rs, 0);
}

/* The text of the runner's file and its name, for a save; r->updated_at is now. */
static int runner_save_text(Runner *r, char **ret_name, char **ret_text) {
        _cleanup_(json_object_putp) json_object *o = NULL;

        r->updated_at = (uint64_t) time(NULL);
        o = runner_to_file_json(r);
        *ret_name = runner_file(r);
        *ret_text = o ? state_json_text(o) : NULL;
        if (!*ret_name || !*ret_text) {
                free(*ret_name);
                free(*ret_text);
                return -ENOMEM;
        }
        return 0;
}

/* Saves the runner now. */
int runner_save(Runner *r) {
        Runners *rs = r->runners;
        _cleanup_free_ char *name = NULL, *text = NULL;
        uint64_t gen;
        bool replaced = false;
        int q;

        if (r->closed || !rs)
                return 0;
        gen = ++r->save_gen;
        q = runner_save_text(r, &name, &text);
        if (q >= 0)
                q = state_writer_write_now(rs->writer, rs->dir, name, text, &replaced);
        runner_saved(r, gen, q, replaced);
        return q;
}

typedef struct RunnerSave {
        Runner *runner;          /* a reference */
        uint64_t gen;
        runner_saved_cb cb;
        void *userdata;
} RunnerSave;

/* A save of the writer ended (event loop). */
static void on_runner_written(int error, bool replaced, void *userdata) {
        RunnerSave *sv = userdata;
        Runner *r = sv->runner;

        runner_saved(r, sv->gen, error, replaced);
        if (sv->cb)
                sv->cb(r, error, sv->userdata);
        runner_unref(r);
        free(sv);
}

/* Saves the runner off the event loop. */
int runner_save_async(Runner *r, runner_saved_cb cb, void *userdata) {
        Runners *rs = r->runners;
        _cleanup_free_ char *name = NULL;
        char *text = NULL;
        RunnerSave *sv;
        int q;

        if (r->closed || !rs || !rs->writer) {
                q = runner_save(r);
                if (cb)
                        cb(r, q, userdata);
                return 0;
        }
        sv = calloc(1, sizeof(RunnerSave));
        if (!sv)
                return -ENOMEM;
        q = runner_save_text(r, &name, &text);
        if (q < 0) {
                free(sv);
                return q;
        }
        *sv = (RunnerSave){ .runner = runner_ref(r), .gen = ++r->save_gen, .cb = cb, .userdata = userdata };
        q = state_writer_submit(rs->writer, rs->dir, name, text, on_runner_written, sv);
        if (q < 0) {
                runner_unref(r);
                free(sv);
        }
        return q;
}

/* Saves every unsaved runner, and the set owner records whose save failed. */
size_t runners_save_pending(Runners *rs) {
        Runner *r, *next;

        for (r = TAILQ_FIRST(&rs->list); r && rs->n_unsaved > 0; r = next) {
                next = TAILQ_NEXT(r, link);
                if (r->unsaved && runner_save(r) < 0)
                        return runners_pending(rs); /* the others would fail alike */
        }
        if (rs->sets)
                (void) set_owners_save_pending(rs->sets);
        return runners_pending(rs);
}

/* The retry timer: the unsaved runners are saved off the event loop (a failure arms the timer
 * again, later each time), the set records at once (they are few and small). */
static void on_save_retry(evutil_socket_t fd, short what, void *userdata) {
        Runners *rs = userdata;
        Runner *r;

        (void) fd;
        (void) what;
        rs->save_retry_ms = MIN(rs->save_retry_ms * 2, RUNNER_SAVE_RETRY_MAX_MS);
        TAILQ_FOREACH(r, &rs->list, link)
                if (r->unsaved && runner_save_async(r, NULL, NULL) < 0)
                        break;
        if (rs->sets)
                (void) set_owners_save_pending(rs->sets);
        if (rs->sets && set_owners_unsaved(rs->sets) > 0)
                runners_arm_retry(rs, rs->save_retry_ms);
}

/* Gives the registry its event loop. */
int runners_set_event_base(Runners *rs, struct event_base *base) {
        int q;

        if (rs->save_retry)
                return 0;
        rs->base = base;
        rs->save_retry = evtimer_new(base, on_save_retry, rs);
        if (!rs->save_retry)
                return -ENOMEM;
        q = state_writer_new(base, &rs->writer);
        if (q < 0)
                return q;
        /* runners left unsaved before (none at start, but a registry may come first) */
        runners_arm_retry(rs, 0);
        return 0;
}

/* Copies what the methods change. */
int runner_snapshot(const Runner *r, RunnerSnapshot *s) {
        *s = (RunnerSnapshot){
                .docs = json_copy(r->docs),
                .options = json_copy(r->options),
                .tables = json_copy(r->tables),
                .warnings = json_copy(r->warnings),
                .updated_at = r->updated_at,
                .unsaved = r->unsaved,
        };
        if ((r->docs && !s->docs) || (r->options && !s->options) || !s->tables || !s->warnings) {
                runner_snapshot_done(s);
                return -ENOMEM;
        }
        return 0;
}

/* Swaps a member back. */
static void snapshot_put_back(json_object **member, json_object **saved) {
        json_object_put(*member);
        *member = TAKE_PTR(*saved);
}

/* Puts a snapshot back after a failed save. */
void runner_snapshot_restore(Runner *r, RunnerSnapshot *s) {
        if (!s->tables)
                return; /* an empty snapshot (nothing taken) */
        snapshot_put_back(&r->docs, &s->docs);
        snapshot_put_back(&r->options, &s->options);
        snapshot_put_back(&r->tables, &s->tables);
        snapshot_put_back(&r->warnings, &s->warnings);
        r->updated_at = s->updated_at;
        runner_save_undone(r, s->unsaved);
}

/* A change whose save failed was undone. */
void runner_save_undone(Runner *r, bool was_unsaved) {
        /* the file holds what memory holds again, unless the failed save replaced it */
        if (!was_unsaved && !r->file_replaced)
                runner_set_unsaved(r, false);
}

/* Releases a snapshot. */
void runner_snapshot_done(RunnerSnapshot *s) {
        json_object_put(s->docs);
        json_object_put(s->options);
        json_object_put(s->tables);
        json_object_put(s->warnings);
        *s = (RunnerSnapshot){};
}

/* The message and data of a state_not_saved error. */
int runner_save_error_json(const Runner *r, int error, bool kept, char **ret_message, json_object **ret_data) {
        const char *dir = r->runners ? r->runners->dir : "the state directory";
        _cleanup_(json_object_putp) json_object *d = json_object_new_object();
        const char *en = strerrorname_np(-error);

        if (!d)
                return -ENOMEM;
        json_object_object_add(d, "runner_id", json_object_new_string(r->id));
        json_object_object_add(d, "state_directory", json_object_new_string(dir));
        json_object_object_add(d, "errno", json_object_new_string(en ?: "unknown"));
        json_object_object_add(d, "kept", json_object_new_boolean(kept));
        json_object_object_add(d, "retryable", json_object_new_boolean(state_error_retryable(error)));
        if (asprintf(ret_message, "Runner %s could not be saved in '%s': %s. %s", r->id, dir, strerror(-error),
                     kept ? "The change stays in memory and the daemon keeps trying to save it (daemon.status "
                            "lists the unsaved runners); do not repeat the call" :
                            "Nothing was changed; try again when the state directory has room") < 0)
                return -ENOMEM;
        *ret_data = TAKE_PTR(d);
        return 0;
}

/* Appends a warning. */
void runner_warn(Runner *r, const char *text) {
        LogContext ctx = { .runner_id = r->id };

        log_ctx(LOG_NOTICE, &ctx, "Runner %s: %s", r->display_name, text);
        json_object_array_add(r->warnings, json_object_new_string(text));
}

/* Appends a job with copies of the strings. Returns 0 or -ENOMEM. */
static int runner_append_job(Runner *r, const char *pname, const char *kind, const char *name, const char *location) {
        RunnerJob *n = reallocarray(r->jobs, r->n_jobs + 1, sizeof(RunnerJob)), *j;

        if (!n)
                return -ENOMEM;
        r->jobs = n;
        j = &r->jobs[r->n_jobs];
        *j = (RunnerJob){
                .parameters_name = strdup(pname),
                .kind = kind ? strdup(kind) : NULL,
                .name = name ? strdup(name) : NULL,
                .location = location ? strdup(location) : NULL,
        };
        if (!j->parameters_name || (kind && !j->kind) || (name && !j->name) || (location && !j->location)) {
                runner_job_clear(j);
                return -ENOMEM;
        }
        r->n_jobs++;
        return 0;
}

/* Copies a string member into *dst (NULL when absent). */
static int dup_member(json_object *o, const char *key, char **dst) {
        const char *v = json_str(o, key);

        *dst = v ? strdup(v) : NULL;
        return !v || *dst ? 0 : -ENOMEM;
}

/* Restores a runner from its file content (borrowed). */
static int runner_from_file_json(Runners *rs, const char *file, json_object *o, Runner **ret) {
        Runner *r;
        json_object *v, *jobs;
        const char *id = json_str(o, "id");
        int q = 0;

        if (!id || strlen(id) != RUNNER_ID_LEN || !json_str(o, "display_name") ||
            !json_object_object_get_ex(o, "docs", &v) || !json_object_is_type(v, json_type_array) ||
            !json_object_object_get_ex(o, "owner", &v) || !json_object_is_type(v, json_type_int)) {
                log_error("Runner file '%s' lacks id, display_name, owner or docs.", file);
                return -EBADMSG;
        }
        /* the id names the file runner_save() writes: anything but a UUID (a "../" path of
         * the same length) would put it outside the state directory */
        if (!string_is_uuid(id, strlen(id))) {
                log_error("Runner file '%s' holds an id that is not a UUID; refused.", file);
                return -EBADMSG;
        }
        r = runner_alloc(rs);
        if (!r)
                return -ENOMEM;
        memcpy(r->id, id, RUNNER_ID_LEN + 1);
        r->owner = (uid_t) json_object_get_int64(v);
        q = dup_member(o, "display_name", &r->display_name);
        if (q >= 0)
                q = dup_member(o, "set_name", &r->set_name);
        if (q >= 0)
                q = dup_member(o, "previous_set_name", &r->previous_set_name);
        r->docs = json_object_get(json_object_object_get(o, "docs"));
        r->options = json_object_get(json_object_object_get(o, "options"));
        if (!r->options)
                r->options = json_object_new_object();
        if (json_object_object_get_ex(o, "tables", &v) && json_object_is_type(v, json_type_object)) {
                json_object_put(r->tables);
                r->tables = json_object_get(v);
        }
        if (json_object_object_get_ex(o, "warnings", &v) && json_object_is_type(v, json_type_array)) {
                json_object_put(r->warnings);
                r->warnings = json_object_get(v);
        }
        if (json_object_object_get_ex(o, "past_sets", &v) && json_object_is_type(v, json_type_array)) {
                json_object_put(r->past_sets);
                r->past_sets = json_object_get(v);
        }
        /* multipart uploads the daemon stopped in the middle of: aborted at start */
        if (json_object_object_get_ex(o, "uploads", &v) && json_object_is_type(v, json_type_array) &&
            json_array_len(v) > 0)
                r->uploads = json_object_get(v);
        /* a run the daemon stopped in the middle of: its set is asked for its jobs at once */
        if (json_object_object_get_ex(o, "run", &v) && json_object_is_type(v, json_type_object)) {
                r->run = json_object_get(v);
                r->reconcile = !!json_str(v, "set_name");
        }
        r->created_at = (uint64_t) json_object_get_int64(json_object_object_get(o, "created_at"));
        r->updated_at = (uint64_t) json_object_get_int64(json_object_object_get(o, "updated_at"));
        jobs = json_object_object_get(o, "jobs");
        for (size_t i = 0; q >= 0 && i < json_array_len(jobs); i++) {
                json_object *jo = json_object_array_get_idx(jobs, i);
                const char *pname = json_str(jo, "parameters_name");
                RunnerJob *j;

                if (!pname) {
                        q = -EBADMSG;
                        break;
                }
                q = runner_append_job(r, pname, json_str(jo, "kind"), json_str(jo, "name"), json_str(jo, "location"));
                if (q < 0)
                        break;
                j = &r->jobs[r->n_jobs - 1];
                j->job = json_object_get(json_object_object_get(jo, "job"));
                j->results = json_object_get(json_object_object_get(jo, "results"));
                j->results_missing = json_object_get_boolean(json_object_object_get(jo, "results_missing"));
        }
        if (q < 0 || !r->display_name || !r->docs) {
                runner_free(r);
                return q < 0 ? q : -EBADMSG;
        }
        *ret = r;
        return 0;
}

/* Loader callback: one runner file. */
static int on_runner_file(const char *name, json_object *o, void *userdata) {
        Runners *rs = userdata;
        Runner *r = NULL;
        int q;

        q = runner_from_file_json(rs, name, o, &r);
        if (q < 0)
                return q;
        if (runner_find(rs, r->id)) {
                runner_free(r);
                return -EEXIST;
        }
        runners_link(rs, r);
        return 0;
}

/* Creates the registry and loads the saved runners. */
int runners_new(Poller *poller, const char *state_directory, Runners **ret) {
        Runners *rs = calloc(1, sizeof(Runners));
        Runner *r;
        int q;

        if (!rs)
                return -ENOMEM;
        rs->poller = poller;
        rs->save_retry_ms = RUNNER_SAVE_RETRY_MIN_MS;
        TAILQ_INIT(&rs->list);
        rs->damaged = json_object_new_array();
        if (!rs->damaged || asprintf(&rs->dir, "%s/runners", state_directory) < 0) {
                json_object_put(rs->damaged);
                free(rs);
                return -ENOMEM;
        }
        q = state_mkdir(rs->dir);
        if (q < 0) {
                log_error_errno(q, "Cannot create the runner directory '%s': %m", rs->dir);
                runners_free(rs);
                return q;
        }
        (void) state_remove_temp_files(rs->dir);
        q = state_load_dir(rs->dir, on_runner_file, rs, rs->damaged);
        if (q < 0) {
                log_error_errno(q, "Cannot read the runner directory '%s': %m", rs->dir);
                runners_free(rs);
                return q;
        }
        if (q > 0)
                log_info("Loaded %d runner(s) from '%s'.", q, rs->dir);
        q = set_owners_new(state_directory, &rs->sets);
        if (q < 0) {
                runners_free(rs);
                return q;
        }
        TAILQ_FOREACH(r, &rs->list, link) {
                runner_restore_sets(r);
                (void) runner_track(r);
        }
        *ret = rs;
        return 0;
}

/* Frees the registry (runners are not closed: their files stay). */
Runners *runners_free(Runners *rs) {
        Runner *r;

        if (!rs)
                return NULL;
        /* the aborts of upload records in flight hold runners, requests and saves */
        if (rs->uploads_free)
                rs->uploads_free(rs->uploads);
        rs->uploads = NULL;
        /* the queued saves are written (their callbacks run) before the last attempt */
        rs->writer = state_writer_free(rs->writer);
        if (runners_pending(rs) > 0 && runners_save_pending(rs) > 0)
                log_error("%zu runner(s) or set owner record(s) could not be saved in '%s' before the daemon "
                          "stopped: their last changes are lost.", runners_pending(rs), rs->dir);
        if (rs->save_retry)
                event_free(rs->save_retry);
        while ((r = TAILQ_FIRST(&rs->list))) {
                RunnerWaiter *w;

                TAILQ_REMOVE(&rs->list, r, link);
                poller_unwatch(r->watch);
                r->watch = NULL;
                while ((w = TAILQ_FIRST(&r->waiters))) {
                        TAILQ_REMOVE(&r->waiters, w, link);
                        json_object_put(w->jobs);
                        free(w);
                }
                r->runners = NULL;
                runner_unref(r);
        }
        json_object_put(rs->damaged);
        set_owners_free(rs->sets);
        free(rs->access_batch_missing);
        free(rs->dir);
        free(rs);
        return NULL;
}

/* Creates a runner. */
int runner_new(Runners *rs, uid_t owner, const char *display_name, json_object *docs, json_object *options,
               Runner **ret) {
        Runner *r = NULL;
        int q;

        q = runner_new_unsaved(rs, owner, display_name, docs, options, &r);
        if (q < 0)
                return q;
        q = runner_save(r);
        if (q < 0) {
                /* refused: nothing to save later, and no file left for a restart to find (a
                 * failed fsync of the directory comes after the rename) */
                runner_set_unsaved(r, false);
                if (r->file_replaced) {
                        _cleanup_free_ char *name = runner_file(r);

                        if (name)
                                (void) state_remove(rs->dir, name);
                }
                TAILQ_REMOVE(&rs->list, r, link);
                rs->n--;
                runner_free(r);
                return q;
        }
        *ret = r;
        return 0;
}

/* Creates a runner without saving it. */
int runner_new_unsaved(Runners *rs, uid_t owner, const char *display_name, json_object *docs, json_object *options,
                       Runner **ret) {
        Runner *r = runner_alloc(rs);
        int q;

        if (!r) {
                json_object_put(docs);
                json_object_put(options);
                return -ENOMEM;
        }
        r->docs = docs;
        r->options = options ?: json_object_new_object();
        r->owner = owner;
        r->display_name = strdup(display_name);
        r->created_at = r->updated_at = (uint64_t) time(NULL);
        q = uuid4(r->id);
        if (q < 0 || !r->display_name || !r->options || !r->docs) {
                runner_free(r);
                return q < 0 ? q : -ENOMEM;
        }
        runners_link(rs, r);
        *ret = r;
        return 0;
}

/* Finds a runner by id. */
Runner *runner_find(Runners *rs, const char *id) {
        Runner *r;

        TAILQ_FOREACH(r, &rs->list, link)
                if (strcasecmp(r->id, id) == 0)
                        return r;
        return NULL;
}

/* Counts the runners of uid. */
size_t runners_count_owned(const Runners *rs, uid_t uid) {
        const Runner *r;
        size_t n = 0;

        TAILQ_FOREACH(r, &rs->list, link)
                if (r->owner == uid)
                        n++;
        return n;
}

/* Records a set as the runner's owner's. */
int runner_record_set(Runner *r, const char *set_name, const char *how) {
        Runners *rs = r->runners;
        int q;

        if (!rs || !rs->sets || isempty(set_name))
                return 0;
        q = set_owners_record(rs->sets, set_name, r->owner, how, r->id, r->display_name);
        /* a record that could not be written is written by the save retries */
        runners_arm_retry(rs, rs->save_retry_ms);
        if (q == -EINVAL)
                log_warning("Set %s of runner %s has a name that is not a UUID: its owner is kept in memory only.",
                            set_name, r->id);
        return q;
}

/* Gives the sets a loaded runner names, and that have no owner, to the runner's owner: state
 * from before the daemon kept set owners (a set another uid owns keeps its owner). */
static void runner_restore_sets(Runner *r) {
        (void) runner_record_set(r, r->set_name, "restored");
        (void) runner_record_set(r, r->previous_set_name, "restored");
        for (size_t i = 0; i < r->n_jobs; i++)
                (void) runner_record_set(r, json_str(r->jobs[i].job, "set_name"), "restored");
}

/* Ends every waiter with the given outcome. */
static void runner_end_waiters(Runner *r) {
        RunnerWaiter *w, *next;

        for (w = TAILQ_FIRST(&r->waiters); w; w = next) {
                next = TAILQ_NEXT(w, link);
                w->cb(r, NULL, NULL, false, w->userdata);
        }
}

/* Forgets the runner. */
void runner_close(Runner *r) {
        Runners *rs = r->runners;
        _cleanup_free_ char *name = runner_file(r);

        if (r->closed)
                return;
        r->closed = true;
        poller_unwatch(r->watch);
        r->watch = NULL;
        runner_ref(r);
        runner_end_waiters(r);
        if (rs) {
                if (name) {
                        /* no queued save may bring the file back */
                        state_writer_forget(rs->writer, rs->dir, name);
                        (void) state_remove(rs->dir, name);
                }
                runner_set_unsaved(r, false);
                TAILQ_REMOVE(&rs->list, r, link);
                rs->n--;
                r->runners = NULL;
                runner_unref(r); /* the registry's reference */
        }
        runner_unref(r);
}

/* Rebuilds the jobs of the runner from a job list, without saving or tracking. */
int runner_replace_jobs(Runner *r, json_object *jobs) {
        int q = 0;

        for (size_t i = 0; i < r->n_jobs; i++)
                runner_job_clear(&r->jobs[i]);
        r->n_jobs = 0;
        for (size_t i = 0; q >= 0 && i < json_array_len(jobs); i++) {
                json_object *j = json_object_array_get_idx(jobs, i);

                q = runner_append_job(r, json_str(j, "parameters_name"), json_str(j, "kind"), json_str(j, "name"),
                                      json_str(j, "location"));
        }
        return q;
}

/* Replaces the jobs of the runner, saves it and tracks the new jobs. */
int runner_set_jobs(Runner *r, json_object *jobs) {
        int q = runner_replace_jobs(r, jobs), s;

        s = runner_save(r);
        (void) runner_track(r);
        return q < 0 ? q : s;
}

/* Records a job just created in the runner's set, replacing one of the same parameters name;
 * the poller's last list of the set lacks it from now on. Returns 0 or -ENOMEM. */
static int runner_put_job(Runner *r, const char *parameters_name, const char *name, const char *location) {
        RunnerJob *j = runner_job(r, parameters_name);

        if (r->set_name && r->runners && r->runners->poller)
                poller_set_grew(r->runners->poller, r->set_name);
        if (j) {
                char *p = TAKE_PTR(j->parameters_name);

                runner_job_clear(j);
                j->parameters_name = p;
                j->kind = strdup(runner_config_job_kind(parameters_name));
                j->name = strdup(name);
                j->location = location ? strdup(location) : NULL;
                return j->kind && j->name && (!location || j->location) ? 0 : -ENOMEM;
        }
        return runner_append_job(r, parameters_name, runner_config_job_kind(parameters_name), name, location);
}

/* Adds one job, replacing one of the same parameters name. */
int runner_add_job(Runner *r, const char *parameters_name, const char *name, const char *location) {
        int q = runner_put_job(r, parameters_name, name, location), s;

        s = runner_save(r);
        (void) runner_track(r);
        return q < 0 ? q : s;
}

/* The job of a parameters name. */
RunnerJob *runner_job(Runner *r, const char *parameters_name) {
        for (size_t i = 0; i < r->n_jobs; i++)
                if (streq(r->jobs[i].parameters_name, parameters_name))
                        return &r->jobs[i];
        return NULL;
}

/* Whether a job is in the list of names (NULL list: all). */
static bool wanted(json_object *which, const char *pname) {
        return !which || json_array_has_str(which, pname);
}

/* Whether every awaited job is done; reports a failed one. */
bool runner_jobs_done(Runner *r, json_object *which, const RunnerJob **ret_failed) {
        bool all = true, any = false;

        if (ret_failed)
                *ret_failed = NULL;
        for (size_t i = 0; i < r->n_jobs; i++) {
                const RunnerJob *j = &r->jobs[i];

                if (!wanted(which, j->parameters_name))
                        continue;
                any = true;
                if (job_failed(j->job)) {
                        if (ret_failed && !*ret_failed)
                                *ret_failed = j;
                        continue;
                }
                if (!job_done(j->job))
                        all = false;
        }
        return any && all;
}

/* Starts or stops the tracking of the runner's jobs. */
int runner_track(Runner *r) {
        bool pending = false;
        int q;

        for (size_t i = 0; i < r->n_jobs; i++) {
                const RunnerJob *j = &r->jobs[i];

                if (j->name && !job_done(j->job) && !job_failed(j->job))
                        pending = true;
        }
        if (r->reconcile)
                pending = true;
        /* a registry without a poller (unit tests) follows nothing */
        if (!pending || !r->set_name || r->closed || !r->runners || !r->runners->poller) {
                poller_unwatch(r->watch);
                r->watch = NULL;
                return 0;
        }
        if (r->watch)
                return 0;
        q = poller_watch(r->runners->poller, r->set_name, on_runner_polled, r, &r->watch);
        /* nobody waiting: the set is followed at the slowest interval */
        if (q >= 0)
                poller_watch_set_waiting(r->watch, !TAILQ_EMPTY(&r->waiters));
        return q;
}

/* A poll of the runner's set: update the jobs, save, tell the waiters. */
static void on_runner_polled(const char *set_name, json_object *jobs, json_object *changed, const ApiError *err,
                             void *userdata) {
        Runner *r = userdata;
        json_object *changed_p = json_object_new_array(), *adopted = NULL;
        RunnerWaiter *w, *next;

        (void) set_name;
        runner_ref(r);
        if (err) {
                json_object_put(r->last_error);
                r->last_error = json_object_new_string(strna(err->message));
        } else {
                json_object_put(r->last_error);
                r->last_error = NULL;
                /* jobs of the set the runner does not know (a run interrupted between a
                 * POST /jobs and its record) are adopted; not while a run of this runner
                 * creates them, which records them itself */
                if (!r->busy && (adopted = json_object_new_array())) {
                        if (runner_adopt_jobs(r, jobs, adopted) > 0)
                                log_info("Runner %s: adopted %zu job(s) of set %s.", r->id,
                                         json_array_len(adopted), strna(r->set_name));
                        r->reconcile = false;
                }
                for (size_t i = 0; i < r->n_jobs; i++) {
                        RunnerJob *j = &r->jobs[i];

                        for (size_t k = 0; j->name && k < json_array_len(jobs); k++) {
                                json_object *job = json_object_array_get_idx(jobs, k);

                                if (!streq_ptr(json_str(job, "name"), j->name))
                                        continue;
                                for (size_t c = 0; c < json_array_len(changed); c++)
                                        if (streq_ptr(json_object_get_string(json_object_array_get_idx(changed, c)),
                                                      j->name)) {
                                                json_object_put(j->job);
                                                j->job = json_object_get(job);
                                                json_object_array_add(changed_p, json_object_new_string(j->parameters_name));
                                        }
                        }
                }
                for (size_t i = 0; i < json_array_len(adopted); i++) {
                        const char *p = json_object_get_string(json_object_array_get_idx(adopted, i));

                        if (!json_array_has_str(changed_p, p))
                                json_object_array_add(changed_p, json_object_new_string(p));
                }
                json_object_put(adopted);
                /* off the event loop: a failure leaves the runner unsaved, for the retries */
                if (json_array_len(changed_p) > 0)
                        (void) runner_save_async(r, NULL, NULL);
        }
        for (w = TAILQ_FIRST(&r->waiters); w; w = next) {
                const RunnerJob *failed = NULL;
                bool done = runner_jobs_done(r, w->jobs, &failed);
                json_object *mine = json_object_new_array();

                next = TAILQ_NEXT(w, link);
                for (size_t i = 0; i < json_array_len(changed_p); i++) {
                        const char *p = json_object_get_string(json_object_array_get_idx(changed_p, i));

                        if (wanted(w->jobs, p))
                                json_object_array_add(mine, json_object_new_string(p));
                }
                if (failed || done || json_array_len(mine) > 0)
                        w->cb(r, mine, failed, done && !failed, w->userdata);
                json_object_put(mine);
        }
        json_object_put(changed_p);
        if (!r->closed)
                (void) runner_track(r);
        runner_unref(r);
}

/* Adds a waiter. */
int runner_waiter_add(Runner *r, json_object *jobs, runner_waiter_cb cb, void *userdata, RunnerWaiter **ret) {
        RunnerWaiter *w = calloc(1, sizeof(RunnerWaiter));

        if (!w)
                return -ENOMEM;
        w->runner = runner_ref(r);
        w->jobs = json_object_get(jobs);
        w->cb = cb;
        w->userdata = userdata;
        TAILQ_INSERT_TAIL(&r->waiters, w, link);
        poller_watch_set_waiting(r->watch, true);
        *ret = w;
        return 0;
}

/* Removes a waiter. */
void runner_waiter_remove(RunnerWaiter *w) {
        if (!w)
                return;
        TAILQ_REMOVE(&w->runner->waiters, w, link);
        if (TAILQ_EMPTY(&w->runner->waiters))
                poller_watch_set_waiting(w->runner->watch, false);
        json_object_put(w->jobs);
        runner_unref(w->runner);
        free(w);
}

/* The jobs of the runner as the API shows them. */
json_object *runner_jobs_json(const Runner *r) {
        json_object *jobs = json_object_new_array();

        for (size_t i = 0; jobs && i < r->n_jobs; i++)
                json_object_array_add(jobs, runner_job_json(&r->jobs[i]));
        return jobs;
}

/* The runner as the API shows it. */
json_object *runner_status_json(Runner *r, bool with_docs) {
        json_object *o = json_object_new_object(), *jobs = runner_jobs_json(r), *tables;
        const char *state;
        const RunnerJob *failed = NULL;

        if (!o || !jobs) {
                json_object_put(o);
                json_object_put(jobs);
                return NULL;
        }
        if (r->busy)
                state = r->busy;
        else if (r->run)
                state = "interrupted";
        else if (r->n_jobs == 0)
                state = "configuring";
        else {
                /* runner_jobs_done() counts failed jobs as done: look at the failure first */
                bool done = runner_jobs_done(r, NULL, &failed);

                state = failed ? "failed" : done ? "finished" : "running";
        }
        json_object_object_add(o, "runner_id", json_object_new_string(r->id));
        json_object_object_add(o, "display_name", json_object_new_string(r->display_name));
        json_object_object_add(o, "owner", json_object_new_int64(r->owner));
        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "set_name", r->set_name ? json_object_new_string(r->set_name) : NULL);
        json_object_object_add(o, "previous_set_name",
                               r->previous_set_name ? json_object_new_string(r->previous_set_name) : NULL);
        tables = runner_config_tables(r->docs);
        json_object_object_add(o, "tables", tables);
        json_object_object_add(o, "uploads", json_object_get(r->tables));
        json_object_object_add(o, "jobs", jobs);
        json_object_object_add(o, "run", json_object_get(r->run));
        json_object_object_add(o, "past_sets", json_object_get(r->past_sets));
        json_object_object_add(o, "warnings", json_object_get(r->warnings));
        json_object_object_add(o, "last_error", json_object_get(r->last_error));
        json_object_object_add(o, "created_at", json_object_new_int64((int64_t) r->created_at));
        json_object_object_add(o, "updated_at", json_object_new_int64((int64_t) r->updated_at));
        /* the state directory could not take its last change: it is only in memory */
        if (r->unsaved) {
                json_object_object_add(o, "unsaved", json_object_new_boolean(true));
                json_object_object_add(o, "save_error", json_object_new_string(strerrorname_np(-r->save_error) ?: "unknown"));
        }
        if (with_docs)
                json_object_object_add(o, "documents", json_object_get(r->docs));
        return o;
}

/* The ids of the unsaved runners. */
static json_object *runners_unsaved_json(const Runners *rs) {
        json_object *a = json_object_new_array();
        const Runner *r;

        TAILQ_FOREACH(r, &rs->list, link)
                if (a && r->unsaved)
                        json_object_array_add(a, json_object_new_string(r->id));
        return a;
}

/* Statistics. */
json_object *runners_stats_json(const Runners *rs) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "runners", json_object_new_int64((int64_t) rs->n));
        json_object_object_add(o, "damaged_files", json_object_get(rs->damaged));
        json_object_object_add(o, "saves", json_object_new_uint64(rs->saves));
        json_object_object_add(o, "save_errors", json_object_new_uint64(rs->save_errors));
        json_object_object_add(o, "unsaved", runners_unsaved_json(rs));
        if (rs->writer)
                json_object_object_add(o, "writer", state_writer_stats_json(rs->writer));
        json_object_object_add(o, "last_save_error", rs->last_save_error < 0 ?
                               json_object_new_string(strerrorname_np(-rs->last_save_error) ?: "unknown") : NULL);
        if (rs->sets)
                json_object_object_add(o, "sets", set_owners_stats_json(rs->sets));
        return o;
}

/* runners_stats_json()'s text, byte for byte, appended to t (daemon.status). */
void runners_stats_text(const Runners *rs, JsonText *t, JsonTextMemo *m) {
        const Runner *r;
        bool first = true;
        /* the part up to the unsaved runners, kept while there are none */
        uint64_t key[] = { rs->n, (uintptr_t) rs->damaged, rs->damaged ? json_object_array_length(rs->damaged) : 0,
                           rs->saves, rs->save_errors };
        size_t start;

        if (m && rs->n_unsaved == 0 && json_text_memo_hit(m, t, key, ELEMENTSOF(key), &start))
                goto unsaved;
        json_text_add_literal(t, "{\"runners\":");
        json_text_add_i64(t, (int64_t) rs->n);
        json_text_add_literal(t, ",\"damaged_files\":");
        json_text_add_value(t, rs->damaged);
        json_text_add_literal(t, ",\"saves\":");
        json_text_add_u64(t, rs->saves);
        json_text_add_literal(t, ",\"save_errors\":");
        json_text_add_u64(t, rs->save_errors);
        json_text_add_literal(t, ",\"unsaved\":[");
        if (m && rs->n_unsaved == 0)
                json_text_memo_keep(m, t, start);
unsaved:
        TAILQ_FOREACH(r, &rs->list, link)
                if (r->unsaved) {
                        json_text_add_literal(t, first ? "" : ",");
                        first = false;
                        json_text_add_str(t, r->id);
                }
        json_text_add_literal(t, "]");
        if (rs->writer) {
                json_text_add_literal(t, ",\"writer\":");
                state_writer_stats_text(rs->writer, t);
        }
        json_text_add_literal(t, ",\"last_save_error\":");
        json_text_add_str(t, rs->last_save_error < 0 ? strerrorname_np(-rs->last_save_error) ?: "unknown" : NULL);
        if (rs->sets) {
                json_text_add_literal(t, ",\"sets\":");
                set_owners_stats_text(rs->sets, t);
        }
        json_text_add_literal(t, "}");
}

/* ---- the write-ahead of runs ---------------------------------------------------------------- */

/* Whether the runner knows a job of that name. */
static bool runner_knows_job(const Runner *r, const char *name) {
        for (size_t i = 0; name && i < r->n_jobs; i++)
                if (streq_ptr(r->jobs[i].name, name))
                        return true;
        return false;
}

/* Saves the runner with `run` as its record; on a failed save the record is `prev` again
 * (the record taken, prev given back or dropped). */
static int runner_run_save(Runner *r, json_object *run, json_object *prev) {
        bool was_unsaved = r->unsaved;
        int q;

        r->run = run;
        q = runner_save(r);
        if (q < 0) {
                r->run = prev;
                json_object_put(run);
                runner_save_undone(r, was_unsaved);
                return q;
        }
        json_object_put(prev);
        return 0;
}

/* Starts or continues the record of a run. */
int runner_run_begin(Runner *r, json_object *jobs) {
        json_object *run = r->run ? json_copy(r->run) : json_object_new_object(), *plan;

        if (!run)
                return -ENOMEM;
        plan = json_object_object_get(run, "jobs");
        if (!json_object_is_type(plan, json_type_array)) {
                plan = json_object_new_array();
                if (!plan) {
                        json_object_put(run);
                        return -ENOMEM;
                }
                json_object_object_add(run, "jobs", plan);
        }
        for (size_t i = 0; i < json_array_len(jobs); i++) {
                const char *p = json_object_get_string(json_object_array_get_idx(jobs, i));

                if (p && !json_array_has_str(plan, p))
                        json_object_array_add(plan, json_object_new_string(p));
        }
        if (!json_object_object_get_ex(run, "set_name", NULL))
                json_object_object_add(run, "set_name", NULL);
        json_object_object_add(run, "creating", NULL);
        if (!json_object_object_get_ex(run, "started_at", NULL))
                json_object_object_add(run, "started_at", json_object_new_int64((int64_t) time(NULL)));
        return runner_run_save(r, run, r->run);
}

/* The jobs an interrupted run planned. */
json_object *runner_run_planned(const Runner *r) {
        json_object *plan = json_object_object_get(r->run, "jobs");

        return json_object_is_type(plan, json_type_array) ? plan : NULL;
}

/* The set of the recorded run. */
const char *runner_run_set(const Runner *r) {
        return json_str(r->run, "set_name");
}

/* The set and jobs of the runner as a past_sets entry, or NULL when it has no job. */
static json_object *runner_past_set_json(const Runner *r) {
        json_object *o, *jobs;

        if (!r->set_name || r->n_jobs == 0)
                return NULL;
        o = json_object_new_object();
        jobs = json_object_new_array();
        if (!o || !jobs) {
                json_object_put(o);
                json_object_put(jobs);
                return NULL;
        }
        for (size_t i = 0; i < r->n_jobs; i++) {
                json_object *j = json_object_new_object();

                if (!j)
                        continue;
                json_object_object_add(j, "parameters_name", json_object_new_string(r->jobs[i].parameters_name));
                json_object_object_add(j, "name", r->jobs[i].name ? json_object_new_string(r->jobs[i].name) : NULL);
                json_object_array_add(jobs, j);
        }
        json_object_object_add(o, "set_name", json_object_new_string(r->set_name));
        json_object_object_add(o, "jobs", jobs);
        json_object_object_add(o, "ended_at", json_object_new_int64((int64_t) time(NULL)));
        return o;
}

/* Records the set of the run. */
int runner_run_set_created(Runner *r, const char *set_name, bool replaced) {
        json_object *past = runner_past_set_json(r);
        char *set = strdup(set_name);

        if (!set || !r->run) {
                free(set);
                json_object_put(past);
                return !set ? -ENOMEM : -EINVAL;
        }
        if (past) {
                json_object_array_add(r->past_sets, past);
                /* bounded: the oldest goes (its jobs stay upstream, listed by manager.*) */
                while (json_array_len(r->past_sets) > RUNNER_PAST_SETS_MAX) {
                        log_notice("Runner %s: forgetting its oldest past set %s (more than %d).", r->id,
                                   strna(json_str(json_object_array_get_idx(r->past_sets, 0), "set_name")),
                                   RUNNER_PAST_SETS_MAX);
                        json_object_array_del_idx(r->past_sets, 0, 1);
                }
        }
        if (replaced) {
                free(r->previous_set_name);
                r->previous_set_name = TAKE_PTR(r->set_name);
        } else
                free(r->set_name);
        r->set_name = set;
        for (size_t i = 0; i < r->n_jobs; i++)
                runner_job_clear(&r->jobs[i]);
        r->n_jobs = 0;
        /* the old set's watch goes with its jobs */
        poller_unwatch(r->watch);
        r->watch = NULL;
        json_object_object_add(r->run, "set_name", json_object_new_string(set_name));
        return runner_save(r);
}

/* Records the job about to be created. */
int runner_run_creating(Runner *r, const char *parameters_name) {
        json_object *run = json_copy(r->run);

        if (!run)
                return -ENOMEM;
        json_object_object_add(run, "creating", json_object_new_string(parameters_name));
        return runner_run_save(r, run, r->run);
}

/* Records a created job. */
int runner_run_created(Runner *r, const char *parameters_name, const char *name, const char *location) {
        int q = runner_put_job(r, parameters_name, name, location);

        if (r->run)
                json_object_object_add(r->run, "creating", NULL);
        if (q >= 0)
                q = runner_save(r);
        else
                (void) runner_save(r);
        /* followed once the run ends (runner_run_end()), as a run's jobs always were */
        return q;
}

/* The run is complete. */
int runner_run_end(Runner *r) {
        int q;

        json_object_put(r->run);
        r->run = NULL;
        q = runner_save(r);
        (void) runner_track(r);
        return q;
}

/* Drops the record of a run that created nothing. */
int runner_run_abandon(Runner *r) {
        return runner_run_end(r);
}

/* Adopts the jobs of the runner's set it does not know. */
int runner_adopt_jobs(Runner *r, json_object *jobs, json_object *adopted) {
        int n = 0;

        for (size_t i = 0; i < json_array_len(jobs); i++) {
                json_object *job = json_object_array_get_idx(jobs, i);
                const char *name = json_str(job, "name"), *pname = json_str(job, "parameters_name"),
                           *set = json_str(job, "set_name");
                _cleanup_free_ char *loc = NULL;
                RunnerJob *j;

                if (isempty(name) || isempty(pname) || runner_knows_job(r, name) ||
                    (set && r->set_name && strcasecmp(set, r->set_name) != 0))
                        continue;
                j = runner_job(r, pname);
                if (j && j->name) {
                        /* a second job of a parameters name: the runner keeps its own (said once
                         * per reconcile, not at every poll) */
                        log_full_errno(r->reconcile ? LOG_NOTICE : LOG_DEBUG, 0,
                                       "Runner %s: set %s holds job %s for %s besides the runner's %s; not adopted.",
                                       r->id, strna(r->set_name), name, pname, j->name);
                        continue;
                }
                if (asprintf(&loc, "/jobs/%s", name) < 0)
                        return -ENOMEM;
                if (j) {
                        free(j->name);
                        free(j->location);
                        j->name = strdup(name);
                        j->location = TAKE_PTR(loc);
                        if (!j->name)
                                return -ENOMEM;
                } else if (runner_append_job(r, pname, runner_config_job_kind(pname), name, loc) < 0)
                        return -ENOMEM;
                j = runner_job(r, pname);
                json_object_put(j->job);
                j->job = json_object_get(job);
                if (adopted)
                        json_object_array_add(adopted, json_object_new_string(pname));
                n++;
        }
        return n;
}

/* Asks for the runner's set to be reconciled. */
void runner_reconcile(Runner *r) {
        if (!r->set_name || r->closed)
                return;
        r->reconcile = true;
        (void) runner_track(r);
        if (r->runners)
                poller_kick(r->runners->poller, r->set_name);
}
