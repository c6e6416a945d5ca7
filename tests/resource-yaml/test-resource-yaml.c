/* SPDX-License-Identifier: MIT */
/*
 * daemon/resource-yaml.c: the resource set of avatar-api.md §6 both ways, every scalar form
 * (plain, quoted, block, tagged), what the emitter quotes and how it writes numbers and
 * multi-line strings, the round-trip and fixed-point properties, every refused input and
 * limit, and a seeded mutation run over the §6 example.
 */
#include <check.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "resource-yaml.h"
#include "runner-config.h"

/* The resource set of avatar-api.md §6, verbatim (documents separated by "\n---\n"). */
static const char example[] =
        "kind: AvatarMetadata\n"
        "metadata:\n"
        "  name: avatar-metadata-iris_k5\n"
        "spec:\n"
        "  display_name: iris_k5\n"
        "  pia_metadata:\n"
        "    datarecipient: unknown\n"
        "    data_type: unknown\n"
        "    datasubject: unknown\n"
        "    sensitivity_level: Undefined\n"
        "annotations:\n"
        "  client_type: python\n"
        "  client_version: 1.29.0\n"
        "\n"
        "---\n"
        "kind: AvatarSchema\n"
        "metadata:\n"
        "  name: schema\n"
        "spec:\n"
        "  tables:\n"
        "  - name: iris\n"
        "    data:\n"
        "      volume: input\n"
        "      file: iris.csv\n"
        "\n"
        "---\n"
        "kind: AvatarSchema\n"
        "metadata:\n"
        "  name: schema_avatarized\n"
        "spec:\n"
        "  tables:\n"
        "  - name: iris\n"
        "    avatars_data:\n"
        "      auto: true\n"
        "  schema_ref: schema\n"
        "\n"
        "---\n"
        "kind: AvatarParameters\n"
        "metadata:\n"
        "  name: standard\n"
        "spec:\n"
        "  schema: schema\n"
        "  avatarization:\n"
        "    iris:\n"
        "      k: 5\n"
        "  results:\n"
        "    volume: results\n"
        "    path: standard\n"
        "\n"
        "---\n"
        "kind: AvatarPrivacyMetricsParameters\n"
        "metadata:\n"
        "  name: privacy_metrics\n"
        "spec:\n"
        "  schema: schema_avatarized\n"
        "  avatarization_ref: standard\n"
        "  results:\n"
        "    volume: results\n"
        "    path: privacy_metrics\n"
        "\n"
        "---\n"
        "kind: AvatarSignalMetricsParameters\n"
        "metadata:\n"
        "  name: signal_metrics\n"
        "spec:\n"
        "  schema: schema_avatarized\n"
        "  avatarization_ref: standard\n"
        "  results:\n"
        "    volume: results\n"
        "    path: signal_metrics\n"
        "\n"
        "---\n"
        "kind: AvatarReportParameters\n"
        "metadata:\n"
        "  name: report\n"
        "spec:\n"
        "  report_type: basic\n"
        "  output_format: pdf\n"
        "  language: en\n"
        "  results:\n"
        "    volume: results\n"
        "    path: report\n"
        "\n"
        "---\n"
        "kind: AvatarReportParameters\n"
        "metadata:\n"
        "  name: report_pia\n"
        "spec:\n"
        "  report_type: pia\n"
        "  output_format: docx\n"
        "  language: en\n"
        "  results:\n"
        "    volume: results\n"
        "    path: report_pia\n";

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

/* Parses text of the given length that must be accepted; returns the documents. */
static json_object *parse_len_ok(const char *text, size_t len) {
        json_object *docs = NULL;
        char *error = NULL;
        int r;

        r = resource_yaml_parse(text, len, &docs, &error);
        ck_assert_msg(r == 0, "parsing failed (%d): %s\n--- text ---\n%.*s", r, strna(error),
                      (int) MIN(len, (size_t) 4000), text);
        ck_assert_ptr_null(error);
        ck_assert(json_object_is_type(docs, json_type_array));
        return docs;
}

/* Parses NUL-terminated text that must be accepted; returns the documents. */
static json_object *parse_ok(const char *text) {
        return parse_len_ok(text, strlen(text));
}

/* Asserts that text of the given length is refused with r and exactly the message. */
static void assert_parse_error_len(const char *text, size_t len, int expected_r,
                                   const char *expected) {
        json_object *docs = (json_object *) 0x1;
        char *error = NULL;
        int r;

        r = resource_yaml_parse(text, len, &docs, &error);
        ck_assert_msg(r == expected_r, "expected %d, got %d (%s) for:\n%.*s", expected_r, r,
                      strna(error), (int) MIN(len, (size_t) 4000), text);
        ck_assert_ptr_eq(docs, (json_object *) 0x1); /* untouched on failure */
        ck_assert_ptr_nonnull(error);
        ck_assert_ptr_null(strchr(error, '\n'));
        if (expected)
                ck_assert_str_eq(error, expected);
        free(error);

        /* Without ret_error the same failure, and nothing to free. */
        ck_assert_int_eq(resource_yaml_parse(text, len, &docs, NULL), expected_r);
}

/* Asserts that NUL-terminated text is refused with r and exactly the message. */
static void assert_parse_error(const char *text, int expected_r, const char *expected) {
        assert_parse_error_len(text, strlen(text), expected_r, expected);
}

/* Emits documents that must be accepted; returns the text. */
static char *emit_ok(json_object *docs) {
        char *text = NULL;
        size_t len = SIZE_MAX;
        int r;

        r = resource_yaml_emit(docs, &text, &len);
        ck_assert_msg(r == 0, "emitting failed (%d): %s", r,
                      json_object_to_json_string_ext(docs, JSON_C_TO_STRING_PLAIN));
        ck_assert_ptr_nonnull(text);
        ck_assert_uint_eq(len, strlen(text));
        return text;
}

/* Asserts parse(emit(docs)) equals docs, keys in the same order, and that emitting that
 * again gives the same text. Returns the emitted text. */
static char *assert_round_trip(json_object *docs) {
        _cleanup_(json_object_putp) json_object *back = NULL;
        _cleanup_free_ char *again = NULL;
        char *text;

        text = emit_ok(docs);
        back = parse_ok(text);
        ck_assert_msg(json_object_equal(docs, back), "round trip changed the value:\n%s\n--- as ---\n%s",
                      json_object_to_json_string_ext(docs, JSON_C_TO_STRING_PLAIN), text);
        /* json_object_equal() ignores member order; the same text again proves it kept. */
        again = emit_ok(back);
        ck_assert_str_eq(again, text);
        return text;
}

/* Asserts that emit(parse(text)) is a fixed point after one round and keeps the value. */
static void assert_fixed_point(const char *text) {
        _cleanup_(json_object_putp) json_object *docs = NULL;
        _cleanup_free_ char *once = NULL;

        docs = parse_ok(text);
        once = assert_round_trip(docs);
}

/* Parses "v: <yaml>" and returns a new reference to the value of v (NULL for null). */
static json_object *value_of(const char *yaml) {
        _cleanup_(json_object_putp) json_object *docs = NULL;
        _cleanup_free_ char *text = NULL;
        json_object *v = NULL;

        ck_assert_int_ge(asprintf(&text, "v: %s\n", yaml), 0);
        docs = parse_ok(text);
        ck_assert_uint_eq(json_object_array_length(docs), 1);
        ck_assert(json_object_object_get_ex(json_object_array_get_idx(docs, 0), "v", &v));
        return json_object_get(v);
}

/* Wraps a value (taken) as [{"v": value}]. */
static json_object *docs_of_value(json_object *v) {
        json_object *doc = json_object_new_object(), *docs = json_object_new_array();

        ck_assert_ptr_nonnull(doc);
        ck_assert_ptr_nonnull(docs);
        ck_assert_int_eq(json_object_object_add(doc, "v", v), 0);
        ck_assert_int_eq(json_object_array_add(docs, doc), 0);
        return docs;
}

/* Emits [{"v": value}] (value taken), asserts the text and the round trip. */
static void assert_emits_value(json_object *v, const char *expected) {
        _cleanup_(json_object_putp) json_object *docs = docs_of_value(v);
        _cleanup_free_ char *text = NULL;

        text = assert_round_trip(docs);
        if (expected)
                ck_assert_str_eq(text, expected);
}

/* The document at index i of an array. Borrowed. */
static json_object *doc_at(json_object *docs, size_t i) {
        json_object *d = json_object_array_get_idx(docs, i);

        ck_assert(json_object_is_type(d, json_type_object));
        return d;
}

/* Follows a dotted path of member names ("spec.results.path"; a digit selects an array
 * element) and returns the value. Borrowed. */
