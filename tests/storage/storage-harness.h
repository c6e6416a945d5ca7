/* SPDX-License-Identifier: MIT */
/*
 * The shared harness of the storage client tests (test-storage.c, test-storage-fake.c):
 * avatar-sim started as a child process with a fixed key pair and its control API, test
 * files, a real event loop with Upstream and Storage per test, operation results, and the
 * main() of each executable.
 */
#pragma once

#include <check.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake-http.h"
#include "macro.h"
#include "storage.h"
#include "test-wait.h"
#include "upstream.h"

#define MIB (1024u * 1024u)
/* Bound of a wait for completions (scaled): only hit when something hangs. */
#define GUARD_MS 120000u
#define BUCKET "test-bucket"
#define KEY_ID "TESTID"
#define SECRET "TESTSECRET"

#define ROUTE_PUT "PUT /storage/{bucket}/{key}"
#define ROUTE_PART "PUT /storage/{bucket}/{key}?partNumber&uploadId"
#define ROUTE_CREATE "POST /storage/{bucket}/{key}?uploads"
#define ROUTE_COMPLETE "POST /storage/{bucket}/{key}?uploadId"
#define ROUTE_ABORT "DELETE /storage/{bucket}/{key}?uploadId"
#define ROUTE_GET "GET /storage/{bucket}/{key}"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

/* The port of the simulator shared by every test (started by storage_test_main()). */
extern unsigned sim_port;

extern const StorageCredentials good_cred;

typedef struct Ctx Ctx;

/* What one operation reported. */
typedef struct Res {
        Ctx *ctx;
        unsigned calls;
        int error;
        long status;
        char *code;
        char *message;
        uint64_t bytes;
        char *data;
        size_t len;
        char *etag;
        StorageOp *op;
        unsigned progress_calls;
        uint64_t progress_last;
        uint64_t progress_total;
        bool progress_backwards;
        uint64_t cancel_at;       /* cancel from the progress callback once done >= this */
        bool cancelled;
} Res;

struct Ctx {
        struct event_base *base;
        Upstream *up;
        Storage *st;
        FakeHttp *fake;
        unsigned done;
        unsigned expect;
};

/* Removes faults and zeroes the counters. */
void sim_reset(void);

/* Adds a fault rule. */
void sim_fault(const char *json);

/* How often a route was requested since the last reset. */
int64_t sim_route(const char *route);

/* Requests the simulator holds now (hold faults), and letting them all go on (returns how
 * many went). */
int64_t sim_held(void);
int64_t sim_release(void);

/* Multipart uploads in progress on the simulator. */
int64_t sim_uploads(void);

/* The path of a file in the work directory (static buffer per call site is enough). */
char *work_path(const char *name);

/* The simulator's file of an object. */
char *sim_object_path(const char *key);

/* Deterministic, non-repeating-looking test bytes. */
void fill_pattern(uint8_t *b, size_t n, uint64_t seed);

/* Writes a file of `size` pattern bytes. */
char *make_file(const char *name, size_t size, uint64_t seed);

/* Reads a whole file (malloc'd). */
uint8_t *read_file(const char *path, size_t *ret_len);

/* Asserts that two files hold the same bytes. */
void assert_same_files(const char *a, const char *b);

/* Runs the loop until `expect` operations completed, failing the test when they hang. */
void ctx_run(Ctx *c, unsigned expect);

/* Runs the loop until cond(arg) holds, failing the test with `what` when it never does. */
void ctx_wait(Ctx *c, TestCondition cond, void *arg, const char *what);

/* The same for a condition on the simulator only (sim_held(), sim_route()...): a thread
 * polls it while the loop runs (the loop may have nothing to do meanwhile: requests held)
 * and wakes the loop when it holds. cond must not touch the loop's objects. */
void ctx_wait_sim(Ctx *c, TestCondition cond, void *arg, const char *what);

/* Whether a progress callback cancelled its operation. */
bool res_cancelled(void *userdata);

/* Whether an operation was cancelled from its progress callback and Upstream has nothing
 * left in flight. */
bool res_cancelled_idle(void *userdata);

/* Whether an upload's progress went past its first 5 MiB part. */
bool res_past_first_part(void *userdata);

/* Whether Upstream has nothing in flight and the simulator received an AbortMultipartUpload:
 * a fire-and-forget abort went out and was answered. */
bool abort_answered(void *userdata);

/* Options of the tests: 5 MiB parts, multipart above 12 MiB. */
StorageOptions test_options(const char *endpoint);

/* Upstream's options of the tests: quick retries; its deadlines (Upstream's defaults) scaled
 * like every wait, as they only bound a hang here. */
UpstreamOptions test_upstream_options(void);

/* Sets up loop, Upstream and Storage on the simulator (or on `endpoint`). */
void ctx_init_at(Ctx *c, const char *endpoint);

/* Sets up on the simulator, after resetting its faults and counters. */
void ctx_init(Ctx *c);

/* Tears down in the documented order: Storage before Upstream before the loop. */
void ctx_done(Ctx *c);

/* Frees a result's copies. */
void res_done(Res *r);

/* Done callback: copies the result. */
void on_done(const StorageResult *res, void *userdata);

/* Progress callback: checks monotony, cancels when told. */
void on_progress(uint64_t done, uint64_t total, void *userdata);

/* Starts a put of a file (regular: its size). Returns the descriptor, which stays open
 * until the operation ended. */
int put_file(Ctx *c, const char *s3url, const char *path, Res *r);

/* Gets into a new file. */
void get_file(Ctx *c, const char *s3url, const char *path, Res *r, int *ret_fd);

/* Uploads a file and waits; asserts success. */
void upload_file_ok(Ctx *c, const char *s3url, const char *path, Res *r);

/* Starts the simulator, runs the suite that make_suite() builds, cleans up: the whole main()
 * of a storage test executable. Usage: AVATAR_SIM [--slow]. */
int storage_test_main(int argc, char **argv, Suite *(*make_suite)(bool slow));
