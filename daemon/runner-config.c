/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "jsonrpc.h"
#include "macro.h"
#include "runner-config.h"

/* Document kinds in the contract's order. */
typedef struct KindRank {
        const char *kind;
        const char *name;   /* NULL: any name */
        int rank;
} KindRank;

static const KindRank ranks[] = {
        { "AvatarMetadata", NULL, 0 },
        { "AvatarVolume", NULL, 1 },
        { "AvatarSchema", "schema", 2 },
        { "AvatarSchema", NULL, 3 },
        { "AvatarAdviceParameters", NULL, 4 },
        { "AvatarParameters", NULL, 5 },
        { "AvatarPrivacyMetricsParameters", NULL, 6 },
        { "AvatarSignalMetricsParameters", NULL, 7 },
        { "AvatarReportParameters", "report", 8 },
        { "AvatarReportParameters", NULL, 9 },
};
#define RANK_UNKNOWN 10

/* Key orders of the objects we build or edit. */
static const char *const order_params_spec[] = { "schema", "avatarization", "avatarization_open_dp",
                                                 "avatarization_fast_dp", "time_series", "results", "seed", NULL };
static const char *const order_metrics_spec[] = { "schema", "avatarization_ref", "privacy_metrics", "signal_metrics",
                                                  "time_series", "results", "seed", NULL };

/* Fills *ret_error (if wanted) and returns -EINVAL. */
_printf_(2, 3) static int fail(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                free(*ret_error);
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -EINVAL;
}

/* Appends a warning string. */
static void warn(json_object *warnings, const char *text) {
        if (warnings)
                json_object_array_add(warnings, json_object_new_string(text));
}

