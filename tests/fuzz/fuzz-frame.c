/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for proto/frame.c: feeds the input to a FrameDecoder with a small limit,
 * in chunks whose sizes come from a header at the start of the input, and checks every frame
 * against a reference model of the framing rules (frame.h): lines end at '\n', a '\r' before
 * it is dropped, empty lines are skipped, a line longer than the limit (terminator included)
 * or an unterminated line that fills the limit is -EMSGSIZE for good.
 *
 * Input layout:
 *   byte 0       max_frame - 1 (low 6 bits: a limit of 1..64) and two mode bits:
 *                0x40 write through reserve/commit instead of feed,
 *                0x80 take at most one frame after each chunk (complete frames pile up, so
 *                     -ENOBUFS is reached)
 *   byte 1       number of chunk sizes that follow (low 3 bits, plus one)
 *   bytes 2..    chunk sizes, used in turn (each 1..96 bytes, so chunks straddle the limit)
 *   the rest     the stream
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bytes the decoder accepted, in order, and where the model stands in them. */
typedef struct Model {
        uint8_t *stream;
        size_t len;
        size_t pos;      /* offset where the next line starts (empty lines not yet skipped) */
        size_t max_frame;
} Model;

/* The framing rules, written plainly: 1 with the next frame, 0 for "need more", -EMSGSIZE. */
static int model_next(Model *m, size_t *ret_start, size_t *ret_len, size_t *ret_end) {
        for (;;) {
                const uint8_t *nl;
                size_t start = m->pos, len;

                if (start == m->len)
                        return 0;
                nl = memchr(m->stream + start, '\n', m->len - start);
                if (!nl)
                        return m->len - start >= m->max_frame ? -EMSGSIZE : 0;
                len = (size_t) (nl - m->stream) - start;
                if (len + 1 > m->max_frame)
                        return -EMSGSIZE;
                m->pos = start + len + 1;
                if (len > 0 && m->stream[start + len - 1] == '\r')
                        len--;
                if (len == 0)
                        continue;
                *ret_start = start;
                *ret_len = len;
                *ret_end = m->pos;
                return 1;
        }
}

/* Takes up to `limit` frames (SIZE_MAX: all), checking each against the model. Returns the
 * last return value of frame_decoder_next() (0, 1 when stopped by the limit, -EMSGSIZE). */
static int take_frames(FrameDecoder *d, Model *m, size_t limit, uint64_t *last_end) {
        int r = 0;

        for (size_t taken = 0; taken < limit; taken++) {
                size_t start = 0, len = 0, end = 0;
                Frame f;
                int e;

                r = frame_decoder_next(d, &f);
                e = model_next(m, &start, &len, &end);
                assert(r == e);
                if (r <= 0)
                        return r;

                assert(f.len == len);
                assert(f.len > 0 && f.len < m->max_frame);
                assert(f.start_offset == start && f.end_offset == end);
                assert(f.start_offset >= *last_end);
                assert(f.end_offset > f.start_offset + f.len);
                assert(f.end_offset - f.start_offset <= m->max_frame);
                assert(f.end_offset - f.start_offset <= f.len + 2);
                assert(memcmp(f.data, m->stream + start, len) == 0);
                assert(!memchr(f.data, '\n', f.len));
                assert(f.data[f.len] == '\0');
                *last_end = f.end_offset;

                assert(frame_decoder_pending(d) <= m->max_frame);
        }
        return r;
}

/* Writes `len` bytes through reserve/commit; returns 0 or the error of reserve. The number
 * of bytes accepted is read from the decoder's offset by the caller. */
static int write_reserved(FrameDecoder *d, const uint8_t *p, size_t len, size_t max_frame) {
        while (len > 0) {
                size_t avail = 0, n;
                char *w = NULL;
                int r;

                r = frame_decoder_reserve(d, len, &w, &avail);
                if (r < 0)
                        return r;
                assert(w && avail > 0);
                assert(avail + frame_decoder_pending(d) <= max_frame);
                n = avail < len ? avail : len;
                /* Touch the whole grant so ASan checks it is really ours. */
                memset(w, 0xAA, avail);
                memcpy(w, p, n);
                frame_decoder_commit(d, n);
                p += n;
                len -= n;
        }
        return 0;
}

