/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for what the daemon does with the body of an upstream answer: the strict
 * parse (json_parse_strict at the depth the API client uses), then the consumers of the
 * parsed value —
 *   - api_extract_message() on the body, as for an HTTP error answer (also on the raw text, as
 *     for a body that is not JSON): always a message, one line of valid UTF-8 and bounded;
 *   - manager_find_runs() on the jobs of a JobResponseList (or a bare array), for a fixed
 *     name and for a display name taken from the input: groups of that name, newest first;
 *   - manager_parse_time() on every string of the value;
 *   - runner_config_validate() on a copy when the value is an array (documents).
 * The replies built from these go on the wire, so each result must serialize and parse back.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jsonrpc.h"
#include "manager.h"
#include "runner-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The API client's depth limit (daemon/api.c). */
#define UPSTREAM_DEPTH 64
/* api_extract_message() cuts messages to this many bytes, then adds "…". */
#define MESSAGE_MAX 2000
/* … which a longer message ends with */
#define ELLIPSIS_LEN 3

/* Whether s holds well-formed UTF-8 (RFC 3629). */
static bool utf8_valid(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;

        for (size_t i = 0; i < n;) {
                unsigned char c = p[i];
                unsigned char lo = 0x80, hi = 0xbf;
                size_t len;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        len = 2;
                else if (c >= 0xe0 && c <= 0xef) {
                        len = 3;
                        if (c == 0xe0)
                                lo = 0xa0;
                        else if (c == 0xed)
                                hi = 0x9f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        len = 4;
                        if (c == 0xf0)
                                lo = 0x90;
                        else if (c == 0xf4)
                                hi = 0x8f;
                } else
                        return false;
                if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
                        return false;
                for (size_t k = 2; k < len; k++)
                        if (p[i + k] < 0x80 || p[i + k] > 0xbf)
                                return false;
                i += len;
        }
        return true;
}

/* A message for a JSON-RPC error: present, bounded, one line, valid UTF-8, and it travels. */
static void check_message(char *m) {
        json_object *o, *back = NULL;
        char *text = NULL;
        size_t len = 0, n;
        int r;

        assert(m);
        n = strlen(m);
        assert(n <= MESSAGE_MAX + ELLIPSIS_LEN);
        for (size_t i = 0; i < n; i++)
                assert((unsigned char) m[i] >= 0x20);
        assert(utf8_valid(m, n));

        o = json_object_new_string(m);
        r = jsonrpc_serialize(o, &text, &len);
        assert(r == 0);
        r = json_parse_strict(text, len - 1, 4, &back);
        assert(r == 0);
        assert(strcmp(json_object_get_string(back), m) == 0);
        json_object_put(back);
        json_object_put(o);
        free(text);
        free(m);
}

/* Calls manager_parse_time() on every string of a value. */
static void walk_times(json_object *o, unsigned depth) {
        assert(depth <= UPSTREAM_DEPTH);
        switch (json_object_get_type(o)) {
        case json_type_string: {
                double t = NAN;

                if (manager_parse_time(json_object_get_string(o), &t) == 0)
                        assert(!isnan(t));
                break;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        walk_times(json_object_array_get_idx(o, i), depth + 1);
                break;
        case json_type_object: {
                json_object_object_foreach(o, k, v) {
                        double t;

                        (void) manager_parse_time(k, &t);
                        walk_times(v, depth + 1);
                }
                break;
        }
        default:
                break;
        }
}

/* A job's created_at in seconds, 0 when absent or unparsable (as the daemon orders them). */
static double created_at(json_object *o) {
        json_object *v;
        double t = 0;

        if (json_object_object_get_ex(o, "created_at", &v) && json_object_is_type(v, json_type_string))
                (void) manager_parse_time(json_object_get_string(v), &t);
        return t;
}

/* The first "display_name" string in the value, depth first, or NULL. */
static const char *find_display_name(json_object *o, unsigned depth) {
        json_object *v;
        const char *s;

        if (depth > UPSTREAM_DEPTH)
                return NULL;
        if (json_object_is_type(o, json_type_object)) {
                if (json_object_object_get_ex(o, "display_name", &v) && json_object_is_type(v, json_type_string))
                        return json_object_get_string(v);
                json_object_object_foreach(o, k, w) {
                        (void) k;
                        s = find_display_name(w, depth + 1);
                        if (s)
                                return s;
                }
        } else if (json_object_is_type(o, json_type_array))
                for (size_t i = 0; i < json_object_array_length(o); i++) {
                        s = find_display_name(json_object_array_get_idx(o, i), depth + 1);
                        if (s)
                                return s;
                }
        return NULL;
}

/* manager_find_runs() for one name: groups of jobs of that name, each non-empty, newest
 * first; the result travels on the wire. */
static void check_find_runs(json_object *jobs, const char *name) {
        json_object *runs, *back = NULL;
        char *text = NULL;
        size_t len = 0;
        double prev = INFINITY;
        int r;

        runs = manager_find_runs(jobs, name);
        assert(json_object_is_type(runs, json_type_array));
        for (size_t i = 0; i < json_object_array_length(runs); i++) {
                json_object *g = json_object_array_get_idx(runs, i), *set, *list;

                assert(json_object_object_get_ex(g, "set_name", &set) && json_object_is_type(set, json_type_string));
                assert(json_object_object_get_ex(g, "jobs", &list) && json_object_is_type(list, json_type_array));
                assert(json_object_array_length(list) > 0);
                for (size_t j = 0; j < json_object_array_length(list); j++) {
                        json_object *job = json_object_array_get_idx(list, j), *dn;

                        assert(json_object_object_get_ex(job, "display_name", &dn));
                        assert(strcmp(json_object_get_string(dn), name) == 0);
                }
                /* Groups come newest first. */
                assert(created_at(g) <= prev);
                prev = created_at(g);
        }
        r = jsonrpc_serialize(runs, &text, &len);
        assert(r == 0);
        r = json_parse_strict(text, len - 1, UPSTREAM_DEPTH + 8, &back);
        assert(r == 0);
        json_object_put(back);
        free(text);
        json_object_put(runs);
}

/* One input: one response body. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *body = (const char *) data;
        json_object *json = NULL, *jobs = NULL;
        const char *name;
        int r;

        /* A body that is not JSON (HTML from a proxy, plain text) still gives a message. */
        check_message(api_extract_message(body, size, NULL));

        r = json_parse_strict(body, size, UPSTREAM_DEPTH, &json);
        if (r < 0) {
                assert(r == -EBADMSG);
                return 0;
        }

        check_message(api_extract_message(body, size, json));

        walk_times(json, 0);

        if (json_object_is_type(json, json_type_array))
                jobs = json;
        else if (!json_object_object_get_ex(json, "jobs", &jobs))
                jobs = NULL;
        check_find_runs(jobs, "my-run");
        name = find_display_name(json, 0);
        if (name)
                check_find_runs(jobs, name);

        if (json_object_is_type(json, json_type_array)) {
                json_object *docs = NULL;
                char *error = NULL;

                r = json_object_deep_copy(json, &docs, NULL);
                assert(r == 0);
                r = runner_config_validate(docs, &error);
                assert(r == 0 || (r == -EINVAL && error));
                free(error);
                json_object_put(docs);
        }

        json_object_put(json);
        return 0;
}
