/* SPDX-License-Identifier: MIT */
/*
 * Multipart uploads: CreateMultipartUpload, UploadPart × N (several at a time, each in a
 * slot of its own: from a file's offsets, our memory copy, or the slot's buffer of a
 * stream), CompleteMultipartUpload, and the HeadObject that settles a retried Complete
 * meeting NoSuchUpload. The abort after a failure is storage-op.c's; storage-put.c decides
 * when an upload is multipart and reads a stream into the slots' buffers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "macro.h"
#include "storage-internal.h"

static void op_start_complete(StorageOp *op);
static int op_send_create(StorageOp *op);
static bool op_record(StorageOp *op);

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

/* Starts CompleteMultipartUpload with the stored parts, in order. */
static void op_start_complete(StorageOp *op) {
        _cleanup_(strbuf_done) StrBuf body = {};
        UpstreamCall call;
        int r;

        strbuf_puts(&body, "<CompleteMultipartUpload>");
        for (unsigned i = 0; i < op->part_number; i++) {
                assert(i < op->etags_alloc && op->etags[i]);
                strbuf_printf(&body, "<Part><PartNumber>%u</PartNumber><ETag>", i + 1);
                strbuf_add_xml(&body, op->etags[i]);
                strbuf_puts(&body, "</ETag></Part>");
        }
        strbuf_puts(&body, "</CompleteMultipartUpload>");
        if (body.failed) {
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

/* ---- parts ------------------------------------------------------------------------------- */

/* Allocates the slots of a multipart upload. */
int storage_op_parts_alloc(StorageOp *op, unsigned n) {
        assert(!op->slots);

        n = MAX(n, 1u);
        op->slots = calloc(n, sizeof(StoragePart));
        if (!op->slots)
                return -ENOMEM;
        op->n_slots = n;
        for (unsigned i = 0; i < n; i++)
                op->slots[i].op = op;
        return 0;
}

/* Upstream: the next bytes of a part, read from the source at the part's offset when
 * libcurl asks for them (a regular file is never buffered). */
static ssize_t part_body_read(void *userdata, char *buf, size_t len) {
        StoragePart *p = userdata;
        StorageOp *op = p->op;
        ssize_t k;
        size_t n;

        if (op->phase == PHASE_CANCELLED)
                return -ECANCELED;
        n = (size_t) MIN((uint64_t) len, p->len - p->pos);
        if (n == 0)
                return 0;
        if (op->source == SOURCE_STREAM) {
                memcpy(buf, p->buf + p->pos, n);
                k = (ssize_t) n;
        } else if (op->source == SOURCE_MEMORY) {
                memcpy(buf, op->buf + p->off + p->pos, n);
                k = (ssize_t) n;
        } else {
                do
                        k = pread(op->fd, buf, n, (off_t) (p->off + p->pos));
                while (k < 0 && errno == EINTR);
                if (k < 0) {
                        int r = -errno;

                        op->fd_failed = true;
                        storage_op_note(op, "failed to read the file at offset %" PRIu64 ": %s",
                                        p->off + p->pos, strerror(-r));
                        return r;
                }
                if (k == 0) {
                        op->fd_failed = true;
                        storage_op_note(op, "the file ended at %" PRIu64 " bytes, before the %"
                                        PRIu64 " announced", p->off + p->pos, op->size);
                        return -EIO;
                }
        }
        p->pos += (uint64_t) k;
        op->parts_pos += (uint64_t) k;
        storage_op_progress(op, op->sent + op->parts_pos);
        if (op->phase == PHASE_CANCELLED)
                return -ECANCELED;
        return k;
}

/* Upstream: the part is sent again (a network retry). */
static int part_body_rewind(void *userdata) {
        StoragePart *p = userdata;

        p->op->parts_pos -= p->pos;
        p->pos = 0;
        return 0;
}

static void part_send(StoragePart *p);
static void parts_pump(StorageOp *op);

/* libevent: a part's wait after a transient answer is over. */
static void on_part_timer(evutil_socket_t fd, short what, void *userdata) {
        StoragePart *p = userdata;

        (void) fd;
        (void) what;
        if (p->state == PART_WAITING)
                part_send(p);
}

/* Keeps the ETag of a stored part by its number. */
static int op_keep_etag(StorageOp *op, unsigned number, const char *etag) {
        if (number > op->etags_alloc) {
                unsigned n = MAX(MAX(number, op->etags_alloc * 2), 16u);
                char **e;

                n = MIN(n, STORAGE_PARTS_MAX);
                e = reallocarray(op->etags, n, sizeof(char *));
                if (!e)
                        return -ENOMEM;
                memset(e + op->etags_alloc, 0, (n - op->etags_alloc) * sizeof(char *));
                op->etags = e;
                op->etags_alloc = n;
        }
        return free_and_strdup(&op->etags[number - 1], etag);
}

/* Upstream: UploadPart answered. */
static void on_part_done(const UpstreamResponse *resp, void *userdata) {
        StoragePart *p = userdata;
        StorageOp *op = p->op;
        Storage *s = op->storage;
        const char *etag;
        uint64_t delay;

        p->req = NULL;
        if (resp->error < 0) {
                storage_op_set_error_transport(op, resp, "UploadPart");
                storage_op_fail(op);
                return;
        }
        /* a transient answer: this part alone goes again, the others go on */
        if (storage_answer_retry_delay(resp, &p->http_retries, &delay)) {
                struct timeval tv = usec_to_timeval(delay * USEC_PER_MSEC);

                log_debug("s3://%s/%s: part %u answered HTTP %ld, repeating in %" PRIu64
                          " ms (%u/%u)", op->bucket, op->key, p->number, resp->status, delay,
                          p->http_retries, STORAGE_HTTP_RETRIES_MAX);
                op->parts_pos -= p->pos;
                p->pos = 0;
                p->state = PART_WAITING;
                (void) evtimer_add(p->timer, &tv);
                return;
        }
        if (resp->status != 200) {
                storage_op_set_error_answer(op, resp, "UploadPart");
                storage_op_fail(op);
                return;
        }
        etag = storage_response_etag(resp);
        if (!etag) {
                storage_op_set_error(op, -EBADMSG, resp->status, NULL,
                                     "UploadPart %u: the answer carries no usable ETag",
                                     p->number);
                storage_op_fail(op);
                return;
        }
        if (op_keep_etag(op, p->number, etag) < 0) {
                storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                storage_op_fail(op);
                return;
        }
        op->parts_pos -= p->pos;
        op->sent += p->len;
        s->n_parts++;
        s->bytes_up += p->len;
        p->state = PART_FREE;
        p->fill = 0;
        p->pos = 0;
        parts_pump(op);
}

/* Sends UploadPart for a slot's part (again, after a transient answer). */
static void part_send(StoragePart *p) {
        StorageOp *op = p->op;
        _cleanup_free_ char *url = NULL;
        char number[16];
        UpstreamCall call;
        int r;

        if (!p->timer) {
                p->timer = evtimer_new(op->storage->base, on_part_timer, p);
                if (!p->timer) {
                        storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                        storage_op_fail(op);
                        return;
                }
        }
        op->parts_pos -= p->pos;
        p->pos = 0;
        snprintf(number, sizeof(number), "%u", p->number);
        call = (UpstreamCall) {
                .method = UPSTREAM_PUT,
                .headers = storage_headers_object,
                .body_read = part_body_read,
                .body_rewind = part_body_rewind,
                .body_size = (int64_t) p->len,
                .stream_userdata = p,
                .idempotent = true, /* the same part number again replaces the part */
                .label = "S3 UploadPart",
        };
        r = storage_op_call_prepare(op, &call, (const char *const[]) { "partNumber", number,
                                                                       "uploadId",
                                                                       op->upload_id, NULL },
                                    &url);
        if (r >= 0)
                r = upstream_request_start(op->storage->upstream, &call, on_part_done, p,
                                           &p->req);
        if (r < 0) {
                storage_op_set_error(op, r, 0, NULL, "UploadPart: %s", strerror(-r));
                storage_op_fail(op);
                return;
        }
        p->state = PART_SENDING;
}

/* Hands the next part number to a slot and sends it. Returns false when the upload would
 * need more than STORAGE_PARTS_MAX parts (the operation failed). */
static bool part_start(StoragePart *p, uint64_t off, uint64_t len) {
        StorageOp *op = p->op;

        if (op->part_number >= STORAGE_PARTS_MAX) {
                storage_op_set_error(op, -EFBIG, 0, NULL,
                                     "The stream exceeds %u parts of %" PRIu64 " bytes",
                                     STORAGE_PARTS_MAX, op->part_size);
                storage_op_fail(op);
                return false;
        }
        p->number = ++op->part_number;
        p->off = off;
        p->len = len;
        p->pos = 0;
        p->http_retries = 0;
        part_send(p);
        return op->error >= 0;
}

/* A free slot, or NULL. */
static StoragePart *op_free_slot(StorageOp *op) {
        for (unsigned i = 0; i < op->n_slots; i++)
                if (op->slots[i].state == PART_FREE)
                        return &op->slots[i];
        return NULL;
}

/* Whether a slot is busy with a part. */
static bool op_parts_busy(const StorageOp *op) {
        for (unsigned i = 0; i < op->n_slots; i++)
                if (op->slots[i].state != PART_FREE)
                        return true;
        return false;
}

/* Starts what can start: parts into the free slots (a file or memory), or the filling of
 * the next buffer (a stream); the Complete once every part is stored. */
static void parts_pump(StorageOp *op) {
        StoragePart *p;
        int r;

        if (op->error < 0 || op->phase != PHASE_PART)
                return;
        if (op->source != SOURCE_STREAM) {
                while (op->next_off < op->size && (p = op_free_slot(op))) {
                        uint64_t len = MIN(op->part_size, op->size - op->next_off);

                        op->next_off += len;
                        if (!part_start(p, op->next_off - len, len))
                                return;
                }
                if (op->next_off >= op->size && !op_parts_busy(op))
                        op_start_complete(op);
                return;
        }
        if (!op->filling && (!op->eof || op->has_carry) && (p = op_free_slot(op))) {
                if (!p->buf) {
                        p->buf = malloc((size_t) op->part_size);
                        if (!p->buf) {
                                storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                                storage_op_fail(op);
                                return;
                        }
                }
                p->fill = 0;
                if (op->has_carry) {
                        p->buf[0] = op->carry;
                        p->fill = 1;
                        op->has_carry = false;
                }
                p->state = PART_FILLING;
                op->filling = p;
                /* read from the loop: the descriptor's event, or the timer */
                r = storage_op_wait_fd(op, false);
                if (r < 0) {
                        storage_op_set_error(op, r, 0, NULL,
                                             "Failed to wait for the upload descriptor: %s",
                                             strerror(-r));
                        storage_op_fail(op);
                        return;
                }
        }
        if (!op->filling && op->eof && !op->has_carry && !op_parts_busy(op))
                op_start_complete(op);
}

/* Stream: op->filling holds a part. */
void storage_op_part_filled(StorageOp *op) {
        StoragePart *p = op->filling;

        assert(p);
        if (!op->upload_id) {
                p->state = PART_READY; /* goes up once CreateMultipartUpload answered */
                return;
        }
        op->filling = NULL;
        if (!part_start(p, 0, p->fill))
                return;
        parts_pump(op);
}

/* CreateMultipartUpload answered: the parts begin. */
static void op_parts_begin(StorageOp *op) {
        StoragePart *p = op->filling;
        int r;

        op->phase = PHASE_PART;
        if (op->source != SOURCE_STREAM) {
                uint64_t n = (op->size + op->part_size - 1) / op->part_size;

                r = storage_op_parts_alloc(op, (unsigned) MIN(n, (uint64_t) op->concurrency));
                if (r < 0) {
                        storage_op_set_error(op, r, 0, NULL, "Out of memory");
                        storage_op_fail(op);
                        return;
                }
                parts_pump(op);
                return;
        }
        /* the first buffer, full, waited for the upload id */
        assert(p && p->state == PART_READY);
        op->filling = NULL;
        if (!part_start(p, 0, p->fill))
                return;
        parts_pump(op);
}

/* Repeats CreateMultipartUpload after a transient answer. */
static void op_repeat_create(StorageOp *op) {
        int r;

        r = op_send_create(op);
        if (r < 0)
                storage_op_fail_repeat(op, r);
}

/* Upstream: CreateMultipartUpload answered. */
static void on_create_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        _cleanup_free_ char *id = NULL;
        int r;

        op->req = NULL;
        /* without an answer the upload may exist all the same */
        if (resp->error < 0)
                op->upload_left = true;
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
        /* the caller records the upload id before the first part */
        if (op_record(op))
                return;
        op_parts_begin(op);
}

/* Sends CreateMultipartUpload. */
static int op_send_create(StorageOp *op) {
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

/* ---- the caller's write-ahead (StorageUploadHook) ------------------------------------------ */

/* Asks the caller to record the upload (its intent before Create, its id after): returns
 * true when the operation waits for the answer in RECORD, or failed. */
static bool op_record(StorageOp *op) {
        int r;

        if (!op->hook.cb)
                return false;
        op->record_done = false;
        op->record_error = 0;
        r = op->hook.cb(op, op->upload_id, op->hook.userdata);
        if (r == 0)
                return false;
        if (r < 0) {
                storage_op_set_error(op, r, 0, NULL, "The multipart upload could not be recorded: %s",
                                     strerror(-r));
                storage_op_fail(op);
                return true;
        }
        op->phase = PHASE_RECORD;
        if (op->record_done)
                storage_op_arm(op, 0); /* answered from inside the hook */
        return true;
}

/* The caller answered. */
void storage_upload_recorded(StorageOp *op, int error) {
        if (!op || op->record_done)
                return;
        op->record_done = true;
        op->record_error = error;
        if (op->phase == PHASE_RECORD)
                storage_op_arm(op, 0);
}

/* The timer after the answer: on with Create or the parts, or the failure. */
void storage_op_record_continue(StorageOp *op) {
        int r;

        assert(op->phase == PHASE_RECORD);
        if (op->record_error < 0) {
                storage_op_set_error(op, op->record_error, 0, NULL,
                                     "The multipart upload could not be recorded: %s",
                                     strerror(-op->record_error));
                storage_op_fail(op);
                return;
        }
        if (op->upload_id) {
                op_parts_begin(op);
                return;
        }
        r = op_send_create(op);
        if (r < 0) {
                storage_op_set_error(op, r, 0, NULL, "CreateMultipartUpload: %s", strerror(-r));
                storage_op_fail(op);
        }
}

/* Starts CreateMultipartUpload, once the caller recorded its intent. */
int storage_op_start_create(StorageOp *op) {
        if (op_record(op))
                return 0;
        return op_send_create(op);
}
