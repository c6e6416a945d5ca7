/* SPDX-License-Identifier: MIT */
/*
 * Runners: daemon-held equivalents of the Python Runner. A runner has an id, an owner (the
 * uid that created it), a display name, its resource documents (runner-config.h), the tables
 * it uploaded, and the jobs of its current set. It is persisted as
 * STATE_DIRECTORY/runners/<id>.json after every change, so a restarted daemon finds its
 * runners, follows their unfinished jobs again and can serve their results.
 *
 * Job tracking: while a runner has unfinished jobs it watches its set with the Poller; every
 * poll updates the jobs, saves the runner and tells its waiters (runner.wait calls) what
 * changed.
 *
 * Glossary:
 *   parameters name  the job's role in the set ("standard", "signal_metrics",
 *                    "privacy_metrics", "report", "report_pia", "advice_parameters"); a
 *                    runner has at most one job per parameters name.
 *   busy             an operation that edits the runner or its upstream set is in progress
 *                    (upload, run, advice); others get invalid_state until it ends.
 */
#pragma once

#include <event2/event.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "api.h"

typedef struct Poller Poller;
typedef struct PollerWatch PollerWatch;
typedef struct SetOwners SetOwners;
typedef struct Runner Runner;
typedef struct RunnerWaiter RunnerWaiter;
typedef struct Runners Runners;
typedef struct StateWriter StateWriter;

#define RUNNER_ID_LEN 36

typedef struct RunnerJob {
        char *parameters_name;
        char *kind;
        char *name;              /* server job name */
        char *location;
        json_object *job;        /* last JobResponse seen, or NULL */
        json_object *results;    /* GET /results answer once fetched (finished jobs), or NULL */
        bool results_missing;    /* the server cleaned them up */
} RunnerJob;

/* Called when jobs of the runner changed (changed: array of parameters names), when a job
 * failed (failed: its RunnerJob), or when every awaited job is done. */
typedef void (*runner_waiter_cb)(Runner *r, json_object *changed, const RunnerJob *failed, bool all_done,
                                 void *userdata);

struct RunnerWaiter {
        Runner *runner;
        json_object *jobs;       /* parameters names awaited (array), NULL = all */
        runner_waiter_cb cb;
        void *userdata;
        TAILQ_ENTRY(RunnerWaiter) link;
};

TAILQ_HEAD(RunnerWaiterList, RunnerWaiter);

struct Runner {
        Runners *runners;
        char id[RUNNER_ID_LEN + 1];
        uid_t owner;
        char *display_name;
        char *set_name;          /* upstream set of the current run, NULL before */
        char *previous_set_name;
        json_object *docs;       /* resource documents */
        json_object *options;    /* create_runner options */
        json_object *tables;     /* {table: {file, avatar_file, bytes, storage_url, ...}} */
        json_object *warnings;   /* array of strings */
        RunnerJob *jobs;
        size_t n_jobs;
        uint64_t created_at;     /* unix seconds */
        uint64_t updated_at;
        bool unsaved;            /* the last save failed: the file is behind (saving, below) */
        uint64_t save_gen;       /* saves asked for (the number of the latest) */
        uint64_t save_gen_done;  /* the latest of them whose outcome is known */
        bool file_replaced;      /* the last failed save replaced the file all the same */
        int save_error;          /* that save's -errno */
        const char *busy;        /* static name of the operation in progress, or NULL */
        PollerWatch *watch;
        json_object *last_error; /* the last poll error, or NULL */
        json_object *run;        /* the write-ahead record of a runner.run not finished, or NULL (below) */
        json_object *past_sets;  /* the sets of earlier runs, oldest first (below) */
        json_object *uploads;    /* the write-ahead records of its multipart uploads, or NULL
                                  * (runner-uploads.h) */
        bool reconcile;          /* the set's jobs are adopted from its next poll (below) */
        struct RunnerWaiterList waiters;
        unsigned n_ref;
        bool closed;
        TAILQ_ENTRY(Runner) link;
};

TAILQ_HEAD(RunnerList, Runner);

