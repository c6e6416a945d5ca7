/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of daemon/storage.c on a real event loop: against avatar-sim (started
 * here as a child process, SigV4 checked with a fixed key pair) for the object round trips,
 * multipart uploads, pipes in both directions, S3 errors, cancellation and faults; against
 * an in-process evhttp fake (tests/upstream/fake-http.c) for answers the simulator never
 * gives (a 200 Complete that carries an <Error>, XML with comments and entities, a lost
 * Complete answer).
 *
 * The harness is storage-harness.c; the cases against the fake are in test-storage-fake.c.
 *
 * Usage: test-storage AVATAR_SIM [--slow]. --slow runs only the 1 GiB memory test.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "fake-http.h"
#include "log.h"
#include "macro.h"
#include "sigv4.h"
#include "storage-harness.h"
#include "storage.h"
#include "test-wait.h"
#include "upstream.h"

/* ---- unit: URLs and options ---------------------------------------------------------------- */

/* s3:// URLs split into bucket and key, and nothing else is accepted. */
START_TEST(test_parse_url) {
        static const char *const bad[] = { "", "s3://", "s3:///k", "s3://b", "s3://b/",
                                           "http://b/k", "s3:/b/k", "file:///x" };
        char *b, *k;

        ck_assert_int_eq(storage_parse_url("s3://bkt/dir/a b+c.csv", &b, &k), 0);
        ck_assert_str_eq(b, "bkt");
        ck_assert_str_eq(k, "dir/a b+c.csv");
        free(b);
        free(k);
        ck_assert_int_eq(storage_parse_url("S3://6f1c-aa/30d/x", &b, &k), 0);
        ck_assert_str_eq(b, "6f1c-aa");
        ck_assert_str_eq(k, "30d/x");
        free(b);
        free(k);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(storage_parse_url(bad[i], &b, &k) == -EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

/* URLs are canonical: keys encoded per segment, queries sorted and fully encoded. */
START_TEST(test_object_url) {
        Ctx c;
        char *u;

        ctx_init_at(&c, "http://127.0.0.1:1/storage//");
        u = storage_object_url(c.st, "bkt", "dir/a b+c~d_e-f.g/\xc3\xa9t\xc3\xa9 (1)*'!.csv", NULL);
        ck_assert_str_eq(u, "http://127.0.0.1:1/storage/bkt/dir/a%20b%2Bc~d_e-f.g/"
                            "%C3%A9t%C3%A9%20%281%29%2A%27%21.csv");
        free(u);
        u = storage_object_url(c.st, "bkt", "k", (const char *const[]) {
                "uploadId", "a/b+c=d&e f", "partNumber", "10", NULL });
        ck_assert_str_eq(u, "http://127.0.0.1:1/storage/bkt/k?partNumber=10&uploadId="
                            "a%2Fb%2Bc%3Dd%26e%20f");
        free(u);
        u = storage_object_url(c.st, "bkt", "k", (const char *const[]) { "uploads", "", NULL });
        ck_assert_str_eq(u, "http://127.0.0.1:1/storage/bkt/k?uploads=");
        free(u);
        /* same names sort by value; upper case before lower case (byte order) */
        u = storage_object_url(c.st, "bkt", "k", (const char *const[]) {
                "b", "2", "a", "x", "B", "1", "b", "1", NULL });
        ck_assert_str_eq(u, "http://127.0.0.1:1/storage/bkt/k?B=1&a=x&b=1&b=2");
        free(u);
        ctx_done(&c);
}
END_TEST

/* Options and arguments are checked before anything starts. */
START_TEST(test_bad_options) {
        StorageCredentials bad_id = { "A:B", "s" }, empty = { "", "s" };
        StorageOptions o;
        Storage *s;
        StorageOp *op = NULL;
        Ctx c;
        Res r = {};

        ctx_init_at(&c, "http://127.0.0.1:1/storage");
        o = test_options("http://127.0.0.1:1/storage");
        o.part_size = 5 * MIB - 1;
        ck_assert_int_eq(storage_new(c.base, c.up, &o, &s), -EINVAL);
        ck_assert_int_eq(storage_set_options(c.st, &o), -EINVAL);
        o = test_options("http://127.0.0.1:1/storage");
        o.region = "eu:west";
        ck_assert_int_eq(storage_new(c.base, c.up, &o, &s), -EINVAL);
        o = test_options("ftp://127.0.0.1:1/storage");
        ck_assert_int_eq(storage_new(c.base, c.up, &o, &s), -EINVAL);
        o = test_options("http://127.0.0.1:1/storage");
        o.multipart_threshold = (uint64_t) 6 << 30;
        ck_assert_int_eq(storage_new(c.base, c.up, &o, &s), -EINVAL);
        o = test_options("http://127.0.0.1:2/other");
        o.region = "eu-west-3";
        ck_assert_int_eq(storage_set_options(c.st, &o), 0);
        {
                char *u = storage_object_url(c.st, "b", "k", NULL);
                ck_assert_str_eq(u, "http://127.0.0.1:2/other/b/k");
                free(u);
        }

        r.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://b/k", &bad_id, "x", 1, on_done, &r, &op),
                         -EINVAL);
        ck_assert_int_eq(storage_put_memory(c.st, "s3://b/k", &empty, "x", 1, on_done, &r, &op),
                         -EINVAL);
        ck_assert_int_eq(storage_put_memory(c.st, "s3://b/a/../k", &good_cred, "x", 1, on_done,
                                            &r, &op), -EINVAL);
        ck_assert_int_eq(storage_put_memory(c.st, "s3://b/./k", &good_cred, "x", 1, on_done, &r,
                                            &op), -EINVAL);
        ck_assert_int_eq(storage_get_memory(c.st, "http://b/k", &good_cred, 10, on_done, &r, &op),
                         -EINVAL);
        ck_assert_int_eq(storage_get_fd(c.st, "s3://b/k", &good_cred, -1, NULL, on_done, &r, &op),
                         -EBADF);
        ck_assert_ptr_null(op);
        /* refused at once: no callback comes later either */
        test_run_quiet(c.base, 50);
        ck_assert_uint_eq(r.calls, 0);
        storage_cancel(NULL);
        ctx_done(&c);
}
END_TEST

/* ---- against avatar-sim -------------------------------------------------------------------- */

/* A small object of every byte value, under a key with spaces, UTF-8 and '+', round trips
 * byte for byte through a file, a regular-file download and memory. */
START_TEST(test_small_roundtrip) {
        static const char key[] = "dir one/sp ace+pl\xc3\xbcs/\xe6\x95\xb0\xe6\x8d\xae (v1)~.bin";
        char *src = work_path("small.bin"), *dst = work_path("small.out"), *s3url, *obj;
        uint8_t bytes[256 * 41 + 7];
        size_t n;
        uint8_t *got;
        Res put = {}, get = {}, mem = {}, mput = {}, mget = {};
        int fd, dfd;
        Ctx c;

        for (size_t i = 0; i < sizeof(bytes); i++)
                bytes[i] = (uint8_t) i;
        fd = open(src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_eq(write(fd, bytes, sizeof(bytes)), (ssize_t) sizeof(bytes));
        close(fd);
        ck_assert_int_ge(asprintf(&s3url, "s3://" BUCKET "/%s", key), 0);

        ctx_init(&c);
        upload_file_ok(&c, s3url, src, &put);
        ck_assert_uint_eq(put.bytes, sizeof(bytes));
        ck_assert_ptr_nonnull(put.etag);
        ck_assert_int_eq(sim_route(ROUTE_PUT), 1);
        ck_assert_int_eq(sim_route(ROUTE_CREATE), 0);
        obj = sim_object_path(key);
        assert_same_files(src, obj);

        get_file(&c, s3url, dst, &get, &dfd);
        ctx_run(&c, 2);
        close(dfd);
        ck_assert_msg(get.error == 0, "get failed: %s", strna(get.message));
        ck_assert_uint_eq(get.bytes, sizeof(bytes));
        ck_assert_str_eq(get.etag, put.etag);
        assert_same_files(src, dst);

        mem.ctx = &c;
        ck_assert_int_eq(storage_get_memory(c.st, s3url, &good_cred, sizeof(bytes), on_done,
                                            &mem, &mem.op), 0);
        ctx_run(&c, 3);
        ck_assert_int_eq(mem.error, 0);
        ck_assert_uint_eq(mem.len, sizeof(bytes));
        ck_assert(memcmp(mem.data, bytes, sizeof(bytes)) == 0);

        /* from memory, then an empty object */
        mput.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://" BUCKET "/mem/empty", &good_cred, "", 0,
                                            on_done, &mput, &mput.op), 0);
        ctx_run(&c, 4);
        ck_assert_int_eq(mput.error, 0);
        mget.ctx = &c;
        ck_assert_int_eq(storage_get_memory(c.st, "s3://" BUCKET "/mem/empty", &good_cred, 0,
                                            on_done, &mget, &mget.op), 0);
        ctx_run(&c, 5);
        ck_assert_int_eq(mget.error, 0);
        ck_assert_uint_eq(mget.len, 0);
        ck_assert_ptr_nonnull(mget.data);
        free(obj);
        obj = sim_object_path("mem/empty");
        got = read_file(obj, &n);
        ck_assert_uint_eq(n, 0);
        free(got);

        res_done(&put);
        res_done(&get);
        res_done(&mem);
        res_done(&mput);
        res_done(&mget);
        ctx_done(&c);
        free(obj);
        free(s3url);
        free(src);
        free(dst);
}
END_TEST

