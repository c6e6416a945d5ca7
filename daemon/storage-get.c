/* SPDX-License-Identifier: MIT */
/*
 * Downloads: storage_get_fd() and storage_get_memory(). GetObject streams into the caller's
 * descriptor (pausing while it is full) or into memory up to a cap; a transfer cut by the
 * network, or by the deadline while it was moving, resumes from the next byte with "Range"
 * and "If-Match: <ETag>".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "storage-internal.h"

static void op_start_get(StorageOp *op);

/* Upstream: object bytes (2xx answers only). */
static ssize_t on_get_sink(void *userdata, const char *buf, size_t len) {
        StorageOp *op = userdata;
        size_t done_here;

        if (op->phase != PHASE_GET)
                return -ECANCELED;

        if (op->to_memory) {
                size_t need;

                if ((uint64_t) len > op->max_bytes - op->received) {
                        storage_op_note(op, "the object is larger than %zu bytes", op->max_bytes);
                        return -EFBIG;
                }
                need = (size_t) op->received + len + 1;
                if (need > op->data_alloc) {
                        size_t want = MIN(MAX(need, MAX(op->data_alloc * 2, (size_t) 65536)),
                                          op->max_bytes + 1);
                        char *p = realloc(op->data, want);

                        if (!p) {
                                storage_op_note(op, "out of memory for %zu bytes", want);
                                return -ENOMEM;
                        }
                        op->data = p;
                        op->data_alloc = want;
                }
                memcpy(op->data + op->received, buf, len);
                op->received += len;
                op->data[op->received] = '\0';
        } else {
                /* Bytes written before a pause come again after it: skip them. */
                done_here = (size_t) MIN((uint64_t) len, op->skip);
                while (done_here < len) {
                        ssize_t k = storage_op_write(op, buf + done_here, len - done_here);
                        int r;

                        if (k == -EINTR)
                                continue;
                        if (k == -EAGAIN) {
                                op->skip = done_here;
                                r = storage_op_wait_fd(op, true);
                                if (r == -ETIMEDOUT)
                                        storage_op_note(op, "the download descriptor took no "
                                                        "data for %u s", STORAGE_IDLE_MS / 1000u);
                                else if (r < 0)
                                        storage_op_note(op, "cannot wait for the download "
                                                        "descriptor: %s", strerror(-r));
                                if (r < 0)
                                        return r;
                                return -EAGAIN;
                        }
                        if (k <= 0) {
                                op->fd_failed = true;
                                r = k < 0 ? (int) k : -EIO;
                                storage_op_note(op, "failed to write to the download "
                                                "descriptor: %s", strerror(-r));
                                return r;
                        }
                        done_here += (size_t) k;
                        op->received += (uint64_t) k;
                        op->idle_polls = 0;
                }
                op->skip -= MIN(op->skip, (uint64_t) len);
        }
        storage_op_progress(op, op->received);
        if (op->phase != PHASE_GET)
                return -ECANCELED;
        return (ssize_t) len;
}

/* The number that follows prefix in a Content-Range value and ends at `end`, or -1. */
static int64_t content_range_number(const char *v, const char *prefix, char end) {
        unsigned long long n;
        char *e;

        if (!v || !(v = startswith(v, prefix)) || *v < '0' || *v > '9')
                return -1;
        errno = 0;
        n = strtoull(v, &e, 10);
        if (errno != 0 || *e != end || n > INT64_MAX)
                return -1;
        return (int64_t) n;
}

/* The first byte of a "bytes a-b/n" Content-Range, or -1. */
static int64_t content_range_start(const char *v) {
        return content_range_number(v, "bytes ", '-');
}

/* The total n of an unsatisfied-range Content-Range ("bytes", star, "/n"), or -1. */
static int64_t content_range_unsatisfied_total(const char *v) {
        return content_range_number(v, "bytes */", '\0');
}

/* After a resumed GET delivered bytes: did the server start where we asked? A 200 means it
 * ignored Range and sent the object from its start. In memory that is repaired; a
 * descriptor now holds a repeated prefix. Returns 0 or -EIO with the error recorded. */
static int op_check_resume(StorageOp *op, const UpstreamResponse *resp) {
        if (op->attempt_start == 0 || op->received == op->attempt_start)
                return 0;
        if (resp->status == 206 &&
            content_range_start(upstream_response_header(resp, "Content-Range")) ==
                    (int64_t) op->attempt_start)
                return 0;
        if (resp->status == 200 && op->to_memory) {
                memmove(op->data, op->data + op->attempt_start,
                        (size_t) (op->received - op->attempt_start));
                op->received -= op->attempt_start;
                op->data[op->received] = '\0';
                op->attempt_start = 0;
                return 0;
        }
        storage_op_set_error(op, -EIO, resp->status, NULL,
                             "GetObject: a resumed download did not continue at byte %" PRIu64
                             " (HTTP %ld); the descriptor holds inconsistent data",
                             op->attempt_start, resp->status);
        return -EIO;
}

/* Whether a failed GET may be resumed. */
static bool get_error_is_resumable(int error, bool progress) {
        switch (-error) {
        case ECONNRESET:
        case ECONNREFUSED:
        case EHOSTUNREACH:
                return true;
        case ETIMEDOUT:
                return progress; /* the deadline cut a transfer that moved */
        default:
                return false;
        }
}