struct Runners {
        Poller *poller;          /* follows the jobs of the runners */
        SetOwners *sets;         /* who owns each set (sets.h), kept beside the runners */
        char *dir;               /* STATE_DIRECTORY/runners */
        struct RunnerList list;
        size_t n;
        json_object *damaged;    /* names of state files moved aside */
        uint64_t saves, save_errors;
        size_t n_unsaved;        /* runners whose last save failed */
        struct event_base *base; /* for the save retry timer; NULL: retried on the next save only */
        struct event *save_retry;
        StateWriter *writer;     /* writes the runner files off the event loop (state.h) */
        unsigned save_retry_ms;  /* the retry timer's next delay (backoff) */
        int last_save_error;     /* the -errno of the last failed save, 0 after a success */
        char *access_batch_missing; /* the API URL of a server without POST /access/batch, or NULL */
        struct RunnerUploads *uploads; /* the aborts of upload records in flight (runner-uploads.h) */
        void (*uploads_free)(struct RunnerUploads *u); /* ends them, at the registry's end first */
};

/* Creates the registry and loads the runners saved in state_directory/runners, resuming the
 * tracking of their unfinished jobs with `poller` (borrowed; must outlive the registry), and
 * the owners of the sets (state_directory/sets). The sets the loaded runners name that have
 * no owner yet (state from before the daemon kept them) are given to their runners' owners.
 * Returns 0 or -errno (a directory cannot be created). */
int runners_new(Poller *poller, const char *state_directory, Runners **ret);
Runners *runners_free(Runners *rs);

/* Creates a runner owned by uid with docs and options (both taken) and saves it (waiting for
 * the write, runner_save()); a runner that cannot be saved is not created (the save's -errno). */
int runner_new(Runners *rs, uid_t owner, const char *display_name, json_object *docs, json_object *options,
               Runner **ret);

/* The same without saving: the runner is in the registry, for a caller that saves it off the
 * event loop (runner_save_async()) and runner_close()s it when that fails. */
int runner_new_unsaved(Runners *rs, uid_t owner, const char *display_name, json_object *docs, json_object *options,
                       Runner **ret);

/* Finds a runner by id (NULL when unknown). */
Runner *runner_find(Runners *rs, const char *id);

/* Counts the runners of uid. */
size_t runners_count_owned(const Runners *rs, uid_t uid);

/* Records set_name as belonging to the runner's owner (sets.h; `how`: "created", "adopted").
 * Returns 0, -EEXIST when the set is another uid's, or another -errno (logged; the record
 * still holds in memory). */
int runner_record_set(Runner *r, const char *set_name, const char *how);

Runner *runner_ref(Runner *r);
Runner *runner_unref(Runner *r);

/* ---- saving ----------------------------------------------------------------------------------
 * Saved or refused: a call that changes a runner succeeds only once the change is on disk.
 * runner_save() writes STATE_DIRECTORY/runners/<id>.json durably (state_write_json(): write,
 * fsync, rename, fsync of the directory) and returns 0, or the -errno of the failure (logged).
 * A failed save leaves the runner `unsaved` (its file is behind its memory); the registry then
 * saves it again by itself: after RUNNER_SAVE_RETRY_MIN_MS, doubling up to
 * RUNNER_SAVE_RETRY_MAX_MS while the saves keep failing, and at once after any runner's
 * successful save. daemon.status shows the unsaved runners (runners_stats_json()).
 *
 * A caller refuses the call whose save failed, with the class state_not_saved
 * (runner_save_error_json()); before that it either
 *   - undoes the change: runner_snapshot() before changing the runner, then
 *     runner_snapshot_restore() after the failed save (runner_snapshot_done() in any case).
 *     The runner is saved again only if it was unsaved already, or if the failed save had
 *     replaced its file (the directory's fsync failed after the rename): data.kept false;
 *   - or, for a change that cannot be undone (jobs created upstream), keeps it in memory
 *     and lets the retries write it: data.kept true.
 * A call that only reads never fails because of an unsaved runner. */

#define RUNNER_SAVE_RETRY_MIN_MS 500u
#define RUNNER_SAVE_RETRY_MAX_MS 10000u

/* Saves the runner now: the event loop waits for the write (made by the writer thread, after
 * the saves queued before it). For the few saves that must be on disk before the caller goes
 * on (runner.run's write-ahead). Returns 0 or -errno (logged; the runner is then unsaved). */
int runner_save(Runner *r);

/* error: 0 once the save is on disk, else its -errno (-ECANCELED: the runner was closed).
 * The save is number r->save_gen as runner_save_async() returns: a later save was asked for
 * when r->save_gen is larger by the time cb runs (a change whose save failed can be undone only
 * while none was: a later save may have written it). */
