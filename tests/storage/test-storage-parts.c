/* SPDX-License-Identifier: MIT */
/*
 * Concurrent multipart uploads of daemon/storage.c against avatar-sim: parts really in
 * flight together (the simulator holds them: a test waits until N are held), the configured
 * concurrency respected, a part that meets a transient answer repeated alone while the
 * others go on, a cancellation that closes every part in flight and aborts the upload, a
 * pipe whose part buffers stay within 32 MiB in all; and downloads into a regular file in
 * ranges over several connections, a range cut half-way resumed alone.
 *
 * The harness is storage-harness.c. Usage: test-storage-parts AVATAR_SIM.
 */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "storage-harness.h"
#include "storage.h"
#include "test-wait.h"
#include "upstream.h"

/* The most requests Upstream had in flight, sampled at every progress callback. */
static unsigned max_in_flight;

/* Progress: the harness's checks, and a sample of the requests in flight. */
static void on_progress_sample(uint64_t done, uint64_t total, void *userdata) {
        Res *r = userdata;

        max_in_flight = MAX(max_in_flight, upstream_in_flight(r->ctx->up));
        on_progress(done, total, userdata);
}

/* Sets up on the simulator with `n` parts in flight at most (0: the default). */
static void ctx_init_concurrency(Ctx *c, unsigned n) {
        char endpoint[128];
        StorageOptions so;

        ctx_init(c);
        snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u/storage", sim_port);
        so = test_options(endpoint);
        so.concurrency = n;
        ck_assert_int_eq(storage_set_options(c->st, &so), 0);
        max_in_flight = 0;
}

/* Starts the put of a file. */
static int put_file_sampled(Ctx *c, const char *s3url, const char *path, Res *r) {
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        r->ctx = c;
        ck_assert_int_eq(storage_put_fd(c->st, s3url, &good_cred, fd, st.st_size,
                                        on_progress_sample, on_done, r, &r->op), 0);
        return fd;
}

/* Whether the simulator holds at least *(int64_t *) arg requests. */
static bool held_at_least(void *arg) {
        return sim_held() >= *(int64_t *) arg;
}

/* Whether the simulator holds nothing, saw an abort and has no upload left. */
static bool sim_aborted_idle(void *arg) {
        (void) arg;
        return sim_held() == 0 && sim_route(ROUTE_ABORT) >= 1 && sim_uploads() == 0;
}

/* Whether part requests reached the simulator *(int64_t *) arg times and one is held. */
static bool parts_seen_one_held(void *arg) {
        return sim_route(ROUTE_PART) >= *(int64_t *) arg && sim_held() == 1;
}

/* Whether an operation completed, or the simulator holds a request. */
static bool done_or_held(void *arg) {
        Res *r = arg;

        return r->calls > 0 || sim_held() > 0;
}

/* Holds every UploadPart. */
static void hold_parts(void) {
        sim_fault("{\"route\": \"" ROUTE_PART "\", \"hold\": true}");
}

/* 8 parts, 3 at a time: the simulator holds 3, then the next 3, then the last 2, and never
 * more were in flight. One at a time (the old way) never gets 3 held. */
START_TEST(test_concurrency_respected) {
        char *src = make_file("conc.bin", 40 * MIB, 21), *obj = sim_object_path("conc/x.bin");
        int64_t released = 0;
        Res put = {};
        int fd;
        Ctx c;

        ctx_init_concurrency(&c, 3);
        hold_parts();
        fd = put_file_sampled(&c, "s3://" BUCKET "/conc/x.bin", src, &put);
        while (released < 8) {
                int64_t want = MIN(8 - released, (int64_t) 3), n;

                ctx_wait_sim(&c, held_at_least, &want, "parts held");
                ck_assert_int_eq(sim_held(), want);
                ck_assert_uint_le(upstream_in_flight(c.up), 3);
                n = sim_release();
                ck_assert_int_eq(n, want);
                released += n;
        }
        ctx_run(&c, 1);
        close(fd);
        ck_assert_msg(put.error == 0, "put failed: %s", strna(put.message));
        ck_assert_int_eq(sim_route(ROUTE_PART), 8);
        ck_assert_uint_le(max_in_flight, 3);
        ck_assert_uint_ge(max_in_flight, 2);
        ck_assert_msg(endswith(put.etag, "-8\""), "ETag %s", put.etag);
        assert_same_files(src, obj);
        res_done(&put);
        ctx_done(&c);
        unlink(src);
        unlink(obj);
        free(src);
        free(obj);
}
END_TEST

