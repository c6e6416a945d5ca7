/* SPDX-License-Identifier: MIT */
/*
 * Uploads: storage_put_fd() and storage_put_memory(), the choice between one PutObject and a
 * multipart upload (storage-multipart.c), the PutObject itself, and the reading of a stream
 * into the part buffer, where the choice waits for the first part.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "storage-internal.h"

static int op_start_put(StorageOp *op);

/* Repeats the PutObject after a transient answer. */
static void op_repeat_put(StorageOp *op) {
        int r;

        r = op_start_put(op);
        if (r < 0)
                storage_op_fail_repeat(op, r);
}

/* Upstream: PutObject answered. */
static void on_put_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        Storage *s = op->storage;

        op->req = NULL;
        if (storage_op_answer_handled(op, resp, "PutObject", op_repeat_put))
                return;
        if (resp->status != 200) {
                storage_op_set_error_answer(op, resp, "PutObject");
                storage_op_fail(op);
                return;
        }
        if (free_and_strdup(&op->etag, storage_response_etag(resp)) < 0) {
                storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                storage_op_fail(op);
                return;
        }
        op->sent = op->body_len;
        s->n_puts++;
        s->bytes_up += op->body_len;
        storage_op_finish(op);
}

/* Starts the PutObject of the whole object (or of the stream's only part). */
static int op_start_put(StorageOp *op) {
        UpstreamCall call;
        int r;

        op->body_off = 0;
        op->body_pos = 0;
        switch (op->source) {
        case SOURCE_FILE:
                op->body_mem = NULL;
                op->body_len = op->size;
                break;
        case SOURCE_MEMORY:
                op->body_mem = op->buf;
                op->body_len = op->size;
                break;
        case SOURCE_STREAM:
        default:
                /* the stream ended within the first buffer */
                op->body_mem = op->filling->buf;
                op->body_len = op->filling->fill;
                break;
        }
        call = (UpstreamCall) {
                .method = UPSTREAM_PUT,
                .headers = storage_headers_object,
                .body_read = storage_op_body_read,
                .body_rewind = storage_op_body_rewind,
                .body_size = (int64_t) op->body_len,
                .idempotent = true,
                .label = "S3 PutObject",
        };
        r = storage_op_request(op, &call, NULL, on_put_done);
        if (r < 0)
                return r;
        op->phase = PHASE_PUT;
        return 0;
}

/* The buffer being filled holds a part (full, or the last one): store it. */
static void op_stream_part_ready(StorageOp *op) {
        int r;

        if (op->size_known && op->eof && op->stream_read != op->size) {
                op->fd_failed = true;
                storage_op_set_error(op, -EIO, 0, NULL,
                                     "The upload stream ended after %" PRIu64 " of %" PRIu64
                                     " bytes", op->stream_read, op->size);
                storage_op_fail(op);
                return;
        }
        if (op->upload_id) {
                storage_op_part_filled(op);
                return;
        }
        if (op->eof)
                r = op_start_put(op); /* the stream ended within the first part */
        else {
                r = storage_op_start_create(op);
                if (r >= 0)
                        storage_op_part_filled(op); /* waits for the upload id */
        }
        if (r < 0) {
                storage_op_set_error(op, r, 0, NULL, "%s: %s",
                                     op->eof ? "PutObject" : "CreateMultipartUpload", strerror(-r));
                storage_op_fail(op);
        }
}

/* Reads the stream into the buffer of op->filling until it holds a part (and the byte
 * after it, the carry, says whether more follows), the stream ends, or reading would block
 * (then the descriptor's event or the timer brings us back). */
static void op_fill(StorageOp *op) {
        StoragePart *p = op->filling;
        size_t burst = 0;
        int r;

        while (!op->eof && !op->has_carry) {
                bool full = p->fill >= op->part_size;
                ssize_t k;

                if (burst >= STORAGE_READ_BURST) {
                        /* let other work run; a ready descriptor brings us back at once */
                        r = storage_op_wait_fd(op, false);
                        if (r < 0)
                                goto fail;
                        return;
                }
                if (full)
                        k = storage_op_read(op, &op->carry, 1);
                else
                        k = storage_op_read(op, p->buf + p->fill,
                                            MIN((size_t) op->part_size - p->fill,
                                                (size_t) STORAGE_READ_BURST - burst));
                if (k == -EINTR)
                        continue;
                if (k == -EAGAIN) {
                        r = storage_op_wait_fd(op, true);
                        if (r < 0)
                                goto fail;
                        return;
                }
                if (k < 0) {
                        storage_op_set_error(op, (int) k, 0, NULL,
                                             "Failed to read the upload descriptor: %s",
                                             strerror((int) -k));
                        storage_op_fail(op);
                        return;
                }
                if (k == 0) {
                        op->eof = true;
                        break;
                }
                if (full)
                        op->has_carry = true;
                else
                        p->fill += (size_t) k;
                op->stream_read += (uint64_t) k;
                op->idle_polls = 0;
                burst += (size_t) k;
                if (op->size_known && op->stream_read > op->size) {
                        op->fd_failed = true;
                        storage_op_set_error(op, -EIO, 0, NULL,
                                             "The upload stream is longer than the %" PRIu64
                                             " bytes announced", op->size);
                        storage_op_fail(op);
                        return;
                }
        }
        if (op->io)
                (void) event_del(op->io);
        op_stream_part_ready(op);
        return;
fail:
        if (r == -ETIMEDOUT)
                storage_op_set_error(op, r, 0, NULL, "No data from the upload descriptor for %u s",
                                     STORAGE_IDLE_MS / 1000u);
        else
                storage_op_set_error(op, r, 0, NULL, "Failed to wait for the upload descriptor: %s",
                                     strerror(-r));
        storage_op_fail(op);
}