/* 40 MiB, 5 MiB parts, 12 MiB threshold: eight parts, byte-exact both ways, progress
 * throttled and monotonic, counters. */
START_TEST(test_multipart_file) {
        char *src = make_file("mp40.bin", 40 * MIB, 40), *dst = work_path("mp40.out"), *obj;
        _cleanup_(json_object_putp) json_object *stats = NULL;
        json_object *v;
        Res put = {}, get = {};
        int dfd;
        Ctx c;

        ctx_init(&c);
        upload_file_ok(&c, "s3://" BUCKET "/big/mp40.bin", src, &put);
        ck_assert_uint_eq(put.bytes, 40 * MIB);
        ck_assert_int_eq(sim_route(ROUTE_CREATE), 1);
        ck_assert_int_eq(sim_route(ROUTE_PART), 8);
        ck_assert_int_eq(sim_route(ROUTE_COMPLETE), 1);
        ck_assert_int_eq(sim_route(ROUTE_PUT), 0);
        ck_assert_int_eq(sim_uploads(), 0);
        ck_assert_ptr_nonnull(put.etag);
        ck_assert_msg(endswith(put.etag, "-8\""), "multipart ETag %s", put.etag);
        ck_assert(!put.progress_backwards);
        ck_assert_uint_eq(put.progress_total, 40 * MIB);
        ck_assert_uint_ge(put.progress_calls, 8);
        ck_assert_uint_le(put.progress_calls, 40 * MIB / (64 * 1024) + 16);
        obj = sim_object_path("big/mp40.bin");
        assert_same_files(src, obj);

        get_file(&c, "s3://" BUCKET "/big/mp40.bin", dst, &get, &dfd);
        ctx_run(&c, 2);
        close(dfd);
        ck_assert_int_eq(get.error, 0);
        ck_assert_str_eq(get.etag, put.etag);
        assert_same_files(src, dst);
        ck_assert(!get.progress_backwards);
        ck_assert_uint_eq(get.progress_total, 0);

        stats = storage_stats_json(c.st);
        ck_assert(json_object_object_get_ex(stats, "multipart_uploads", &v));
        ck_assert_int_eq(json_object_get_int64(v), 1);
        ck_assert(json_object_object_get_ex(stats, "parts", &v));
        ck_assert_int_eq(json_object_get_int64(v), 8);
        ck_assert(json_object_object_get_ex(stats, "bytes_up", &v));
        ck_assert_int_eq(json_object_get_int64(v), 40 * MIB);
        ck_assert(json_object_object_get_ex(stats, "bytes_down", &v));
        ck_assert_int_eq(json_object_get_int64(v), 40 * MIB);
        ck_assert(json_object_object_get_ex(stats, "gets", &v));
        ck_assert_int_eq(json_object_get_int64(v), 1);
        ck_assert(json_object_object_get_ex(stats, "puts", &v));
        ck_assert_int_eq(json_object_get_int64(v), 0);
        ck_assert(json_object_object_get_ex(stats, "errors", &v));
        ck_assert_int_eq(json_object_get_int64(v), 0);

        res_done(&put);
        res_done(&get);
        ctx_done(&c);
        unlink(obj);
        unlink(src);
        unlink(dst);
        free(obj);
        free(src);
        free(dst);
}
END_TEST

