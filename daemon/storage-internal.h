/* SPDX-License-Identifier: MIT */
/*
 * Inside the storage client (the contract is storage.h). The files, each using only those
 * above it in this list:
 *   storage-text.c       strings, canonical URLs, the minimal XML reader, server messages
 *   storage-op.c         an operation's life cycle: requests, errors, repeats, the caller's
 *                        descriptor, delivery
 *   storage-multipart.c  CreateMultipartUpload, UploadPart, CompleteMultipartUpload
 *   storage-put.c        uploads: PutObject, reading a stream, storage_put_*()
 *   storage-get.c        downloads: GetObject and its resumes, storage_get_*()
 *   storage-abort.c      what a killed client left: ListMultipartUploads, AbortMultipartUpload
 *   storage.c            the client: options, cancel, free, statistics
 * Where storage-op.c must call into a later file (a stream that became readable, a request to
 * repeat once a wait is over), the operation carries the function to call.
 *
 * An operation (StorageOp) is a small state machine driven by three things only: Upstream
 * completions, an event on the caller's descriptor, and the operation's own timer.
 *
 *   put, file or memory:  PUT ──────────────────────────────────────────────────┐
 *                         CREATE ─► PART (N parts, C at a time) ─► COMPLETE     │
 *                                                          [─► VERIFY] ─────────┤
 *   put, stream:          FILL ─► PUT   (the stream ended within the first part)├─► DONE
 *                         FILL ─► CREATE ─► PART (filling the next buffers while│
 *                                 the full ones go up) ─► COMPLETE ─────────────┤
 *   get:                  GET [─► RETRY_WAIT ─► GET (resumed with Range)] ──────┘
 *                         (into a regular file: the first part_size bytes, then the rest
 *                         in ranges of part_size, C at a time, each resumed on its own)
 *   a 5xx answer to PUT, CREATE, COMPLETE or GET:  RETRY_WAIT ─► the same request
 *   a 5xx answer to one part:  that part alone waits on its slot's timer and goes again
 *
 *   with a StorageUploadHook:  RECORD before CREATE is sent, and RECORD after its answer
 *                              named the upload, before the first part (the caller's write-ahead)
 *   abort:                [LIST ─►] ABORT × N ─► DONE   (storage_abort_uploads())
 *   a failure once an upload id exists:  ABORT ─► DONE (done runs after the abort answered)
 *   storage_cancel():                    CANCELLED ─► freed (the abort is fire and forget)
 *
 * DONE and CANCELLED are left from the operation's timer, so `done` always runs from a fresh
 * libevent callback with nothing of ours on the stack, and an operation is never freed under
 * a callback that still uses it.
 *
 * Choices:
 *   - Parts go up C at a time (StorageOptions.concurrency, 10 by default like the AWS CLI),
 *     each in a slot (StoragePart) with its own request, its own repeats after a transient
 *     answer and its own connection (UpstreamCall.own_connection: HTTP/1.1, so that neither
 *     HTTP/2 multiplexing nor a busy connection puts two parts on one TCP flow; a WAN path
 *     or a per-flow shaper bounds each flow, not their sum). The ETags are kept by part
 *     number and written in order into the Complete.
 *   - A regular file's parts are read at their offsets with pread() as libcurl asks for
 *     bytes: nothing is buffered, whatever C. A stream is read into one buffer of part_size
 *     per slot, so for streams C is capped at STORAGE_STREAM_BUFFERS_MAX / part_size (at
 *     least 1): while full buffers go up, the next one fills. One byte read past a full
 *     buffer (the carry) tells whether more data follows, without another buffer (a stream
 *     of exactly part_size bytes is one PutObject); it starts the next buffer.
 *   - A download into a regular file (not O_APPEND) asks for its first part_size bytes
 *     ("Range: bytes=0-N"); when the answer's Content-Range says the object is larger, the
 *     rest comes in ranges of part_size over C connections, each with "If-Match: <ETag>"
 *     and written at its offset with pwrite(), each resumed from its own next byte after a
 *     network failure. The descriptor's position ends after the object, as if written in
 *     order. A pipe or socket gets one GetObject, in order, as before. A server that
 *     ignores Range answers 200 with the whole object, which is then simply read through.
 *   - A part that fails for good fails the upload: the other parts are cancelled (their
 *     connections closed), then the upload is aborted. storage_cancel() does the same,
 *     without waiting for the abort.
 *   - Request bodies come from the source at their offsets on every (re)try: the rewind
 *     callback only resets the position, so Upstream's network retries work for PutObject,
 *     UploadPart and the in-memory Create/Complete/Abort bodies.
 *   - A GET into a sink cannot be rewound, so Upstream does not retry it (idempotent false);
 *     on a network failure it is resumed here from the first byte not yet delivered with
 *     "Range: bytes=N-" and "If-Match: <ETag>", at most STORAGE_RESUMES_MAX times in a row
 *     without progress. A request deadline that cut a transfer making progress resumes too,
 *     so timeout_ms bounds a stall, not the size of an object.
 *   - Upstream hands HTTP errors back as they are, but S3 asks clients to repeat a request
 *     that met 500, 502, 503 or 504 (InternalError, SlowDown), and even a 200 Complete whose
 *     body is such an <Error>: every request here is idempotent, so it is repeated up to
 *     STORAGE_HTTP_RETRIES_MAX times after a growing wait (or the server's Retry-After).
 *   - CompleteMultipartUpload is repeated after a network failure (by Upstream, or by libcurl
 *     on a reused connection); when it meets NoSuchUpload (an earlier attempt completed but
 *     its answer was lost), a HeadObject decides: the object is ours when its size and its
 *     "-<parts>" ETag suffix match.
 */
