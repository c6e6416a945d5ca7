/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the newline frame decoder (proto/frame.c): framing, limits, offsets, the
 * reserve/commit path and a randomized comparison with a simple model of the stream.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "macro.h"

/* Cleanup helper for decoders. */
static void decoder_freep(FrameDecoder **d) {
        frame_decoder_free(*d);
}
#define _cleanup_decoder_ _cleanup_(decoder_freep)

/* One expected frame. */
typedef struct Expect {
        const char *data;
        size_t len;
        uint64_t start, end;
} Expect;

/* Takes the next frame and compares it with e. */
static void next_is(FrameDecoder *d, const char *data, size_t len, uint64_t start, uint64_t end) {
        Frame f;

        ck_assert_int_eq(frame_decoder_next(d, &f), 1);
        ck_assert_uint_eq(f.len, len);
        ck_assert_mem_eq(f.data, data, len);
        ck_assert_int_eq(f.data[f.len], '\0');
        ck_assert_uint_eq(f.start_offset, start);
        ck_assert_uint_eq(f.end_offset, end);
}

/* Asserts that no complete frame is pending. */
static void next_none(FrameDecoder *d) {
        Frame f;

        ck_assert_int_eq(frame_decoder_next(d, &f), 0);
}

START_TEST(test_new_invalid) {
        FrameDecoder *d = NULL;

        ck_assert_int_eq(frame_decoder_new(0, &d), -EINVAL);
        ck_assert_ptr_null(d);
        ck_assert_ptr_null(frame_decoder_free(NULL));
        ck_assert_int_eq(frame_decoder_new(1, &d), 0);
        ck_assert_ptr_null(frame_decoder_free(d));
}
END_TEST

START_TEST(test_single) {
        _cleanup_decoder_ FrameDecoder *d = NULL;

        ck_assert_int_eq(frame_decoder_new(64, &d), 0);
        next_none(d);
        ck_assert_int_eq(frame_decoder_feed(d, "abc\n", 4), 0);
        next_is(d, "abc", 3, 0, 4);
        next_none(d);
        ck_assert_uint_eq(frame_decoder_pending(d), 0);
        ck_assert_uint_eq(frame_decoder_offset(d), 4);
}
END_TEST

START_TEST(test_many_per_read) {
        _cleanup_decoder_ FrameDecoder *d = NULL;
        static const char in[] = "a\nbb\nccc\n{\"x\":1}\npartial";

        ck_assert_int_eq(frame_decoder_new(64, &d), 0);
        ck_assert_int_eq(frame_decoder_feed(d, in, STRLEN(in)), 0);
        next_is(d, "a", 1, 0, 2);
        next_is(d, "bb", 2, 2, 5);
        next_is(d, "ccc", 3, 5, 9);
        next_is(d, "{\"x\":1}", 7, 9, 17);
        next_none(d);
        ck_assert_uint_eq(frame_decoder_pending(d), 7);
        ck_assert_uint_eq(frame_decoder_offset(d), STRLEN(in));
        ck_assert_int_eq(frame_decoder_feed(d, "\n", 1), 0);
        next_is(d, "partial", 7, 17, 25);
        next_none(d);
}
END_TEST

START_TEST(test_crlf) {
        _cleanup_decoder_ FrameDecoder *d = NULL;
        static const char in[] = "abc\r\nx\ry\n\r\r\nz\r\n";

        ck_assert_int_eq(frame_decoder_new(64, &d), 0);
        ck_assert_int_eq(frame_decoder_feed(d, in, STRLEN(in)), 0);
        next_is(d, "abc", 3, 0, 5);
        next_is(d, "x\ry", 3, 5, 9);       /* a lone \r inside a line stays */
        next_is(d, "\r", 1, 9, 12);        /* only the \r just before \n is the terminator */
        next_is(d, "z", 1, 12, 15);
        next_none(d);
}
END_TEST

START_TEST(test_empty_lines) {
        _cleanup_decoder_ FrameDecoder *d = NULL;
        static const char in[] = "\n\r\n\n\nabc\n\n\r\n";

        ck_assert_int_eq(frame_decoder_new(64, &d), 0);
        ck_assert_int_eq(frame_decoder_feed(d, in, STRLEN(in)), 0);
        next_is(d, "abc", 3, 5, 9);
        next_none(d);
        ck_assert_uint_eq(frame_decoder_pending(d), 0);
        ck_assert_uint_eq(frame_decoder_offset(d), STRLEN(in));
}
END_TEST

