/* SPDX-License-Identifier: MIT */
/*
 * Storage: S3 (path-style, SigV4 by libcurl) over Upstream. The contract is storage.h.
 *
 * An operation (StorageOp) is a small state machine driven by three things only: Upstream
 * completions, an event on the caller's descriptor, and the operation's own timer.
 *
 *   put, file or memory:  PUT ──────────────────────────────────────────────────┐
 *                         CREATE ─► PART × N ─► COMPLETE [─► VERIFY] ───────────┤
 *   put, stream:          FILL ─► PUT   (the stream ended within the first part)├─► DONE
 *                         FILL ─► CREATE ─► PART ─► FILL ─► PART … ─► COMPLETE ─┤
 *   get:                  GET [─► RETRY_WAIT ─► GET (resumed with Range)] ──────┘
 *   a 5xx answer to PUT, CREATE, PART, COMPLETE or GET:  RETRY_WAIT ─► the same request
 *
 *   a failure once an upload id exists:  ABORT ─► DONE (done runs after the abort answered)
 *   storage_cancel():                    CANCELLED ─► freed (the abort is fire and forget)
 *
 * DONE and CANCELLED are left from the operation's timer, so `done` always runs from a fresh
 * libevent callback with nothing of ours on the stack, and an operation is never freed under
 * a callback that still uses it.
 *
 * Choices:
 *   - Parts go one at a time. A regular file could feed two in flight with pread(), but one
 *     keeps a stream's memory at one part buffer and the ETag list in order; on a single
 *     connection the throughput is what the link gives anyway.
 *   - A stream is read into one buffer of part_size + 1 bytes: the extra byte tells, without
 *     a second buffer, whether more data follows a full part (a stream of exactly part_size
 *     bytes is one PutObject). It moves to the front once the part is stored.
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
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "macro.h"
#include "storage.h"

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

typedef enum OpKind {
        OP_PUT,
        OP_GET,
} OpKind;

typedef enum OpPhase {
        PHASE_FILL,        /* stream: reading the next part into the buffer */
        PHASE_PUT,         /* PutObject in flight */
        PHASE_CREATE,      /* CreateMultipartUpload in flight */
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

        LIST_HEAD(, StorageOp) ops;

        uint64_t n_puts;
        uint64_t n_multipart;
        uint64_t n_parts;
        uint64_t n_gets;
        uint64_t bytes_up;
        uint64_t bytes_down;
        uint64_t n_errors;
};

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
        OpPhase retry_phase;      /* the request RETRY_WAIT repeats */
        unsigned http_retries;    /* repeats of the current request after a 5xx */

        int fd;                   /* borrowed; -1 for memory operations */
        FdKind fd_kind;
        int fd_flags;             /* flags before we added O_NONBLOCK, or -1 */
        bool pollable;            /* epoll takes it (cleared when event_add refuses) */
        unsigned idle_polls;      /* timer polls in a row that found nothing to do */
        char *note;               /* why a stream callback failed, for the message */

        /* put */
        OpSource source;
        uint64_t size;            /* object size, when size_known */
        bool size_known;
        uint64_t part_size;
        char *buf;                /* memory source, or the stream's part buffer */
        size_t buf_cap;
        size_t buf_fill;
        bool eof;
        uint64_t stream_read;     /* bytes read from the stream */
        const char *body_mem;     /* current body in memory, or NULL: pread at body_off */
        uint64_t body_off;
        uint64_t body_len;
        uint64_t body_pos;        /* bytes of the current body handed to libcurl */
        uint64_t sent;            /* bytes stored: PutObject or finished parts */
        char *upload_id;
        unsigned part_number;     /* the part in flight, or the last one stored */
        StrBuf parts_xml;         /* <Part>…</Part> of the stored parts */

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

static const char *const phase_table[_PHASE_MAX] = {
        [PHASE_FILL] = "fill",
        [PHASE_PUT] = "put",
        [PHASE_CREATE] = "create",
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
static const char *phase_to_string(OpPhase p) {
        if (p < 0 || p >= _PHASE_MAX)
                return NULL;
        return phase_table[p];
}

/* Every request says its body is not signed: the body streams after the headers. */
static const char *const headers_plain[] = {
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        NULL,
};
static const char *const headers_object[] = {
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        "Content-Type: application/octet-stream",
        NULL,
};
static const char *const headers_xml[] = {
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        "Content-Type: application/xml",
        NULL,
};

static void op_start_part(StorageOp *op);
static void op_send_part(StorageOp *op);
static void op_start_complete(StorageOp *op);
static int op_start_create(StorageOp *op);
static int op_start_put(StorageOp *op);
static void op_start_get(StorageOp *op);
static void op_fill(StorageOp *op);
static void on_fd_ready(evutil_socket_t fd, short what, void *userdata);

/* ---- small helpers ----------------------------------------------------------------------- */

/* Makes room for n more bytes (plus a NUL). */
static bool strbuf_reserve(StrBuf *b, size_t n) {
        size_t want;
        char *p;

        if (b->failed)
                return false;
        if (n > SIZE_MAX / 2 - b->len) {
                b->failed = true;
                return false;
        }
        if (b->len + n + 1 <= b->alloc)
                return true;
        want = MAX(b->len + n + 1, MAX(b->alloc * 2, (size_t) 256));
        p = realloc(b->p, want);
        if (!p) {
                b->failed = true;
                return false;
        }
        b->p = p;
        b->alloc = want;
        b->p[b->len] = '\0';
        return true;
}

/* Appends n bytes. */
static void strbuf_add(StrBuf *b, const char *s, size_t n) {
        if (!strbuf_reserve(b, n))
                return;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

/* Appends a C string. */
static void strbuf_puts(StrBuf *b, const char *s) {
        strbuf_add(b, s, strlen(s));
}

/* Appends formatted text. */
static void strbuf_printf(StrBuf *b, const char *fmt, ...) _printf_(2, 3);
static void strbuf_printf(StrBuf *b, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || !strbuf_reserve(b, (size_t) n)) {
                b->failed = true;
                return;
        }
        va_start(ap, fmt);
        (void) vsnprintf(b->p + b->len, (size_t) n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t) n;
}

/* Frees the contents. */
static void strbuf_done(StrBuf *b) {
        b->p = mfree(b->p);
        b->len = b->alloc = 0;
        b->failed = false;
}

/* Hands the string over (NULL after a failure); the buffer is empty afterwards. */
static char *strbuf_steal(StrBuf *b) {
        char *p;

        if (b->failed || !strbuf_reserve(b, 0)) {
                strbuf_done(b);
                return NULL;
        }
        p = TAKE_PTR(b->p);
        b->len = b->alloc = 0;
        return p;
}

/* Whether a byte is an RFC 3986 unreserved character (the only ones SigV4 leaves bare). */
static bool char_is_unreserved(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends s percent-encoded the SigV4 way: unreserved bytes bare, every other byte "%XX"
 * with upper-case hex (UTF-8 sequences byte by byte), '/' bare only when keep_slash.
 * libcurl's curl_easy_escape() would do for segments, but this also serves whole keys. */
static void strbuf_add_encoded(StrBuf *b, const char *s, bool keep_slash) {
        static const char hex[] = "0123456789ABCDEF";

        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                char e[3];

                if (char_is_unreserved(*p) || (keep_slash && *p == '/')) {
                        strbuf_add(b, (const char *) p, 1);
                        continue;
                }
                e[0] = '%';
                e[1] = hex[*p >> 4];
                e[2] = hex[*p & 0xf];
                strbuf_add(b, e, 3);
        }
}

/* A percent-encoded copy of s (see strbuf_add_encoded()), or NULL. */
static char *pct_encode(const char *s, bool keep_slash) {
        StrBuf b = {};

        strbuf_reserve(&b, strlen(s));
        strbuf_add_encoded(&b, s, keep_slash);
        return strbuf_steal(&b);
}

/* Appends s escaped for XML text. */
static void strbuf_add_xml(StrBuf *b, const char *s) {
        for (; *s; s++)
                switch (*s) {
                case '&':
                        strbuf_puts(b, "&amp;");
                        break;
                case '<':
                        strbuf_puts(b, "&lt;");
                        break;
                case '>':
                        strbuf_puts(b, "&gt;");
                        break;
                default:
                        strbuf_add(b, s, 1);
                }
}

/* Replaces *slot with a copy of s (NULL allowed). Returns 0 or -ENOMEM. */
static int free_and_strdup(char **slot, const char *s) {
        char *c = NULL;

        if (s) {
                c = strdup(s);
                if (!c)
                        return -ENOMEM;
        }
        free(*slot);
        *slot = c;
        return 0;
}

/* ---- minimal XML --------------------------------------------------------------------------
 *
 * S3 answers are small flat documents; we read a handful of text elements (UploadId, ETag,
 * Code, Message) and the root's name. No DTDs, no entity definitions: the five predefined
 * entities and character references are decoded, anything else is malformed. Every scan is
 * bounded by the body, which Upstream caps at STORAGE_XML_MAX.
 */

/* Whether c is XML white space. */
static bool xml_is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Whether c ends an element name. */
static bool xml_ends_name(char c) {
        return xml_is_space(c) || c == '>' || c == '/';
}

/* Skips "<!--…-->", "<![CDATA[…]]>", "<!…>" or "<?…?>" starting at p. NULL if unterminated. */
static const char *xml_skip_markup(const char *p, const char *end) {
        const char *q;

        if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
                q = memmem(p + 4, (size_t) (end - p - 4), "-->", 3);
                return q ? q + 3 : NULL;
        }
        if (end - p >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
                q = memmem(p + 9, (size_t) (end - p - 9), "]]>", 3);
                return q ? q + 3 : NULL;
        }
        if (end - p >= 2 && p[1] == '?') {
                q = memmem(p + 2, (size_t) (end - p - 2), "?>", 2);
                return q ? q + 2 : NULL;
        }
        q = memchr(p, '>', (size_t) (end - p));
        return q ? q + 1 : NULL;
}