/* A writer thread feeding a pipe slowly, in uneven chunks with pauses. */
typedef struct Writer {
        int fd;
        const uint8_t *data;
        size_t len;
        size_t chunk;
        size_t pause_every;
        unsigned pause_ms;
} Writer;

/* Thread: writes everything (blocking), pausing now and then, then closes. */
static void *writer_main(void *userdata) {
        Writer *w = userdata;
        size_t since_pause = 0;

        for (size_t off = 0; off < w->len;) {
                size_t n = MIN(w->chunk + off % 7, w->len - off);
                ssize_t k = write(w->fd, w->data + off, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                off += (size_t) k;
                since_pause += (size_t) k;
                if (since_pause >= w->pause_every) {
                        since_pause = 0;
                        test_fake_pause_ms(w->pause_ms);
                }
        }
        close(w->fd);
        return NULL;
}

/* Uploads `len` pattern bytes through a pipe and checks the object. */
static void pipe_upload(size_t len, const char *key, Res *r, Ctx *c) {
        uint8_t *data = malloc(MAX(len, (size_t) 1));
        char *s3url, *obj;
        size_t n;
        uint8_t *got;
        pthread_t t;
        int p[2];
        Writer w;

        ck_assert_ptr_nonnull(data);
        fill_pattern(data, len, len);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        w = (Writer) { .fd = p[1], .data = data, .len = len, .chunk = 7000,
                       .pause_every = 512 * 1024, .pause_ms = 3 };
        ck_assert_int_ge(asprintf(&s3url, "s3://" BUCKET "/%s", key), 0);
        r->ctx = c;
        ck_assert_int_eq(storage_put_fd(c->st, s3url, &good_cred, p[0], -1, on_progress, on_done,
                                        r, &r->op), 0);
        ck_assert_int_eq(pthread_create(&t, NULL, writer_main, &w), 0);
        ctx_run(c, c->done + 1);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        /* the descriptor's flags are the caller's again */
        ck_assert_int_eq(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
        close(p[0]);
        ck_assert_msg(r->error == 0, "pipe put failed: %s", strna(r->message));
        ck_assert_uint_eq(r->bytes, len);
        obj = sim_object_path(key);
        got = read_file(obj, &n);
        ck_assert_uint_eq(n, len);
        ck_assert(memcmp(got, data, len) == 0);
        ck_assert(!r->progress_backwards);
        ck_assert_uint_eq(r->progress_total, 0);
        unlink(obj);
        free(got);
        free(obj);
        free(s3url);
        free(data);
}

/* A slow pipe that ends within the first part is one PutObject, also at exactly one part. */
START_TEST(test_pipe_small) {
        Res a = {}, b = {};
        Ctx c;

        ctx_init(&c);
        pipe_upload(300 * 1024 + 17, "pipe/small.bin", &a, &c);
        ck_assert_int_eq(sim_route(ROUTE_PUT), 1);
        ck_assert_int_eq(sim_route(ROUTE_CREATE), 0);
        pipe_upload(5 * MIB, "pipe/one-part.bin", &b, &c);
        ck_assert_int_eq(sim_route(ROUTE_PUT), 2);
        ck_assert_int_eq(sim_route(ROUTE_CREATE), 0);
        res_done(&a);
        res_done(&b);
        ctx_done(&c);
}
END_TEST

/* A slow pipe longer than a part becomes a multipart upload, one buffer at a time. */
START_TEST(test_pipe_multipart) {
        Res a = {}, b = {};
        Ctx c;

        ctx_init(&c);
        pipe_upload(12 * MIB + 12345, "pipe/large.bin", &a, &c);
        ck_assert_int_eq(sim_route(ROUTE_PUT), 0);
        ck_assert_int_eq(sim_route(ROUTE_CREATE), 1);
        ck_assert_int_eq(sim_route(ROUTE_PART), 3);
        ck_assert_int_eq(sim_route(ROUTE_COMPLETE), 1);
        ck_assert_msg(endswith(a.etag, "-3\""), "ETag %s", a.etag);
        /* one byte past a part: two parts, the second of one byte */
        pipe_upload(5 * MIB + 1, "pipe/part-and-a-byte.bin", &b, &c);
        ck_assert_int_eq(sim_route(ROUTE_PART), 5);
        ck_assert_int_eq(sim_uploads(), 0);
        res_done(&a);
        res_done(&b);
        ctx_done(&c);
}
END_TEST

/* After storage_cancel() the descriptor is the caller's again: closed at once, its number
 * reused, nothing touches the new one. */
START_TEST(test_cancel_then_close_fd) {
        Res put = {};
        int p[2], q[2], n;
        Ctx c;

        ctx_init(&c);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        put.ctx = &c;
        ck_assert_int_eq(storage_put_fd(c.st, "s3://" BUCKET "/cancel/fd", &good_cred, p[0], -1,
                                        NULL, on_done, &put, &put.op), 0);
        ck_assert_int_ne(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
        storage_cancel(put.op);
        ck_assert_int_eq(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
        n = p[0];
        close(p[0]);
        ck_assert_int_eq(pipe2(q, O_CLOEXEC | O_NONBLOCK), 0);
        ck_assert_int_eq(q[0], n);
        /* cancelled at once: nothing of the operation runs later */
        test_run_quiet(c.base, 100);
        ck_assert_int_ne(fcntl(q[0], F_GETFL) & O_NONBLOCK, 0);
        ck_assert_uint_eq(put.calls, 0);
        close(p[1]);
        close(q[0]);
        close(q[1]);
        res_done(&put);
        ctx_done(&c);
}
END_TEST

/* A reader thread draining a pipe slowly. */
typedef struct Reader {
        int fd;
        uint8_t *data;
        size_t cap;
        size_t len;
} Reader;

/* Thread: reads until EOF, in small reads with pauses. */
static void *reader_main(void *userdata) {
        Reader *rd = userdata;
        size_t since_pause = 0;

        for (;;) {
                ssize_t k = read(rd->fd, rd->data + rd->len, MIN((size_t) 4096, rd->cap - rd->len));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                rd->len += (size_t) k;
                since_pause += (size_t) k;
                if (since_pause >= 256 * 1024) {
                        since_pause = 0;
                        test_fake_pause_ms(15);
                }
                if (rd->len == rd->cap)
                        break;
        }
        return NULL;
}

/* A download into a pipe whose reader is slow pauses and resumes, byte for byte. */
START_TEST(test_get_slow_pipe) {
        const size_t len = 6 * MIB + 333;
        uint8_t *data = malloc(len);
        uint64_t t0;
        Res put = {}, get = {};
        Reader rd;
        pthread_t t;
        int p[2];
        Ctx c;

        ck_assert_ptr_nonnull(data);
        fill_pattern(data, len, 7);
        ctx_init(&c);
        put.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://" BUCKET "/pipe/down.bin", &good_cred,
                                            data, len, on_done, &put, &put.op), 0);
        ctx_run(&c, 1);
        ck_assert_int_eq(put.error, 0);

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        rd = (Reader) { .fd = p[0], .data = malloc(len + 1), .cap = len + 1 };
        ck_assert_ptr_nonnull(rd.data);
        ck_assert_int_eq(pthread_create(&t, NULL, reader_main, &rd), 0);
        get.ctx = &c;
        t0 = test_now_ms();
        ck_assert_int_eq(storage_get_fd(c.st, "s3://" BUCKET "/pipe/down.bin", &good_cred, p[1],
                                        on_progress, on_done, &get, &get.op), 0);
        ctx_run(&c, 2);
        ck_assert_int_eq(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
        close(p[1]);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        close(p[0]);
        ck_assert_msg(get.error == 0, "get failed: %s", strna(get.message));
        ck_assert_uint_eq(get.bytes, len);
        ck_assert_uint_eq(rd.len, len);
        ck_assert(memcmp(rd.data, data, len) == 0);
        /* 24 pauses of 15 ms: the loop waited for the reader rather than buffering */
        ck_assert_uint_ge(test_now_ms() - t0, 300);
        ck_assert(!get.progress_backwards);

        res_done(&put);
        res_done(&get);
        ctx_done(&c);
        free(rd.data);
        free(data);
}
END_TEST

/* Thread: reads a little then closes the pipe. */
static void *reader_quits(void *userdata) {
        Reader *rd = userdata;
        char buf[1000];

        if (read(rd->fd, buf, sizeof(buf)) < 0)
                buf[0] = 0;
        close(rd->fd);
        return NULL;
}

/* A reader that goes away ends the download with -EPIPE. */
START_TEST(test_get_broken_pipe) {
        const size_t len = 2 * MIB;
        uint8_t *data = calloc(1, len);
        Res put = {}, get = {};
        Reader rd;
        pthread_t t;
        int p[2];
        Ctx c;

        ctx_init(&c);
        put.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://" BUCKET "/pipe/broken.bin", &good_cred,
                                            data, len, on_done, &put, &put.op), 0);
        ctx_run(&c, 1);
        ck_assert_int_eq(put.error, 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        rd = (Reader) { .fd = p[0] };
        ck_assert_int_eq(pthread_create(&t, NULL, reader_quits, &rd), 0);
        get.ctx = &c;
        ck_assert_int_eq(storage_get_fd(c.st, "s3://" BUCKET "/pipe/broken.bin", &good_cred,
                                        p[1], NULL, on_done, &get, &get.op), 0);
        ctx_run(&c, 2);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        close(p[1]);
        ck_assert_int_eq(get.error, -EPIPE);
        ck_assert_ptr_nonnull(strstr(get.message, "download descriptor"));
        res_done(&put);
        res_done(&get);
        ctx_done(&c);
        free(data);
}
END_TEST

/* A wrong secret: -EREMOTEIO, 403, SignatureDoesNotMatch, for a put and a get. */
START_TEST(test_wrong_secret) {
        StorageCredentials wrong = { KEY_ID, "NOT-THE-SECRET" }, unknown = { "NOBODY", SECRET };
        Res put = {}, get = {}, who = {};
        Ctx c;

        ctx_init(&c);
        put.ctx = get.ctx = who.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://" BUCKET "/secret/x", &wrong, "abc", 3,
                                            on_done, &put, &put.op), 0);
        ck_assert_int_eq(storage_get_memory(c.st, "s3://" BUCKET "/secret/x", &wrong, 100,
                                            on_done, &get, &get.op), 0);
        ck_assert_int_eq(storage_get_memory(c.st, "s3://" BUCKET "/secret/x", &unknown, 100,
                                            on_done, &who, &who.op), 0);
        ctx_run(&c, 3);
        ck_assert_int_eq(put.error, -EREMOTEIO);
        ck_assert_int_eq(put.status, 403);
        ck_assert_str_eq(put.code, "SignatureDoesNotMatch");
        ck_assert_ptr_nonnull(strstr(put.message, "signature"));
        ck_assert_int_eq(get.error, -EREMOTEIO);
        ck_assert_int_eq(get.status, 403);
        ck_assert_str_eq(get.code, "SignatureDoesNotMatch");
        ck_assert_int_eq(who.error, -EREMOTEIO);
        ck_assert_str_eq(who.code, "InvalidAccessKeyId");
        ck_assert_ptr_null(strstr(put.message, "NOT-THE-SECRET"));
        res_done(&put);
        res_done(&get);
        res_done(&who);
        ctx_done(&c);
}
END_TEST