START_TEST(test_embedded_nul) {
        _cleanup_decoder_ FrameDecoder *d = NULL;

        ck_assert_int_eq(frame_decoder_new(64, &d), 0);
        ck_assert_int_eq(frame_decoder_feed(d, "a\0b\n", 4), 0);
        next_is(d, "a\0b", 3, 0, 4);
}
END_TEST

/* The stream used by the split tests, and the frames it holds. */
static const char split_stream[] =
        "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1}\n"
        "\n"
        "second\r\n"
        "\r\n"
        "x\n"
        "last line without CR\n";
static const Expect split_frames[] = {
        { "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1}", 37, 0, 38 },
        { "second", 6, 39, 47 },
        { "x", 1, 49, 51 },
        { "last line without CR", 20, 51, 72 },
};

/* Drains every complete frame and checks them against split_frames from *i on. */
static void drain_expect(FrameDecoder *d, size_t *i) {
        Frame f;
        int r;

        while ((r = frame_decoder_next(d, &f)) > 0) {
                ck_assert_uint_lt(*i, ELEMENTSOF(split_frames));
                ck_assert_uint_eq(f.len, split_frames[*i].len);
                ck_assert_mem_eq(f.data, split_frames[*i].data, f.len);
                ck_assert_uint_eq(f.start_offset, split_frames[*i].start);
                ck_assert_uint_eq(f.end_offset, split_frames[*i].end);
                (*i)++;
        }
        ck_assert_int_eq(r, 0);
}

START_TEST(test_split_every_position) {
        size_t n = STRLEN(split_stream);

        ck_assert_uint_eq(n, 72);
        for (size_t k = 0; k <= n; k++) {
                _cleanup_decoder_ FrameDecoder *d = NULL;
                size_t i = 0;

                ck_assert_int_eq(frame_decoder_new(128, &d), 0);
                ck_assert_int_eq(frame_decoder_feed(d, split_stream, k), 0);
                drain_expect(d, &i);
                ck_assert_int_eq(frame_decoder_feed(d, split_stream + k, n - k), 0);
                drain_expect(d, &i);
                ck_assert_uint_eq(i, ELEMENTSOF(split_frames));
                ck_assert_uint_eq(frame_decoder_pending(d), 0);
                ck_assert_uint_eq(frame_decoder_offset(d), n);
        }
}
END_TEST

START_TEST(test_split_two_positions) {
        size_t n = STRLEN(split_stream);

        for (size_t a = 0; a <= n; a++)
                for (size_t b = a; b <= n; b++) {
                        _cleanup_decoder_ FrameDecoder *d = NULL;
                        size_t i = 0;

                        ck_assert_int_eq(frame_decoder_new(128, &d), 0);
                        ck_assert_int_eq(frame_decoder_feed(d, split_stream, a), 0);
                        drain_expect(d, &i);
                        ck_assert_int_eq(frame_decoder_feed(d, split_stream + a, b - a), 0);
                        drain_expect(d, &i);
                        ck_assert_int_eq(frame_decoder_feed(d, split_stream + b, n - b), 0);
                        drain_expect(d, &i);
                        ck_assert_uint_eq(i, ELEMENTSOF(split_frames));
                }
}
END_TEST

START_TEST(test_byte_by_byte_reserve) {
        _cleanup_decoder_ FrameDecoder *d = NULL;
        size_t n = STRLEN(split_stream), i = 0;

        ck_assert_int_eq(frame_decoder_new(64, &d), 0);
        for (size_t k = 0; k < n; k++) {
                size_t avail;
                char *p;

                ck_assert_int_eq(frame_decoder_reserve(d, 1, &p, &avail), 0);
                ck_assert_uint_ge(avail, 1);
                *p = split_stream[k];
                frame_decoder_commit(d, 1);
                ck_assert_uint_eq(frame_decoder_offset(d), k + 1);
                drain_expect(d, &i);
        }
        ck_assert_uint_eq(i, ELEMENTSOF(split_frames));
}
END_TEST