static json_object *at(json_object *o, const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        char *save = NULL;

        ck_assert_ptr_nonnull(copy);
        for (char *part = strtok_r(copy, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
                if (part[0] >= '0' && part[0] <= '9') {
                        ck_assert(json_object_is_type(o, json_type_array));
                        o = json_object_array_get_idx(o, (size_t) atoi(part));
                        ck_assert_ptr_nonnull(o);
                } else
                        ck_assert_msg(json_object_object_get_ex(o, part, &o), "no member %s in %s",
                                      part, path);
        }
        return o;
}

/* Asserts that a path holds a string. */
static void assert_str_at(json_object *o, const char *path, const char *expected) {
        json_object *v = at(o, path);

        ck_assert_msg(json_object_is_type(v, json_type_string), "%s is not a string", path);
        ck_assert_str_eq(json_object_get_string(v), expected);
}

/* The text with its blank lines removed: what the emitter writes for the §6 example. */
static char *without_blank_lines(const char *text) {
        char *out = malloc(strlen(text) + 1), *w = out;

        ck_assert_ptr_nonnull(out);
        for (const char *c = text; *c; c++)
                if (!(*c == '\n' && (c == text || c[-1] == '\n')))
                        *w++ = *c;
        *w = '\0';
        return out;
}

/* The §6 example reads as eight documents with the right kinds, names, nesting and types. */
START_TEST(test_example_parses) {
        _cleanup_(json_object_putp) json_object *docs = parse_ok(example);
        static const char *const kinds[] = {
                "AvatarMetadata", "AvatarSchema", "AvatarSchema", "AvatarParameters",
                "AvatarPrivacyMetricsParameters", "AvatarSignalMetricsParameters",
                "AvatarReportParameters", "AvatarReportParameters",
        };
        static const char *const names[] = {
                "avatar-metadata-iris_k5", "schema", "schema_avatarized", "standard",
                "privacy_metrics", "signal_metrics", "report", "report_pia",
        };
        static const char *const order[] = { "kind", "metadata", "spec", "annotations" };
        json_object *v;
        size_t i = 0;

        ck_assert_uint_eq(json_object_array_length(docs), ELEMENTSOF(kinds));
        for (size_t d = 0; d < ELEMENTSOF(kinds); d++) {
                assert_str_at(doc_at(docs, d), "kind", kinds[d]);
                assert_str_at(doc_at(docs, d), "metadata.name", names[d]);
        }

        /* Keys in document order. */
        json_object_object_foreach(doc_at(docs, 0), key, val) {
                (void) val;
                ck_assert_uint_lt(i, ELEMENTSOF(order));
                ck_assert_str_eq(key, order[i++]);
        }
        ck_assert_uint_eq(i, ELEMENTSOF(order));

        assert_str_at(doc_at(docs, 0), "spec.display_name", "iris_k5");
        assert_str_at(doc_at(docs, 0), "spec.pia_metadata.sensitivity_level", "Undefined");
        assert_str_at(doc_at(docs, 0), "spec.pia_metadata.data_type", "unknown");
        assert_str_at(doc_at(docs, 0), "annotations.client_type", "python");
        assert_str_at(doc_at(docs, 0), "annotations.client_version", "1.29.0");

        v = at(doc_at(docs, 1), "spec.tables");
        ck_assert(json_object_is_type(v, json_type_array));
        ck_assert_uint_eq(json_object_array_length(v), 1);
        assert_str_at(doc_at(docs, 1), "spec.tables.0.name", "iris");
        assert_str_at(doc_at(docs, 1), "spec.tables.0.data.volume", "input");
        assert_str_at(doc_at(docs, 1), "spec.tables.0.data.file", "iris.csv");

        v = at(doc_at(docs, 2), "spec.tables.0.avatars_data.auto");
        ck_assert(json_object_is_type(v, json_type_boolean));
        ck_assert(json_object_get_boolean(v));
        assert_str_at(doc_at(docs, 2), "spec.schema_ref", "schema");

        v = at(doc_at(docs, 3), "spec.avatarization.iris.k");
        ck_assert(json_object_is_type(v, json_type_int));
        ck_assert_int_eq(json_object_get_int64(v), 5);
        assert_str_at(doc_at(docs, 3), "spec.results.path", "standard");

        assert_str_at(doc_at(docs, 4), "spec.avatarization_ref", "standard");
        assert_str_at(doc_at(docs, 5), "spec.results.path", "signal_metrics");
        assert_str_at(doc_at(docs, 6), "spec.language", "en");
        assert_str_at(doc_at(docs, 6), "spec.report_type", "basic");
        assert_str_at(doc_at(docs, 7), "spec.output_format", "docx");
        assert_str_at(doc_at(docs, 7), "spec.results.path", "report_pia");
}
END_TEST

/* The §6 example emits back exactly (blank lines aside) and is a fixed point. */
START_TEST(test_example_round_trips) {
        _cleanup_(json_object_putp) json_object *docs = parse_ok(example);
        _cleanup_free_ char *text = NULL, *expected = without_blank_lines(example);

        /* The emitter writes the example exactly, minus the blank lines before "---". */
        text = assert_round_trip(docs);
        ck_assert_str_eq(text, expected);
        assert_fixed_point(example);
}
END_TEST

/* A plain or quoted scalar and the JSON it must read as. */
typedef struct ScalarCase {
        const char *yaml;
        const char *json;
} ScalarCase;

/* Asserts each case reads as its JSON (type included) and round-trips. */
static void check_scalar_cases(const ScalarCase *cases, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_(json_object_putp) json_object *v = value_of(cases[i].yaml);
                _cleanup_(json_object_putp) json_object *want = json_tokener_parse(cases[i].json);
                _cleanup_(json_object_putp) json_object *docs = NULL;
                _cleanup_free_ char *text = NULL;

                ck_assert_msg(want || streq(cases[i].json, "null"), "bad fixture %s", cases[i].json);
                ck_assert_msg(json_object_equal(v, want), "'%s' read as %s, not %s", cases[i].yaml,
                              json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
                              cases[i].json);
                docs = docs_of_value(json_object_get(v));
                text = assert_round_trip(docs);
        }
}

/* Plain scalars resolve as the YAML 1.2 core schema says, and every one round-trips. */
START_TEST(test_scalars_plain) {
        static const ScalarCase cases[] = {
                { "", "null" },
                { "~", "null" },
                { "null", "null" },
                { "Null", "null" },
                { "NULL", "null" },
                { "true", "true" },
                { "True", "true" },
                { "TRUE", "true" },
                { "false", "false" },
                { "False", "false" },
                { "FALSE", "false" },
                { "0", "0" },
                { "5", "5" },
                { "-5", "-5" },
                { "+7", "7" },
                { "-0", "0" },
                { "0o17", "15" },
                { "0x1F", "31" },
                { "0xff", "255" },
                { "0660", "660" }, /* YAML 1.2: decimal, not octal */
                { "007", "7" },
                { "9223372036854775807", "9223372036854775807" },
                { "-9223372036854775808", "-9223372036854775808" },
                { "18446744073709551615", "18446744073709551615" },
                { "0xFFFFFFFFFFFFFFFF", "18446744073709551615" },
                { "1.0", "1.0" },
                { "1.5", "1.5" },
                { "-2.25", "-2.25" },
                { "+1.5", "1.5" },
                { ".5", "0.5" },
                { "-.5", "-0.5" },
                { "1.", "1.0" },
                { "1e3", "1000.0" },
                { "1E3", "1000.0" },
                { "1.5e-3", "0.0015" },
                { "2.5E+10", "25000000000.0" },
                { "-0.0", "-0.0" },
                { "1e-400", "0.0" }, /* underflow: the nearest double */
                { "0.1", "0.1" },
                { "Very High", "\"Very High\"" },
                { "Undefined", "\"Undefined\"" },
                { "1.29.0", "\"1.29.0\"" },
                { "yes", "\"yes\"" },  /* YAML 1.2: a string */
                { "no", "\"no\"" },
                { "on", "\"on\"" },
                { "off", "\"off\"" },
                { "y", "\"y\"" },
                { "0x1G", "\"0x1G\"" },
                { "0o8", "\"0o8\"" },
                { "+0x1", "\"+0x1\"" },
                { "-0o7", "\"-0o7\"" },
                { "1_000", "\"1_000\"" },
                { "12:30", "\"12:30\"" },
                { "2024-01-01", "\"2024-01-01\"" },
                { "0b101", "\"0b101\"" },
                { "1e", "\"1e\"" },
                { "e5", "\"e5\"" },
                { ".", "\".\"" },
                { "+", "\"+\"" },
                { "..5", "\"..5\"" },
                { "1.2.3", "\"1.2.3\"" },
                { ".infinity", "\".infinity\"" },
                { "nan", "\"nan\"" },
                { "inf", "\"inf\"" },
                { "nULL", "\"nULL\"" },
                { "tRUE", "\"tRUE\"" },
                { "<<", "\"<<\"" },
                { "=", "\"=\"" },
                { "s3://bucket/30d/iris.parquet", "\"s3://bucket/30d/iris.parquet\"" },
                { "file:///tmp/x", "\"file:///tmp/x\"" },
                { "a  b   c", "\"a  b   c\"" },
                { "trailing   ", "\"trailing\"" },
                { "a # comment", "\"a\"" },
                { "a#b", "\"a#b\"" },
                { "café ☕ 日本語", "\"café ☕ 日本語\"" },
                { "emoji 😀", "\"emoji 😀\"" },
                { "-x", "\"-x\"" },
                { "?x", "\"?x\"" },
                { "x:y", "\"x:y\"" },
        };

        check_scalar_cases(cases, ELEMENTSOF(cases));
}
END_TEST

