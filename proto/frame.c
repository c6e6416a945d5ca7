/* SPDX-License-Identifier: MIT */
/*
 * Newline frame decoder. The buffer layout:
 *
 *   buf:  [ consumed | pending: scanned (no '\n') | unscanned | free ]
 *          0         start                 scanned            end     allocated
 *
 * Bytes before `start` were returned as frames (or skipped as empty lines). Bytes in
 * [start, scanned) are known to hold no '\n', so a scan resumes at `scanned`; when a scan finds
 * a newline it leaves `scanned` on it. The allocation grows geometrically up to `max_frame`
 * and never past it, which bounds what one connection can make us hold.
 *
 * Compaction (moving pending bytes to the front) only happens when it is cheap in amortized
 * terms: when the bytes moved are no more than the bytes freed, or when the pending bytes are
 * a single incomplete line (which then starts at 0 and is not moved again before it is
 * complete). Either way each byte of input is moved a bounded number of times.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "frame.h"
#include "macro.h"

/* First allocation, and the size kept across idle periods; a larger buffer is released once
 * it is empty so a connection that sent one big frame does not keep the memory. */
#define FRAME_BUFFER_MIN (4u * 1024u)
#define FRAME_BUFFER_KEEP (64u * 1024u)

struct FrameDecoder {
        char *buf;
        size_t allocated;
        size_t max_frame;
        size_t start;
        size_t scanned;
        size_t end;
        size_t reserved; /* avail granted by the last reserve, for commit's check */
        uint64_t base;   /* stream offset of buf[0] */
        bool failed;     /* a line exceeded the limit: the stream is lost */
};

/* Creates a decoder; the buffer is allocated on first use. */
int frame_decoder_new(size_t max_frame, FrameDecoder **ret) {
        FrameDecoder *d;

        assert_return(ret, -EINVAL);
        assert_return(max_frame > 0, -EINVAL);

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->max_frame = max_frame;
        *ret = d;
        return 0;
}

/* Frees the decoder and its buffer. */
FrameDecoder *frame_decoder_free(FrameDecoder *d) {
        if (!d)
                return NULL;
        free(d->buf);
        free(d);
        return NULL;
}

/* When nothing is pending, rewinds to the front of the buffer (no bytes to move). */
static void decoder_rewind_if_empty(FrameDecoder *d) {
        if (d->start != d->end)
                return;
        d->base += d->end;
        d->start = d->scanned = d->end = 0;
}

/* Scans the unscanned bytes for a newline; true when a complete line is pending. */
static bool decoder_scan(FrameDecoder *d) {
        const char *p;

        if (d->scanned >= d->end)
                return false;
        if (d->buf[d->scanned] == '\n')
                return true;
        p = memchr(d->buf + d->scanned, '\n', d->end - d->scanned);
        if (!p) {
                d->scanned = d->end;
                return false;
        }
        d->scanned = (size_t) (p - d->buf);
        return true;
}

/* Moves the pending bytes to the front of the buffer. */
static void decoder_compact(FrameDecoder *d) {
        size_t pending = d->end - d->start;

        if (d->start == 0)
                return;
        memmove(d->buf, d->buf + d->start, pending);
        d->base += d->start;
        d->scanned -= d->start;
        d->end = pending;
        d->start = 0;
}