#pragma once

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "macro.h"
#include "storage.h"
#include "upstream.h"

#define MIB (UINT64_C(1) << 20)

/* S3's limits. */
#define STORAGE_PART_MIN (5 * MIB)                /* smallest part but the last */
#define STORAGE_PART_MAX (UINT64_C(5) << 30)      /* largest part */
#define STORAGE_PUT_MAX (UINT64_C(5) << 30)       /* largest single PutObject */
#define STORAGE_PARTS_MAX 10000u                  /* parts of one upload */
#define STORAGE_KEY_MAX 1024u                     /* bytes of an object key */
#define STORAGE_BUCKET_MAX 255u                   /* generous: S3 says 63 */

/* Our bounds. */
#define STORAGE_XML_MAX (1 * MIB)                 /* XML answers: errors, Create, Complete */
#define STORAGE_ETAG_MAX 256u                     /* an ETag header we keep */
#define STORAGE_UPLOAD_ID_MAX 1024u               /* an UploadId we keep */
#define STORAGE_QUERY_MAX 16u                     /* query pairs of one URL */
#define STORAGE_REGION_MAX 64u
#define STORAGE_PROGRESS_BYTES (64u * 1024u)      /* progress at most every 64 KiB … */
#define STORAGE_PROGRESS_USEC (100u * USEC_PER_MSEC) /* … or every 100 ms */
#define STORAGE_READ_BURST (1024u * 1024u)        /* stream bytes read per wakeup (fairness) */
#define STORAGE_IDLE_MS (5u * 60u * 1000u)        /* a descriptor that moves nothing this long */
#define STORAGE_EAGAIN_RETRY_MS 10u               /* re-poll of a descriptor epoll refuses */
#define STORAGE_RESUMES_MAX 5u                    /* GET resumes in a row without progress */
#define STORAGE_RESUME_BASE_MS 200u
#define STORAGE_RESUME_MAX_MS 5000u
#define STORAGE_BODY_RATE_MIN (256u * 1024u)      /* bytes/s a body deadline allows for */
#define STORAGE_TIMEOUT_DEFAULT_MS 60000u         /* Upstream's, when timeout_ms is 0 */
#define STORAGE_HTTP_RETRIES_MAX 3u               /* repeats of one request after a 5xx */
#define STORAGE_HTTP_RETRY_BASE_MS 250u
#define STORAGE_HTTP_RETRY_MAX_MS 5000u
#define STORAGE_DEFAULT_REGION "us-east-1"
#define STORAGE_ERROR_CODE_MAX 64u                /* bytes of an S3 error Code we report */
#define STORAGE_ERROR_MESSAGE_MAX 512u            /* bytes of an S3 error Message we report */
#define STORAGE_CONCURRENCY_DEFAULT 10u           /* parts in flight: the AWS CLI's default */
#define STORAGE_CONCURRENCY_MAX 64u
#define STORAGE_STREAM_BUFFERS_MAX (32 * MIB)     /* part buffers of one stream, in all */

