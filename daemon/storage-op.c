/* SPDX-License-Identifier: MIT */
/*
 * A storage operation's life cycle, whatever it transfers: creation and the caller's
 * descriptor, the requests it sends through Upstream, the errors it records, the repeats after
 * a transient answer, the abort of a multipart upload, and the delivery of the result from the
 * operation's timer. The state diagram is in storage-internal.h; the requests of each kind are
 * in storage-put.c, storage-multipart.c and storage-get.c, which give this file what it must
 * call back (the stream reader, the request to repeat) as function pointers in the operation.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "macro.h"
#include "storage-internal.h"

static void on_fd_ready(evutil_socket_t fd, short what, void *userdata);

static const char *const phase_table[_PHASE_MAX] = {
        [PHASE_FILL] = "fill",
        [PHASE_PUT] = "put",
        [PHASE_CREATE] = "create",
        [PHASE_RECORD] = "record",
        [PHASE_LIST] = "list",
        [PHASE_PART] = "part",
        [PHASE_COMPLETE] = "complete",
        [PHASE_VERIFY] = "verify",
        [PHASE_ABORT] = "abort",
        [PHASE_GET] = "get",
        [PHASE_RETRY_WAIT] = "retry_wait",
        [PHASE_DONE] = "done",
        [PHASE_DELIVERING] = "delivering",
        [PHASE_CANCELLED] = "cancelled",
};

/* The name of a phase, for debug logs. */
const char *storage_phase_to_string(OpPhase p) {
        if (p < 0 || p >= _PHASE_MAX)
                return NULL;
        return phase_table[p];
}

/* Every request says its body is not signed: the body streams after the headers. */
const char *const storage_headers_plain[] = {
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        NULL,
};
const char *const storage_headers_object[] = {
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        "Content-Type: application/octet-stream",
        NULL,
};
const char *const storage_headers_xml[] = {
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        "Content-Type: application/xml",
        NULL,
};

/* ---- operations: life cycle --------------------------------------------------------------- */

/* Gives the descriptor its flags back if we made it non-blocking. */
static void op_restore_fd(StorageOp *op) {
        if (op->fd >= 0 && op->fd_flags >= 0) {
                (void) fcntl(op->fd, F_SETFL, op->fd_flags);
                op->fd_flags = -1;
        }
}

/* Cancels every part in flight or waiting and stops filling. */
void storage_op_parts_stop(StorageOp *op) {
        for (unsigned i = 0; i < op->n_slots; i++) {
                StoragePart *p = &op->slots[i];

                upstream_request_cancel(p->req);
                p->req = NULL;
                if (p->timer)
                        (void) event_del(p->timer);
                p->state = PART_FREE;
                p->fill = 0;
        }
        op->filling = NULL;
        op->parts_pos = 0;
}

/* Frees the slots and the ETags of a multipart upload. */
static void op_parts_free(StorageOp *op) {
        storage_op_parts_stop(op);
        for (unsigned i = 0; i < op->n_slots; i++) {
                if (op->slots[i].timer)
                        event_free(op->slots[i].timer);
                free(op->slots[i].buf);
        }
        op->slots = mfree(op->slots);
        op->n_slots = 0;
        for (unsigned i = 0; i < op->etags_alloc; i++)
                free(op->etags[i]);
        op->etags = mfree(op->etags);
        op->etags_alloc = 0;
}

/* Frees an operation (detached or not; the caller unlinks it). */
StorageOp *storage_op_free(StorageOp *op) {
        if (!op)
                return NULL;
        upstream_request_cancel(op->req);
        op_parts_free(op);
        if (op->io)
                event_free(op->io);
        if (op->timer)
                event_free(op->timer);
        op_restore_fd(op);
        free(op->endpoint);
        free(op->sigv4);
        free(op->bucket);
        free(op->key);
        erase_and_free(op->userpwd);
        free(op->note);
        if (op->source == SOURCE_MEMORY && op->buf)
                explicit_bzero_safe(op->buf, op->buf_cap);
        free(op->buf);
        free(op->upload_id);
        for (unsigned i = 0; i < op->n_abort_ids; i++)
                free(op->abort_ids[i]);
        free(op->abort_ids);
        free(op->data);
        free(op->object_etag);
        free(op->s3_code);
        free(op->message);
        free(op->etag);
        free(op);
        return NULL;
}

