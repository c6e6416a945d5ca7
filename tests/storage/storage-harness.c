/* SPDX-License-Identifier: MIT */
/*
 * The shared harness of the storage client tests: see storage-harness.h.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake-http.h"
#include "log.h"
#include "macro.h"
#include "storage-harness.h"
#include "storage.h"
#include "test-wait.h"
#include "upstream.h"

/* The simulator shared by every test (started by storage_test_main()). */
static const char *sim_path;
static pid_t sim_pid = -1;
unsigned sim_port;
static char *work_dir;    /* temporary files of this run */
static char *sim_dir;     /* the simulator's object store */

const StorageCredentials good_cred = { KEY_ID, SECRET };

/* ---- the simulator's control API (blocking libcurl: test code only) ---------------------- */

/* Appends a response chunk to a malloc'd string. */
static size_t on_http_body(char *data, size_t size, size_t n, void *userdata) {
        char **s = userdata;
        size_t old = *s ? strlen(*s) : 0, add = size * n;
        char *p = realloc(*s, old + add + 1);

        if (!p)
                return 0;
        memcpy(p + old, data, add);
        p[old + add] = '\0';
        *s = p;
        return add;
}

/* One request to the simulator; returns the body (malloc'd) and the status. */
static char *sim_http(const char *method, const char *path, const char *body, long *ret_status) {
        char url[256], *out = NULL;
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        CURL *e = curl_easy_init();
        long status = 0;

        ck_assert_ptr_nonnull(e);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", sim_port, path);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_http_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) test_deadline_ms(20000));
        if (body)
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(e);
        curl_slist_free_all(h);
        if (ret_status)
                *ret_status = status;
        return out ? out : strdup("");
}

/* Removes faults and zeroes the counters. */
void sim_reset(void) {
        long status;
        char *b = sim_http("POST", "/_sim/reset", "{\"stats\": true}", &status);

        ck_assert_int_eq(status, 200);
        free(b);
}

/* Adds a fault rule. */
void sim_fault(const char *json) {
        long status;
        char *b = sim_http("POST", "/_sim/fault", json, &status);

        ck_assert_msg(status == 201, "fault refused: %ld %s", status, b);
        free(b);
}

/* The simulator's statistics. */
static json_object *sim_stats(void) {
        long status;
        char *b = sim_http("GET", "/_sim/stats", NULL, &status);
        json_object *o = json_tokener_parse(b);

        ck_assert_int_eq(status, 200);
        ck_assert_ptr_nonnull(o);
        free(b);
        return o;
}

/* How often a route was requested since the last reset. */
int64_t sim_route(const char *route) {
        _cleanup_(json_object_putp) json_object *s = sim_stats();
        json_object *routes, *n;

        if (!json_object_object_get_ex(s, "routes", &routes) ||
            !json_object_object_get_ex(routes, route, &n))
                return 0;
        return json_object_get_int64(n);
}

/* Requests the simulator holds now (hold faults). */
int64_t sim_held(void) {
        _cleanup_(json_object_putp) json_object *s = sim_stats();
        json_object *n;

        ck_assert(json_object_object_get_ex(s, "held", &n));
        return json_object_get_int64(n);
}

/* Lets every held request go on; returns how many. */
int64_t sim_release(void) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *n;
        long status;
        char *b = sim_http("POST", "/_sim/release", "{}", &status);

        ck_assert_int_eq(status, 200);
        o = json_tokener_parse(b);
        free(b);
        ck_assert(o && json_object_object_get_ex(o, "released", &n));
        return json_object_get_int64(n);
}

/* Multipart uploads in progress on the simulator. */
int64_t sim_uploads(void) {
        _cleanup_(json_object_putp) json_object *s = sim_stats();
        json_object *n;

        ck_assert(json_object_object_get_ex(s, "uploads", &n));
        return json_object_get_int64(n);
}

/* Whether the simulator wrote its port file (it writes a temporary file and renames it), or
 * died: then it never will. */
static bool sim_listening(void *userdata) {
        const char *port_file = userdata;
        char portbuf[32] = "";
        ssize_t n;
        int fd;

        if (waitpid(sim_pid, NULL, WNOHANG) == sim_pid) {
                sim_pid = -1;
                return true;
        }
        fd = open(port_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, portbuf, sizeof(portbuf) - 1);
        close(fd);
        if (n <= 0 || portbuf[n - 1] != '\n')
                return false;
        portbuf[n] = '\0';
        sim_port = (unsigned) strtoul(portbuf, NULL, 10);
        return true;
}