/* A step of an operation that storage-op.c calls back: the stream reader, or the request a
 * wait repeats. It handles its own failure. */
typedef void (*storage_op_step_fn)(StorageOp *op);

typedef enum OpKind {
        OP_PUT,
        OP_GET,
        OP_ABORT,          /* storage_abort_uploads(): what a killed client left (storage-abort.c) */
} OpKind;

typedef enum OpPhase {
        PHASE_FILL,        /* stream: reading the next part into the buffer */
        PHASE_PUT,         /* PutObject in flight */
        PHASE_CREATE,      /* CreateMultipartUpload in flight */
        PHASE_RECORD,      /* the caller records the upload (StorageUploadHook) before it goes on */
        PHASE_LIST,        /* ListMultipartUploads in flight (storage_abort_uploads()) */
        PHASE_PART,        /* UploadPart in flight */
        PHASE_COMPLETE,    /* CompleteMultipartUpload in flight */
        PHASE_VERIFY,      /* HeadObject after a retried Complete met NoSuchUpload */
        PHASE_ABORT,       /* AbortMultipartUpload after a failure, before done */
        PHASE_GET,         /* GetObject in flight */
        PHASE_RETRY_WAIT,  /* waiting to repeat the request of retry_phase */
        PHASE_DONE,        /* result set; the timer delivers it */
        PHASE_DELIVERING,  /* detached; done runs */
        PHASE_CANCELLED,   /* the timer frees it */
        _PHASE_MAX,
        _PHASE_INVALID = -EINVAL,
} OpPhase;

typedef enum OpSource {
        SOURCE_FILE,   /* regular file: pread() at the body's offsets */
        SOURCE_MEMORY, /* our copy of the caller's bytes */
        SOURCE_STREAM, /* anything else: read sequentially into the part buffer */
} OpSource;

/* A slot of a multipart upload: one part at a time goes through it. */
typedef enum PartState {
        PART_FREE,         /* nothing; a stream's buffer may be kept for the next part */
        PART_FILLING,      /* stream: the buffer is being read into (op->filling) */
        PART_READY,        /* stream: the buffer holds a part that waits for the upload id */
        PART_SENDING,      /* UploadPart in flight */
        PART_WAITING,      /* waiting to repeat UploadPart after a transient answer */
} PartState;

typedef struct StoragePart {
        StorageOp *op;
        PartState state;
        UpstreamRequest *req;
        struct event *timer;      /* the wait before a repeat */
        unsigned number;
        uint64_t off;             /* file or memory: where the part starts in the source */
        uint64_t len;
        uint64_t pos;             /* bytes of this attempt handed to libcurl */
        unsigned http_retries;    /* repeats of this part after a 5xx */
        unsigned resumes;         /* get: resumes of this range in a row without progress */
        uint64_t attempt_pos;     /* get: `pos` when the current request began */
        char *buf;                /* stream: this slot's buffer of part_size bytes */
        size_t fill;              /* stream: bytes in buf */
} StoragePart;

typedef enum FdKind {
        FD_NONE,       /* memory operation */
        FD_REGULAR,    /* never blocks, never polled */
        FD_SOCKET,     /* recv()/send() with MSG_DONTWAIT */
        FD_OTHER,      /* pipe, FIFO, character device: O_NONBLOCK while we use it */
} FdKind;

/* A growable string; `failed` sticks after an allocation failure. */
typedef struct StrBuf {
        char *p;
        size_t len;
        size_t alloc;
        bool failed;
} StrBuf;