/* A missing object: 404 NoSuchKey, nothing written; a missing bucket: NoSuchBucket. */
START_TEST(test_missing_object) {
        char *dst = work_path("missing.out");
        struct stat st;
        Res get = {}, mem = {}, bucket = {};
        int dfd;
        Ctx c;

        ctx_init(&c);
        get_file(&c, "s3://" BUCKET "/no/such/key", dst, &get, &dfd);
        mem.ctx = bucket.ctx = &c;
        ck_assert_int_eq(storage_get_memory(c.st, "s3://" BUCKET "/no/such/key", &good_cred, 10,
                                            on_done, &mem, &mem.op), 0);
        ck_assert_int_eq(storage_get_memory(c.st, "s3://no-such-bucket/k", &good_cred, 10,
                                            on_done, &bucket, &bucket.op), 0);
        ctx_run(&c, 3);
        ck_assert_int_eq(get.error, -EREMOTEIO);
        ck_assert_int_eq(get.status, 404);
        ck_assert_str_eq(get.code, "NoSuchKey");
        ck_assert_uint_eq(get.bytes, 0);
        ck_assert_int_eq(fstat(dfd, &st), 0);
        ck_assert_int_eq(st.st_size, 0);
        close(dfd);
        ck_assert_int_eq(mem.error, -EREMOTEIO);
        ck_assert_str_eq(mem.code, "NoSuchKey");
        ck_assert_str_eq(bucket.code, "NoSuchBucket");
        res_done(&get);
        res_done(&mem);
        res_done(&bucket);
        ctx_done(&c);
        free(dst);
}
END_TEST

