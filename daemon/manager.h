/* SPDX-License-Identifier: MIT */
/*
 * The Manager methods' helpers: the pure ones of job lists (manager.c), exposed for the unit
 * tests, and who may act on a set (methods-manager.c), which the runner methods share.
 */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "call.h"
#include "sets.h"

/* Parses an ISO-8601 timestamp ("2026-05-01T09:12:03.120000+00:00", "...Z", or with a space
 * instead of the 'T') into seconds since the epoch. Returns 0 or -EINVAL. */
int manager_parse_time(const char *s, double *ret);

/* The "jobs" array of a JobResponseList (borrowed), or NULL when the answer has another shape. */
json_object *manager_jobs_array(json_object *list);

/* The jobs of an array (borrowed) sorted by created_at, newest first, equal times in their
 * order. Returns a new array (of the same job objects), or NULL on OOM. */
json_object *manager_sorted_jobs(json_object *jobs);

/* Groups the jobs (a JobResponse array, borrowed) whose display_name equals `name` exactly,
 * advice jobs excluded, by set_name; groups sorted by their newest created_at, newest first.
 * Returns a new array of {"set_name", "created_at", "jobs": [...]}, or NULL on OOM. */
json_object *manager_find_runs(json_object *jobs, const char *name);

/* The path of the page after `page` (a JobResponseList, borrowed) of a paged GET `path`:
 * its "next" member (a path or a URL under api_url), else page+1 when it says "page" and
 * "pages" (or "total_pages") and more remain. Returns 1 with *ret (malloc'd), 0 when it is
 * the last page, -EBADMSG when "next" points elsewhere, -ENOMEM. */
int manager_next_page(json_object *page, const char *path, const char *api_url, char **ret);

/* Keeps the jobs of `jobs` (borrowed) that match every filter given (NULL/absent: no
 * filter): set_name (case-insensitive: a UUID), display_name, kind (an array of kinds);
 * newest first and cut to `limit` when the server returned more (limit < 0: none).
 * Returns a new array, or NULL on OOM. */
json_object *manager_filter_jobs(json_object *jobs, const char *set_name, const char *display_name,
                                 json_object *kinds, int64_t limit);

/* ---- who may act on a set (methods-manager.c) ----
 * The threat model (README.md "Security notes", daemon/SECURITY.md): loading a set into a
 * runner and deleting its jobs are for the uid that owns it (sets.h) and admins; a set nobody
 * owns is open to operate. */

/* What the caller may do with set_name. */
SetAccess set_access(const Call *c, const char *set_name);

/* Finishes the call with permission_denied for another user's set, `what` the act refused
 * ("load it into a runner", "delete its jobs"); the message tells the rule, not the owner.
 * Returns 0. */
int set_refused_reply(Call *c, const char *set_name, const char *what);

/* ---- manager.get_health's result (methods-manager.c) ---- */

/* The result for a health answer of age_s seconds: a raw value (json_raw_new()) written from
 * the answer's text, made once per answer, or the object when the answer cannot be written so;
 * NULL on OOM. health_result_object() is the object always: the two serialize the same. */
json_object *health_result(json_object *value, double age_s, bool stale);
json_object *health_result_object(json_object *value, double age_s, bool stale);