/* Starts avatar-sim with the fixed key pair and waits for its port. */
static void sim_start(void) {
        char port_file[512];

        snprintf(port_file, sizeof(port_file), "%s/sim.port", work_dir);
        sim_pid = fork();
        if (sim_pid == 0) {
                execl(sim_path, sim_path, "--port", "0", "--port-file", port_file,
                      "--storage-credentials", KEY_ID ":" SECRET, "--storage-dir", sim_dir,
                      (char *) NULL);
                fprintf(stderr, "Failed to run %s: %m\n", sim_path);
                _exit(127);
        }
        if (sim_pid < 0) {
                fprintf(stderr, "fork: %m\n");
                exit(EXIT_FAILURE);
        }
        (void) test_poll_until(sim_listening, port_file, TEST_WAIT_MS);
        if (sim_port == 0) {
                fprintf(stderr, "avatar-sim did not start (%s)\n", sim_path);
                exit(EXIT_FAILURE);
        }
}

/* Stops the simulator. */
static void sim_stop(void) {
        if (sim_pid > 0) {
                kill(sim_pid, SIGTERM);
                (void) waitpid(sim_pid, NULL, 0);
                sim_pid = -1;
        }
}

/* ---- files --------------------------------------------------------------------------------- */

/* The path of a file in the work directory (static buffer per call site is enough). */
char *work_path(const char *name) {
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/%s", work_dir, name), 0);
        return p;
}

/* The simulator's file of an object. */
char *sim_object_path(const char *key) {
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/%s/%s", sim_dir, BUCKET, key), 0);
        return p;
}

/* Deterministic, non-repeating-looking test bytes. */
void fill_pattern(uint8_t *b, size_t n, uint64_t seed) {
        uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

        for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b[i] = (uint8_t) (x >> 32);
        }
}

/* Writes a file of `size` pattern bytes. */
char *make_file(const char *name, size_t size, uint64_t seed) {
        char *path = work_path(name);
        uint8_t *b = malloc(MAX(size, (size_t) 1));
        int fd;

        ck_assert_ptr_nonnull(b);
        fill_pattern(b, size, seed);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        for (size_t off = 0; off < size;) {
                ssize_t k = write(fd, b + off, size - off);
                ck_assert_int_gt(k, 0);
                off += (size_t) k;
        }
        close(fd);
        free(b);
        return path;
}

/* Reads a whole file (malloc'd). */
uint8_t *read_file(const char *path, size_t *ret_len) {
        struct stat st;
        uint8_t *b;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        ck_assert_msg(fd >= 0, "cannot open %s: %m", path);
        ck_assert_int_eq(fstat(fd, &st), 0);
        b = malloc((size_t) st.st_size + 1);
        ck_assert_ptr_nonnull(b);
        for (size_t off = 0; off < (size_t) st.st_size;) {
                ssize_t k = read(fd, b + off, (size_t) st.st_size - off);
                ck_assert_int_gt(k, 0);
                off += (size_t) k;
        }
        close(fd);
        *ret_len = (size_t) st.st_size;
        return b;
}

/* Asserts that two files hold the same bytes. */
void assert_same_files(const char *a, const char *b) {
        size_t la, lb;
        uint8_t *x = read_file(a, &la), *y = read_file(b, &lb);

        ck_assert_uint_eq(la, lb);
        ck_assert_msg(memcmp(x, y, la) == 0, "%s and %s differ", a, b);
        free(x);
        free(y);
}

/* Removes one entry of a tree (nftw callback). */
static int on_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path) < 0 ? -1 : 0;
}

/* ---- the event loop ------------------------------------------------------------------------ */

/* Whether the operations a ctx_run() waits for all completed. */
static bool ctx_completed(void *userdata) {
        Ctx *c = userdata;

        return c->done >= c->expect;
}

/* Runs the loop until `expect` operations completed, failing the test when they hang. */
void ctx_run(Ctx *c, unsigned expect) {
        c->expect = expect;
        ck_assert_msg(test_wait_until(c->base, ctx_completed, c, GUARD_MS),
                      "timed out with %u of %u completions", c->done, expect);
        ck_assert_uint_eq(c->done, expect);
}

/* Runs the loop until cond(arg) holds, failing the test with `what` when it never does. */
void ctx_wait(Ctx *c, TestCondition cond, void *arg, const char *what) {
        ck_assert_msg(test_wait_until(c->base, cond, arg, GUARD_MS), "timed out waiting for %s", what);
}

/* A condition on the simulator, polled by a thread that wakes the loop through a pipe. */
typedef struct SimWait {
        TestCondition cond;
        void *arg;
        bool held;
        bool woken;
        int pipe[2];
} SimWait;

