/* SPDX-License-Identifier: MIT */
/*
 * avatar-sim results: the deterministic files a finished job leaves in its owner's bucket
 * under results/<set>/<job>/, and the listing GET /results/{job} returns as /access
 * envelopes. File names follow the contract: "<table>.shuffled-0.csv", "report.pdf", ...
 * with table names escaped (. → _dot_, / → _slash_, & → _ampersand_, + → _plus_).
 */
#pragma once

#include "sim-jobs.h"

/*
 * Writes the result files of a job that just finished and sets j->results. Returns 0, or a
 * negative errno with *ret_exception (owned) saying why the job fails.
 */
int results_generate(Sim *sim, Job *j, char **ret_exception);
/* Deletes the result files of a job; its results are reported as gone from now on. */
int results_cleanup(Sim *sim, Job *j);
/* The {key: [envelope URL, ...]} map of a finished job; NULL on OOM. */
json_object *results_urls(Sim *sim, const Job *j);
/* The /access envelope of an object: "<base>/api/access?url=s3://<bucket>/<key>". Owned. */
char *results_envelope(Sim *sim, const char *bucket, const char *key);
/* The escaped form of a table name used inside file names. Owned, NULL on OOM. */
char *results_escape_table(const char *table);
