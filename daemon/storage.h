/* SPDX-License-Identifier: MIT */
/*
 * Storage: the S3-compatible object store behind the Avatar server (STORAGE_ENDPOINT_URL),
 * spoken through Upstream, which signs every request with SigV4 (sigv4.c) over exactly the
 * headers it sends, with the credentials the API's /access endpoint hands out.
 *
 * Glossary:
 *   storage URL   "s3://<bucket>/<key>" as the API uses it; mapped path-style onto the endpoint
 *                 as <endpoint>/<bucket>/<key>, the key percent-encoded per path segment.
 *   canonical     every URL is built the way SigV4 canonicalizes it (style: design.md §4):
 *                 query parameters sorted by name, names and values percent-encoded with only
 *                 RFC 3986 unreserved characters bare, an empty value written "name=", object
 *                 keys encoded per segment; Upstream signs the URL exactly as sent.
 *   put           PutObject for objects up to runners.multipart_threshold_bytes; above it, a
 *                 multipart upload (CreateMultipartUpload, UploadPart × N of
 *                 runners.multipart_part_bytes, CompleteMultipartUpload; AbortMultipartUpload
 *                 on failure). Parts go up `concurrency` at a time, each over a connection
 *                 of its own (HTTP/1.1, also over https), and a part that meets a transient
 *                 answer is repeated alone. A stream (size unknown) is decided on its first
 *                 part instead: one PutObject when it ends within part_size bytes, else
 *                 multipart.
 *   get           GetObject streamed into a descriptor or memory. A transfer cut by a network
 *                 failure (or by the request deadline while it was moving) resumes from the
 *                 next byte with "Range" and "If-Match: <ETag>". Into a regular file (not
 *                 O_APPEND), an object larger than part_size comes in ranges of part_size,
 *                 `concurrency` at a time over connections of their own, each written at
 *                 its offset with pwrite() and resumed on its own.
 *
 * Memory stays flat whatever the object size: a regular file is streamed with pread() at
 * the offsets of each request (so a failed part can be retried), whatever the concurrency;
 * any other descriptor (pipe, socket) is read sequentially into one buffer of part_size per
 * part in flight, 32 MiB in all (so fewer parts go at a time when part_size × concurrency is
 * larger; one buffer at least).
 * Downloads stream into the caller's descriptor; a pipe that is full pauses the transfer until
 * it is writable again. Nothing blocks the loop: sockets are read and written with
 * MSG_DONTWAIT, pipes, FIFOs and character devices get O_NONBLOCK for the duration of the
 * operation (their flags are restored before done runs), and an event on the descriptor (a
 * timer for devices epoll refuses, such as /dev/null) says when to go on. A descriptor that moves no byte for 5 minutes fails the operation with
 * -ETIMEDOUT. Writing to a pipe whose reader went away raises SIGPIPE: the process ignores
 * it (the daemon does), and the operation fails with -EPIPE.
 *
 * Every request carries "x-amz-content-sha256: UNSIGNED-PAYLOAD". Errors carry the S3 error
 * code and message from the XML body, both named in the message ("PutObject:
 * SignatureDoesNotMatch: …"; at most 512 bytes of it, made valid UTF-8). Network failures are retried by Upstream (rewinding
 * the body from its source); the answers S3 calls transient (500, 502, 503, 504, and a 200
 * Complete whose body is an InternalError or SlowDown <Error>) are repeated here, up to 3
 * times, after 250 ms, 500 ms and 1 s (or the server's Retry-After, at most 5 s).
 *
 * Life cycle: an operation handle is valid from its start until done has returned or until
 * storage_cancel(); done is called exactly once from a libevent callback, never from inside
 * a storage_* call. storage_cancel() is safe from any callback (progress included; a no-op
 * from the operation's own done). storage_free() cancels everything without calling back;
 * call it before upstream_free() and never from a progress callback.
 */
#pragma once

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "upstream.h"

typedef struct Storage Storage;
typedef struct StorageOp StorageOp;

typedef struct StorageCredentials {
        const char *access_key_id;
        const char *secret_access_key;
} StorageCredentials;

typedef struct StorageOptions {
        const char *endpoint_url;      /* e.g. "https://host/storage" (no trailing "/") */
        const char *region;            /* SigV4 region; NULL = "us-east-1" */
        uint64_t multipart_threshold;  /* bytes; objects larger than this use multipart
                                        * (<= 5 GiB, the largest PutObject) */
        uint64_t part_size;            /* bytes per part, 5 MiB (the S3 minimum) .. 5 GiB; a
                                        * file that would need more than 10000 parts gets
                                        * larger ones (whole MiB) */
        uint64_t timeout_ms;           /* per HTTP request; 0 = Upstream's default; a
                                        * request with a body gets 1 s more per 256 KiB */
        unsigned concurrency;          /* parts of one upload in flight at a time, 1 .. 64;
                                        * 0 = 10 (the AWS CLI's max_concurrent_requests).
                                        * Upstream's per-host connection limit also bounds
                                        * it. */
} StorageOptions;

