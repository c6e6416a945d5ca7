/* SPDX-License-Identifier: MIT */
/*
 * daemon/runner-config.c, the deletions of the published Runner: delete_table (the table in
 * both schemas, its own links and those that go to it, its parameters in every parameters
 * document), delete_link, delete_parameters (all, or by name; unknown names refused with
 * nothing changed), what each keeps, and the resource YAML they leave. The parameter names
 * delete_parameters accepts are those of runner.set_parameters in the OpenRPC document.
 */
#include <check.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "jsonc-helpers.h"
#include "macro.h"
#include "resource-yaml.h"
#include "runner-config.h"

extern const char openrpc_document_text[];
extern const size_t openrpc_document_text_len;

/* Adds a table the way runner.add_table does (file is its object key). */
static void add_table(json_object *docs, const char *name) {
        json_object *t = json_object_new_object();
        char file[64];
        _cleanup_free_ char *err = NULL;

        snprintf(file, sizeof(file), "r/00/%s.csv", name);
        json_object_object_add(t, "table_name", json_object_new_string(name));
        json_object_object_add(t, "file", json_object_new_string(file));
        ck_assert_int_eq(runner_config_add_table(docs, t, &err), 0);
        json_object_put(t);
}

/* Links two tables. */
static void add_link(json_object *docs, const char *parent, const char *child) {
        _cleanup_free_ char *err = NULL;

        ck_assert_int_eq(runner_config_add_link(docs, parent, "id", child, "ref", NULL, &err), 0);
}

/* set_parameters from a JSON text. */
static void set_params(json_object *docs, const char *table, const char *json) {
        json_object *p = json_tokener_parse(json), *w = json_object_new_array();
        _cleanup_free_ char *err = NULL;

        ck_assert_ptr_nonnull(p);
        ck_assert_msg(runner_config_set_parameters(docs, NULL, table, p, w, &err) == 0, "%s", err ? err : "");
        json_object_put(p);
        json_object_put(w);
}

/* The documents of a runner with tables a, b and c, links a→b, a→c and c→b, and parameters
 * for each (k, ncp, column_weights, time series and privacy metrics for c). */
static json_object *three_tables(void) {
        json_object *docs = runner_config_new("deletions", NULL);

        ck_assert_ptr_nonnull(docs);
        add_table(docs, "a");
        add_table(docs, "b");
        add_table(docs, "c");
        add_link(docs, "a", "b");
        add_link(docs, "a", "c");
        add_link(docs, "c", "b");
        set_params(docs, "a", "{\"k\": 5, \"ncp\": 3}");
        set_params(docs, "b", "{\"k\": 7}");
        set_params(docs, "c", "{\"k\": 4, \"ncp\": 2, \"column_weights\": {\"x\": 2}, \"time_series_nf\": 3, "
                              "\"known_variables\": [\"x\"], \"target\": \"y\"}");
        return docs;
}

/* The tables array of a schema document (borrowed). */
static json_object *tables_of(json_object *docs, const char *schema) {
        json_object *d = runner_config_find(docs, "AvatarSchema", schema), *spec, *t;

        ck_assert_ptr_nonnull(d);
        ck_assert(json_object_object_get_ex(d, "spec", &spec));
        ck_assert(json_object_object_get_ex(spec, "tables", &t));
        return t;
}

/* The table entry of a schema (borrowed), or NULL. */
static json_object *table_entry(json_object *docs, const char *schema, const char *name) {
        json_object *t = tables_of(docs, schema);

        for (size_t i = 0; i < json_object_array_length(t); i++) {
                json_object *e = json_object_array_get_idx(t, i), *n;

                if (json_object_object_get_ex(e, "name", &n) && streq(json_object_get_string(n), name))
                        return e;
        }
        return NULL;
}

/* The children a table links to, joined with ",". */
static char *links_of(json_object *docs, const char *table) {
        json_object *e = table_entry(docs, "schema", table), *links;
        char buf[256] = "";

        ck_assert_ptr_nonnull(e);
        if (!json_object_object_get_ex(e, "links", &links))
                return strdup("-");
        ck_assert_uint_gt(json_object_array_length(links), 0);
        for (size_t i = 0; i < json_object_array_length(links); i++) {
                json_object *to, *t;

                ck_assert(json_object_object_get_ex(json_object_array_get_idx(links, i), "to", &to));
                ck_assert(json_object_object_get_ex(to, "table", &t));
                if (i > 0)
                        strcat(buf, ",");
                strncat(buf, json_object_get_string(t), sizeof(buf) - strlen(buf) - 1);
        }
        return strdup(buf);
}