/* Arms the operation's timer. */
void storage_op_arm(StorageOp *op, uint64_t ms) {
        struct timeval tv = usec_to_timeval(ms * USEC_PER_MSEC);

        /* evtimer_add only fails on invalid arguments. */
        (void) evtimer_add(op->timer, &tv);
}

/* Records the result of a failure (the first one wins). */
void storage_op_set_error(StorageOp *op, int error, long status, const char *code,
                         const char *fmt, ...) {
        va_list ap;
        char *m = NULL;

        assert(error < 0);
        if (op->error < 0)
                return;
        op->error = error;
        op->status = status;
        (void) free_and_strdup(&op->s3_code, code);
        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        free(op->message);
        op->message = m; /* NULL on OOM: delivery falls back to strerror() */
}

/* Records a failure of Upstream (no usable answer), preferring our own note. */
void storage_op_set_error_transport(StorageOp *op, const UpstreamResponse *resp,
                                   const char *what) {
        if (op->note)
                storage_op_set_error(op, resp->error, resp->status, NULL, "%s: %s", what, op->note);
        else
                storage_op_set_error(op, resp->error, resp->status, NULL, "%s: %s", what,
                                     isempty(resp->error_text) ? strerror(-resp->error)
                                                       : resp->error_text);
}

/* Records an S3 error answer (-EREMOTEIO): the <Error>'s Code and Message, both named in the
 * message ("PutObject: SignatureDoesNotMatch: The request signature we calculated…"), as
 * that is what tells a user whether the key, the clock or the endpoint is wrong. */
void storage_op_set_error_answer(StorageOp *op, const UpstreamResponse *resp, const char *what) {
        _cleanup_free_ char *raw_code = NULL, *raw_message = NULL, *code = NULL, *message = NULL;
        const char *secret = op->userpwd ? strchr(op->userpwd, ':') : NULL;

        secret = secret ? secret + 1 : NULL;
        if (resp->status >= 300 && resp->status < 400) {
                /* never followed: say where it pointed, not what its body held */
                _cleanup_free_ char *why = upstream_redirect_text(resp->status,
                                                                  upstream_response_header(resp, "Location"));

                storage_op_set_error(op, -EREMOTEIO, resp->status, NULL, "%s: %s", what,
                                     strna(why));
                return;
        }
        if (resp->body_len > 0) {
                (void) xml_element_text(resp->body, resp->body_len, "Code", &raw_code);
                (void) xml_element_text(resp->body, resp->body_len, "Message", &raw_message);
        }
        if (raw_code) {
                code = server_text_sanitize(raw_code, STORAGE_ERROR_CODE_MAX, secret);
                erase_and_free(TAKE_PTR(raw_code));
        }
        if (raw_message) {
                message = server_text_sanitize(raw_message, STORAGE_ERROR_MESSAGE_MAX, secret);
                erase_and_free(TAKE_PTR(raw_message));
        }
        if (!isempty(message) && !isempty(code))
                storage_op_set_error(op, -EREMOTEIO, resp->status, code, "%s: %s: %s", what, code,
                                     message);
        else if (!isempty(message))
                storage_op_set_error(op, -EREMOTEIO, resp->status, NULL, "%s: %s (HTTP %ld)", what,
                                     message, resp->status);
        else if (!isempty(code))
                storage_op_set_error(op, -EREMOTEIO, resp->status, code, "%s: %s (HTTP %ld)", what,
                                     code, resp->status);
        else
                storage_op_set_error(op, -EREMOTEIO, resp->status, NULL,
                                     "%s: the storage answered HTTP %ld", what, resp->status);
}

/* Stops everything in flight; the result is final. Delivery runs from the timer. */
void storage_op_finish(StorageOp *op) {
        upstream_request_cancel(op->req);
        op->req = NULL;
        storage_op_parts_stop(op);
        if (op->io)
                (void) event_del(op->io);
        op->phase = PHASE_DONE;
        storage_op_arm(op, 0);
}

/* Upstream: a detached abort answered; only a stopping daemon waits for it
 * (storage_on_drained()). */
static void on_abort_detached_done(const UpstreamResponse *resp, void *userdata) {
        StorageAbort *a = userdata;
        Storage *s = a->storage;

        if (resp->error < 0)
                log_warning("Failed to abort an abandoned multipart upload: %s, ignoring.",
                            resp->error_text);
        else if (resp->status / 100 != 2 && resp->status != 404)
                log_warning("Failed to abort an abandoned multipart upload: HTTP %ld, ignoring.",
                            resp->status);
        LIST_REMOVE(a, link);
        free(a);
        assert(s->n_aborts > 0);
        if (--s->n_aborts == 0 && s->drained) {
                storage_drained_cb cb = s->drained;

                s->drained = NULL;
                cb(s->drained_userdata);
        }
}

