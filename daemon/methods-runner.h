/* SPDX-License-Identifier: MIT */
/*
 * The runner methods, one file per family: methods-runner.c (runners: create, load, export,
 * delete, list, close), methods-runner-tables.c (tables, links, parameters, advice),
 * methods-runner-run.c (run), methods-runner-wait.c (status, wait, watch) and
 * methods-runner-results.c (results and downloads). This header holds what they share.
 *
 * Long operations (uploads, runs, waits, downloads) are asynchronous Ops (op.h) that hold a
 * reference on their runner and mark it busy while they change it.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "call.h"
#include "op.h"
#include "runner.h"
#include "storage.h"

/* Default and largest runner.wait deadline, in seconds. */
#define WAIT_DEFAULT_S 3600

/* ---- lookup and ownership (methods-runner.c) ---- */

/* Finds the runner named by params.runner_id and checks the caller may act on it: its owner
 * or an admin. On failure replies and returns NULL. */
Runner *runner_for_call(Call *c, json_object *params);

/* Replies invalid_state when the runner is busy; returns true then. */
bool runner_busy_reply(Call *c, Runner *r);

/* Replies with the runner's status. */
int reply_status(Call *c, Runner *r);

/* ---- saved or refused (methods-runner.c; the contract is in runner.h) ---- */

/* Finishes the call with state_not_saved for a failed save of r (`error`, its -errno; `kept`:
 * the change stays in memory, unsaved, for the retries to write). Returns 0. */
int reply_not_saved(Call *c, Runner *r, int error, bool kept);

/* The same with the caller's message (printf-style; %m is the save's error). Returns 0. */
int reply_not_savedf(Call *c, Runner *r, int error, bool kept, const char *fmt, ...) _printf_(5, 6);

/* The same error as an ApiError, for the callbacks that take one (e is reset first). */
void api_error_not_saved(ApiError *e, Runner *r, int error, bool kept);

/* Saves r after the change the call made since `snap` (runner_snapshot(); taken) and finishes
 * the call: with `reply` (taken) once the change is on disk; else with state_not_saved, the
 * change undone when no later save of the runner was asked for meanwhile (data.kept false),
 * or kept in memory, unsaved, for the retries (data.kept true). The save is made off the event
 * loop (runner_save_async()); the reply comes when it ended. Returns 0 (the call is or will be
 * finished), or -ENOMEM with the change undone and the call not finished. */
int runner_commit_reply(Call *c, Runner *r, RunnerSnapshot *snap, json_object *reply);

/* ---- notifications (methods-runner.c) ---- */

typedef struct Notifier {
        char id[24];
        uint64_t seq;
} Notifier;

/* Gives a call a subscription id for its notifications. */
void notifier_init(Notifier *n);

/* Sends a notification on the call's connection (if it is still there). Takes params. */
void notifier_send(Call *c, Notifier *n, const char *method, json_object *params);

/* Whether a job is finished (done and not failed). */
static inline bool job_finished(json_object *job) {
        return job_done(job) && !job_failed(job);
}

/* ---- PUT /resources (methods-runner-run.c) ---- */

/* A PUT /resources in flight. Older servers answer 201 + Location instead of 200 + the
 * set: the Location is read (GET) as the published client's generic request path does. Lives
 * in the Op, so a cancelled call leaves nothing behind. */
typedef struct PutResources {
        Op *op;
        Runner *runner;           /* whose owner the new set is recorded for (the Op holds it) */
        api_done_cb cb;           /* called with userdata = op */
        char *location;           /* the Location being read, NULL before */
        json_object *created;     /* the 201 answer's JSON, or NULL */
} PutResources;

/* Releases what a PUT /resources holds. */
void put_resources_done(PutResources *p);

/* Sends the runner's YAML as a new set, recorded as the runner owner's (sets.h) before cb
 * hears of it. Used by run and advise; cb gets op as userdata. */
int put_resources(Op *op, PutResources *p, Runner *r, api_done_cb cb);

/* Whether the runner ran jobs other than advice. */
bool runner_has_run(const Runner *r);

/* ---- results and storage access (methods-runner-results.c) ---- */

typedef struct ResultsFetch ResultsFetch;
typedef struct ResultsSave ResultsSave;
typedef void (*results_fetch_cb)(Op *op, const ApiError *err);

/* Fetches the missing GET /results of the finished jobs of a runner (all, or one), one after
 * the other, then calls back. The results are stored in the runner, which is saved once when
 * the fetch ends (or its Op goes, see results_fetch_flush()). */
struct ResultsFetch {
        Runner *runner;
        const char *only;        /* one parameters name, or NULL */
        size_t next;
        results_fetch_cb cb;
        Op *op;
        bool dirty;              /* results were stored since the last save */
        ResultsSave *saving;     /* the save the end of the fetch waits for, or NULL */
};

/* Saves the runner (off the event loop, without waiting) if the fetch stored results in it,
 * and forgets a save the fetch waits for. For the cleanup of an Op that may go in the middle
 * of a fetch; NULL-runner safe (a fetch never started). A failed save leaves the runner
 * unsaved, for the retries (runner.h). Returns 0 or -ENOMEM. */
int results_fetch_flush(ResultsFetch *f);

/* Continues with the next job that needs its results. */
void results_fetch_next(ResultsFetch *f);

/* The credentials and storage URL of one result file: from POST /access/batch, or from
 * GET /access?url= when the server has no batch endpoint (API ≤ 1.0.8). Each request names one
 * file and an Op holds at most one at a time, so the per-file path never fans out. The
 * AccessReq lives in the Op that asks (its cleanup calls access_done()): an Op cancelled with
 * the request in flight gets no callback, and must still release it. */
typedef void (*access_cb)(Op *op, const char *s3url, const StorageCredentials *cred, const ApiError *err);

typedef struct AccessReq {
        Op *op;
        char *url;               /* the envelope asked for */
        access_cb cb;
        long batch_status;       /* the HTTP status that showed batch missing, 0 when not tried */
} AccessReq;

/* Releases what an access request holds (its Op's cleanup, or its end). */
void access_done(AccessReq *a);

/* Asks for access to one envelope URL: POST /access/batch, or GET /access when the server is
 * known to lack the batch endpoint. The Op's req holds the request, a (the Op's own) its
 * state. */
int access_start(Op *op, AccessReq *a, const char *url, access_cb cb);