/* Whether the tag name at p (up to end) is `name`, with or without a namespace prefix. On a
 * match, *ret_after points past the name. */
static bool xml_name_matches(const char *p, const char *end, const char *name,
                             const char **ret_after) {
        const char *n = p, *colon = NULL;
        size_t l = strlen(name);

        while (p < end && !xml_ends_name(*p)) {
                if (*p == ':')
                        colon = p;
                p++;
        }
        if (colon)
                n = colon + 1;
        if ((size_t) (p - n) != l || memcmp(n, name, l) != 0)
                return false;
        *ret_after = p;
        return true;
}

/* Whether the root element of a document is called `name`. */
static bool xml_root_is(const char *xml, size_t len, const char *name) {
        const char *p = xml, *end = xml + len, *after;

        if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
                p += 3;
        while (p < end) {
                if (xml_is_space(*p)) {
                        p++;
                        continue;
                }
                if (*p != '<' || end - p < 2)
                        return false;
                if (p[1] == '?' || p[1] == '!') {
                        p = xml_skip_markup(p, end);
                        if (!p)
                                return false;
                        continue;
                }
                return xml_name_matches(p + 1, end, name, &after);
        }
        return false;
}

/* Appends code point cp as UTF-8. */
static int utf8_put(StrBuf *b, unsigned long cp) {
        char u[4];
        size_t n;

        if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return -EBADMSG;
        if (cp < 0x80) {
                u[0] = (char) cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (char) (0xC0 | (cp >> 6));
                u[1] = (char) (0x80 | (cp & 0x3F));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (char) (0xE0 | (cp >> 12));
                u[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char) (0x80 | (cp & 0x3F));
                n = 3;
        } else {
                u[0] = (char) (0xF0 | (cp >> 18));
                u[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
                u[3] = (char) (0x80 | (cp & 0x3F));
                n = 4;
        }
        strbuf_add(b, u, n);
        return 0;
}

/* Decodes the text between s and e: entities and character references, CDATA sections kept
 * verbatim, surrounding white space trimmed. Child elements are malformed here. */
static int xml_decode_text(const char *s, const char *e, char **ret) {
        static const struct {
                const char *name;
                char c;
        } entities[] = {
                { "lt;", '<' }, { "gt;", '>' }, { "amp;", '&' }, { "quot;", '"' }, { "apos;", '\'' },
        };
        _cleanup_(strbuf_done) StrBuf b = {};
        char *out;
        size_t l;

        while (s < e && xml_is_space(*s))
                s++;
        while (e > s && xml_is_space(e[-1]))
                e--;
        if (!strbuf_reserve(&b, (size_t) (e - s)))
                return -ENOMEM;

        while (s < e) {
                const char *amp = s, *semi;
                bool known = false;

                if (*s == '<') {
                        if (e - s >= 9 && memcmp(s, "<![CDATA[", 9) == 0) {
                                const char *q = memmem(s + 9, (size_t) (e - s - 9), "]]>", 3);
                                if (!q)
                                        return -EBADMSG;
                                strbuf_add(&b, s + 9, (size_t) (q - s - 9));
                                s = q + 3;
                                continue;
                        }
                        if (e - s >= 4 && memcmp(s, "<!--", 4) == 0) {
                                s = xml_skip_markup(s, e);
                                if (!s)
                                        return -EBADMSG;
                                continue;
                        }
                        return -EBADMSG;
                }
                if (*s != '&') {
                        const char *next = s;

                        while (next < e && *next != '&' && *next != '<')
                                next++;
                        strbuf_add(&b, s, (size_t) (next - s));
                        s = next;
                        continue;
                }
                semi = memchr(amp, ';', (size_t) MIN(e - amp, (ptrdiff_t) 12));
                if (!semi)
                        return -EBADMSG;
                if (amp[1] == '#') {
                        unsigned long cp = 0;
                        bool hexa = amp[2] == 'x' || amp[2] == 'X';
                        const char *d = amp + (hexa ? 3 : 2);
                        int r;

                        if (d == semi)
                                return -EBADMSG;
                        for (; d < semi; d++) {
                                int v;

                                if (*d >= '0' && *d <= '9')
                                        v = *d - '0';
                                else if (hexa && *d >= 'a' && *d <= 'f')
                                        v = *d - 'a' + 10;
                                else if (hexa && *d >= 'A' && *d <= 'F')
                                        v = *d - 'A' + 10;
                                else
                                        return -EBADMSG;
                                cp = cp * (hexa ? 16 : 10) + (unsigned long) v;
                                if (cp > 0x10FFFF)
                                        return -EBADMSG;
                        }
                        r = utf8_put(&b, cp);
                        if (r < 0)
                                return r;
                        s = semi + 1;
                        continue;
                }
                l = (size_t) (semi - amp);
                for (size_t i = 0; i < ELEMENTSOF(entities) && !known; i++)
                        if (strlen(entities[i].name) == l &&
                            memcmp(amp + 1, entities[i].name, l) == 0) {
                                strbuf_add(&b, &entities[i].c, 1);
                                known = true;
                        }
                if (!known)
                        return -EBADMSG;
                s = semi + 1;
        }
        out = strbuf_steal(&b);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

/* The decoded text of the first element called `name` (any depth, namespace prefix
 * ignored). Returns 0, -ENOENT when there is none, -EBADMSG when malformed, -ENOMEM. */
static int xml_element_text(const char *xml, size_t len, const char *name, char **ret) {
        const char *p = xml, *end = xml + len;

        while (p < end) {
                const char *lt = memchr(p, '<', (size_t) (end - p)), *after, *gt, *content;
                char quote = 0;

                if (!lt || end - lt < 2)
                        return -ENOENT;
                if (lt[1] == '!' || lt[1] == '?') {
                        p = xml_skip_markup(lt, end);
                        if (!p)
                                return -EBADMSG;
                        continue;
                }
                if (lt[1] == '/' || !xml_name_matches(lt + 1, end, name, &after)) {
                        p = lt + 1;
                        continue;
                }
                /* the end of the start tag, past attributes (which may hold a '>') */
                for (gt = after; gt < end; gt++) {
                        if (quote) {
                                if (*gt == quote)
                                        quote = 0;
                        } else if (*gt == '"' || *gt == '\'')
                                quote = *gt;
                        else if (*gt == '>')
                                break;
                }
                if (gt >= end)
                        return -EBADMSG;
                if (gt[-1] == '/') {
                        *ret = strdup("");
                        return *ret ? 0 : -ENOMEM;
                }
                content = gt + 1;
                /* the matching end tag: "</" [prefix:] name S? ">" */
                for (const char *q = content; q < end; q++) {
                        const char *c;

                        if (*q != '<' || end - q < 2 || q[1] != '/')
                                continue;
                        if (!xml_name_matches(q + 2, end, name, &c))
                                continue;
                        while (c < end && xml_is_space(*c))
                                c++;
                        if (c >= end || *c != '>')
                                return -EBADMSG;
                        return xml_decode_text(content, q, ret);
                }
                return -EBADMSG;
        }
        return -ENOENT;
}

/* ---- URLs --------------------------------------------------------------------------------- */

typedef struct QueryPair {
        char *name;
        char *value;
} QueryPair;

/* Orders encoded query pairs by name, then value (byte order, as SigV4 does). */
static int query_pair_compare(const void *a, const void *b) {
        const QueryPair *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c != 0 ? c : strcmp(x->value, y->value);
}

/* Builds <endpoint>/<bucket>/<key>[?query] in canonical form. */
static char *object_url(const char *endpoint, const char *bucket, const char *key,
                        const char *const *query) {
        _cleanup_(strbuf_done) StrBuf b = {};
        QueryPair pairs[STORAGE_QUERY_MAX] = {};
        size_t n = 0;
        char *url = NULL;

        for (const char *const *q = query; q && q[0]; q += 2) {
                if (n >= ELEMENTSOF(pairs))
                        goto out;
                pairs[n].name = pct_encode(q[0], false);
                pairs[n].value = pct_encode(q[1] ?: "", false);
                n++;
                if (!pairs[n - 1].name || !pairs[n - 1].value)
                        goto out;
        }
        if (n > 1)
                qsort(pairs, n, sizeof(QueryPair), query_pair_compare);

        strbuf_puts(&b, endpoint);
        strbuf_puts(&b, "/");
        strbuf_add_encoded(&b, bucket, false);
        strbuf_puts(&b, "/");
        strbuf_add_encoded(&b, key, true);
        for (size_t i = 0; i < n; i++) {
                strbuf_puts(&b, i == 0 ? "?" : "&");
                strbuf_puts(&b, pairs[i].name);
                strbuf_puts(&b, "=");
                strbuf_puts(&b, pairs[i].value);
        }
        url = strbuf_steal(&b);
out:
        for (size_t i = 0; i < n; i++) {
                free(pairs[i].name);
                free(pairs[i].value);
        }
        return url;
}

/* Builds the canonical endpoint URL for bucket/key plus an optional query. */
char *storage_object_url(const Storage *s, const char *bucket, const char *key,
                         const char *const *query) {
        if (!s || !bucket || !key)
                return NULL;
        return object_url(s->endpoint, bucket, key, query);
}

/* Splits "s3://bucket/key" into bucket and key. */
int storage_parse_url(const char *s3url, char **ret_bucket, char **ret_key) {
        _cleanup_free_ char *bucket = NULL, *key = NULL;
        const char *p, *slash;

        assert_return(s3url, -EINVAL);
        assert_return(ret_bucket, -EINVAL);
        assert_return(ret_key, -EINVAL);

        if (strncasecmp(s3url, "s3://", 5) != 0)
                return -EINVAL;
        p = s3url + 5;
        slash = strchr(p, '/');
        if (!slash || slash == p || slash[1] == '\0')
                return -EINVAL;
        bucket = strndup(p, (size_t) (slash - p));
        key = strdup(slash + 1);
        if (!bucket || !key)
                return -ENOMEM;
        *ret_bucket = TAKE_PTR(bucket);
        *ret_key = TAKE_PTR(key);
        return 0;
}

/* Whether a bucket and key can be addressed: bounded lengths, and no "." or ".." segment in
 * the key (libcurl removes dot segments from a URL path, which would change the object). */
static bool object_name_is_valid(const char *bucket, const char *key) {
        size_t bl = strlen(bucket), kl = strlen(key);

        if (bl == 0 || bl > STORAGE_BUCKET_MAX || streq(bucket, ".") || streq(bucket, ".."))
                return false;
        if (kl == 0 || kl > STORAGE_KEY_MAX)
                return false;
        for (const char *p = key;;) {
                const char *slash = strchr(p, '/');
                size_t l = slash ? (size_t) (slash - p) : strlen(p);

                if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                if (!slash)
                        return true;
                p = slash + 1;
        }
}

/* ---- options ------------------------------------------------------------------------------ */

/* Validates options and derives the strings we keep. */
static int options_parse(const StorageOptions *o, char **ret_endpoint, char **ret_sigv4) {
        _cleanup_free_ char *endpoint = NULL, *sigv4 = NULL;
        const char *region;
        size_t l;

        assert_return(o, -EINVAL);
        if (isempty(o->endpoint_url) ||
            !(startswith(o->endpoint_url, "http://") || startswith(o->endpoint_url, "https://")))
                return -EINVAL;
        if (o->part_size < STORAGE_PART_MIN || o->part_size > STORAGE_PART_MAX)
                return -EINVAL;
        if (o->multipart_threshold > STORAGE_PUT_MAX)
                return -EINVAL;

        region = o->region ?: STORAGE_DEFAULT_REGION;
        l = strlen(region);
        if (l == 0 || l > STORAGE_REGION_MAX)
                return -EINVAL;
        for (const char *p = region; *p; p++)
                if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
                    !(*p >= '0' && *p <= '9') && *p != '-' && *p != '_')
                        return -EINVAL;

        endpoint = strdup(o->endpoint_url);
        if (!endpoint)
                return -ENOMEM;
        for (l = strlen(endpoint); l > 0 && endpoint[l - 1] == '/'; l--)
                endpoint[l - 1] = '\0';
        if (asprintf(&sigv4, "aws:amz:%s:s3", region) < 0)
                return -ENOMEM;

        *ret_endpoint = TAKE_PTR(endpoint);
        *ret_sigv4 = TAKE_PTR(sigv4);
        return 0;
}

/* Creates the client. */
int storage_new(struct event_base *base, Upstream *upstream, const StorageOptions *opts,
                Storage **ret) {
        _cleanup_free_ char *endpoint = NULL, *sigv4 = NULL;
        Storage *s;
        int r;

        assert_return(base, -EINVAL);
        assert_return(upstream, -EINVAL);
        assert_return(opts, -EINVAL);
        assert_return(ret, -EINVAL);

        r = options_parse(opts, &endpoint, &sigv4);
        if (r < 0)
                return r;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base = base;
        s->upstream = upstream;
        s->endpoint = TAKE_PTR(endpoint);
        s->sigv4 = TAKE_PTR(sigv4);
        s->threshold = opts->multipart_threshold;
        s->part_size = opts->part_size;
        s->timeout_ms = opts->timeout_ms;
        LIST_INIT(&s->ops);
        *ret = s;
        return 0;
}

/* Replaces the options for operations started from now on. */
int storage_set_options(Storage *s, const StorageOptions *opts) {
        char *endpoint, *sigv4;
        int r;

        assert_return(s, -EINVAL);

        r = options_parse(opts, &endpoint, &sigv4);
        if (r < 0)
                return r;
        free(s->endpoint);
        free(s->sigv4);
        s->endpoint = endpoint;
        s->sigv4 = sigv4;
        s->threshold = opts->multipart_threshold;
        s->part_size = opts->part_size;
        s->timeout_ms = opts->timeout_ms;
        return 0;
}

/* ---- operations: life cycle --------------------------------------------------------------- */

/* Gives the descriptor its flags back if we made it non-blocking. */
static void op_restore_fd(StorageOp *op) {
        if (op->fd >= 0 && op->fd_flags >= 0) {
                (void) fcntl(op->fd, F_SETFL, op->fd_flags);
                op->fd_flags = -1;
        }
}

/* Frees an operation (detached or not; the caller unlinks it). */
static StorageOp *op_free(StorageOp *op) {
        if (!op)
                return NULL;
        upstream_request_cancel(op->req);
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
        strbuf_done(&op->parts_xml);
        free(op->data);
        free(op->object_etag);
        free(op->s3_code);
        free(op->message);
        free(op->etag);
        free(op);
        return NULL;
}

/* Arms the operation's timer. */
static void op_arm(StorageOp *op, uint64_t ms) {
        struct timeval tv = usec_to_timeval(ms * USEC_PER_MSEC);

        /* evtimer_add only fails on invalid arguments. */
        (void) evtimer_add(op->timer, &tv);
}

/* Records the result of a failure (the first one wins). */
static void op_set_error(StorageOp *op, int error, long status, const char *code,
                         const char *fmt, ...) _printf_(5, 6);
static void op_set_error(StorageOp *op, int error, long status, const char *code,
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
static void op_set_error_transport(StorageOp *op, const UpstreamResponse *resp,
                                   const char *what) {
        if (op->note)
                op_set_error(op, resp->error, resp->status, NULL, "%s: %s", what, op->note);
        else
                op_set_error(op, resp->error, resp->status, NULL, "%s: %s", what,
                             isempty(resp->error_text) ? strerror(-resp->error)
                                                       : resp->error_text);
}

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0 when there is none:
 * no overlong forms, surrogates or code points past U+10FFFF. */
static size_t utf8_sequence_len(const unsigned char *p, size_t n) {
        size_t len;
        uint32_t cp;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                len = 2, cp = p[0] & 0x1f;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                len = 3, cp = p[0] & 0x0f;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                len = 4, cp = p[0] & 0x07;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return len;
}

/* A server's text made fit for a message shown to people and logs: valid UTF-8 (a bad byte
 * becomes '?'), control characters as spaces, at most max bytes (cut between characters,
 * then "…"), and the secret, should a server ever echo it, replaced. Returns malloc'd or
 * NULL on OOM. */
static char *server_text_sanitize(const char *s, size_t max, const char *secret) {
        size_t n = strlen(s), o = 0;
        char *out = malloc(MIN(n, max) + STRLEN("…") + 1);

        if (!out)
                return NULL;
        for (size_t i = 0; i < n;) {
                const unsigned char *p = (const unsigned char *) s + i;
                size_t l = utf8_sequence_len(p, n - i);

                if (o + MAX(l, (size_t) 1) > max) {
                        memcpy(out + o, "…", STRLEN("…"));
                        o += STRLEN("…");
                        break;
                }
                if (l == 0) {
                        out[o++] = '?';
                        i++;
                } else if (l == 1) {
                        out[o++] = *p < 0x20 || *p == 0x7f ? ' ' : (char) *p;
                        i++;
                } else {
                        memcpy(out + o, p, l);
                        o += l;
                        i += l;
                }
        }
        out[o] = '\0';
        if (!isempty(secret))
                for (char *hit; (hit = strstr(out, secret));) {
                        size_t sl = strlen(secret);

                        memset(hit, '*', MIN(sl, (size_t) 3));
                        memmove(hit + MIN(sl, (size_t) 3), hit + sl, strlen(hit + sl) + 1);
                }
        return out;
}

/* Records an S3 error answer (-EREMOTEIO): the <Error>'s Code and Message, both named in the
 * message ("PutObject: SignatureDoesNotMatch: The request signature we calculated…"), as
 * that is what tells a user whether the key, the clock or the endpoint is wrong. */
static void op_set_error_answer(StorageOp *op, const UpstreamResponse *resp, const char *what) {
        _cleanup_free_ char *raw_code = NULL, *raw_message = NULL, *code = NULL, *message = NULL;
        const char *secret = op->userpwd ? strchr(op->userpwd, ':') : NULL;

        secret = secret ? secret + 1 : NULL;
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
                op_set_error(op, -EREMOTEIO, resp->status, code, "%s: %s: %s", what, code,
                             message);
        else if (!isempty(message))
                op_set_error(op, -EREMOTEIO, resp->status, NULL, "%s: %s (HTTP %ld)", what,
                             message, resp->status);
        else if (!isempty(code))
                op_set_error(op, -EREMOTEIO, resp->status, code, "%s: %s (HTTP %ld)", what, code,
                             resp->status);
        else
                op_set_error(op, -EREMOTEIO, resp->status, NULL,
                             "%s: the storage answered HTTP %ld", what, resp->status);
}

/* Stops everything in flight; the result is final. Delivery runs from the timer. */
static void op_finish(StorageOp *op) {
        upstream_request_cancel(op->req);
        op->req = NULL;
        if (op->io)
                (void) event_del(op->io);
        op->phase = PHASE_DONE;
        op_arm(op, 0);
}

/* Upstream: a detached abort answered; nobody waits for it, so this only logs. */
static void on_abort_detached_done(const UpstreamResponse *resp, void *userdata) {
        (void) userdata;

        if (resp->error < 0)
                log_warning("Failed to abort an abandoned multipart upload: %s, ignoring.",
                            resp->error_text);
        else if (resp->status / 100 != 2 && resp->status != 404)
                log_warning("Failed to abort an abandoned multipart upload: HTTP %ld, ignoring.",
                            resp->status);
}

/* Fills in a call of this operation: the object's URL with the query (returned, for the
 * caller to free), the signing, the deadline and the default cap on the answer. */
static int op_call_prepare(StorageOp *op, UpstreamCall *call, const char *const *query,
                           char **ret_url) {
        char *url;

        url = object_url(op->endpoint, op->bucket, op->key, query);
        if (!url)
                return -ENOMEM;
        call->url = url;
        call->aws_sigv4 = op->sigv4;
        call->userpwd = op->userpwd;
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

/* Starts an AbortMultipartUpload that nobody waits for. */
static void op_abort_detached(StorageOp *op) {
        _cleanup_free_ char *url = NULL;
        UpstreamCall call;
        int r;

        if (!op->storage || !op->upload_id)
                return;
        call = (UpstreamCall) {
                .method = UPSTREAM_DELETE,
                .headers = headers_plain,
                .idempotent = true,
                .label = "S3 AbortMultipartUpload",
        };
        if (op_call_prepare(op, &call, (const char *const[]) { "uploadId", op->upload_id, NULL },
                            &url) < 0) {
                log_oom();
                return;
        }
        r = upstream_request_start(op->storage->upstream, &call, on_abort_detached_done, NULL,
                                   NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to abort an abandoned multipart upload: %m, "
                                     "ignoring.");
}

/* Upstream: the abort that precedes a failed operation's delivery answered. */
static void on_abort_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;

        op->req = NULL;
        op->upload_id = mfree(op->upload_id);
        if (resp->error < 0)
                log_debug("Aborting the multipart upload of s3://%s/%s failed: %s", op->bucket,
                          op->key, resp->error_text);
        else if (resp->status / 100 != 2 && resp->status != 404)
                log_debug("Aborting the multipart upload of s3://%s/%s answered HTTP %ld",
                          op->bucket, op->key, resp->status);
        op_finish(op);
}

/* Starts a request of this operation. */
static int op_request(StorageOp *op, UpstreamCall *call, const char *const *query,
                      upstream_done_cb cb) {
        _cleanup_free_ char *url = NULL;
        int r;

        assert(op->storage);
        assert(!op->req);

        r = op_call_prepare(op, call, query, &url);
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
static void op_fail(StorageOp *op) {
        UpstreamCall call;
        int r;

        assert(op->error < 0);
        upstream_request_cancel(op->req);
        op->req = NULL;
        if (op->io)
                (void) event_del(op->io);
        if (!op->upload_id) {
                op_finish(op);
                return;
        }
        call = (UpstreamCall) {
                .method = UPSTREAM_DELETE,
                .headers = headers_plain,
                .idempotent = true,
                .label = "S3 AbortMultipartUpload",
        };
        r = op_request(op, &call, (const char *const[]) { "uploadId", op->upload_id, NULL },
                       on_abort_done);
        if (r < 0) {
                log_debug_errno(r, "Failed to start aborting the multipart upload of s3://%s/%s: "
                                   "%m", op->bucket, op->key);
                op->upload_id = mfree(op->upload_id);
                op_finish(op);
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
        };
        done(&res, userdata);
        op_free(op);
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

/* After a transient answer: schedules the same request again, unless it was repeated
 * enough. Returns true when it will be. */
static bool op_retry_later(StorageOp *op, const UpstreamResponse *resp) {
        uint64_t delay;

        if (!answer_is_transient(resp) || op->http_retries >= STORAGE_HTTP_RETRIES_MAX)
                return false;
        op->http_retries++;
        delay = MIN((uint64_t) STORAGE_HTTP_RETRY_BASE_MS << (op->http_retries - 1),
                    (uint64_t) STORAGE_HTTP_RETRY_MAX_MS);
        if (resp->retry_after_ms > 0)
                delay = MIN(MAX(delay, (uint64_t) resp->retry_after_ms),
                            (uint64_t) STORAGE_HTTP_RETRY_MAX_MS);
        log_debug("s3://%s/%s: %s answered HTTP %ld, repeating in %" PRIu64 " ms (%u/%u)",
                  op->bucket, op->key, phase_to_string(op->phase), resp->status, delay,
                  op->http_retries, STORAGE_HTTP_RETRIES_MAX);
        op->retry_phase = op->phase;
        op->phase = PHASE_RETRY_WAIT;
        op_arm(op, delay);
        return true;
}

/* The wait is over: repeats the request of retry_phase. */
static void op_retry_now(StorageOp *op) {
        int r = 0;

        switch (op->retry_phase) {
        case PHASE_GET:
                op_start_get(op);
                return;
        case PHASE_PART:
                op_send_part(op);
                return;
        case PHASE_COMPLETE:
                op_start_complete(op);
                return;
        case PHASE_PUT:
                r = op_start_put(op);
                break;
        case PHASE_CREATE:
                r = op_start_create(op);
                break;
        default:
                assert(false);
                r = -EINVAL;
        }
        if (r < 0) {
                op_set_error(op, r, 0, NULL, "%s: %s", phase_to_string(op->retry_phase),
                             strerror(-r));
                op_fail(op);
        }
}

/* libevent: the operation's timer (see the state diagram at the top). */
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
                op_free(op);
                break;
        case PHASE_FILL:
                op_fill(op); /* a descriptor epoll refuses: read it from the timer */
                break;
        case PHASE_GET:
                upstream_request_resume(op->req); /* same, for writing */
                break;
        case PHASE_RETRY_WAIT:
                op_retry_now(op);
                break;
        default:
                break;
        }
}

/* Waits until the descriptor is ready (EV_READ for a put, EV_WRITE for a get), at most
 * STORAGE_IDLE_MS; a descriptor epoll refuses is polled from the timer instead (after
 * -EAGAIN every STORAGE_EAGAIN_RETRY_MS, within the same idle bound). */
static int op_wait_fd(StorageOp *op, bool eagain) {
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
        op_arm(op, eagain ? STORAGE_EAGAIN_RETRY_MS : 0);
        return 0;
}

/* Reads from the caller's descriptor without blocking. Returns bytes, 0 at EOF, -errno. */
static ssize_t fd_read(StorageOp *op, void *buf, size_t n) {
        ssize_t k;

        if (op->fd_kind == FD_SOCKET)
                k = recv(op->fd, buf, n, MSG_DONTWAIT);
        else
                k = read(op->fd, buf, n);
        return k < 0 ? -errno : k;
}

/* Writes to the caller's descriptor without blocking. Returns bytes or -errno. */
static ssize_t fd_write(StorageOp *op, const void *buf, size_t n) {
        ssize_t k;

        if (op->fd_kind == FD_SOCKET)
                k = send(op->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        else
                k = write(op->fd, buf, n);
        return k < 0 ? -errno : k;
}

/* Calls the progress callback, at most every STORAGE_PROGRESS_BYTES or
 * STORAGE_PROGRESS_USEC. Runs inside stream callbacks: the callback may cancel. */
static void op_progress(StorageOp *op, uint64_t done) {
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
static void op_note(StorageOp *op, const char *fmt, ...) _printf_(2, 3);
static void op_note(StorageOp *op, const char *fmt, ...) {
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
                if (op->phase != PHASE_FILL && op->phase != PHASE_GET)
                        return;
                op_set_error(op, -ETIMEDOUT, 0, NULL,
                             op->kind == OP_PUT ? "No data from the upload descriptor for %u s"
                                                : "The download descriptor took no data for %u s",
                             STORAGE_IDLE_MS / 1000u);
                op_fail(op);
                return;
        }
        if (op->phase == PHASE_FILL)
                op_fill(op);
        else if (op->phase == PHASE_GET)
                upstream_request_resume(op->req);
}

/* Allocates an operation for s3url and copies what it needs. */
static int op_new(Storage *s, OpKind kind, const char *s3url, const StorageCredentials *cred,
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
static int op_adopt_fd(StorageOp *op, int fd) {
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

/* ---- put ---------------------------------------------------------------------------------- */

/* Upstream: the next bytes of the current request body (PutObject or UploadPart). */
static ssize_t on_body_read(void *userdata, char *buf, size_t len) {
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

                        op_note(op, "failed to read the file at offset %" PRIu64 ": %s",
                                op->body_off + op->body_pos, strerror(-r));
                        return r;
                }
                if (k == 0) {
                        op_note(op, "the file ended at %" PRIu64 " bytes, before the %" PRIu64
                                " announced", op->body_off + op->body_pos, op->size);
                        return -EIO;
                }
        }
        op->body_pos += (uint64_t) k;
        op_progress(op, op->sent + op->body_pos);
        if (op->phase == PHASE_CANCELLED)
                return -ECANCELED;
        return k;
}

/* Upstream: the body is sent again (a network retry). */
static int on_body_rewind(void *userdata) {
        StorageOp *op = userdata;

        op->body_pos = 0;
        return 0;
}

/* The ETag header of an answer, if it is one we can keep. */
static const char *response_etag(const UpstreamResponse *resp) {
        const char *e = upstream_response_header(resp, "ETag");

        if (isempty(e) || strlen(e) > STORAGE_ETAG_MAX)
                return NULL;
        for (const char *p = e; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return NULL;
        return e;
}

/* Upstream: PutObject answered. */
static void on_put_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        Storage *s = op->storage;

        op->req = NULL;
        if (resp->error < 0) {
                op_set_error_transport(op, resp, "PutObject");
                op_fail(op);
                return;
        }
        if (op_retry_later(op, resp))
                return;
        if (resp->status != 200) {
                op_set_error_answer(op, resp, "PutObject");
                op_fail(op);
                return;
        }
        if (free_and_strdup(&op->etag, response_etag(resp)) < 0) {
                op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                op_fail(op);
                return;
        }
        op->sent = op->body_len;
        s->n_puts++;
        s->bytes_up += op->body_len;
        op_finish(op);
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
                op->body_mem = op->buf;
                op->body_len = op->buf_fill;
                break;
        }
        call = (UpstreamCall) {
                .method = UPSTREAM_PUT,
                .headers = headers_object,
                .body_read = on_body_read,
                .body_rewind = on_body_rewind,
                .body_size = (int64_t) op->body_len,
                .idempotent = true,
                .label = "S3 PutObject",
        };
        r = op_request(op, &call, NULL, on_put_done);
        if (r < 0)
                return r;
        op->phase = PHASE_PUT;
        return 0;
}

/* Upstream: CompleteMultipartUpload answered (or its HeadObject check). */
static void on_verify_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        const char *etag = response_etag(resp), *len = upstream_response_header(resp,
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
                        op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                        op_finish(op);
                        return;
                }
                op->storage->n_multipart++;
                op_finish(op);
                return;
        }
        op_fail(op); /* with the NoSuchUpload recorded before */
}

