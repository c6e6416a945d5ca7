/* SPDX-License-Identifier: MIT */
/*
 * avatar-sim resource sets and jobs. Jobs move on a clock (--job-step-ms, or /_sim/tick):
 * queued → created → (waits for its depends_on) → pending, progress 0 → 0.25 → 0.5 → 0.75
 * → finished with progress 1.0 and results written to storage. Planned failures
 * (/_sim/job-failure) end a job in error, lost or orphaned instead; a job whose dependency
 * failed ends in parent_error.
 */
#pragma once

#include "sim-yaml.h"
#include "sim.h"

typedef enum JobStatus {
        JOB_NONE, /* "" (also: no planned failure) */
        JOB_QUEUED,
        JOB_CREATED,
        JOB_PENDING,
        JOB_FINISHED,
        JOB_ERROR,
        JOB_PARENT_ERROR,
        JOB_LOST,
        JOB_ORPHANED,
        _JOB_STATUS_MAX,
        _JOB_STATUS_INVALID = -EINVAL,
} JobStatus;

#define JOB_MAX_DEPENDS 64

struct ResourceSet {
        char name[UUID_STR_LEN];
        char *display_name;
        char *yaml; /* verbatim */
        size_t yaml_len;
        User *owner;
        int64_t created_at;
        ResourceModel model;
};

struct Job {
        char name[UUID_STR_LEN];
        ResourceSet *set;
        User *owner;
        char *parameters_name;
        const char *kind;
        JobStatus status;
        char *exception;
        bool has_progress;
        double progress;
        int64_t created_at;
        int64_t finished_at;
        int64_t deleted_at; /* 0: not deleted */
        uint64_t seq;       /* creation order, breaks created_at ties */
        Job **depends_on;   /* borrowed: jobs live until exit */
        size_t n_depends_on;
        JobStatus fail_status; /* planned end: JOB_ERROR, JOB_LOST, JOB_ORPHANED or JOB_NONE */
        char *fail_exception;
        json_object *results; /* {key: [file name, ...]} once finished */
        bool results_cleaned;
};

/* A planned failure for the next jobs of a parameters name. */
struct JobFailure {
        char *parameters_name;
        JobStatus status;
        char *exception;
        unsigned count;
        JobFailure *next;
};

/* "queued", "created", ... ("" for JOB_NONE). */
const char *job_status_to_string(JobStatus s);
/* The status of a name, or _JOB_STATUS_INVALID. */
JobStatus job_status_from_string(const char *s);
/* True for finished, error, parent_error, lost and orphaned. */
bool job_status_is_terminal(JobStatus s);
/* The JobKind of a parameters document kind ("AvatarParameters" → "standard"), or NULL. */
const char *job_kind_of_doc(const char *doc_kind);
/* True when s is a JobKind name. */
bool job_kind_is_valid(const char *s);

/*
 * Stores a new resource set. Returns 0 (*ret borrowed), -EINVAL with *ret_error (owned) for
 * invalid YAML, -E2BIG when full, -ENOMEM.
 */
int set_create(Sim *sim, User *owner, const char *display_name, const char *yaml, size_t len,
               ResourceSet **ret, char **ret_error);
/* Appends YAML documents to a set. Returns 0, -EINVAL with *ret_error, -ENOMEM. */
int set_append(Sim *sim, ResourceSet *set, const char *yaml, size_t len, char **ret_error);
/* The set of owner called name, or NULL. */
ResourceSet *set_find(Sim *sim, User *owner, const char *name);

/*
 * Creates a job. Returns 0 (*ret borrowed); -EINVAL: unknown parameters name (*ret_error);
 * -ESRCH: unknown dependency (*ret_error); -E2BIG: too many jobs; -ENOMEM.
 */
int job_create(Sim *sim, User *owner, ResourceSet *set, const char *parameters_name,
               const char *const *depends_on, size_t n_depends_on, Job **ret,
               char **ret_error);
/* The job of owner called name, or NULL. */
Job *job_find(Sim *sim, User *owner, const char *name);
/* The JobResponse JSON; NULL on OOM. */
json_object *job_to_json(const Job *j);
/* The same as a server of generation g writes it (old: timestamps with a space). */
json_object *job_to_json_gen(const Job *j, SimGeneration g);
/* Plans the end of one existing job. Returns 0 or -EBUSY when it already ended. */
int job_plan_failure(Job *j, JobStatus status, const char *exception);

/* Plans failures for the next count jobs of parameters_name. Returns 0 or -errno. */
int job_failure_add(Sim *sim, const char *parameters_name, JobStatus status,
                    const char *exception, unsigned count);
/* Forgets every planned failure. */
void job_failures_clear(Sim *sim);

/* Advances every job by one step. */
void jobs_tick(Sim *sim);
/* (Re)arms the job clock with a step in ms; 0 stops it. Returns 0 or -errno. */
int jobs_clock_set(Sim *sim, unsigned step_ms);
/* Frees every set, job and planned failure, and the clock. */
void jobs_done(Sim *sim);