/* Upstream: GetObject answered or failed. */
static void on_get_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        bool progress = op->received > op->attempt_start;
        const char *etag = storage_response_etag(resp);
        uint64_t delay;

        op->req = NULL;
        /* a wait for the descriptor belongs to this request: a resume must not inherit its
         * idle timeout */
        if (op->io)
                (void) event_del(op->io);
        if (resp->status / 100 == 2 && etag && !op->object_etag &&
            free_and_strdup(&op->object_etag, etag) < 0) {
                storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                storage_op_fail(op);
                return;
        }
        if (resp->status / 100 == 2 && op_check_resume(op, resp) < 0) {
                storage_op_fail(op);
                return;
        }

        /* a note says our own sink failed (the descriptor, memory): no resume */
        if (resp->error < 0 && !op->note && get_error_is_resumable(resp->error, progress) &&
            (progress || op->resumes < STORAGE_RESUMES_MAX)) {
                op->resumes = progress ? 0 : op->resumes + 1;
                delay = progress ? 0 : MIN((uint64_t) STORAGE_RESUME_BASE_MS << (op->resumes - 1),
                                           (uint64_t) STORAGE_RESUME_MAX_MS);
                log_debug("s3://%s/%s: GetObject failed after %" PRIu64 " bytes (%s), resuming "
                          "in %" PRIu64 " ms", op->bucket, op->key, op->received,
                          resp->error_text, delay);
                op->retry_phase = PHASE_GET;
                op->repeat = op_start_get;
                op->phase = PHASE_RETRY_WAIT;
                storage_op_arm(op, delay);
                return;
        }
        if (storage_op_answer_handled(op, resp, "GetObject", op_start_get))
                return;
        if (resp->status == 200 || resp->status == 206) {
                if (free_and_strdup(&op->etag, op->object_etag ?: etag) < 0) {
                        storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                        storage_op_fail(op);
                        return;
                }
                storage_op_finish(op);
                return;
        }
        /* Resumed exactly at the end: nothing was left to send. */
        if (resp->status == 416 && op->attempt_start > 0 &&
            content_range_unsatisfied_total(upstream_response_header(resp, "Content-Range")) ==
                    (int64_t) op->attempt_start) {
                if (free_and_strdup(&op->etag, op->object_etag) < 0)
                        storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                storage_op_finish(op);
                return;
        }
        storage_op_set_error_answer(op, resp, "GetObject");
        storage_op_fail(op);
}

/* Starts (or resumes from `received`) GetObject. */
static int op_request_get(StorageOp *op) {
        _cleanup_free_ char *range = NULL, *if_match = NULL;
        const char *headers[4] = { storage_headers_plain[0] };
        size_t n = 1;
        UpstreamCall call;
        int r;

        if (op->received > 0) {
                if (asprintf(&range, "Range: bytes=%" PRIu64 "-", op->received) < 0) {
                        range = NULL;
                        return -ENOMEM;
                }
                headers[n++] = range;
                if (op->object_etag) {
                        if (asprintf(&if_match, "If-Match: %s", op->object_etag) < 0) {
                                if_match = NULL;
                                return -ENOMEM;
                        }
                        headers[n++] = if_match;
                }
        }
        call = (UpstreamCall) {
                .method = UPSTREAM_GET,
                .headers = headers,
                .sink = on_get_sink,
                /* a sink cannot be rewound: resumed here, with Range, instead */
                .idempotent = false,
                .label = "S3 GetObject",
        };
        r = storage_op_request(op, &call, NULL, on_get_done);
        if (r < 0)
                return r;
        op->attempt_start = op->received;
        op->skip = 0;
        op->phase = PHASE_GET;
        return 0;
}

/* Resumes GetObject after a wait. */
static void op_start_get(StorageOp *op) {
        int r;

        r = op_request_get(op);
        if (r < 0) {
                storage_op_set_error(op, r, 0, NULL, "GetObject: %s", strerror(-r));
                storage_op_fail(op);
        }
}

/* Starts a get; the first request starts here so that a refused URL is reported at once. */
static int op_begin_get(StorageOp *op, StorageOp **ret) {
        int r;

        r = op_request_get(op);
        if (r < 0)
                return r;
        storage_op_attach(op, ret);
        return 0;
}

/* Downloads into a descriptor. */
int storage_get_fd(Storage *s, const char *s3url, const StorageCredentials *cred, int fd,
                   storage_progress_cb progress, storage_done_cb done, void *userdata,
                   StorageOp **ret) {
        StorageOp *op = NULL;
        int r;

        assert_return(fd >= 0, -EBADF);

        r = storage_op_new(s, OP_GET, s3url, cred, done, userdata, &op);
        if (r < 0)
                goto fail;
        op->progress = progress;
        r = storage_op_adopt_fd(op, fd);
        if (r < 0)
                goto fail;
        r = op_begin_get(op, ret);
        if (r < 0)
                goto fail;
        log_debug("s3://%s/%s: get into fd %d", op->bucket, op->key, fd);
        return 0;
fail:
        return storage_op_discard(op, r);
}

/* Downloads into memory. */
int storage_get_memory(Storage *s, const char *s3url, const StorageCredentials *cred,
                       size_t max_bytes, storage_done_cb done, void *userdata, StorageOp **ret) {
        StorageOp *op = NULL;
        int r;

        assert_return(max_bytes < SIZE_MAX, -EINVAL);

        r = storage_op_new(s, OP_GET, s3url, cred, done, userdata, &op);
        if (r < 0)
                goto fail;
        op->to_memory = true;
        op->max_bytes = max_bytes;
        r = op_begin_get(op, ret);
        if (r < 0)
                goto fail;
        return 0;
fail:
        return storage_op_discard(op, r);
}