/* Upstream: CompleteMultipartUpload answered. */
static void on_complete_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        _cleanup_free_ char *etag = NULL;
        UpstreamCall call;
        int r;

        op->req = NULL;
        if (resp->error < 0) {
                op_set_error_transport(op, resp, "CompleteMultipartUpload");
                op_fail(op);
                return;
        }
        if (op_retry_later(op, resp))
                return;
        /* S3 may fail a Complete after it said 200: the body is then an <Error>. */
        if (resp->status != 200 || xml_root_is(resp->body, resp->body_len, "Error")) {
                op_set_error_answer(op, resp, "CompleteMultipartUpload");
                /* libcurl itself resends a request whose reused connection died, so a lost
                 * answer does not always show in resp->attempts: check on any NoSuchUpload. */
                if (resp->status == 404 && streq_ptr(op->s3_code, "NoSuchUpload")) {
                        call = (UpstreamCall) {
                                .method = UPSTREAM_HEAD,
                                .headers = headers_plain,
                                .idempotent = true,
                                /* libcurl applies the body cap to a HEAD's Content-Length */
                                .max_body_bytes = UINT64_MAX,
                                .label = "S3 HeadObject",
                        };
                        r = op_request(op, &call, NULL, on_verify_done);
                        if (r >= 0) {
                                op->phase = PHASE_VERIFY;
                                return;
                        }
                }
                op_fail(op);
                return;
        }
        r = xml_element_text(resp->body, resp->body_len, "ETag", &etag);
        if (r == -ENOMEM) {
                op_set_error(op, r, 0, NULL, "Out of memory");
                op_fail(op);
                return;
        }
        /* A missing ETag is no reason to fail a stored object. */
        op->etag = TAKE_PTR(etag);
        op->upload_id = mfree(op->upload_id);
        op->storage->n_multipart++;
        op_finish(op);
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
                op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                op_fail(op);
                return;
        }
        call = (UpstreamCall) {
                .method = UPSTREAM_POST,
                .headers = headers_xml,
                .body = body.p,
                .body_len = body.len,
                .idempotent = true, /* a lost answer is settled by on_verify_done() */
                .label = "S3 CompleteMultipartUpload",
        };
        r = op_request(op, &call, (const char *const[]) { "uploadId", op->upload_id, NULL },
                       on_complete_done);
        if (r < 0) {
                op_set_error(op, r, 0, NULL, "CompleteMultipartUpload: %s", strerror(-r));
                op_fail(op);
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
        if (resp->error < 0) {
                op_set_error_transport(op, resp, "UploadPart");
                op_fail(op);
                return;
        }
        if (op_retry_later(op, resp))
                return;
        if (resp->status != 200) {
                op_set_error_answer(op, resp, "UploadPart");
                op_fail(op);
                return;
        }
        etag = response_etag(resp);
        if (!etag) {
                op_set_error(op, -EBADMSG, resp->status, NULL,
                             "UploadPart %u: the answer carries no usable ETag",
                             op->part_number);
                op_fail(op);
                return;
        }
        strbuf_printf(&op->parts_xml, "<Part><PartNumber>%u</PartNumber><ETag>",
                      op->part_number);
        strbuf_add_xml(&op->parts_xml, etag);
        strbuf_puts(&op->parts_xml, "</ETag></Part>");
        if (op->parts_xml.failed) {
                op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                op_fail(op);
                return;
        }
        op->sent += op->body_len;
        s->n_parts++;
        s->bytes_up += op->body_len;

        if (op->source != SOURCE_STREAM) {
                if (op->sent < op->size)
                        op_start_part(op);
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
        op_fill(op);
}

/* Starts UploadPart for the next part. */
static void op_start_part(StorageOp *op) {
        if (op->part_number >= STORAGE_PARTS_MAX) {
                op_set_error(op, -EFBIG, 0, NULL,
                             "The stream exceeds %u parts of %" PRIu64 " bytes",
                             STORAGE_PARTS_MAX, op->part_size);
                op_fail(op);
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
                .headers = headers_object,
                .body_read = on_body_read,
                .body_rewind = on_body_rewind,
                .body_size = (int64_t) op->body_len,
                .idempotent = true, /* the same part number again replaces the part */
                .label = "S3 UploadPart",
        };
        r = op_request(op, &call, (const char *const[]) { "partNumber", number, "uploadId",
                                                          op->upload_id, NULL },
                       on_part_done);
        if (r < 0) {
                op_set_error(op, r, 0, NULL, "UploadPart: %s", strerror(-r));
                op_fail(op);
                return;
        }
        op->phase = PHASE_PART;
}

/* Upstream: CreateMultipartUpload answered. */
static void on_create_done(const UpstreamResponse *resp, void *userdata) {
        StorageOp *op = userdata;
        _cleanup_free_ char *id = NULL;
        int r;

        op->req = NULL;
        if (resp->error < 0) {
                op_set_error_transport(op, resp, "CreateMultipartUpload");
                op_fail(op);
                return;
        }
        if (op_retry_later(op, resp))
                return;
        if (resp->status != 200 || xml_root_is(resp->body, resp->body_len, "Error")) {
                op_set_error_answer(op, resp, "CreateMultipartUpload");
                op_fail(op);
                return;
        }
        r = xml_element_text(resp->body, resp->body_len, "UploadId", &id);
        if (r == -ENOMEM) {
                op_set_error(op, r, 0, NULL, "Out of memory");
                op_fail(op);
                return;
        }
        if (r < 0 || isempty(id) || strlen(id) > STORAGE_UPLOAD_ID_MAX) {
                op_set_error(op, -EBADMSG, resp->status, NULL,
                             "CreateMultipartUpload: the answer carries no usable UploadId");
                op_fail(op);
                return;
        }
        op->upload_id = TAKE_PTR(id);
        log_debug("s3://%s/%s: multipart upload started, parts of %" PRIu64 " bytes",
                  op->bucket, op->key, op->part_size);
        op_start_part(op);
}

/* Starts CreateMultipartUpload. */
static int op_start_create(StorageOp *op) {
        UpstreamCall call = {
                .method = UPSTREAM_POST,
                .headers = headers_plain,
                /* A repeat can only leave an empty upload behind, which S3 lifecycle rules
                 * expire; failing a large upload for a network hiccup would cost more. */
                .idempotent = true,
                .label = "S3 CreateMultipartUpload",
        };
        int r;

        r = op_request(op, &call, (const char *const[]) { "uploads", "", NULL },
                       on_create_done);
        if (r < 0)
                return r;
        op->phase = PHASE_CREATE;
        return 0;
}

/* A stream's buffer holds a part (full, or the last one): store it. */
static void op_stream_part_ready(StorageOp *op) {
        int r;

        if (op->size_known && op->eof && op->stream_read != op->size) {
                op_set_error(op, -EIO, 0, NULL,
                             "The upload stream ended after %" PRIu64 " of %" PRIu64 " bytes",
                             op->stream_read, op->size);
                op_fail(op);
                return;
        }
        if (op->upload_id) {
                op_start_part(op);
                return;
        }
        if (op->eof)
                r = op_start_put(op); /* the stream ended within the first part */
        else
                r = op_start_create(op);
        if (r < 0) {
                op_set_error(op, r, 0, NULL, "%s: %s",
                             op->eof ? "PutObject" : "CreateMultipartUpload", strerror(-r));
                op_fail(op);
        }
}

/* Reads the stream into the part buffer until it holds a part, the stream ends, or reading
 * would block (then the descriptor's event or the timer brings us back). */
static void op_fill(StorageOp *op) {
        size_t burst = 0;
        int r;

        while (!op->eof && op->buf_fill < op->buf_cap) {
                ssize_t k;

                if (burst >= STORAGE_READ_BURST) {
                        /* let other work run; a ready descriptor brings us back at once */
                        r = op_wait_fd(op, false);
                        if (r < 0)
                                goto fail;
                        return;
                }
                k = fd_read(op, op->buf + op->buf_fill,
                            MIN(op->buf_cap - op->buf_fill, (size_t) STORAGE_READ_BURST - burst));
                if (k == -EINTR)
                        continue;
                if (k == -EAGAIN) {
                        r = op_wait_fd(op, true);
                        if (r < 0)
                                goto fail;
                        return;
                }
                if (k < 0) {
                        op_set_error(op, (int) k, 0, NULL,
                                     "Failed to read the upload descriptor: %s",
                                     strerror((int) -k));
                        op_fail(op);
                        return;
                }
                if (k == 0) {
                        op->eof = true;
                        break;
                }
                op->buf_fill += (size_t) k;
                op->stream_read += (uint64_t) k;
                op->idle_polls = 0;
                burst += (size_t) k;
                if (op->size_known && op->stream_read > op->size) {
                        op_set_error(op, -EIO, 0, NULL,
                                     "The upload stream is longer than the %" PRIu64
                                     " bytes announced", op->size);
                        op_fail(op);
                        return;
                }
        }
        op_stream_part_ready(op);
        return;
fail:
        if (r == -ETIMEDOUT)
                op_set_error(op, r, 0, NULL, "No data from the upload descriptor for %u s",
                             STORAGE_IDLE_MS / 1000u);
        else
                op_set_error(op, r, 0, NULL, "Failed to wait for the upload descriptor: %s",
                             strerror(-r));
        op_fail(op);
}

/* Links a started operation and hands it out. */
static void op_attach(StorageOp *op, StorageOp **ret) {
        LIST_INSERT_HEAD(&op->storage->ops, op, link);
        if (ret)
                *ret = op;
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
                if (op->pollable)
                        return op_wait_fd(op, false);
                op_arm(op, 0);
                return 0;
        }
        if (op->size > threshold || op->size > STORAGE_PUT_MAX) {
                r = part_size_for(op->part_size, op->size, &op->part_size);
                if (r < 0)
                        return r;
                return op_start_create(op);
        }
        return op_start_put(op);
}