/* Thread: polls the condition, then writes one byte (held or not). */
static void *sim_wait_thread(void *userdata) {
        SimWait *w = userdata;

        w->held = test_poll_until(w->cond, w->arg, GUARD_MS);
        (void) !write(w->pipe[1], "x", 1);
        return NULL;
}

/* libevent: the polling thread is done. */
static void on_sim_wait_pipe(evutil_socket_t fd, short what, void *userdata) {
        SimWait *w = userdata;
        char b;

        (void) what;
        (void) !read(fd, &b, 1);
        w->woken = true;
}

/* Whether the polling thread is done. */
static bool sim_wait_woken(void *userdata) {
        SimWait *w = userdata;

        return w->woken;
}

/* Runs the loop until cond(arg) holds. */
void ctx_wait_sim(Ctx *c, TestCondition cond, void *arg, const char *what) {
        SimWait w = { .cond = cond, .arg = arg };
        struct event *ev;
        pthread_t t;

        ck_assert_int_eq(pipe2(w.pipe, O_CLOEXEC), 0);
        ev = event_new(c->base, w.pipe[0], EV_READ, on_sim_wait_pipe, &w);
        ck_assert_ptr_nonnull(ev);
        ck_assert_int_eq(event_add(ev, NULL), 0);
        ck_assert_int_eq(pthread_create(&t, NULL, sim_wait_thread, &w), 0);
        /* the thread's own bound comes first; this one only guards against a lost wakeup */
        ck_assert(test_wait_until(c->base, sim_wait_woken, &w, 2 * GUARD_MS));
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        event_free(ev);
        close(w.pipe[0]);
        close(w.pipe[1]);
        ck_assert_msg(w.held, "timed out waiting for %s", what);
}

/* Whether a progress callback cancelled its operation. */
bool res_cancelled(void *userdata) {
        Res *r = userdata;

        return r->cancelled;
}

/* Whether an operation was cancelled from its progress callback and Upstream has nothing
 * left in flight. */
bool res_cancelled_idle(void *userdata) {
        Res *r = userdata;

        return r->cancelled && upstream_in_flight(r->ctx->up) == 0;
}

/* Whether an upload's progress went past its first 5 MiB part. */
bool res_past_first_part(void *userdata) {
        Res *r = userdata;

        return r->progress_last >= 6 * MIB;
}

/* Whether Upstream has nothing in flight and the simulator received an AbortMultipartUpload:
 * a fire-and-forget abort went out and was answered. */
bool abort_answered(void *userdata) {
        Ctx *c = userdata;

        return upstream_in_flight(c->up) == 0 && sim_route(ROUTE_ABORT) >= 1;
}

/* Options of the tests: 5 MiB parts, multipart above 12 MiB. */
StorageOptions test_options(const char *endpoint) {
        return (StorageOptions) {
                .endpoint_url = endpoint,
                .multipart_threshold = 12 * MIB,
                .part_size = 5 * MIB,
        };
}

/* Upstream's options of the tests: quick retries; its deadlines (Upstream's defaults) scaled
 * like every wait, as they only bound a hang here. */
UpstreamOptions test_upstream_options(void) {
        return (UpstreamOptions) {
                .verify_ssl = true,
                .retry_base_ms = 10,
                .retry_max_ms = 50,
                .connect_timeout_ms = test_deadline_ms(10000),
                .request_timeout_ms = test_deadline_ms(60000),
        };
}

/* Sets up loop, Upstream and Storage on the simulator (or on `endpoint`). */
void ctx_init_at(Ctx *c, const char *endpoint) {
        UpstreamOptions uo = test_upstream_options();
        StorageOptions so = test_options(endpoint);

        memset(c, 0, sizeof(*c));
        c->base = event_base_new();
        ck_assert_ptr_nonnull(c->base);
        ck_assert_int_eq(upstream_new(c->base, &uo, &c->up), 0);
        ck_assert_int_eq(storage_new(c->base, c->up, &so, &c->st), 0);
}

/* Sets up on the simulator, after resetting its faults and counters. */
void ctx_init(Ctx *c) {
        char endpoint[128];

        sim_reset();
        snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u/storage", sim_port);
        ctx_init_at(c, endpoint);
}

/* Tears down in the documented order: Storage before Upstream before the loop. */
void ctx_done(Ctx *c) {
        c->st = storage_free(c->st);
        c->up = upstream_free(c->up);
        c->fake = fake_http_free(c->fake);
        event_base_free(c->base);
}

