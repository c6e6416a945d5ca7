/* SPDX-License-Identifier: MIT */
/*
 * Pure helpers of the Manager methods, exposed for unit tests.
 */
#pragma once

#include <json-c/json.h>

/* Parses an ISO-8601 timestamp ("2026-05-01T09:12:03.120000+00:00", "...Z") into seconds
 * since the epoch. Returns 0 or -EINVAL. */
int manager_parse_time(const char *s, double *ret);

/* Groups the jobs (a JobResponse array, borrowed) whose display_name equals `name` exactly,
 * advice jobs excluded, by set_name; groups sorted by their newest created_at, newest first.
 * Returns a new array of {"set_name", "created_at", "jobs": [...]}, or NULL on OOM. */
json_object *manager_find_runs(json_object *jobs, const char *name);
