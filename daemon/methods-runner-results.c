/* SPDX-License-Identifier: MIT */
/*
 * Runner methods for results: list the result files of finished jobs and download one,
 * into a descriptor the caller passes or inline; the storage access they need.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "cache.h"
#include "config.h"
#include "core.h"
#include "errors.h"
#include "json-util.h"
#include "jsonrpc.h"
#include "log.h"
#include "methods-runner.h"
#include "op.h"
#include "protocol.h"
#include "runner.h"
#include "scrub.h"
#include "storage.h"

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

/* The end of a fetch waits for the save of what it stored; the fetch may go first. */
struct ResultsSave {
        ResultsFetch *fetch;     /* NULL once the fetch went */
};

/* Saves the runner (off the event loop, without waiting) if the fetch stored results in it,
 * and forgets a save the fetch waits for. For the cleanup of an Op that may go in the middle
 * of a fetch; NULL-runner safe (a fetch never started). A failed save leaves the runner
 * unsaved, for the retries (runner.h). Returns 0 or -ENOMEM. */
int results_fetch_flush(ResultsFetch *f) {
        if (f->saving) {
                f->saving->fetch = NULL;
                f->saving = NULL;
        }
        if (!f->dirty)
                return 0;
        f->dirty = false;
        return runner_save_async(f->runner, NULL, NULL);
}

/* The save of what the fetch stored ended: the fetch ends. The results stay in memory when
 * the save failed, and the call fails (state_not_saved, kept): a call repeated finds them
 * there. */
static void on_results_saved(Runner *r, int error, void *userdata) {
        _cleanup_(api_error_done) ApiError e = { .retry_after_ms = -1 };
        ResultsSave *s = userdata;
        ResultsFetch *f = s->fetch;

        free(s);
        if (!f)
                return;
        f->saving = NULL;
        if (error < 0)
                api_error_not_saved(&e, r, error, true);
        f->cb(f->op, error < 0 ? &e : NULL);
}

/* Ends the fetch: saves what it stored, then calls back with the outcome. */
static void results_fetch_end(ResultsFetch *f, const ApiError *err) {
        ResultsSave *s;

        if (!err && f->dirty && (s = calloc(1, sizeof(ResultsSave)))) {
                f->dirty = false;
                s->fetch = f;
                f->saving = s;
                if (runner_save_async(f->runner, on_results_saved, s) >= 0)
                        return;
                f->saving = NULL;
                free(s);
                f->dirty = true;
        }
        (void) results_fetch_flush(f);
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
void results_fetch_next(ResultsFetch *f) {
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
                read = op_read_of(f->op->core, key, path, "GET /results/{job}", 0);
                q = cache_get(f->op->core->cache, &read, on_results_fetched, f, &f->op->waiter);
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

        (void) results_fetch_flush(&l->fetch);
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

/* Releases what an access request holds (its Op's cleanup, or its end). */
void access_done(AccessReq *a) {
        free(a->url);
        a->url = NULL;
}

/* Whether the configured server is known to lack POST /access/batch. */
static bool access_batch_missing(const Core *s) {
        return s->runners && s->runners->access_batch_missing &&
               streq(s->runners->access_batch_missing, s->config->api_url);
}

/* Remembers that the configured server lacks POST /access/batch (a new API URL forgets it). */
static void access_batch_set_missing(Core *s) {
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
        /* kept out of every text from now on, should the storage or the server echo it */
        if (scrub_remember(json_str(creds, "secret_access_key")) < 0) {
                ApiError e = { .retry_after_ms = -1 };

                api_error_setf(&e, RPC_INTERNAL_ERROR, "Out of memory");
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
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .flags = API_SECRET_ANSWER, .label = "GET /access" };
        return api_start(a->op->core->api, &call, on_access_single, a, &a->op->req);
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
                access_batch_set_missing(op->core);
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
int access_start(Op *op, AccessReq *a, const char *url, access_cb cb) {
        json_object *body = NULL;
        ApiCall call;
        int q;

        access_done(a);
        *a = (AccessReq){ .op = op, .cb = cb, .url = strdup(url) };
        if (!a->url)
                return -ENOMEM;
        if (access_batch_missing(op->core))
                q = access_single_start(a);
        else {
                body = json_object_new_array();
                if (!body)
                        q = -ENOMEM;
                else {
                        json_object_array_add(body, json_object_new_string(url));
                        call = (ApiCall){ .method = UPSTREAM_POST, .path = "/access/batch", .json = body,
                                          .flags = API_IDEMPOTENT | API_SECRET_ANSWER, .label = "POST /access/batch" };
                        q = api_start(op->core->api, &call, on_access_batch, a, &op->req);
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
        (void) results_fetch_flush(&d->fetch);
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
                if (data && res->error != -EFBIG)
                        json_object_object_add(data, "retryable", json_object_new_boolean(op_storage_retryable(res)));
                c = op_finish(&d->op);
                call_reply_error(c, res->error == -EFBIG ? RPC_INVALID_PARAMS :
                                    res->fd_failed ? RPC_IO_ERROR :
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
        notifier_send(d->op.call, &d->notifier, "runner.progress", p);
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
                q = storage_get_fd(op->core->storage, s3url, cred, d->fd, on_download_progress, on_downloaded, d,
                                   &d->storage);
        else
                q = storage_get_memory(op->core->storage, s3url, cred, PROTO_INLINE_RESULT_MAX, on_downloaded, d,
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
        struct stat st;
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
        notifier_init(&d->notifier);
        if (table && !(d->table = strdup(table)))
                return op_start_failed(&d->op, -ENOMEM);
        if (json_object_object_get_ex(params, "fd", &fdp) && fdp) {
                d->fd = call_take_fd_param(c, fdp);
                if (d->fd < 0) {
                        op_start_failed(&d->op, 0);
                        return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL,
                                                 "Invalid params: 'fd' names no descriptor sent with this message");
                }
                if (fstat(d->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
                        op_start_failed(&d->op, 0);
                        return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL,
                                                 "Invalid params: 'fd' names a directory; pass a file, a pipe or a socket");
                }
        }
        d->fetch = (ResultsFetch){ .runner = r, .only = d->pname, .cb = on_download_results, .op = &d->op };
        results_fetch_next(&d->fetch);
        return 0;
}

const MethodDef methods_runner_results[] = {
        { "runner.list_results", method_list_results, 0 },
        { "runner.download", method_download, 0 },
        {}
};