/* Quoted scalars are strings; tags force a type; flow collections read as JSON. */
START_TEST(test_scalars_quoted_and_tagged) {
        static const ScalarCase cases[] = {
                { "\"true\"", "\"true\"" },
                { "'123'", "\"123\"" },
                { "'1.5'", "\"1.5\"" },
                { "\"null\"", "\"null\"" },
                { "'~'", "\"~\"" },
                { "''", "\"\"" },
                { "\"\"", "\"\"" },
                { "'0x1F'", "\"0x1F\"" },
                { "'it''s'", "\"it's\"" },
                { "\"tab\\there\"", "\"tab\\there\"" },
                { "\"line\\nbreak\"", "\"line\\nbreak\"" },
                { "\"\\u00e9\\U0001F600\"", "\"é😀\"" },
                { "\"x\\0y\"", "\"x\\u0000y\"" },
                { "\"a\\\"b\\\\c\"", "\"a\\\"b\\\\c\"" },
                { "'  padded  '", "\"  padded  \"" },
                { "\"folded\n  line\"", "\"folded line\"" },
                { "!!str 123", "\"123\"" },
                { "!!str true", "\"true\"" },
                { "!!str", "\"\"" },
                { "!!str ~", "\"~\"" },
                { "! 12", "\"12\"" },
                { "! true", "\"true\"" },
                { "!!int \"42\"", "42" },
                { "!!int 0x10", "16" },
                { "!!int -3", "-3" },
                { "!!float 1", "1.0" },
                { "!!float '2.5'", "2.5" },
                { "!!float -1e2", "-100.0" },
                { "!!bool 'true'", "true" },
                { "!!bool False", "false" },
                { "!!null ''", "null" },
                { "!!null ~", "null" },
                { "!!null", "null" },
                { "!<tag:yaml.org,2002:int> 7", "7" },
                { "!!map {a: 1}", "{\"a\": 1}" },
                { "!!seq [1, x]", "[1, \"x\"]" },
                { "! [1]", "[1]" },
                { "[1, 1.0, x, 'y', null, true]", "[1, 1.0, \"x\", \"y\", null, true]" },
                { "{a: 1, 'b': [], c: {}}", "{\"a\": 1, \"b\": [], \"c\": {}}" },
        };

        check_scalar_cases(cases, ELEMENTSOF(cases));
}
END_TEST

