/* SPDX-License-Identifier: MIT */
/*
 * Runner methods for the data and its parameters: add tables (uploading them from the
 * caller's descriptor or inline data to storage), links, set and update parameters, delete
 * tables, links and parameters, and ask the server for advice and apply it.
 */
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "core.h"
#include "errors.h"
#include "json-util.h"
#include "jsonrpc.h"
#include "log.h"
#include "methods-runner.h"
#include "op.h"
#include "runner-config.h"
#include "runner-uploads.h"
#include "runner.h"
#include "scrub.h"
#include "storage.h"

/* Results downloaded to memory for the daemon's own use (advice JSON). */
#define RESULT_MEMORY_MAX (16u * 1024u * 1024u)

/* ---- runner.add_table ------------------------------------------------------------------ */

/* Random bytes in the folder of one upload (shown as hex). */
#define UPLOAD_NONCE_BYTES 16

typedef struct UploadItem {
        char *key;                /* object key, e.g. "<runner id>/<32 hex>/iris.csv" */
        int fd;                   /* -1 for inline data */
        int64_t size;
        char *inline_data;
        size_t inline_len;
        char *storage_url;        /* s3://... */
        uint64_t bytes;
} UploadItem;

/* A save of an upload's record that the upload waits for; the Op lets go of it when it ends
 * first (a->record = NULL). */
typedef struct UploadRecordWait {
        struct AddTableOp *add;  /* NULL once the Op went */
        StorageOp *storage;      /* the upload that waits */
} UploadRecordWait;

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
        UploadRecordWait *record;  /* the save of the upload's record in flight, or NULL */
        int record_error;          /* that save failed: the upload is refused (state_not_saved) */
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

        if (a->record)
                a->record->add = NULL;
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
        RunnerSnapshot snap;
        Call *c;
        int q;

        if (!t || !up || runner_snapshot(r, &snap) < 0) {
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
                runner_snapshot_done(&snap);
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
        o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "runner_id", json_object_new_string(r->id));
                json_object_object_add(o, "table_name", json_object_new_string(table));
                json_object_object_add(o, "upload", json_object_get(up));
                json_object_object_add(o, "tables", runner_config_tables(r->docs));
                json_object_object_add(o, "subscription", json_object_new_string(a->notifier.id));
        }
        json_object_put(up);
        /* table points into a->params, which op_finish() frees */
        log_ctx(LOG_INFO, &a->op.call->log, "Runner %s: added table '%s' (%s), saving.", r->id, table, "uploaded");
        /* replied once saved; if it cannot be, the table is undone (the uploaded objects stay in
         * storage, named by no runner: a call repeated uploads again into a new folder) */
        runner_ref(r);
        c = op_finish(&a->op);
        q = runner_commit_reply(c, r, &snap, o);
        if (q < 0)
                call_reply_errno(c, q, NULL);
        runner_unref(r);
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
        notifier_send(a->op.call, &a->notifier, "runner.progress", p);
}

/* The object is stored. */
static void on_uploaded(const StorageResult *res, void *userdata) {
        AddTableOp *a = userdata;
        UploadItem *it = &a->items[a->cur];

        a->storage = NULL;
        if (res->error < 0) {
                json_object *data;

                /* the upload is aborted: its record goes, or, when that is not sure, once an
                 * abort is confirmed */
                if (res->upload_left)
                        (void) runners_abort_uploads(a->op.core->runners, a->op.core->api, a->op.core->storage,
                                                     a->op.core->config->api_url, a->runner, NULL, it->storage_url);
                else if (runner_has_uploads(a->runner)) {
                        runner_upload_forget(a->runner, it->storage_url);
                        /* a failure leaves the runner unsaved, for the retries (runner.h) */
                        (void) runner_save_async(a->runner, NULL, NULL);
                }
                if (a->record_error < 0) {
                        reply_not_saved(op_finish(&a->op), a->runner, a->record_error, false);
                        return;
                }
                data = json_object_new_object();
                if (data) {
                        if (res->status > 0)
                                json_object_object_add(data, "status", json_object_new_int64(res->status));
                        if (res->s3_code)
                                json_object_object_add(data, "code", json_object_new_string(res->s3_code));
                        json_object_object_add(data, "file", json_object_new_string(it->key));
                        json_object_object_add(data, "retryable", json_object_new_boolean(op_storage_retryable(res)));
                }
                add_table_fail(a, res->fd_failed ? RPC_IO_ERROR :
                                  res->error == -EREMOTEIO || res->status > 0 ? RPC_STORAGE_ERROR :
                                  rpc_error_code_from_errno(res->error), data, res->message);
                return;
        }
        it->bytes = res->bytes;
        /* complete: its record goes with the table's save */
        runner_upload_forget(a->runner, it->storage_url);
        a->cur++;
        upload_next(a);
}

