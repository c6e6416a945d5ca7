/* SPDX-License-Identifier: MIT */
/*
 * Multipart uploads: CreateMultipartUpload, UploadPart × N (one at a time, from a file's
 * offsets, our memory copy, or a stream's part buffer), CompleteMultipartUpload, and the
 * HeadObject that settles a retried Complete meeting NoSuchUpload. The abort after a failure
 * is storage-op.c's; storage-put.c decides when an upload is multipart.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "storage-internal.h"

static void op_start_complete(StorageOp *op);
static void op_send_part(StorageOp *op);

/* Upstream: CompleteMultipartUpload answered (or its HeadObject check). */
static void on_verify_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        const char *etag = storage_response_etag(resp), *len = upstream_response_header(resp,
                                                                               "Content-Length");
        char suffix[32];
        size_t el;

        op->req = NULL;
        /* A multipart object's ETag ends in "-<parts>": size and part count must match. */
        snprintf(suffix, sizeof(suffix), "-%u", op->part_number);
        el = etag ? strlen(etag) : 0;
        if (el > 0 && etag[el - 1] == '"')
                el--;
        if (resp->error >= 0 && resp->status == 200 && len && etag &&
            strtoull(len, NULL, 10) == op->sent && el > strlen(suffix) &&
            memcmp(etag + el - strlen(suffix), suffix, strlen(suffix)) == 0) {
                log_debug("s3://%s/%s: a retried Complete met NoSuchUpload, but the object is "
                          "there: the first attempt completed it.", op->bucket, op->key);
                op->error = 0;
                op->status = 0;
                op->s3_code = mfree(op->s3_code);
                op->message = mfree(op->message);
                op->upload_id = mfree(op->upload_id);
                if (free_and_strdup(&op->etag, etag) < 0) {
                        storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                        storage_op_finish(op);
                        return;
                }
                op->storage->n_multipart++;
                storage_op_finish(op);
                return;
        }
        storage_op_fail(op); /* with the NoSuchUpload recorded before */
}

/* Upstream: CompleteMultipartUpload answered. */
static void on_complete_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        _cleanup_free_ char *etag = NULL;
        UpstreamCall call;
        int r;

        op->req = NULL;
        if (storage_op_answer_handled(op, resp, "CompleteMultipartUpload", op_start_complete))
                return;
        /* S3 may fail a Complete after it said 200: the body is then an <Error>. */
        if (resp->status != 200 || xml_root_is(resp->body, resp->body_len, "Error")) {
                storage_op_set_error_answer(op, resp, "CompleteMultipartUpload");
                /* libcurl itself resends a request whose reused connection died, so a lost
                 * answer does not always show in resp->attempts: check on any NoSuchUpload. */
                if (resp->status == 404 && streq_ptr(op->s3_code, "NoSuchUpload")) {
                        call = (UpstreamCall) {
                                .method = UPSTREAM_HEAD,
                                .headers = storage_headers_plain,
                                .idempotent = true,
                                /* libcurl applies the body cap to a HEAD's Content-Length */
                                .max_body_bytes = UINT64_MAX,
                                .label = "S3 HeadObject",
                        };
                        r = storage_op_request(op, &call, NULL, on_verify_done);
                        if (r >= 0) {
                                op->phase = PHASE_VERIFY;
                                return;
                        }
                }
                storage_op_fail(op);
                return;
        }
        r = xml_element_text(resp->body, resp->body_len, "ETag", &etag);
        if (r == -ENOMEM) {
                storage_op_set_error(op, r, 0, NULL, "Out of memory");
                storage_op_fail(op);
                return;
        }
        /* A missing ETag is no reason to fail a stored object. */
        op->etag = TAKE_PTR(etag);
        op->upload_id = mfree(op->upload_id);
        op->storage->n_multipart++;
        storage_op_finish(op);
}

/* Starts CompleteMultipartUpload with the stored parts. */
static void op_start_complete(StorageOp *op) {
        _cleanup_(strbuf_done) StrBuf body = {};
        UpstreamCall call;
        int r;

        strbuf_puts(&body, "<CompleteMultipartUpload>");
        if (op->parts_xml.p)
                strbuf_add(&body, op->parts_xml.p, op->parts_xml.len);
        strbuf_puts(&body, "</CompleteMultipartUpload>");
        if (body.failed || op->parts_xml.failed) {
                storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                storage_op_fail(op);
                return;
        }
        call = (UpstreamCall) {
                .method = UPSTREAM_POST,
                .headers = storage_headers_xml,
                .body = body.p,
                .body_len = body.len,
                .idempotent = true, /* a lost answer is settled by on_verify_done() */
                .label = "S3 CompleteMultipartUpload",
        };
        r = storage_op_request(op, &call, (const char *const[]) { "uploadId", op->upload_id, NULL },
                               on_complete_done);
        if (r < 0) {
                storage_op_set_error(op, r, 0, NULL, "CompleteMultipartUpload: %s", strerror(-r));
                storage_op_fail(op);
                return;
        }
        op->phase = PHASE_COMPLETE;
}

