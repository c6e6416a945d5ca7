/* SPDX-License-Identifier: MIT */
/*
 * The OpenRPC module's validator: a value checked against a compiled schema, with the path
 * and a message for a human when it fails, and the params of a call (by name or by position,
 * defaults filled in) or a result checked against a method's descriptors. See openrpc.h for
 * the order in which errors are reported and openrpc-internal.h for the types.
 */
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jsonrpc.h"
#include "macro.h"
#include "openrpc-internal.h"
#include "openrpc.h"

/* ---- validation --------------------------------------------------------------------------- */

/* The default of a descriptor's schema, following a $ref chain; false when none. */
bool descriptor_default(const Descriptor *d, json_object **ret) {
        const Schema *s = d->schema;

        for (unsigned i = 0; s && i < OPENRPC_REF_CHAIN_MAX; i++, s = s->ref_target)
                if (s->has_default) {
                        *ret = s->default_value;
                        return true;
                }
        return false;
}

/* One step of the location inside the value being validated. */
typedef struct PathSegment {
        const char *key; /* member name, or NULL for an array index */
        size_t index;
} PathSegment;

struct Validator {
        bool quiet;      /* only the verdict is wanted: no message is built */
        unsigned depth;
        size_t n_path;
        PathSegment path[OPENRPC_VALIDATE_DEPTH_MAX + 1];
        char *message;   /* on failure, when not quiet */
        char *where;     /* the path of the failure, "" for the value itself */
};

/* Allocates a validator (the path stack makes it too large for the stack of a callback). */
Validator *validator_new(bool quiet) {
        Validator *v;

        v = calloc(1, sizeof(*v));
        if (!v)
                return NULL;
        v->quiet = quiet;
        return v;
}

/* Frees a validator and any message it holds. */
Validator *validator_free(Validator *v) {
        if (!v)
                return NULL;
        free(v->message);
        free(v->where);
        free(v);
        return NULL;
}

/* Cleanup helper for validator_free(). */
static void validator_freep(Validator **v) {
        validator_free(*v);
}

/* Appends the current path, JSON-pointer style (~ and / escaped), to b. */
static void buf_put_path(Buf *b, const Validator *v) {
        for (size_t i = 0; i < v->n_path; i++) {
                const PathSegment *seg = &v->path[i];
                Buf key = {};

                if (!seg->key) {
                        buf_printf(b, "/%zu", seg->index);
                        continue;
                }
                buf_put_name(&key, seg->key);
                buf_puts(b, "/");
                if (key.oom) {
                        b->oom = true;
                        continue;
                }
                for (size_t k = 0; k < key.len; k++) {
                        if (key.s[k] == '~')
                                buf_puts(b, "~0");
                        else if (key.s[k] == '/')
                                buf_puts(b, "~1");
                        else
                                buf_add(b, key.s + k, 1);
                }
                buf_done(&key);
        }
}

/* Records a failure at the current path; returns -EINVAL, or -ENOMEM when the message cannot
 * be built. Takes the message buffer. */
static int validator_fail_buf(Validator *v, Buf *msg) {
        Buf where = {};

        if (v->quiet) {
                buf_done(msg);
                return -EINVAL;
        }
        buf_put_path(&where, v);
        free(v->message);
        free(v->where);
        v->message = buf_steal(msg);
        v->where = buf_steal(&where);
        if (!v->message || !v->where)
                return -ENOMEM;
        return -EINVAL;
}

/* Records a failure with a formatted message. */
_printf_(2, 3)
static int validator_fail(Validator *v, const char *fmt, ...) {
        Buf msg = {};
        char *s = NULL;
        va_list ap;
        int n;

        if (v->quiet)
                return -EINVAL;
        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        buf_add(&msg, s, (size_t) n);
        free(s);
        return validator_fail_buf(v, &msg);
}

/* Appends "a, b or c" for the types in a mask. */
static void buf_put_types(Buf *b, unsigned types) {
        size_t n = 0, total = 0;

        for (size_t i = 0; i < ELEMENTSOF(schema_types); i++)
                if (types & schema_types[i].bit)
                        total++;
        for (size_t i = 0; i < ELEMENTSOF(schema_types); i++) {
                if (!(types & schema_types[i].bit))
                        continue;
                if (n > 0)
                        buf_puts(b, n + 1 == total ? " or " : ", ");
                buf_puts(b, schema_types[i].name);
                n++;
        }
}

