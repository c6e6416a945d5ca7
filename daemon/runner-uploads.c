/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "json-util.h"
#include "jsonrpc.h"
#include "log.h"
#include "macro.h"
#include "runner-uploads.h"
#include "scrub.h"

typedef struct UploadAbort UploadAbort;

/* The aborts in flight, the registry's (rs->uploads). */
struct RunnerUploads {
        LIST_HEAD(, UploadAbort) aborts;
};

/* The abort of one record: GET /access for its credentials, then storage_abort_uploads(). */
struct UploadAbort {
        Storage *storage;        /* borrowed */
        Runner *runner;          /* a reference */
        char *table;
        char *url;
        char *upload_id;         /* NULL: every upload of the key */
        ApiRequest *req;
        StorageOp *op;
        LIST_ENTRY(UploadAbort) link;
};

/* The index of the record of url, or -1. */
static int record_index(const Runner *r, const char *url) {
        for (size_t i = 0; i < json_array_len(r->uploads); i++)
                if (streq_ptr(json_str(json_object_array_get_idx(r->uploads, i), "url"), url))
                        return (int) i;
        return -1;
}

/* Records an upload's intent or id. */
int runner_upload_record(Runner *r, const char *table, const char *url, const char *upload_id,
                         runner_saved_cb cb, void *userdata) {
        json_object *rec;
        int i;

        if (!r->uploads && !(r->uploads = json_object_new_array()))
                return -ENOMEM;
        i = record_index(r, url);
        if (i < 0) {
                rec = json_object_new_object();
                if (!rec || json_object_array_add(r->uploads, rec) < 0) {
                        json_object_put(rec);
                        return -ENOMEM;
                }
                json_object_object_add(rec, "table", json_object_new_string(table));
                json_object_object_add(rec, "url", json_object_new_string(url));
                json_object_object_add(rec, "recorded_at", json_object_new_int64((int64_t) time(NULL)));
        } else
                rec = json_object_array_get_idx(r->uploads, (size_t) i);
        json_object_object_add(rec, "upload_id", upload_id ? json_object_new_string(upload_id) : NULL);
        if (!json_str(rec, "url") || (upload_id && !json_str(rec, "upload_id"))) {
                runner_upload_forget(r, url);
                return -ENOMEM;
        }
        return runner_save_async(r, cb, userdata);
}

/* Drops a record. */
void runner_upload_forget(Runner *r, const char *url) {
        int i = record_index(r, url);

        if (i >= 0)
                json_object_array_del_idx(r->uploads, (size_t) i, 1);
}

/* Whether the runner records uploads. */
bool runner_has_uploads(const Runner *r) {
        return json_array_len(r->uploads) > 0;
}

/* ---- aborts -------------------------------------------------------------------------------- */

/* Ends an abort (its request and operation cancelled, without callback). */
static void upload_abort_free(UploadAbort *ab) {
        if (!ab)
                return;
        LIST_REMOVE(ab, link);
        api_cancel(ab->req);
        storage_cancel(ab->op);
        runner_unref(ab->runner);
        free(ab->table);
        free(ab->url);
        free(ab->upload_id);
        free(ab);
}

/* The registry's end: every abort in flight ends (their records stay, for the next start). */
static void runner_uploads_free(struct RunnerUploads *u) {
        if (!u)
                return;
        while (!LIST_EMPTY(&u->aborts))
                upload_abort_free(LIST_FIRST(&u->aborts));
        free(u);
}

/* An abort failed: the record stays for the next start or add_table. */
static void upload_abort_failed(UploadAbort *ab, const char *why) {
        log_warning("Runner %s: the multipart upload of table '%s' that an interrupted runner.add_table left "
                    "(%s) could not be aborted: %s. Its record stays: tried again at the next start or "
                    "runner.add_table of the table.",
                    ab->runner->id, strna(ab->table), ab->upload_id ? "upload id known" : "upload id unknown",
                    strna(why));
        upload_abort_free(ab);
}

/* The storage answered the abort. */
static void on_upload_aborted(const StorageResult *res, void *userdata) {
        UploadAbort *ab = userdata;
        Runner *r = ab->runner;
        int i;

        ab->op = NULL;
        if (res->error < 0) {
                upload_abort_failed(ab, res->message);
                return;
        }
        log_info("Runner %s: the multipart upload of table '%s' that an interrupted runner.add_table left is "
                 "gone (%" PRIu64 " aborted now).", r->id, strna(ab->table), res->bytes);
        /* the record is dropped unless it names another upload by now */
        i = record_index(r, ab->url);
        if (i >= 0 && (!ab->upload_id ||
                       streq_ptr(json_str(json_object_array_get_idx(r->uploads, (size_t) i), "upload_id"),
                                 ab->upload_id))) {
                json_object_array_del_idx(r->uploads, (size_t) i, 1);
                /* a failure leaves the runner unsaved, for the retries (runner.h) */
                (void) runner_save_async(r, NULL, NULL);
        }
        upload_abort_free(ab);
}