/* Literal and folded block scalars, with their chomping and indentation indicators. */
START_TEST(test_scalars_block) {
        static const ScalarCase cases[] = {
                { "|\n  a\n  b\n", "\"a\\nb\\n\"" },
                { "|-\n  a\n  b\n", "\"a\\nb\"" },
                { "|+\n  a\n  b\n", "\"a\\nb\\n\\n\"" }, /* value_of() adds a '\\n' */
                { "|\n    indented\n  less\n", NULL },
                { "|2\n    two more\n  base\n", "\"  two more\\nbase\\n\"" },
                { ">\n  a\n  b\n", "\"a b\\n\"" },
                { ">\n  a\n\n  b\n", "\"a\\nb\\n\"" },
                { ">-\n  folded\n  text\n", "\"folded text\"" },
                { "|\n  123\n", "\"123\\n\"" },
                { "|-\n  true\n", "\"true\"" },
                { "|\n  # not a comment\n  - not a list\n", "\"# not a comment\\n- not a list\\n\"" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                if (!cases[i].json) {
                        /* A less indented line after the first fixes the indentation: error. */
                        _cleanup_free_ char *text = NULL;

                        ck_assert_int_ge(asprintf(&text, "v: %s", cases[i].yaml), 0);
                        assert_parse_error(text, -EINVAL, NULL);
                        continue;
                }
                check_scalar_cases(&cases[i], 1);
        }
}
END_TEST

/* A JSON value (as JSON text) and exactly how the emitter writes it as "v: ...". */
typedef struct EmitCase {
        const char *json;
        const char *yaml;
} EmitCase;

/* How each scalar is written: numbers, booleans, null, and strings plain or quoted. */
START_TEST(test_emit_scalars) {
        static const EmitCase cases[] = {
                { "null", "v: null\n" },
                { "true", "v: true\n" },
                { "false", "v: false\n" },
                { "0", "v: 0\n" },
                { "-5", "v: -5\n" },
                { "9223372036854775807", "v: 9223372036854775807\n" },
                { "-9223372036854775808", "v: -9223372036854775808\n" },
                { "18446744073709551615", "v: 18446744073709551615\n" },
                { "1.0", "v: 1.0\n" },
                { "1.5", "v: 1.5\n" },
                { "-2.0", "v: -2.0\n" },
                { "0.1", "v: 0.1\n" },
                { "100000.0", "v: 100000.0\n" },
                { "1e15", "v: 1000000000000000.0\n" },
                { "1e16", "v: 1.0e+16\n" },
                { "1.5e300", "v: 1.5e+300\n" },
                { "0.0001", "v: 0.0001\n" },
                { "0.00001", "v: 1.0e-05\n" },
                { "1.5e-7", "v: 1.5e-07\n" },
                { "123456.789", "v: 123456.789\n" },
                { "0.30000000000000004", "v: 0.30000000000000004\n" },
                { "1.7976931348623157e308", "v: 1.7976931348623157e+308\n" },
                { "5e-324", "v: 5.0e-324\n" },
                { "2.2250738585072014e-308", "v: 2.2250738585072014e-308\n" },
                { "0.0", "v: 0.0\n" },
                { "\"Very High\"", "v: Very High\n" },
                { "\"iris.csv\"", "v: iris.csv\n" },
                { "\"1.29.0\"", "v: 1.29.0\n" },
                { "\"s3://b/30d\"", "v: s3://b/30d\n" },
                { "\"-x\"", "v: -x\n" },
                { "\"a-b c\"", "v: a-b c\n" },
                { "\"café ☕\"", "v: café ☕\n" },
                { "\"true\"", "v: 'true'\n" },
                { "\"True\"", "v: 'True'\n" },
                { "\"123\"", "v: '123'\n" },
                { "\"1.5\"", "v: '1.5'\n" },
                { "\"null\"", "v: 'null'\n" },
                { "\"\"", "v: ''\n" },
                { "\"~\"", "v: '~'\n" },
                { "\"0x1F\"", "v: '0x1F'\n" },
                { "\"0660\"", "v: '0660'\n" },
                { "\"-\"", "v: '-'\n" },
                { "\"yes\"", "v: 'yes'\n" },
                { "\"No\"", "v: 'No'\n" },
                { "\"ON\"", "v: 'ON'\n" },
                { "\"y\"", "v: 'y'\n" },
                { "\"1_000\"", "v: '1_000'\n" },
                { "\"12:30\"", "v: '12:30'\n" },
                { "\"2024-01-01\"", "v: '2024-01-01'\n" },
                { "\"0b101\"", "v: '0b101'\n" },
                { "\"1e5\"", "v: '1e5'\n" },
                { "\".inf\"", "v: '.inf'\n" },
                { "\"-.INF\"", "v: '-.INF'\n" },
                { "\".NaN\"", "v: '.NaN'\n" },
                { "\"<<\"", "v: '<<'\n" },
                { "\"=\"", "v: '='\n" },
                { "\"- x\"", "v: '- x'\n" },
                { "\"# c\"", "v: '# c'\n" },
                { "\"a: b\"", "v: 'a: b'\n" },
                { "\"a #b\"", "v: 'a #b'\n" },
                { "\" lead\"", "v: ' lead'\n" },
                { "\"trail \"", "v: 'trail '\n" },
                { "\"[x]\"", "v: '[x]'\n" },
                { "\"{x}\"", "v: '{x}'\n" },
                { "\"*a\"", "v: '*a'\n" },
                { "\"&a\"", "v: '&a'\n" },
                { "\"!t\"", "v: '!t'\n" },
                { "\"%x\"", "v: '%x'\n" },
                { "\"@x\"", "v: '@x'\n" },
                { "\"`x\"", "v: '`x'\n" },
                { "\"|x\"", "v: '|x'\n" },
                { "\">x\"", "v: '>x'\n" },
                { "\"'\"", "v: ''''\n" },
                { "\"\\\"\"", "v: '\"'\n" },
                { "\"---\"", "v: '---'\n" },
                { "\"...\"", "v: '...'\n" },
                { "\"a\\tb\"", "v: \"a\\tb\"\n" },
                { "\"x\\u0000y\"", "v: \"x\\0y\"\n" },
                { "\"\\u0001\"", "v: \"\\x01\"\n" },
                { "\"😀\"", "v: \"\\U0001F600\"\n" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_object *v = json_tokener_parse(cases[i].json);

                ck_assert_msg(v || streq(cases[i].json, "null"), "bad fixture %s", cases[i].json);
                assert_emits_value(v, cases[i].yaml);
        }
}
END_TEST

/* Multi-line and awkward strings come back intact as values, keys and sequence items. */
START_TEST(test_emit_multiline) {
        static const EmitCase exact[] = {
                { "\"a\\nb\"", "v: |-\n  a\n  b\n" },
                { "\"a\\nb\\n\"", "v: |\n  a\n  b\n" },
                { "\"123\\n\"", "v: |\n  123\n" },
                { "\"a \\nb\"", "v: \"a \\nb\"\n" },
                /* U+2028 and U+2029 escaped: YAML 1.2 readers do not take them for breaks. */
                { "\"a\\u2028b\"", "v: \"a\\Lb\"\n" },
                { "\"x\\u2029\\n\"", "v: \"x\\P\\n\"\n" },
        };
        /* Strings whose exact form is libyaml's business: they must only read back. */
        static const char *const tricky[] = {
                "\n", "\n\n", "a\n\n", "\na", "\n\na\n", " a\nb", "a\n b", "a\n\n\nb", "\ta\nb",
                "a\r\nb", "a\rb", "a\xe2\x80\xa8" "b", "a\xe2\x80\xa9", "\xe2\x80\xa8", "a\xc2\x85" "b",
                "#\n#", "- a\n- b", "---\n...", "key: v\nk2: v", "\xef\xbb\xbf" "bom", "a\n\t", "a\n ",
                " ", "  \n  ", "x\n---\ny", "x\n...\ny", "'\n\"", "a\n\xf0\x9f\x98\x80",
        };

        for (size_t i = 0; i < ELEMENTSOF(exact); i++)
                assert_emits_value(json_tokener_parse(exact[i].json), exact[i].yaml);

        for (size_t i = 0; i < ELEMENTSOF(tricky); i++) {
                _cleanup_(json_object_putp) json_object *docs = json_object_new_array();
                _cleanup_free_ char *text = NULL;
                json_object *doc = json_object_new_object(), *seq = json_object_new_array();

                /* As a value, as a key, as a sequence item, and as a value after the key. */
                ck_assert_int_eq(json_object_object_add(doc, "v", json_object_new_string(tricky[i])), 0);
                ck_assert_int_eq(json_object_object_add(doc, tricky[i], json_object_new_int(1)), 0);
                ck_assert_int_eq(json_object_array_add(seq, json_object_new_string(tricky[i])), 0);
                ck_assert_int_eq(json_object_array_add(seq, json_object_new_string("after")), 0);
                ck_assert_int_eq(json_object_object_add(doc, "seq", seq), 0);
                ck_assert_int_eq(json_object_object_add(doc, "last", json_object_new_string(tricky[i])), 0);
                ck_assert_int_eq(json_object_array_add(docs, doc), 0);
                ck_assert_int_eq(json_object_array_add(docs, json_object_get(doc)), 0);

                text = assert_round_trip(docs);
        }
}
END_TEST

/* Key order, "---" placement, empty documents and an empty stream. */
START_TEST(test_emit_structure) {
        _cleanup_(json_object_putp) json_object *docs = NULL, *empty = NULL, *one = NULL;
        _cleanup_free_ char *text = NULL, *t2 = NULL;
        size_t len = 1;

        /* Keys in insertion order, "---" before the second document only. */
        docs = json_tokener_parse("[{\"z\": 1, \"a\": 2, \"m\": {\"y\": [1, {\"q\": 2, \"p\": 3}]}},"
                                  " {\"b\": []}, {}]");
        ck_assert_ptr_nonnull(docs);
        text = assert_round_trip(docs);
        ck_assert_str_eq(text,
                         "z: 1\n"
                         "a: 2\n"
                         "m:\n"
                         "  'y':\n" /* a boolean to YAML 1.1 readers */
                         "  - 1\n"
                         "  - q: 2\n"
                         "    p: 3\n"
                         "---\n"
                         "b: []\n"
                         "--- {}\n");

        /* No documents: an empty text, which parses back to no documents. */
        empty = json_object_new_array();
        ck_assert_int_eq(resource_yaml_emit(empty, &t2, &len), 0);
        ck_assert_str_eq(t2, "");
        ck_assert_uint_eq(len, 0);
        t2 = mfree(t2);

        /* ret_len is optional. */
        one = json_tokener_parse("[{\"a\": {}}]");
        ck_assert_int_eq(resource_yaml_emit(one, &t2, NULL), 0);
        ck_assert_str_eq(t2, "a: {}\n");
}
END_TEST

/* Long strings are not folded; keys longer than 128 bytes still round-trip. */
START_TEST(test_emit_long_lines) {
        _cleanup_(json_object_putp) json_object *docs = NULL;
        _cleanup_free_ char *text = NULL, *long_value = NULL, *long_key = NULL, *line = NULL;
        json_object *doc;

        long_value = malloc(1001);
        long_key = malloc(301);
        ck_assert_ptr_nonnull(long_value);
        ck_assert_ptr_nonnull(long_key);
        for (size_t i = 0; i < 1000; i++)
                long_value[i] = i % 7 == 6 ? ' ' : (char) ('a' + i % 26);
        long_value[1000] = '\0';
        memset(long_key, 'k', 300);
        long_key[300] = '\0';

        docs = json_object_new_array();
        doc = json_object_new_object();
        ck_assert_int_eq(json_object_object_add(doc, "long", json_object_new_string(long_value)), 0);
        ck_assert_int_eq(json_object_object_add(doc, long_key, json_object_new_string("v")), 0);
        ck_assert_int_eq(json_object_array_add(docs, doc), 0);

        /* No folding, whatever the width; a key longer than 128 is written "? key". */
        text = assert_round_trip(docs);
        ck_assert_int_ge(asprintf(&line, "long: %s\n", long_value), 0);
        ck_assert_ptr_eq(strstr(text, line), text);
        ck_assert_ptr_nonnull(strstr(text, long_key));
}
END_TEST

/* emit(parse(text)) is a fixed point for documents of every shape. */
START_TEST(test_fixed_points) {
        static const char *const texts[] = {
                /* Nested sequences of mappings, sequences of sequences, empty collections. */
                "a:\n"
                "- b: 1\n"
                "  c:\n"
                "  - d: [x, y]\n"
                "    e: {}\n"
                "  - []\n"
                "  - - 1\n"
                "    - - 2\n"
                "      - {f: g}\n"
                "- []\n"
                "- {}\n"
                "h: {i: {j: [k, {l: m}]}}\n",
                /* Flow style in, block style out. */
                "{kind: AvatarSchema, metadata: {name: schema}, spec: {tables: [{name: t, data: {volume: input, file: t.csv}, "
                "columns: [{field: id, type: int, primary_key: true}, {field: x, type: float}]}]}}\n",
                /* Scalars of every kind, some needing quotes. */
                "s: 'true'\nn: 1\nf: 1.0\ng: 2.50\nb: false\nz: ~\ne: ''\nq: \"0x1F\"\nv: Very High\nm: |\n  l1\n  l2\n",
                /* Several documents, empty ones among them. */
                "---\na: 1\n---\n---\nb: [1, 2]\n...\n---\nc: {d: e}\n",
                /* Keys that need quotes, unicode, long keys. */
                "'1': a\n'true': b\n'': c\n'yes': d\nclé: é\n? |\n  multi\n  line key\n: v\n",
                /* A column list the way the client writes it. */
                "kind: AvatarSchema\nmetadata:\n  name: schema\nspec:\n  tables:\n  - name: patients\n"
                "    data:\n      volume: input\n      file: patients.parquet\n    individual_level: true\n"
                "    columns:\n    - field: patient_id\n      type: int\n      identifier: true\n"
                "      primary_key: true\n    - field: t\n      type: datetime_tz\n      time_series_time: true\n"
                "    links:\n    - field: patient_id\n      to:\n        table: visits\n        field: patient_id\n"
                "      method: linear_sum_assignment\n",
                /* Parameters with numbers of every shape. */
                "kind: AvatarParameters\nmetadata:\n  name: standard\nspec:\n  schema: schema\n"
                "  avatarization:\n    iris:\n      k: 20\n      ncp: 5\n      use_categorical_reduction: false\n"
                "      column_weights:\n        sepal_length: 1.5\n        petal_width: 2\n"
                "      imputation:\n        method: knn\n        k: 3\n        training_fraction: 0.3\n"
                "  avatarization_dp:\n    iris:\n      epsilon: 1e-3\n      preprocess_budget_ratio: .25\n"
                "  seed: 42\n  results:\n    volume: results\n    path: standard\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                assert_fixed_point(texts[i]);
}
END_TEST

/* [] and {} read as empty JSON containers and are written in flow style. */
START_TEST(test_empty_collections) {
        _cleanup_(json_object_putp) json_object *docs = parse_ok("a: []\nb: {}\nc:\n- []\n- {}\n- [[]]\n");
        _cleanup_free_ char *text = NULL;

        ck_assert_uint_eq(json_object_array_length(at(doc_at(docs, 0), "a")), 0);
        ck_assert_int_eq(json_object_object_length(at(doc_at(docs, 0), "b")), 0);
        text = assert_round_trip(docs);
        ck_assert_str_eq(text, "a: []\nb: {}\nc:\n- []\n- {}\n- - []\n");
}
END_TEST

/* Empty documents are skipped wherever they appear; an empty mapping is kept. */
START_TEST(test_empty_documents) {
        static const char *const empty[] = {
                "", "\n", "# only a comment\n", "---\n", "---\n---\n", "--- ~\n", "--- null\n",
                "---\n...\n", "--- !!null\n", "\xef\xbb\xbf", "%YAML 1.2\n---\n",
        };
        _cleanup_(json_object_putp) json_object *docs = NULL, *none = NULL;

        for (size_t i = 0; i < ELEMENTSOF(empty); i++) {
                _cleanup_(json_object_putp) json_object *d = parse_ok(empty[i]);

                ck_assert_uint_eq(json_object_array_length(d), 0);
        }

        ck_assert_int_eq(resource_yaml_parse(NULL, 0, &none, NULL), 0);
        ck_assert_uint_eq(json_object_array_length(none), 0);

        /* Empty documents between others are skipped; an empty mapping is a document. */
        docs = parse_ok("---\n---\na: 1\n---\n--- {}\n---\n");
        ck_assert_uint_eq(json_object_array_length(docs), 2);
        ck_assert_int_eq(json_object_object_length(doc_at(docs, 1)), 0);
}
END_TEST

/* Invalid YAML is refused with libyaml's description and the line. */
START_TEST(test_error_syntax) {
        assert_parse_error("a: b: c\n", -EINVAL,
                           "line 1: mapping values are not allowed in this context");
        assert_parse_error("a: 1\nb: [1, 2\n", -EINVAL,
                           "line 3: did not find expected ',' or ']' (while parsing a flow sequence at line 2)");
        assert_parse_error("a: 1\nb:\n  c: 1\n d: 2\n", -EINVAL,
                           "line 4: did not find expected key (while parsing a block mapping at line 1)");
        assert_parse_error("a: 'unterminated\n", -EINVAL,
                           "line 2: found unexpected end of stream (while scanning a quoted scalar at line 1)");
        assert_parse_error("a: 1\n\tb: 2\n", -EINVAL, NULL);
        assert_parse_error("a: 1\nb: @x\n", -EINVAL,
                           "line 2: found character that cannot start any token (while scanning for the next token at line 2)");
        assert_parse_error("a: \"\\q\"\n", -EINVAL,
                           "line 1: found unknown escape character (while parsing a quoted scalar at line 1)");
        /* Reader errors are reported by byte offset; the line is counted from it. */
        assert_parse_error("a: 1\nb: \xff\n", -EINVAL, "line 2: invalid leading UTF-8 octet");
        assert_parse_error("a: 1\nb: \xed\xa0\x80\n", -EINVAL, "line 2: invalid Unicode character");
        assert_parse_error_len("a: 1\nb: x\0y\n", 11, -EINVAL, "line 2: control characters are not allowed");
        assert_parse_error("a: \x01\n", -EINVAL, "line 1: control characters are not allowed");
}
END_TEST

/* A key repeated in one mapping is refused with its name and line. */
START_TEST(test_error_duplicate_key) {
        assert_parse_error("a: 1\nb: 2\na: 3\n", -EINVAL, "line 3: duplicate key 'a'");
        assert_parse_error("kind: X\nspec:\n  tables: []\n  schema: s\n  tables: [x]\n", -EINVAL,
                           "line 5: duplicate key 'tables'");
        assert_parse_error("a: {b: 1, 'b': 2}\n", -EINVAL, "line 1: duplicate key 'b'");
        assert_parse_error("a: ~\na: 1\n", -EINVAL, "line 2: duplicate key 'a'");
        assert_parse_error("- a: 1\n  a: 2\n", -EINVAL, "line 1: a resource document must be a mapping");
        assert_parse_error("x:\n- a: 1\n  a: 2\n", -EINVAL, "line 3: duplicate key 'a'");
        /* Keys are quoted shortened and on one line. */
        assert_parse_error("\"x\\ny\": 1\n\"x\\ny\": 2\n", -EINVAL, "line 2: duplicate key 'x?y'");
        assert_parse_error("kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: 1\n"
                           "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: 2\n",
                           -EINVAL,
                           "line 2: duplicate key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'");
        /* The same key in different mappings or documents is fine. */
        {
                _cleanup_(json_object_putp) json_object *d = parse_ok("a: {a: 1}\nb: {a: 2}\n---\na: 3\n");

                ck_assert_uint_eq(json_object_array_length(d), 2);
        }
}
END_TEST

/* Anchors and aliases are refused wherever they appear. */
START_TEST(test_error_anchors_aliases) {
        assert_parse_error("a: &x 1\nb: *x\n", -EINVAL,
                           "line 1: anchors and aliases are not supported (&x)");
        assert_parse_error("a: 1\nb: *x\n", -EINVAL,
                           "line 2: anchors and aliases are not supported (*x)");
        assert_parse_error("a: &m\n  b: 1\n", -EINVAL,
                           "line 1: anchors and aliases are not supported (&m)");
        assert_parse_error("--- &root\na: 1\n", -EINVAL,
                           "line 1: anchors and aliases are not supported (&root)");
        assert_parse_error("a: &s [1, 2]\n", -EINVAL,
                           "line 1: anchors and aliases are not supported (&s)");
        assert_parse_error("&k a: 1\n", -EINVAL,
                           "line 1: anchors and aliases are not supported (&k)");
        /* The billion laughs stop at the first anchor. */
        assert_parse_error("a: &a [lol, lol, lol]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\n", -EINVAL,
                           "line 1: anchors and aliases are not supported (&a)");
        assert_parse_error("base: {x: 1}\nderived:\n  <<: *base\n", -EINVAL,
                           "line 3: anchors and aliases are not supported (*base)");
}
END_TEST

/* "a: " followed by n nested flow sequences, e.g. n = 2: "a: [[x]]". */
static char *nested_sequences(unsigned n) {
        char *s = malloc(4 + 2 * n + 3);
        size_t k = 0;

        ck_assert_ptr_nonnull(s);
        memcpy(s, "a: ", 3);
        k = 3;
        for (unsigned i = 0; i < n; i++)
                s[k++] = '[';
        s[k++] = 'x';
        for (unsigned i = 0; i < n; i++)
                s[k++] = ']';
        s[k++] = '\n';
        s[k] = '\0';
        return s;
}

/* n block mappings nested in each other: "k:\n  k:\n    ... v". */
static char *nested_mappings(unsigned n) {
        size_t cap = (size_t) n * (2 * n + 4) + 16, k = 0;
        char *s = malloc(cap);

        ck_assert_ptr_nonnull(s);
        for (unsigned i = 0; i < n; i++) {
                memset(s + k, ' ', 2 * i);
                k += 2 * i;
                memcpy(s + k, i + 1 < n ? "k:\n" : "k: v\n", i + 1 < n ? 3 : 5);
                k += i + 1 < n ? 3 : 5;
        }
        s[k] = '\0';
        return s;
}

/* Nesting is capped at RESOURCE_YAML_MAX_DEPTH levels, the root mapping included. */
START_TEST(test_limit_depth) {
        _cleanup_free_ char *ok_flow = nested_sequences(RESOURCE_YAML_MAX_DEPTH - 1);
        _cleanup_free_ char *deep_flow = nested_sequences(RESOURCE_YAML_MAX_DEPTH);
        _cleanup_free_ char *ok_block = nested_mappings(RESOURCE_YAML_MAX_DEPTH);
        _cleanup_free_ char *deep_block = nested_mappings(RESOURCE_YAML_MAX_DEPTH + 1);
        _cleanup_free_ char *very_deep = nested_sequences(100000);
        _cleanup_free_ char *message = NULL;
        _cleanup_(json_object_putp) json_object *a = NULL, *b = NULL, *too_deep = NULL;
        _cleanup_free_ char *text = NULL;
        json_object *inner;

        /* The root mapping is level 1: 31 sequences inside it make 32 levels. */
        a = parse_ok(ok_flow);
        b = parse_ok(ok_block);
        free(assert_round_trip(a));
        free(assert_round_trip(b));

        ck_assert_int_ge(asprintf(&message, "line 1: nested deeper than %u levels",
                                  (unsigned) RESOURCE_YAML_MAX_DEPTH), 0);
        assert_parse_error(deep_flow, -E2BIG, message);
        assert_parse_error(very_deep, -E2BIG, message);
        message = mfree(message);
        ck_assert_int_ge(asprintf(&message, "line %u: nested deeper than %u levels",
                                  (unsigned) RESOURCE_YAML_MAX_DEPTH + 1,
                                  (unsigned) RESOURCE_YAML_MAX_DEPTH), 0);
        assert_parse_error(deep_block, -E2BIG, message);

        /* The emitter refuses what the parser would. */
        too_deep = json_tokener_parse("[{\"a\": []}]");
        inner = at(too_deep, "0.a");
        for (unsigned i = 0; i < RESOURCE_YAML_MAX_DEPTH - 1; i++) {
                json_object *next = json_object_new_array();

                ck_assert_int_eq(json_object_array_add(inner, next), 0);
                inner = next;
        }
        ck_assert_int_eq(resource_yaml_emit(too_deep, &text, NULL), -E2BIG);
        ck_assert_ptr_null(text);
}
END_TEST

/* At most RESOURCE_YAML_MAX_DOCUMENTS documents, empty ones not counted. */
START_TEST(test_limit_documents) {
        _cleanup_free_ char *ok = NULL, *over = NULL, *with_empty = NULL, *message = NULL;
        _cleanup_(json_object_putp) json_object *docs = NULL, *more = NULL;
        _cleanup_free_ char *text = NULL;
        size_t n = RESOURCE_YAML_MAX_DOCUMENTS;

        /* n documents "i: 0\n---\n..." */
        ok = calloc(n + 1, 32);
        over = calloc(n + 2, 32);
        with_empty = calloc(n + 1, 64);
        ck_assert_ptr_nonnull(ok);
        ck_assert_ptr_nonnull(over);
        ck_assert_ptr_nonnull(with_empty);
        for (size_t i = 0; i < n; i++) {
                char line[32];

                (void) snprintf(line, sizeof line, "%si: %zu\n", i ? "---\n" : "", i);
                strcat(ok, line);
                strcat(over, line);
                strcat(with_empty, line);
                strcat(with_empty, "---\n# empty\n");
        }
        strcat(over, "---\ni: last\n");

        docs = parse_ok(ok);
        ck_assert_uint_eq(json_object_array_length(docs), n);
        text = assert_round_trip(docs);
        json_object_put(parse_ok(with_empty));

        ck_assert_int_ge(asprintf(&message, "line %zu: more than %zu documents", 2 * n + 1, n), 0);
        assert_parse_error(over, -E2BIG, message);

        /* The emitter refuses one document more too. */
        more = json_object_get(docs);
        ck_assert_int_eq(json_object_array_add(more, json_object_new_object()), 0);
        text = mfree(text);
        ck_assert_int_eq(resource_yaml_emit(more, &text, NULL), -E2BIG);
}
END_TEST

/* At most RESOURCE_YAML_MAX_NODES nodes, keys included, in both directions. */
START_TEST(test_limit_nodes) {
        /* Root mapping, key and sequence are 3 nodes; items fill up to the limit. */
        size_t items = RESOURCE_YAML_MAX_NODES - 3;
        _cleanup_free_ char *ok = malloc(2 * items + 8), *over = malloc(2 * items + 10);
        _cleanup_free_ char *message = NULL, *text = NULL;
        _cleanup_(json_object_putp) json_object *docs = NULL;
        json_object *seq;
        size_t k;

        ck_assert_ptr_nonnull(ok);
        ck_assert_ptr_nonnull(over);
        memcpy(ok, "a: [", 4);
        k = 4;
        for (size_t i = 0; i < items; i++) {
                ok[k++] = '1';
                ok[k++] = ',';
        }
        ok[k - 1] = ']';
        ok[k++] = '\n';
        ok[k] = '\0';
        memcpy(over, ok, k - 2);
        memcpy(over + k - 2, ",1]\n", 5);

        docs = parse_ok(ok);
        ck_assert_uint_eq(json_object_array_length(at(docs, "0.a")), items);
        text = emit_ok(docs);
        json_object_put(parse_ok(text));

        ck_assert_int_ge(asprintf(&message, "line 1: more than %u nodes",
                                  (unsigned) RESOURCE_YAML_MAX_NODES), 0);
        assert_parse_error(over, -E2BIG, message);

        /* Keys count too, in the emitter as in the parser. */
        seq = at(docs, "0.a");
        ck_assert_int_eq(json_object_array_add(seq, json_object_new_int(1)), 0);
        text = mfree(text);
        ck_assert_int_eq(resource_yaml_emit(docs, &text, NULL), -E2BIG);
}
END_TEST

/* Text over RESOURCE_YAML_MAX_BYTES is refused before parsing, and never emitted. */
START_TEST(test_limit_size) {
        size_t len = RESOURCE_YAML_MAX_BYTES + 1;
        _cleanup_free_ char *big = malloc(len + 1), *message = NULL, *text = NULL;
        _cleanup_(json_object_putp) json_object *docs = NULL;

        ck_assert_ptr_nonnull(big);
        memset(big, ' ', len);
        memcpy(big, "a: b\n", 5);
        big[len] = '\0';

        ck_assert_int_ge(asprintf(&message, "the text is %zu bytes, more than the %u allowed", len,
                                  (unsigned) RESOURCE_YAML_MAX_BYTES), 0);
        assert_parse_error_len(big, len, -E2BIG, message);
        /* Exactly at the limit is fine (trailing spaces and all). */
        docs = parse_len_ok(big, len - 1);
        json_object_put(docs);

        /* A value that makes the stream longer than the limit cannot be emitted: "v: " and
         * the final newline are 4 bytes more, so a value of the limit less 2 is too long. */
        memset(big, 'x', len);
        big[len - 3] = '\0';
        docs = docs_of_value(json_object_new_string(big));
        ck_assert_int_eq(resource_yaml_emit(docs, &text, NULL), -E2BIG);
        ck_assert_ptr_null(text);
        json_object_put(docs);
        big[len - 3] = 'x';
        big[len] = '\0';
        docs = docs_of_value(json_object_new_string(big));
        ck_assert_int_eq(resource_yaml_emit(docs, &text, NULL), -E2BIG);
        ck_assert_ptr_null(text);
        json_object_put(docs);
        big[len - 5] = '\0';
        docs = docs_of_value(json_object_new_string(big));
        ck_assert_int_eq(resource_yaml_emit(docs, &text, NULL), 0);
        ck_assert_uint_eq(strlen(text), RESOURCE_YAML_MAX_BYTES);
}
END_TEST

/* A document that is a sequence or a non-null scalar is refused. */
START_TEST(test_error_not_a_mapping) {
        assert_parse_error("- a\n- b\n", -EINVAL, "line 1: a resource document must be a mapping");
        assert_parse_error("just a string\n", -EINVAL, "line 1: a resource document must be a mapping");
        assert_parse_error("a: 1\n---\n42\n", -EINVAL, "line 3: a resource document must be a mapping");
        assert_parse_error("a: 1\n--- []\n", -EINVAL, "line 2: a resource document must be a mapping");
        assert_parse_error("--- ''\n", -EINVAL, "line 1: a resource document must be a mapping");
        assert_parse_error("--- !!str\n", -EINVAL, "line 1: a resource document must be a mapping");
        assert_parse_error("--- |\n  text\n", -EINVAL, "line 1: a resource document must be a mapping");
}
END_TEST

/* Keys must be scalars resolving to strings without NUL. */
START_TEST(test_error_keys) {
        assert_parse_error("? [a, b]\n: c\n", -EINVAL, "line 1: a key must be a scalar, not a sequence");
        assert_parse_error("{a: 1}: x\n", -EINVAL, "line 1: a key must be a scalar, not a mapping");
        assert_parse_error("a:\n  ? {b: c}\n  : d\n", -EINVAL, "line 2: a key must be a scalar, not a mapping");
        assert_parse_error("1: a\n", -EINVAL, "line 1: key '1' is not a string");
        assert_parse_error("a:\n  1.5: x\n", -EINVAL, "line 2: key '1.5' is not a string");
        assert_parse_error("true: x\n", -EINVAL, "line 1: key 'true' is not a string");
        assert_parse_error("null: x\n", -EINVAL, "line 1: key 'null' is not a string");
        assert_parse_error("~: x\n", -EINVAL, "line 1: key '~' is not a string");
        assert_parse_error("!!null '': x\n", -EINVAL, "line 1: key '' is not a string");
        assert_parse_error("!!int 5: x\n", -EINVAL, "line 1: key '5' is not a string");
        assert_parse_error("\"a\\0b\": x\n", -EINVAL, "line 1: key 'a?b' holds a NUL character");
        /* Quoted or tagged keys are strings, whatever they look like. */
        {
                _cleanup_(json_object_putp) json_object *d =
                        parse_ok("'1': a\n\"true\": b\n!!str null: c\n'': d\nyes: e\n");

                json_object *v = NULL;

                ck_assert(json_object_object_get_ex(doc_at(d, 0), "1", &v));
                ck_assert_str_eq(json_object_get_string(v), "a");
                assert_str_at(doc_at(d, 0), "true", "b");
                assert_str_at(doc_at(d, 0), "null", "c");
                assert_str_at(doc_at(d, 0), "yes", "e");
                ck_assert_ptr_nonnull(strstr(json_object_to_json_string(d), "\"\": \"d\""));
        }
}
END_TEST

/* Unknown tags, values not of their tag's form, .inf/.nan and out-of-range numbers. */
START_TEST(test_error_tags_and_numbers) {
        assert_parse_error("a: !!binary aGVsbG8=\n", -EINVAL, "line 1: unsupported tag '!!binary'");
        assert_parse_error("a: !!timestamp 2001-12-14\n", -EINVAL, "line 1: unsupported tag '!!timestamp'");
        assert_parse_error("a: !foo x\n", -EINVAL, "line 1: unsupported tag '!foo'");
        assert_parse_error("a: !!set {x}\n", -EINVAL, "line 1: unsupported tag '!!set'");
        assert_parse_error("a: !!omap [x: 1]\n", -EINVAL, "line 1: unsupported tag '!!omap'");
        assert_parse_error("a: !!map [x]\n", -EINVAL, "line 1: unsupported tag '!!map'");
        assert_parse_error("a: !!str [x]\n", -EINVAL, "line 1: unsupported tag '!!str'");
        assert_parse_error("--- !!python/object:x\na: 1\n", -EINVAL,
                           "line 1: unsupported tag '!!python/object:x'");
        assert_parse_error("a: !!int abc\n", -EINVAL, "line 1: 'abc' is not a valid !!int");
        assert_parse_error("a: !!int 1.5\n", -EINVAL, "line 1: '1.5' is not a valid !!int");
        assert_parse_error("a: !!bool yes\n", -EINVAL, "line 1: 'yes' is not a valid !!bool");
        assert_parse_error("a: !!null 0\n", -EINVAL, "line 1: '0' is not a valid !!null");
        assert_parse_error("a: !!float 0x10\n", -EINVAL, "line 1: '0x10' is not a valid !!float");
        assert_parse_error("a: !!float .inf\n", -EINVAL,
                           "line 1: .inf cannot be represented (JSON has no infinity or NaN)");
        assert_parse_error("a: .inf\n", -EINVAL,
                           "line 1: .inf cannot be represented (JSON has no infinity or NaN)");
        assert_parse_error("a: -.Inf\n", -EINVAL,
                           "line 1: -.Inf cannot be represented (JSON has no infinity or NaN)");
        assert_parse_error("b: 1\na: .NAN\n", -EINVAL,
                           "line 2: .NAN cannot be represented (JSON has no infinity or NaN)");
        assert_parse_error("a: 18446744073709551616\n", -EINVAL,
                           "line 1: integer out of range: 18446744073709551616");
        assert_parse_error("a: -9223372036854775809\n", -EINVAL,
                           "line 1: integer out of range: -9223372036854775809");
        assert_parse_error("a: 0x10000000000000000\n", -EINVAL,
                           "line 1: integer out of range: 0x10000000000000000");
        assert_parse_error("a: 0o2000000000000000000000\n", -EINVAL,
                           "line 1: integer out of range: 0o2000000000000000000000");
        assert_parse_error("a: 1e400\n", -EINVAL, "line 1: float out of range: 1e400");
        assert_parse_error("a: -1.8e308\n", -EINVAL, "line 1: float out of range: -1.8e308");
}
END_TEST

/* What emit refuses: not an array of objects, NaN, infinity, invalid UTF-8. */
START_TEST(test_emit_invalid) {
        _cleanup_(json_object_putp) json_object *obj = NULL, *strs = NULL, *nan = NULL, *inf = NULL;
        _cleanup_(json_object_putp) json_object *bad_utf8 = NULL, *bad_key = NULL, *nested = NULL;
        char *text = NULL;

        ck_assert_int_eq(resource_yaml_emit(NULL, &text, NULL), -EINVAL);
        obj = json_object_new_object();
        ck_assert_int_eq(resource_yaml_emit(obj, &text, NULL), -EINVAL);
        strs = json_tokener_parse("[{\"a\": 1}, \"b\"]");
        ck_assert_int_eq(resource_yaml_emit(strs, &text, NULL), -EINVAL);
        nested = json_tokener_parse("[{\"a\": 1}, null]");
        ck_assert_int_eq(resource_yaml_emit(nested, &text, NULL), -EINVAL);

        nan = docs_of_value(json_object_new_double(NAN));
        ck_assert_int_eq(resource_yaml_emit(nan, &text, NULL), -EINVAL);
        inf = docs_of_value(json_object_new_double(-INFINITY));
        ck_assert_int_eq(resource_yaml_emit(inf, &text, NULL), -EINVAL);

        bad_utf8 = docs_of_value(json_object_new_string("caf\xe9"));
        ck_assert_int_eq(resource_yaml_emit(bad_utf8, &text, NULL), -EINVAL);
        bad_key = json_object_new_array();
        ck_assert_int_eq(json_object_array_add(bad_key, json_object_new_object()), 0);
        ck_assert_int_eq(json_object_object_add(json_object_array_get_idx(bad_key, 0), "\xed\xa0\x80",
                                                json_object_new_int(1)), 0);
        ck_assert_int_eq(resource_yaml_emit(bad_key, &text, NULL), -EINVAL);
        ck_assert_ptr_null(text);
}
END_TEST

/* Numbers read and write with a '.' whatever the process LC_NUMERIC. */
START_TEST(test_numbers_any_locale) {
        static const char *const locales[] = { "de_DE.UTF-8", "fr_FR.UTF-8", "de_DE", "fr_FR", "ru_RU.UTF-8" };
        _cleanup_(json_object_putp) json_object *docs = NULL;
        _cleanup_free_ char *text = NULL;
        const char *set = NULL;

        for (size_t i = 0; i < ELEMENTSOF(locales) && !set; i++)
                set = setlocale(LC_NUMERIC, locales[i]);
        if (!set)
                return; /* no locale with a decimal comma installed: nothing to prove */

        ck_assert_str_eq(localeconv()->decimal_point, ",");
        docs = parse_ok("a: 1.5\nb: 2.5e3\n");
        ck_assert(fabs(json_object_get_double(at(docs, "0.a")) - 1.5) < 1e-12);
        text = emit_ok(docs);
        ck_assert_str_eq(text, "a: 1.5\nb: 2500.0\n");
        /* The caller's locale is back. */
        ck_assert_str_eq(localeconv()->decimal_point, ",");
        (void) setlocale(LC_NUMERIC, "C");
}
END_TEST

/* xorshift64*: a small deterministic generator for the mutation run. */
static uint64_t next_random(uint64_t *state) {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        return *state * UINT64_C(2685821657736338717);
}

/* Bytes that make YAML mutations interesting. */
static const char interesting[] = ":-?[]{},&*!|>'\"#%@` \n\t~.0123456789exy\\";

/* Applies 1 to 8 random edits (bit flip, byte replace, insert, delete, line duplicate). */
static size_t mutate(char *buf, size_t len, size_t cap, uint64_t *rng) {
        unsigned edits = 1 + (unsigned) (next_random(rng) % 8);

        for (unsigned e = 0; e < edits; e++) {
                size_t pos = len ? (size_t) (next_random(rng) % len) : 0;

                switch (next_random(rng) % 5) {
                case 0:
                        if (len)
                                buf[pos] ^= (char) (1u << (next_random(rng) % 8));
                        break;
                case 1:
                        if (len)
                                buf[pos] = interesting[next_random(rng) % (sizeof interesting - 1)];
                        break;
                case 2:
                        if (len + 1 < cap) {
                                memmove(buf + pos + 1, buf + pos, len - pos);
                                buf[pos] = interesting[next_random(rng) % (sizeof interesting - 1)];
                                len++;
                        }
                        break;
                case 3:
                        if (len) {
                                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                                len--;
                        }
                        break;
                case 4: {
                        /* Duplicate the line holding pos (duplicate keys, deeper nesting). */
                        size_t start = pos, end = pos;

                        while (start > 0 && buf[start - 1] != '\n')
                                start--;
                        while (end < len && buf[end] != '\n')
                                end++;
                        if (end < len)
                                end++;
                        if (len + (end - start) < cap) {
                                memmove(buf + end + (end - start), buf + end, len - end);
                                memmove(buf + end, buf + start, end - start);
                                len += end - start;
                        }
                        break;
                }
                }
        }
        return len;
}

/* Seeded random edits of the §6 example: refused with a message, or round-tripping. */
START_TEST(test_mutations) {
        size_t cap = 2 * sizeof example, accepted = 0;
        _cleanup_free_ char *buf = malloc(cap);
        uint64_t rng = UINT64_C(0x5eed5eed5eed5eed);

        ck_assert_ptr_nonnull(buf);
        for (unsigned iter = 0; iter < 3000; iter++) {
                _cleanup_(json_object_putp) json_object *docs = NULL, *back = NULL;
                _cleanup_free_ char *error = NULL, *text = NULL, *again = NULL;
                size_t len = sizeof example - 1, text_len = 0;
                int r;

                memcpy(buf, example, len);
                len = mutate(buf, len, cap, &rng);

                r = resource_yaml_parse(buf, len, &docs, &error);
                if (r < 0) {
                        ck_assert_msg(r == -EINVAL || r == -E2BIG, "iteration %u: %d", iter, r);
                        ck_assert_ptr_nonnull(error);
                        ck_assert_msg(startswith(error, "line "), "iteration %u: %s", iter, error);
                        ck_assert_ptr_null(strchr(error, '\n'));
                        continue;
                }
                accepted++;
                ck_assert_ptr_null(error);

                r = resource_yaml_emit(docs, &text, &text_len);
                ck_assert_msg(r == 0, "iteration %u: emit %d", iter, r);
                r = resource_yaml_parse(text, text_len, &back, &error);
                ck_assert_msg(r == 0, "iteration %u: reparse %d: %s\n--- input ---\n%.*s\n--- emitted ---\n%s",
                              iter, r, strna(error), (int) len, buf, text);
                ck_assert_msg(json_object_equal(docs, back), "iteration %u: changed\n--- emitted ---\n%s",
                              iter, text);
                ck_assert_int_eq(resource_yaml_emit(back, &again, NULL), 0);
                ck_assert_str_eq(again, text);
        }
        /* The run must exercise both outcomes. */
        ck_assert_uint_gt(accepted, 100);
        ck_assert_uint_lt(accepted, 3000);
}
END_TEST

/* Pieces random strings are made of: indicators, quotes, breaks of every kind, spaces,
 * digits and letters that spell numbers and booleans, and non-ASCII characters. */
static const char *const pieces[] = {
        " ", "  ", "\n", "\t", "\r", ":", ": ", "#", " #", "-", "- ", "?", "'", "\"", "\\", ",",
        "[", "]", "{", "}", "&", "*", "!", "|", ">", "%", "@", "`", "~", ".", "0", "1", "9", "e",
        "x", "o", "b", "_", "+", "y", "n", "true", "null", "inf", "nan", "---", "...", "a",
        "\xc3\xa9", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xc2\x85", "\xc2\xa0", "\xef\xbb\xbf",
        "\xf0\x9f\x98\x80", "\x01", "\x7f",
};

/* A random string of 0 to 7 pieces. */
static char *random_string(uint64_t *rng) {
        size_t n = (size_t) (next_random(rng) % 8);
        char *s = calloc(1, 8 * 8 + 1);

        ck_assert_ptr_nonnull(s);
        for (size_t i = 0; i < n; i++)
                strcat(s, pieces[next_random(rng) % ELEMENTSOF(pieces)]);
        return s;
}

/* Random strings (as values, keys and items) and random numbers all round-trip exactly. */
START_TEST(test_random_values) {
        uint64_t rng = UINT64_C(0x0123456789abcdef);

        for (unsigned iter = 0; iter < 2000; iter++) {
                _cleanup_(json_object_putp) json_object *docs = json_object_new_array();
                _cleanup_free_ char *text = NULL;
                json_object *doc = json_object_new_object(), *seq = json_object_new_array();
                uint64_t bits = next_random(&rng);
                double d;

                ck_assert_ptr_nonnull(docs);
                ck_assert_ptr_nonnull(doc);
                ck_assert_ptr_nonnull(seq);
                for (unsigned k = 0; k < 4; k++) {
                        _cleanup_free_ char *key = random_string(&rng), *value = random_string(&rng);
                        _cleanup_free_ char *item = random_string(&rng);

                        ck_assert_int_eq(json_object_object_add(doc, key, json_object_new_string(value)), 0);
                        ck_assert_int_eq(json_object_array_add(seq, json_object_new_string(item)), 0);
                }
                memcpy(&d, &bits, sizeof d);
                if (!isfinite(d))
                        d = (double) (int64_t) bits;
                ck_assert_int_eq(json_object_array_add(seq, json_object_new_double(d)), 0);
                ck_assert_int_eq(json_object_array_add(seq, json_object_new_int64((int64_t) bits)), 0);
                ck_assert_int_eq(json_object_array_add(seq, json_object_new_uint64(bits)), 0);
                ck_assert_int_eq(json_object_array_add(seq,
                                 json_object_new_double((double) (bits >> 11) / (double) (UINT64_C(1) << 53))), 0);
                ck_assert_int_eq(json_object_object_add(doc, "\x01seq", seq), 0);
                ck_assert_int_eq(json_object_array_add(docs, doc), 0);

                text = assert_round_trip(docs);
        }
}
END_TEST

/* Advice in either shape gives the same set_parameters arguments; other shapes are refused
 * with a reason. */
static json_object *advice_params_of(const char *text, int expect, const char *error_part) {
        json_object *in = json_tokener_parse(text), *p = (json_object *) 1;
        char *err = NULL;
        int q;

        ck_assert_msg(in || streq(text, "null"), "bad test input %s", text);
        q = runner_config_advice_parameters(in, &p, &err);
        ck_assert_msg(q == expect, "%s: got %d, want %d (%s)", text, q, expect, err ? err : "");
        if (q < 0) {
                ck_assert_ptr_null(p);
                ck_assert_ptr_nonnull(err);
                ck_assert_msg(strstr(err, error_part), "%s: error '%s' lacks '%s'", text, err, error_part);
        } else
                ck_assert_ptr_null(err);
        free(err);
        json_object_put(in);
        return q < 0 ? NULL : p;
}

START_TEST(test_advice_shapes) {
        static const char *const want =
                "{ \"k\": 7, \"ncp\": 3, \"use_categorical_reduction\": true, \"imputation_method\": \"knn\", "
                "\"imputation_k\": 5, \"imputation_training_fraction\": 0.3, \"imputation_return_data_imputed\": false }";
        json_object *nested, *flat, *expected = json_tokener_parse(want), *only_k;

        nested = advice_params_of("{\"parameters\": {\"k\": 7, \"ncp\": 3, \"use_categorical_reduction\": true,"
                                  " \"imputation\": {\"method\": \"knn\", \"k\": 5, \"training_fraction\": 0.3,"
                                  " \"return_data_imputed\": false}}, \"summary\": {\"stats\": 1}}", 0, NULL);
        flat = advice_params_of("{\"k\": 7, \"ncp\": 3, \"use_categorical_reduction\": true,"
                                " \"imputation\": {\"method\": \"knn\", \"k\": 5, \"training_fraction\": 0.3,"
                                " \"return_data_imputed\": false}, \"summary\": {}}", 0, NULL);
        ck_assert(json_object_equal(nested, expected));
        ck_assert(json_object_equal(flat, expected));
        /* a null member is "no advice" for that parameter; unknown members are ignored */
        only_k = advice_params_of("{\"k\": 4, \"ncp\": null, \"other\": 1}", 0, NULL);
        ck_assert_int_eq(json_object_object_length(only_k), 1);
        json_object_put(only_k);
        json_object_put(nested);
        json_object_put(flat);
        json_object_put(expected);

        advice_params_of("null", -EINVAL, "not an object");
        advice_params_of("[1, 2]", -EINVAL, "not an object");
        advice_params_of("\"k=5\"", -EINVAL, "not an object");
        advice_params_of("{\"parameters\": [5]}", -EINVAL, "'parameters' member is not an object");
        advice_params_of("{\"parameters\": null, \"k\": 5}", -EINVAL, "'parameters' member is not an object");
        advice_params_of("{\"imputation\": \"knn\"}", -EINVAL, "'imputation' member is not an object");
        advice_params_of("{}", -EINVAL, "holds no parameters");
        advice_params_of("{\"summary\": {\"k\": 3}}", -EINVAL, "holds no parameters");
        advice_params_of("{\"parameters\": {}, \"k\": 5}", -EINVAL, "holds no parameters");
}
END_TEST

/* A 201's Location, relative or absolute, maps to the API path to read; elsewhere is refused. */
START_TEST(test_location_paths) {
        static const struct {
                const char *api_url, *loc, *path, *segment;
        } cases[] = {
                { "http://h:1/api", "/resources/abc", "/resources/abc", "abc" },
                { "http://h:1/api", "http://h:1/api/resources/abc", "/resources/abc", "abc" },
                { "http://h:1/api", "/api/resources/abc?x=1", "/resources/abc?x=1", "abc" },
                { "http://h:1", "/resources/abc/", "/resources/abc/", "abc" },
                { "http://h:1/api", "/resources/a%2Fb", "/resources/a%2Fb", "a/b" },
                { "http://h:1/api", "/apix/resources/abc", "/apix/resources/abc", "abc" },
                { "http://h:1/api", "http://other/api/resources/abc", NULL, "abc" },
                { "http://h:1/api", "//other/api/resources/abc", NULL, "abc" },
                { "http://h:1/api", "http://h:1/apix/resources/abc", NULL, "abc" },
                { "http://h:1/api", "resources/abc", NULL, "abc" },
                { "http://h:1/api", "", NULL, NULL },
                { "http://h:1/api", "/", "/", NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *path = runner_location_api_path(cases[i].api_url, cases[i].loc);
                char *seg = runner_location_last_segment(cases[i].loc);

                if (cases[i].path)
                        ck_assert_msg(path && streq(path, cases[i].path), "%s: path %s, want %s", cases[i].loc,
                                      path ? path : "NULL", cases[i].path);
                else
                        ck_assert_msg(!path, "%s: path %s, want NULL", cases[i].loc, path);
                if (cases[i].segment)
                        ck_assert_msg(seg && streq(seg, cases[i].segment), "%s: segment %s, want %s", cases[i].loc,
                                      seg ? seg : "NULL", cases[i].segment);
                else
                        ck_assert_msg(!seg, "%s: segment %s, want NULL", cases[i].loc, seg);
                free(path);
                free(seg);
        }
}
END_TEST

/* The suite. */
static Suite *resource_yaml_suite(void) {
        Suite *s = suite_create("resource-yaml");
        TCase *tc;

        tc = tcase_create("example");
        tcase_add_test(tc, test_example_parses);
        tcase_add_test(tc, test_example_round_trips);
        suite_add_tcase(s, tc);

        tc = tcase_create("scalars");
        tcase_add_test(tc, test_scalars_plain);
        tcase_add_test(tc, test_scalars_quoted_and_tagged);
        tcase_add_test(tc, test_scalars_block);
        tcase_add_test(tc, test_numbers_any_locale);
        suite_add_tcase(s, tc);

        tc = tcase_create("emit");
        tcase_add_test(tc, test_emit_scalars);
        tcase_add_test(tc, test_emit_multiline);
        tcase_add_test(tc, test_emit_structure);
        tcase_add_test(tc, test_emit_long_lines);
        tcase_add_test(tc, test_emit_invalid);
        suite_add_tcase(s, tc);

        tc = tcase_create("round-trip");
        tcase_add_test(tc, test_fixed_points);
        tcase_add_test(tc, test_empty_collections);
        tcase_add_test(tc, test_empty_documents);
        suite_add_tcase(s, tc);

        tc = tcase_create("errors");
        tcase_add_test(tc, test_error_syntax);
        tcase_add_test(tc, test_error_duplicate_key);
        tcase_add_test(tc, test_error_anchors_aliases);
        tcase_add_test(tc, test_error_not_a_mapping);
        tcase_add_test(tc, test_error_keys);
        tcase_add_test(tc, test_error_tags_and_numbers);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_add_test(tc, test_limit_depth);
        tcase_add_test(tc, test_limit_documents);
        tcase_add_test(tc, test_limit_nodes);
        tcase_add_test(tc, test_limit_size);
        suite_add_tcase(s, tc);

        tc = tcase_create("mutations");
        tcase_add_test(tc, test_mutations);
        tcase_add_test(tc, test_random_values);
        tcase_set_timeout(tc, 300);
        suite_add_tcase(s, tc);

        tc = tcase_create("advice");
        tcase_add_test(tc, test_advice_shapes);
        tcase_add_test(tc, test_location_paths);
        suite_add_tcase(s, tc);

        return s;
}

int main(void) {
        SRunner *sr = srunner_create(resource_yaml_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