/* The save of an upload's record ended: the upload goes on, or fails with the save's error. */
static void on_upload_recorded(Runner *r, int error, void *userdata) {
        UploadRecordWait *w = userdata;
        AddTableOp *a = w->add;
        StorageOp *op = w->storage;

        free(w);
        if (!a)
                return; /* the Op went, and its upload with it */
        a->record = NULL;
        if (error < 0) {
                UploadItem *it = &a->items[a->cur];
                int i = -1;

                a->record_error = error;
                /* an intent whose save failed names nothing upstream */
                for (size_t k = 0; k < json_array_len(r->uploads); k++)
                        if (streq_ptr(json_str(json_object_array_get_idx(r->uploads, k), "url"), it->storage_url) &&
                            !json_str(json_object_array_get_idx(r->uploads, k), "upload_id"))
                                i = (int) k;
                if (i >= 0)
                        runner_upload_forget(r, it->storage_url);
        }
        storage_upload_recorded(op, error);
}

/* The storage is about to create a multipart upload (upload_id NULL) or has created it: the
 * runner records it before anything more goes upstream (runner-uploads.h). */
static int on_upload_record(StorageOp *op, const char *upload_id, void *userdata) {
        AddTableOp *a = userdata;
        UploadItem *it = &a->items[a->cur];
        UploadRecordWait *w;
        int q;

        w = calloc(1, sizeof(UploadRecordWait));
        if (!w)
                return -ENOMEM;
        *w = (UploadRecordWait){ .add = a, .storage = op };
        a->record = w;
        q = runner_upload_record(a->runner, json_str(a->params, "table_name"), it->storage_url, upload_id,
                                 on_upload_recorded, w);
        if (q < 0) {
                a->record = NULL;
                free(w);
                return q;
        }
        return 1;
}

/* The storage credentials for the item arrived: upload. */
static void on_upload_access(const ApiResponse *resp, const ApiError *err, void *userdata) {
        AddTableOp *a = userdata;
        UploadItem *it = &a->items[a->cur];
        json_object *creds;
        StorageCredentials sc;
        StorageUploadHook hook = { .cb = on_upload_record, .userdata = a };
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
        /* kept out of every text from now on, should the storage or the server echo it */
        if (scrub_remember(sc.secret_access_key) < 0) {
                call_reply_errno(op_finish(&a->op), -ENOMEM, NULL);
                return;
        }
        if (it->fd >= 0)
                q = storage_put_fd_hooked(a->op.core->storage, it->storage_url, &sc, it->fd, it->size, &hook,
                                          on_upload_progress, on_uploaded, a, &a->storage);
        else
                q = storage_put_memory_hooked(a->op.core->storage, it->storage_url, &sc, it->inline_data,
                                              it->inline_len, &hook, on_uploaded, a, &a->storage);
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
            asprintf(&envelope, "%s/access?url=%s", a->op.core->config->api_url, it->storage_url) < 0 ||
            !(esc = api_escape(envelope)) || asprintf(&path, "/access?url=%s", esc) < 0) {
                call_reply_errno(op_finish(&a->op), -ENOMEM, NULL);
                return;
        }
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .flags = API_SECRET_ANSWER, .label = "GET /access" };
        q = api_start(a->op.core->api, &call, on_upload_access, a, &a->op.req);
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
        q = api_start(a->op.core->api, &call, on_upload_url, a, &a->op.req);
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

/* The folder of one upload's objects under the account's upload base, which every user of
 * the account shares: the runner's id and 128 random bits. No two runners (nor two uploads
 * of one) write the same object, and no one can name another's object from its table name:
 * the key is known to the runner's owner (and admins) only. Malloc'd in *ret. */