/* Completion of an operation: error is 0 or a negative errno (-EREMOTEIO for an S3 error
 * answer, with status/code/message, also for a 200 whose body is an <Error>; -EBADMSG for an
 * answer without the UploadId or ETag it must carry; -EIO/-EPIPE/-EBADF for the descriptor,
 * -EIO also for a stream shorter or longer than its announced size; -ETIMEDOUT for an idle
 * descriptor; -EFBIG past storage_get_memory's cap or 10000 parts of a stream; network errors
 * as Upstream reports them). `bytes` is what was transferred. The strings are valid during
 * the call only. For storage_get_memory, data/len hold the object (NUL-terminated; NULL when
 * error < 0). */
typedef struct StorageResult {
        int error;
        long status;              /* HTTP status of the failing request, 0 if none */
        const char *s3_code;      /* e.g. "SignatureDoesNotMatch", or NULL */
        const char *message;      /* human sentence; never NULL when error < 0 */
        uint64_t bytes;
        const char *data;         /* storage_get_memory only */
        size_t len;
        const char *etag;         /* of the object written (put) or read (get), or NULL */
        bool fd_failed;           /* the failure is the caller's descriptor's (reading or writing
                                   * it failed, or it held fewer or more bytes than announced),
                                   * not the storage's: an io_error, whatever the status */
        bool upload_left;         /* a failed put's multipart upload may still be in progress
                                   * upstream: its abort failed, or CreateMultipartUpload got no
                                   * answer (storage_abort_uploads() settles it) */
} StorageResult;

typedef void (*storage_done_cb)(const StorageResult *res, void *userdata);
/* Progress: bytes transferred so far and the total (0 when unknown: streams and gets). Called
 * at most every 64 KiB or 100 ms, from inside the transfer; the last call may come before the
 * last byte, done carries the final count. */
typedef void (*storage_progress_cb)(uint64_t done, uint64_t total, void *userdata);

/* Creates the client on `base` over `upstream` (both borrowed). Copies the options.
 * -EINVAL for options out of range (endpoint not http(s), part size, threshold, a region
 * that is not [A-Za-z0-9_-]). */
int storage_new(struct event_base *base, Upstream *upstream, const StorageOptions *opts, Storage **ret);
Storage *storage_free(Storage *s);
/* Replaces the options for operations started from now on. */
int storage_set_options(Storage *s, const StorageOptions *opts);

/* Splits "s3://bucket/key" into malloc'd bucket and key. -EINVAL when it is not of that form
 * (empty bucket or key, other scheme). */
int storage_parse_url(const char *s3url, char **ret_bucket, char **ret_key);

/* Builds the canonical endpoint URL for bucket/key plus an optional query (an array of
 * name/value pairs, NULL-terminated; values unencoded; at most 16 pairs). Returns malloc'd
 * or NULL on OOM. */
char *storage_object_url(const Storage *s, const char *bucket, const char *key, const char *const *query);

/* Uploads from `fd` (borrowed; the caller keeps it open until completion) to s3url.
 * `size` is the byte count for a regular file (from fstat; the object is the file from
 * offset 0), or -1 for a stream read until end of file (a regular file passed with -1 is
 * read as a stream from its current position). A size given for any other descriptor is
 * checked against what the stream delivers. Calls progress (may be NULL) as bytes go out and
 * done exactly once, from a libevent callback. Returns 0, or -errno and never calls done:
 * -EINVAL for a URL that is not s3://bucket/key, a key over 1024 bytes or with a "." or ".."
 * segment (libcurl would remove it from the path), a key id that is empty or holds ':'.
 * `ret` may be NULL. */
int storage_put_fd(Storage *s, const char *s3url, const StorageCredentials *cred, int fd, int64_t size,
                   storage_progress_cb progress, storage_done_cb done, void *userdata, StorageOp **ret);

/* The write-ahead of a multipart upload: a caller that must be able to abort an upload after a
 * crash records it before it exists. The hook is called before CreateMultipartUpload is sent
 * (upload_id NULL), and once its answer named the upload (upload_id), before the first part.
 * It returns 0 to go on at once, -errno to fail the upload (aborting it when it exists), or
 * 1 when the caller answers later with storage_upload_recorded() (the operation waits until
 * then; a cancel in the meantime aborts the upload as usual). A PutObject (at most the
 * threshold) calls nothing: it leaves nothing behind. Called from a libevent callback or from
 * inside storage_put_*_hooked(). */