/* Builds a line of n 'x' bytes followed by term. */
static char *line_new(size_t n, const char *term) {
        char *s = malloc(n + strlen(term) + 1);

        ck_assert_ptr_nonnull(s);
        memset(s, 'x', n);
        strcpy(s + n, term);
        return s;
}

START_TEST(test_exactly_max) {
        _cleanup_decoder_ FrameDecoder *d = NULL;
        _cleanup_free_ char *lf = line_new(15, "\n"), *crlf = line_new(14, "\r\n");

        ck_assert_int_eq(frame_decoder_new(16, &d), 0);
        ck_assert_int_eq(frame_decoder_feed(d, lf, 16), 0);
        next_is(d, lf, 15, 0, 16);
        ck_assert_int_eq(frame_decoder_feed(d, crlf, 16), 0);
        next_is(d, crlf, 14, 16, 32);
        next_none(d);

        /* 15 bytes without a terminator may still become a frame. */
        ck_assert_int_eq(frame_decoder_feed(d, lf, 15), 0);
        next_none(d);
        ck_assert_int_eq(frame_decoder_feed(d, "\n", 1), 0);
        next_is(d, lf, 15, 32, 48);
}
END_TEST

START_TEST(test_max_plus_one_terminated) {
        _cleanup_free_ char *lf = line_new(16, "\n"), *crlf = line_new(15, "\r\n");
        FrameDecoder *d = NULL;
        Frame f;
        size_t avail;
        char *p;

        /* In one feed: the feed itself fails, and so does everything after. */
        ck_assert_int_eq(frame_decoder_new(16, &d), 0);
        ck_assert_int_eq(frame_decoder_feed(d, lf, 17), -EMSGSIZE);
        ck_assert_int_eq(frame_decoder_next(d, &f), -EMSGSIZE);
        ck_assert_int_eq(frame_decoder_next(d, &f), -EMSGSIZE);
        ck_assert_int_eq(frame_decoder_reserve(d, 1, &p, &avail), -EMSGSIZE);
        ck_assert_int_eq(frame_decoder_feed(d, "\n", 1), -EMSGSIZE);
        d = frame_decoder_free(d);

        /* CRLF: 15 bytes + "\r\n" is 17 bytes. */
        ck_assert_int_eq(frame_decoder_new(16, &d), 0);
        ck_assert_int_eq(frame_decoder_feed(d, crlf, 17), -EMSGSIZE);
        ck_assert_int_eq(frame_decoder_next(d, &f), -EMSGSIZE);
        d = frame_decoder_free(d);

        /* After a valid frame, the limit applies to the line, not to the stream. */
        ck_assert_int_eq(frame_decoder_new(16, &d), 0);
        ck_assert_int_eq(frame_decoder_feed(d, "ab\n", 3), 0);
        next_is(d, "ab", 2, 0, 3);
        ck_assert_int_eq(frame_decoder_feed(d, lf, 17), -EMSGSIZE);
        ck_assert_int_eq(frame_decoder_next(d, &f), -EMSGSIZE);
        d = frame_decoder_free(d);
}
END_TEST

START_TEST(test_max_plus_one_unterminated) {
        _cleanup_free_ char *line = line_new(16, "");
        FrameDecoder *d = NULL;
        Frame f;

        /* Fed byte by byte with a next() after each, as a reader would: the error comes
         * exactly when the 16th byte arrives without a newline. */
        ck_assert_int_eq(frame_decoder_new(16, &d), 0);
        for (size_t k = 0; k < 15; k++) {
                ck_assert_int_eq(frame_decoder_feed(d, line + k, 1), 0);
                ck_assert_int_eq(frame_decoder_next(d, &f), 0);
        }
        ck_assert_int_eq(frame_decoder_feed(d, line + 15, 1), 0);
        ck_assert_int_eq(frame_decoder_next(d, &f), -EMSGSIZE);
        ck_assert_int_eq(frame_decoder_feed(d, "\n", 1), -EMSGSIZE);
        d = frame_decoder_free(d);

        /* A reserve while the buffer holds a max-size incomplete line fails too. */
        ck_assert_int_eq(frame_decoder_new(16, &d), 0);
        ck_assert_int_eq(frame_decoder_feed(d, line, 16), 0);
        ck_assert_int_eq(frame_decoder_feed(d, "\n", 1), -EMSGSIZE);
        ck_assert_int_eq(frame_decoder_next(d, &f), -EMSGSIZE);
        d = frame_decoder_free(d);

        /* A long unterminated line after a frame in the same read. */
        ck_assert_int_eq(frame_decoder_new(16, &d), 0);
        ck_assert_int_eq(frame_decoder_feed(d, "ok\n", 3), 0);
        ck_assert_int_eq(frame_decoder_feed(d, line, 13), 0);
        next_is(d, "ok", 2, 0, 3);
        ck_assert_int_eq(frame_decoder_next(d, &f), 0);
        ck_assert_int_eq(frame_decoder_feed(d, line, 3), 0);
        ck_assert_int_eq(frame_decoder_next(d, &f), -EMSGSIZE);
        d = frame_decoder_free(d);
}
END_TEST