/* Fails with "expected <types>, got <type>". */
static int validator_fail_type(Validator *v, unsigned types, json_object *value) {
        Buf msg = {};

        if (v->quiet)
                return -EINVAL;
        buf_puts(&msg, "expected ");
        buf_put_types(&msg, types);
        buf_printf(&msg, ", got %s", value_type_name(value));
        return validator_fail_buf(v, &msg);
}

/* The types a schema accepts, looking through a bare $ref; 0 when unconstrained. */
static unsigned schema_effective_types(const Schema *s) {
        for (unsigned i = 0; s && i < OPENRPC_REF_CHAIN_MAX; i++, s = s->ref_target)
                if (s->types != 0)
                        return s->types;
        return 0;
}

static int validate(Validator *v, const Schema *s, json_object *value);

/* Validates value one level deeper, at path segment (key or index). */
static int validate_child(Validator *v, const Schema *s, json_object *value, const char *key, size_t index) {
        int r;

        if (v->n_path >= ELEMENTSOF(v->path))
                return validator_fail(v, "nested too deeply to validate");
        v->path[v->n_path++] = (PathSegment) { .key = key, .index = index };
        r = validate(v, s, value);
        v->n_path--;
        return r;
}

/* Runs s quietly and reports whether value matches (1), does not (0), or -ENOMEM. */
static int validate_quietly(Validator *v, const Schema *s, json_object *value) {
        bool quiet = v->quiet;
        int r;

        v->quiet = true;
        r = validate(v, s, value);
        v->quiet = quiet;
        if (r == -ENOMEM)
                return r;
        return r >= 0;
}

/* anyOf (exactly_one false) and oneOf (exactly_one true). */
static int validate_alternatives(Validator *v, Schema *const *alts, size_t n, json_object *value,
                                 bool exactly_one) {
        size_t matched = 0, candidates = 0, candidate = 0;
        unsigned types = 0;
        bool all_typed = true;
        Buf msg = {};
        int r;

        for (size_t i = 0; i < n; i++) {
                r = validate_quietly(v, alts[i], value);
                if (r < 0)
                        return r;
                if (r > 0) {
                        matched++;
                        if (!exactly_one || matched > 1)
                                break;
                }
        }
        if (matched == 1 || (matched > 1 && !exactly_one))
                return 0;
        if (matched > 1)
                return validator_fail(v, "matches more than one of the alternatives it must "
                                      "match exactly one of");
        if (v->quiet)
                return -EINVAL;

        /* Nothing matched. When exactly one alternative has the value's type, that is the one
         * the caller meant: its own error is the useful one. */
        for (size_t i = 0; i < n; i++) {
                unsigned t = schema_effective_types(alts[i]);

                if (t == 0) {
                        all_typed = false;
                        candidates++;
                        candidate = i;
                        continue;
                }
                types |= t;
                if (value_has_type(value, t)) {
                        candidates++;
                        candidate = i;
                }
        }
        if (candidates == 1)
                return validate(v, alts[candidate], value);
        if (candidates == 0 && all_typed)
                return validator_fail_type(v, types, value);
        buf_puts(&msg, "does not match any of the allowed alternatives");
        return validator_fail_buf(v, &msg);
}

/* Checks the string keywords. */
static int validate_string(Validator *v, const Schema *s, json_object *value) {
        const char *str = json_object_get_string(value);
        size_t n = (size_t) json_object_get_string_len(value);

        if (s->min_length.set || s->max_length.set) {
                size_t l = utf8_length(str, n);

                if (s->min_length.set && l < s->min_length.value)
                        return validator_fail(v, "must be at least %" PRIu64 " character%s long",
                                              s->min_length.value, s->min_length.value == 1 ? "" : "s");
                if (s->max_length.set && l > s->max_length.value)
                        return validator_fail(v, "must be at most %" PRIu64 " character%s long",
                                              s->max_length.value, s->max_length.value == 1 ? "" : "s");
        }
        /* regexec() stops at a NUL byte: a string holding one never matches, or
         * "ok\u0000<anything>" would pass as "ok". */
        if (s->pattern && (memchr(str, '\0', n) || regexec(&s->regex, str, 0, NULL, 0) != 0))
                return validator_fail(v, "must match the pattern '%s'", s->pattern);
        if (s->format_uuid && !string_is_uuid(str, n))
                return validator_fail(v, "must be a UUID (8-4-4-4-12 hexadecimal digits)");
        return 0;
}