/* Chooses the part size for an object of known size: the configured one, grown so that
 * the object fits in STORAGE_PARTS_MAX parts (rounded up to a MiB). */
static int part_size_for(uint64_t configured, uint64_t size, uint64_t *ret) {
        uint64_t p = configured, need = (size + STORAGE_PARTS_MAX - 1) / STORAGE_PARTS_MAX;

        if (need > p)
                p = (need + MIB - 1) / MIB * MIB;
        if (p > STORAGE_PART_MAX)
                return -EFBIG;
        *ret = p;
        return 0;
}

/* Starts a put whose source is set up: the first request, or the first read. */
static int op_start_upload(StorageOp *op, uint64_t threshold) {
        int r;

        if (op->source == SOURCE_STREAM) {
                op->phase = PHASE_FILL;
                op->filling = &op->slots[0];
                op->filling->state = PART_FILLING;
                if (op->pollable)
                        return storage_op_wait_fd(op, false);
                storage_op_arm(op, 0);
                return 0;
        }
        if (op->size > threshold || op->size > STORAGE_PUT_MAX) {
                r = part_size_for(op->part_size, op->size, &op->part_size);
                if (r < 0)
                        return r;
                return storage_op_start_create(op);
        }
        return op_start_put(op);
}

/* Uploads from a descriptor. */
int storage_put_fd(Storage *s, const char *s3url, const StorageCredentials *cred, int fd,
                   int64_t size, storage_progress_cb progress, storage_done_cb done,
                   void *userdata, StorageOp **ret) {
        return storage_put_fd_hooked(s, s3url, cred, fd, size, NULL, progress, done, userdata, ret);
}

/* Uploads from a descriptor, with the caller's write-ahead. */
int storage_put_fd_hooked(Storage *s, const char *s3url, const StorageCredentials *cred, int fd,
                          int64_t size, const StorageUploadHook *hook, storage_progress_cb progress,
                          storage_done_cb done, void *userdata, StorageOp **ret) {
        StorageOp *op = NULL;
        int r;

        assert_return(fd >= 0, -EBADF);
        assert_return(size >= -1, -EINVAL);

        r = storage_op_new(s, OP_PUT, s3url, cred, done, userdata, &op);
        if (r < 0)
                goto fail;
        if (hook)
                op->hook = *hook;
        op->progress = progress;
        op->part_size = s->part_size;
        r = storage_op_adopt_fd(op, fd);
        if (r < 0)
                goto fail;

        if (op->fd_kind == FD_REGULAR && size >= 0) {
                op->source = SOURCE_FILE;
                op->size = (uint64_t) size;
                op->size_known = true;
        } else {
                op->source = SOURCE_STREAM;
                op->size_known = size >= 0;
                op->size = size >= 0 ? (uint64_t) size : 0;
                if (op->part_size >= SIZE_MAX) {
                        r = -EFBIG;
                        goto fail;
                }
                op->fill = op_fill;
                /* one buffer of part_size per slot, STORAGE_STREAM_BUFFERS_MAX in all (but
                 * one buffer at least); the first now, the others when they are needed */
                r = storage_op_parts_alloc(op, (unsigned) MIN((uint64_t) op->concurrency,
                                                              STORAGE_STREAM_BUFFERS_MAX /
                                                                      op->part_size));
                if (r < 0)
                        goto fail;
                op->slots[0].buf = malloc((size_t) op->part_size);
                if (!op->slots[0].buf) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        op->progress_total = op->size_known ? op->size : 0;

        r = op_start_upload(op, s->threshold);
        if (r < 0)
                goto fail;
        log_debug("s3://%s/%s: put from fd %d (%s%s%" PRIu64 " bytes)", op->bucket, op->key, fd,
                  op->source == SOURCE_FILE ? "file" : "stream",
                  op->size_known ? ", " : ", size unknown, ", op->size);
        storage_op_attach(op, ret);
        return 0;
fail:
        return storage_op_discard(op, r);
}

/* Uploads from memory. */
int storage_put_memory(Storage *s, const char *s3url, const StorageCredentials *cred,
                       const void *data, size_t len, storage_done_cb done, void *userdata,
                       StorageOp **ret) {
        return storage_put_memory_hooked(s, s3url, cred, data, len, NULL, done, userdata, ret);
}

/* Uploads from memory, with the caller's write-ahead. */
int storage_put_memory_hooked(Storage *s, const char *s3url, const StorageCredentials *cred,
                              const void *data, size_t len, const StorageUploadHook *hook,
                              storage_done_cb done, void *userdata, StorageOp **ret) {
        StorageOp *op = NULL;
        int r;

        assert_return(data || len == 0, -EINVAL);

        r = storage_op_new(s, OP_PUT, s3url, cred, done, userdata, &op);
        if (r < 0)
                goto fail;
        if (hook)
                op->hook = *hook;
        op->source = SOURCE_MEMORY;
        op->size = len;
        op->size_known = true;
        op->part_size = s->part_size;
        op->buf_cap = len;
        op->buf = malloc(MAX(len, (size_t) 1));
        if (!op->buf) {
                r = -ENOMEM;
                goto fail;
        }
        if (len > 0)
                memcpy(op->buf, data, len);
        op->progress_total = len;

        r = op_start_upload(op, s->threshold);
        if (r < 0)
                goto fail;
        storage_op_attach(op, ret);
        return 0;
fail:
        return storage_op_discard(op, r);
}
