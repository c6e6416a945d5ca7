/* SPDX-License-Identifier: MIT */
/*
 * What a client stopped in the middle of a multipart upload left upstream: with the upload
 * id, AbortMultipartUpload (NoSuchUpload: completed or aborted already, nothing to do);
 * without it (the client was stopped before CreateMultipartUpload's answer), the uploads in
 * progress of exactly that key, found with ListMultipartUploads (the key as prefix), each
 * aborted in turn.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "storage-internal.h"

/* Uploads of one key aborted by one operation, at most (a listing holds 1000 at most). */
#define STORAGE_ABORT_IDS_MAX 1000u

static void abort_send(StorageOp *op);

/* Whether an answer says the upload is gone: 404 NoSuchUpload (or a bare 404). */
static bool answer_no_such_upload(const UpstreamResponse *resp) {
        _cleanup_free_ char *code = NULL;

        if (resp->status != 404)
                return false;
        if (resp->body_len == 0)
                return true;
        return xml_element_text(resp->body, resp->body_len, "Code", &code) >= 0 &&
               streq(code, "NoSuchUpload");
}

/* Aborts the next upload, or ends. */
static void abort_next(StorageOp *op) {
        if (op->abort_next >= op->n_abort_ids) {
                storage_op_finish(op);
                return;
        }
        abort_send(op);
}

/* Upstream: AbortMultipartUpload answered. */
static void on_abort_answer(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;

        op->req = NULL;
        if (storage_op_answer_handled(op, resp, "AbortMultipartUpload", abort_send))
                return;
        if (resp->status / 100 == 2)
                op->sent++;
        else if (!answer_no_such_upload(resp)) {
                storage_op_set_error_answer(op, resp, "AbortMultipartUpload");
                storage_op_fail(op);
                return;
        }
        log_debug("s3://%s/%s: upload %.16s… %s", op->bucket, op->key,
                  op->abort_ids[op->abort_next], resp->status / 100 == 2 ? "aborted" : "was gone already");
        op->abort_next++;
        abort_next(op);
}

/* Sends AbortMultipartUpload for the current upload (again, after a transient answer). */
static void abort_send(StorageOp *op) {
        UpstreamCall call = {
                .method = UPSTREAM_DELETE,
                .headers = storage_headers_plain,
                .idempotent = true,
                .label = "S3 AbortMultipartUpload",
        };
        int r;

        r = storage_op_request(op, &call,
                               (const char *const[]) { "uploadId", op->abort_ids[op->abort_next], NULL },
                               on_abort_answer);
        if (r < 0) {
                storage_op_set_error(op, r, 0, NULL, "AbortMultipartUpload: %s", strerror(-r));
                storage_op_fail(op);
                return;
        }
        op->phase = PHASE_ABORT;
}

/* Keeps an upload id to abort. */
static int abort_ids_add(StorageOp *op, char *id) {
        char **n;

        if (op->n_abort_ids >= STORAGE_ABORT_IDS_MAX) {
                free(id);
                return 0; /* the next listing finds the rest */
        }
        n = reallocarray(op->abort_ids, op->n_abort_ids + 1, sizeof(char *));
        if (!n) {
                free(id);
                return -ENOMEM;
        }
        op->abort_ids = n;
        op->abort_ids[op->n_abort_ids++] = id;
        return 0;
}

/* Keeps the uploads of a ListMultipartUploads answer whose key is exactly ours (the prefix
 * also matches longer keys). */
static int list_parse(StorageOp *op, const char *xml, size_t len) {
        static const char open_tag[] = "<Upload>", close_tag[] = "</Upload>";
        const char *p = xml, *end = xml + len;

        while (p < end) {
                const char *b = memmem(p, (size_t) (end - p), open_tag, strlen(open_tag)), *e;
                _cleanup_free_ char *key = NULL;
                char *id = NULL;
                int r;

                if (!b)
                        break;
                b += strlen(open_tag);
                e = memmem(b, (size_t) (end - b), close_tag, strlen(close_tag));
                if (!e)
                        return -EBADMSG;
                r = xml_element_text(b, (size_t) (e - b), "Key", &key);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && streq(key, op->key)) {
                        r = xml_element_text(b, (size_t) (e - b), "UploadId", &id);
                        if (r == -ENOMEM)
                                return r;
                        if (r >= 0 && !isempty(id) && strlen(id) <= STORAGE_UPLOAD_ID_MAX) {
                                r = abort_ids_add(op, id);
                                if (r < 0)
                                        return r;
                        } else
                                free(id);
                }
                p = e + strlen(close_tag);
        }
        return 0;
}