struct Storage {
        struct event_base *base;
        Upstream *upstream;

        char *endpoint;           /* no trailing "/" */
        char *sigv4;              /* "aws:amz:<region>:s3" */
        uint64_t threshold;
        uint64_t part_size;
        uint64_t timeout_ms;
        unsigned concurrency;     /* parts in flight per upload */

        LIST_HEAD(, StorageOp) ops;
        LIST_HEAD(, StorageAbort) aborts; /* detached aborts in flight (storage_on_drained()) */
        unsigned n_aborts;
        storage_drained_cb drained;
        void *drained_userdata;

        uint64_t n_puts;
        uint64_t n_multipart;
        uint64_t n_parts;
        uint64_t n_gets;
        uint64_t bytes_up;
        uint64_t bytes_down;
        uint64_t n_errors;
};

/* A detached AbortMultipartUpload in flight. */
typedef struct StorageAbort {
        Storage *storage;
        UpstreamRequest *req;
        LIST_ENTRY(StorageAbort) link;
} StorageAbort;

/* Cancels the detached aborts still in flight (storage_free()). */
void storage_aborts_cancel(Storage *s);

struct StorageOp {
        Storage *storage;         /* NULL once detached for delivery */
        LIST_ENTRY(StorageOp) link;
        OpKind kind;
        OpPhase phase;
        struct event *timer;      /* delivery, free after cancel, resume waits, timer-driven I/O */
        struct event *io;         /* EV_READ (put) or EV_WRITE (get) on the caller's fd */
        UpstreamRequest *req;

        storage_progress_cb progress;
        storage_done_cb done;
        void *userdata;

        /* the options in force when the operation started */
        char *endpoint;
        char *sigv4;
        char *bucket;
        char *key;
        char *userpwd;            /* "id:secret", erased before free */
        uint64_t timeout_ms;
        unsigned concurrency;     /* parts in flight at most */
        OpPhase retry_phase;      /* the request RETRY_WAIT repeats */
        storage_op_step_fn repeat; /* … and the function that sends it again */
        unsigned http_retries;    /* repeats of the current request after a 5xx */

        int fd;                   /* borrowed; -1 for memory operations */
        FdKind fd_kind;
        int fd_flags;             /* flags before we added O_NONBLOCK, or -1 */
        bool pollable;            /* epoll takes it (cleared when event_add refuses) */
        unsigned idle_polls;      /* timer polls in a row that found nothing to do */
        char *note;               /* why a stream callback failed, for the message */
        bool fd_failed;           /* reading or writing the caller's descriptor failed, or
                                   * it held fewer or more bytes than announced */

        /* put */
        OpSource source;
        storage_op_step_fn fill;  /* stream: reads the descriptor into op->filling */
        uint64_t size;            /* object size, when size_known */
        bool size_known;
        uint64_t part_size;
        char *buf;                /* memory source */
        size_t buf_cap;
        bool eof;
        bool has_carry;           /* stream: `carry` was read past a full buffer */
        char carry;
        uint64_t stream_read;     /* bytes read from the stream */
        const char *body_mem;     /* PutObject body in memory, or NULL: pread at body_off */
        uint64_t body_off;
        uint64_t body_len;
        uint64_t body_pos;        /* bytes of the PutObject body handed to libcurl */
        uint64_t sent;            /* bytes stored: PutObject or finished parts */
        char *upload_id;
        unsigned part_number;     /* the last part handed out: after all, their count */
        StoragePart *slots;       /* multipart: n_slots parts at a time */
        unsigned n_slots;
        StoragePart *filling;     /* stream: the slot read into, or holding the next part */
        uint64_t next_off;        /* file or memory: where the next part starts */
        uint64_t parts_pos;       /* bytes of the parts in flight handed to libcurl */
        char **etags;             /* of the stored parts, by part number - 1 */
        unsigned etags_alloc;
        StorageUploadHook hook;   /* the caller's write-ahead of the upload, or {} */
        bool record_done;         /* the caller answered the hook (storage_upload_recorded()) */
        int record_error;         /* … with this outcome */
        bool upload_left;         /* the upload may be in progress still (StorageResult) */