static int upload_folder(const Runner *r, char **ret) {
        uint8_t b[UPLOAD_NONCE_BYTES];
        char hex[2 * UPLOAD_NONCE_BYTES + 1];

        if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b))
                return -EIO;
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(hex + 2 * i, 3, "%02x", b[i]);
        explicit_bzero(b, sizeof(b));
        return asprintf(ret, "%s/%s", r->id, hex) < 0 ? -ENOMEM : 0;
}

/* Whether the size of a regular file tells how much it holds. procfs and sysfs make up their
 * sizes (0, or a page, whatever the content), and so may other kernel file systems, whose
 * files say 0 and still read: uploading st_size bytes would store an empty or cut table. A
 * file that says 0 is probed for one byte (a regular file answers at once). */
static bool regular_file_sized(int fd, const struct stat *st) {
        struct statfs fs;
        char b;

        if (fstatfs(fd, &fs) == 0 && (fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC))
                return false;
        return st->st_size > 0 || pread(fd, &b, 1, 0) != 1;
}

/* Prepares one upload item from a "data"-like param: {"fd": N} or an inline string. The
 * object is FOLDER/<table><suffix><extension>. */
static int upload_item_init(Call *c, UploadItem *it, json_object *value, const char *folder, const char *table,
                            const char *suffix, const char *file_name) {
        struct stat st;

        it->fd = -1;
        if (asprintf(&it->key, "%s/%s%s%s", folder, table, suffix, extension_of(file_name)) < 0)
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
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (S_ISREG(st.st_mode) && !regular_file_sized(it->fd, &st))
                return -ESPIPE;
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
        _cleanup_free_ char *folder = NULL;
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
        notifier_init(&a->notifier);
        a->items[0].fd = a->items[1].fd = -1;
        if (!a->params)
                return op_start_failed(&a->op, -ENOMEM);
        json_object_object_del(a->params, "runner_id");
        json_object_object_del(a->params, "data");
        json_object_object_del(a->params, "avatar_data");
        json_object_object_del(a->params, "file_name");
        json_object_object_del(a->params, "avatar_file_name");

        a->n_items = 1;
        q = upload_folder(r, &folder);
        if (q >= 0)
                q = upload_item_init(c, &a->items[0], json_object_object_get(params, "data"), folder, table, "",
                                     json_str(params, "file_name"));
        if (q >= 0 && json_object_object_get_ex(params, "avatar_data", &v) && v) {
                a->n_items = 2;
                q = upload_item_init(c, &a->items[1], v, folder, table, "_avatars",
                                     json_str(params, "avatar_file_name") ?: json_str(params, "file_name"));
        }
        if (q == -EBADF) {
                op_start_failed(&a->op, 0);
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL,
                                         "Invalid params: data must be inline text or {\"fd\": N} naming a descriptor sent with this message");
        }
        if (q == -EISDIR || q == -ESPIPE) {
                op_start_failed(&a->op, 0);
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL, "Invalid params: %s",
                                         q == -EISDIR ? "the descriptor names a directory; pass a file, a pipe or a socket" :
                                         "the descriptor names a file whose size the kernel does not tell (procfs, sysfs); "
                                         "pass its content through a pipe, or inline");
        }
        if (q < 0)
                return op_start_failed(&a->op, q);
        /* what an earlier add_table of the table left upstream when the daemon was stopped */
        q = runners_abort_uploads(c->core->runners, c->core->api, c->core->storage, c->core->config->api_url, r,
                                  table, NULL);
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
        _cleanup_(runner_snapshot_done) RunnerSnapshot snap = {};
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        if (runner_snapshot(r, &snap) < 0)
                return -ENOMEM;
        q = runner_config_add_link(r->docs, json_str(params, "parent_table_name"), json_str(params, "parent_field"),
                                   json_str(params, "child_table_name"), json_str(params, "child_field"),
                                   json_str(params, "method"), &err);
        if (q == -EINVAL)
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL, "Invalid params: %s", strna(err));
        if (q < 0)
                return q;
        return runner_commit_reply(c, r, &snap, runner_status_json(r, false));
}

/* set_parameters and update_parameters: apply, then reply with the table's parameters and
 * the warnings this call raised. */