static void list_send(StorageOp *op);

/* Upstream: ListMultipartUploads answered. */
static void on_list_answer(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        int r;

        op->req = NULL;
        if (storage_op_answer_handled(op, resp, "ListMultipartUploads", list_send))
                return;
        if (resp->status != 200 || xml_root_is(resp->body, resp->body_len, "Error")) {
                storage_op_set_error_answer(op, resp, "ListMultipartUploads");
                storage_op_fail(op);
                return;
        }
        r = list_parse(op, resp->body, resp->body_len);
        if (r < 0) {
                storage_op_set_error(op, r, resp->status, NULL, "ListMultipartUploads: %s",
                                     r == -ENOMEM ? "out of memory" : "the answer cannot be read");
                storage_op_fail(op);
                return;
        }
        log_debug("s3://%s/%s: %u upload(s) of the key in progress", op->bucket, op->key,
                  op->n_abort_ids);
        abort_next(op);
}

/* Sends ListMultipartUploads for the bucket with the key as prefix (a bucket URL: no key in
 * the path). */
static void list_send(StorageOp *op) {
        UpstreamCall call = {
                .method = UPSTREAM_GET,
                .headers = storage_headers_plain,
                .idempotent = true,
                .label = "S3 ListMultipartUploads",
        };
        _cleanup_free_ char *url = NULL;
        char *slash;
        int r;

        r = storage_op_call_prepare(op, &call, (const char *const[]) { "prefix", op->key, "uploads", "", NULL },
                                    &url);
        if (r >= 0) {
                /* "<endpoint>/<bucket>/<key>?…" becomes "<endpoint>/<bucket>?…" */
                _cleanup_free_ char *bucket_url = object_url(op->endpoint, op->bucket, "", NULL);

                if (!bucket_url || !startswith(url, bucket_url) || !(slash = strchr(url + strlen(op->endpoint) + 1, '?')))
                        r = -ENOMEM;
                else
                        memmove(url + strlen(bucket_url) - 1, slash, strlen(slash) + 1);
        }
        if (r >= 0) {
                call.url = url;
                call.stream_userdata = op;
                if (op->phase != PHASE_RETRY_WAIT)
                        op->http_retries = 0;
                r = upstream_request_start(op->storage->upstream, &call, on_list_answer, op, &op->req);
        }
        if (r < 0) {
                storage_op_set_error(op, r, 0, NULL, "ListMultipartUploads: %s", strerror(-r));
                storage_op_fail(op);
                return;
        }
        op->phase = PHASE_LIST;
}

/* Aborts the uploads of a key left behind. */
int storage_abort_uploads(Storage *s, const char *s3url, const StorageCredentials *cred, const char *upload_id,
                          storage_done_cb done, void *userdata, StorageOp **ret) {
        StorageOp *op = NULL;
        char *id;
        int r;

        r = storage_op_new(s, OP_ABORT, s3url, cred, done, userdata, &op);
        if (r < 0)
                goto fail;
        if (upload_id) {
                if (isempty(upload_id) || strlen(upload_id) > STORAGE_UPLOAD_ID_MAX) {
                        r = -EINVAL;
                        goto fail;
                }
                id = strdup(upload_id);
                r = id ? abort_ids_add(op, id) : -ENOMEM;
                if (r < 0)
                        goto fail;
                /* sent from the loop, as every first request of an operation */
                abort_send(op);
        } else
                list_send(op);
        if (op->error < 0) {
                r = op->error;
                goto fail;
        }
        log_debug("s3://%s/%s: aborting %s", op->bucket, op->key,
                  upload_id ? "one upload" : "the uploads of the key in progress");
        storage_op_attach(op, ret);
        return 0;
fail:
        return storage_op_discard(op, r);
}
