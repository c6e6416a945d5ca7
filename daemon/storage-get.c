/* SPDX-License-Identifier: MIT */
/*
 * Downloads: storage_get_fd() and storage_get_memory(). GetObject streams into the caller's
 * descriptor (pausing while it is full) or into memory up to a cap; a transfer cut by the
 * network, or by the deadline while it was moving, resumes from the next byte with "Range"
 * and "If-Match: <ETag>". Into a regular file, an object larger than a part comes in ranges
 * over several connections at once, each written at its offset (storage-internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "macro.h"
#include "storage-internal.h"

static void op_start_get(StorageOp *op);

/* Writes all of buf at the object's offset `off` of a ranged download. Returns 0 or -errno
 * with the note recorded. */
static int ranged_write(StorageOp *op, const char *buf, size_t len, uint64_t off) {
        while (len > 0) {
                ssize_t k = pwrite(op->fd, buf, len, (off_t) (op->base + off));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        int r = k < 0 ? -errno : -EIO;

                        op->fd_failed = true;
                        storage_op_note(op, "failed to write to the download descriptor: %s",
                                        strerror(-r));
                        return r;
                }
                buf += k;
                len -= (size_t) k;
                off += (uint64_t) k;
        }
        return 0;
}

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
        } else if (op->ranged) {
                int r = ranged_write(op, buf, len, op->received);

                if (r < 0)
                        return r;
                op->received += len;
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

/* The total of a "bytes a-b/n" Content-Range, or -1. */
static int64_t content_range_total(const char *v) {
        const char *slash = v ? strchr(v, '/') : NULL;
        unsigned long long n;
        char *e;

        if (!slash || slash[1] < '0' || slash[1] > '9')
                return -1;
        errno = 0;
        n = strtoull(slash + 1, &e, 10);
        if (errno != 0 || *e != '\0' || n > INT64_MAX)
                return -1;
        return (int64_t) n;
}

static void range_send(StoragePart *p);
static void ranges_pump(StorageOp *op);

/* A ranged download is complete: the descriptor's position goes after the object, as if it
 * had been written in order. Returns false with the operation failed. */
static bool op_ranged_seek(StorageOp *op) {
        if (!op->ranged || lseek(op->fd, (off_t) (op->base + op->received), SEEK_SET) >= 0)
                return true;
        op->fd_failed = true;
        storage_op_set_error(op, -errno, 0, NULL, "Failed to seek the download descriptor: %s",
                             strerror(errno));
        storage_op_fail(op);
        return false;
}

/* Upstream: bytes of one range (2xx answers only). */
static ssize_t on_range_sink(void *userdata, const char *buf, size_t len) {
        StoragePart *p = userdata;
        StorageOp *op = p->op;
        int r;

        if (op->phase != PHASE_GET)
                return -ECANCELED;
        if ((uint64_t) len > p->len - p->pos) {
                storage_op_note(op, "the storage sent more than the range asked for");
                return -EIO;
        }
        r = ranged_write(op, buf, len, p->off + p->pos);
        if (r < 0)
                return r;
        p->pos += len;
        op->received += len;
        storage_op_progress(op, op->received);
        if (op->phase != PHASE_GET)
                return -ECANCELED;
        return (ssize_t) len;
}

/* libevent: a range's wait before a resume or a repeat is over. */
static void on_range_timer(evutil_socket_t fd, short what, void *userdata) {
        StoragePart *p = userdata;

        (void) fd;
        (void) what;
        if (p->state == PART_WAITING)
                range_send(p);
}

/* Waits `ms` before sending a range again from its next byte. */
static void range_later(StoragePart *p, uint64_t ms) {
        struct timeval tv = usec_to_timeval(ms * USEC_PER_MSEC);

        p->state = PART_WAITING;
        (void) evtimer_add(p->timer, &tv);
}

/* Upstream: a range answered or failed. */
static void on_range_done(const UpstreamResponse *resp, void *userdata) {
        StoragePart *p = userdata;
        StorageOp *op = p->op;
        bool progress = p->pos > p->attempt_pos;
        uint64_t delay;

        p->req = NULL;
        if (resp->status / 100 == 2 && p->pos > p->attempt_pos &&
            (resp->status != 206 ||
             content_range_start(upstream_response_header(resp, "Content-Range")) !=
                     (int64_t) (p->off + p->attempt_pos))) {
                storage_op_set_error(op, -EIO, resp->status, NULL,
                                     "GetObject: the range at byte %" PRIu64 " came back as "
                                     "other bytes (HTTP %ld); the descriptor holds "
                                     "inconsistent data", p->off + p->attempt_pos,
                                     resp->status);
                storage_op_fail(op);
                return;
        }
        if (resp->error < 0 && !op->note && get_error_is_resumable(resp->error, progress) &&
            (progress || p->resumes < STORAGE_RESUMES_MAX)) {
                p->resumes = progress ? 0 : p->resumes + 1;
                delay = progress ? 0 : MIN((uint64_t) STORAGE_RESUME_BASE_MS << (p->resumes - 1),
                                           (uint64_t) STORAGE_RESUME_MAX_MS);
                log_debug("s3://%s/%s: the range at %" PRIu64 " failed after %" PRIu64
                          " bytes (%s), resuming in %" PRIu64 " ms", op->bucket, op->key,
                          p->off, p->pos, resp->error_text, delay);
                range_later(p, delay);
                return;
        }
        if (resp->error < 0) {
                storage_op_set_error_transport(op, resp, "GetObject");
                storage_op_fail(op);
                return;
        }
        if (storage_answer_retry_delay(resp, &p->http_retries, &delay)) {
                range_later(p, delay);
                return;
        }
        if (resp->status == 206 && p->pos == p->len) {
                p->state = PART_FREE;
                ranges_pump(op);
                return;
        }
        if (resp->status / 100 == 2) {
                storage_op_set_error(op, -EIO, resp->status, NULL,
                                     "GetObject: the range at byte %" PRIu64 " ended after %"
                                     PRIu64 " of %" PRIu64 " bytes", p->off, p->pos, p->len);
                storage_op_fail(op);
                return;
        }
        storage_op_set_error_answer(op, resp, "GetObject");
        storage_op_fail(op);
}

/* Sends GetObject for the rest of a slot's range. */
static void range_send(StoragePart *p) {
        StorageOp *op = p->op;
        _cleanup_free_ char *range = NULL, *if_match = NULL, *url = NULL;
        const char *headers[4] = { storage_headers_plain[0] };
        size_t n = 1;
        UpstreamCall call;
        int r = 0;

        if (!p->timer) {
                p->timer = evtimer_new(op->storage->base, on_range_timer, p);
                if (!p->timer)
                        r = -ENOMEM;
        }
        if (r >= 0 && asprintf(&range, "Range: bytes=%" PRIu64 "-%" PRIu64, p->off + p->pos,
                               p->off + p->len - 1) < 0) {
                range = NULL;
                r = -ENOMEM;
        }
        if (r >= 0) {
                headers[n++] = range;
                if (op->object_etag) {
                        if (asprintf(&if_match, "If-Match: %s", op->object_etag) < 0) {
                                if_match = NULL;
                                r = -ENOMEM;
                        } else
                                headers[n++] = if_match;
                }
        }
        call = (UpstreamCall) {
                .method = UPSTREAM_GET,
                .headers = headers,
                .sink = on_range_sink,
                .stream_userdata = p,
                .idempotent = false, /* resumed here from the next byte instead */
                .label = "S3 GetObject",
        };
        if (r >= 0)
                r = storage_op_call_prepare(op, &call, NULL, &url);
        if (r >= 0)
                r = upstream_request_start(op->storage->upstream, &call, on_range_done, p,
                                           &p->req);
        if (r < 0) {
                storage_op_set_error(op, r, 0, NULL, "GetObject: %s", strerror(-r));
                storage_op_fail(op);
                return;
        }
        p->attempt_pos = p->pos;
        p->state = PART_SENDING;
}

/* Starts ranges into the free slots; once every range is written, the descriptor's position
 * goes after the object and the get is done. */
static void ranges_pump(StorageOp *op) {
        StoragePart *p = NULL;

        if (op->error < 0)
                return;
        for (unsigned i = 0; op->next_off < op->object_size && i < op->n_slots; i++) {
                p = &op->slots[i];
                if (p->state != PART_FREE)
                        continue;
                p->off = op->next_off;
                p->len = MIN(op->part_size, op->object_size - op->next_off);
                p->pos = 0;
                p->resumes = 0;
                p->http_retries = 0;
                op->next_off += p->len;
                range_send(p);
                if (op->error < 0)
                        return;
        }
        for (unsigned i = 0; i < op->n_slots; i++)
                if (op->slots[i].state != PART_FREE)
                        return;
        if (op->next_off < op->object_size || !op_ranged_seek(op))
                return;
        if (free_and_strdup(&op->etag, op->object_etag) < 0) {
                storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                storage_op_fail(op);
                return;
        }
        storage_op_finish(op);
}

/* The first range answered (206): when the object goes on past it, the rest comes in ranges
 * at once. Returns true when it does (or failed), false when the get is complete. */
static bool op_ranges_begin(StorageOp *op, const UpstreamResponse *resp) {
        int64_t total = content_range_total(upstream_response_header(resp, "Content-Range"));
        uint64_t n;
        int r;

        if (total < 0 || (uint64_t) total <= op->received)
                return false;
        if (!op->object_etag) {
                /* without an ETag a range could come from another version: in order, then */
                op->range_end = 0;
                op_start_get(op);
                return true;
        }
        op->object_size = (uint64_t) total;
        op->next_off = op->received;
        n = (op->object_size - op->next_off + op->part_size - 1) / op->part_size;
        r = storage_op_parts_alloc(op, (unsigned) MIN(n, (uint64_t) op->concurrency));
        if (r < 0) {
                storage_op_set_error(op, r, 0, NULL, "Out of memory");
                storage_op_fail(op);
                return true;
        }
        log_debug("s3://%s/%s: %" PRIu64 " bytes, the rest in %" PRIu64 " ranges, %u at a time",
                  op->bucket, op->key, op->object_size, n, op->n_slots);
        op->phase = PHASE_GET;
        ranges_pump(op);
        return true;
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
        /* the first part of a ranged download: the rest at once */
        if (resp->status == 206 && op->ranged && op->range_end > 0 && op_ranges_begin(op, resp))
                return;
        if (resp->status == 200 || resp->status == 206) {
                if (free_and_strdup(&op->etag, op->object_etag ?: etag) < 0) {
                        storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                        storage_op_fail(op);
                        return;
                }
                if (op_ranged_seek(op))
                        storage_op_finish(op);
                return;
        }
        /* An empty object has no first byte to ask for. */
        if (resp->status == 416 && op->ranged && op->received == 0 &&
            content_range_unsatisfied_total(upstream_response_header(resp, "Content-Range")) == 0) {
                storage_op_finish(op);
                return;
        }
        /* Resumed exactly at the end: nothing was left to send. */
        if (resp->status == 416 && op->attempt_start > 0 &&
            content_range_unsatisfied_total(upstream_response_header(resp, "Content-Range")) ==
                    (int64_t) op->attempt_start) {
                if (free_and_strdup(&op->etag, op->object_etag) < 0)
                        storage_op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                if (op_ranged_seek(op))
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

        /* the first part of a ranged download (or its resume), or the resume of a whole one */
        if (op->range_end > 0 && op->received <= op->range_end)
                r = asprintf(&range, "Range: bytes=%" PRIu64 "-%" PRIu64, op->received, op->range_end);
        else if (op->received > 0)
                r = asprintf(&range, "Range: bytes=%" PRIu64 "-", op->received);
        else
                r = 0;
        if (r < 0) {
                range = NULL;
                return -ENOMEM;
        }
        if (range) {
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

/* A regular file without O_APPEND takes ranges at their offsets: from its position now. */
static int op_setup_ranged(StorageOp *op) {
        off_t pos;
        int flags;

        if (op->fd_kind != FD_REGULAR)
                return 0;
        flags = fcntl(op->fd, F_GETFL);
        if (flags < 0)
                return -errno;
        if (flags & O_APPEND)
                return 0;
        pos = lseek(op->fd, 0, SEEK_CUR);
        if (pos < 0)
                return 0; /* not seekable after all: in order */
        op->ranged = true;
        op->base = (uint64_t) pos;
        op->range_end = op->part_size - 1;
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
        op->part_size = s->part_size;
        r = storage_op_adopt_fd(op, fd);
        if (r < 0)
                goto fail;
        r = op_setup_ranged(op);
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
