/* SPDX-License-Identifier: MIT */
/*
 * The shared helpers of the configuration tests: see config-harness.h.
 */
#include <check.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config-harness.h"
#include "macro.h"

/* Returns a Config holding the defaults. */
Config *new_config(void) {
        Config *c = NULL;

        ck_assert_int_eq(config_new(&c), 0);
        ck_assert_ptr_nonnull(c);
        return c;
}

/* Asserts that an error formats exactly as `expected`, then releases it. */
void assert_error(ConfigError *e, const char *expected) {
        char *s = config_error_to_string(e);

        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s, expected);
        free(s);
        config_error_done(e);
}

/* Loads YAML text into c under the name "test.yaml"; returns what config_load_string does. */
int load(Config *c, const char *yaml, ConfigError *e) {
        return config_load_string(c, "test.yaml", yaml, strlen(yaml), e);
}

/* Asserts that YAML text loaded into a default Config fails with exactly `expected`. */
void assert_load_error(const char *yaml, const char *expected) {
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(load(c, yaml, &e), -EINVAL);
        assert_error(&e, expected);
        config_free(c);
}

/* Asserts that YAML text loads into a default Config and that finalising it succeeds. */
Config *load_ok(const char *yaml) {
        Config *c = new_config();
        ConfigError e = {};
        int r;

        r = load(c, yaml, &e);
        ck_assert_msg(r == 0, "loading failed: %s: %s", strna(e.key), strna(e.message));
        ck_assert_ptr_null(e.message);
        return c;
}

/* Finalises c and asserts success. */
void finalize_ok(Config *c) {
        ConfigError e = {};
        int r;

        r = config_finalize(c, &e);
        ck_assert_msg(r == 0, "config_finalize failed: %s: %s", strna(e.key), strna(e.message));
        ck_assert_ptr_null(e.message);
}

/* Asserts that finalising c fails with exactly `expected`, then frees c. */
void assert_finalize_error(Config *c, const char *expected) {
        ConfigError e = {};

        ck_assert_int_eq(config_finalize(c, &e), -EINVAL);
        assert_error(&e, expected);
        config_free(c);
}

/* Loads YAML text, then asserts that finalising fails with exactly `expected`. */
void assert_yaml_finalize_error(const char *yaml, const char *expected) {
        assert_finalize_error(load_ok(yaml), expected);
}

/* Sets a key the way the command line does and asserts success. */
void set_ok(Config *c, const char *key, const char *value) {
        ConfigError e = {};

        ck_assert_int_eq(config_set(c, key, value, &e), 0);
        ck_assert_ptr_null(e.message);
}

/* Returns o[section][key], asserting that both exist. */
json_object *json_at(json_object *o, const char *section, const char *key) {
        json_object *s = o, *v = NULL;

        if (section)
                ck_assert(json_object_object_get_ex(o, section, &s));
        ck_assert_msg(json_object_object_get_ex(s, key, &v), "no %s.%s", strna(section), key);
        return v;
}

/* Returns o[section][key] as a string, asserting that it is one. */
const char *json_str_at(json_object *o, const char *section, const char *key) {
        json_object *v = json_at(o, section, key);

        ck_assert(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

/* Asserts that a rule holds exactly the listed uids and gids. */
void assert_rule(const AccessRule *a, const uid_t *uids, size_t n_uids, const gid_t *gids,
                 size_t n_gids) {
        ck_assert_uint_eq(a->n_uids, n_uids);
        for (size_t i = 0; i < n_uids; i++)
                ck_assert_uint_eq(a->uids[i], uids[i]);
        ck_assert_uint_eq(a->n_gids, n_gids);
        for (size_t i = 0; i < n_gids; i++)
                ck_assert_uint_eq(a->gids[i], gids[i]);
}

/* Runs the suite; the exit status is non-zero when a test failed. */
int config_test_main(Suite *s) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