/* Cancelling mid-multipart: done is never called, the upload is aborted, no object. */
START_TEST(test_cancel_multipart) {
        char *src = make_file("cancel.bin", 40 * MIB, 3), *obj = sim_object_path("cancel/x.bin");
        struct stat st;
        Res put = {};
        int fd;
        Ctx c;

        ctx_init(&c);
        put.cancel_at = 12 * MIB;
        fd = put_file(&c, "s3://" BUCKET "/cancel/x.bin", src, &put);
        ctx_wait(&c, res_cancelled, &put, "the cancellation at 12 MiB");
        /* the abort is fire and forget: the loop runs until it was sent and answered */
        ctx_wait(&c, abort_answered, &c, "the AbortMultipartUpload");
        close(fd);
        ck_assert_uint_eq(put.calls, 0);
        ck_assert_int_eq(sim_route(ROUTE_ABORT), 1);
        ck_assert_int_eq(sim_route(ROUTE_COMPLETE), 0);
        /* the 8 parts go up together: those cut before their last byte never arrive */
        ck_assert_int_le(sim_route(ROUTE_PART), 8);
        ck_assert_int_eq(sim_uploads(), 0);
        ck_assert_int_lt(stat(obj, &st), 0);
        ck_assert_uint_eq(upstream_in_flight(c.up), 0);
        res_done(&put);
        ctx_done(&c);
        unlink(src);
        free(src);
        free(obj);
}
END_TEST

/* Cancelling a download mid-way and a put right after it started. */
START_TEST(test_cancel_get_and_early) {
        const size_t len = 3 * MIB;
        uint8_t *data = calloc(1, len);
        char *dst = work_path("cancel-get.out");
        Res put = {}, get = {}, early = {};
        int dfd;
        Ctx c;

        ctx_init(&c);
        put.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://" BUCKET "/cancel/get.bin", &good_cred,
                                            data, len, on_done, &put, &put.op), 0);
        ctx_run(&c, 1);
        get.cancel_at = 1;
        get_file(&c, "s3://" BUCKET "/cancel/get.bin", dst, &get, &dfd);
        early.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://" BUCKET "/cancel/early", &good_cred,
                                            "x", 1, on_done, &early, &early.op), 0);
        storage_cancel(early.op);
        storage_cancel(early.op); /* twice is fine */
        ctx_wait(&c, res_cancelled_idle, &get, "the download's cancellation");
        /* no callback comes after a cancellation */
        test_run_quiet(c.base, 50);
        close(dfd);
        ck_assert(get.cancelled);
        ck_assert_uint_eq(get.calls, 0);
        ck_assert_uint_eq(early.calls, 0);
        ck_assert_uint_eq(upstream_in_flight(c.up), 0);
        res_done(&put);
        res_done(&get);
        res_done(&early);
        ctx_done(&c);
        free(dst);
        free(data);
}
END_TEST

/* A part that keeps failing with 500 fails the upload after its repeats (the other parts,
 * in flight beside it, are cancelled); the upload is aborted before done runs. */
START_TEST(test_part_failure_aborts) {
        char *src = make_file("fail.bin", 13 * MIB, 5), *obj = sim_object_path("fail/x.bin");
        struct stat st;
        Res put = {};
        int fd;
        Ctx c;

        ctx_init(&c);
        sim_fault("{\"route\": \"" ROUTE_PART "\", \"status\": 500}");
        fd = put_file(&c, "s3://" BUCKET "/fail/x.bin", src, &put);
        ctx_run(&c, 1);
        close(fd);
        ck_assert_int_eq(put.error, -EREMOTEIO);
        ck_assert_int_eq(put.status, 500);
        ck_assert_ptr_nonnull(put.message);
        /* the first part to fail 4 times ends it: 3 parts, each sent 1 to 4 times */
        ck_assert_int_ge(sim_route(ROUTE_PART), 4);
        ck_assert_int_le(sim_route(ROUTE_PART), 12);
        ck_assert_int_eq(sim_route(ROUTE_ABORT), 1);
        ck_assert_int_eq(sim_uploads(), 0);
        ck_assert_int_lt(stat(obj, &st), 0);
        res_done(&put);
        ctx_done(&c);
        unlink(src);
        free(src);
        free(obj);
}
END_TEST