typedef void (*runner_saved_cb)(Runner *r, int error, void *userdata);

/* Saves the runner off the event loop: the file's text is made now, the writer thread writes
 * it, and cb (may be NULL) runs on the event loop with the outcome (which also updates
 * `unsaved` as runner_save() does). Without a writer (no event base) the save is made here and
 * cb runs before this returns. Returns 0 (cb will run), or -ENOMEM (cb will not). */
int runner_save_async(Runner *r, runner_saved_cb cb, void *userdata);

/* Gives the registry the event loop its save retry timer runs on (the server, once). Without
 * one an unsaved runner is saved again only with the next successful save. Returns 0 or
 * -ENOMEM. */
int runners_set_event_base(Runners *rs, struct event_base *base);

/* Saves every unsaved runner now (the retry timer, and the registry's end). Returns how many
 * are still unsaved. */
size_t runners_save_pending(Runners *rs);

/* What a change may need to be undone. */
typedef struct RunnerSnapshot {
        json_object *docs, *options, *tables, *warnings;
        uint64_t updated_at;
        bool unsaved;
} RunnerSnapshot;

/* Copies what the runner's methods change (docs, options, tables, warnings). Returns 0 or
 * -ENOMEM (nothing to release then). */
int runner_snapshot(const Runner *r, RunnerSnapshot *s);

/* Puts the snapshot back into the runner (taking its content) after a failed save, and
 * tells the registry the runner is saved again unless it was unsaved before or the failed
 * save replaced its file. An empty snapshot ({}) changes nothing. */
void runner_snapshot_restore(Runner *r, RunnerSnapshot *s);

/* Releases a snapshot (restored or not). */
void runner_snapshot_done(RunnerSnapshot *s);

/* For a caller that undid the change of a failed save its own way (as
 * runner_snapshot_restore() does): the runner is no longer unsaved unless it was before the
 * change (`was_unsaved`, r->unsaved then) or the failed save replaced its file. */
void runner_save_undone(Runner *r, bool was_unsaved);

/* The message and error.data of a state_not_saved error for a failed save of r (`error`, a
 * -errno; `kept`: whether the change stays in memory, unsaved, to be written by the
 * retries): data {runner_id, state_directory, errno, kept, retryable}. Returns 0 or -ENOMEM;
 * *ret_message malloc'd, *ret_data a new reference. */
int runner_save_error_json(const Runner *r, int error, bool kept, char **ret_message, json_object **ret_data);

/* Forgets the runner: removes its file, ends its waiters (all_done false, failed NULL),
 * stops tracking. The struct lives on while referenced. */
void runner_close(Runner *r);

/* Rebuilds the jobs of the runner from `jobs`, an array of {parameters_name, kind, name,
 * location} (borrowed), without saving the runner or tracking them: for a caller that fills
 * in more before runner_save() and runner_track(). Returns 0 or -ENOMEM. */
int runner_replace_jobs(Runner *r, json_object *jobs);

/* Replaces the jobs of the runner (after a run) as runner_replace_jobs() does, saves the
 * runner and starts tracking them. Returns 0, -ENOMEM, or the failed save's -errno (the jobs
 * are then known in memory, the runner unsaved). */
int runner_set_jobs(Runner *r, json_object *jobs);

/* Adds one job (advice) without dropping the others; saves and tracks as runner_set_jobs(). */
int runner_add_job(Runner *r, const char *parameters_name, const char *name, const char *location);

/* The job of a parameters name, or NULL. */
RunnerJob *runner_job(Runner *r, const char *parameters_name);

/* Whether every job (of `which`, an array of parameters names, NULL = all) is done; sets
 * *ret_failed to a failed job when one is. */
bool runner_jobs_done(Runner *r, json_object *which, const RunnerJob **ret_failed);

/* Starts (or stops, when all are done) the tracking of the runner's jobs. */
int runner_track(Runner *r);

/* Adds a waiter; the callback runs after each poll that concerns it. */
int runner_waiter_add(Runner *r, json_object *jobs, runner_waiter_cb cb, void *userdata, RunnerWaiter **ret);
void runner_waiter_remove(RunnerWaiter *w);

/* Whether a job status is a failure (error, parent_error, lost, orphaned). */
bool job_status_failed(const char *status);

/* Whether a job (a JobResponse, or NULL) is done: "done" is true, its status can no longer
 * change. A failed job is done too. */