        /* abort (storage-abort.c) */
        char **abort_ids;         /* the uploads to abort */
        unsigned n_abort_ids;
        unsigned abort_next;      /* the next of them */

        /* get */
        bool to_memory;
        size_t max_bytes;
        char *data;
        size_t data_alloc;
        uint64_t received;        /* bytes written to the fd or kept in memory */
        uint64_t attempt_start;   /* `received` when the current GET began */
        uint64_t skip;            /* bytes at the head of the next sink call already written */
        unsigned resumes;         /* GET resumes in a row without progress */
        char *object_etag;        /* of the first answer: If-Match for resumes */
        bool ranged;              /* regular file: the object in ranges, written with pwrite */
        uint64_t base;            /* ranged: the descriptor's position at the start */
        uint64_t range_end;       /* ranged: last byte the first request asks for */
        uint64_t object_size;     /* ranged: from the first answer's Content-Range */

        /* progress */
        uint64_t progress_total;
        uint64_t progress_last;
        uint64_t progress_last_usec;

        /* result */
        int error;
        long status;
        char *s3_code;
        char *message;
        char *etag;
};

/* Every request says its body is not signed; objects and XML bodies say what they are. */
extern const char *const storage_headers_plain[];
extern const char *const storage_headers_object[];
extern const char *const storage_headers_xml[];

/* ---- storage-text.c ------------------------------------------------------------------------ */

/* StrBuf: appends bytes, a C string, formatted text, text escaped for XML; frees. After an
 * allocation failure `failed` is set and further appends do nothing. */
void strbuf_add(StrBuf *b, const char *s, size_t n);
void strbuf_puts(StrBuf *b, const char *s);
void strbuf_printf(StrBuf *b, const char *fmt, ...) _printf_(2, 3);
void strbuf_add_xml(StrBuf *b, const char *s);
void strbuf_done(StrBuf *b);
/* Replaces *slot with a copy of s (NULL allowed). Returns 0 or -ENOMEM. */
int free_and_strdup(char **slot, const char *s);

/* Whether the root element of a document is called `name`. */
bool xml_root_is(const char *xml, size_t len, const char *name);
/* The decoded text of the first element called `name` (any depth, namespace prefix
 * ignored). Returns 0, -ENOENT when there is none, -EBADMSG when malformed, -ENOMEM. */
int xml_element_text(const char *xml, size_t len, const char *name, char **ret);

/* Builds <endpoint>/<bucket>/<key>[?query] in canonical form; malloc'd or NULL. */
char *object_url(const char *endpoint, const char *bucket, const char *key,
                 const char *const *query);
/* Whether a bucket and key can be addressed (bounded, no "." or ".." segment in the key). */
bool object_name_is_valid(const char *bucket, const char *key);

/* A server's text made fit for a message: valid UTF-8, no control characters, at most max
 * bytes, the secret replaced. Malloc'd or NULL. */
char *server_text_sanitize(const char *s, size_t max, const char *secret);

/* ---- storage-op.c -------------------------------------------------------------------------- */

/* The name of a phase, for debug logs. */
const char *storage_phase_to_string(OpPhase p);

/* Allocates an operation for s3url (on failure the caller frees it with storage_op_discard(),
 * which returns the error it is given), classifies and adopts the caller's descriptor, and
 * links a started operation into its Storage and hands it out (ret may be NULL). */
int storage_op_new(Storage *s, OpKind kind, const char *s3url, const StorageCredentials *cred,
                   storage_done_cb done, void *userdata, StorageOp **ret);
int storage_op_adopt_fd(StorageOp *op, int fd);
void storage_op_attach(StorageOp *op, StorageOp **ret);
int storage_op_discard(StorageOp *op, int r);
/* Frees an operation (detached or not; the caller unlinks it). */
StorageOp *storage_op_free(StorageOp *op);
/* Stops an operation's work at once: request, descriptor (its flags restored) and multipart
 * upload (aborted, fire and forget). */
void storage_op_stop(StorageOp *op);