/* Cancels the detached aborts still in flight. */
void storage_aborts_cancel(Storage *s) {
        StorageAbort *a;

        if (s->n_aborts > 0)
                log_warning("Leaving %u multipart upload abort(s) unanswered.", s->n_aborts);
        while ((a = LIST_FIRST(&s->aborts))) {
                upstream_request_cancel(a->req);
                LIST_REMOVE(a, link);
                free(a);
        }
        s->n_aborts = 0;
}

/* Fills in a call of this operation: the object's URL with the query (returned, for the
 * caller to free), the signing, the deadline, the default cap on the answer, and a
 * connection of its own, so that the parts in flight are as many TCP flows. */
int storage_op_call_prepare(StorageOp *op, UpstreamCall *call, const char *const *query,
                            char **ret_url) {
        char *url;

        url = object_url(op->endpoint, op->bucket, op->key, query);
        if (!url)
                return -ENOMEM;
        call->url = url;
        call->aws_sigv4 = op->sigv4;
        call->userpwd = op->userpwd;
        call->own_connection = true;
        call->timeout_ms = op->timeout_ms;
        /* A body must fit in the deadline: allow for it at STORAGE_BODY_RATE_MIN, or a large
         * PutObject on a slow link would time out on every attempt. */
        if (call->body_read && call->body_size > 0)
                call->timeout_ms = (op->timeout_ms ?: STORAGE_TIMEOUT_DEFAULT_MS) +
                                   (uint64_t) call->body_size * MSEC_PER_SEC /
                                           STORAGE_BODY_RATE_MIN;
        if (call->max_body_bytes == 0)
                call->max_body_bytes = STORAGE_XML_MAX;
        *ret_url = url;
        return 0;
}

/* The AbortMultipartUpload of an operation's upload (its query: uploadId). */
static UpstreamCall op_abort_call(void) {
        return (UpstreamCall) {
                .method = UPSTREAM_DELETE,
                .headers = storage_headers_plain,
                .idempotent = true,
                .label = "S3 AbortMultipartUpload",
        };
}

/* Starts an AbortMultipartUpload that nobody waits for. */
static void op_abort_detached(StorageOp *op) {
        _cleanup_free_ char *url = NULL;
        StorageAbort *a;
        UpstreamCall call;
        int r;

        if (!op->storage || !op->upload_id)
                return;
        call = op_abort_call();
        if (storage_op_call_prepare(op, &call,
                                    (const char *const[]) { "uploadId", op->upload_id, NULL },
                                    &url) < 0) {
                log_oom();
                return;
        }
        a = calloc(1, sizeof(StorageAbort));
        if (!a) {
                log_oom();
                return;
        }
        a->storage = op->storage;
        r = upstream_request_start(op->storage->upstream, &call, on_abort_detached_done, a,
                                   &a->req);
        if (r < 0) {
                log_warning_errno(r, "Failed to abort an abandoned multipart upload: %m, "
                                     "ignoring.");
                free(a);
                return;
        }
        LIST_INSERT_HEAD(&op->storage->aborts, a, link);
        op->storage->n_aborts++;
}

/* Upstream: the abort that precedes a failed operation's delivery answered. */
static void on_abort_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;

        op->req = NULL;
        op->upload_id = mfree(op->upload_id);
        if (resp->error < 0 || (resp->status / 100 != 2 && resp->status != 404))
                op->upload_left = true;
        if (resp->error < 0)
                log_debug("Aborting the multipart upload of s3://%s/%s failed: %s", op->bucket,
                          op->key, resp->error_text);
        else if (resp->status / 100 != 2 && resp->status != 404)
                log_debug("Aborting the multipart upload of s3://%s/%s answered HTTP %ld",
                          op->bucket, op->key, resp->status);
        storage_op_finish(op);
}