/* S3's transient answers (500, 503) are repeated: a part, a PutObject, a Create, a
 * Complete and a GetObject each meet one or two and still succeed. */
START_TEST(test_5xx_retried) {
        char *src = make_file("5xx.bin", 13 * MIB, 12), *small = make_file("5xx-small.bin",
                                                                          1000, 13);
        char *obj = sim_object_path("5xx/x.bin"), *dst = work_path("5xx.out");
        Res put = {}, put2 = {}, get = {};
        int dfd;
        Ctx c;

        ctx_init(&c);
        sim_fault("{\"route\": \"" ROUTE_PART "\", \"status\": 503, \"count\": 2}");
        sim_fault("{\"route\": \"" ROUTE_CREATE "\", \"status\": 500, \"count\": 1}");
        sim_fault("{\"route\": \"" ROUTE_COMPLETE "\", \"status\": 503, \"count\": 1}");
        sim_fault("{\"route\": \"" ROUTE_PUT "\", \"status\": 500, \"count\": 1}");
        sim_fault("{\"route\": \"" ROUTE_GET "\", \"status\": 503, \"count\": 1}");
        upload_file_ok(&c, "s3://" BUCKET "/5xx/x.bin", src, &put);
        ck_assert_int_eq(sim_route(ROUTE_CREATE), 2);
        ck_assert_int_eq(sim_route(ROUTE_PART), 5);
        ck_assert_int_eq(sim_route(ROUTE_COMPLETE), 2);
        assert_same_files(src, obj);
        upload_file_ok(&c, "s3://" BUCKET "/5xx/small.bin", small, &put2);
        ck_assert_int_eq(sim_route(ROUTE_PUT), 2);
        get_file(&c, "s3://" BUCKET "/5xx/x.bin", dst, &get, &dfd);
        ctx_run(&c, 3);
        close(dfd);
        ck_assert_int_eq(get.error, 0);
        /* into a file, 13 MiB in 5 MiB ranges: 3 GETs, and the one that met the 503 again */
        ck_assert_int_eq(sim_route(ROUTE_GET), 4);
        assert_same_files(src, dst);
        res_done(&put);
        res_done(&put2);
        res_done(&get);
        ctx_done(&c);
        unlink(src);
        unlink(dst);
        free(src);
        free(small);
        free(obj);
        free(dst);
}
END_TEST

/* A dropped connection during a part and a PutObject: Upstream retries, the body is rewound
 * and read again from the file. */
START_TEST(test_dropped_part_retried) {
        char *src = make_file("drop.bin", 13 * MIB, 9), *small = make_file("drop-small.bin",
                                                                           100000, 10);
        char *obj = sim_object_path("drop/x.bin"), *obj2 = sim_object_path("drop/small.bin");
        Res put = {}, put2 = {};
        Ctx c;

        ctx_init(&c);
        sim_fault("{\"route\": \"" ROUTE_PART "\", \"drop\": true, \"count\": 1}");
        sim_fault("{\"route\": \"" ROUTE_PUT "\", \"drop\": true, \"count\": 1}");
        upload_file_ok(&c, "s3://" BUCKET "/drop/x.bin", src, &put);
        ck_assert_int_eq(sim_route(ROUTE_PART), 4);
        assert_same_files(src, obj);
        upload_file_ok(&c, "s3://" BUCKET "/drop/small.bin", small, &put2);
        ck_assert_int_eq(sim_route(ROUTE_PUT), 2);
        assert_same_files(small, obj2);
        ck_assert(!put.progress_backwards);
        res_done(&put);
        res_done(&put2);
        ctx_done(&c);
        unlink(src);
        free(src);
        free(small);
        free(obj);
        free(obj2);
}
END_TEST

/* A download cut half-way resumes with Range from the next byte, into a file and memory. */
START_TEST(test_get_resume) {
        const size_t len = 3 * MIB + 5;
        uint8_t *data = malloc(len), *got;
        char *dst = work_path("resume.out");
        Res put = {}, get = {}, mem = {};
        size_t n;
        int dfd;
        Ctx c;

        ck_assert_ptr_nonnull(data);
        fill_pattern(data, len, 11);
        ctx_init(&c);
        put.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://" BUCKET "/resume/x.bin", &good_cred,
                                            data, len, on_done, &put, &put.op), 0);
        ctx_run(&c, 1);
        ck_assert_int_eq(put.error, 0);

        sim_fault("{\"route\": \"" ROUTE_GET "\", \"body\": \"short\", \"count\": 1}");
        get_file(&c, "s3://" BUCKET "/resume/x.bin", dst, &get, &dfd);
        ctx_run(&c, 2);
        close(dfd);
        ck_assert_msg(get.error == 0, "get failed: %s", strna(get.message));
        ck_assert_int_eq(sim_route(ROUTE_GET), 2);
        got = read_file(dst, &n);
        ck_assert_uint_eq(n, len);
        ck_assert(memcmp(got, data, len) == 0);
        free(got);
        ck_assert_str_eq(get.etag, put.etag);

        sim_fault("{\"route\": \"" ROUTE_GET "\", \"body\": \"short\", \"count\": 1}");
        mem.ctx = &c;
        ck_assert_int_eq(storage_get_memory(c.st, "s3://" BUCKET "/resume/x.bin", &good_cred, len,
                                            on_done, &mem, &mem.op), 0);
        ctx_run(&c, 3);
        ck_assert_int_eq(mem.error, 0);
        ck_assert_uint_eq(mem.len, len);
        ck_assert(memcmp(mem.data, data, len) == 0);
        ck_assert_int_eq(sim_route(ROUTE_GET), 4);

        res_done(&put);
        res_done(&get);
        res_done(&mem);
        ctx_done(&c);
        free(dst);
        free(data);
}
END_TEST