typedef int (*storage_upload_cb)(StorageOp *op, const char *upload_id, void *userdata);

typedef struct StorageUploadHook {
        storage_upload_cb cb;
        void *userdata;
} StorageUploadHook;

/* storage_put_fd() and storage_put_memory() with a write-ahead hook (NULL: none; copied). */
int storage_put_fd_hooked(Storage *s, const char *s3url, const StorageCredentials *cred, int fd, int64_t size,
                          const StorageUploadHook *hook, storage_progress_cb progress, storage_done_cb done,
                          void *userdata, StorageOp **ret);
int storage_put_memory_hooked(Storage *s, const char *s3url, const StorageCredentials *cred, const void *data,
                              size_t len, const StorageUploadHook *hook, storage_done_cb done, void *userdata,
                              StorageOp **ret);

/* The answer to a hook that returned 1: error 0 goes on, a -errno fails the upload with it
 * (aborting the upload when it exists; done's message says the upload could not be
 * recorded). May be called from inside the hook. NULL-safe. */
void storage_upload_recorded(StorageOp *op, int error);

/* Aborts what a client stopped during a multipart upload to s3url may have left upstream:
 * the upload `upload_id` (AbortMultipartUpload), or with upload_id NULL every upload in
 * progress of exactly that key (ListMultipartUploads with the key as prefix, then an abort of
 * each). An upload already gone (NoSuchUpload) counts as aborted. done: error 0 once nothing
 * of the key is left in progress, `bytes` the uploads aborted; transient answers are repeated
 * as for the other requests. Returns 0 or -errno (never calling done), as storage_put_fd(). */
int storage_abort_uploads(Storage *s, const char *s3url, const StorageCredentials *cred, const char *upload_id,
                          storage_done_cb done, void *userdata, StorageOp **ret);

/* Uploads `len` bytes from memory (copied). */
int storage_put_memory(Storage *s, const char *s3url, const StorageCredentials *cred, const void *data,
                       size_t len, storage_done_cb done, void *userdata, StorageOp **ret);

/* Downloads s3url into `fd` (borrowed), writing from the descriptor's current position, which
 * ends after the object. After a failure the descriptor holds the `bytes` written so far (in
 * ranges at their offsets, for a regular file: not always a prefix of the object). */
int storage_get_fd(Storage *s, const char *s3url, const StorageCredentials *cred, int fd,
                   storage_progress_cb progress, storage_done_cb done, void *userdata, StorageOp **ret);

/* Downloads s3url into memory, failing with -EFBIG beyond max_bytes. */
int storage_get_memory(Storage *s, const char *s3url, const StorageCredentials *cred, size_t max_bytes,
                       storage_done_cb done, void *userdata, StorageOp **ret);

/* Cancels: the done callback is not called; the parts in flight are cancelled (their
 * connections closed), then a multipart upload in progress is aborted on the server (fire
 * and forget). The descriptor gets its flags back and is not used any more, so
 * the caller may close it right away. NULL-safe; the handle is invalid afterwards. */
void storage_cancel(StorageOp *op);

/* Detached AbortMultipartUploads (storage_cancel() of an upload that had one under way) are
 * counted until answered, so a stopping daemon can wait for them before it exits:
 * storage_pending_aborts() says how many are in flight; storage_on_drained() registers a
 * callback (one at a time; cb NULL clears it) run once, from the completion of the last one,
 * when the count falls to 0 — never at once, so check the count first. storage_free() cancels
 * the aborts still in flight. */
typedef void (*storage_drained_cb)(void *userdata);
unsigned storage_pending_aborts(const Storage *s);
void storage_on_drained(Storage *s, storage_drained_cb cb, void *userdata);

/* Counters for daemon.status: {"puts", "multipart_uploads", "parts", "gets", "bytes_up",
 * "bytes_down", "errors"}: successful PutObjects, completed multipart uploads, stored parts,
 * successful gets, bytes stored (PutObject and part bodies), bytes received, failed
 * operations (cancelled ones are not counted). New reference. */
struct json_object *storage_stats_json(const Storage *s);
/* storage_stats_json()'s text, byte for byte, appended to t (NULL s: null); m (may be
 * NULL) keeps it while the figures are the same. */
void storage_stats_text(const Storage *s, JsonText *t, JsonTextMemo *m);