/* Starts a request of this operation. */
int storage_op_request(StorageOp *op, UpstreamCall *call, const char *const *query,
                      upstream_done_cb cb) {
        _cleanup_free_ char *url = NULL;
        int r;

        assert(op->storage);
        assert(!op->req);

        r = storage_op_call_prepare(op, call, query, &url);
        if (r < 0)
                return r;
        call->stream_userdata = op;
        free(op->note);
        op->note = NULL;
        /* a new request (not a repeat) gets its own allowance of repeats */
        if (op->phase != PHASE_RETRY_WAIT)
                op->http_retries = 0;
        return upstream_request_start(op->storage->upstream, call, cb, op, &op->req);
}

/* Ends an operation with the recorded error: aborts a multipart upload first. */
void storage_op_fail(StorageOp *op) {
        UpstreamCall call;
        int r;

        assert(op->error < 0);
        upstream_request_cancel(op->req);
        op->req = NULL;
        /* the parts in flight go first (their connections close), then the abort */
        storage_op_parts_stop(op);
        if (op->io)
                (void) event_del(op->io);
        if (!op->upload_id) {
                storage_op_finish(op);
                return;
        }
        call = op_abort_call();
        r = storage_op_request(op, &call, (const char *const[]) { "uploadId", op->upload_id, NULL },
                               on_abort_done);
        if (r < 0) {
                log_debug_errno(r, "Failed to start aborting the multipart upload of s3://%s/%s: "
                                   "%m", op->bucket, op->key);
                op->upload_left = true;
                op->upload_id = mfree(op->upload_id);
                storage_op_finish(op);
                return;
        }
        op->phase = PHASE_ABORT;
}

/* Hands the result to the caller and frees the operation. */
static void op_deliver(StorageOp *op) {
        Storage *s = op->storage;
        storage_done_cb done = op->done;
        void *userdata = op->userdata;
        StorageResult res;

        if (op->error < 0)
                s->n_errors++;
        else if (op->kind == OP_GET)
                s->n_gets++;
        if (op->kind == OP_GET)
                s->bytes_down += op->received;

        /* Detached from here on: done may cancel other operations or free the Storage. */
        LIST_REMOVE(op, link);
        op->storage = NULL;
        op->phase = PHASE_DELIVERING;
        op_restore_fd(op);

        log_debug("s3://%s/%s: %s %s after %" PRIu64 " bytes%s%s", op->bucket, op->key,
                  op->kind == OP_GET ? "get" : "put", op->error < 0 ? "failed" : "done",
                  op->kind == OP_GET ? op->received : op->sent, op->error < 0 ? ": " : "",
                  op->error < 0 ? strna(op->message) : "");

        res = (StorageResult) {
                .error = op->error,
                .status = op->error < 0 ? op->status : 0,
                .s3_code = op->error < 0 ? op->s3_code : NULL,
                .message = op->error < 0 ? (op->message ?: strerror(-op->error)) : NULL,
                .bytes = op->kind == OP_GET ? op->received : op->sent,
                .data = op->error >= 0 && op->to_memory ? (op->data ?: "") : NULL,
                .len = op->error >= 0 && op->to_memory ? (size_t) op->received : 0,
                .etag = op->error >= 0 ? op->etag : NULL,
                .fd_failed = op->error < 0 && op->fd_failed,
                .upload_left = op->error < 0 && op->upload_left,
        };
        done(&res, userdata);
        storage_op_free(op);
}

/* Whether an answer asks to be repeated later: a 5xx, or a 200 carrying an <Error> that S3
 * documents as transient (a CompleteMultipartUpload can end so). */
static bool answer_is_transient(const UpstreamResponse *resp) {
        _cleanup_free_ char *code = NULL;

        if (resp->error < 0)
                return false;
        if (resp->status == 500 || resp->status == 502 || resp->status == 503 ||
            resp->status == 504)
                return true;
        if (resp->status != 200 || !xml_root_is(resp->body, resp->body_len, "Error") ||
            xml_element_text(resp->body, resp->body_len, "Code", &code) < 0)
                return false;
        return streq(code, "InternalError") || streq(code, "SlowDown");
}

/* Whether a transient answer may be repeated once more, and after how long: a growing
 * wait, or the server's Retry-After (at most STORAGE_HTTP_RETRY_MAX_MS). */