/* Makes room for more input, see frame.h. */
int frame_decoder_reserve(FrameDecoder *d, size_t want, char **ret_ptr, size_t *ret_avail) {
        size_t pending, room, need, avail;
        bool complete;

        assert_return(d, -EINVAL);
        assert_return(want > 0, -EINVAL);
        assert_return(ret_ptr, -EINVAL);
        assert_return(ret_avail, -EINVAL);

        if (d->failed)
                return -EMSGSIZE;

        decoder_rewind_if_empty(d);
        if (d->end == 0 && d->allocated > FRAME_BUFFER_KEEP) {
                free(d->buf);
                d->buf = NULL;
                d->allocated = 0;
        }

        pending = d->end - d->start;
        complete = decoder_scan(d);
        if (!complete && pending >= d->max_frame) {
                /* The incomplete line already holds max_frame bytes: even its terminator
                 * would not fit. */
                d->failed = true;
                return -EMSGSIZE;
        }

        room = d->max_frame - pending; /* what the limit lets us add */
        if (room == 0)
                return -ENOBUFS;       /* full of complete frames: take them first */
        need = MIN(want, room);

        if (d->allocated - d->end < need && d->start > 0 &&
            (!complete || d->start >= pending))
                decoder_compact(d);

        /* Without compaction the buffer cannot extend past max_frame from its front. */
        need = MIN(need, d->max_frame - d->end);
        if (need == 0)
                return -ENOBUFS;

        if (d->allocated - d->end < need) {
                size_t n = d->allocated > 0 ? d->allocated : MIN(FRAME_BUFFER_MIN, d->max_frame);
                char *b;

                while (n < d->end + need)
                        n = n > d->max_frame / 2 ? d->max_frame : n * 2;
                n = MIN(n, d->max_frame);

                b = realloc(d->buf, n);
                if (!b)
                        return -ENOMEM;
                d->buf = b;
                d->allocated = n;
        }

        avail = MIN(d->allocated - d->end, room);
        assert(avail >= need);
        d->reserved = avail;
        *ret_ptr = d->buf + d->end;
        *ret_avail = avail;
        return 0;
}

/* Accounts for bytes written after a reserve. */
void frame_decoder_commit(FrameDecoder *d, size_t n) {
        assert(d);
        assert(n <= d->reserved);
        /* Even with assertions compiled out, never account for bytes past the reservation. */
        d->end += MIN(n, d->reserved);
        d->reserved = 0;
}

/* Copies bytes in through reserve/commit. */
int frame_decoder_feed(FrameDecoder *d, const void *data, size_t len) {
        const char *p = data;
        int r;

        assert_return(d, -EINVAL);
        assert_return(data || len == 0, -EINVAL);

        while (len > 0) {
                size_t avail, n;
                char *w;

                r = frame_decoder_reserve(d, len, &w, &avail);
                if (r < 0)
                        return r;
                n = MIN(avail, len);
                memcpy(w, p, n);
                frame_decoder_commit(d, n);
                p += n;
                len -= n;
        }
        return 0;
}

/* Returns the next complete, non-empty line. */
int frame_decoder_next(FrameDecoder *d, Frame *ret) {
        assert_return(d, -EINVAL);
        assert_return(ret, -EINVAL);

        if (d->failed)
                return -EMSGSIZE;

        /* Any frame returned earlier is released now. */
        d->reserved = 0;

        for (;;) {
                size_t nl, first, len;

                decoder_rewind_if_empty(d);
                if (d->start == d->end)
                        return 0;

                if (!decoder_scan(d)) {
                        if (d->end - d->start >= d->max_frame) {
                                d->failed = true;
                                return -EMSGSIZE;
                        }
                        return 0;
                }

                nl = d->scanned;
                first = d->start;
                if (nl + 1 - first > d->max_frame) {
                        d->failed = true;
                        return -EMSGSIZE;
                }
                len = nl - first;
                if (len > 0 && d->buf[nl - 1] == '\r')
                        len--;
                d->start = d->scanned = nl + 1;
                if (len == 0)
                        continue;

                /* The terminator is consumed: make the frame a C string as a convenience
                 * (it may still hold NUL bytes, so callers go by len). */
                d->buf[first + len] = '\0';
                *ret = (Frame) {
                        .data = d->buf + first,
                        .len = len,
                        .start_offset = d->base + first,
                        .end_offset = d->base + nl + 1,
                };
                return 1;
        }
}

/* Bytes buffered and not yet returned. */
size_t frame_decoder_pending(const FrameDecoder *d) {
        assert(d);
        return d->end - d->start;
}

/* Whether a terminated line is buffered; the scan is remembered for the next call. */
bool frame_decoder_has_line(FrameDecoder *d) {
        assert(d);
        return decoder_scan(d);
}

/* Offset the next byte fed will get. */
uint64_t frame_decoder_offset(const FrameDecoder *d) {
        assert(d);
        return d->base + d->end;
}

/* Checks that data can travel as one frame. */
int frame_check_encodable(const char *data, size_t len) {
        assert_return(data || len == 0, -EINVAL);

        /* memchr goes a vector at a time: replies are checked on every call */
        if (len > 0 && (memchr(data, '\n', len) || memchr(data, '\r', len)))
                return -EINVAL;
        return 0;
}