bool job_done(json_object *job);

/* Whether a job (a JobResponse, or NULL) failed: its status is a failure. */
bool job_failed(json_object *job);

/* The jobs of the runner as the API shows them (runner_job_json() each). New reference. */
json_object *runner_jobs_json(const Runner *r);

/* The runner as the API shows it (runner.get_status, runner.list). New reference. */
json_object *runner_status_json(Runner *r, bool with_docs);

/* A job as the API shows it: {parameters_name, kind, name, status, progress, done, exception,
 * created_at}. New reference. */
json_object *runner_job_json(const RunnerJob *j);

/* Appends a warning (also logged at notice). */
void runner_warn(Runner *r, const char *text);

/* {"runners": n, "damaged": [...], "saves": n, "save_errors": n, "unsaved": [ids],
 * "last_save_error": "ENOSPC" or null, "sets": {...}}. New reference. */
json_object *runners_stats_json(const Runners *rs);
/* Its text, byte for byte, appended to t (daemon.status); m (may be NULL) keeps its first
 * part while those figures are the same. */
void runners_stats_text(const Runners *rs, JsonText *t, JsonTextMemo *m);

/* ---- the write-ahead of runs ----------------------------------------------------------------
 * runner.run records what it is about to do upstream before it does it, in the runner's
 * state (`run`, saved): the jobs it plans ({"jobs": [parameters names]}), then the set as
 * soon as PUT /resources names it ("set_name"), then before each POST /jobs the job being
 * created ("creating"), and each created job as soon as its name is known. The record goes
 * when the run has created every job it planned. A daemon killed in the middle finds the
 * record at start: the runner is "interrupted", its set is asked for its jobs
 * (GET /jobs?set_name=, the poller's poll) and the jobs found are adopted; runner.run on it
 * finishes the run in the same set, creating only the jobs still missing.
 *
 * A new run never drops the jobs of the run before: the earlier set and its jobs move to
 * `past_sets` ([{set_name, jobs: [{parameters_name, name}]}], at most RUNNER_PAST_SETS_MAX,
 * oldest first).
 *
 * The functions that save return 0, or the -errno of a failed save (the in-memory state then
 * holds the change; a caller about to act upstream refuses to). */

#define RUNNER_PAST_SETS_MAX 64

/* Starts (or, for an interrupted run, continues) the record of a run that plans `jobs` (an
 * array of parameters names, borrowed; merged with an interrupted run's plan) and saves it.
 * On a failed save the record is as it was before. */
int runner_run_begin(Runner *r, json_object *jobs);

/* The parameters names an interrupted run planned (borrowed), or NULL. */
json_object *runner_run_planned(const Runner *r);

/* The set of the run recorded, or NULL before PUT /resources named one. */
const char *runner_run_set(const Runner *r);

/* Records the new set of the run: the set and jobs the runner had go to past_sets (and
 * previous_set_name when `replaced`), and the set becomes the runner's, with no job yet.
 * Saves. */
int runner_run_set_created(Runner *r, const char *set_name, bool replaced);

/* Records the job about to be created (before its POST /jobs) and saves. On a failed save the
 * record is as it was before. */
int runner_run_creating(Runner *r, const char *parameters_name);

/* Records a created job in the runner (replacing a job of the same parameters name) and
 * saves it; it is followed once the run ends or stops. Returns 0, -ENOMEM, or the failed
 * save's -errno (the job is then known in memory). */
int runner_run_created(Runner *r, const char *parameters_name, const char *name, const char *location);

/* The run created every job it planned: the record goes. Saves and tracks. */
int runner_run_end(Runner *r);

/* Drops the record of a run that left nothing upstream but an empty set (its first POST /jobs
 * failed and the set holds no job). Saves. */
int runner_run_abandon(Runner *r);

/* Adopts the jobs of `jobs` (a JobResponse array of the runner's set, borrowed) that the
 * runner does not know, by their parameters name: one job per parameters name, the runner's
 * own kept. Appends the parameters names adopted to `adopted` (may be NULL). Returns how many
 * were adopted (not saved), or -ENOMEM. */
int runner_adopt_jobs(Runner *r, json_object *jobs, json_object *adopted);

/* Asks for the runner's set to be reconciled: its next poll (now) adopts the jobs it holds. */
void runner_reconcile(Runner *r);