/* A string member, or NULL. */
static const char *str_of(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* A member that is present and not null, else NULL (borrowed). */
static json_object *get(json_object *o, const char *key) {
        json_object *v = NULL;

        if (!json_object_is_type(o, json_type_object))
                return NULL;
        json_object_object_get_ex(o, key, &v);
        return v;
}

/* Adds key → a new reference to v when v is not null. */
static void put_ref(json_object *o, const char *key, json_object *v) {
        if (v)
                json_object_object_add(o, key, json_object_get(v));
}

/* Adds key → v (taken) when v is not null and, for objects, not empty. */
static void put_nonempty(json_object *o, const char *key, json_object *v) {
        if (!v)
                return;
        if (json_object_is_type(v, json_type_object) && json_object_len(v) == 0) {
                json_object_put(v);
                return;
        }
        json_object_object_add(o, key, v);
}

/* Returns a new object with o's members ordered: `order` first, the rest after, as they were. */
static json_object *reordered(json_object *o, const char *const *order) {
        json_object *n = json_object_new_object();

        if (!n)
                return NULL;
        for (const char *const *k = order; *k; k++) {
                json_object *v;

                if (json_object_object_get_ex(o, *k, &v))
                        json_object_object_add(n, *k, json_object_get(v));
        }
        json_object_object_foreach(o, key, val) {
                bool listed = false;

                for (const char *const *k = order; *k && !listed; k++)
                        listed = streq(*k, key);
                if (!listed)
                        json_object_object_add(n, key, json_object_get(val));
        }
        return n;
}

/* Reorders the member `key` of `parent` in place. */
static int reorder_member(json_object *parent, const char *key, const char *const *order) {
        json_object *v = get(parent, key), *n;

        if (!json_object_is_type(v, json_type_object))
                return 0;
        n = reordered(v, order);
        if (!n)
                return -ENOMEM;
        json_object_object_add(parent, key, n);
        return 0;
}

/* The rank of a document in the contract's order. */
static int doc_rank(json_object *doc) {
        const char *kind = str_of(doc, "kind"), *name = str_of(get(doc, "metadata"), "name");

        for (size_t i = 0; i < ELEMENTSOF(ranks); i++)
                if (streq_ptr(kind, ranks[i].kind) && (!ranks[i].name || streq_ptr(name, ranks[i].name)))
                        return ranks[i].rank;
        return RANK_UNKNOWN;
}

/* Sorts the documents by rank, keeping the relative order of equal ranks (insertion sort on a
 * short array). */
static void docs_sort(json_object *docs) {
        size_t n = json_array_len(docs);

        for (size_t i = 1; i < n; i++) {
                for (size_t j = i; j > 0; j--) {
                        json_object *a = json_object_array_get_idx(docs, j - 1), *b = json_object_array_get_idx(docs, j);

                        if (doc_rank(a) <= doc_rank(b))
                                break;
                        json_object_get(a);
                        json_object_get(b);
                        json_object_array_put_idx(docs, j - 1, b);
                        json_object_array_put_idx(docs, j, a);
                }
        }
}

/* The document of that kind and name (NULL name: the first of the kind). */
json_object *runner_config_find(json_object *docs, const char *kind, const char *name) {
        for (size_t i = 0; i < json_array_len(docs); i++) {
                json_object *d = json_object_array_get_idx(docs, i);

                if (streq_ptr(str_of(d, "kind"), kind) && (!name || streq_ptr(str_of(get(d, "metadata"), "name"), name)))
                        return d;
        }
        return NULL;
}

/* A new document {kind, metadata: {name}, spec: {}}; returns the spec (borrowed) via ret_spec. */
static json_object *doc_new(const char *kind, const char *name, json_object **ret_spec) {
        json_object *d = json_object_new_object(), *m = json_object_new_object(), *spec = json_object_new_object();

        if (!d || !m || !spec) {
                json_object_put(d);
                json_object_put(m);
                json_object_put(spec);
                return NULL;
        }
        json_object_object_add(d, "kind", json_object_new_string(kind));
        json_object_object_add(m, "name", json_object_new_string(name));
        json_object_object_add(d, "metadata", m);
        json_object_object_add(d, "spec", spec);
        *ret_spec = spec;
        return d;
}

/* Adds a document at its place in the order (takes doc). */
static void docs_insert(json_object *docs, json_object *doc) {
        json_object_array_add(docs, doc);
        docs_sort(docs);
}

/* The spec of a document (borrowed), created empty when absent or null: imported documents
 * may have none, and editing them must not fail. The annotations of an AvatarMetadata stay
 * last. NULL when the spec is not a mapping (runner_config_validate() refuses that) or on OOM. */
static json_object *doc_spec(json_object *doc) {
        json_object *spec = get(doc, "spec"), *ann;

        if (spec)
                return json_object_is_type(spec, json_type_object) ? spec : NULL;
        spec = json_object_new_object();
        if (!spec)
                return NULL;
        json_object_object_add(doc, "spec", spec);
        ann = json_object_get(get(doc, "annotations"));
        if (ann) {
                json_object_object_del(doc, "annotations");
                json_object_object_add(doc, "annotations", ann);
        }
        return spec;
}

/* {volume: results, path: PATH} */
static json_object *results_of(const char *path) {
        json_object *r = json_object_new_object();

        json_object_object_add(r, "volume", json_object_new_string("results"));
        json_object_object_add(r, "path", json_object_new_string(path));
        return r;
}

/* Creates the documents of a new runner. */
json_object *runner_config_new(const char *display_name, json_object *options) {
        json_object *docs = json_object_new_array(), *spec, *doc, *pia, *ann;
        _cleanup_free_ char *name = NULL;

        if (!docs || asprintf(&name, "avatar-metadata-%s", display_name) < 0) {
                json_object_put(docs);
                return NULL;
        }
        doc = doc_new("AvatarMetadata", name, &spec);
        if (!doc) {
                json_object_put(docs);
                return NULL;
        }
        json_object_object_add(spec, "display_name", json_object_new_string(display_name));
        pia = json_object_new_object();
        json_object_object_add(pia, "datarecipient",
                               json_object_new_string(str_of(options, "pia_data_recipient") ?: "unknown"));
        json_object_object_add(pia, "data_type", json_object_new_string(str_of(options, "pia_data_type") ?: "unknown"));
        json_object_object_add(pia, "datasubject",
                               json_object_new_string(str_of(options, "pia_data_subject") ?: "unknown"));
        json_object_object_add(pia, "sensitivity_level",
                               json_object_new_string(str_of(options, "pia_sensitivity_level") ?: "Undefined"));
        json_object_object_add(spec, "pia_metadata", pia);
        ann = json_object_new_object();
        json_object_object_add(ann, "client_type", json_object_new_string("avatard"));
        json_object_object_add(ann, "client_version", json_object_new_string(AVATARD_VERSION));
        json_object_object_add(doc, "annotations", ann);
        json_object_array_add(docs, doc);
        return docs;
}

/* The display name in the AvatarMetadata document. */
const char *runner_config_display_name(json_object *docs) {
        return str_of(get(runner_config_find(docs, "AvatarMetadata", NULL), "spec"), "display_name");
}

/* Renames the set. */
int runner_config_set_display_name(json_object *docs, const char *display_name) {
        json_object *doc = runner_config_find(docs, "AvatarMetadata", NULL), *spec, *meta;
        _cleanup_free_ char *name = NULL;

        if (!doc)
                return -ENOENT;
        if (asprintf(&name, "avatar-metadata-%s", display_name) < 0)
                return -ENOMEM;
        meta = get(doc, "metadata");
        spec = doc_spec(doc);
        if (!spec && !get(doc, "spec"))
                return -ENOMEM; /* (a spec that is not a mapping is left alone) */
        if (json_object_is_type(meta, json_type_object))
                json_object_object_add(meta, "name", json_object_new_string(name));
        if (json_object_is_type(spec, json_type_object))
                json_object_object_add(spec, "display_name", json_object_new_string(display_name));
        return 0;
}

/* Checks imported documents and puts them in order. */
int runner_config_validate(json_object *docs, char **ret_error) {
        size_t n;

        if (!json_object_is_type(docs, json_type_array))
                return fail(ret_error, "the resource set is not a list of documents");
        n = json_array_len(docs);
        for (size_t i = 0; i < n; i++) {
                json_object *d = json_object_array_get_idx(docs, i);
                const char *kind = str_of(d, "kind"), *name = str_of(get(d, "metadata"), "name");

                if (!json_object_is_type(d, json_type_object))
                        return fail(ret_error, "document %zu is not a mapping", i + 1);
                if (!kind)
                        return fail(ret_error, "document %zu has no kind", i + 1);
                if (!name)
                        return fail(ret_error, "document %zu (%s) has no metadata.name", i + 1, kind);
                if (get(d, "spec") && !json_object_is_type(get(d, "spec"), json_type_object))
                        return fail(ret_error, "document %zu (%s %s): spec is not a mapping", i + 1, kind, name);
                for (size_t j = 0; j < i; j++) {
                        json_object *o = json_object_array_get_idx(docs, j);

                        if (streq_ptr(str_of(o, "kind"), kind) && streq_ptr(str_of(get(o, "metadata"), "name"), name))
                                return fail(ret_error, "documents %zu and %zu are both %s '%s'", j + 1, i + 1, kind, name);
                }
        }
        if (!runner_config_find(docs, "AvatarMetadata", NULL))
                return fail(ret_error, "the resource set has no AvatarMetadata document");
        docs_sort(docs);
        return 0;
}

/* Names of the tables of the schema. */
json_object *runner_config_tables(json_object *docs) {
        json_object *tables = get(get(runner_config_find(docs, "AvatarSchema", "schema"), "spec"), "tables"),
                    *names = json_object_new_array();

        for (size_t i = 0; names && i < json_array_len(tables); i++) {
                const char *n = str_of(json_object_array_get_idx(tables, i), "name");

                if (n)
                        json_object_array_add(names, json_object_new_string(n));
        }
        return names;
}

/* The index of table `name` in a tables array, or -1. */
static int table_index(json_object *tables, const char *name) {
        for (size_t i = 0; i < json_array_len(tables); i++)
                if (streq_ptr(str_of(json_object_array_get_idx(tables, i), "name"), name))
                        return (int) i;
        return -1;
}

/* The tables array of a schema document, created when missing (borrowed). */
static json_object *schema_tables(json_object *docs, const char *name, bool create) {
        json_object *doc = runner_config_find(docs, "AvatarSchema", name), *spec, *tables;

        if (!doc) {
                if (!create)
                        return NULL;
                doc = doc_new("AvatarSchema", name, &spec);
                if (!doc)
                        return NULL;
                json_object_object_add(spec, "tables", json_object_new_array());
                if (!streq(name, "schema"))
                        json_object_object_add(spec, "schema_ref", json_object_new_string("schema"));
                docs_insert(docs, doc);
        }
        spec = doc_spec(doc);
        tables = get(spec, "tables");
        if (!json_object_is_type(tables, json_type_array)) {
                if (!spec)
                        return NULL;
                tables = json_object_new_array();
                json_object_object_add(spec, "tables", tables);
                reorder_member(doc, "spec", (const char *const[]){ "tables", "schema_ref", NULL });
                tables = get(get(doc, "spec"), "tables");
        }
        return tables;
}

/* Puts `table` (taken) at the place of the table of that name, or appends it. */
static void tables_put(json_object *tables, const char *name, json_object *table) {
        int i = table_index(tables, name);

        if (i >= 0)
                json_object_array_put_idx(tables, (size_t) i, table);
        else
                json_object_array_add(tables, table);
}

/* {volume: input, file: FILE} */
static json_object *data_of(const char *file) {
        json_object *d = json_object_new_object();

        json_object_object_add(d, "volume", json_object_new_string("input"));
        json_object_object_add(d, "file", json_object_new_string(file));
        return d;
}

/* The column entry for `field` in columns, created at the end when missing (borrowed). */
static json_object *column_get(json_object *columns, const char *field) {
        json_object *c;

        for (size_t i = 0; i < json_array_len(columns); i++) {
                c = json_object_array_get_idx(columns, i);
                if (streq_ptr(str_of(c, "field"), field))
                        return c;
        }
        c = json_object_new_object();
        json_object_object_add(c, "field", json_object_new_string(field));
        json_object_array_add(columns, c);
        return c;
}

/* Adds or replaces a table. */
int runner_config_add_table(json_object *docs, json_object *table, char **ret_error) {
        const char *name = str_of(table, "table_name"), *file = str_of(table, "file"),
                   *avatar_file = str_of(table, "avatar_file"), *pk = str_of(table, "primary_key"),
                   *ts = str_of(table, "time_series_time");
        json_object *tables, *atables, *t, *at, *columns, *fks = get(table, "foreign_keys"), *types = get(table, "types"),
                    *old, *links;
        int idx;

        if (isempty(name) || isempty(file))
                return fail(ret_error, "a table needs a name and a file");
        tables = schema_tables(docs, "schema", true);
        atables = schema_tables(docs, "schema_avatarized", true);
        if (!tables || !atables)
                return -ENOMEM;

        t = json_object_new_object();
        json_object_object_add(t, "name", json_object_new_string(name));
        json_object_object_add(t, "data", data_of(file));
        put_ref(t, "individual_level", get(table, "individual_level"));
        if (avatar_file)
                json_object_object_add(t, "avatars_data", data_of(avatar_file));

        /* columns: time column, primary key, foreign keys, then the other typed columns */
        columns = json_object_new_array();
        if (ts)
                json_object_object_add(column_get(columns, ts), "time_series_time", json_object_new_boolean(true));
        if (pk)
                json_object_object_add(column_get(columns, pk), "primary_key", json_object_new_boolean(true));
        for (size_t i = 0; i < json_array_len(fks); i++) {
                const char *fk = json_object_get_string(json_object_array_get_idx(fks, i));

                if (fk)
                        json_object_object_add(column_get(columns, fk), "identifier", json_object_new_boolean(true));
        }
        if (json_object_is_type(types, json_type_object)) {
                json_object_object_foreach(types, col, ty) {
                        json_object *c = column_get(columns, col), *n;

                        json_object_object_add(c, "type", json_object_get(ty));
                        /* field first, then type, then the flags */
                        n = reordered(c, (const char *const[]){ "field", "type", NULL });
                        for (size_t i = 0; i < json_array_len(columns); i++)
                                if (json_object_array_get_idx(columns, i) == c) {
                                        json_object_array_put_idx(columns, i, n);
                                        break;
                                }
                }
        }
        put_nonempty(t, "columns", json_array_len(columns) > 0 ? columns : NULL);
        if (json_array_len(columns) == 0)
                json_object_put(columns);

        /* a replaced table keeps its links */
        idx = table_index(tables, name);
        old = idx >= 0 ? json_object_array_get_idx(tables, (size_t) idx) : NULL;
        links = get(old, "links");
        put_ref(t, "links", links);
        tables_put(tables, name, t);

        at = json_object_new_object();
        json_object_object_add(at, "name", json_object_new_string(name));
        if (avatar_file)
                json_object_object_add(at, "avatars_data", data_of(avatar_file));
        else {
                json_object *a = json_object_new_object();

                json_object_object_add(a, "auto", json_object_new_boolean(true));
                json_object_object_add(at, "avatars_data", a);
        }
        tables_put(atables, name, at);
        return 0;
}

/* Adds a link on the parent table. */
int runner_config_add_link(json_object *docs, const char *parent_table, const char *parent_field,
                           const char *child_table, const char *child_field, const char *method,
                           char **ret_error) {
        json_object *tables = schema_tables(docs, "schema", false), *parent, *links, *link, *to;
        int pi;

        if (!tables || (pi = table_index(tables, parent_table)) < 0)
                return fail(ret_error, "no table '%s' (add it with runner.add_table first)", parent_table);
        if (table_index(tables, child_table) < 0)
                return fail(ret_error, "no table '%s' (add it with runner.add_table first)", child_table);
        if (streq(parent_table, child_table))
                return fail(ret_error, "a table cannot be linked to itself");
        parent = json_object_array_get_idx(tables, (size_t) pi);
        links = get(parent, "links");
        if (!json_object_is_type(links, json_type_array)) {
                links = json_object_new_array();
                json_object_object_add(parent, "links", links);
        }
        /* replace a link to the same child table */
        for (size_t i = 0; i < json_array_len(links); i++) {
                json_object *l = json_object_array_get_idx(links, i);

                if (streq_ptr(str_of(get(l, "to"), "table"), child_table)) {
                        json_object_array_del_idx(links, i, 1);
                        break;
                }
        }
        link = json_object_new_object();
        to = json_object_new_object();
        json_object_object_add(link, "field", json_object_new_string(parent_field));
        json_object_object_add(to, "table", json_object_new_string(child_table));
        json_object_object_add(to, "field", json_object_new_string(child_field));
        json_object_object_add(link, "to", to);
        json_object_object_add(link, "method", json_object_new_string(method ?: "linear_sum_assignment"));
        json_object_array_add(links, link);
        return 0;
}

/* The spec of a parameters document, created with its base members when missing. */
static json_object *params_spec(json_object *docs, json_object *options, const char *kind, const char *name) {
        json_object *doc = runner_config_find(docs, kind, name), *spec, *results, *v;

        if (doc)
                return doc_spec(doc);
        doc = doc_new(kind, name, &spec);
        if (!doc)
                return NULL;
        if (streq(kind, "AvatarParameters"))
                json_object_object_add(spec, "schema", json_object_new_string("schema"));
        else {
                json_object_object_add(spec, "schema", json_object_new_string("schema_avatarized"));
                if (runner_config_find(docs, "AvatarParameters", "standard"))
                        json_object_object_add(spec, "avatarization_ref", json_object_new_string("standard"));
        }
        results = results_of(name);
        if (streq(name, "standard") && (v = get(options, "max_distribution_plots")))
                json_object_object_add(results, "max_distribution_plots", json_object_get(v));
        json_object_object_add(spec, "results", results);
        if ((v = get(options, "seed")))
                json_object_object_add(spec, "seed", json_object_get(v));
        docs_insert(docs, doc);
        return spec;
}

/* The per-table map `key` of a spec, created when missing (borrowed). */
static json_object *spec_map(json_object *spec, const char *key) {
        json_object *m = get(spec, key);

        if (!json_object_is_type(m, json_type_object)) {
                m = json_object_new_object();
                json_object_object_add(spec, key, m);
        }
        return m;
}

/* Removes table from the per-table map `key` of a spec, and the map when it becomes empty. */
static void spec_map_del(json_object *spec, const char *key, const char *table) {
        json_object *m = get(spec, key);

        if (!json_object_is_type(m, json_type_object))
                return;
        json_object_object_del(m, table);
        if (json_object_len(m) == 0)
                json_object_object_del(spec, key);
}

/* {method, k, training_fraction, return_data_imputed} from the imputation_* params. */
static json_object *imputation_of(json_object *p) {
        json_object *o = json_object_new_object();

        put_ref(o, "method", get(p, "imputation_method"));
        put_ref(o, "k", get(p, "imputation_k"));
        put_ref(o, "training_fraction", get(p, "imputation_training_fraction"));
        put_ref(o, "return_data_imputed", get(p, "imputation_return_data_imputed"));
        return o;
}

/* {variable_names, replacement_strategy} */
static json_object *exclude_of(json_object *names, const char *strategy) {
        json_object *o = json_object_new_object();

        put_ref(o, "variable_names", names);
        if (strategy)
                json_object_object_add(o, "replacement_strategy", json_object_new_string(strategy));
        return o;
}

/* The avatarization entry (k or epsilon plus the shared members). */
static json_object *avatarization_of(json_object *p, const char *first_key, json_object *first,
                                     json_object *exclude) {
        json_object *o = json_object_new_object(), *aug = json_object_new_object();

        put_ref(o, first_key, first);
        put_ref(o, "ncp", get(p, "ncp"));
        put_ref(o, "use_categorical_reduction", get(p, "use_categorical_reduction"));
        put_ref(o, "column_weights", get(p, "column_weights"));
        put_nonempty(o, "exclude_variables", exclude ? json_object_get(exclude) : NULL);
        put_nonempty(o, "imputation", imputation_of(p));
        put_ref(aug, "augmentation_strategy", get(p, "data_augmentation_strategy"));
        put_ref(aug, "target_column", get(p, "data_augmentation_target_column"));
        put_ref(aug, "should_anonymize_original_table", get(p, "data_augmentation_should_anonymize_original_table"));
        put_nonempty(o, "data_augmentation", aug);
        return o;
}

/* Whether a number param is set and non-zero (Python's truthiness for k and epsilons). */
static bool truthy(json_object *v) {
        if (!v)
                return false;
        if (json_object_is_type(v, json_type_int))
                return json_object_get_int64(v) != 0;
        if (json_object_is_type(v, json_type_double))
                return fpclassify(json_object_get_double(v)) != FP_ZERO;
        return json_object_get_boolean(v);
}

/* set_parameters for one table. */
int runner_config_set_parameters(json_object *docs, json_object *options, const char *table,
                                 json_object *params, json_object *warnings, char **ret_error) {
        json_object *tables = schema_tables(docs, "schema", false), *k = get(params, "k"),
                    *open_dp = get(params, "open_dp_epsilon"), *fast_dp = get(params, "fast_dp_epsilon"),
                    *spec, *exclude = NULL, *metrics_exclude, *ts, *proj, *align, *pm, *sm;
        const char *strategy = str_of(params, "exclude_variable_method");
        bool use_excluded = json_object_get_boolean(get(params, "use_excluded_variables_in_metrics"));

        if (!tables || table_index(tables, table) < 0)
                return fail(ret_error, "no table '%s' (add it with runner.add_table first)", table);
        if (truthy(k) && truthy(open_dp))
                return fail(ret_error, "Expected either k or open_dp_epsilon to be set, not both. If you want to use "
                            "OpenDP avatarization, set open_dp_epsilon and remove k.");
        if (truthy(k) && truthy(fast_dp))
                return fail(ret_error, "Expected either k or fast_dp_epsilon to be set, not both. If you want to use "
                            "fastDP avatarization, set fast_dp_epsilon and remove k.");
        if (truthy(open_dp) && truthy(fast_dp))
                return fail(ret_error, "Expected either open_dp_epsilon or fast_dp_epsilon to be set, not both. "
                            "Choose either OpenDP (open_dp_epsilon) or FastDP (fast_dp_epsilon).");
        if (k && json_object_get_int64(k) == 2)
                warn(warnings, "You have set k = 2, which is the minimum allowed value. With such a low k, each "
                     "synthesized record closely mirrors only 2 original records, significantly reducing privacy "
                     "protection.");
        if (!strategy && (strategy = str_of(params, "exclude_replacement_strategy")))
                warn(warnings, "The 'exclude_replacement_strategy' parameter is deprecated and will be removed in a "
                     "future release. Please use 'exclude_variable_method' instead.");

        /* previous parameters of the table go */
        for (const char *const *kind = (const char *const[]){ "AvatarParameters", "AvatarPrivacyMetricsParameters",
                                                             "AvatarSignalMetricsParameters", NULL };
             *kind; kind++) {
                json_object *s = get(runner_config_find(docs, *kind, NULL), "spec");

                if (!s)
                        continue;
                spec_map_del(s, "avatarization", table);
                spec_map_del(s, "avatarization_open_dp", table);
                spec_map_del(s, "avatarization_fast_dp", table);
                spec_map_del(s, "privacy_metrics", table);
                spec_map_del(s, "signal_metrics", table);
                spec_map_del(s, "time_series", table);
        }

        if (get(params, "exclude_variable_names") || strategy)
                exclude = exclude_of(get(params, "exclude_variable_names"), strategy);

        if (truthy(k) || truthy(open_dp) || truthy(fast_dp)) {
                const char *map = truthy(k) ? "avatarization" : truthy(open_dp) ? "avatarization_open_dp" :
                                                                                 "avatarization_fast_dp";

                spec = params_spec(docs, options, "AvatarParameters", "standard");
                if (!spec) {
                        json_object_put(exclude);
                        return -ENOMEM;
                }
                json_object_object_add(spec_map(spec, map), table,
                                       avatarization_of(params, truthy(k) ? "k" : "epsilon",
                                                        truthy(k) ? k : truthy(open_dp) ? open_dp : fast_dp, exclude));
        }

        /* time series projection and alignment */
        proj = json_object_new_object();
        put_ref(proj, "projection_type", get(params, "time_series_projection_type"));
        put_ref(proj, "nf", get(params, "time_series_nf"));
        align = json_object_new_object();
        put_ref(align, "method", get(params, "time_series_method"));
        put_ref(align, "nb_points", get(params, "time_series_nb_points"));
        ts = json_object_new_object();
        put_nonempty(ts, "projection", proj);
        put_nonempty(ts, "alignment", align);

        metrics_exclude = use_excluded ? NULL : exclude;

        pm = json_object_new_object();
        put_ref(pm, "ncp", get(params, "ncp"));
        put_ref(pm, "use_categorical_reduction", get(params, "use_categorical_reduction"));
        put_ref(pm, "known_variables", get(params, "known_variables"));
        put_ref(pm, "target", get(params, "target"));
        put_ref(pm, "quantile_threshold", get(params, "quantile_threshold"));
        put_nonempty(pm, "imputation", imputation_of(params));
        put_nonempty(pm, "exclude_variables", metrics_exclude ? json_object_get(metrics_exclude) : NULL);
        put_ref(pm, "column_weights", get(params, "column_weights"));

        sm = json_object_new_object();
        put_ref(sm, "ncp", get(params, "ncp"));
        put_ref(sm, "use_categorical_reduction", get(params, "use_categorical_reduction"));
        put_nonempty(sm, "imputation", imputation_of(params));
        put_ref(sm, "column_weights", get(params, "column_weights"));
        put_nonempty(sm, "exclude_variables", metrics_exclude ? json_object_get(metrics_exclude) : NULL);

        for (const char *const *kind = (const char *const[]){ "AvatarParameters", "AvatarPrivacyMetricsParameters",
                                                             "AvatarSignalMetricsParameters", NULL };
             *kind; kind++) {
                bool is_std = streq(*kind, "AvatarParameters");
                const char *name = is_std ? "standard" : streq(*kind, "AvatarPrivacyMetricsParameters") ?
                                   "privacy_metrics" : "signal_metrics";

                /* the metrics documents always exist after set_parameters, as in the Python
                 * Runner; the standard one only with avatarization parameters */
                if (is_std && !runner_config_find(docs, *kind, name))
                        continue;
                spec = params_spec(docs, options, *kind, name);
                if (!spec)
                        break;
                if (json_object_len(ts) > 0)
                        json_object_object_add(spec_map(spec, "time_series"), table, json_object_get(ts));
                if (streq(name, "privacy_metrics") && json_object_len(pm) > 0)
                        json_object_object_add(spec_map(spec, "privacy_metrics"), table, json_object_get(pm));
                if (streq(name, "signal_metrics") && json_object_len(sm) > 0)
                        json_object_object_add(spec_map(spec, "signal_metrics"), table, json_object_get(sm));
                /* metrics documents refer to standard once it exists */
                if (!is_std && runner_config_find(docs, "AvatarParameters", "standard") &&
                    !get(spec, "avatarization_ref"))
                        json_object_object_add(spec, "avatarization_ref", json_object_new_string("standard"));
        }
        json_object_put(ts);
        json_object_put(pm);
        json_object_put(sm);
        json_object_put(exclude);

        /* canonical member order in every parameters document */
        for (size_t i = 0; i < json_array_len(docs); i++) {
                json_object *d = json_object_array_get_idx(docs, i);
                const char *kind = str_of(d, "kind");

                if (streq_ptr(kind, "AvatarParameters"))
                        reorder_member(d, "spec", order_params_spec);
                else if (streq_ptr(kind, "AvatarPrivacyMetricsParameters") ||
                         streq_ptr(kind, "AvatarSignalMetricsParameters"))
                        reorder_member(d, "spec", order_metrics_spec);
        }
        return 0;
}

/* Copies a member into the params when present. */
static void take(json_object *dst, const char *name, json_object *src, const char *key) {
        json_object *v = get(src, key);

        if (v)
                json_object_object_add(dst, name, json_object_get(v));
}

/* The current parameters of a table, as set_parameters arguments. */
json_object *runner_config_get_parameters(json_object *docs, const char *table) {
        json_object *p = json_object_new_object(), *std = get(runner_config_find(docs, "AvatarParameters", "standard"), "spec"),
                    *pm = get(get(get(runner_config_find(docs, "AvatarPrivacyMetricsParameters", NULL), "spec"),
                                  "privacy_metrics"), table),
                    *sm = get(get(get(runner_config_find(docs, "AvatarSignalMetricsParameters", NULL), "spec"),
                                  "signal_metrics"), table),
                    *a, *ts, *base = NULL, *imp, *ex, *aug;
        const char *first = NULL;

        if (!p)
                return NULL;
        if ((a = get(get(std, "avatarization"), table)))
                first = "k";
        else if ((a = get(get(std, "avatarization_open_dp"), table)))
                first = "open_dp_epsilon";
        else if ((a = get(get(std, "avatarization_fast_dp"), table)))
                first = "fast_dp_epsilon";
        if (a) {
                take(p, first, a, streq(first, "k") ? "k" : "epsilon");
                base = a;
        } else
                base = pm ?: sm;
        take(p, "ncp", base, "ncp");
        take(p, "use_categorical_reduction", base, "use_categorical_reduction");
        take(p, "column_weights", base, "column_weights");
        if ((ex = get(a ?: base, "exclude_variables"))) {
                take(p, "exclude_variable_names", ex, "variable_names");
                take(p, "exclude_variable_method", ex, "replacement_strategy");
        }
        if ((imp = get(base, "imputation"))) {
                take(p, "imputation_method", imp, "method");
                take(p, "imputation_k", imp, "k");
                take(p, "imputation_training_fraction", imp, "training_fraction");
                take(p, "imputation_return_data_imputed", imp, "return_data_imputed");
        }
        if ((aug = get(a, "data_augmentation"))) {
                take(p, "data_augmentation_strategy", aug, "augmentation_strategy");
                take(p, "data_augmentation_target_column", aug, "target_column");
                take(p, "data_augmentation_should_anonymize_original_table", aug, "should_anonymize_original_table");
        }
        if ((ts = get(get(std ?: get(runner_config_find(docs, "AvatarPrivacyMetricsParameters", NULL), "spec"),
                          "time_series"), table))) {
                take(p, "time_series_projection_type", get(ts, "projection"), "projection_type");
                take(p, "time_series_nf", get(ts, "projection"), "nf");
                take(p, "time_series_method", get(ts, "alignment"), "method");
                take(p, "time_series_nb_points", get(ts, "alignment"), "nb_points");
        }
        take(p, "known_variables", pm, "known_variables");
        take(p, "target", pm, "target");
        take(p, "quantile_threshold", pm, "quantile_threshold");
        if (get(p, "exclude_variable_names") && pm && !get(pm, "exclude_variables"))
                json_object_object_add(p, "use_excluded_variables_in_metrics", json_object_new_boolean(true));
        return p;
}

/* update_parameters for one table. */
int runner_config_update_parameters(json_object *docs, json_object *options, const char *table,
                                    json_object *changes, json_object *warnings, char **ret_error) {
        json_object *std = get(runner_config_find(docs, "AvatarParameters", "standard"), "spec"), *cur;
        int r;

        if (!get(get(std, "avatarization"), table) && !get(get(std, "avatarization_open_dp"), table) &&
            !get(get(std, "avatarization_fast_dp"), table))
                return fail(ret_error, "No existing parameters found for table '%s'. Use set_parameters to create new "
                            "parameters.", table);
        cur = runner_config_get_parameters(docs, table);
        if (!cur)
                return -ENOMEM;
        json_object_object_foreach(changes, key, val) {
                if (val)
                        json_object_object_add(cur, key, json_object_get(val));
                else
                        json_object_object_del(cur, key);
        }
        r = runner_config_set_parameters(docs, options, table, cur, warnings, ret_error);
        json_object_put(cur);
        return r;
}

/* The per-table maps of the parameters documents. */
static const char *const table_maps[] = { "avatarization", "avatarization_open_dp", "avatarization_fast_dp",
                                          "privacy_metrics", "signal_metrics", "time_series", NULL };

/* The parameters of runner.set_parameters (and of proto/avatard.openrpc.json), table_name
 * excluded. */
static const char *const parameter_names[] = {
        "k", "ncp", "use_categorical_reduction", "column_weights", "exclude_variable_names",
        "exclude_replacement_strategy", "exclude_variable_method", "imputation_method", "imputation_k",
        "imputation_training_fraction", "imputation_return_data_imputed", "open_dp_epsilon", "fast_dp_epsilon",
        "time_series_nf", "time_series_projection_type", "time_series_nb_points", "time_series_method",
        "known_variables", "target", "quantile_threshold", "data_augmentation_strategy",
        "data_augmentation_target_column", "data_augmentation_should_anonymize_original_table",
        "use_excluded_variables_in_metrics", NULL,
};

/* Whether a name is a set_parameters parameter. */
bool runner_config_parameter_known(const char *name) {
        for (const char *const *n = parameter_names; name && *n; n++)
                if (streq(*n, name))
                        return true;
        return false;
}

/* Removes the table from every per-table map of every parameters document (of each kind,
 * whatever its name: imported documents may have several). */
static void parameters_drop_table(json_object *docs, const char *table) {
        for (size_t i = 0; i < json_array_len(docs); i++) {
                json_object *d = json_object_array_get_idx(docs, i), *spec;
                const char *kind = str_of(d, "kind");

                if (!streq_ptr(kind, "AvatarParameters") && !streq_ptr(kind, "AvatarPrivacyMetricsParameters") &&
                    !streq_ptr(kind, "AvatarSignalMetricsParameters"))
                        continue;
                spec = get(d, "spec");
                for (const char *const *m = table_maps; spec && *m; m++)
                        spec_map_del(spec, *m, table);
        }
}

/* Removes the links of `links` (an array member of `owner`) that go to `child`, and the
 * member when none is left. Returns how many went. */
static size_t links_drop(json_object *owner, const char *child) {
        json_object *links = get(owner, "links");
        size_t n = 0;

        if (!json_object_is_type(links, json_type_array))
                return 0;
        for (size_t i = json_array_len(links); i > 0; i--)
                if (streq_ptr(str_of(get(json_object_array_get_idx(links, i - 1), "to"), "table"), child)) {
                        json_object_array_del_idx(links, i - 1, 1);
                        n++;
                }
        if (json_array_len(links) == 0)
                json_object_object_del(owner, "links");
        return n;
}

/* Removes a table, its links and its parameters. */
int runner_config_delete_table(json_object *docs, const char *table) {
        json_object *tables = schema_tables(docs, "schema", false), *atables;
        int i;

        if (!tables || (i = table_index(tables, table)) < 0)
                return -ENOENT;
        json_object_array_del_idx(tables, (size_t) i, 1);
        /* the links of the others that go to it */
        for (size_t j = 0; j < json_array_len(tables); j++)
                (void) links_drop(json_object_array_get_idx(tables, j), table);
        atables = schema_tables(docs, "schema_avatarized", false);
        if (atables && (i = table_index(atables, table)) >= 0)
                json_object_array_del_idx(atables, (size_t) i, 1);
        parameters_drop_table(docs, table);
        return 0;
}

/* Removes one link. */
int runner_config_delete_link(json_object *docs, const char *parent_table, const char *child_table) {
        json_object *tables = schema_tables(docs, "schema", false);
        int i;

        if (!tables || (i = table_index(tables, parent_table)) < 0)
                return -ENOENT;
        return links_drop(json_object_array_get_idx(tables, (size_t) i), child_table) > 0 ? 0 : -ENOENT;
}

/* delete_parameters for one table. */
int runner_config_delete_parameters(json_object *docs, json_object *options, const char *table, json_object *names,
                                    json_object **ret_unknown, char **ret_error) {
        _cleanup_(json_object_putp) json_object *unknown = NULL, *cur = NULL, *warnings = NULL;
        json_object *tables = schema_tables(docs, "schema", false);
        bool changed = false;

        if (!tables || table_index(tables, table) < 0)
                return -ENOENT;
        if (!names) {
                parameters_drop_table(docs, table);
                return 0;
        }
        unknown = json_object_new_array();
        if (!unknown)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_len(names); i++) {
                json_object *n = json_object_array_get_idx(names, i);

                if (!json_object_is_type(n, json_type_string) || !runner_config_parameter_known(json_object_get_string(n)))
                        json_object_array_add(unknown, json_object_get(n));
        }
        if (json_array_len(unknown) > 0) {
                _cleanup_free_ char *list = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&list, &size);

                if (!f)
                        return -ENOMEM;
                for (size_t i = 0; i < json_array_len(unknown); i++)
                        fprintf(f, "%s'%s'", i > 0 ? ", " : "", json_object_get_string(json_object_array_get_idx(unknown, i)));
                if (fclose(f) != 0 || !list)
                        return -ENOMEM;
                (void) fail(ret_error, "no parameter named %s (the names are those of runner.set_parameters)", list);
                if (ret_unknown)
                        *ret_unknown = TAKE_PTR(unknown);
                return -EINVAL;
        }
        cur = runner_config_get_parameters(docs, table);
        warnings = json_object_new_array();
        if (!cur || !warnings)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_len(names); i++) {
                const char *n = json_object_get_string(json_object_array_get_idx(names, i));

                /* the deprecated name is read back as exclude_variable_method */
                if (streq(n, "exclude_replacement_strategy"))
                        n = "exclude_variable_method";
                if (get(cur, n)) {
                        json_object_object_del(cur, n);
                        changed = true;
                }
        }
        if (!changed)
                return 0;
        /* what is left is set again; its warnings were given when it was set */
        return runner_config_set_parameters(docs, options, table, cur, warnings, ret_error);
}