bool storage_answer_retry_delay(const UpstreamResponse *resp, unsigned *retries,
                                uint64_t *ret_ms) {
        uint64_t delay;

        if (!answer_is_transient(resp) || *retries >= STORAGE_HTTP_RETRIES_MAX)
                return false;
        (*retries)++;
        delay = MIN((uint64_t) STORAGE_HTTP_RETRY_BASE_MS << (*retries - 1),
                    (uint64_t) STORAGE_HTTP_RETRY_MAX_MS);
        if (resp->retry_after_ms > 0)
                delay = MIN(MAX(delay, (uint64_t) resp->retry_after_ms),
                            (uint64_t) STORAGE_HTTP_RETRY_MAX_MS);
        *ret_ms = delay;
        return true;
}

/* After a transient answer: schedules the same request again (`repeat`), unless it was
 * repeated enough. Returns true when it will be. */
bool storage_op_retry_later(StorageOp *op, const UpstreamResponse *resp,
                            storage_op_step_fn repeat) {
        uint64_t delay;

        if (!storage_answer_retry_delay(resp, &op->http_retries, &delay))
                return false;
        log_debug("s3://%s/%s: %s answered HTTP %ld, repeating in %" PRIu64 " ms (%u/%u)",
                  op->bucket, op->key, storage_phase_to_string(op->phase), resp->status, delay,
                  op->http_retries, STORAGE_HTTP_RETRIES_MAX);
        op->retry_phase = op->phase;
        op->repeat = repeat;
        op->phase = PHASE_RETRY_WAIT;
        storage_op_arm(op, delay);
        return true;
}

/* The first look at an answer to `what`: a failure of Upstream ends the operation, a
 * transient answer is repeated later with `repeat`. Returns true when the answer was dealt
 * with so, false when the caller reads it. */
bool storage_op_answer_handled(StorageOp *op, const UpstreamResponse *resp, const char *what,
                               storage_op_step_fn repeat) {
        if (resp->error < 0) {
                storage_op_set_error_transport(op, resp, what);
                storage_op_fail(op);
                return true;
        }
        return storage_op_retry_later(op, resp, repeat);
}

/* Ends an operation whose repeated request could not be started. */
void storage_op_fail_repeat(StorageOp *op, int r) {
        storage_op_set_error(op, r, 0, NULL, "%s: %s", storage_phase_to_string(op->retry_phase),
                             strerror(-r));
        storage_op_fail(op);
}

/* Whether the stream is being read into a part buffer. */
static bool op_reading(const StorageOp *op) {
        return (op->phase == PHASE_FILL || op->phase == PHASE_PART) && op->filling &&
               op->filling->state == PART_FILLING;
}

/* libevent: the operation's timer (see the state diagram in storage-internal.h). */
static void on_op_timer(evutil_socket_t fd, short what, void *userdata) {
        StorageOp *op = userdata;

        (void) fd;
        (void) what;

        switch (op->phase) {
        case PHASE_DONE:
                op_deliver(op);
                break;
        case PHASE_CANCELLED:
                LIST_REMOVE(op, link);
                op->storage = NULL;
                storage_op_free(op);
                break;
        case PHASE_FILL:
        case PHASE_PART:
                if (op_reading(op))
                        op->fill(op); /* a descriptor epoll refuses: read it from the timer */
                break;
        case PHASE_GET:
                upstream_request_resume(op->req); /* same, for writing */
                break;
        case PHASE_RETRY_WAIT:
                op->repeat(op); /* the wait is over: the same request again */
                break;
        case PHASE_RECORD:
                if (op->record_done)
                        storage_op_record_continue(op); /* the caller recorded the upload */
                break;
        default:
                break;
        }
}

/* Waits until the descriptor is ready (EV_READ for a put, EV_WRITE for a get), at most
 * STORAGE_IDLE_MS; a descriptor epoll refuses is polled from the timer instead (after
 * -EAGAIN every STORAGE_EAGAIN_RETRY_MS, within the same idle bound). */
int storage_op_wait_fd(StorageOp *op, bool eagain) {
        struct timeval idle = usec_to_timeval(STORAGE_IDLE_MS * USEC_PER_MSEC);

        if (!eagain)
                op->idle_polls = 0;

        if (op->pollable) {
                if (!op->io) {
                        op->io = event_new(op->storage->base, op->fd,
                                           op->kind == OP_PUT ? EV_READ : EV_WRITE,
                                           on_fd_ready, op);
                        if (!op->io)
                                return -ENOMEM;
                }
                if (event_add(op->io, &idle) == 0)
                        return 0;
                /* epoll_ctl() refused it after all (EPERM): poll it from the timer */
                op->pollable = false;
        }
        if (eagain && ++op->idle_polls > STORAGE_IDLE_MS / STORAGE_EAGAIN_RETRY_MS)
                return -ETIMEDOUT;
        storage_op_arm(op, eagain ? STORAGE_EAGAIN_RETRY_MS : 0);
        return 0;
}