/* Uploads from a descriptor. */
int storage_put_fd(Storage *s, const char *s3url, const StorageCredentials *cred, int fd,
                   int64_t size, storage_progress_cb progress, storage_done_cb done,
                   void *userdata, StorageOp **ret) {
        StorageOp *op = NULL;
        int r;

        assert_return(fd >= 0, -EBADF);
        assert_return(size >= -1, -EINVAL);

        r = op_new(s, OP_PUT, s3url, cred, done, userdata, &op);
        if (r < 0)
                goto fail;
        op->progress = progress;
        op->part_size = s->part_size;
        r = op_adopt_fd(op, fd);
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
                /* one part plus the byte that tells whether another follows */
                if (op->part_size >= SIZE_MAX) {
                        r = -EFBIG;
                        goto fail;
                }
                op->buf_cap = (size_t) op->part_size + 1;
                op->buf = malloc(op->buf_cap);
                if (!op->buf) {
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
        op_attach(op, ret);
        return 0;
fail:
        if (op)
                op->storage = NULL;
        op_free(op);
        return r;
}

/* Uploads from memory. */
int storage_put_memory(Storage *s, const char *s3url, const StorageCredentials *cred,
                       const void *data, size_t len, storage_done_cb done, void *userdata,
                       StorageOp **ret) {
        StorageOp *op = NULL;
        int r;

        assert_return(data || len == 0, -EINVAL);

        r = op_new(s, OP_PUT, s3url, cred, done, userdata, &op);
        if (r < 0)
                goto fail;
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
        op_attach(op, ret);
        return 0;
fail:
        if (op)
                op->storage = NULL;
        op_free(op);
        return r;
}

/* ---- get ---------------------------------------------------------------------------------- */

/* Upstream: object bytes (2xx answers only). */
static ssize_t on_get_sink(void *userdata, const char *buf, size_t len) {
        StorageOp *op = userdata;
        size_t done_here;

        if (op->phase != PHASE_GET)
                return -ECANCELED;

        if (op->to_memory) {
                size_t need;

                if ((uint64_t) len > op->max_bytes - op->received) {
                        op_note(op, "the object is larger than %zu bytes", op->max_bytes);
                        return -EFBIG;
                }
                need = (size_t) op->received + len + 1;
                if (need > op->data_alloc) {
                        size_t want = MIN(MAX(need, MAX(op->data_alloc * 2, (size_t) 65536)),
                                          op->max_bytes + 1);
                        char *p = realloc(op->data, want);

                        if (!p) {
                                op_note(op, "out of memory for %zu bytes", want);
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
                        ssize_t k = fd_write(op, buf + done_here, len - done_here);
                        int r;

                        if (k == -EINTR)
                                continue;
                        if (k == -EAGAIN) {
                                op->skip = done_here;
                                r = op_wait_fd(op, true);
                                if (r == -ETIMEDOUT)
                                        op_note(op, "the download descriptor took no data for "
                                                "%u s", STORAGE_IDLE_MS / 1000u);
                                else if (r < 0)
                                        op_note(op, "cannot wait for the download descriptor: "
                                                "%s", strerror(-r));
                                if (r < 0)
                                        return r;
                                return -EAGAIN;
                        }
                        if (k <= 0) {
                                r = k < 0 ? (int) k : -EIO;
                                op_note(op, "failed to write to the download descriptor: %s",
                                        strerror(-r));
                                return r;
                        }
                        done_here += (size_t) k;
                        op->received += (uint64_t) k;
                        op->idle_polls = 0;
                }
                op->skip -= MIN(op->skip, (uint64_t) len);
        }
        op_progress(op, op->received);
        if (op->phase != PHASE_GET)
                return -ECANCELED;
        return (ssize_t) len;
}

/* The first byte of a "bytes a-b/n" Content-Range, or -1. */
static int64_t content_range_start(const char *v) {
        unsigned long long a;
        char *end;

        if (!v || !(v = startswith(v, "bytes ")) || *v < '0' || *v > '9')
                return -1;
        errno = 0;
        a = strtoull(v, &end, 10);
        if (errno != 0 || *end != '-' || a > INT64_MAX)
                return -1;
        return (int64_t) a;
}

/* The total n of an unsatisfied-range Content-Range ("bytes", star, "/n"), or -1. */
static int64_t content_range_unsatisfied_total(const char *v) {
        unsigned long long n;
        char *end;

        if (!v || !(v = startswith(v, "bytes */")) || *v < '0' || *v > '9')
                return -1;
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno != 0 || *end != '\0' || n > INT64_MAX)
                return -1;
        return (int64_t) n;
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
        op_set_error(op, -EIO, resp->status, NULL,
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
        const char *etag = response_etag(resp);
        uint64_t delay;

        op->req = NULL;
        /* a wait for the descriptor belongs to this request: a resume must not inherit its
         * idle timeout */
        if (op->io)
                (void) event_del(op->io);
        if (resp->status / 100 == 2 && etag && !op->object_etag &&
            free_and_strdup(&op->object_etag, etag) < 0) {
                op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                op_fail(op);
                return;
        }
        if (resp->status / 100 == 2 && op_check_resume(op, resp) < 0) {
                op_fail(op);
                return;
        }

        if (resp->error < 0) {
                /* a note says our own sink failed (the descriptor, memory): no resume */
                if (!op->note && get_error_is_resumable(resp->error, progress) &&
                    (progress || op->resumes < STORAGE_RESUMES_MAX)) {
                        op->resumes = progress ? 0 : op->resumes + 1;
                        delay = progress ? 0 : MIN((uint64_t) STORAGE_RESUME_BASE_MS
                                                           << (op->resumes - 1),
                                                   (uint64_t) STORAGE_RESUME_MAX_MS);
                        log_debug("s3://%s/%s: GetObject failed after %" PRIu64 " bytes (%s), "
                                  "resuming in %" PRIu64 " ms", op->bucket, op->key,
                                  op->received, resp->error_text, delay);
                        op->retry_phase = PHASE_GET;
                        op->phase = PHASE_RETRY_WAIT;
                        op_arm(op, delay);
                        return;
                }
                op_set_error_transport(op, resp, "GetObject");
                op_fail(op);
                return;
        }

        if (op_retry_later(op, resp))
                return;
        if (resp->status == 200 || resp->status == 206) {
                if (free_and_strdup(&op->etag, op->object_etag ?: etag) < 0) {
                        op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                        op_fail(op);
                        return;
                }
                op_finish(op);
                return;
        }
        /* Resumed exactly at the end: nothing was left to send. */
        if (resp->status == 416 && op->attempt_start > 0 &&
            content_range_unsatisfied_total(upstream_response_header(resp, "Content-Range")) ==
                    (int64_t) op->attempt_start) {
                if (free_and_strdup(&op->etag, op->object_etag) < 0)
                        op_set_error(op, -ENOMEM, 0, NULL, "Out of memory");
                op_finish(op);
                return;
        }
        op_set_error_answer(op, resp, "GetObject");
        op_fail(op);
}

/* Starts (or resumes from `received`) GetObject. */
static int op_request_get(StorageOp *op) {
        _cleanup_free_ char *range = NULL, *if_match = NULL;
        const char *headers[4] = { headers_plain[0] };
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
        r = op_request(op, &call, NULL, on_get_done);
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
                op_set_error(op, r, 0, NULL, "GetObject: %s", strerror(-r));
                op_fail(op);
        }
}

/* Starts a get; the first request starts here so that a refused URL is reported at once. */
static int op_begin_get(StorageOp *op, StorageOp **ret) {
        int r;

        r = op_request_get(op);
        if (r < 0)
                return r;
        op_attach(op, ret);
        return 0;
}

/* Downloads into a descriptor. */
int storage_get_fd(Storage *s, const char *s3url, const StorageCredentials *cred, int fd,
                   storage_progress_cb progress, storage_done_cb done, void *userdata,
                   StorageOp **ret) {
        StorageOp *op = NULL;
        int r;

        assert_return(fd >= 0, -EBADF);

        r = op_new(s, OP_GET, s3url, cred, done, userdata, &op);
        if (r < 0)
                goto fail;
        op->progress = progress;
        r = op_adopt_fd(op, fd);
        if (r < 0)
                goto fail;
        r = op_begin_get(op, ret);
        if (r < 0)
                goto fail;
        log_debug("s3://%s/%s: get into fd %d", op->bucket, op->key, fd);
        return 0;
fail:
        if (op)
                op->storage = NULL;
        op_free(op);
        return r;
}

/* Downloads into memory. */
int storage_get_memory(Storage *s, const char *s3url, const StorageCredentials *cred,
                       size_t max_bytes, storage_done_cb done, void *userdata, StorageOp **ret) {
        StorageOp *op = NULL;
        int r;

        assert_return(max_bytes < SIZE_MAX, -EINVAL);

        r = op_new(s, OP_GET, s3url, cred, done, userdata, &op);
        if (r < 0)
                goto fail;
        op->to_memory = true;
        op->max_bytes = max_bytes;
        r = op_begin_get(op, ret);
        if (r < 0)
                goto fail;
        return 0;
fail:
        if (op)
                op->storage = NULL;
        op_free(op);
        return r;
}

/* ---- cancel, free, statistics ------------------------------------------------------------- */

/* Stops an operation's work: its request, its descriptor, its multipart upload. The caller
 * may close the descriptor as soon as this returns, so its flags go back now and it is not
 * touched again (the operation itself is freed later, from the loop). */
static void op_stop(StorageOp *op) {
        upstream_request_cancel(op->req);
        op->req = NULL;
        if (op->io)
                (void) event_del(op->io);
        op_restore_fd(op);
        op->fd = -1;
        if (op->upload_id) {
                op_abort_detached(op);
                op->upload_id = mfree(op->upload_id);
        }
}

/* Cancels an operation. */
void storage_cancel(StorageOp *op) {
        if (!op || op->phase == PHASE_CANCELLED || op->phase == PHASE_DELIVERING)
                return;
        log_debug("s3://%s/%s: cancelled in phase %s", op->bucket, op->key,
                  phase_to_string(op->phase));
        op_stop(op);
        op->phase = PHASE_CANCELLED;
        /* Freed from the loop: the caller may be one of this operation's callbacks. */
        op_arm(op, 0);
}

/* Cancels every operation and frees the client. */
Storage *storage_free(Storage *s) {
        StorageOp *op;

        if (!s)
                return NULL;
        while ((op = LIST_FIRST(&s->ops))) {
                if (op->phase != PHASE_CANCELLED)
                        op_stop(op);
                LIST_REMOVE(op, link);
                op->storage = NULL;
                op_free(op);
        }
        free(s->endpoint);
        free(s->sigv4);
        free(s);
        return NULL;
}

/* Adds one counter to a statistics object. */
static int stats_add(json_object *o, const char *name, uint64_t v) {
        json_object *n = json_object_new_int64((int64_t) MIN(v, (uint64_t) INT64_MAX));

        if (!n || json_object_object_add(o, name, n) < 0) {
                json_object_put(n);
                return -ENOMEM;
        }
        return 0;
}

/* Counters for daemon.status. */
struct json_object *storage_stats_json(const Storage *s) {
        json_object *o;

        if (!s)
                return NULL;
        o = json_object_new_object();
        if (!o)
                return NULL;
        if (stats_add(o, "puts", s->n_puts) < 0 ||
            stats_add(o, "multipart_uploads", s->n_multipart) < 0 ||
            stats_add(o, "parts", s->n_parts) < 0 || stats_add(o, "gets", s->n_gets) < 0 ||
            stats_add(o, "bytes_up", s->bytes_up) < 0 ||
            stats_add(o, "bytes_down", s->bytes_down) < 0 ||
            stats_add(o, "errors", s->n_errors) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}