/* Whether some table has avatarization parameters. */
bool runner_config_has_avatarization(json_object *docs) {
        json_object *std = get(runner_config_find(docs, "AvatarParameters", "standard"), "spec");

        for (const char *const *k = (const char *const[]){ "avatarization", "avatarization_open_dp",
                                                          "avatarization_fast_dp", NULL };
             *k; k++) {
                json_object *m = get(std, *k);

                if (json_object_is_type(m, json_type_object) && json_object_len(m) > 0)
                        return true;
        }
        return false;
}

/* Whether the job list holds name. */
static bool jobs_have(json_object *jobs, const char *name) {
        for (size_t i = 0; i < json_array_len(jobs); i++)
                if (streq_ptr(json_object_get_string(json_object_array_get_idx(jobs, i)), name))
                        return true;
        return false;
}

/* Creates a report document when missing. */
static int ensure_report(json_object *docs, const char *name, const char *type, const char *format,
                         const char *language) {
        json_object *doc, *spec;

        if (runner_config_find(docs, "AvatarReportParameters", name))
                return 0;
        doc = doc_new("AvatarReportParameters", name, &spec);
        if (!doc)
                return -ENOMEM;
        json_object_object_add(spec, "report_type", json_object_new_string(type));
        json_object_object_add(spec, "output_format", json_object_new_string(format));
        json_object_object_add(spec, "language", json_object_new_string(language));
        json_object_object_add(spec, "results", results_of(name));
        docs_insert(docs, doc);
        return 0;
}