static int parameters_common(Call *c, json_object *params, bool update) {
        Runner *r = runner_for_call(c, params);
        _cleanup_free_ char *err = NULL;
        const char *table = json_str(params, "table_name");
        _cleanup_(runner_snapshot_done) RunnerSnapshot snap = {};
        json_object *p, *warnings, *o;
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        if (runner_snapshot(r, &snap) < 0)
                return -ENOMEM;
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
        o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "runner_id", json_object_new_string(r->id));
                json_object_object_add(o, "table_name", json_object_new_string(table));
                json_object_object_add(o, "parameters", runner_config_get_parameters(r->docs, table));
                json_object_object_add(o, "warnings", warnings);
        } else
                json_object_put(warnings);
        return runner_commit_reply(c, r, &snap, o);
}

/* runner.set_parameters */
static int method_set_parameters(Call *c, json_object *params) {
        return parameters_common(c, params, false);
}

/* runner.update_parameters */
static int method_update_parameters(Call *c, json_object *params) {
        return parameters_common(c, params, true);
}

/* ---- runner.delete_table, delete_link, delete_parameters (synchronous) ---------------------- */

/* Replies not_found for a table the runner does not have, naming it (and the runner). */
static int reply_no_table(Call *c, Runner *r, const char *table) {
        json_object *data = json_object_new_object();

        if (data) {
                json_object_object_add(data, "runner_id", json_object_new_string(r->id));
                json_object_object_add(data, "table_name", json_object_new_string(table));
        }
        return call_reply_errorf(c, RPC_NOT_FOUND, data, "Runner %s has no table '%s'", r->id, table);
}

/* runner.delete_table: the table, its links and its parameters go. */
static int method_delete_table(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        const char *table = json_str(params, "table_name");
        _cleanup_(runner_snapshot_done) RunnerSnapshot snap = {};
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        if (runner_snapshot(r, &snap) < 0)
                return -ENOMEM;
        q = runner_config_delete_table(r->docs, table);
        if (q == -ENOENT)
                return reply_no_table(c, r, table);
        if (q < 0)
                return q;
        json_object_object_del(r->tables, table);
        log_ctx(LOG_INFO, &c->log, "Runner %s: deleted table '%s', saving.", r->id, table);
        return runner_commit_reply(c, r, &snap, runner_status_json(r, false));
}

/* runner.delete_link */
static int method_delete_link(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        const char *parent = json_str(params, "parent_table_name"), *child = json_str(params, "child_table_name");
        _cleanup_(runner_snapshot_done) RunnerSnapshot snap = {};
        json_object *data;
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        if (runner_snapshot(r, &snap) < 0)
                return -ENOMEM;
        q = runner_config_delete_link(r->docs, parent, child);
        if (q == -ENOENT) {
                data = json_object_new_object();
                if (data) {
                        json_object_object_add(data, "runner_id", json_object_new_string(r->id));
                        json_object_object_add(data, "parent_table_name", json_object_new_string(parent));
                        json_object_object_add(data, "child_table_name", json_object_new_string(child));
                }
                return call_reply_errorf(c, RPC_NOT_FOUND, data, "Runner %s has no link from table '%s' to table '%s'",
                                         r->id, parent, child);
        }
        if (q < 0)
                return q;
        return runner_commit_reply(c, r, &snap, runner_status_json(r, false));
}

/* runner.delete_parameters: parameters_names absent or null removes them all. */
static int method_delete_parameters(Call *c, json_object *params) {
        Runner *r = runner_for_call(c, params);
        const char *table = json_str(params, "table_name");
        _cleanup_free_ char *err = NULL;
        json_object *names = NULL, *unknown = NULL, *o;
        _cleanup_(runner_snapshot_done) RunnerSnapshot snap = {};
        int q;

        if (!r || runner_busy_reply(c, r))
                return 0;
        if (runner_snapshot(r, &snap) < 0)
                return -ENOMEM;
        (void) json_object_object_get_ex(params, "parameters_names", &names);
        q = runner_config_delete_parameters(r->docs, r->options, table, names, &unknown, &err);
        if (q == -ENOENT)
                return reply_no_table(c, r, table);
        if (q == -EINVAL) {
                json_object *data = json_object_new_object();

                if (data && unknown)
                        json_object_object_add(data, "unknown", unknown);
                else
                        json_object_put(unknown);
                return call_reply_errorf(c, RPC_INVALID_PARAMS, data, "Invalid params: %s", strna(err));
        }
        if (q < 0)
                return q;
        o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "runner_id", json_object_new_string(r->id));
                json_object_object_add(o, "table_name", json_object_new_string(table));
                json_object_object_add(o, "parameters", runner_config_get_parameters(r->docs, table));
                json_object_object_add(o, "warnings", json_object_new_array());
        }
        return runner_commit_reply(c, r, &snap, o);
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
        (void) results_fetch_flush(&a->fetch);
        if (a->runner) {
                a->runner->busy = NULL;
                runner_unref(a->runner);
        }
}