/* Part 2 is held, then answered 503: parts 1, 3 and 4 go up meanwhile, and only part 2 is
 * sent again. */
START_TEST(test_part_retried_alone) {
        char *src = make_file("alone.bin", 18 * MIB, 22), *obj = sim_object_path("alone/x.bin");
        int64_t four = 4;
        Res put = {};
        int fd;
        Ctx c;

        ctx_init_concurrency(&c, 0);
        sim_fault("{\"route\": \"" ROUTE_PART "\", \"query\": \"partNumber=2\", \"hold\": true, "
                  "\"status\": 503, \"count\": 1}");
        fd = put_file_sampled(&c, "s3://" BUCKET "/alone/x.bin", src, &put);
        ctx_wait_sim(&c, parts_seen_one_held, &four, "parts 1, 3 and 4 beside the held part 2");
        ck_assert_int_eq(sim_release(), 1);
        ctx_run(&c, 1);
        close(fd);
        ck_assert_msg(put.error == 0, "put failed: %s", strna(put.message));
        ck_assert_int_eq(sim_route(ROUTE_PART), 5);
        ck_assert_int_eq(sim_route(ROUTE_COMPLETE), 1);
        ck_assert(!put.progress_backwards);
        assert_same_files(src, obj);
        res_done(&put);
        ctx_done(&c);
        unlink(src);
        unlink(obj);
        free(src);
        free(obj);
}
END_TEST

/* Cancelled with 4 parts held: every part's connection closes (the simulator drops what it
 * held), the upload is aborted, done never runs. */
START_TEST(test_cancel_aborts_parts) {
        char *src = make_file("cparts.bin", 40 * MIB, 23), *obj = sim_object_path("cparts/x.bin");
        int64_t four = 4;
        struct stat st;
        Res put = {};
        int fd;
        Ctx c;

        ctx_init_concurrency(&c, 4);
        hold_parts();
        fd = put_file_sampled(&c, "s3://" BUCKET "/cparts/x.bin", src, &put);
        ctx_wait_sim(&c, held_at_least, &four, "4 parts held");
        ck_assert_int_eq(sim_held(), 4);
        storage_cancel(put.op);
        close(fd); /* the caller's again at once */
        ck_assert_uint_eq(storage_pending_aborts(c.st), 1);
        ctx_wait_sim(&c, sim_aborted_idle, NULL, "the abort, and the held parts gone");
        ctx_wait(&c, abort_answered, &c, "the AbortMultipartUpload's answer");
        ck_assert_uint_eq(put.calls, 0);
        ck_assert_int_eq(sim_route(ROUTE_PART), 4);
        ck_assert_int_eq(sim_route(ROUTE_ABORT), 1);
        ck_assert_int_eq(sim_route(ROUTE_COMPLETE), 0);
        ck_assert_int_lt(stat(obj, &st), 0);
        ck_assert_uint_eq(upstream_in_flight(c.up), 0);
        res_done(&put);
        ctx_done(&c);
        unlink(src);
        free(src);
        free(obj);
}
END_TEST

/* A thread writing pattern bytes into a pipe, counting what the pipe took. */
typedef struct Feeder {
        int fd;
        const uint8_t *data;
        size_t len;
        atomic_size_t written;
} Feeder;

static void *feeder_main(void *userdata) {
        Feeder *f = userdata;
        size_t off = 0;

        while (off < f->len) {
                ssize_t k = write(f->fd, f->data + off, MIN(f->len - off, (size_t) 65536));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                off += (size_t) k;
                atomic_store(&f->written, off);
        }
        close(f->fd);
        return NULL;
}

/* A pipe, 5 MiB parts, 20 allowed in flight: 6 buffers (30 MiB) fill and go up, and the
 * pipe is read no further while they are held; then all of it arrives. */