/* Reads from the caller's descriptor without blocking. Returns bytes, 0 at EOF, -errno. */
ssize_t storage_op_read(StorageOp *op, void *buf, size_t n) {
        ssize_t k;

        if (op->fd_kind == FD_SOCKET)
                k = recv(op->fd, buf, n, MSG_DONTWAIT);
        else
                k = read(op->fd, buf, n);
        if (k < 0 && errno != EAGAIN && errno != EINTR)
                op->fd_failed = true;
        return k < 0 ? -errno : k;
}

/* Writes to the caller's descriptor without blocking. Returns bytes or -errno. */
ssize_t storage_op_write(StorageOp *op, const void *buf, size_t n) {
        ssize_t k;

        if (op->fd_kind == FD_SOCKET)
                k = send(op->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        else
                k = write(op->fd, buf, n);
        if (k < 0 && errno != EAGAIN && errno != EINTR)
                op->fd_failed = true;
        return k < 0 ? -errno : k;
}

/* Calls the progress callback, at most every STORAGE_PROGRESS_BYTES or
 * STORAGE_PROGRESS_USEC. Runs inside stream callbacks: the callback may cancel. */
void storage_op_progress(StorageOp *op, uint64_t done) {
        uint64_t now;

        if (!op->progress || done <= op->progress_last)
                return;
        now = now_usec();
        if (done - op->progress_last < STORAGE_PROGRESS_BYTES &&
            now - op->progress_last_usec < STORAGE_PROGRESS_USEC &&
            !(op->progress_total > 0 && done >= op->progress_total))
                return;
        op->progress_last = done;
        op->progress_last_usec = now;
        op->progress(done, op->progress_total, op->userdata);
}

/* Records what a stream callback failed on. */
void storage_op_note(StorageOp *op, const char *fmt, ...) {
        va_list ap;
        char *m;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        free(op->note);
        op->note = m;
}

/* libevent: the caller's descriptor is ready, or stayed idle too long. */
static void on_fd_ready(evutil_socket_t fd, short what, void *userdata) {
        StorageOp *op = userdata;

        (void) fd;

        if (what & EV_TIMEOUT) {
                if (!op_reading(op) && op->phase != PHASE_GET)
                        return;
                storage_op_set_error(op, -ETIMEDOUT, 0, NULL,
                                     op->kind == OP_PUT
                                             ? "No data from the upload descriptor for %u s"
                                             : "The download descriptor took no data for %u s",
                                     STORAGE_IDLE_MS / 1000u);
                storage_op_fail(op);
                return;
        }
        if (op_reading(op))
                op->fill(op);
        else if (op->phase == PHASE_GET)
                upstream_request_resume(op->req);
}

/* Allocates an operation for s3url and copies what it needs. */
int storage_op_new(Storage *s, OpKind kind, const char *s3url, const StorageCredentials *cred,
                  storage_done_cb done, void *userdata, StorageOp **ret) {
        StorageOp *op;
        int r;

        assert_return(s, -EINVAL);
        assert_return(s3url, -EINVAL);
        assert_return(cred, -EINVAL);
        assert_return(done, -EINVAL);
        /* Upstream splits userpwd at the first ':', so the key id cannot hold one */
        if (isempty(cred->access_key_id) || isempty(cred->secret_access_key) ||
            strpbrk(cred->access_key_id, ":\r\n") || strpbrk(cred->secret_access_key, "\r\n"))
                return -EINVAL;

        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        op->kind = kind;
        op->fd = -1;
        op->fd_flags = -1;
        op->done = done;
        op->userdata = userdata;
        op->timeout_ms = s->timeout_ms;
        op->concurrency = s->concurrency;
        *ret = op; /* freed by the caller on failure from here on */

        r = storage_parse_url(s3url, &op->bucket, &op->key);
        if (r < 0)
                return r;
        if (!object_name_is_valid(op->bucket, op->key))
                return -EINVAL;
        op->endpoint = strdup(s->endpoint);
        op->sigv4 = strdup(s->sigv4);
        op->timer = evtimer_new(s->base, on_op_timer, op);
        if (!op->endpoint || !op->sigv4 || !op->timer)
                return -ENOMEM;
        if (asprintf(&op->userpwd, "%s:%s", cred->access_key_id, cred->secret_access_key) < 0) {
                op->userpwd = NULL;
                return -ENOMEM;
        }
        op->storage = s;
        return 0;
}

/* Classifies the caller's descriptor and makes a pipe or device non-blocking. */
int storage_op_adopt_fd(StorageOp *op, int fd) {
        struct stat st;
        int flags;

        if (fstat(fd, &st) < 0)
                return -errno;
        op->fd = fd;
        if (S_ISREG(st.st_mode)) {
                op->fd_kind = FD_REGULAR;
                return 0;
        }
        if (S_ISSOCK(st.st_mode)) {
                op->fd_kind = FD_SOCKET;
                op->pollable = true;
                return 0;
        }
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        op->fd_kind = FD_OTHER;
        /* epoll refuses most character devices (/dev/null, /dev/zero: they never block and
         * are read from the timer); pipes, FIFOs and terminals it takes */
        op->pollable = S_ISFIFO(st.st_mode) || isatty(fd);
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        if (!(flags & O_NONBLOCK)) {
                /* the file description is shared with the caller: put the flag back at the end */
                if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return -errno;
                op->fd_flags = flags;
        }
        return 0;
}

/* Frees an operation that failed before it was linked (NULL is fine) and returns r. */
int storage_op_discard(StorageOp *op, int r) {
        if (op)
                op->storage = NULL;
        storage_op_free(op);
        return r;
}

/* Links a started operation and hands it out. */
void storage_op_attach(StorageOp *op, StorageOp **ret) {
        LIST_INSERT_HEAD(&op->storage->ops, op, link);
        if (ret)
                *ret = op;
}

/* Stops an operation's work: its request, its descriptor, its multipart upload. The caller
 * may close the descriptor as soon as this returns, so its flags go back now and it is not
 * touched again (the operation itself is freed later, from the loop). */
void storage_op_stop(StorageOp *op) {
        upstream_request_cancel(op->req);
        op->req = NULL;
        /* every part in flight goes (its connection closes) before the abort is sent */
        storage_op_parts_stop(op);
        if (op->io)
                (void) event_del(op->io);
        op_restore_fd(op);
        op->fd = -1;
        if (op->upload_id) {
                op_abort_detached(op);
                op->upload_id = mfree(op->upload_id);
        }
}

/* ---- request bodies and answers ------------------------------------------------------- */

/* Upstream: the next bytes of the PutObject body (parts: storage-multipart.c). */
ssize_t storage_op_body_read(void *userdata, char *buf, size_t len) {
        StorageOp *op = userdata;
        ssize_t k;
        size_t n;

        if (op->phase == PHASE_CANCELLED)
                return -ECANCELED;
        n = (size_t) MIN((uint64_t) len, op->body_len - op->body_pos);
        if (n == 0)
                return 0;
        if (op->body_mem) {
                memcpy(buf, op->body_mem + op->body_pos, n);
                k = (ssize_t) n;
        } else {
                do
                        k = pread(op->fd, buf, n, (off_t) (op->body_off + op->body_pos));
                while (k < 0 && errno == EINTR);
                if (k < 0) {
                        int r = -errno;

                        op->fd_failed = true;
                        storage_op_note(op, "failed to read the file at offset %" PRIu64 ": %s",
                                        op->body_off + op->body_pos, strerror(-r));
                        return r;
                }
                if (k == 0) {
                        op->fd_failed = true;
                        storage_op_note(op, "the file ended at %" PRIu64 " bytes, before the %"
                                        PRIu64 " announced", op->body_off + op->body_pos, op->size);
                        return -EIO;
                }
        }
        op->body_pos += (uint64_t) k;
        storage_op_progress(op, op->sent + op->body_pos);
        if (op->phase == PHASE_CANCELLED)
                return -ECANCELED;
        return k;
}

/* Upstream: the body is sent again (a network retry). */
int storage_op_body_rewind(void *userdata) {
        StorageOp *op = userdata;

        op->body_pos = 0;
        return 0;
}

/* The ETag header of an answer, if it is one we can keep. */
const char *storage_response_etag(const UpstreamResponse *resp) {
        const char *e = upstream_response_header(resp, "ETag");

        if (isempty(e) || strlen(e) > STORAGE_ETAG_MAX)
                return NULL;
        for (const char *p = e; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return NULL;
        return e;
}