START_TEST(test_reserve_commit) {
        _cleanup_decoder_ FrameDecoder *d = NULL;
        size_t avail;
        char *p;

        ck_assert_int_eq(frame_decoder_new(1024, &d), 0);

        /* More than the limit allows is capped at the limit. */
        ck_assert_int_eq(frame_decoder_reserve(d, 1u << 20, &p, &avail), 0);
        ck_assert_uint_eq(avail, 1024);
        memcpy(p, "one\ntwo\nthr", 11);
        frame_decoder_commit(d, 11);
        next_is(d, "one", 3, 0, 4);

        /* Room never exceeds what the limit leaves. */
        ck_assert_int_eq(frame_decoder_reserve(d, 8, &p, &avail), 0);
        ck_assert_uint_ge(avail, 8);
        ck_assert_uint_le(avail + frame_decoder_pending(d), 1024);
        memcpy(p, "ee\n", 3);
        frame_decoder_commit(d, 3);
        next_is(d, "two", 3, 4, 8);
        next_is(d, "three", 5, 8, 14);
        next_none(d);

        /* Committing nothing is fine. */
        ck_assert_int_eq(frame_decoder_reserve(d, 1, &p, &avail), 0);
        frame_decoder_commit(d, 0);
        ck_assert_uint_eq(frame_decoder_offset(d), 14);

        /* Argument checks. */
        ck_assert_int_eq(frame_decoder_reserve(d, 0, &p, &avail), -EINVAL);
}
END_TEST

START_TEST(test_full_of_complete_frames) {
        _cleanup_decoder_ FrameDecoder *d = NULL;
        size_t avail;
        char *p;

        ck_assert_int_eq(frame_decoder_new(8, &d), 0);
        /* 8 bytes of complete frames fill the buffer; the caller must take them first. */
        ck_assert_int_eq(frame_decoder_feed(d, "a\nb\nc\nd\ne\n", 10), -ENOBUFS);
        ck_assert_uint_eq(frame_decoder_pending(d), 8);
        ck_assert_int_eq(frame_decoder_reserve(d, 1, &p, &avail), -ENOBUFS);
        next_is(d, "a", 1, 0, 2);
        /* Two bytes free now, at the front: moving 6 to free 2 is not done, but the caller
         * is told to drain, not that the line is too long. */
        ck_assert_int_eq(frame_decoder_reserve(d, 1, &p, &avail), -ENOBUFS);
        next_is(d, "b", 1, 2, 4);
        next_is(d, "c", 1, 4, 6);
        next_is(d, "d", 1, 6, 8);
        ck_assert_int_eq(frame_decoder_feed(d, "e\n", 2), 0);
        next_is(d, "e", 1, 8, 10);
        next_none(d);
}
END_TEST

