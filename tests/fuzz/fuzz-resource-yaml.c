/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for daemon/resource-yaml.c: parses the input as a resource YAML stream;
 * whatever parses must emit, parse back to an equal value and emit to the same text again
 * (the fixed point the export → import → export path relies on). Then what runner import and
 * runner.run do with the documents: runner_config_validate() (on a copy), the display name
 * bumped, the options, the tables and each table's parameters read back, the documents of a
 * default run prepared, then the edits of runner.add_table, add_link, set_parameters,
 * update_parameters and advise_parameters; the result must still emit, parse back equal and
 * validate again.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resource-yaml.h"
#include "runner-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Emits documents, parses the text back and checks it equals them. */
static void check_emit_round_trip(json_object *docs) {
        json_object *back = NULL;
        char *text = NULL, *error = NULL;
        size_t len = 0;
        int r;

        r = resource_yaml_emit(docs, &text, &len);
        assert(r == 0 || r == -E2BIG);
        if (r == 0) {
                r = resource_yaml_parse(text, len, &back, &error);
                assert(r == 0);
                assert(json_object_equal(docs, back));
        }
        json_object_put(back);
        free(text);
        free(error);
}

/* How many links the table `parent` of the schema (the first of that name, the one
 * runner_config_add_link() edits) has to `child`. */
static size_t links_to(json_object *docs, const char *parent, const char *child) {
        json_object *schema = runner_config_find(docs, "AvatarSchema", "schema"), *spec, *tables, *links;
        size_t n = 0;

        assert(json_object_object_get_ex(schema, "spec", &spec));
        assert(json_object_object_get_ex(spec, "tables", &tables));
        for (size_t i = 0; i < json_object_array_length(tables); i++) {
                json_object *t = json_object_array_get_idx(tables, i), *name;

                /* the input's tables may have any name, null included */
                if (!json_object_object_get_ex(t, "name", &name) || !json_object_is_type(name, json_type_string) ||
                    strcmp(json_object_get_string(name), parent) != 0)
                        continue;
                links = json_object_object_get(t, "links");
                for (size_t k = 0; k < json_object_array_length(links); k++) {
                        json_object *to, *table;

                        if (json_object_object_get_ex(json_object_array_get_idx(links, k), "to", &to) &&
                            json_object_object_get_ex(to, "table", &table) &&
                            json_object_is_type(table, json_type_string) &&
                            strcmp(json_object_get_string(table), child) == 0)
                                n++;
                }
                break;
        }
        return n;
}

/* Links two tables as runner.add_link does; `ok` says whether it must be accepted. The new
 * link is on the parent, to the child, once. */
static void check_link(json_object *docs, const char *parent, const char *pfield, const char *child,
                       const char *cfield, bool ok) {
        char *error = NULL;
        int r;

        r = runner_config_add_link(docs, parent, pfield, child, cfield, "linear_sum_assignment", &error);
        if (!ok) {
                assert(r == -EINVAL && error && !strchr(error, '\n'));
                free(error);
                return;
        }
        assert(r == 0 && !error);
        assert(links_to(docs, parent, child) == 1);
        check_emit_round_trip(docs);
}

/* Edits of an imported runner (runner.add_table, add_link, set_parameters, update_parameters,
 * advise_parameters): each succeeds or refuses with a reason, never fails otherwise, and the
 * documents stay valid and round-trip. */
static void check_runner_edits(json_object *docs, json_object *options) {
        json_object *table, *params, *changes, *warnings, *got, *v;
        char *error = NULL;
        int r;

        table = json_tokener_parse("{\"table_name\":\"fuzz_table\",\"file\":\"fuzz.csv\","
                                   "\"primary_key\":\"id\",\"foreign_keys\":[\"ref\"],"
                                   "\"types\":{\"id\":\"int\",\"ref\":\"int\",\"x\":\"float\"}}");
        assert(table);
        r = runner_config_add_table(docs, table, &error);
        assert(r == 0 || (r == -EINVAL && error));
        free(error);
        error = NULL;
        json_object_put(table);
        if (r < 0)
                return;

        /* a second table, and links between two tables: a table linked to itself is always
         * refused, so the links go from the added table to the second one, and from the
         * input's first table (when it has one besides them) to the added table */
        table = json_tokener_parse("{\"table_name\":\"fuzz_child\",\"file\":\"child.csv\","
                                   "\"primary_key\":\"child_id\",\"types\":{\"child_id\":\"int\"}}");
        assert(table);
        r = runner_config_add_table(docs, table, &error);
        assert(r == 0);
        json_object_put(table);
        check_link(docs, "fuzz_table", "ref", "fuzz_child", "child_id", true);
        /* the same child again replaces the link */
        check_link(docs, "fuzz_table", "id", "fuzz_child", "child_id", true);
        check_link(docs, "fuzz_table", "ref", "fuzz_table", "id", false);
        check_link(docs, "fuzz_table", "ref", "no_such_table", "id", false);
        {
                json_object *names = runner_config_tables(docs);
                const char *first = json_object_get_string(json_object_array_get_idx(names, 0));

                if (first && strcmp(first, "fuzz_table") != 0 && strcmp(first, "fuzz_child") != 0)
                        check_link(docs, first, "ref", "fuzz_table", "id", true);
                json_object_put(names);
        }

        params = json_tokener_parse("{\"k\":5,\"ncp\":2,\"exclude_variable_names\":[\"x\"],"
                                    "\"time_series_nf\":3,\"known_variables\":[\"x\"]}");
        warnings = json_object_new_array();
        assert(params && warnings);
        r = runner_config_set_parameters(docs, options, "fuzz_table", params, warnings, &error);
        assert(r == 0 || (r == -EINVAL && error));
        free(error);
        error = NULL;
        json_object_put(params);
        if (r == 0) {
                got = runner_config_get_parameters(docs, "fuzz_table");
                assert(json_object_object_get_ex(got, "k", &v) && json_object_get_int64(v) == 5);
                json_object_put(got);
                assert(runner_config_has_avatarization(docs));

                changes = json_tokener_parse("{\"k\":7,\"ncp\":null}");
                assert(changes);
                r = runner_config_update_parameters(docs, options, "fuzz_table", changes, warnings, &error);
                assert(r == 0 || (r == -EINVAL && error));
                free(error);
                error = NULL;
                json_object_put(changes);
        }
        json_object_put(warnings);

        r = runner_config_add_advice(docs);
        assert(r == 0);

        check_emit_round_trip(docs);
        r = runner_config_validate(docs, &error);
        assert(r == 0);
}

