/* SPDX-License-Identifier: MIT */
/*
 * The pure helpers of the Manager methods (manager.h): timestamps, job lists and their
 * pages, runs by display name. No I/O, no state: the unit tests and the fuzz harnesses call
 * them as the methods do.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "json-util.h"
#include "jsonc-helpers.h"
#include "macro.h"
#include "manager.h"

/* The value of the two decimal digits at s, or -1 (the NUL terminator stops the check). */
static int two_digits(const char *s) {
        if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
                return -1;
        return (s[0] - '0') * 10 + (s[1] - '0');
}

/* Parses an ISO-8601 timestamp with optional fraction and offset into seconds since the
 * epoch. Returns 0 or -EINVAL. */
int manager_parse_time(const char *s, double *ret) {
        struct tm tm = {};
        const char *p;
        double frac = 0;
        long off = 0;

        if (!s)
                return -EINVAL;
        /* ISO-8601 takes 'T' between date and time, RFC 3339 also a space, which some
         * servers send (and Python's str(datetime) writes) */
        p = strptime(s, "%Y-%m-%d", &tm);
        if (!p || (*p != 'T' && *p != 't' && *p != ' '))
                return -EINVAL;
        p = strptime(p + 1, "%H:%M:%S", &tm);
        if (!p)
                return -EINVAL;
        if (*p == '.') {
                double scale = 0.1;

                for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
                        frac += (*p - '0') * scale;
        }
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                int sign = *p == '-' ? -1 : 1, hh, mm;

                /* exactly HH:MM or HHMM: sscanf's %2d also takes one digit ("+5:3"), and the
                 * fixed skip past it then ran beyond the end of the string */
                hh = two_digits(++p);
                if (hh < 0)
                        return -EINVAL;
                p += 2;
                if (*p == ':')
                        p++;
                mm = two_digits(p);
                if (mm < 0)
                        return -EINVAL;
                p += 2;
                off = sign * (hh * 3600L + mm * 60L);
        }
        if (*p != '\0')
                return -EINVAL;
        *ret = (double) timegm(&tm) - (double) off + frac;
        return 0;
}

/* A job's creation time in seconds, or 0 when absent or unparsable. */
static double job_time(json_object *job) {
        json_object *v;
        double t = 0;

        if (json_object_object_get_ex(job, "created_at", &v))
                (void) manager_parse_time(json_object_get_string(v), &t);
        return t;
}

/* The "jobs" array of a JobResponseList. */
json_object *manager_jobs_array(json_object *list) {
        json_object *jobs;

        if (!json_object_object_get_ex(list, "jobs", &jobs) || !json_object_is_type(jobs, json_type_array))
                return NULL;
        return jobs;
}

/* A job (or a run) with its creation time, parsed once for sorting. */
typedef struct TimedJob {
        double t;
        size_t index;            /* position before the sort: equal times keep their order */
        json_object *job;
} TimedJob;

/* Orders timed jobs newest first, equal times in their original order. */
static int cmp_newest_first(const void *a, const void *b) {
        const TimedJob *x = a, *y = b;

        if (x->t < y->t)
                return 1;
        if (x->t > y->t)
                return -1;
        return x->index < y->index ? -1 : x->index > y->index;
}

/* Sorts v[0..n) (jobs or runs, by their created_at) newest first, in place; the times are
 * parsed once, not in every comparison. Returns 0 or -ENOMEM. */
static int sort_newest_first(json_object **v, size_t n) {
        _cleanup_free_ TimedJob *t = calloc(n ? n : 1, sizeof(TimedJob));

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                t[i] = (TimedJob){ .t = job_time(v[i]), .index = i, .job = v[i] };
        qsort(t, n, sizeof(TimedJob), cmp_newest_first);
        for (size_t i = 0; i < n; i++)
                v[i] = t[i].job;
        return 0;
}

/* The jobs of a list sorted newest first. */
json_object *manager_sorted_jobs(json_object *jobs) {
        size_t n = json_array_len(jobs);
        json_object **v = calloc(n ? n : 1, sizeof(json_object *)), *a;

        if (!v)
                return NULL;
        for (size_t i = 0; i < n; i++)
                v[i] = json_object_array_get_idx(jobs, i);
        if (sort_newest_first(v, n) < 0) {
                free(v);
                return NULL;
        }
        a = json_object_new_array_ext((int) n);
        for (size_t i = 0; a && i < n; i++)
                json_object_array_add(a, json_object_get(v[i]));
        free(v);
        return a;
}

/* An int member, or -1. */
static int64_t json_int_member(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return -1;
        return json_object_get_int64(v);
}