START_TEST(test_pipe_buffers_bounded) {
        const size_t len = 90 * MIB + 777;
        uint8_t *data = malloc(len), *got;
        char *obj = sim_object_path("pbound/x.bin");
        int64_t six = 6;
        size_t n, cap;
        Feeder f = {};
        pthread_t t;
        Res put = {};
        int p[2];
        Ctx c;

        ck_assert_ptr_nonnull(data);
        fill_pattern(data, len, 24);
        ctx_init_concurrency(&c, 20);
        hold_parts();
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        cap = (size_t) fcntl(p[1], F_GETPIPE_SZ);
        f = (Feeder) { .fd = p[1], .data = data, .len = len };
        put.ctx = &c;
        ck_assert_int_eq(storage_put_fd(c.st, "s3://" BUCKET "/pbound/x.bin", &good_cred, p[0],
                                        -1, on_progress_sample, on_done, &put, &put.op), 0);
        ck_assert_int_eq(pthread_create(&t, NULL, feeder_main, &f), 0);
        ctx_wait_sim(&c, held_at_least, &six, "6 parts held");
        /* 6 buffers of 5 MiB are all there is: the pipe is read no further */
        ck_assert_int_eq(sim_held(), 6);
        ck_assert_uint_eq(upstream_in_flight(c.up), 6);
        ck_assert_uint_le(atomic_load(&f.written), 30 * MIB + 1 + cap);
        while (put.calls == 0) {
                ctx_wait_sim(&c, done_or_held, &put, "the upload's end or a held part");
                if (put.calls == 0)
                        (void) sim_release();
        }
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        close(p[0]);
        ck_assert_msg(put.error == 0, "put failed: %s", strna(put.message));
        ck_assert_uint_eq(put.bytes, len);
        ck_assert_uint_le(max_in_flight, 6);
        ck_assert_int_eq(sim_route(ROUTE_PART), 19);
        got = read_file(obj, &n);
        ck_assert_uint_eq(n, len);
        ck_assert(memcmp(got, data, len) == 0);
        unlink(obj);
        free(got);
        res_done(&put);
        ctx_done(&c);
        free(obj);
        free(data);
}
END_TEST

/* Uploads a file of `size` pattern bytes as `key` (8 parts at a time) and returns its path. */
static char *uploaded(Ctx *c, const char *name, const char *key, size_t size, uint64_t seed) {
        char *src = make_file(name, size, seed), *url;
        Res put = {};

        ck_assert_int_ge(asprintf(&url, "s3://" BUCKET "/%s", key), 0);
        upload_file_ok(c, url, src, &put);
        res_done(&put);
        free(url);
        return src;
}

/* Starts the get of `key` into a new file whose position starts at `at` (pattern bytes
 * before it). */
static int get_into(Ctx *c, const char *key, const char *path, off_t at, Res *r) {
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        char *url;

        ck_assert_int_ge(fd, 0);
        if (at > 0) {
                ck_assert_int_eq(pwrite(fd, "HEAD", 4, 0), 4);
                ck_assert_int_eq(lseek(fd, at, SEEK_SET), at);
        }
        ck_assert_int_ge(asprintf(&url, "s3://" BUCKET "/%s", key), 0);
        r->ctx = c;
        ck_assert_int_eq(storage_get_fd(c->st, url, &good_cred, fd, on_progress_sample, on_done, r,
                                        &r->op), 0);
        free(url);
        return fd;
}

/* Asserts that `path` holds src's bytes from `at` on. */
static void assert_file_at(const char *path, const char *src, off_t at) {
        size_t n, m;
        uint8_t *a = read_file(path, &n), *b = read_file(src, &m);

        ck_assert_uint_eq(n, m + (size_t) at);
        ck_assert(memcmp(a + at, b, m) == 0);
        free(a);
        free(b);
}

/* A 38 MiB object into a file: the first 5 MiB, then the 7 other ranges 3 at a time (the
 * simulator holds them: 3 at once), written at their offsets after the file's position; the
 * position ends after the object. One stream (the old way) never gets 3 held. */