START_TEST(test_compaction_offsets) {
        _cleanup_decoder_ FrameDecoder *d = NULL;
        uint64_t off = 0;

        /* Frames and partial lines interleaved so the buffer is compacted many times. */
        ck_assert_int_eq(frame_decoder_new(32, &d), 0);
        for (unsigned round = 0; round < 200; round++) {
                char line[32];
                int n = snprintf(line, sizeof(line), "r%u-%s", round, round % 3 ? "abcdefghij" : "xy");
                Frame f;

                ck_assert_int_gt(n, 0);
                ck_assert_int_eq(frame_decoder_feed(d, line, (size_t) n / 2), 0);
                ck_assert_int_eq(frame_decoder_next(d, &f), 0);
                ck_assert_int_eq(frame_decoder_feed(d, line + n / 2, (size_t) n - (size_t) n / 2), 0);
                ck_assert_int_eq(frame_decoder_feed(d, "\r\n", 2), 0);
                next_is(d, line, (size_t) n, off, off + (uint64_t) n + 2);
                off += (uint64_t) n + 2;
        }
        ck_assert_uint_eq(frame_decoder_offset(d), off);
}
END_TEST

START_TEST(test_linear_time) {
        _cleanup_decoder_ FrameDecoder *d = NULL;
        const size_t max = 4u << 20;
        Frame f;

        /* A max-size line in one-byte reads, with a scan after each: quadratic rescanning
         * would be ~8e12 byte visits and time out; resumed scanning is ~4e6. */
        ck_assert_int_eq(frame_decoder_new(max, &d), 0);
        for (size_t k = 0; k + 1 < max; k++) {
                size_t avail;
                char *p;

                /* Plain checks in the hot loop: every passing ck_assert costs a write. */
                if (frame_decoder_reserve(d, 1, &p, &avail) != 0)
                        ck_abort_msg("reserve failed at %zu", k);
                *p = 'x';
                frame_decoder_commit(d, 1);
                if (frame_decoder_next(d, &f) != 0)
                        ck_abort_msg("unexpected frame or error at %zu", k);
        }
        ck_assert_int_eq(frame_decoder_feed(d, "\n", 1), 0);
        ck_assert_int_eq(frame_decoder_next(d, &f), 1);
        ck_assert_uint_eq(f.len, max - 1);
        ck_assert_uint_eq(f.end_offset, max);
}
END_TEST

START_TEST(test_memory_released) {
        _cleanup_decoder_ FrameDecoder *d = NULL;
        _cleanup_free_ char *big = line_new(500000, "\n");
        size_t avail;
        char *p;

        ck_assert_int_eq(frame_decoder_new(1u << 20, &d), 0);
        ck_assert_int_eq(frame_decoder_feed(d, big, 500001), 0);
        next_is(d, big, 500000, 0, 500001);
        /* Once empty, a small reserve works from a small buffer again (checked by valgrind
         * and ASan for correctness; the size is internal). */
        ck_assert_int_eq(frame_decoder_reserve(d, 10, &p, &avail), 0);
        ck_assert_uint_ge(avail, 10);
        memcpy(p, "ok\n", 3);
        frame_decoder_commit(d, 3);
        next_is(d, "ok", 2, 500001, 500004);
}
END_TEST

/* A small deterministic PRNG (xorshift64*). */
static uint64_t rnd(uint64_t *s) {
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * UINT64_C(2685821657736338717);
}

