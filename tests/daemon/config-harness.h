/* SPDX-License-Identifier: MIT */
/*
 * The shared helpers of the configuration tests (test-config.c, test-config-file.c): a
 * default Config, loading YAML text, finalising, command-line overrides, exact error texts,
 * the JSON view and access rules, and the test runner.
 */
#pragma once

#include <check.h>
#include <json-c/json.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

#define DATA(name) TEST_DATA_DIR "/" name

/* Returns a Config holding the defaults. */
Config *new_config(void);

/* Asserts that an error formats exactly as `expected`, then releases it. */
void assert_error(ConfigError *e, const char *expected);

/* Loads YAML text into c under the name "test.yaml"; returns what config_load_string does. */
int load(Config *c, const char *yaml, ConfigError *e);

/* Asserts that YAML text loaded into a default Config fails with exactly `expected`. */
void assert_load_error(const char *yaml, const char *expected);

/* Asserts that YAML text loads into a default Config and that finalising it succeeds. */
Config *load_ok(const char *yaml);

/* Finalises c and asserts success. */
void finalize_ok(Config *c);

/* Asserts that finalising c fails with exactly `expected`, then frees c. */
void assert_finalize_error(Config *c, const char *expected);

/* Loads YAML text, then asserts that finalising fails with exactly `expected`. */
void assert_yaml_finalize_error(const char *yaml, const char *expected);

/* Sets a key the way the command line does and asserts success. */
void set_ok(Config *c, const char *key, const char *value);

/* Returns o[section][key], asserting that both exist. */
json_object *json_at(json_object *o, const char *section, const char *key);

/* Returns o[section][key] as a string, asserting that it is one. */
const char *json_str_at(json_object *o, const char *section, const char *key);

/* Asserts that a rule holds exactly the listed uids and gids. */
void assert_rule(const AccessRule *a, const uid_t *uids, size_t n_uids, const gid_t *gids,
                 size_t n_gids);

/* Runs the suite; returns the exit status (non-zero when a test failed). */
int config_test_main(Suite *s);