START_TEST(test_get_ranges_concurrent) {
        const size_t size = 38 * MIB + 12345;
        char *src, *dst = work_path("ranges.out");
        int64_t released = 0;
        Res get = {};
        int fd;
        Ctx c;

        ctx_init_concurrency(&c, 3);
        src = uploaded(&c, "ranges.bin", "ranges/x.bin", size, 25);
        sim_reset();
        sim_fault("{\"route\": \"" ROUTE_GET "\", \"hold\": true, \"after\": 1}");
        fd = get_into(&c, "ranges/x.bin", dst, 1000, &get);
        while (released < 7) {
                int64_t want = MIN(7 - released, (int64_t) 3), n;

                ctx_wait_sim(&c, held_at_least, &want, "ranges held");
                ck_assert_int_eq(sim_held(), want);
                n = sim_release();
                ck_assert_int_eq(n, want);
                released += n;
        }
        ctx_run(&c, c.done + 1);
        ck_assert_msg(get.error == 0, "get failed: %s", strna(get.message));
        ck_assert_uint_eq(get.bytes, size);
        ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), (off_t) (1000 + size));
        close(fd);
        ck_assert_int_eq(sim_route(ROUTE_GET), 8);
        ck_assert_uint_le(max_in_flight, 3);
        ck_assert(!get.progress_backwards);
        assert_file_at(dst, src, 1000);
        res_done(&get);
        ctx_done(&c);
        unlink(src);
        unlink(dst);
        free(src);
        free(dst);
}
END_TEST

/* One range is cut half-way (the third GET): it alone resumes from its next byte. */
START_TEST(test_get_range_resumed_alone) {
        const size_t size = 24 * MIB;
        char *src, *dst = work_path("ranges-cut.out");
        Res get = {};
        int fd;
        Ctx c;

        ctx_init_concurrency(&c, 0);
        src = uploaded(&c, "ranges-cut.bin", "ranges/cut.bin", size, 26);
        sim_reset();
        sim_fault("{\"route\": \"" ROUTE_GET "\", \"body\": \"short\", \"after\": 2, \"count\": 1}");
        fd = get_into(&c, "ranges/cut.bin", dst, 0, &get);
        ctx_run(&c, c.done + 1);
        ck_assert_msg(get.error == 0, "get failed: %s", strna(get.message));
        ck_assert_uint_eq(get.bytes, size);
        ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), (off_t) size);
        close(fd);
        /* 5 ranges of 5 MiB (the last of 4), and the resume of the one that was cut */
        ck_assert_int_eq(sim_route(ROUTE_GET), 6);
        assert_file_at(dst, src, 0);
        res_done(&get);

        /* an object of one range after it: one GET, and the position after it too */
        {
                char *small = uploaded(&c, "ranges-small.bin", "ranges/small.bin", 300000, 27);
                const char *url = "s3://" BUCKET "/ranges/small.bin";
                uint8_t *a, *b;
                size_t n, m;

                fd = open(dst, O_RDWR | O_CLOEXEC);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(lseek(fd, (off_t) size, SEEK_SET), (off_t) size);
                get.ctx = &c;
                ck_assert_int_eq(storage_get_fd(c.st, url, &good_cred, fd, NULL, on_done, &get,
                                                &get.op), 0);
                ctx_run(&c, c.done + 1);
                ck_assert_int_eq(get.error, 0);
                ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), (off_t) (size + 300000));
                close(fd);
                a = read_file(dst, &n);
                b = read_file(small, &m);
                ck_assert_uint_eq(n, size + m);
                ck_assert(memcmp(a + size, b, m) == 0);
                free(a);
                free(b);
                unlink(small);
                free(small);
                res_done(&get);
        }
        ctx_done(&c);
        unlink(src);
        unlink(dst);
        free(src);
        free(dst);
}
END_TEST

/* The suite. */
static Suite *parts_suite(bool slow) {
        Suite *s = suite_create("storage-parts");
        TCase *tc;

        (void) slow;
        tc = tcase_create("avatar-sim");
        tcase_set_timeout(tc, 240 * test_time_scale());
        tcase_add_test(tc, test_concurrency_respected);
        tcase_add_test(tc, test_part_retried_alone);
        tcase_add_test(tc, test_cancel_aborts_parts);
        tcase_add_test(tc, test_pipe_buffers_bounded);
        tcase_add_test(tc, test_get_ranges_concurrent);
        tcase_add_test(tc, test_get_range_resumed_alone);
        suite_add_tcase(s, tc);
        return s;
}

/* Starts the simulator, runs the suite, cleans up (storage-harness.c). */
int main(int argc, char **argv) {
        return storage_test_main(argc, argv, parts_suite);
}