/* The next page's path. */
int manager_next_page(json_object *page, const char *path, const char *api_url, char **ret) {
        json_object *v;
        int64_t n, pages;
        char *p = NULL;

        *ret = NULL;
        if (json_object_object_get_ex(page, "next", &v) && json_object_is_type(v, json_type_string)) {
                const char *next = json_object_get_string(v), *rest;

                if (isempty(next))
                        return 0;
                if (startswith(next, "http://") || startswith(next, "https://")) {
                        /* only under the API root: another origin would get the credential */
                        rest = api_url ? startswith(next, api_url) : NULL;
                        if (!rest || (*rest != '/' && *rest != '?'))
                                return -EBADMSG;
                        next = rest;
                }
                for (const char *c = next; *c; c++)
                        if ((unsigned char) *c <= 0x20 || (unsigned char) *c >= 0x7f)
                                return -EBADMSG;
                if (asprintf(&p, "%s%s", next[0] == '/' ? "" : next[0] == '?' ? "/jobs" : "/", next) < 0)
                        return -ENOMEM;
                *ret = p;
                return 1;
        }
        n = json_int_member(page, "page");
        pages = json_int_member(page, "pages");
        if (pages < 0)
                pages = json_int_member(page, "total_pages");
        if (n < 0 || pages < 0 || n >= pages)
                return 0;
        if (asprintf(&p, "%s%spage=%" PRIi64, path, strchr(path, '?') ? "&" : "?", n + 1) < 0)
                return -ENOMEM;
        *ret = p;
        return 1;
}

/* Keeps the jobs matching the filters. */
json_object *manager_filter_jobs(json_object *jobs, const char *set_name, const char *display_name,
                                 json_object *kinds, int64_t limit) {
        json_object *out = json_object_new_array(), *sorted;

        if (!out)
                return NULL;
        for (size_t i = 0; i < json_array_len(jobs); i++) {
                json_object *job = json_object_array_get_idx(jobs, i);
                const char *set = json_str(job, "set_name"), *dn = json_str(job, "display_name"),
                           *kind = json_str(job, "kind");

                if (set_name && (!set || strcasecmp(set, set_name) != 0))
                        continue;
                if (display_name && !streq_ptr(dn, display_name))
                        continue;
                if (json_array_len(kinds) > 0 && (!kind || !json_array_has_str(kinds, kind)))
                        continue;
                json_object_array_add(out, json_object_get(job));
        }
        if (limit < 0 || json_array_len(out) <= (size_t) limit)
                return out;
        /* the server did not apply the limit: keep the newest, as the contract orders them */
        sorted = manager_sorted_jobs(out);
        json_object_put(out);
        if (!sorted)
                return NULL;
        out = json_object_new_array();
        for (size_t i = 0; out && i < (size_t) limit; i++)
                json_object_array_add(out, json_object_get(json_object_array_get_idx(sorted, i)));
        json_object_put(sorted);
        return out;
}

/* Groups the jobs named `name` (advice excluded) by set_name, groups sorted by their newest
 * created_at, newest first: [{"set_name", "created_at", "jobs": [...]}]. New reference. */
json_object *manager_find_runs(json_object *jobs, const char *name) {
        json_object *groups = json_object_new_object(), *runs = json_object_new_array(), **v;
        size_t n_groups = 0, n = json_array_len(jobs), k = 0;

        if (!groups || !runs) {
                json_object_put(groups);
                json_object_put(runs);
                return NULL;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *job = json_object_array_get_idx(jobs, i), *g, *list;
                const char *dn = json_str(job, "display_name"), *kind = json_str(job, "kind"),
                           *set = json_str(job, "set_name");

                if (!dn || !set || !streq(dn, name) || streq_ptr(kind, "advice"))
                        continue;
                if (!json_object_object_get_ex(groups, set, &g)) {
                        g = json_object_new_object();
                        json_object_object_add(g, "set_name", json_object_new_string(set));
                        json_object_object_add(g, "jobs", json_object_new_array());
                        json_object_object_add(groups, set, g);
                        n_groups++;
                }
                list = json_object_object_get(g, "jobs");
                json_object_array_add(list, json_copy(job));
        }
        v = calloc(n_groups ? n_groups : 1, sizeof(json_object *));
        if (!v) {
                json_object_put(groups);
                json_object_put(runs);
                return NULL;
        }
        json_object_object_foreach(groups, key, g) {
                json_object *list = json_object_object_get(g, "jobs"), *newest = NULL;
                double best = -1;

                (void) key;
                for (size_t i = 0; i < json_array_len(list); i++) {
                        json_object *job = json_object_array_get_idx(list, i);
                        double t = job_time(job);

                        if (t > best) {
                                best = t;
                                newest = job;
                        }
                }
                json_object_object_add(g, "created_at", json_object_get(json_object_object_get(newest, "created_at")));
                v[k++] = g;
        }
        /* sorted by created_at, which each group now carries */
        if (sort_newest_first(v, k) < 0) {
                free(v);
                json_object_put(groups);
                json_object_put(runs);
                return NULL;
        }
        for (size_t i = 0; i < k; i++)
                json_object_array_add(runs, json_object_get(v[i]));
        free(v);
        json_object_put(groups);
        return runs;
}