/* Applies the advice to the tables and replies. */
static void advise_apply(AdviseOp *a) {
        Runner *r = a->runner;
        json_object *warnings = json_object_new_array(), *params = json_object_new_object(), *o;
        RunnerSnapshot snap;
        Call *c;
        int q;

        if (!warnings || !params || runner_snapshot(r, &snap) < 0) {
                json_object_put(warnings);
                json_object_put(params);
                call_reply_errno(op_finish(&a->op), -ENOMEM, NULL);
                return;
        }
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
        o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "runner_id", json_object_new_string(r->id));
                json_object_object_add(o, "set_name", r->set_name ? json_object_new_string(r->set_name) : NULL);
                json_object_object_add(o, "advice", json_object_get(a->advice));
                json_object_object_add(o, "parameters", params);
                json_object_object_add(o, "warnings", warnings);
        } else {
                json_object_put(params);
                json_object_put(warnings);
        }
        /* replied once saved; the advice job stays the runner's (saved when it was created) */
        runner_ref(r);
        c = op_finish(&a->op);
        q = runner_commit_reply(c, r, &snap, o);
        if (q < 0)
                call_reply_errno(c, q, NULL);
        runner_unref(r);
}

static void advise_next_file(AdviseOp *a);

/* One advice file arrived. */
static void on_advice_file(const StorageResult *res, void *userdata) {
        AdviseOp *a = userdata;
        json_object *j = NULL;

        a->storage = NULL;
        if (res->error < 0) {
                json_object *data = json_object_new_object();

                if (data)
                        json_object_object_add(data, "retryable", json_object_new_boolean(op_storage_retryable(res)));
                call_reply_error(op_finish(&a->op), RPC_STORAGE_ERROR, res->message, data);
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
        q = storage_get_memory(op->core->storage, s3url, cred, RESULT_MEMORY_MAX, on_advice_file, a, &a->storage);
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
        if (asprintf(&loc, "/jobs/%s", name) < 0) {
                call_reply_errno(op_finish(&a->op), -ENOMEM, NULL);
                return;
        }
        q = runner_add_job(a->runner, "advice_parameters", name, loc);
        if (q == -ENOMEM) {
                call_reply_errno(op_finish(&a->op), q, NULL);
                return;
        }
        if (q < 0) {
                /* the job exists upstream: the runner keeps it, unsaved, for the retries */
                reply_not_saved(op_finish(&a->op), a->runner, q, true);
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
        q = api_start(a->op.core->api, &call, on_advice_job, a, &a->op.req);
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
        /* advice would replace the set an interrupted run is to be finished in */
        if (r->run && r->set_name)
                return call_reply_errorf(c, RPC_INVALID_STATE, NULL,
                                         "Runner %s has a run interrupted in set %s: finish it first with runner.run "
                                         "(avatarctl runner run %s)", r->id, r->set_name, r->id);
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
        a->deadline = evtimer_new(c->core->base, on_advise_deadline, a);
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

const MethodDef methods_runner_tables[] = {
        { "runner.add_table", method_add_table, METHOD_MUTATING },
        { "runner.add_link", method_add_link, METHOD_MUTATING },
        { "runner.set_parameters", method_set_parameters, METHOD_MUTATING },
        { "runner.update_parameters", method_update_parameters, METHOD_MUTATING },
        { "runner.delete_table", method_delete_table, METHOD_MUTATING },
        { "runner.delete_link", method_delete_link, METHOD_MUTATING },
        { "runner.delete_parameters", method_delete_parameters, METHOD_MUTATING },
        { "runner.advise_parameters", method_advise_parameters, METHOD_MUTATING },
        {}
};