START_TEST(test_random_model) {
        for (uint64_t seed = 1; seed <= 40; seed++) {
                _cleanup_decoder_ FrameDecoder *d = NULL;
                _cleanup_free_ char *stream = NULL;
                _cleanup_free_ Expect *expect = NULL;
                size_t max = 8 + seed % 57, n = 0, n_expect = 0, fed = 0, got = 0, cap = 1u << 16;
                uint64_t s = seed * UINT64_C(0x9e3779b97f4a7c15);

                stream = malloc(cap);
                expect = calloc(cap, sizeof(Expect));
                ck_assert_ptr_nonnull(stream);
                ck_assert_ptr_nonnull(expect);

                /* Lines of 0..max-2 bytes of payload, LF or CRLF, as long as they fit. */
                while (n + max + 2 < cap) {
                        bool crlf = rnd(&s) % 3 == 0;
                        size_t len = rnd(&s) % (max - (crlf ? 1 : 0));

                        for (size_t k = 0; k < len; k++)
                                stream[n + k] = (char) ('a' + rnd(&s) % 26);
                        if (len > 0)
                                expect[n_expect++] = (Expect) {
                                        .data = stream + n, .len = len, .start = n,
                                        .end = n + len + (crlf ? 2 : 1),
                                };
                        n += len;
                        if (crlf)
                                stream[n++] = '\r';
                        stream[n++] = '\n';
                }

                ck_assert_int_eq(frame_decoder_new(max, &d), 0);
                /* Plain checks in the loop: every passing ck_assert costs a write. */
                while (fed < n || got < n_expect) {
                        size_t want = 1 + rnd(&s) % (2 * max), avail, chunk, takes;
                        Frame f;
                        char *p;
                        int r;

                        if (fed < n) {
                                r = frame_decoder_reserve(d, want, &p, &avail);
                                if (r == -ENOBUFS)
                                        takes = SIZE_MAX; /* full of frames: drain */
                                else {
                                        if (r != 0 || avail == 0 || avail + frame_decoder_pending(d) > max)
                                                ck_abort_msg("seed %" PRIu64 ": reserve %d, avail %zu, pending %zu",
                                                             seed, r, avail, frame_decoder_pending(d));
                                        chunk = 1 + rnd(&s) % (2 * max); /* MIN() evaluates twice */
                                        chunk = MIN(MIN(avail, n - fed), chunk);
                                        memcpy(p, stream + fed, chunk);
                                        frame_decoder_commit(d, chunk);
                                        fed += chunk;
                                        takes = rnd(&s) % 4; /* like a reader capping frames per wakeup */
                                }
                        } else
                                takes = SIZE_MAX;

                        for (size_t t = 0; t < takes; t++) {
                                r = frame_decoder_next(d, &f);
                                if (r < 0)
                                        ck_abort_msg("seed %" PRIu64 ": next %d", seed, r);
                                if (r == 0)
                                        break;
                                if (got >= n_expect || f.len != expect[got].len ||
                                    memcmp(f.data, expect[got].data, f.len) != 0 ||
                                    f.start_offset != expect[got].start || f.end_offset != expect[got].end)
                                        ck_abort_msg("seed %" PRIu64 ": frame %zu differs", seed, got);
                                got++;
                        }
                        if (frame_decoder_offset(d) != fed)
                                ck_abort_msg("seed %" PRIu64 ": offset", seed);
                }
                ck_assert_uint_eq(got, n_expect);
                ck_assert_uint_eq(frame_decoder_pending(d), 0);
        }
}
END_TEST

START_TEST(test_check_encodable) {
        ck_assert_int_eq(frame_check_encodable("{\"a\":\"b\"}", 9), 0);
        ck_assert_int_eq(frame_check_encodable("", 0), 0);
        ck_assert_int_eq(frame_check_encodable("a\nb", 3), -EINVAL);
        ck_assert_int_eq(frame_check_encodable("a\rb", 3), -EINVAL);
        ck_assert_int_eq(frame_check_encodable("ab\n", 2), 0); /* only len bytes count */
}
END_TEST

/* The frame suite. */
static Suite *frame_suite(void) {
        Suite *s = suite_create("frame");
        TCase *tc;

        tc = tcase_create("basics");
        tcase_add_test(tc, test_new_invalid);
        tcase_add_test(tc, test_single);
        tcase_add_test(tc, test_many_per_read);
        tcase_add_test(tc, test_crlf);
        tcase_add_test(tc, test_empty_lines);
        tcase_add_test(tc, test_embedded_nul);
        tcase_add_test(tc, test_check_encodable);
        suite_add_tcase(s, tc);

        tc = tcase_create("splits");
        tcase_add_test(tc, test_split_every_position);
        tcase_add_test(tc, test_split_two_positions);
        tcase_add_test(tc, test_byte_by_byte_reserve);
        tcase_add_test(tc, test_compaction_offsets);
        tcase_add_test(tc, test_random_model);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_add_test(tc, test_exactly_max);
        tcase_add_test(tc, test_max_plus_one_terminated);
        tcase_add_test(tc, test_max_plus_one_unterminated);
        tcase_add_test(tc, test_reserve_commit);
        tcase_add_test(tc, test_full_of_complete_frames);
        tcase_add_test(tc, test_linear_time);
        tcase_add_test(tc, test_memory_released);
        suite_add_tcase(s, tc);

        return s;
}

/* Runs the suite; the exit status tells meson whether every check passed. */
int main(void) {
        SRunner *sr = srunner_create(frame_suite());
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