/* Frees a result's copies. */
void res_done(Res *r) {
        free(r->code);
        free(r->message);
        free(r->data);
        free(r->etag);
        memset(r, 0, sizeof(*r));
}

/* Done callback: copies the result. */
void on_done(const StorageResult *res, void *userdata) {
        Res *r = userdata;
        Ctx *c = r->ctx;

        r->calls++;
        r->error = res->error;
        r->status = res->status;
        r->code = res->s3_code ? strdup(res->s3_code) : NULL;
        r->bytes = res->bytes;
        if (res->error < 0) {
                ck_assert_ptr_nonnull(res->message);
                r->message = strdup(res->message);
                ck_assert_ptr_null(res->data);
        }
        if (res->data) {
                r->data = malloc(res->len + 1);
                ck_assert_ptr_nonnull(r->data);
                memcpy(r->data, res->data, res->len);
                r->data[res->len] = '\0';
                r->len = res->len;
        }
        r->etag = res->etag ? strdup(res->etag) : NULL;
        /* cancelling from done is a no-op */
        storage_cancel(r->op);
        c->done++;
}

/* Progress callback: checks monotony, cancels when told. */
void on_progress(uint64_t done, uint64_t total, void *userdata) {
        Res *r = userdata;

        if (done < r->progress_last)
                r->progress_backwards = true;
        r->progress_calls++;
        r->progress_last = done;
        r->progress_total = total;
        if (r->cancel_at > 0 && done >= r->cancel_at && !r->cancelled) {
                r->cancelled = true;
                storage_cancel(r->op);
        }
}

/* Starts a put of a file (regular: its size). Returns the descriptor, which stays open
 * until the operation ended. */
int put_file(Ctx *c, const char *s3url, const char *path, Res *r) {
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        r->ctx = c;
        ck_assert_int_eq(storage_put_fd(c->st, s3url, &good_cred, fd, st.st_size, on_progress,
                                        on_done, r, &r->op), 0);
        return fd;
}

/* Gets into a new file. */
void get_file(Ctx *c, const char *s3url, const char *path, Res *r, int *ret_fd) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        ck_assert_int_ge(fd, 0);
        r->ctx = c;
        ck_assert_int_eq(storage_get_fd(c->st, s3url, &good_cred, fd, on_progress, on_done, r,
                                        &r->op), 0);
        *ret_fd = fd;
}

/* Uploads a file and waits; asserts success. */
void upload_file_ok(Ctx *c, const char *s3url, const char *path, Res *r) {
        int fd;

        fd = put_file(c, s3url, path, r);
        ctx_run(c, c->done + 1);
        close(fd);
        ck_assert_msg(r->error == 0, "put failed: %d %s", r->error, strna(r->message));
}

/* ---- main ---------------------------------------------------------------------------------- */

/* Starts the simulator, runs the suite that make_suite() builds, cleans up: the whole main()
 * of a storage test executable. */
int storage_test_main(int argc, char **argv, Suite *(*make_suite)(bool slow)) {
        const char *tmp = getenv("TMPDIR");
        bool slow = argc > 2 && streq(argv[2], "--slow");
        SRunner *sr;
        int failed;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s AVATAR_SIM [--slow]\n", argv[0]);
                return EXIT_FAILURE;
        }
        sim_path = argv[1];
        /* as the daemon does: a reader that went away is -EPIPE, not a signal */
        signal(SIGPIPE, SIG_IGN);
        log_set_max_level(getenv("STORAGE_TEST_DEBUG") ? LOG_DEBUG : LOG_WARNING);
        curl_global_init(CURL_GLOBAL_DEFAULT);

        if (asprintf(&work_dir, "%s/test-storage.XXXXXX", isempty(tmp) ? "/tmp" : tmp) < 0 ||
            !mkdtemp(work_dir) || asprintf(&sim_dir, "%s/sim", work_dir) < 0 ||
            mkdir(sim_dir, 0700) < 0) {
                fprintf(stderr, "Failed to create the work directory: %m\n");
                return EXIT_FAILURE;
        }
        {
                char *b;
                if (asprintf(&b, "%s/" BUCKET, sim_dir) < 0 || mkdir(b, 0700) < 0) {
                        fprintf(stderr, "Failed to create the bucket: %m\n");
                        return EXIT_FAILURE;
                }
                free(b);
        }
        sim_start();

        sr = srunner_create(make_suite(slow));
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);

        sim_stop();
        (void) nftw(work_dir, on_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(work_dir);
        free(sim_dir);
        curl_global_cleanup();
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