/* One input: see the layout above. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *sizes, *p;
        size_t n_sizes, max_frame, left, chunk_i = 0;
        uint64_t last_end = 0;
        bool reserved, pile_up, failed = false;
        FrameDecoder *d = NULL;
        Model m = {};
        int r;

        if (size < 2)
                return 0;
        max_frame = (data[0] & 0x3f) + 1u;
        reserved = data[0] & 0x40;
        pile_up = data[0] & 0x80;
        n_sizes = (data[1] & 0x07) + 1u;
        if (size < 2 + n_sizes)
                return 0;
        sizes = data + 2;
        p = data + 2 + n_sizes;
        left = size - 2 - n_sizes;

        r = frame_decoder_new(max_frame, &d);
        assert(r == 0);
        m.stream = malloc(left + 1);
        assert(m.stream);
        m.max_frame = max_frame;

        while (left > 0 && !failed) {
                size_t chunk = sizes[chunk_i++ % n_sizes] % 96u + 1u;
                uint64_t before;

                if (chunk > left)
                        chunk = left;
                for (bool stuck = false;;) {
                        size_t accepted;

                        before = frame_decoder_offset(d);
                        r = reserved ? write_reserved(d, p, chunk, max_frame)
                                     : frame_decoder_feed(d, p, chunk);
                        accepted = (size_t) (frame_decoder_offset(d) - before);
                        assert(accepted <= chunk);
                        assert(r == 0 ? accepted == chunk : r == -EMSGSIZE || r == -ENOBUFS);
                        memcpy(m.stream + m.len, p, accepted);
                        m.len += accepted;
                        p += accepted;
                        left -= accepted;
                        chunk -= accepted;
                        assert(frame_decoder_pending(d) <= max_frame);
                        assert(frame_decoder_offset(d) == m.len);

                        if (r == -EMSGSIZE) {
                                /* Only an unterminated line that fills the limit is refused
                                 * while feeding; the model must see it the same way. */
                                int e;

                                e = take_frames(d, &m, SIZE_MAX, &last_end);
                                assert(e == -EMSGSIZE);
                                failed = true;
                                break;
                        }
                        if (r == -ENOBUFS) {
                                /* Complete frames fill the buffer: taking them all makes room
                                 * (or reveals an oversized line), so a retry moves on. */
                                assert(accepted > 0 || !stuck);
                                assert(memchr(m.stream + m.pos, '\n', m.len - m.pos));
                                if (take_frames(d, &m, SIZE_MAX, &last_end) < 0) {
                                        failed = true;
                                        break;
                                }
                                stuck = accepted == 0;
                                continue;
                        }
                        break;
                }
                if (failed)
                        break;
                if (take_frames(d, &m, pile_up ? 1 : SIZE_MAX, &last_end) < 0)
                        failed = true;
        }

        if (!failed && take_frames(d, &m, SIZE_MAX, &last_end) < 0)
                failed = true;

        if (failed) {
                Frame f;
                char *w;
                size_t avail;

                /* The stream is lost for good. */
                assert(frame_decoder_next(d, &f) == -EMSGSIZE);
                assert(frame_decoder_feed(d, "x\n", 2) == -EMSGSIZE);
                assert(frame_decoder_reserve(d, 1, &w, &avail) == -EMSGSIZE);
        } else {
                /* What is left is one unterminated line shorter than the limit. */
                assert(frame_decoder_pending(d) == m.len - m.pos);
                assert(frame_decoder_pending(d) < max_frame);
                assert(!memchr(m.stream + m.pos, '\n', m.len - m.pos));
        }

        free(m.stream);
        frame_decoder_free(d);
        return 0;
}