/* Makes sure the documents a run needs exist. */
int runner_config_prepare_run(json_object *docs, json_object *options, json_object *jobs, char **ret_error) {
        json_object *tables = runner_config_tables(docs);
        size_t n_tables = json_array_len(tables);
        const char *language = str_of(options, "report_language") ?: "en";
        int r;

        json_object_put(tables);
        if (n_tables == 0)
                return fail(ret_error, "the runner has no table: add one with runner.add_table first");
        if (jobs_have(jobs, "standard") && !runner_config_has_avatarization(docs))
                return fail(ret_error, "the standard job needs avatarization parameters: call runner.set_parameters "
                            "with k, open_dp_epsilon or fast_dp_epsilon for at least one table");
        if (jobs_have(jobs, "privacy_metrics") && !params_spec(docs, options, "AvatarPrivacyMetricsParameters", "privacy_metrics"))
                return -ENOMEM;
        if (jobs_have(jobs, "signal_metrics") && !params_spec(docs, options, "AvatarSignalMetricsParameters", "signal_metrics"))
                return -ENOMEM;
        if (jobs_have(jobs, "report")) {
                r = ensure_report(docs, "report", "basic", "pdf", language);
                if (r >= 0)
                        r = ensure_report(docs, "report_pia", "pia", "docx", language);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The runner options found in imported documents. */
json_object *runner_config_options_from_docs(json_object *docs) {
        json_object *o = json_object_new_object(), *std = get(runner_config_find(docs, "AvatarParameters", "standard"), "spec"),
                    *pia = get(get(runner_config_find(docs, "AvatarMetadata", NULL), "spec"), "pia_metadata"),
                    *rep = get(runner_config_find(docs, "AvatarReportParameters", "report"), "spec");

        if (!o)
                return NULL;
        take(o, "seed", std, "seed");
        take(o, "max_distribution_plots", get(std, "results"), "max_distribution_plots");
        take(o, "pia_data_recipient", pia, "datarecipient");
        take(o, "pia_data_type", pia, "data_type");
        take(o, "pia_data_subject", pia, "datasubject");
        take(o, "pia_sensitivity_level", pia, "sensitivity_level");
        take(o, "report_language", rep, "language");
        return o;
}

/* Adds the advice document. */
int runner_config_add_advice(json_object *docs) {
        json_object *doc, *spec, *advice, *types;

        if (runner_config_find(docs, "AvatarAdviceParameters", NULL))
                return 0;
        doc = doc_new("AvatarAdviceParameters", "advice_parameters", &spec);
        if (!doc)
                return -ENOMEM;
        json_object_object_add(spec, "schema", json_object_new_string("schema"));
        advice = json_object_new_object();
        types = json_object_new_array();
        json_object_array_add(types, json_object_new_string("parameters"));
        json_object_object_add(advice, "advisor_type", types);
        json_object_object_add(spec, "advice", advice);
        json_object_object_add(spec, "results", results_of("advice"));
        docs_insert(docs, doc);
        return 0;
}

/* The set_parameters arguments an advice holds. Advisors of API 1.x nest them under
 * "parameters"; newer ones put them at the top of the advice: both are read. */
int runner_config_advice_parameters(json_object *advice, json_object **ret, char **ret_error) {
        static const char *const direct[] = { "k", "ncp", "use_categorical_reduction" };
        static const char *const imputation[][2] = { { "method", "imputation_method" },
                                                     { "k", "imputation_k" },
                                                     { "training_fraction", "imputation_training_fraction" },
                                                     { "return_data_imputed", "imputation_return_data_imputed" } };
        json_object *src = advice, *p, *imp = NULL, *v;

        *ret = NULL;
        if (!json_object_is_type(advice, json_type_object))
                return fail(ret_error, "the advice is not an object");
        if (json_object_object_get_ex(advice, "parameters", &src) &&
            !json_object_is_type(src, json_type_object))
                return fail(ret_error, "the advice's 'parameters' member is not an object");
        if (!src)
                src = advice;
        if (json_object_object_get_ex(src, "imputation", &imp) && imp &&
            !json_object_is_type(imp, json_type_object))
                return fail(ret_error, "the advice's 'imputation' member is not an object");
        p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(direct); i++)
                if (json_object_object_get_ex(src, direct[i], &v) && v)
                        json_object_object_add(p, direct[i], json_object_get(v));
        for (size_t i = 0; imp && i < ELEMENTSOF(imputation); i++)
                if (json_object_object_get_ex(imp, imputation[i][0], &v) && v)
                        json_object_object_add(p, imputation[i][1], json_object_get(v));
        if (json_object_object_length(p) == 0) {
                json_object_put(p);
                return fail(ret_error, "the advice holds no parameters: neither 'parameters' {k, ncp, ...} "
                                       "nor k, ncp, use_categorical_reduction or imputation at its top level");
        }
        *ret = p;
        return 0;
}

/* The API path a Location names. */
char *runner_location_api_path(const char *api_url, const char *loc) {
        const char *root_path, *p;
        size_t n = strlen(api_url);

        if (strncmp(loc, api_url, n) == 0 && loc[n] == '/')
                return strdup(loc + n);
        if (loc[0] != '/' || loc[1] == '/')
                return NULL;
        /* the API root's own path ("/api") may lead a host-relative Location */
        root_path = strstr(api_url, "://");
        root_path = root_path ? strchr(root_path + 3, '/') : NULL;
        if (root_path && (p = startswith(loc, root_path)) && *p == '/')
                return strdup(p);
        return strdup(loc);
}

/* The last path segment of a URL, percent-decoded. */
char *runner_location_last_segment(const char *loc) {
        size_t n = strcspn(loc, "?#"), k = 0;
        const char *s;
        char *o;

        while (n > 0 && loc[n - 1] == '/')
                n--;
        for (s = loc + n; s > loc && s[-1] != '/'; s--)
                ;
        if (s == loc + n || !(o = malloc(loc + n - s + 1)))
                return NULL;
        for (; s < loc + n; s++)
                if (*s == '%' && isxdigit((unsigned char) s[1]) && isxdigit((unsigned char) s[2])) {
                        char hex[3] = { s[1], s[2], '\0' };

                        o[k++] = (char) strtol(hex, NULL, 16);
                        s += 2;
                } else
                        o[k++] = *s;
        o[k] = '\0';
        return o;
}

/* The job kind of a parameters name. */
const char *runner_config_job_kind(const char *parameters_name) {
        if (streq_ptr(parameters_name, "report_pia"))
                return "report";
        if (parameters_name && startswith(parameters_name, "advice"))
                return "advice";
        return parameters_name;
}

/* Increments the "-vN" suffix of a display name. */
char *runner_increment_display_name(const char *name) {
        const char *dash = strrchr(name, '-');
        char *r = NULL;

        if (dash && dash[1] == 'v' && dash[2] >= '0' && dash[2] <= '9') {
                const char *p = dash + 2;
                unsigned long long v;
                char *end;

                while (*p >= '0' && *p <= '9')
                        p++;
                if (*p == '\0' && p - (dash + 2) <= 18) {
                        v = strtoull(dash + 2, &end, 10);
                        if (asprintf(&r, "%.*s-v%llu", (int) (dash - name), name, v + 1) < 0)
                                return NULL;
                        return r;
                }
        }
        if (asprintf(&r, "%s-v1", name) < 0)
                return NULL;
        return r;
}