/* Upstream: UploadPart answered. */
static void on_part_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        Storage *s = op->storage;
        const char *etag;
        size_t rest;

        op->req = NULL;
        if (storage_op_answer_handled(op, resp, "UploadPart", op_send_part))
                return;
        if (resp->status != 200) {
                storage_op_set_error_answer(op, resp, "UploadPart");
                storage_op_fail(op);
                return;
        }
        etag = storage_response_etag(resp);
        if (!etag) {
                storage_op_set_error(op, -EBADMSG, resp->status, NULL,
                                     "UploadPart %u: the answer carries no usable ETag",
                                     op->part_number);
                storage_op_fail(op);
                return;
        }
        strbuf_printf(&op->parts_xml, "<Part><PartNumber>%u</PartNumber><ETag>",
                      op->part_number);
        strbuf_add_xml(&op->parts_xml, etag);
        strbuf_puts(&op->parts_xml, "</ETag></Part>");
        if (op->parts_xml.failed) {
                storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                storage_op_fail(op);
                return;
        }
        op->sent += op->body_len;
        s->n_parts++;
        s->bytes_up += op->body_len;

        if (op->source != SOURCE_STREAM) {
                if (op->sent < op->size)
                        storage_op_start_part(op);
                else
                        op_start_complete(op);
                return;
        }
        /* The byte read past a full part starts the next one. */
        rest = op->buf_fill - (size_t) op->body_len;
        if (rest > 0)
                memmove(op->buf, op->buf + op->body_len, rest);
        op->buf_fill = rest;
        if (op->eof && op->buf_fill == 0) {
                op_start_complete(op);
                return;
        }
        op->phase = PHASE_FILL;
        op->fill(op);
}

/* Starts UploadPart for the next part. */
void storage_op_start_part(StorageOp *op) {
        if (op->part_number >= STORAGE_PARTS_MAX) {
                storage_op_set_error(op, -EFBIG, 0, NULL,
                                     "The stream exceeds %u parts of %" PRIu64 " bytes",
                                     STORAGE_PARTS_MAX, op->part_size);
                storage_op_fail(op);
                return;
        }
        op->part_number++;
        if (op->source == SOURCE_STREAM) {
                op->body_mem = op->buf;
                op->body_off = 0;
                op->body_len = MIN((uint64_t) op->buf_fill, op->part_size);
        } else {
                op->body_off = op->sent;
                op->body_len = MIN(op->part_size, op->size - op->sent);
                op->body_mem = op->source == SOURCE_MEMORY ? op->buf + op->sent : NULL;
        }
        op_send_part(op);
}

/* Sends UploadPart for the current part (again, after a transient answer). */
static void op_send_part(StorageOp *op) {
        char number[16];
        UpstreamCall call;
        int r;

        op->body_pos = 0;
        snprintf(number, sizeof(number), "%u", op->part_number);
        call = (UpstreamCall) {
                .method = UPSTREAM_PUT,
                .headers = storage_headers_object,
                .body_read = storage_op_body_read,
                .body_rewind = storage_op_body_rewind,
                .body_size = (int64_t) op->body_len,
                .idempotent = true, /* the same part number again replaces the part */
                .label = "S3 UploadPart",
        };
        r = storage_op_request(op, &call, (const char *const[]) { "partNumber", number, "uploadId",
                                                                  op->upload_id, NULL },
                               on_part_done);
        if (r < 0) {
                storage_op_set_error(op, r, 0, NULL, "UploadPart: %s", strerror(-r));
                storage_op_fail(op);
                return;
        }
        op->phase = PHASE_PART;
}

/* Repeats CreateMultipartUpload after a transient answer. */
static void op_repeat_create(StorageOp *op) {
        int r;

        r = storage_op_start_create(op);
        if (r < 0)
                storage_op_fail_repeat(op, r);
}

/* Upstream: CreateMultipartUpload answered. */
static void on_create_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        _cleanup_free_ char *id = NULL;
        int r;

        op->req = NULL;
        if (storage_op_answer_handled(op, resp, "CreateMultipartUpload", op_repeat_create))
                return;
        if (resp->status != 200 || xml_root_is(resp->body, resp->body_len, "Error")) {
                storage_op_set_error_answer(op, resp, "CreateMultipartUpload");
                storage_op_fail(op);
                return;
        }
        r = xml_element_text(resp->body, resp->body_len, "UploadId", &id);
        if (r == -ENOMEM) {
                storage_op_set_error(op, r, 0, NULL, "Out of memory");
                storage_op_fail(op);
                return;
        }
        if (r < 0 || isempty(id) || strlen(id) > STORAGE_UPLOAD_ID_MAX) {
                storage_op_set_error(op, -EBADMSG, resp->status, NULL, "CreateMultipartUpload: "
                                     "the answer carries no usable UploadId");
                storage_op_fail(op);
                return;
        }
        op->upload_id = TAKE_PTR(id);
        log_debug("s3://%s/%s: multipart upload started, parts of %" PRIu64 " bytes",
                  op->bucket, op->key, op->part_size);
        storage_op_start_part(op);
}

/* Starts CreateMultipartUpload. */
int storage_op_start_create(StorageOp *op) {
        UpstreamCall call = {
                .method = UPSTREAM_POST,
                .headers = storage_headers_plain,
                /* A repeat can only leave an empty upload behind, which S3 lifecycle rules
                 * expire; failing a large upload for a network hiccup would cost more. */
                .idempotent = true,
                .label = "S3 CreateMultipartUpload",
        };
        int r;

        r = storage_op_request(op, &call, (const char *const[]) { "uploads", "", NULL },
                               on_create_done);
        if (r < 0)
                return r;
        op->phase = PHASE_CREATE;
        return 0;
}