/* Arms the operation's timer. */
void storage_op_arm(StorageOp *op, uint64_t ms);
/* Starts a request of this operation for the object's URL with an optional query. */
int storage_op_request(StorageOp *op, UpstreamCall *call, const char *const *query,
                       upstream_done_cb cb);
/* After a transient answer: schedules `repeat` after a growing wait, unless the request was
 * repeated enough. Returns true when it will be. */
bool storage_op_retry_later(StorageOp *op, const UpstreamResponse *resp,
                            storage_op_step_fn repeat);
/* The first look at an answer to `what`: a failure of Upstream ends the operation (its error
 * recorded), a transient answer is repeated later with `repeat`. Returns true when the answer
 * was dealt with so, false when the caller reads it. */
bool storage_op_answer_handled(StorageOp *op, const UpstreamResponse *resp, const char *what,
                               storage_op_step_fn repeat);

/* Records the result of a failure (the first one wins): formatted, from an Upstream failure
 * (preferring the operation's note), or from an S3 error answer (-EREMOTEIO). */
void storage_op_set_error(StorageOp *op, int error, long status, const char *code,
                          const char *fmt, ...) _printf_(5, 6);
void storage_op_set_error_transport(StorageOp *op, const UpstreamResponse *resp,
                                    const char *what);
void storage_op_set_error_answer(StorageOp *op, const UpstreamResponse *resp, const char *what);
/* Records what a stream callback failed on. */
void storage_op_note(StorageOp *op, const char *fmt, ...) _printf_(2, 3);
/* Ends with the recorded error (aborting a multipart upload first), or with success. */
void storage_op_fail(StorageOp *op);
void storage_op_finish(StorageOp *op);
/* Ends an operation whose repeated request could not be started. */
void storage_op_fail_repeat(StorageOp *op, int r);

/* The caller's descriptor: waits until it is ready (at most STORAGE_IDLE_MS), reads and
 * writes without blocking (bytes, 0 at end of file, or -errno). */
int storage_op_wait_fd(StorageOp *op, bool eagain);
ssize_t storage_op_read(StorageOp *op, void *buf, size_t n);
ssize_t storage_op_write(StorageOp *op, const void *buf, size_t n);
/* Calls the progress callback, at most every STORAGE_PROGRESS_BYTES or
 * STORAGE_PROGRESS_USEC. The callback may cancel. */
void storage_op_progress(StorageOp *op, uint64_t done);

/* Cancels every part in flight or waiting (their connections close) and stops filling. */
void storage_op_parts_stop(StorageOp *op);
/* Whether a transient answer may be repeated once more (*retries counts the repeats; it is
 * incremented), and after how long. */
bool storage_answer_retry_delay(const UpstreamResponse *resp, unsigned *retries,
                                uint64_t *ret_ms);
/* Fills in a call of this operation: the object's URL with the query (returned for the
 * caller to free), signing, deadline, answer cap, a connection of its own. */
int storage_op_call_prepare(StorageOp *op, UpstreamCall *call, const char *const *query,
                            char **ret_url);

/* Upstream callbacks for the PutObject body taken from the source. */
ssize_t storage_op_body_read(void *userdata, char *buf, size_t len);
int storage_op_body_rewind(void *userdata);
/* The ETag header of an answer, if it is one we can keep. */
const char *storage_response_etag(const UpstreamResponse *resp);

/* ---- storage-multipart.c ------------------------------------------------------------------- */

/* Allocates the slots of a multipart upload: `n` at most (-ENOMEM). */
int storage_op_parts_alloc(StorageOp *op, unsigned n);
/* Starts CreateMultipartUpload (returns -errno when it cannot start). */
int storage_op_start_create(StorageOp *op);
/* Stream: op->filling holds a part. With an upload id it goes up now, and the next slot
 * free starts filling; without, it waits (PART_READY) for CreateMultipartUpload. */
void storage_op_part_filled(StorageOp *op);
/* The caller answered the hook (storage_upload_recorded()) while the operation waited in
 * RECORD: goes on (the timer calls it). */
void storage_op_record_continue(StorageOp *op);