/* What importing the documents into a runner and running it do with them. */
static void check_runner_config(json_object *parsed) {
        static const char *const run_jobs[] = { "standard", "signal_metrics", "privacy_metrics", "report",
                                                "report_pia" };
        json_object *docs = NULL, *tables, *options, *jobs, *again = NULL;
        char *error = NULL, *display;
        int r;

        r = json_object_deep_copy(parsed, &docs, NULL);
        assert(r == 0);
        r = runner_config_validate(docs, &error);
        if (r < 0) {
                assert(r == -EINVAL && error);
                free(error);
                json_object_put(docs);
                return;
        }
        assert(!error);
        assert(json_object_array_length(docs) == json_object_array_length(parsed));
        assert(runner_config_find(docs, "AvatarMetadata", NULL));

        /* Validation puts the documents in their order: a second pass changes nothing. */
        r = json_object_deep_copy(docs, &again, NULL);
        assert(r == 0);
        r = runner_config_validate(again, &error);
        assert(r == 0);
        assert(json_object_equal(docs, again));
        json_object_put(again);
        check_emit_round_trip(docs);

        display = runner_increment_display_name(runner_config_display_name(docs) ?: "run");
        assert(display);
        r = runner_config_set_display_name(docs, display);
        assert(r == 0);
        assert(runner_config_display_name(docs) && strcmp(runner_config_display_name(docs), display) == 0);
        free(display);
        options = runner_config_options_from_docs(docs);
        assert(json_object_is_type(options, json_type_object));

        tables = runner_config_tables(docs);
        assert(json_object_is_type(tables, json_type_array));
        for (size_t i = 0; i < json_object_array_length(tables); i++) {
                const char *name = json_object_get_string(json_object_array_get_idx(tables, i));
                json_object *p = runner_config_get_parameters(docs, name);

                assert(json_object_is_type(p, json_type_object));
                json_object_put(p);
        }
        (void) runner_config_has_avatarization(docs);

        jobs = json_object_new_array();
        for (size_t i = 0; i < sizeof(run_jobs) / sizeof(run_jobs[0]); i++)
                json_object_array_add(jobs, json_object_new_string(run_jobs[i]));
        r = runner_config_prepare_run(docs, options, jobs, &error);
        assert(r == 0 || (r == -EINVAL && error));
        free(error);
        error = NULL;
        check_emit_round_trip(docs);
        r = runner_config_validate(docs, &error);
        assert(r == 0);

        check_runner_edits(docs, options);

        json_object_put(jobs);
        json_object_put(tables);
        json_object_put(options);
        json_object_put(docs);
}

/* One input: parse; if accepted, emit, re-parse, compare, emit again; then the runner paths. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_object *docs = NULL, *back = NULL;
        char *error = NULL, *text = NULL, *again = NULL;
        size_t len = 0, again_len = 0;
        int r;

        r = resource_yaml_parse((const char *) data, size, &docs, &error);
        if (r < 0) {
                /* Refused input always says why, on one line. */
                assert(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                assert(r == -ENOMEM || (error && !strchr(error, '\n')));
                free(error);
                return 0;
        }
        assert(!error);

        r = resource_yaml_emit(docs, &text, &len);
        /* Escapes can make the text longer than the input, never past the limit here. */
        assert(r == 0 || (r == -E2BIG && size > RESOURCE_YAML_MAX_BYTES / 4));
        if (r == 0) {
                assert(strlen(text) == len);
                r = resource_yaml_parse(text, len, &back, &error);
                assert(r == 0);
                assert(json_object_equal(docs, back));
                r = resource_yaml_emit(back, &again, &again_len);
                assert(r == 0);
                assert(again_len == len && memcmp(again, text, len) == 0);
        }
        check_runner_config(docs);

        free(again);
        free(text);
        free(error);
        json_object_put(back);
        json_object_put(docs);
        return 0;
}