/* Whether some parameters document holds an entry for table. */
static bool has_parameters(json_object *docs, const char *table) {
        for (size_t i = 0; i < json_object_array_length(docs); i++) {
                json_object *d = json_object_array_get_idx(docs, i), *spec;

                if (!json_object_object_get_ex(d, "spec", &spec) || !json_object_is_type(spec, json_type_object))
                        continue;
                json_object_object_foreach(spec, key, m) {
                        (void) key;
                        if (json_object_is_type(m, json_type_object) && !streq(key, "results") &&
                            json_object_object_get_ex(m, table, NULL))
                                return true;
                }
        }
        return false;
}

/* The emitted YAML of the documents. */
static char *yaml_of(json_object *docs) {
        char *text = NULL;
        size_t len = 0;

        ck_assert_int_eq(resource_yaml_emit(docs, &text, &len), 0);
        return text;
}

/* A JSON array of strings. */
static json_object *names(const char *json) {
        json_object *a = json_tokener_parse(json);

        ck_assert(json_object_is_type(a, json_type_array));
        return a;
}

START_TEST(test_delete_table) {
        _cleanup_(json_object_putp) json_object *docs = three_tables(), *tables = NULL, *pa = NULL, *pb = NULL;
        _cleanup_free_ char *la = NULL, *lb = NULL, *yaml = NULL;

        ck_assert(has_parameters(docs, "c"));
        ck_assert_int_eq(runner_config_delete_table(docs, "c"), 0);
        tables = runner_config_tables(docs);
        ck_assert_str_eq(json_object_to_json_string_ext(tables, JSON_C_TO_STRING_PLAIN), "[\"a\",\"b\"]");
        ck_assert_ptr_null(table_entry(docs, "schema_avatarized", "c"));
        ck_assert_ptr_nonnull(table_entry(docs, "schema_avatarized", "a"));
        /* the link a→c went with c; a→b stays */
        la = links_of(docs, "a");
        ck_assert_str_eq(la, "b");
        lb = links_of(docs, "b");
        ck_assert_str_eq(lb, "-");
        ck_assert(!has_parameters(docs, "c"));
        /* the others keep theirs */
        pa = runner_config_get_parameters(docs, "a");
        ck_assert_str_eq(json_object_to_json_string_ext(pa, JSON_C_TO_STRING_PLAIN), "{\"k\":5,\"ncp\":3}");
        pb = runner_config_get_parameters(docs, "b");
        ck_assert_str_eq(json_object_to_json_string_ext(pb, JSON_C_TO_STRING_PLAIN), "{\"k\":7}");
        yaml = yaml_of(docs);
        ck_assert_msg(!strstr(yaml, "c.csv") && !strstr(yaml, "table: c") && !strstr(yaml, "    c:") &&
                      !strstr(yaml, "known_variables"), "%s", yaml);
        ck_assert_int_eq(runner_config_delete_table(docs, "c"), -ENOENT);
        ck_assert_int_eq(runner_config_delete_table(docs, "C"), -ENOENT);
}
END_TEST

START_TEST(test_delete_table_that_others_link_to) {
        _cleanup_(json_object_putp) json_object *docs = three_tables(), *tables = NULL;
        _cleanup_free_ char *la = NULL, *lc = NULL, *yaml = NULL;

        ck_assert_int_eq(runner_config_delete_table(docs, "b"), 0);
        la = links_of(docs, "a");
        ck_assert_str_eq(la, "c");
        /* c's only link went to b: its links member goes */
        lc = links_of(docs, "c");
        ck_assert_str_eq(lc, "-");
        ck_assert_int_eq(runner_config_delete_table(docs, "a"), 0);
        ck_assert_int_eq(runner_config_delete_table(docs, "c"), 0);
        tables = runner_config_tables(docs);
        ck_assert_uint_eq(json_object_array_length(tables), 0);
        yaml = yaml_of(docs);
        ck_assert_msg(!strstr(yaml, "links") && !strstr(yaml, ".csv"), "%s", yaml);
        /* and the documents still read back */
        {
                _cleanup_(json_object_putp) json_object *back = NULL;
                _cleanup_free_ char *err = NULL;

                ck_assert_int_eq(resource_yaml_parse(yaml, strlen(yaml), &back, &err), 0);
                ck_assert_int_eq(runner_config_validate(back, &err), 0);
        }
}
END_TEST

