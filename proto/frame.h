/* SPDX-License-Identifier: MIT */
/*
 * Incremental decoder for newline-delimited frames.
 *
 * Glossary:
 *   frame   one line of input without its terminator ("\n" or "\r\n").
 *   offset  the position of a byte in the whole stream since the decoder was created, counting
 *           every byte ever fed (including terminators). Callers use offsets to bind
 *           out-of-band data (file descriptors) to the frame whose bytes carried them.
 *
 * The decoder owns one contiguous buffer, so a reader can receive straight into it
 * (frame_decoder_reserve / frame_decoder_commit) without an extra copy. It never holds more
 * than `max_frame` bytes of an unterminated line: once an incomplete line grows past the
 * limit, frame_decoder_next() fails with -EMSGSIZE and the stream cannot be resynchronised
 * (the caller closes the connection). Empty lines (and lines holding only "\r") are skipped.
 * Scanning resumes where the previous scan stopped, so feeding a long line in small pieces
 * costs linear time. Pure code: no I/O, no logging.
 *
 * Memory: the buffer grows on demand up to `max_frame` bytes and never past it, so complete
 * frames not yet taken count against the same limit. A reader that stops taking frames (for
 * fairness) and reads again can find the buffer full of complete frames: reserve and feed then
 * return -ENOBUFS, which means "take frames with frame_decoder_next() first", not an error of
 * the peer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct FrameDecoder FrameDecoder;

typedef struct Frame {
        const char *data;      /* borrowed; valid until the next call that changes the decoder */
        size_t len;            /* without the terminator */
        uint64_t start_offset; /* stream offset of the first byte of the line */
        uint64_t end_offset;   /* stream offset just past the terminator */
} Frame;

/* Creates a decoder accepting frames of at most `max_frame` bytes (terminator included).
 * Returns 0 or -ENOMEM / -EINVAL (max_frame == 0). */
int frame_decoder_new(size_t max_frame, FrameDecoder **ret);

/* Frees the decoder; NULL-safe; returns NULL. */
FrameDecoder *frame_decoder_free(FrameDecoder *d);

/* Makes room for at least `want` more bytes (want > 0) and returns where to write them and how
 * many may be written (>= want, but never more than the limit allows, so possibly fewer than
 * want and never 0). Returns -EMSGSIZE when the buffered incomplete line already fills the
 * limit, -ENOBUFS when complete frames fill it (take them first), -ENOMEM on allocation
 * failure. */
int frame_decoder_reserve(FrameDecoder *d, size_t want, char **ret_ptr, size_t *ret_avail);

/* Declares that `n` bytes were written at the pointer from the last reserve (n <= avail).
 * No other call on the decoder may come between a reserve and its commit. */
void frame_decoder_commit(FrameDecoder *d, size_t n);

/* Copies `len` bytes in (reserve + memcpy + commit, in as many steps as needed).
 * Returns 0, -EMSGSIZE when the data cannot fit under the limit, -ENOBUFS when frames not yet
 * taken fill the buffer, or -ENOMEM. Bytes that fit before the error are kept. */
int frame_decoder_feed(FrameDecoder *d, const void *data, size_t len);

/* Extracts the next complete frame. Returns 1 with *ret filled, 0 when more input is needed,
 * -EMSGSIZE when a line exceeds the limit (with or without its terminator); after -EMSGSIZE
 * every call fails the same way. The frame's data stays valid until the next reserve/feed/next
 * call, and data[len] is a NUL (the frame may hold NUL bytes of its own: go by len). */
int frame_decoder_next(FrameDecoder *d, Frame *ret);

/* Bytes buffered and not yet returned as frames. */
size_t frame_decoder_pending(const FrameDecoder *d);

/* Whether a terminated line is buffered, i.e. frame_decoder_next() has more to take (a frame,
 * or empty lines it skips); an unterminated line at the end does not count. */
bool frame_decoder_has_line(FrameDecoder *d);

/* Total bytes fed since creation (the offset the next byte will get). */
uint64_t frame_decoder_offset(const FrameDecoder *d);

/* Returns 0 when `data` can be sent as one frame (it contains no '\n' and no '\r'), else
 * -EINVAL. Encoders call it before appending the terminator. */
int frame_check_encodable(const char *data, size_t len);