/* Fails with "must be <op> <bound>". */
static int validator_fail_bound(Validator *v, const char *op, json_object *bound) {
        Buf msg = {};

        if (v->quiet)
                return -EINVAL;
        buf_printf(&msg, "must be %s ", op);
        buf_put_json(&msg, bound);
        return validator_fail_buf(v, &msg);
}

/* Checks the numeric keywords. */
static int validate_number(Validator *v, const Schema *s, json_object *value) {
        if (s->minimum.json && number_compare_json(value, &s->minimum.value) < 0)
                return validator_fail_bound(v, ">=", s->minimum.json);
        if (s->exclusive_minimum.json && number_compare_json(value, &s->exclusive_minimum.value) <= 0)
                return validator_fail_bound(v, ">", s->exclusive_minimum.json);
        if (s->maximum.json && number_compare_json(value, &s->maximum.value) > 0)
                return validator_fail_bound(v, "<=", s->maximum.json);
        if (s->exclusive_maximum.json && number_compare_json(value, &s->exclusive_maximum.value) >= 0)
                return validator_fail_bound(v, "<", s->exclusive_maximum.json);
        return 0;
}

typedef struct HashedItem {
        uint64_t hash;
        size_t index;
} HashedItem;

/* Orders items by hash, then by position. */
static int hashed_item_compare(const void *a, const void *b) {
        const HashedItem *x = a, *y = b;

        if (x->hash != y->hash)
                return x->hash < y->hash ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

/* uniqueItems without comparing every pair: sort by hash and compare within equal hashes.
 * Reports the duplicate whose second position is first in the array. */
static int validate_unique(Validator *v, json_object *value) {
        _cleanup_free_ HashedItem *items = NULL;
        size_t n = json_object_array_length(value), dup_i = 0, dup_j = SIZE_MAX;
        unsigned comparisons = 0;

        if (n < 2)
                return 0;
        items = calloc(n, sizeof(HashedItem));
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                items[i] = (HashedItem) {
                        .hash = json_hash(json_object_array_get_idx(value, i), 0),
                        .index = i,
                };
        qsort(items, n, sizeof(HashedItem), hashed_item_compare);

        for (size_t a = 0; a < n; a++)
                for (size_t b = a + 1; b < n && items[b].hash == items[a].hash; b++) {
                        if (++comparisons > OPENRPC_UNIQUE_COMPARISONS_MAX)
                                return validator_fail(v, "has too many similar items to check "
                                                      "that they are unique");
                        if (items[b].index < dup_j &&
                            json_equal(json_object_array_get_idx(value, items[a].index),
                                       json_object_array_get_idx(value, items[b].index), 0)) {
                                /* Within a run indexes ascend, so items[a] is the first copy. */
                                dup_i = items[a].index;
                                dup_j = items[b].index;
                        }
                }
        if (dup_j != SIZE_MAX)
                return validator_fail(v, "must not contain duplicates (items %zu and %zu are equal)",
                                      dup_i, dup_j);
        return 0;
}

/* Checks the array keywords. */
static int validate_array(Validator *v, const Schema *s, json_object *value) {
        size_t n = json_object_array_length(value);
        int r;

        if (s->min_items.set && n < s->min_items.value)
                return validator_fail(v, "must have at least %" PRIu64 " item%s",
                                      s->min_items.value, s->min_items.value == 1 ? "" : "s");
        if (s->max_items.set && n > s->max_items.value)
                return validator_fail(v, "must have at most %" PRIu64 " item%s",
                                      s->max_items.value, s->max_items.value == 1 ? "" : "s");
        if (s->unique_items) {
                r = validate_unique(v, value);
                if (r < 0)
                        return r;
        }
        if (s->items)
                for (size_t i = 0; i < n; i++) {
                        r = validate_child(v, s->items, json_object_array_get_idx(value, i), NULL, i);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* The property of a schema with this name, or NULL. */
static const SchemaProperty *schema_property(const Schema *s, const char *name) {
        for (size_t i = 0; i < s->n_properties; i++)
                if (streq(s->properties[i].name, name))
                        return &s->properties[i];
        return NULL;
}

/* Checks the object keywords, in the same order as params: unknown members, missing
 * members, then each member. */
static int validate_object(Validator *v, const Schema *s, json_object *value) {
        int r;

        if (s->additional == ADDITIONAL_NONE) {
                json_object_object_foreach(value, key, val) {
                        Buf msg = {};

                        (void) val;
                        if (schema_property(s, key))
                                continue;
                        if (v->quiet)
                                return -EINVAL;
                        buf_puts(&msg, "unknown member '");
                        buf_put_name(&msg, key);
                        buf_puts(&msg, "'");
                        if (s->n_properties == 0)
                                buf_puts(&msg, " (no members are allowed)");
                        else {
                                buf_puts(&msg, " (known: ");
                                for (size_t i = 0; i < s->n_properties; i++)
                                        buf_printf(&msg, "%s%s", i > 0 ? ", " : "", s->properties[i].name);
                                buf_puts(&msg, ")");
                        }
                        return validator_fail_buf(v, &msg);
                }
        }

        for (size_t i = 0; i < s->n_required; i++)
                if (!json_object_object_get_ex(value, s->required[i], NULL))
                        return validator_fail(v, "missing required member '%s'", s->required[i]);

        for (size_t i = 0; i < s->n_properties; i++) {
                json_object *member;

                if (!json_object_object_get_ex(value, s->properties[i].name, &member))
                        continue;
                r = validate_child(v, s->properties[i].schema, member, s->properties[i].name, 0);
                if (r < 0)
                        return r;
        }

        if (s->additional == ADDITIONAL_SCHEMA) {
                json_object_object_foreach(value, key, val) {
                        if (schema_property(s, key))
                                continue;
                        r = validate_child(v, s->additional_schema, val, key, 0);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* Fails with "must be one of <values>". */
static int validator_fail_enum(Validator *v, json_object *values) {
        size_t n = json_object_array_length(values);
        Buf msg = {};

        if (v->quiet)
                return -EINVAL;
        buf_puts(&msg, "must be one of ");
        for (size_t i = 0; i < n && i < OPENRPC_MESSAGE_ENUM_MAX; i++) {
                if (i > 0)
                        buf_puts(&msg, ", ");
                buf_put_json(&msg, json_object_array_get_idx(values, i));
        }
        if (n > OPENRPC_MESSAGE_ENUM_MAX)
                buf_puts(&msg, ", ...");
        return validator_fail_buf(v, &msg);
}

/* Validates a value against a schema: $ref, then type, const and enum, then the keywords of
 * the value's type, then the combinators. Returns 0, -EINVAL (message recorded unless quiet),
 * or -ENOMEM. */
static int validate(Validator *v, const Schema *s, json_object *value) {
        int r;

        if (v->depth >= OPENRPC_VALIDATE_DEPTH_MAX)
                return validator_fail(v, "nested too deeply to validate");
        v->depth++;

        if (s->never) {
                r = validator_fail(v, "is not allowed");
                goto out;
        }

        if (s->ref_target) {
                r = validate(v, s->ref_target, value);
                if (r < 0)
                        goto out;
        }

        if (s->types != 0 && !value_has_type(value, s->types)) {
                r = validator_fail_type(v, s->types, value);
                goto out;
        }

        if (s->has_const && !json_equal(value, s->const_value, 0)) {
                Buf msg = {};

                if (v->quiet) {
                        r = -EINVAL;
                        goto out;
                }
                buf_puts(&msg, "must be ");
                buf_put_json(&msg, s->const_value);
                r = validator_fail_buf(v, &msg);
                goto out;
        }

        if (s->enum_values) {
                size_t n = json_object_array_length(s->enum_values);
                bool found = false;

                for (size_t i = 0; i < n && !found; i++)
                        found = json_equal(value, json_object_array_get_idx(s->enum_values, i), 0);
                if (!found) {
                        r = validator_fail_enum(v, s->enum_values);
                        goto out;
                }
        }

        switch (json_object_get_type(value)) {
        case json_type_string:
                r = validate_string(v, s, value);
                break;
        case json_type_int:
        case json_type_double:
                r = validate_number(v, s, value);
                break;
        case json_type_array:
                r = validate_array(v, s, value);
                break;
        case json_type_object:
                r = validate_object(v, s, value);
                break;
        default:
                r = 0;
                break;
        }
        if (r < 0)
                goto out;

        for (size_t i = 0; i < s->n_all_of; i++) {
                r = validate(v, s->all_of[i], value);
                if (r < 0)
                        goto out;
        }
        if (s->n_any_of > 0) {
                r = validate_alternatives(v, s->any_of, s->n_any_of, value, false);
                if (r < 0)
                        goto out;
        }
        if (s->n_one_of > 0) {
                r = validate_alternatives(v, s->one_of, s->n_one_of, value, true);
                if (r < 0)
                        goto out;
        }
        if (s->not_schema) {
                r = validate_quietly(v, s->not_schema, value);
                if (r < 0)
                        goto out;
                if (r > 0) {
                        r = validator_fail(v, "is not allowed (it matches the schema under \"not\")");
                        goto out;
                }
        }
        r = 0;
out:
        v->depth--;
        return r;
}

/* Runs a validation from the top of a value. */
int validator_run(Validator *v, const Schema *s, json_object *value) {
        v->depth = 0;
        v->n_path = 0;
        return validate(v, s, value);
}

/* Releases the members of a validation error. */
void openrpc_error_done(OpenRpcError *e) {
        if (!e)
                return;
        free(e->param);
        free(e->path);
        free(e->message);
        *e = (OpenRpcError) {};
}

/* Fills *ret from a finished message; param may be NULL. Returns -EINVAL, or -ENOMEM. */
static int error_set(OpenRpcError *ret, const char *param, const char *path, Buf *msg) {
        OpenRpcError e = {};

        e.message = buf_steal(msg);
        e.path = strdup(path ?: "");
        if (param)
                e.param = strdup(param);
        if (!e.message || !e.path || (param && !e.param)) {
                openrpc_error_done(&e);
                return -ENOMEM;
        }
        if (ret)
                *ret = e;
        else
                openrpc_error_done(&e);
        return -EINVAL;
}

/* Builds the error of a param whose value failed its schema. */
static int error_from_validator(OpenRpcError *ret, const char *param, const Validator *v) {
        Buf msg = {};

        if (param) {
                buf_puts(&msg, "invalid param '");
                buf_put_name(&msg, param);
                buf_puts(&msg, "'");
        } else
                buf_puts(&msg, "invalid result");
        if (!isempty(v->where))
                buf_printf(&msg, " at %s", v->where);
        buf_printf(&msg, ": %s", v->message ?: "is invalid");
        return error_set(ret, param, v->where, &msg);
}

/* The descriptor of a param by name, or NULL. */
static const Descriptor *method_param(const OpenRpcMethod *m, const char *name) {
        for (size_t i = 0; i < m->n_params; i++)
                if (streq(m->params[i]->name, name))
                        return m->params[i];
        return NULL;
}

/* Turns by-position params into a by-name object (new reference in *ret). */
static int params_from_array(const OpenRpcMethod *m, json_object *params, json_object **ret,
                             OpenRpcError *ret_error) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        size_t n = json_object_array_length(params);
        Buf msg = {};

        if (m->structure == PARAM_STRUCTURE_BY_NAME) {
                buf_puts(&msg, "params must be given by name (an object), not by position");
                return error_set(ret_error, NULL, NULL, &msg);
        }
        if (n > m->n_params) {
                buf_printf(&msg, "too many params: %zu given, the method takes %s%zu", n,
                           m->n_params > 0 ? "at most " : "", m->n_params);
                return error_set(ret_error, NULL, NULL, &msg);
        }

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(params, i);

                if (json_object_object_add(o, m->params[i]->name, json_object_get(e)) < 0) {
                        json_object_put(e);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(o);
        return 0;
}

/* Validates params, see openrpc.h. */
int openrpc_validate_params(const OpenRpc *o, const OpenRpcMethod *m, json_object *params,
                            json_object **ret_params, OpenRpcError *ret_error) {
        _cleanup_(json_object_putp) json_object *given = NULL, *out = NULL;
        _cleanup_(validator_freep) Validator *v = NULL;
        Buf msg = {};
        int r;

        assert_return(o, -EINVAL);
        assert_return(m, -EINVAL);

        if (!params) {
                /* absent params: only required ones can be wrong, and defaults are filled in */
                for (size_t i = 0; i < m->n_params; i++)
                        if (m->params[i]->required) {
                                buf_printf(&msg, "missing required param '%s'", m->params[i]->name);
                                return error_set(ret_error, m->params[i]->name, NULL, &msg);
                        }
                goto result;
        } else if (json_object_is_type(params, json_type_object))
                given = json_object_get(params);
        else if (json_object_is_type(params, json_type_array)) {
                r = params_from_array(m, params, &given, ret_error);
                if (r < 0)
                        return r;
        } else {
                buf_puts(&msg, "params must be an object or an array");
                return error_set(ret_error, NULL, NULL, &msg);
        }
        if (!given)
                return -ENOMEM;

        /* 1. unknown params */
        json_object_object_foreach(given, key, val) {
                (void) val;
                if (method_param(m, key))
                        continue;
                buf_puts(&msg, "unknown param '");
                buf_put_name(&msg, key);
                buf_puts(&msg, "'");
                if (m->n_params == 0)
                        buf_puts(&msg, " (the method takes no params)");
                else {
                        buf_puts(&msg, " (known: ");
                        for (size_t i = 0; i < m->n_params; i++)
                                buf_printf(&msg, "%s%s", i > 0 ? ", " : "", m->params[i]->name);
                        buf_puts(&msg, ")");
                }
                return error_set(ret_error, key, NULL, &msg);
        }

        /* 2. missing required params */
        for (size_t i = 0; i < m->n_params; i++)
                if (m->params[i]->required && !json_object_object_get_ex(given, m->params[i]->name, NULL)) {
                        buf_printf(&msg, "missing required param '%s'", m->params[i]->name);
                        return error_set(ret_error, m->params[i]->name, NULL, &msg);
                }

        /* 3. each param in document order (nothing to check, and no validator to set up, for
         * a call without params: the common case on the hot path) */
        if (json_object_object_length(given) > 0) {
                v = validator_new(false);
                if (!v)
                        return -ENOMEM;
        }
        for (size_t i = 0; v && i < m->n_params; i++) {
                json_object *value;

                if (!json_object_object_get_ex(given, m->params[i]->name, &value))
                        continue;
                r = validator_run(v, m->params[i]->schema, value);
                if (r == -EINVAL)
                        return error_from_validator(ret_error, m->params[i]->name, v);
                if (r < 0)
                        return r;
        }

result:
        if (!ret_params)
                return 0;

        /* The result: given params and defaults, in document order. */
        out = json_object_new_object();
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_params; i++) {
                json_object *value = NULL, *def;

                if (json_object_object_get_ex(given, m->params[i]->name, &value))
                        value = json_object_get(value);
                else if (descriptor_default(m->params[i], &def)) {
                        value = NULL;
                        /* A copy: the handler may change its params, never the document. */
                        if (def && json_object_deep_copy(def, &value, NULL) < 0)
                                return -ENOMEM;
                } else
                        continue;
                if (json_object_object_add(out, m->params[i]->name, value) < 0) {
                        json_object_put(value);
                        return -ENOMEM;
                }
        }

        *ret_params = TAKE_PTR(out);
        return 0;
}

/* Validates a result value, see openrpc.h. */
int openrpc_validate_result(const OpenRpc *o, const OpenRpcMethod *m, json_object *result,
                            OpenRpcError *ret_error) {
        _cleanup_(validator_freep) Validator *v = NULL;
        int r;

        assert_return(o, -EINVAL);
        assert_return(m, -EINVAL);

        v = validator_new(false);
        if (!v)
                return -ENOMEM;
        r = validator_run(v, m->result->schema, result);
        if (r == -EINVAL)
                return error_from_validator(ret_error, NULL, v);
        return r;
}