/* storage_get_memory stops at its cap with -EFBIG; exactly the cap is fine. */
START_TEST(test_get_memory_cap) {
        uint8_t data[100000];
        Res put = {}, small = {}, exact = {};
        Ctx c;

        fill_pattern(data, sizeof(data), 1);
        ctx_init(&c);
        put.ctx = small.ctx = exact.ctx = &c;
        ck_assert_int_eq(storage_put_memory(c.st, "s3://" BUCKET "/cap/x", &good_cred, data,
                                            sizeof(data), on_done, &put, &put.op), 0);
        ctx_run(&c, 1);
        ck_assert_int_eq(put.error, 0);
        ck_assert_int_eq(storage_get_memory(c.st, "s3://" BUCKET "/cap/x", &good_cred, 1000,
                                            on_done, &small, &small.op), 0);
        ck_assert_int_eq(storage_get_memory(c.st, "s3://" BUCKET "/cap/x", &good_cred,
                                            sizeof(data), on_done, &exact, &exact.op), 0);
        ctx_run(&c, 3);
        ck_assert_int_eq(small.error, -EFBIG);
        ck_assert_ptr_nonnull(strstr(small.message, "larger than 1000 bytes"));
        ck_assert_int_eq(exact.error, 0);
        ck_assert_uint_eq(exact.len, sizeof(data));
        ck_assert(memcmp(exact.data, data, sizeof(data)) == 0);
        res_done(&put);
        res_done(&small);
        res_done(&exact);
        ctx_done(&c);
}
END_TEST

/* Descriptors epoll refuses are read from the timer: a regular file passed with size -1 is
 * read as a stream, /dev/null is an empty stream and a download sink. */
START_TEST(test_regular_file_as_stream) {
        char *src = make_file("stream-file.bin", 6 * MIB + 3, 21), *obj = sim_object_path("sf/x");
        char *empty = sim_object_path("sf/empty");
        Res put = {}, null_put = {}, null_get = {};
        struct stat st;
        int fd;
        Ctx c;

        ctx_init(&c);
        fd = open(src, O_RDONLY | O_CLOEXEC);
        put.ctx = &c;
        ck_assert_int_eq(storage_put_fd(c.st, "s3://" BUCKET "/sf/x", &good_cred, fd, -1, NULL,
                                        on_done, &put, &put.op), 0);
        ctx_run(&c, 1);
        close(fd);
        ck_assert_int_eq(put.error, 0);
        ck_assert_int_eq(sim_route(ROUTE_PART), 2);
        assert_same_files(src, obj);

        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        null_put.ctx = null_get.ctx = &c;
        ck_assert_int_eq(storage_put_fd(c.st, "s3://" BUCKET "/sf/empty", &good_cred, fd, -1,
                                        NULL, on_done, &null_put, &null_put.op), 0);
        ctx_run(&c, 2);
        ck_assert_int_eq(null_put.error, 0);
        ck_assert_int_eq(stat(empty, &st), 0);
        ck_assert_int_eq(st.st_size, 0);
        ck_assert_int_eq(storage_get_fd(c.st, "s3://" BUCKET "/sf/x", &good_cred, fd, NULL,
                                        on_done, &null_get, &null_get.op), 0);
        ctx_run(&c, 3);
        ck_assert_int_eq(null_get.error, 0);
        ck_assert_uint_eq(null_get.bytes, 6 * MIB + 3);
        ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
        close(fd);

        res_done(&put);
        res_done(&null_put);
        res_done(&null_get);
        ctx_done(&c);
        unlink(src);
        free(src);
        free(obj);
        free(empty);
}
END_TEST

/* Whether no abort is in flight. */
static bool no_pending_aborts(void *userdata) {
        return storage_pending_aborts(userdata) == 0;
}

/* Freeing the Storage with operations in flight calls no callback and gives descriptors
 * their flags back; the abort of a cancelled upload is counted until answered, so a
 * stopping daemon can wait for it before it frees the Storage (which cancels those left). */
START_TEST(test_free_in_flight) {
        char *src = make_file("free.bin", 20 * MIB, 8);
        Res put = {}, waiting = {};
        int fd, p[2];
        Ctx c;

        ctx_init(&c);
        fd = put_file(&c, "s3://" BUCKET "/free/x.bin", src, &put);
        /* a stream that never sends: waiting for its first part */
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        waiting.ctx = &c;
        ck_assert_int_eq(storage_put_fd(c.st, "s3://" BUCKET "/free/pipe", &good_cred, p[0], -1,
                                        NULL, on_done, &waiting, &waiting.op), 0);
        ctx_wait(&c, res_past_first_part, &put, "the second part");
        storage_cancel(put.op);
        ck_assert_uint_eq(storage_pending_aborts(c.st), 1);
        ctx_wait(&c, no_pending_aborts, c.st, "the AbortMultipartUpload");
        c.st = storage_free(c.st);
        ck_assert_int_eq(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
        close(fd);
        close(p[0]);
        close(p[1]);
        ck_assert_int_eq(sim_route(ROUTE_ABORT), 1);
        ck_assert_int_eq(sim_uploads(), 0);
        ck_assert_uint_eq(put.calls, 0);
        ck_assert_uint_eq(waiting.calls, 0);
        res_done(&put);
        res_done(&waiting);
        ctx_done(&c);
        unlink(src);
        free(src);
}
END_TEST

/* ---- memory: 1 GiB with a flat resident set ------------------------------------------------ */

/* A line of /proc/self/status in KiB. */
static uint64_t status_kib(const char *field) {
        char line[256];
        uint64_t v = 0;
        FILE *f = fopen("/proc/self/status", "re");
        size_t l = strlen(field);

        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, field, l) == 0 && line[l] == ':')
                        v = strtoull(line + l + 1, NULL, 10);
        fclose(f);
        return v;
}