START_TEST(test_delete_link) {
        _cleanup_(json_object_putp) json_object *docs = three_tables(), *before = NULL;
        _cleanup_free_ char *la = NULL, *lc = NULL, *yaml = NULL;

        ck_assert_int_eq(runner_config_delete_link(docs, "a", "c"), 0);
        la = links_of(docs, "a");
        ck_assert_str_eq(la, "b");
        ck_assert_ptr_nonnull(table_entry(docs, "schema", "c"));
        ck_assert_int_eq(runner_config_delete_link(docs, "a", "c"), -ENOENT);
        /* the other way round is another link */
        ck_assert_int_eq(runner_config_delete_link(docs, "b", "c"), -ENOENT);
        ck_assert_int_eq(runner_config_delete_link(docs, "nope", "b"), -ENOENT);
        before = json_tokener_parse(json_object_to_json_string(docs));
        ck_assert_int_eq(runner_config_delete_link(docs, "b", "a"), -ENOENT);
        ck_assert(json_object_equal(before, docs));
        ck_assert_int_eq(runner_config_delete_link(docs, "c", "b"), 0);
        lc = links_of(docs, "c");
        ck_assert_str_eq(lc, "-");
        ck_assert_int_eq(runner_config_delete_link(docs, "a", "b"), 0);
        yaml = yaml_of(docs);
        ck_assert_msg(!strstr(yaml, "links"), "%s", yaml);
        /* the parameters are untouched */
        ck_assert(has_parameters(docs, "a") && has_parameters(docs, "b") && has_parameters(docs, "c"));
}
END_TEST

START_TEST(test_delete_parameters_by_name) {
        _cleanup_(json_object_putp) json_object *docs = three_tables(), *n = NULL, *p = NULL, *pa = NULL;
        _cleanup_free_ char *err = NULL;

        n = names("[\"ncp\", \"column_weights\", \"known_variables\"]");
        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "c", n, NULL, &err), 0);
        p = runner_config_get_parameters(docs, "c");
        ck_assert_str_eq(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN),
                         "{\"k\":4,\"time_series_nf\":3,\"target\":\"y\"}");
        pa = runner_config_get_parameters(docs, "a");
        ck_assert_str_eq(json_object_to_json_string_ext(pa, JSON_C_TO_STRING_PLAIN), "{\"k\":5,\"ncp\":3}");
        json_object_put(n);
        json_object_put(p);
        /* k goes: the table has no avatarization parameters left, the metrics ones stay */
        n = names("[\"k\"]");
        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "c", n, NULL, &err), 0);
        p = runner_config_get_parameters(docs, "c");
        ck_assert_str_eq(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN),
                         "{\"time_series_nf\":3,\"target\":\"y\"}");
        json_object_put(n);
        json_object_put(p);
        /* names it does not have, and an empty list: nothing changes */
        n = names("[\"imputation_k\"]");
        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "c", n, NULL, &err), 0);
        json_object_put(n);
        n = names("[]");
        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "c", n, NULL, &err), 0);
        p = runner_config_get_parameters(docs, "c");
        ck_assert_str_eq(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN),
                         "{\"time_series_nf\":3,\"target\":\"y\"}");
}
END_TEST

START_TEST(test_delete_parameters_deprecated_name) {
        _cleanup_(json_object_putp) json_object *docs = three_tables(), *n = NULL, *p = NULL;
        _cleanup_free_ char *err = NULL;

        set_params(docs, "b", "{\"k\": 7, \"exclude_variable_names\": [\"x\"], \"exclude_variable_method\": \"row_order\"}");
        n = names("[\"exclude_replacement_strategy\"]");
        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "b", n, NULL, &err), 0);
        p = runner_config_get_parameters(docs, "b");
        ck_assert_str_eq(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN),
                         "{\"k\":7,\"exclude_variable_names\":[\"x\"]}");
}
END_TEST