/* The credentials for the record's object arrived. */
static void on_upload_abort_access(const ApiResponse *resp, const ApiError *err, void *userdata) {
        UploadAbort *ab = userdata;
        json_object *creds = NULL;
        StorageCredentials sc;
        int q;

        ab->req = NULL;
        if (err) {
                upload_abort_failed(ab, err->message);
                return;
        }
        if (!json_object_object_get_ex(resp->json, "credentials", &creds) || !json_str(creds, "access_key_id") ||
            !json_str(creds, "secret_access_key")) {
                upload_abort_failed(ab, "the answer to GET /access holds no storage credentials");
                return;
        }
        sc = (StorageCredentials){ json_str(creds, "access_key_id"), json_str(creds, "secret_access_key") };
        q = scrub_remember(sc.secret_access_key);
        if (q >= 0)
                q = storage_abort_uploads(ab->storage, ab->url, &sc, ab->upload_id, on_upload_aborted, ab, &ab->op);
        explicit_bzero((char *) sc.secret_access_key, strlen(sc.secret_access_key));
        if (q < 0)
                upload_abort_failed(ab, strerror(-q));
}

/* Whether the abort of a record is in flight already. */
static bool upload_abort_running(const struct RunnerUploads *u, const Runner *r, const char *url) {
        const UploadAbort *ab;

        LIST_FOREACH(ab, &u->aborts, link)
                if (ab->runner == r && streq(ab->url, url))
                        return true;
        return false;
}

/* Starts the abort of one record. Returns 1 when started, 0 when not (logged), -ENOMEM. */
static int upload_abort_start(Runners *rs, Api *api, Storage *storage, const char *api_url, Runner *r,
                              json_object *rec) {
        _cleanup_free_ char *envelope = NULL, *esc = NULL, *path = NULL;
        const char *url = json_str(rec, "url"), *id = json_str(rec, "upload_id");
        UploadAbort *ab;
        ApiCall call;
        int q;

        if (!url || upload_abort_running(rs->uploads, r, url))
                return 0;
        ab = calloc(1, sizeof(UploadAbort));
        if (!ab)
                return -ENOMEM;
        LIST_INSERT_HEAD(&rs->uploads->aborts, ab, link);
        ab->storage = storage;
        ab->runner = runner_ref(r);
        ab->table = strdup(json_str(rec, "table") ?: "");
        ab->url = strdup(url);
        ab->upload_id = id ? strdup(id) : NULL;
        if (!ab->table || !ab->url || (id && !ab->upload_id) ||
            asprintf(&envelope, "%s/access?url=%s", api_url, url) < 0 || !(esc = api_escape(envelope)) ||
            asprintf(&path, "/access?url=%s", esc) < 0) {
                upload_abort_free(ab);
                return -ENOMEM;
        }
        call = (ApiCall){ .method = UPSTREAM_GET, .path = path, .flags = API_SECRET_ANSWER, .label = "GET /access" };
        q = api_start(api, &call, on_upload_abort_access, ab, &ab->req);
        if (q < 0) {
                ab->req = NULL;
                upload_abort_failed(ab, strerror(-q));
                return q == -ENOMEM ? q : 0;
        }
        return 1;
}

/* Aborts what the upload records name. */
int runners_abort_uploads(Runners *rs, Api *api, Storage *storage, const char *api_url, Runner *only,
                          const char *table, const char *url) {
        Runner *r;
        int n = 0, q;

        if (!rs || !api || !storage || !api_url)
                return 0;
        TAILQ_FOREACH(r, &rs->list, link) {
                if ((only && r != only) || r->closed || !runner_has_uploads(r))
                        continue;
                if (!rs->uploads) {
                        rs->uploads = calloc(1, sizeof(struct RunnerUploads));
                        if (!rs->uploads)
                                return -ENOMEM;
                        LIST_INIT(&rs->uploads->aborts);
                        rs->uploads_free = runner_uploads_free;
                }
                for (size_t i = 0; i < json_array_len(r->uploads); i++) {
                        json_object *rec = json_object_array_get_idx(r->uploads, i);

                        if ((table && !streq_ptr(json_str(rec, "table"), table)) ||
                            (url && !streq_ptr(json_str(rec, "url"), url)))
                                continue;
                        q = upload_abort_start(rs, api, storage, api_url, r, rec);
                        if (q < 0)
                                return q;
                        n += q;
                }
        }
        if (n > 0)
                log_info("Aborting %d multipart upload record(s) left by interrupted uploads.", n);
        return n;
}