/* A 1 GiB sparse file goes up in 16 MiB parts and comes back into /dev/null with VmHWM
 * growing less than 32 MiB; prints the throughput. */
START_TEST(test_rss_1gib) {
        const uint64_t size = (uint64_t) 1 << 30;
        char *src = work_path("1gib.bin"), *obj = sim_object_path("rss/1gib.bin");
        uint64_t hwm0, hwm1, rss1, t0, t1;
        StorageOptions so;
        struct stat st;
        Res put = {}, get = {};
        int fd;
        Ctx c;

        fd = open(src, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, (off_t) size), 0);
        ck_assert_int_eq(pwrite(fd, "head", 4, 0), 4);
        ck_assert_int_eq(pwrite(fd, "tail", 4, (off_t) size - 4), 4);
        close(fd);

        ctx_init(&c);
        so = test_options(NULL);
        {
                char endpoint[128];
                snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u/storage", sim_port);
                so.endpoint_url = endpoint;
                so.part_size = 16 * MIB;
                so.multipart_threshold = 64 * MIB;
                ck_assert_int_eq(storage_set_options(c.st, &so), 0);
        }
        /* reset the peak (Linux >= 4.0); else measure growth from here */
        fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
                if (write(fd, "5", 1) != 1)
                        fprintf(stderr, "clear_refs: %m; measuring the growth only\n");
                close(fd);
        }
        hwm0 = status_kib("VmHWM");
        t0 = test_now_ms();
        upload_file_ok(&c, "s3://" BUCKET "/rss/1gib.bin", src, &put);
        t1 = test_now_ms();
        hwm1 = status_kib("VmHWM");
        rss1 = status_kib("VmRSS");
        printf("storage: 1 GiB multipart upload in %" PRIu64 " ms (%.1f MiB/s), VmHWM %" PRIu64
               " -> %" PRIu64 " KiB (+%" PRIu64 " KiB), VmRSS %" PRIu64 " KiB\n",
               t1 - t0, 1024.0 * 1000.0 / (double) MAX(t1 - t0, (uint64_t) 1), hwm0, hwm1,
               hwm1 - hwm0, rss1);
        fflush(stdout);
        ck_assert_int_eq(sim_route(ROUTE_PART), 64);
        ck_assert_int_eq(stat(obj, &st), 0);
        ck_assert_int_eq(st.st_size, (off_t) size);
        ck_assert_msg(hwm1 - hwm0 < 32 * 1024, "VmHWM grew by %" PRIu64 " KiB", hwm1 - hwm0);

        get.ctx = &c;
        fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        t0 = test_now_ms();
        ck_assert_int_eq(storage_get_fd(c.st, "s3://" BUCKET "/rss/1gib.bin", &good_cred, fd,
                                        NULL, on_done, &get, &get.op), 0);
        ctx_run(&c, 2);
        t1 = test_now_ms();
        close(fd);
        ck_assert_int_eq(get.error, 0);
        ck_assert_uint_eq(get.bytes, size);
        hwm1 = status_kib("VmHWM");
        printf("storage: 1 GiB download in %" PRIu64 " ms (%.1f MiB/s), VmHWM +%" PRIu64
               " KiB in all\n", t1 - t0, 1024.0 * 1000.0 / (double) MAX(t1 - t0, (uint64_t) 1),
               hwm1 - hwm0);
        fflush(stdout);
        ck_assert_msg(hwm1 - hwm0 < 32 * 1024, "VmHWM grew by %" PRIu64 " KiB", hwm1 - hwm0);
        res_done(&get);
        unlink(obj);
        unlink(src);
        res_done(&put);
        ctx_done(&c);
        free(src);
        free(obj);
}
END_TEST

/* ---- main ---------------------------------------------------------------------------------- */

/* The suite: everything, or only the slow memory test. */
static Suite *storage_suite(bool slow) {
        Suite *s = suite_create("storage");
        TCase *tc;

        if (slow) {
                tc = tcase_create("memory");
                tcase_set_timeout(tc, 900 * test_time_scale());
                tcase_add_test(tc, test_rss_1gib);
                suite_add_tcase(s, tc);
                return s;
        }

        tc = tcase_create("urls");
        tcase_add_test(tc, test_parse_url);
        tcase_add_test(tc, test_object_url);
        tcase_add_test(tc, test_bad_options);
        suite_add_tcase(s, tc);

        tc = tcase_create("avatar-sim");
        tcase_set_timeout(tc, 120 * test_time_scale());
        tcase_add_test(tc, test_small_roundtrip);
        tcase_add_test(tc, test_multipart_file);
        tcase_add_test(tc, test_pipe_small);
        tcase_add_test(tc, test_pipe_multipart);
        tcase_add_test(tc, test_get_slow_pipe);
        tcase_add_test(tc, test_get_broken_pipe);
        tcase_add_test(tc, test_wrong_secret);
        tcase_add_test(tc, test_missing_object);
        tcase_add_test(tc, test_cancel_multipart);
        tcase_add_test(tc, test_cancel_get_and_early);
        tcase_add_test(tc, test_cancel_then_close_fd);
        tcase_add_test(tc, test_part_failure_aborts);
        tcase_add_test(tc, test_dropped_part_retried);
        tcase_add_test(tc, test_5xx_retried);
        tcase_add_test(tc, test_get_resume);
        tcase_add_test(tc, test_get_memory_cap);
        tcase_add_test(tc, test_regular_file_as_stream);
        tcase_add_test(tc, test_free_in_flight);
        suite_add_tcase(s, tc);
        return s;
}

/* Starts the simulator, runs the suite, cleans up (storage-harness.c). */
int main(int argc, char **argv) {
        return storage_test_main(argc, argv, storage_suite);
}