START_TEST(test_delete_parameters_all) {
        _cleanup_(json_object_putp) json_object *docs = three_tables(), *p = NULL, *pa = NULL;
        _cleanup_free_ char *err = NULL, *yaml = NULL;

        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "c", NULL, NULL, &err), 0);
        ck_assert(!has_parameters(docs, "c"));
        p = runner_config_get_parameters(docs, "c");
        ck_assert_uint_eq(json_object_object_length(p), 0);
        pa = runner_config_get_parameters(docs, "a");
        ck_assert_str_eq(json_object_to_json_string_ext(pa, JSON_C_TO_STRING_PLAIN), "{\"k\":5,\"ncp\":3}");
        /* the table and its links stay */
        ck_assert_ptr_nonnull(table_entry(docs, "schema", "c"));
        yaml = yaml_of(docs);
        ck_assert_msg(strstr(yaml, "table: c") && !strstr(yaml, "k: 4") && !strstr(yaml, "known_variables"), "%s", yaml);
        /* again: nothing to remove, no error */
        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "c", NULL, NULL, &err), 0);
        ck_assert(runner_config_has_avatarization(docs));
        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "a", NULL, NULL, &err), 0);
        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "b", NULL, NULL, &err), 0);
        ck_assert(!runner_config_has_avatarization(docs));
}
END_TEST

START_TEST(test_delete_parameters_refused) {
        _cleanup_(json_object_putp) json_object *docs = three_tables(), *before = NULL, *n = NULL, *unknown = NULL;
        _cleanup_free_ char *err = NULL;

        before = json_tokener_parse(json_object_to_json_string(docs));
        n = names("[\"k\", \"kk\", \"use-categorical-reduction\", \"table_name\"]");
        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "c", n, &unknown, &err), -EINVAL);
        ck_assert_str_eq(json_object_to_json_string_ext(unknown, JSON_C_TO_STRING_PLAIN),
                         "[\"kk\",\"use-categorical-reduction\",\"table_name\"]");
        ck_assert_str_eq(err, "no parameter named 'kk', 'use-categorical-reduction', 'table_name' "
                              "(the names are those of runner.set_parameters)");
        ck_assert(json_object_equal(before, docs));
        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "nope", n, NULL, &err), -ENOENT);
        ck_assert_int_eq(runner_config_delete_parameters(docs, NULL, "nope", NULL, NULL, &err), -ENOENT);
        ck_assert(json_object_equal(before, docs));
}
END_TEST

/* The names delete_parameters knows are exactly the params of runner.set_parameters. */
START_TEST(test_parameter_names_are_set_parameters_params) {
        _cleanup_(json_object_putp) json_object *doc = NULL;
        json_object *methods, *params = NULL;
        size_t n = 0;

        doc = json_tokener_parse(openrpc_document_text);
        ck_assert_ptr_nonnull(doc);
        ck_assert(json_object_object_get_ex(doc, "methods", &methods));
        for (size_t i = 0; i < json_object_array_length(methods); i++) {
                json_object *m = json_object_array_get_idx(methods, i), *name;

                if (json_object_object_get_ex(m, "name", &name) &&
                    streq(json_object_get_string(name), "runner.set_parameters"))
                        ck_assert(json_object_object_get_ex(m, "params", &params));
        }
        ck_assert_ptr_nonnull(params);
        for (size_t i = 0; i < json_object_array_length(params); i++) {
                json_object *name;
                const char *s;

                ck_assert(json_object_object_get_ex(json_object_array_get_idx(params, i), "name", &name));
                s = json_object_get_string(name);
                if (streq(s, "runner_id") || streq(s, "table_name")) {
                        ck_assert_msg(!runner_config_parameter_known(s), "%s", s);
                        continue;
                }
                ck_assert_msg(runner_config_parameter_known(s), "runner.set_parameters has '%s'", s);
                n++;
        }
        ck_assert_uint_ge(n, 20);
        ck_assert(!runner_config_parameter_known("kk"));
        ck_assert(!runner_config_parameter_known(NULL));
}
END_TEST

static Suite *runner_config_suite(void) {
        Suite *s = suite_create("runner-config");
        TCase *tc = tcase_create("deletions");

        tcase_add_test(tc, test_delete_table);
        tcase_add_test(tc, test_delete_table_that_others_link_to);
        tcase_add_test(tc, test_delete_link);
        tcase_add_test(tc, test_delete_parameters_by_name);
        tcase_add_test(tc, test_delete_parameters_deprecated_name);
        tcase_add_test(tc, test_delete_parameters_all);
        tcase_add_test(tc, test_delete_parameters_refused);
        tcase_add_test(tc, test_parameter_names_are_set_parameters_params);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(runner_config_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
