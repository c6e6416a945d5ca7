/* SPDX-License-Identifier: MIT */
/*
 * daemon/config.c: defaults, the AVATAR_* environment, the URL rules of avatar-api.md §1,
 * YAML parsing (every key type, ranges, unknown and duplicate keys, wrong node types, nulls,
 * syntax errors, file limits), the access section and role lookup, command-line overrides,
 * cross-key validation, error formatting and the JSON view for daemon.status.
 *
 * Fixtures live in TEST_DATA_DIR; files the tests generate go to TEST_TMP_DIR. Both are
 * defined by meson.
 */
#include <check.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "build-config.h"
#include "config.h"
#include "manager.h"
#include "macro.h"
#include "protocol.h"

#define DATA(name) TEST_DATA_DIR "/" name

#define DEFAULT_API_URL "https://www.octopize.app/api"
#define DEFAULT_STORAGE_URL "https://www.octopize.app/storage"
#define PLAIN_HTTP_HINT "uses plain http to a host that is not loopback; use https or set upstream.allow_insecure_http"

/* Returns a Config holding the defaults. */
static Config *new_config(void) {
        Config *c = NULL;

        ck_assert_int_eq(config_new(&c), 0);
        ck_assert_ptr_nonnull(c);
        return c;
}

/* Asserts that an error formats exactly as `expected`, then releases it. */
static void assert_error(ConfigError *e, const char *expected) {
        char *s = config_error_to_string(e);

        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s, expected);
        free(s);
        config_error_done(e);
}

/* Loads YAML text into c under the name "test.yaml"; returns what config_load_string does. */
static int load(Config *c, const char *yaml, ConfigError *e) {
        return config_load_string(c, "test.yaml", yaml, strlen(yaml), e);
}

/* Asserts that YAML text loaded into a default Config fails with exactly `expected`. */
static void assert_load_error(const char *yaml, const char *expected) {
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(load(c, yaml, &e), -EINVAL);
        assert_error(&e, expected);
        config_free(c);
}

/* Asserts that YAML text loads into a default Config and that finalising it succeeds. */
static Config *load_ok(const char *yaml) {
        Config *c = new_config();
        ConfigError e = {};
        int r;

        r = load(c, yaml, &e);
        ck_assert_msg(r == 0, "loading failed: %s: %s", strna(e.key), strna(e.message));
        ck_assert_ptr_null(e.message);
        return c;
}

/* Applies a NULL-terminated list of "NAME=value" strings to c. */
static int apply_env(Config *c, const char *const *envp, ConfigError *e) {
        return config_apply_env(c, (char *const *) envp, e);
}

/* Applies an environment to a default Config and asserts success. */
static Config *env_ok(const char *const *envp) {
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(apply_env(c, envp, &e), 0);
        ck_assert_ptr_null(e.message);
        return c;
}

/* Asserts that an environment fails to apply with exactly `expected`. */
static void assert_env_error(const char *const *envp, const char *expected) {
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(apply_env(c, envp, &e), -EINVAL);
        assert_error(&e, expected);
        config_free(c);
}

/* Finalises c and asserts success. */
static void finalize_ok(Config *c) {
        ConfigError e = {};
        int r;

        r = config_finalize(c, &e);
        ck_assert_msg(r == 0, "config_finalize failed: %s: %s", strna(e.key), strna(e.message));
        ck_assert_ptr_null(e.message);
}

/* Asserts that finalising c fails with exactly `expected`, then frees c. */
static void assert_finalize_error(Config *c, const char *expected) {
        ConfigError e = {};

        ck_assert_int_eq(config_finalize(c, &e), -EINVAL);
        assert_error(&e, expected);
        config_free(c);
}

/* Loads YAML text, then asserts that finalising fails with exactly `expected`. */
static void assert_yaml_finalize_error(const char *yaml, const char *expected) {
        assert_finalize_error(load_ok(yaml), expected);
}

/* Sets a key the way the command line does and asserts success. */
static void set_ok(Config *c, const char *key, const char *value) {
        ConfigError e = {};

        ck_assert_int_eq(config_set(c, key, value, &e), 0);
        ck_assert_ptr_null(e.message);
}

/* Writes `size` bytes of YAML comments to a new file in TEST_TMP_DIR; returns its path. */
static char *write_comment_file(size_t size) {
        char *path = NULL, line[64];
        FILE *f;
        int fd;

        ck_assert_int_ge(asprintf(&path, "%s/test-config-XXXXXX", TEST_TMP_DIR), 0);
        fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        f = fdopen(fd, "w");
        ck_assert_ptr_nonnull(f);
        memset(line, '#', sizeof(line) - 1);
        line[sizeof(line) - 1] = '\n';
        for (size_t left = size; left > 0;) {
                size_t n = MIN(left, sizeof(line));

                /* every chunk ends in a newline so that any size stays a comment */
                ck_assert_uint_eq(fwrite(line + sizeof(line) - n, 1, n, f), n);
                left -= n;
        }
        ck_assert_int_eq(fclose(f), 0);
        return path;
}

/* Returns o[section][key], asserting that both exist. */
static json_object *json_get(json_object *o, const char *section, const char *key) {
        json_object *s = o, *v = NULL;

        if (section)
                ck_assert(json_object_object_get_ex(o, section, &s));
        ck_assert_msg(json_object_object_get_ex(s, key, &v), "no %s.%s", strna(section), key);
        return v;
}

/* Returns o[section][key] as a string, asserting that it is one. */
static const char *json_str(json_object *o, const char *section, const char *key) {
        json_object *v = json_get(o, section, key);

        ck_assert(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

/* Asserts that a rule holds exactly the listed uids and gids. */
static void assert_rule(const AccessRule *a, const uid_t *uids, size_t n_uids, const gid_t *gids,
                        size_t n_gids) {
        ck_assert_uint_eq(a->n_uids, n_uids);
        for (size_t i = 0; i < n_uids; i++)
                ck_assert_uint_eq(a->uids[i], uids[i]);
        ck_assert_uint_eq(a->n_gids, n_gids);
        for (size_t i = 0; i < n_gids; i++)
                ck_assert_uint_eq(a->gids[i], gids[i]);
}

/* ---- defaults ---- */

/* config_new() sets every field to its documented default. */
START_TEST(test_defaults) {
        Config *c = new_config();
        struct group *g = getgrnam("avatar");

        ck_assert_ptr_null(c->source);
        ck_assert(!c->urls_from_env);

        ck_assert_str_eq(c->socket_path, AVATARD_DEFAULT_SOCKET);
        ck_assert_uint_eq(c->socket_mode, 0660);
        ck_assert_str_eq(c->socket_group, "avatar");
        ck_assert_str_eq(c->state_directory, AVATARD_DEFAULT_STATE_DIR);
        ck_assert_int_eq(c->log_level, LOG_INFO);

        ck_assert_uint_eq(c->max_frame_bytes, PROTO_FRAME_MAX_DEFAULT);
        ck_assert_uint_eq(c->max_connections, PROTO_CONNECTIONS_DEFAULT);
        ck_assert_uint_eq(c->max_connections_per_uid, PROTO_CONNECTIONS_PER_UID_DEFAULT);
        ck_assert_uint_eq(c->max_inflight_per_connection, PROTO_INFLIGHT_PER_CONN_DEFAULT);
        ck_assert_uint_eq(c->max_output_bytes, PROTO_OUTPUT_MAX_DEFAULT);
        ck_assert_uint_eq(c->idle_timeout_s, PROTO_IDLE_TIMEOUT_DEFAULT_S);
        ck_assert_uint_eq(c->shutdown_timeout_s, 30);

        ck_assert_ptr_null(c->base_url);
        ck_assert_ptr_null(c->base_api_url);
        ck_assert_ptr_null(c->storage_endpoint_url);
        ck_assert_ptr_null(c->api_url);
        ck_assert_ptr_null(c->storage_url);
        ck_assert_ptr_null(c->api_key_file);
        ck_assert_ptr_null(c->user_agent);
        ck_assert_str_eq(c->storage_region, "us-east-1");
        ck_assert_ptr_null(c->ca_file);
        ck_assert(c->should_verify_ssl);
        ck_assert(c->verify_compatibility);
        ck_assert(!c->allow_insecure_http);
        ck_assert_uint_eq(c->timeout_s, 60);
        ck_assert_uint_eq(c->connect_timeout_s, 10);
        ck_assert_uint_eq(c->max_body_bytes, 64 * 1024 * 1024);
        ck_assert_uint_eq(c->max_attempts, 6);
        ck_assert_uint_eq(c->retry_base_ms, 200);
        ck_assert_uint_eq(c->retry_max_ms, 5000);
        ck_assert_uint_eq(c->rate_limit_retries, 3);
        ck_assert_uint_eq(c->max_retry_after_s, 60);
        ck_assert_uint_eq(c->upstream_max_connections, 64);
        ck_assert_uint_eq(c->breaker_threshold, 5);
        ck_assert_uint_eq(c->breaker_cooldown_s, 10);

        ck_assert_uint_eq(c->compatibility_ttl_s, 3600);
        ck_assert_uint_eq(c->health_ttl_s, 5);
        ck_assert_uint_eq(c->jobs_ttl_s, 2);
        ck_assert_uint_eq(c->stale_max_s, 300);

        ck_assert_uint_eq(c->poll_min_s, 5);
        ck_assert_uint_eq(c->poll_max_s, 20);
        ck_assert_uint_eq(c->multipart_threshold_bytes, 64 * 1024 * 1024);
        ck_assert_uint_eq(c->multipart_part_bytes, 16 * 1024 * 1024);
        ck_assert_uint_eq(c->max_runners_per_uid, 1000);

        /* root is admin by rule; the "avatar" group, when it exists, gets operate */
        assert_rule(&c->access[ROLE_NONE], NULL, 0, NULL, 0);
        assert_rule(&c->access[ROLE_READ], NULL, 0, NULL, 0);
        assert_rule(&c->access[ROLE_ADMIN], NULL, 0, NULL, 0);
        if (g) {
                gid_t gid = g->gr_gid;

                assert_rule(&c->access[ROLE_OPERATE], NULL, 0, &gid, 1);
        } else
                assert_rule(&c->access[ROLE_OPERATE], NULL, 0, NULL, 0);
        config_free(c);
}
END_TEST

/* With nothing configured, finalising yields the SaaS URLs, and doing it twice is harmless. */
START_TEST(test_defaults_finalize) {
        Config *c = new_config();

        finalize_ok(c);
        ck_assert_str_eq(c->api_url, DEFAULT_API_URL);
        ck_assert_str_eq(c->storage_url, DEFAULT_STORAGE_URL);
        ck_assert_ptr_null(c->base_url);
        /* finalising twice changes nothing */
        finalize_ok(c);
        ck_assert_str_eq(c->api_url, DEFAULT_API_URL);
        ck_assert_str_eq(c->storage_url, DEFAULT_STORAGE_URL);
        config_free(c);
}
END_TEST

/* The destructors accept NULL. */
START_TEST(test_free_null) {
        ck_assert_ptr_null(config_free(NULL));
        config_error_done(NULL);
}
END_TEST

/* Role names convert both ways; anything else is _ROLE_INVALID. */
START_TEST(test_roles) {
        ck_assert_str_eq(role_to_string(ROLE_NONE), "none");
        ck_assert_str_eq(role_to_string(ROLE_READ), "read");
        ck_assert_str_eq(role_to_string(ROLE_OPERATE), "operate");
        ck_assert_str_eq(role_to_string(ROLE_ADMIN), "admin");
        ck_assert_ptr_null(role_to_string(_ROLE_MAX));
        ck_assert_ptr_null(role_to_string(_ROLE_INVALID));
        ck_assert_int_eq(role_from_string("read"), ROLE_READ);
        ck_assert_int_eq(role_from_string("operate"), ROLE_OPERATE);
        ck_assert_int_eq(role_from_string("admin"), ROLE_ADMIN);
        ck_assert_int_eq(role_from_string("none"), ROLE_NONE);
        ck_assert_int_eq(role_from_string("Admin"), _ROLE_INVALID);
        ck_assert_int_eq(role_from_string(""), _ROLE_INVALID);
        ck_assert_int_eq(role_from_string(NULL), _ROLE_INVALID);
}
END_TEST

/* ---- environment ---- */

/* A NULL environment and variables the daemon does not honour change nothing. */
START_TEST(test_env_null_and_unrelated) {
        const char *env[] = { "PATH=/usr/bin", "AVATAR_API_KEY=sk-not-read-here", "NO_EQUALS_SIGN",
                        "AVATAR_BASE_URL_EXTRA=https://x.example.com", "XAVATAR_TIMEOUT=5",
                        "AVATAR_TIMEOUTS=5", NULL };
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(config_apply_env(c, NULL, &e), 0);
        config_free(c);

        c = env_ok(env);
        ck_assert_ptr_null(c->base_url);
        ck_assert_uint_eq(c->timeout_s, 60);
        ck_assert(!c->urls_from_env);
        finalize_ok(c);
        ck_assert_str_eq(c->api_url, DEFAULT_API_URL);
        config_free(c);
}
END_TEST

/* AVATAR_BASE_URL derives both URLs. */
START_TEST(test_env_base_url) {
        const char *env[] = { "AVATAR_BASE_URL=https://avatar.example.com/", NULL };
        Config *c = env_ok(env);

        ck_assert(c->urls_from_env);
        ck_assert_str_eq(c->base_url, "https://avatar.example.com/");
        finalize_ok(c);
        ck_assert_str_eq(c->base_url, "https://avatar.example.com");
        ck_assert_str_eq(c->api_url, "https://avatar.example.com/api");
        ck_assert_str_eq(c->storage_url, "https://avatar.example.com/storage");
        config_free(c);
}
END_TEST

/* AVATAR_BASE_API_URL alone leaves the storage URL at the SaaS default. */
START_TEST(test_env_base_api_url) {
        const char *env[] = { "AVATAR_BASE_API_URL=https://api.example.com/v1/api/", NULL };
        Config *c = env_ok(env);

        ck_assert(c->urls_from_env);
        ck_assert_str_eq(c->base_api_url, "https://api.example.com/v1/api/");
        finalize_ok(c);
        ck_assert_ptr_null(c->base_url);
        ck_assert_str_eq(c->api_url, "https://api.example.com/v1/api");
        /* the storage URL is not derived from the API URL */
        ck_assert_str_eq(c->storage_url, DEFAULT_STORAGE_URL);
        config_free(c);
}
END_TEST

/* AVATAR_STORAGE_ENDPOINT_URL alone leaves the API URL at the SaaS default. */
START_TEST(test_env_storage_url) {
        const char *env[] = { "AVATAR_STORAGE_ENDPOINT_URL=https://s3.example.com", NULL };
        Config *c = env_ok(env);

        ck_assert(c->urls_from_env);
        finalize_ok(c);
        ck_assert_str_eq(c->storage_url, "https://s3.example.com");
        ck_assert_str_eq(c->api_url, DEFAULT_API_URL);
        config_free(c);
}
END_TEST

/* The unprefixed STORAGE_ENDPOINT_URL is honoured, and the prefixed name wins over it. */
START_TEST(test_env_storage_alias) {
        const char *alias_only[] = { "STORAGE_ENDPOINT_URL=https://alias.example.com", NULL };
        const char *alias_first[] = { "STORAGE_ENDPOINT_URL=https://alias.example.com",
                                "AVATAR_STORAGE_ENDPOINT_URL=https://prefixed.example.com", NULL };
        const char *alias_last[] = { "AVATAR_STORAGE_ENDPOINT_URL=https://prefixed.example.com",
                               "STORAGE_ENDPOINT_URL=https://alias.example.com", NULL };
        Config *c;

        c = env_ok(alias_only);
        ck_assert(c->urls_from_env);
        ck_assert_str_eq(c->storage_endpoint_url, "https://alias.example.com");
        finalize_ok(c);
        ck_assert_str_eq(c->storage_url, "https://alias.example.com");
        ck_assert_str_eq(c->api_url, DEFAULT_API_URL);
        config_free(c);

        /* the prefixed name wins whatever the order of the environment */
        c = env_ok(alias_first);
        ck_assert_str_eq(c->storage_endpoint_url, "https://prefixed.example.com");
        config_free(c);
        c = env_ok(alias_last);
        ck_assert_str_eq(c->storage_endpoint_url, "https://prefixed.example.com");
        config_free(c);
}
END_TEST

/* The alias combines with the other prefixed URL variables. */
START_TEST(test_env_alias_with_other_urls) {
        /* the alias together with the prefixed API URL: both are kept */
        const char *env[] = { "STORAGE_ENDPOINT_URL=https://alias.example.com",
                        "AVATAR_BASE_API_URL=https://api.example.com/api", NULL };
        Config *c = env_ok(env);

        finalize_ok(c);
        ck_assert_str_eq(c->api_url, "https://api.example.com/api");
        ck_assert_str_eq(c->storage_url, "https://alias.example.com");
        config_free(c);
}
END_TEST

/* Variable names match whatever their case. */
START_TEST(test_env_case_insensitive) {
        const char *env[] = { "avatar_base_api_url=https://lower.example.com/api",
                        "Avatar_Storage_Endpoint_Url=https://mixed.example.com/storage",
                        "avatar_timeout=7", "avatar_should_verify_ssl=false",
                        "AVATAR_verify_COMPATIBILITY=0", NULL };
        const char *alias[] = { "storage_endpoint_url=https://alias.example.com", NULL };
        Config *c = env_ok(env);

        ck_assert_str_eq(c->base_api_url, "https://lower.example.com/api");
        ck_assert_str_eq(c->storage_endpoint_url, "https://mixed.example.com/storage");
        ck_assert_uint_eq(c->timeout_s, 7);
        ck_assert(!c->should_verify_ssl);
        ck_assert(!c->verify_compatibility);
        config_free(c);

        c = env_ok(alias);
        ck_assert_str_eq(c->storage_endpoint_url, "https://alias.example.com");
        config_free(c);
}
END_TEST

/* AVATAR_TIMEOUT takes whole and fractional seconds, rounding a fraction up. */
START_TEST(test_env_timeout) {
        static const struct {
                const char *value;
                unsigned expected;
        } ok[] = {
                { "90", 90 },       { "1", 1 },        { "86400", 86400 }, { "1.5", 2 },
                { "2.0005", 3 },    { "59.999", 60 },  { "60.0", 60 },     { "1e2", 100 },
                { "86399.01", 86400 },
        };

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                char var[64];
                const char *env[] = { var, NULL };
                Config *c;

                snprintf(var, sizeof(var), "AVATAR_TIMEOUT=%s", ok[i].value);
                c = env_ok(env);
                ck_assert_msg(c->timeout_s == ok[i].expected, "AVATAR_TIMEOUT=%s gave %u, expected %u",
                              ok[i].value, c->timeout_s, ok[i].expected);
                /* the timeout is not a URL: the URL group is untouched */
                ck_assert(!c->urls_from_env);
                config_free(c);
        }
}
END_TEST

/* A malformed or out-of-range AVATAR_TIMEOUT is an error naming the variable. */
START_TEST(test_env_timeout_invalid) {
        static const char *const bad[] = { "abc", "", "0", "0.5", "-5", "86400.5", "86401",
                                           "12s", "nan", "inf", "1e400", "5 " };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char var[64], expected[128];
                const char *env[] = { var, NULL };

                snprintf(var, sizeof(var), "AVATAR_TIMEOUT=%s", bad[i]);
                snprintf(expected, sizeof(expected),
                         "AVATAR_TIMEOUT: expected seconds between 1 and 86400, got '%s'", bad[i]);
                assert_env_error(env, expected);
        }
}
END_TEST

/* The boolean variables accept the forms the Python client does, in any case. */
START_TEST(test_env_bools) {
        static const char *const truthy[] = { "true", "TRUE", "True", "yes", "YES", "on", "On",
                                              "1", "y", "Y", "t", "T" };
        static const char *const falsy[] = { "false", "FALSE", "no", "No", "off", "OFF",
                                             "0", "n", "N", "f", "F" };

        for (size_t i = 0; i < ELEMENTSOF(truthy); i++) {
                char v1[64], v2[64];
                const char *env[] = { v1, v2, NULL };
                Config *c = new_config();
                ConfigError e = {};

                c->should_verify_ssl = c->verify_compatibility = false;
                snprintf(v1, sizeof(v1), "AVATAR_SHOULD_VERIFY_SSL=%s", truthy[i]);
                snprintf(v2, sizeof(v2), "AVATAR_VERIFY_COMPATIBILITY=%s", truthy[i]);
                ck_assert_int_eq(apply_env(c, env, &e), 0);
                ck_assert_msg(c->should_verify_ssl && c->verify_compatibility, "'%s' is not true",
                              truthy[i]);
                config_free(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(falsy); i++) {
                char v1[64], v2[64];
                const char *env[] = { v1, v2, NULL };
                Config *c;

                snprintf(v1, sizeof(v1), "AVATAR_SHOULD_VERIFY_SSL=%s", falsy[i]);
                snprintf(v2, sizeof(v2), "AVATAR_VERIFY_COMPATIBILITY=%s", falsy[i]);
                c = env_ok(env);
                ck_assert_msg(!c->should_verify_ssl && !c->verify_compatibility, "'%s' is not false",
                              falsy[i]);
                config_free(c);
        }
}
END_TEST

/* Anything else in a boolean variable is an error naming the variable. */
START_TEST(test_env_bools_invalid) {
        const char *ssl[] = { "AVATAR_SHOULD_VERIFY_SSL=maybe", NULL };
        const char *ssl_empty[] = { "AVATAR_SHOULD_VERIFY_SSL=", NULL };
        const char *compat[] = { "AVATAR_VERIFY_COMPATIBILITY=2", NULL };
        const char *lower[] = { "avatar_verify_compatibility=yess", NULL };

        assert_env_error(ssl, "AVATAR_SHOULD_VERIFY_SSL: expected a boolean (true/false), got 'maybe'");
        assert_env_error(ssl_empty, "AVATAR_SHOULD_VERIFY_SSL: expected a boolean (true/false), got ''");
        assert_env_error(compat, "AVATAR_VERIFY_COMPATIBILITY: expected a boolean (true/false), got '2'");
        /* the error names the variable by its canonical name */
        assert_env_error(lower, "AVATAR_VERIFY_COMPATIBILITY: expected a boolean (true/false), got 'yess'");
}
END_TEST

/* Applying an environment again replaces the URL group of the first. */
START_TEST(test_env_applied_twice) {
        /* a second environment with URLs replaces the URL group of the first */
        const char *first[] = { "AVATAR_BASE_URL=https://one.example.com", NULL };
        const char *second[] = { "AVATAR_BASE_API_URL=https://two.example.com/api", NULL };
        Config *c = env_ok(first);
        ConfigError e = {};

        ck_assert_int_eq(apply_env(c, second, &e), 0);
        ck_assert_ptr_null(c->base_url);
        ck_assert_str_eq(c->base_api_url, "https://two.example.com/api");
        finalize_ok(c);
        ck_assert_str_eq(c->api_url, "https://two.example.com/api");
        ck_assert_str_eq(c->storage_url, DEFAULT_STORAGE_URL);
        config_free(c);
}
END_TEST

/* ---- URL rules (config_finalize) ---- */

/* base_url loses trailing slashes and the deprecated /api suffix, then gives /api and /storage. */
START_TEST(test_url_base_derivation) {
        static const struct {
                const char *base, *normalised;
        } cases[] = {
                { "https://avatar.example.com", "https://avatar.example.com" },
                { "https://avatar.example.com/", "https://avatar.example.com" },
                { "https://avatar.example.com///", "https://avatar.example.com" },
                /* the deprecated form with the /api suffix */
                { "https://avatar.example.com/api", "https://avatar.example.com" },
                { "https://avatar.example.com/api/", "https://avatar.example.com" },
                { "https://avatar.example.com/prefix/api", "https://avatar.example.com/prefix" },
                /* only a whole "/api" segment is a suffix */
                { "https://avatar.example.com/myapi", "https://avatar.example.com/myapi" },
                { "https://avatar.example.com/api/api", "https://avatar.example.com/api" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Config *c = new_config();
                char api[256], storage[256];

                set_ok(c, "upstream.base_url", cases[i].base);
                finalize_ok(c);
                snprintf(api, sizeof(api), "%s/api", cases[i].normalised);
                snprintf(storage, sizeof(storage), "%s/storage", cases[i].normalised);
                ck_assert_str_eq(c->base_url, cases[i].normalised);
                ck_assert_str_eq(c->api_url, api);
                ck_assert_str_eq(c->storage_url, storage);
                config_free(c);
        }
}
END_TEST

/* base_url together with base_api_url or storage_endpoint_url is an error. */
START_TEST(test_url_base_conflicts) {
        Config *c;

        c = new_config();
        set_ok(c, "upstream.base_url", "https://avatar.example.com");
        set_ok(c, "upstream.base_api_url", "https://avatar.example.com/api");
        assert_finalize_error(c, "upstream.base_url: cannot set base_url together with base_api_url or storage_endpoint_url (upstream)");

        c = new_config();
        set_ok(c, "upstream.storage_endpoint_url", "https://avatar.example.com/storage");
        set_ok(c, "upstream.base_url", "https://avatar.example.com");
        assert_finalize_error(c, "upstream.base_url: cannot set base_url together with base_api_url or storage_endpoint_url (upstream)");

        assert_yaml_finalize_error("upstream:\n"
                                   "  base_url: https://a.example.com\n"
                                   "  storage_endpoint_url: https://b.example.com\n",
                                   "upstream.base_url: cannot set base_url together with base_api_url or storage_endpoint_url (upstream)");
}
END_TEST

/* The same conflict in the environment names the variable and no file. */
START_TEST(test_url_base_conflict_env) {
        /* the error names the variable, and no file even when one was loaded */
        const char *api[] = { "AVATAR_BASE_URL=https://a.example.com",
                        "AVATAR_BASE_API_URL=https://b.example.com/api", NULL };
        const char *alias[] = { "AVATAR_BASE_URL=https://a.example.com",
                          "STORAGE_ENDPOINT_URL=https://b.example.com", NULL };
        Config *c;
        ConfigError e = {};

        c = env_ok(api);
        assert_finalize_error(c, "AVATAR_BASE_URL: cannot set base_url together with base_api_url or storage_endpoint_url (environment)");

        c = env_ok(alias);
        ck_assert_int_eq(config_load_file(c, DATA("log-level.yaml"), false, &e), 0);
        ck_assert_int_eq(c->log_level, LOG_WARNING);
        assert_finalize_error(c, "AVATAR_BASE_URL: cannot set base_url together with base_api_url or storage_endpoint_url (environment)");
}
END_TEST

/* base_api_url and storage_endpoint_url each fall back to their own default. */
START_TEST(test_url_independent_defaults) {
        Config *c;

        c = new_config();
        set_ok(c, "upstream.base_api_url", "https://api.example.com/api");
        finalize_ok(c);
        ck_assert_str_eq(c->api_url, "https://api.example.com/api");
        ck_assert_str_eq(c->storage_url, DEFAULT_STORAGE_URL);
        config_free(c);

        c = new_config();
        set_ok(c, "upstream.storage_endpoint_url", "https://s3.example.com/bucket/");
        finalize_ok(c);
        ck_assert_str_eq(c->api_url, DEFAULT_API_URL);
        ck_assert_str_eq(c->storage_url, "https://s3.example.com/bucket");
        /* the configured value is kept as written */
        ck_assert_str_eq(c->storage_endpoint_url, "https://s3.example.com/bucket/");
        config_free(c);
}
END_TEST

/* A URL containing '"' is refused. */
START_TEST(test_url_quote) {
        Config *c;

        c = new_config();
        set_ok(c, "upstream.base_api_url", "https://api.example.com/a\"pi");
        assert_finalize_error(c, "upstream.base_api_url: must not contain '\"'");

        c = new_config();
        set_ok(c, "upstream.storage_endpoint_url", "https://s3.example.com/\"");
        assert_finalize_error(c, "upstream.storage_endpoint_url: must not contain '\"'");

        c = new_config();
        set_ok(c, "upstream.base_url", "https://avatar\".example.com");
        assert_finalize_error(c, "upstream.base_url: must not contain '\"'");
}
END_TEST

/* Plain http to a host that is not loopback is refused unless allow_insecure_http. */
START_TEST(test_url_plain_http) {
        Config *c;

        c = new_config();
        set_ok(c, "upstream.base_api_url", "http://api.example.com/api");
        assert_finalize_error(c, "upstream.base_api_url: 'http://api.example.com/api' " PLAIN_HTTP_HINT);

        c = new_config();
        set_ok(c, "upstream.base_url", "http://avatar.example.com/");
        assert_finalize_error(c, "upstream.base_url: 'http://avatar.example.com/api' " PLAIN_HTTP_HINT);

        c = new_config();
        set_ok(c, "upstream.storage_endpoint_url", "HTTP://10.0.0.1:8333");
        assert_finalize_error(c, "upstream.storage_endpoint_url: 'HTTP://10.0.0.1:8333' " PLAIN_HTTP_HINT);

        /* allowed on request */
        c = new_config();
        set_ok(c, "upstream.base_url", "http://avatar.example.com");
        set_ok(c, "upstream.allow_insecure_http", "true");
        finalize_ok(c);
        ck_assert_str_eq(c->api_url, "http://avatar.example.com/api");
        ck_assert_str_eq(c->storage_url, "http://avatar.example.com/storage");
        config_free(c);
}
END_TEST

/* Plain http to loopback is accepted. */
START_TEST(test_url_loopback_http) {
        static const char *const loopback[] = { "http://127.0.0.1:8080", "http://127.1.2.3",
                                                "http://localhost:8080/", "http://[::1]:8080" };
        Config *c;

        for (size_t i = 0; i < ELEMENTSOF(loopback); i++) {
                char api[128];

                c = new_config();
                set_ok(c, "upstream.base_url", loopback[i]);
                finalize_ok(c);
                snprintf(api, sizeof(api), "%s/api", c->base_url);
                ck_assert_str_eq(c->api_url, api);
                config_free(c);
        }

        c = new_config();
        set_ok(c, "upstream.base_url", "http://127.0.0.1:8080");
        finalize_ok(c);
        ck_assert_str_eq(c->api_url, "http://127.0.0.1:8080/api");
        ck_assert_str_eq(c->storage_url, "http://127.0.0.1:8080/storage");
        config_free(c);
}
END_TEST

/* A URL that is not http(s) is refused with its own message. */
START_TEST(test_url_not_http) {
        Config *c;

        /* another scheme is not "plain http", and allow_insecure_http does not admit it */
        c = new_config();
        set_ok(c, "upstream.base_api_url", "ftp://api.example.com/api");
        set_ok(c, "upstream.allow_insecure_http", "yes");
        assert_finalize_error(c, "upstream.base_api_url: 'ftp://api.example.com/api' is not an http(s) URL");

        c = new_config();
        set_ok(c, "upstream.storage_endpoint_url", "s3.example.com");
        assert_finalize_error(c, "upstream.storage_endpoint_url: 's3.example.com' is not an http(s) URL");

        c = new_config();
        set_ok(c, "upstream.base_url", "/");
        assert_finalize_error(c, "upstream.base_url: '/api' is not an http(s) URL");
}
END_TEST

/* A bad URL from the environment names the variable, not the file. */
START_TEST(test_url_env_errors) {
        /* a bad URL from the environment names the variable, not the file */
        const char *http[] = { "AVATAR_BASE_API_URL=http://api.example.com/api", NULL };
        const char *quote[] = { "AVATAR_STORAGE_ENDPOINT_URL=https://s3.example.com/\"", NULL };
        const char *base[] = { "AVATAR_BASE_URL=http://avatar.example.com", NULL };
        Config *c;
        ConfigError e = {};

        c = env_ok(http);
        ck_assert_int_eq(config_load_file(c, DATA("log-level.yaml"), false, &e), 0);
        assert_finalize_error(c, "AVATAR_BASE_API_URL: 'http://api.example.com/api' " PLAIN_HTTP_HINT);

        c = env_ok(quote);
        assert_finalize_error(c, "AVATAR_STORAGE_ENDPOINT_URL: must not contain '\"'");

        c = env_ok(base);
        assert_finalize_error(c, "AVATAR_BASE_URL: 'http://avatar.example.com/api' " PLAIN_HTTP_HINT);
}
END_TEST

/* A URL key in the file or on the command line replaces every URL from the environment. */
START_TEST(test_url_file_replaces_env) {
        const char *env[] = { "AVATAR_BASE_API_URL=https://env-api.example.com/api",
                        "AVATAR_STORAGE_ENDPOINT_URL=https://env-s3.example.com", NULL };
        const char *env_base[] = { "AVATAR_BASE_URL=https://env.example.com", NULL };
        Config *c;
        ConfigError e = {};

        /* base_url in the file and URLs in the environment: no conflict, the file wins */
        c = env_ok(env);
        ck_assert_int_eq(config_load_file(c, DATA("base-url.yaml"), false, &e), 0);
        ck_assert(!c->urls_from_env);
        ck_assert_ptr_null(c->base_api_url);
        ck_assert_ptr_null(c->storage_endpoint_url);
        finalize_ok(c);
        ck_assert_str_eq(c->api_url, "https://avatar.example.com/api");
        ck_assert_str_eq(c->storage_url, "https://avatar.example.com/storage");
        config_free(c);

        /* base_api_url in the file drops AVATAR_BASE_URL: storage falls back to the default */
        c = env_ok(env_base);
        ck_assert_int_eq(load(c, "upstream:\n  base_api_url: https://file.example.com/api\n", &e), 0);
        ck_assert_ptr_null(c->base_url);
        finalize_ok(c);
        ck_assert_str_eq(c->api_url, "https://file.example.com/api");
        ck_assert_str_eq(c->storage_url, DEFAULT_STORAGE_URL);
        config_free(c);

        /* a command-line override replaces them the same way */
        c = env_ok(env_base);
        set_ok(c, "upstream.storage_endpoint_url", "https://cli.example.com");
        ck_assert(!c->urls_from_env);
        ck_assert_ptr_null(c->base_url);
        finalize_ok(c);
        ck_assert_str_eq(c->api_url, DEFAULT_API_URL);
        ck_assert_str_eq(c->storage_url, "https://cli.example.com");
        config_free(c);

        /* a file without URL keys keeps the environment's */
        c = env_ok(env_base);
        ck_assert_int_eq(load(c, "upstream:\n  timeout_s: 5\n", &e), 0);
        ck_assert(c->urls_from_env);
        finalize_ok(c);
        ck_assert_str_eq(c->api_url, "https://env.example.com/api");
        ck_assert_uint_eq(c->timeout_s, 5);
        config_free(c);
}
END_TEST

/* URL keys in the same file are kept together. */
START_TEST(test_url_file_keys_combine) {
        /* URL keys from the same file are one group: both are kept */
        Config *c = load_ok("upstream:\n"
                            "  base_api_url: https://api.example.com/api\n"
                            "  storage_endpoint_url: https://s3.example.com\n");

        finalize_ok(c);
        ck_assert_str_eq(c->api_url, "https://api.example.com/api");
        ck_assert_str_eq(c->storage_url, "https://s3.example.com");
        config_free(c);
}
END_TEST

/* ---- file parsing ---- */

/* A file setting every key sets every field. */
START_TEST(test_file_full) {
        Config *c = new_config();
        ConfigError e = {};
        uid_t read_uids[] = { 0, 1234 }, admin_uids[] = { 4321 };
        gid_t read_gids[] = { 0, 2345 }, operate_gids[] = { 0 };

        ck_assert_int_eq(config_load_file(c, DATA("full.yaml"), false, &e), 0);
        ck_assert_ptr_null(e.message);
        ck_assert_str_eq(c->source, DATA("full.yaml"));
        ck_assert(!c->urls_from_env);

        ck_assert_str_eq(c->socket_path, "/run/avatard-test/avatard.sock");
        ck_assert_uint_eq(c->socket_mode, 0600);
        ck_assert_str_eq(c->socket_group, "avatar-test");
        ck_assert_str_eq(c->state_directory, "/var/lib/avatard-test");
        ck_assert_int_eq(c->log_level, LOG_DEBUG);

        ck_assert_uint_eq(c->max_frame_bytes, 2 * 1024 * 1024);
        ck_assert_uint_eq(c->max_connections, 100);
        ck_assert_uint_eq(c->max_connections_per_uid, 10);
        ck_assert_uint_eq(c->max_inflight_per_connection, 8);
        ck_assert_uint_eq(c->max_output_bytes, 8 * 1024 * 1024);
        ck_assert_uint_eq(c->idle_timeout_s, 0);
        ck_assert_uint_eq(c->shutdown_timeout_s, 5);

        ck_assert_ptr_null(c->base_url);
        ck_assert_str_eq(c->base_api_url, "https://avatar.example.com/api/");
        ck_assert_str_eq(c->storage_endpoint_url, "https://storage.example.com/");
        ck_assert_str_eq(c->api_key_file, "/etc/avatard/api-key");
        ck_assert_str_eq(c->user_agent, "avatard-test/1");
        ck_assert_str_eq(c->ca_file, "/etc/ssl/test-ca.pem");
        ck_assert(!c->should_verify_ssl);
        ck_assert(!c->verify_compatibility);
        ck_assert(c->allow_insecure_http);
        ck_assert_uint_eq(c->timeout_s, 120);
        ck_assert_uint_eq(c->connect_timeout_s, 3);
        ck_assert_uint_eq(c->max_body_bytes, UINT64_C(1) << 30);
        ck_assert_uint_eq(c->max_attempts, 2);
        ck_assert_uint_eq(c->retry_base_ms, 50);
        ck_assert_uint_eq(c->retry_max_ms, 900);
        ck_assert_uint_eq(c->rate_limit_retries, 0);
        ck_assert_uint_eq(c->max_retry_after_s, 30);
        ck_assert_uint_eq(c->upstream_max_connections, 16);
        ck_assert_uint_eq(c->breaker_threshold, 3);
        ck_assert_uint_eq(c->breaker_cooldown_s, 20);

        ck_assert_uint_eq(c->compatibility_ttl_s, 60);
        ck_assert_uint_eq(c->health_ttl_s, 0);
        ck_assert_uint_eq(c->jobs_ttl_s, 1);
        ck_assert_uint_eq(c->stale_max_s, 30);

        ck_assert_uint_eq(c->poll_min_s, 1);
        ck_assert_uint_eq(c->poll_max_s, 60);
        ck_assert_uint_eq(c->multipart_threshold_bytes, 128 * 1024 * 1024);
        ck_assert_uint_eq(c->multipart_part_bytes, 32 * 1024 * 1024);
        ck_assert_uint_eq(c->max_runners_per_uid, 7);

        assert_rule(&c->access[ROLE_READ], read_uids, 2, read_gids, 2);
        assert_rule(&c->access[ROLE_OPERATE], NULL, 0, operate_gids, 1);
        assert_rule(&c->access[ROLE_ADMIN], admin_uids, 1, NULL, 0);

        finalize_ok(c);
        ck_assert_str_eq(c->api_url, "https://avatar.example.com/api");
        ck_assert_str_eq(c->storage_url, "https://storage.example.com");
        config_free(c);
}
END_TEST

/* Empty, comment-only and null documents are valid and change nothing. */
START_TEST(test_file_empty) {
        static const char *const files[] = { DATA("empty.yaml"), DATA("comments-only.yaml") };
        static const char *const texts[] = { "", "\n\n", "~\n", "null", "---\n", "---\n...\n",
                                             "# comment\n" };
        Config *d = new_config();
        json_object *dj = config_to_json(d);

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                Config *c = new_config();
                ConfigError e = {};
                json_object *cj;

                ck_assert_int_eq(config_load_file(c, files[i], false, &e), 0);
                ck_assert_str_eq(c->source, files[i]);
                /* apart from the source, nothing changed */
                free(c->source);
                c->source = NULL;
                cj = config_to_json(c);
                ck_assert_str_eq(json_object_to_json_string(cj), json_object_to_json_string(dj));
                json_object_put(cj);
                config_free(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                Config *c = load_ok(texts[i]);
                json_object *cj = config_to_json(c);

                ck_assert_str_eq(json_object_to_json_string(cj), json_object_to_json_string(dj));
                json_object_put(cj);
                config_free(c);
        }
        json_object_put(dj);
        config_free(d);
}
END_TEST

/* String keys take plain and quoted values; null or empty unsets them. */
START_TEST(test_file_strings) {
        Config *c = load_ok("socket: /run/x/avatard.sock\n"
                            "socket_group: ~\n"
                            "upstream:\n"
                            "  user_agent: 'quoted agent'\n"
                            "  ca_file: \"\"\n"
                            "  api_key_file:\n");

        ck_assert_str_eq(c->socket_path, "/run/x/avatard.sock");
        /* null and empty strings unset a string key */
        ck_assert_ptr_null(c->socket_group);
        ck_assert_str_eq(c->user_agent, "quoted agent");
        ck_assert_ptr_null(c->ca_file);
        ck_assert_ptr_null(c->api_key_file);
        config_free(c);
}
END_TEST

/* Boolean keys accept the YAML and pydantic forms and refuse others. */
START_TEST(test_file_bools) {
        static const char *const truthy[] = { "true", "True", "yes", "on", "1", "y", "t" };
        static const char *const falsy[] = { "false", "FALSE", "no", "off", "0", "n", "f" };

        for (size_t i = 0; i < ELEMENTSOF(truthy); i++) {
                char yaml[128];
                Config *c;

                snprintf(yaml, sizeof(yaml), "upstream:\n  allow_insecure_http: %s\n", truthy[i]);
                c = load_ok(yaml);
                ck_assert_msg(c->allow_insecure_http, "'%s' is not true", truthy[i]);
                config_free(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(falsy); i++) {
                char yaml[128];
                Config *c;

                snprintf(yaml, sizeof(yaml), "upstream:\n  should_verify_ssl: %s\n", falsy[i]);
                c = load_ok(yaml);
                ck_assert_msg(!c->should_verify_ssl, "'%s' is not false", falsy[i]);
                config_free(c);
        }
        assert_load_error("upstream:\n  should_verify_ssl: maybe\n",
                          "test.yaml:2: upstream.should_verify_ssl: expected a boolean (true/false), got 'maybe'");
        assert_load_error("upstream:\n  verify_compatibility: ''\n",
                          "test.yaml:2: upstream.verify_compatibility: expected a boolean (true/false), got ''");
}
END_TEST

/* Integer keys accept their range and name it when a value is outside. */
START_TEST(test_file_uints) {
        Config *c;

        /* both ends of a range are accepted; quoted numbers too */
        c = load_ok("limits:\n  max_connections: 1\n  max_inflight_per_connection: 4096\n"
                    "upstream:\n  rate_limit_retries: 0\n  max_attempts: '50'\n");
        ck_assert_uint_eq(c->max_connections, 1);
        ck_assert_uint_eq(c->max_inflight_per_connection, 4096);
        ck_assert_uint_eq(c->rate_limit_retries, 0);
        ck_assert_uint_eq(c->max_attempts, 50);
        config_free(c);

        assert_load_error("limits:\n  max_connections: 0\n",
                          "test.yaml:2: limits.max_connections: must be between 1 and 1000000, got '0'");
        assert_load_error("limits:\n  max_connections: 1000001\n",
                          "test.yaml:2: limits.max_connections: must be between 1 and 1000000, got '1000001'");
        assert_load_error("upstream:\n  max_attempts: 51\n",
                          "test.yaml:2: upstream.max_attempts: must be between 1 and 50, got '51'");
        assert_load_error("cache:\n  health_ttl_s: 3601\n",
                          "test.yaml:2: cache.health_ttl_s: must be between 0 and 3600, got '3601'");
        assert_load_error("upstream:\n  timeout_s: 99999999999999999999999\n",
                          "test.yaml:2: upstream.timeout_s: must be between 1 and 86400, got '99999999999999999999999'");
        /* 2^32 + 5 must not wrap around to 5 */
        assert_load_error("runners:\n  poll_min_s: 4294967301\n",
                          "test.yaml:2: runners.poll_min_s: must be between 1 and 3600, got '4294967301'");
        assert_load_error("runners:\n  poll_max_s: -1\n",
                          "test.yaml:2: runners.poll_max_s: expected a non-negative integer, got '-1'");
        assert_load_error("runners:\n  poll_max_s: 1.5\n",
                          "test.yaml:2: runners.poll_max_s: expected a non-negative integer, got '1.5'");
        assert_load_error("runners:\n  poll_max_s: ten\n",
                          "test.yaml:2: runners.poll_max_s: expected a non-negative integer, got 'ten'");
        assert_load_error("runners:\n  poll_max_s: ' 5'\n",
                          "test.yaml:2: runners.poll_max_s: expected a non-negative integer, got ' 5'");
        /* size suffixes are for sizes only */
        assert_load_error("runners:\n  max_runners_per_uid: 10K\n",
                          "test.yaml:2: runners.max_runners_per_uid: expected a non-negative integer, got '10K'");
}
END_TEST

/* Size keys take K/M/G/KiB/MiB/GiB suffixes, and ranges apply to the result. */
START_TEST(test_file_sizes) {
        static const struct {
                const char *value;
                uint64_t expected;
        } ok[] = {
                { "1048576", 1048576 },           { "64K", 64 * 1024 },
                { "64KiB", 64 * 1024 },           { "2M", 2 * 1024 * 1024 },
                { "2MiB", 2 * 1024 * 1024 },      { "1G", UINT64_C(1) << 30 },
                { "1GiB", UINT64_C(1) << 30 },    { "4 G", UINT64_C(4) << 30 },
                { "4294967296", UINT64_C(1) << 32 },
        };
        static const char *const bad[] = { "1T", "1k", "1KB", "1.5M", "M", "-1M", "1 M B", "" };
        Config *c;

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                char yaml[128];

                snprintf(yaml, sizeof(yaml), "upstream:\n  max_body_bytes: '%s'\n", ok[i].value);
                c = load_ok(yaml);
                ck_assert_msg(c->max_body_bytes == ok[i].expected, "'%s' gave %" PRIu64, ok[i].value,
                              c->max_body_bytes);
                config_free(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char yaml[128], expected[256];

                snprintf(yaml, sizeof(yaml), "limits:\n  max_output_bytes: '%s'\n", bad[i]);
                snprintf(expected, sizeof(expected),
                         "test.yaml:2: limits.max_output_bytes: expected a non-negative integer (optionally with K, M or G), got '%s'",
                         bad[i]);
                assert_load_error(yaml, expected);
        }
        /* ranges apply after the suffix */
        assert_load_error("limits:\n  max_frame_bytes: 3K\n",
                          "test.yaml:2: limits.max_frame_bytes: must be between 4096 and 67108864, got '3K'");
        assert_load_error("limits:\n  max_frame_bytes: 65M\n",
                          "test.yaml:2: limits.max_frame_bytes: must be between 4096 and 67108864, got '65M'");
        assert_load_error("runners:\n  multipart_threshold_bytes: 6G\n",
                          "test.yaml:2: runners.multipart_threshold_bytes: must be between 5242880 and 5368709120, got '6G'");
        assert_load_error("upstream:\n  max_body_bytes: 4294967297\n",
                          "test.yaml:2: upstream.max_body_bytes: must be between 65536 and 4294967296, got '4294967297'");
        /* a suffix that overflows 64 bits is out of range, not wrapped */
        assert_load_error("upstream:\n  max_body_bytes: 17179869184G\n",
                          "test.yaml:2: upstream.max_body_bytes: must be between 65536 and 4294967296, got '17179869184G'");

        c = load_ok("limits:\n  max_frame_bytes: 4K\nrunners:\n  multipart_threshold_bytes: 5G\n"
                            "  multipart_part_bytes: 5M\n");

        ck_assert_uint_eq(c->max_frame_bytes, 4096);
        ck_assert_uint_eq(c->multipart_threshold_bytes, UINT64_C(5) << 30);
        ck_assert_uint_eq(c->multipart_part_bytes, 5 * 1024 * 1024);
        config_free(c);
}
END_TEST

/* The socket mode is octal, at most 0777. */
START_TEST(test_file_mode) {
        static const struct {
                const char *value;
                mode_t expected;
        } ok[] = { { "0600", 0600 }, { "660", 0660 }, { "0", 0 }, { "0777", 0777 }, { "00640", 0640 } };
        static const char *const bad[] = { "01777", "1000", "0800", "rw-rw----", "", "-1", "0x1ff" };
        Config *c;

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                char yaml[64];

                snprintf(yaml, sizeof(yaml), "socket_mode: '%s'\n", ok[i].value);
                c = load_ok(yaml);
                ck_assert_msg(c->socket_mode == ok[i].expected, "'%s' gave %o", ok[i].value,
                              (unsigned) c->socket_mode);
                config_free(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char yaml[64], expected[128];

                snprintf(yaml, sizeof(yaml), "socket_mode: '%s'\n", bad[i]);
                snprintf(expected, sizeof(expected),
                         "test.yaml:1: socket_mode: expected an octal mode such as 0660, got '%s'", bad[i]);
                assert_load_error(yaml, expected);
        }

        /* unquoted, as people write it */
        c = load_ok("socket_mode: 0640\n");

        ck_assert_uint_eq(c->socket_mode, 0640);
        config_free(c);
}
END_TEST

/* The log level takes syslog names, their short forms and digits. */
START_TEST(test_file_log_level) {
        static const struct {
                const char *value;
                int expected;
        } ok[] = {
                { "emerg", LOG_EMERG }, { "alert", LOG_ALERT },   { "crit", LOG_CRIT },
                { "err", LOG_ERR },     { "error", LOG_ERR },     { "warning", LOG_WARNING },
                { "warn", LOG_WARNING }, { "notice", LOG_NOTICE }, { "info", LOG_INFO },
                { "debug", LOG_DEBUG }, { "0", LOG_EMERG },       { "7", LOG_DEBUG },
        };

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                char yaml[64];
                Config *c;

                snprintf(yaml, sizeof(yaml), "log_level: %s\n", ok[i].value);
                c = load_ok(yaml);
                ck_assert_msg(c->log_level == ok[i].expected, "'%s' gave %d", ok[i].value, c->log_level);
                config_free(c);
        }
        assert_load_error("log_level: loud\n",
                          "test.yaml:1: log_level: expected one of emerg, alert, crit, err, warning, notice, info, debug; got 'loud'");
        assert_load_error("\nlog_level: 8\n",
                          "test.yaml:2: log_level: expected one of emerg, alert, crit, err, warning, notice, info, debug; got '8'");
        assert_load_error("log_level: DEBUG\n",
                          "test.yaml:1: log_level: expected one of emerg, alert, crit, err, warning, notice, info, debug; got 'DEBUG'");
}
END_TEST

/* Unknown keys are errors naming the dotted key and its line. */
START_TEST(test_file_unknown_keys) {
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(config_load_file(c, DATA("unknown-top.yaml"), false, &e), -EINVAL);
        assert_error(&e, DATA("unknown-top.yaml") ":4: sockett: unknown key");
        ck_assert_int_eq(config_load_file(c, DATA("unknown-section.yaml"), false, &e), -EINVAL);
        assert_error(&e, DATA("unknown-section.yaml") ":6: upstream.connection_timeout_s: unknown key");
        /* a failed load does not claim the file as the source */
        ck_assert_ptr_null(c->source);
        config_free(c);

        assert_load_error("log_level: info\nbogus: 1\n", "test.yaml:2: bogus: unknown key");
        /* a section key at the top level, or in the wrong section */
        assert_load_error("max_connections: 5\n", "test.yaml:1: max_connections: unknown key");
        assert_load_error("limits:\n  timeout_s: 5\n", "test.yaml:2: limits.timeout_s: unknown key");
        assert_load_error("upstream:\n  max_frame_bytes: 1M\n", "test.yaml:2: upstream.max_frame_bytes: unknown key");
        /* dotted names are not keys in the file, and sections do not nest */
        assert_load_error("limits.max_connections: 5\n", "test.yaml:1: limits.max_connections: unknown key");
        assert_load_error("limits:\n  limits:\n    max_connections: 5\n", "test.yaml:2: limits.limits: unknown key");
        assert_load_error("limits:\n  access: {}\n", "test.yaml:2: limits.access: unknown key");
        /* keys are case-sensitive */
        assert_load_error("Log_Level: info\n", "test.yaml:1: Log_Level: unknown key");
        assert_load_error("? [a, b]\n: 1\n", "test.yaml:1: (top level): keys must be plain strings");
        assert_load_error("cache:\n  {a: 1}: 2\n", "test.yaml:2: cache: keys must be plain strings");
}
END_TEST

/* Duplicate keys are errors at the line of the second one. */
START_TEST(test_file_duplicates) {
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(config_load_file(c, DATA("duplicate-top.yaml"), false, &e), -EINVAL);
        assert_error(&e, DATA("duplicate-top.yaml") ":5: log_level: duplicate key");
        ck_assert_int_eq(config_load_file(c, DATA("duplicate-section.yaml"), false, &e), -EINVAL);
        assert_error(&e, DATA("duplicate-section.yaml") ":5: max_connections: duplicate key in limits");
        config_free(c);

        assert_load_error("limits:\n  max_connections: 1\ncache: {}\nlimits:\n  max_connections: 2\n",
                          "test.yaml:4: limits: duplicate key");
        assert_load_error("socket_mode: '0600'\n'socket_mode': '0660'\n", "test.yaml:2: socket_mode: duplicate key");
        assert_load_error("access:\n  read: {}\n  admin: {}\n  read: {}\n", "test.yaml:4: read: duplicate key in access");
        assert_load_error("access:\n  read:\n    users: [root]\n    users: [0]\n",
                          "test.yaml:4: users: duplicate key in read");
        /* a duplicate is reported even when a later key is unknown */
        assert_load_error("upstream:\n  timeout_s: 5\n  timeout_s: 6\n  bogus: 1\n",
                          "test.yaml:3: timeout_s: duplicate key in upstream");
}
END_TEST

/* The duplicate check is linear: a file of 60,000 distinct keys (near the 1 MiB cap) is
 * refused for its first unknown key at once, not after a pairwise scan of every key
 * (regression: the scan was quadratic and took minutes on such a file). */
START_TEST(test_file_many_keys) {
        size_t n = 60000, off = 0, cap = n * 16 + 1;
        char *text = malloc(cap);
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_ptr_nonnull(text);
        for (size_t i = 0; i < n; i++)
                off += (size_t) snprintf(text + off, cap - off, "k%zu: 1\n", i);
        ck_assert_int_eq(config_load_string(c, "many.yaml", text, off, &e), -EINVAL);
        assert_error(&e, "many.yaml:1: k0: unknown key");
        off = 0;
        for (size_t i = 0; i < n; i++)
                off += (size_t) snprintf(text + off, cap - off, "k%zu: 1\n", i == n - 1 ? 0 : i);
        ck_assert_int_eq(config_load_string(c, "many.yaml", text, off, &e), -EINVAL);
        assert_error(&e, "many.yaml:60000: k0: duplicate key");
        config_free(c);
        free(text);
}
END_TEST

/* A mapping or list where a value belongs, or a scalar where a section belongs, is an error. */
START_TEST(test_file_wrong_types) {
        /* a mapping or a list where a scalar is expected */
        assert_load_error("socket:\n  path: /run/a.sock\n", "test.yaml:2: socket: expected a single value");
        assert_load_error("log_level: [info]\n", "test.yaml:1: log_level: expected a single value");
        assert_load_error("upstream:\n  timeout_s: {seconds: 5}\n",
                          "test.yaml:2: upstream.timeout_s: expected a single value");
        /* a scalar or a list where a section is expected */
        assert_load_error("limits: 5\n", "test.yaml:1: limits: expected a mapping");
        assert_load_error("upstream:\n  - base_url\n", "test.yaml:2: upstream: expected a mapping");
        assert_load_error("access: admin\n", "test.yaml:1: access: expected a mapping of roles");
}
END_TEST

/* A null value is an error for a key that needs one; empty sections are fine. */
START_TEST(test_file_nulls) {
        Config *c;

        assert_load_error("log_level:\n", "test.yaml:1: log_level: a value is required");
        assert_load_error("socket_mode: ~\n", "test.yaml:1: socket_mode: a value is required");
        assert_load_error("limits:\n  max_connections: null\n",
                          "test.yaml:2: limits.max_connections: a value is required");
        assert_load_error("upstream:\n  should_verify_ssl: NULL\n",
                          "test.yaml:2: upstream.should_verify_ssl: a value is required");
        assert_load_error("limits:\n  max_output_bytes: Null\n",
                          "test.yaml:2: limits.max_output_bytes: a value is required");

        /* empty sections and an empty access section change nothing */
        c = load_ok("limits:\nupstream: ~\ncache: {}\nrunners:\naccess: ~\n");
        ck_assert_uint_eq(c->max_connections, PROTO_CONNECTIONS_DEFAULT);
        ck_assert_uint_eq(c->timeout_s, 60);
        ck_assert_uint_eq(c->poll_max_s, 20);
        config_free(c);
}
END_TEST

/* Invalid YAML is a syntax error with the line of the problem. */
START_TEST(test_file_syntax_error) {
        Config *c = new_config();
        ConfigError e = {};
        char *s;

        ck_assert_int_eq(config_load_file(c, DATA("syntax.yaml"), false, &e), -EINVAL);
        ck_assert_str_eq(e.file, DATA("syntax.yaml"));
        ck_assert_str_eq(e.key, "(syntax)");
        ck_assert_uint_eq(e.line, 4);
        ck_assert_ptr_nonnull(e.message);
        ck_assert_str_ne(e.message, "");
        s = config_error_to_string(&e);
        ck_assert_ptr_nonnull(strstr(s, DATA("syntax.yaml") ":4: (syntax): "));
        free(s);
        config_error_done(&e);
        ck_assert_int_eq(c->log_level, LOG_INFO);
        config_free(c);

        c = new_config();
        ck_assert_int_eq(load(c, "log_level: info\n  socket: /a\n", &e), -EINVAL);
        ck_assert_str_eq(e.key, "(syntax)");
        ck_assert_uint_eq(e.line, 2);
        config_error_done(&e);
        ck_assert_int_eq(load(c, "a: 'unterminated\n", &e), -EINVAL);
        ck_assert_str_eq(e.key, "(syntax)");
        config_error_done(&e);
        ck_assert_int_eq(load(c, "\tlog_level: info\n", &e), -EINVAL);
        ck_assert_str_eq(e.key, "(syntax)");
        ck_assert_uint_eq(e.line, 1);
        config_error_done(&e);
        config_free(c);
}
END_TEST

/* A root that is not a mapping is refused. */
START_TEST(test_file_not_mapping) {
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(config_load_file(c, DATA("not-mapping.yaml"), false, &e), -EINVAL);
        assert_error(&e, DATA("not-mapping.yaml") ":2: (top level): expected a mapping of keys");
        config_free(c);

        assert_load_error("hello\n", "test.yaml:1: (top level): expected a mapping of keys");
        assert_load_error("\n\n'~'\n", "test.yaml:3: (top level): expected a mapping of keys");
}
END_TEST

/* A second YAML document is refused instead of being ignored. */
START_TEST(test_file_two_documents) {
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(config_load_file(c, DATA("two-documents.yaml"), false, &e), -EINVAL);
        assert_error(&e, DATA("two-documents.yaml") ":4: (top level): only one YAML document is allowed");
        /* nothing of the rejected file was applied */
        ck_assert_int_eq(c->log_level, LOG_INFO);
        config_free(c);

        /* a syntax error after the first document is not skipped either */
        c = new_config();
        ck_assert_int_eq(load(c, "log_level: info\n---\nlimits: [\n", &e), -EINVAL);
        ck_assert_str_eq(e.key, "(syntax)");
        config_error_done(&e);
        config_free(c);

        /* explicit markers around one document, and an empty second one, are fine */
        c = load_ok("---\nlog_level: debug\n...\n");
        ck_assert_int_eq(c->log_level, LOG_DEBUG);
        config_free(c);
        c = load_ok("log_level: debug\n---\n");
        ck_assert_int_eq(c->log_level, LOG_DEBUG);
        config_free(c);
}
END_TEST

/* A missing file is -ENOENT unless optional, with or without an error object. */
START_TEST(test_file_missing) {
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(config_load_file(c, DATA("does-not-exist.yaml"), false, &e), -ENOENT);
        assert_error(&e, DATA("does-not-exist.yaml") ": (file): No such file or directory");
        ck_assert_ptr_null(c->source);

        ck_assert_int_eq(config_load_file(c, DATA("does-not-exist.yaml"), true, &e), 0);
        ck_assert_ptr_null(e.message);
        ck_assert_ptr_null(c->source);
        ck_assert_str_eq(c->socket_path, AVATARD_DEFAULT_SOCKET);

        /* optional covers a missing file only */
        ck_assert_int_eq(config_load_file(c, DATA("unknown-top.yaml"), true, &e), -EINVAL);
        config_error_done(&e);

        /* without an error object the result is the same */
        ck_assert_int_eq(config_load_file(c, DATA("does-not-exist.yaml"), false, NULL), -ENOENT);
        ck_assert_int_eq(config_load_file(c, DATA("unknown-top.yaml"), false, NULL), -EINVAL);
        ck_assert_int_eq(config_load_string(c, "x", "bogus: 1", 8, NULL), -EINVAL);
        config_free(c);
}
END_TEST

/* A file over 1 MiB is refused; exactly 1 MiB is read. */
START_TEST(test_file_size_limit) {
        char *path, *expected = NULL;
        Config *c = new_config();
        ConfigError e = {};

        /* exactly 1 MiB is accepted */
        path = write_comment_file(1024 * 1024);
        ck_assert_int_eq(config_load_file(c, path, false, &e), 0);
        ck_assert_str_eq(c->source, path);
        ck_assert_int_eq(unlink(path), 0);
        free(path);

        /* one byte more is not */
        path = write_comment_file(1024 * 1024 + 1);
        ck_assert_int_eq(config_load_file(c, path, false, &e), -EINVAL);
        ck_assert_int_ge(asprintf(&expected, "%s: (file): larger than 1048576 bytes", path), 0);
        assert_error(&e, expected);
        ck_assert_int_eq(unlink(path), 0);
        free(expected);
        free(path);
        config_free(c);
}
END_TEST

/* A second file overrides only the keys it sets. */
START_TEST(test_file_later_overrides) {
        /* a second file overrides only what it sets */
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(config_load_file(c, DATA("full.yaml"), false, &e), 0);
        ck_assert_int_eq(config_load_file(c, DATA("log-level.yaml"), false, &e), 0);
        ck_assert_str_eq(c->source, DATA("log-level.yaml"));
        ck_assert_int_eq(c->log_level, LOG_WARNING);
        ck_assert_uint_eq(c->max_connections, 100);
        ck_assert_str_eq(c->base_api_url, "https://avatar.example.com/api/");
        config_free(c);
}
END_TEST

/* ---- access ---- */

/* Users and groups are given by name or number; unnamed roles keep their defaults. */
START_TEST(test_access_names_and_numbers) {
        Config *c = load_ok("access:\n"
                            "  read:\n"
                            "    users: [root, '1000', 65534]\n"
                            "    groups: [root, 100]\n"
                            "  admin:\n"
                            "    users:\n"
                            "      - 4242\n");
        uid_t read_uids[] = { 0, 1000, 65534 }, admin_uids[] = { 4242 };
        gid_t read_gids[] = { 0, 100 };
        struct group *g = getgrnam("avatar");

        assert_rule(&c->access[ROLE_READ], read_uids, 3, read_gids, 2);
        assert_rule(&c->access[ROLE_ADMIN], admin_uids, 1, NULL, 0);
        /* a role the file does not name keeps its default */
        if (g) {
                gid_t gid = g->gr_gid;

                assert_rule(&c->access[ROLE_OPERATE], NULL, 0, &gid, 1);
        } else
                assert_rule(&c->access[ROLE_OPERATE], NULL, 0, NULL, 0);
        config_free(c);
}
END_TEST

/* A role named in the file replaces its default rule. */
START_TEST(test_access_replaces_default) {
        /* a role named in the file replaces its default; null or empty leaves it empty */
        Config *c = load_ok("access:\n  operate: ~\n  read:\n    users: ~\n    groups: []\n  admin: {}\n");

        assert_rule(&c->access[ROLE_READ], NULL, 0, NULL, 0);
        assert_rule(&c->access[ROLE_OPERATE], NULL, 0, NULL, 0);
        assert_rule(&c->access[ROLE_ADMIN], NULL, 0, NULL, 0);
        config_free(c);

        c = load_ok("access:\n  operate:\n    users: [77]\n");
        assert_rule(&c->access[ROLE_OPERATE], (uid_t[]){ 77 }, 1, NULL, 0);
        config_free(c);

        /* an empty access section keeps the defaults */
        c = load_ok("access:\n");
        ck_assert_uint_eq(c->access[ROLE_READ].n_uids, 0);
        config_free(c);
}
END_TEST

/* Unknown roles, users, groups and keys, and wrong types, are errors. */
START_TEST(test_access_errors) {
        assert_load_error("access:\n  superuser:\n    users: [root]\n",
                          "test.yaml:2: access: unknown role 'superuser' (known: read, operate, admin)");
        assert_load_error("access:\n  none: {}\n",
                          "test.yaml:2: access: unknown role 'none' (known: read, operate, admin)");
        assert_load_error("access:\n  Admin: {}\n",
                          "test.yaml:2: access: unknown role 'Admin' (known: read, operate, admin)");
        assert_load_error("access:\n  read:\n    users: [root, avatard-test-no-such-user]\n",
                          "test.yaml:3: access.read.users: unknown user 'avatard-test-no-such-user'");
        assert_load_error("access:\n  operate:\n    groups:\n      - root\n      - avatard-test-no-such-group\n",
                          "test.yaml:5: access.operate.groups: unknown group 'avatard-test-no-such-group'");
        /* (uid_t) -1 is not a uid */
        assert_load_error("access:\n  admin:\n    users: [4294967295]\n",
                          "test.yaml:3: access.admin.users: unknown user '4294967295'");
        assert_load_error("access:\n  read:\n    members: [root]\n",
                          "test.yaml:3: access: unknown key 'members' in role read (known: users, groups)");
        assert_load_error("access:\n  read:\n    users: [root]\n    Groups: [root]\n",
                          "test.yaml:4: access: unknown key 'Groups' in role read (known: users, groups)");
        assert_load_error("access:\n  read: [root]\n", "test.yaml:2: read: expected a mapping with users and groups");
        assert_load_error("access:\n  read:\n    users: root\n",
                          "test.yaml:3: access.read.users: expected a list of user names");
        assert_load_error("access:\n  read:\n    groups: {root: 1}\n",
                          "test.yaml:3: access.read.groups: expected a list of group names");
        assert_load_error("access:\n  read:\n    users: [[root]]\n",
                          "test.yaml:3: access.read.users: expected a user name");
        assert_load_error("access:\n  read:\n    groups: ['']\n",
                          "test.yaml:3: access.read.groups: expected a group name");
}
END_TEST

/* The highest role matching the uid, primary gid or supplementary groups wins. */
START_TEST(test_role_for) {
        Config *c = load_ok("access:\n"
                            "  read:\n    users: [1001]\n    groups: [2001]\n"
                            "  operate:\n    groups: [2002]\n"
                            "  admin:\n    users: [1003]\n");
        gid_t supp_read[] = { 3000, 2001 }, supp_operate[] = { 2002 }, supp_none[] = { 3000, 3001 };

        /* uid 0 is always admin, even with no rule naming it */
        ck_assert_int_eq(config_role_for(c, 0, 0, NULL, 0), ROLE_ADMIN);
        ck_assert_int_eq(config_role_for(c, 0, 5555, supp_none, 2), ROLE_ADMIN);
        /* by uid */
        ck_assert_int_eq(config_role_for(c, 1001, 9999, NULL, 0), ROLE_READ);
        ck_assert_int_eq(config_role_for(c, 1003, 9999, NULL, 0), ROLE_ADMIN);
        /* by primary gid */
        ck_assert_int_eq(config_role_for(c, 5000, 2001, NULL, 0), ROLE_READ);
        ck_assert_int_eq(config_role_for(c, 5000, 2002, NULL, 0), ROLE_OPERATE);
        /* by supplementary group */
        ck_assert_int_eq(config_role_for(c, 5000, 9999, supp_read, 2), ROLE_READ);
        ck_assert_int_eq(config_role_for(c, 5000, 9999, supp_operate, 1), ROLE_OPERATE);
        /* the highest matching role wins */
        ck_assert_int_eq(config_role_for(c, 1001, 9999, supp_operate, 1), ROLE_OPERATE);
        ck_assert_int_eq(config_role_for(c, 1001, 2002, NULL, 0), ROLE_OPERATE);
        ck_assert_int_eq(config_role_for(c, 1003, 2001, supp_operate, 1), ROLE_ADMIN);
        /* no match */
        ck_assert_int_eq(config_role_for(c, 5000, 9999, NULL, 0), ROLE_NONE);
        ck_assert_int_eq(config_role_for(c, 5000, 9999, supp_none, 2), ROLE_NONE);
        /* the group count is honoured: 2001 is past the end */
        ck_assert_int_eq(config_role_for(c, 5000, 9999, supp_read, 1), ROLE_NONE);
        config_free(c);
}
END_TEST

/* By default root is admin and "avatar" members, if the group exists, operate. */
START_TEST(test_role_for_defaults) {
        Config *c = new_config();
        struct group *g = getgrnam("avatar");

        ck_assert_int_eq(config_role_for(c, 0, 0, NULL, 0), ROLE_ADMIN);
        ck_assert_int_eq(config_role_for(c, 4999, 4999, NULL, 0), ROLE_NONE);
        if (g) {
                gid_t gid = g->gr_gid;

                ck_assert_int_eq(config_role_for(c, 4999, 4999, &gid, 1), ROLE_OPERATE);
        }
        config_free(c);
}
END_TEST

/* ---- config_set ---- */

/* config_set() takes dotted keys and validates as the file does. */
START_TEST(test_set) {
        Config *c = new_config();
        ConfigError e = {};

        set_ok(c, "socket", "/run/cli/avatard.sock");
        set_ok(c, "log_level", "debug");
        set_ok(c, "socket_mode", "0600");
        set_ok(c, "limits.max_connections", "10");
        set_ok(c, "limits.max_frame_bytes", "8M");
        set_ok(c, "upstream.should_verify_ssl", "off");
        set_ok(c, "upstream.max_connections", "8");
        set_ok(c, "cache.jobs_ttl_s", "0");
        set_ok(c, "runners.max_runners_per_uid", "3");
        set_ok(c, "socket_group", "");
        ck_assert_str_eq(c->socket_path, "/run/cli/avatard.sock");
        ck_assert_int_eq(c->log_level, LOG_DEBUG);
        ck_assert_uint_eq(c->socket_mode, 0600);
        ck_assert_uint_eq(c->max_connections, 10);
        ck_assert_uint_eq(c->max_frame_bytes, 8 * 1024 * 1024);
        ck_assert(!c->should_verify_ssl);
        ck_assert_uint_eq(c->upstream_max_connections, 8);
        ck_assert_uint_eq(c->jobs_ttl_s, 0);
        ck_assert_uint_eq(c->max_runners_per_uid, 3);
        ck_assert_ptr_null(c->socket_group);
        /* command-line values are not from a file */
        ck_assert_ptr_null(c->source);

        ck_assert_int_eq(config_set(c, "upstream.timeout_s", "0", &e), -EINVAL);
        assert_error(&e, "upstream.timeout_s: must be between 1 and 86400, got '0'");
        ck_assert_int_eq(config_set(c, "log_level", "chatty", &e), -EINVAL);
        assert_error(&e, "log_level: expected one of emerg, alert, crit, err, warning, notice, info, debug; got 'chatty'");
        ck_assert_int_eq(config_set(c, "upstream.allow_insecure_http", "sure", &e), -EINVAL);
        assert_error(&e, "upstream.allow_insecure_http: expected a boolean (true/false), got 'sure'");
        /* failed sets leave the previous values */
        ck_assert_uint_eq(c->timeout_s, 60);
        ck_assert_int_eq(c->log_level, LOG_DEBUG);
        config_free(c);
}
END_TEST

/* config_set() refuses unknown keys, sections and the access section. */
START_TEST(test_set_unknown) {
        static const char *const unknown[] = {
                "nope", "limits.nope", "max_connections", "upstream.max_frame_bytes", "access",
                "access.read", "limits", "limits.", ".socket", "a.b.c", "limits.max_connections.x",
                "a-very-long-section-name-that-is-not-real.socket", "",
        };
        Config *c = new_config();

        for (size_t i = 0; i < ELEMENTSOF(unknown); i++) {
                ConfigError e = {};
                char expected[128];

                ck_assert_int_eq(config_set(c, unknown[i], "1", &e), -EINVAL);
                snprintf(expected, sizeof(expected), "%s: unknown key", unknown[i]);
                assert_error(&e, expected);
        }
        config_free(c);
}
END_TEST

/* ---- errors ---- */

/* Errors print as "FILE:LINE: KEY: message", dropping the parts that are unknown. */
START_TEST(test_error_to_string) {
        ConfigError e = { .file = (char *) "/etc/avatard/avatard.yaml", .line = 12,
                          .key = (char *) "limits.max_connections", .message = (char *) "unknown key" };
        char *s;

        s = config_error_to_string(&e);
        ck_assert_str_eq(s, "/etc/avatard/avatard.yaml:12: limits.max_connections: unknown key");
        free(s);

        /* no line: the file alone */
        e.line = 0;
        s = config_error_to_string(&e);
        ck_assert_str_eq(s, "/etc/avatard/avatard.yaml: limits.max_connections: unknown key");
        free(s);

        /* environment and command line: no file, even with a line */
        e.file = NULL;
        e.line = 3;
        e.key = (char *) "AVATAR_TIMEOUT";
        e.message = (char *) "bad";
        s = config_error_to_string(&e);
        ck_assert_str_eq(s, "AVATAR_TIMEOUT: bad");
        free(s);

        /* missing parts print as n/a */
        e = (ConfigError){};
        s = config_error_to_string(&e);
        ck_assert_str_eq(s, "n/a: n/a");
        free(s);
}
END_TEST

/* A new error replaces the previous one, and config_error_done() clears it. */
START_TEST(test_error_done_resets) {
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(load(c, "bogus: 1\n", &e), -EINVAL);
        ck_assert_str_eq(e.file, "test.yaml");
        ck_assert_uint_eq(e.line, 1);
        ck_assert_str_eq(e.key, "bogus");
        ck_assert_str_eq(e.message, "unknown key");
        /* a second error replaces the first without leaking it */
        ck_assert_int_eq(config_set(c, "nope", "1", &e), -EINVAL);
        ck_assert_ptr_null(e.file);
        ck_assert_uint_eq(e.line, 0);
        config_error_done(&e);
        ck_assert_ptr_null(e.file);
        ck_assert_ptr_null(e.key);
        ck_assert_ptr_null(e.message);
        ck_assert_uint_eq(e.line, 0);
        config_error_done(&e);
        config_free(c);
}
END_TEST

/* ---- config_to_json ---- */

/* The JSON view holds every section, the effective URLs and access, but never a key. */
START_TEST(test_to_json) {
        const char *env[] = { "AVATAR_API_KEY=sk-secret-never-shown", NULL };
        Config *c = env_ok(env);
        ConfigError e = {};
        json_object *o, *v, *a;
        const char *text;

        ck_assert_int_eq(config_load_file(c, DATA("full.yaml"), false, &e), 0);
        finalize_ok(c);
        o = config_to_json(c);
        ck_assert_ptr_nonnull(o);

        ck_assert_str_eq(json_str(o, NULL, "source"), DATA("full.yaml"));
        ck_assert_str_eq(json_str(o, NULL, "socket"), "/run/avatard-test/avatard.sock");
        ck_assert_str_eq(json_str(o, NULL, "socket_mode"), "0600");
        ck_assert_str_eq(json_str(o, NULL, "log_level"), "debug");
        ck_assert_int_eq(json_object_get_int64(json_get(o, "limits", "max_frame_bytes")), 2 * 1024 * 1024);
        ck_assert_int_eq(json_object_get_int64(json_get(o, "limits", "max_connections")), 100);
        ck_assert(!json_object_get_boolean(json_get(o, "upstream", "should_verify_ssl")));
        ck_assert_int_eq(json_object_get_int64(json_get(o, "upstream", "max_connections")), 16);
        ck_assert_int_eq(json_object_get_int64(json_get(o, "runners", "max_runners_per_uid")), 7);
        ck_assert_int_eq(json_object_get_int64(json_get(o, "cache", "stale_max_s")), 30);

        /* the effective URLs, next to the configured ones */
        ck_assert_str_eq(json_str(o, "upstream", "api_url"), "https://avatar.example.com/api");
        ck_assert_str_eq(json_str(o, "upstream", "storage_url"), "https://storage.example.com");
        ck_assert_str_eq(json_str(o, "upstream", "base_api_url"), "https://avatar.example.com/api/");
        ck_assert(json_object_is_type(json_get(o, "upstream", "base_url"), json_type_null));
        ck_assert_str_eq(json_str(o, "upstream", "api_key_file"), "/etc/avatard/api-key");

        /* access lists, by role */
        v = json_get(json_get(o, NULL, "access"), "read", "uids");
        ck_assert_uint_eq(json_object_array_length(v), 2);
        ck_assert_int_eq(json_object_get_int64(json_object_array_get_idx(v, 1)), 1234);
        a = json_get(o, NULL, "access");
        ck_assert(!json_object_object_get_ex(a, "none", NULL));
        ck_assert_uint_eq(json_object_array_length(json_get(a, "admin", "uids")), 1);

        /* no key anywhere: only the key file's path */
        text = json_object_to_json_string(o);
        ck_assert_ptr_null(strstr(text, "sk-secret-never-shown"));
        ck_assert(!json_object_object_get_ex(json_get(o, NULL, "upstream"), "api_key", NULL));
        json_object_object_foreach(json_get(o, NULL, "upstream"), k, val) {
                (void) val;
                ck_assert_msg(!strstr(k, "key") || streq(k, "api_key_file"), "unexpected member %s", k);
        }
        json_object_put(o);
        config_free(c);
}
END_TEST

/* The JSON view of the defaults, then of an environment base URL. */
START_TEST(test_to_json_defaults) {
        const char *env[] = { "AVATAR_BASE_URL=http://127.0.0.1:8080/api/", NULL };
        Config *c = new_config();
        ConfigError e = {};
        json_object *o;

        finalize_ok(c);
        o = config_to_json(c);
        ck_assert_ptr_nonnull(o);
        ck_assert(json_object_is_type(json_get(o, NULL, "source"), json_type_null));
        ck_assert_str_eq(json_str(o, NULL, "socket_mode"), "0660");
        ck_assert_str_eq(json_str(o, NULL, "log_level"), "info");
        ck_assert_str_eq(json_str(o, "upstream", "api_url"), DEFAULT_API_URL);
        ck_assert_str_eq(json_str(o, "upstream", "storage_url"), DEFAULT_STORAGE_URL);
        ck_assert(json_object_is_type(json_get(o, "upstream", "user_agent"), json_type_null));
        ck_assert(json_object_get_boolean(json_get(o, "upstream", "verify_compatibility")));
        ck_assert_int_eq(json_object_get_int64(json_get(o, "upstream", "timeout_s")), 60);
        json_object_put(o);

        /* an environment base URL shows up derived */
        ck_assert_int_eq(apply_env(c, env, &e), 0);
        finalize_ok(c);
        o = config_to_json(c);
        ck_assert_str_eq(json_str(o, "upstream", "base_url"), "http://127.0.0.1:8080");
        ck_assert_str_eq(json_str(o, "upstream", "api_url"), "http://127.0.0.1:8080/api");
        ck_assert_str_eq(json_str(o, "upstream", "storage_url"), "http://127.0.0.1:8080/storage");
        json_object_put(o);
        config_free(c);
}
END_TEST

/* ---- cross-key checks ---- */

/* retry_base_ms may not exceed retry_max_ms. */
START_TEST(test_cross_retry) {
        Config *c;
        ConfigError e = {};

        assert_yaml_finalize_error("upstream:\n  retry_base_ms: 101\n  retry_max_ms: 100\n",
                                   "upstream.retry_base_ms: must not exceed upstream.retry_max_ms (100)");
        c = load_ok("upstream:\n  retry_base_ms: 100\n  retry_max_ms: 100\n");
        finalize_ok(c);
        config_free(c);

        /* from a file: the error names the file, without a line */
        c = new_config();
        ck_assert_int_eq(config_load_file(c, DATA("retry.yaml"), false, &e), 0);
        assert_finalize_error(c, DATA("retry.yaml") ": upstream.retry_base_ms: must not exceed upstream.retry_max_ms (1000)");
}
END_TEST

/* poll_min_s may not exceed poll_max_s. */
START_TEST(test_cross_poll) {
        Config *c;

        assert_yaml_finalize_error("runners:\n  poll_min_s: 4\n  poll_max_s: 3\n",
                                   "runners.poll_min_s: must not exceed runners.poll_max_s (3)");
        /* against the default maximum (20) */
        assert_yaml_finalize_error("runners:\n  poll_min_s: 21\n",
                                   "runners.poll_min_s: must not exceed runners.poll_max_s (20)");
        c = load_ok("runners:\n  poll_min_s: 20\n");
        finalize_ok(c);
        config_free(c);
}
END_TEST

/* multipart_part_bytes may not exceed multipart_threshold_bytes. */
START_TEST(test_cross_multipart) {
        Config *c;

        assert_yaml_finalize_error("runners:\n  multipart_threshold_bytes: 8M\n  multipart_part_bytes: 9M\n",
                                   "runners.multipart_part_bytes: must not exceed runners.multipart_threshold_bytes");
        c = load_ok("runners:\n  multipart_threshold_bytes: 8M\n  multipart_part_bytes: 8M\n");
        finalize_ok(c);
        config_free(c);
}
END_TEST

/* max_connections_per_uid is clamped to max_connections. */
START_TEST(test_cross_connections_clamped) {
        Config *c = load_ok("limits:\n  max_connections: 10\n  max_connections_per_uid: 50\n");

        finalize_ok(c);
        ck_assert_uint_eq(c->max_connections, 10);
        ck_assert_uint_eq(c->max_connections_per_uid, 10);
        config_free(c);
}
END_TEST

/* The socket path must be absolute and fit in sun_path. */
START_TEST(test_cross_socket) {
        char path[160];
        Config *c;

        assert_yaml_finalize_error("socket: run/avatard.sock\n", "socket: must be an absolute path");
        assert_yaml_finalize_error("socket: ~\n", "socket: must be an absolute path");
        assert_yaml_finalize_error("socket: ''\n", "socket: must be an absolute path");

        /* 107 bytes fit in sun_path with the terminating NUL; 108 do not */
        path[0] = '/';
        memset(path + 1, 'a', 106);
        path[107] = '\0';
        c = new_config();
        set_ok(c, "socket", path);
        finalize_ok(c);
        config_free(c);

        memset(path + 1, 'a', 107);
        path[108] = '\0';
        c = new_config();
        set_ok(c, "socket", path);
        assert_finalize_error(c, "socket: is longer than a Unix socket path may be (107 bytes)");
}
END_TEST

/* The state directory must be absolute. */
START_TEST(test_cross_state_directory) {
        assert_yaml_finalize_error("state_directory: var/lib/avatard\n", "state_directory: must be an absolute path");
        assert_yaml_finalize_error("state_directory: ~\n", "state_directory: must be an absolute path");
}
END_TEST

/* Builds the suite. */
/* The default User-Agent leads with the published client's form, which /check_client reads,
 * then names the daemon; upstream.user_agent replaces it whole. */
START_TEST(test_user_agent_default) {
        Config *c = new_config();
        const char *ua = config_user_agent(c);

        ck_assert_str_eq(ua, "avatar-python/" AVATARD_CLIENT_COMPAT_VERSION " avatard/" AVATARD_VERSION);
        ck_assert_str_eq(ua, CONFIG_DEFAULT_USER_AGENT);
        ck_assert(strncmp(ua, "avatar-python/1.", 16) == 0);
        config_free(c);

        c = load_ok("upstream:\n  user_agent: avatar-python/1.29.0\n");
        ck_assert_str_eq(config_user_agent(c), "avatar-python/1.29.0");
        config_free(c);

        /* an empty value goes back to the default */
        c = load_ok("upstream:\n  user_agent: avatar-python/9\n");
        set_ok(c, "upstream.user_agent", "");
        ck_assert_str_eq(config_user_agent(c), CONFIG_DEFAULT_USER_AGENT);
        config_free(c);
}
END_TEST

/* A User-Agent becomes a header line: no control characters, bounded; errors name key and
 * line. */
START_TEST(test_user_agent_invalid) {
        char yaml[600];

        assert_load_error("upstream:\n  user_agent: \"a\\r\\nX-Injected: 1\"\n",
                          "test.yaml:2: upstream.user_agent: must be printable ASCII (no control characters or line breaks)");
        assert_load_error("upstream:\n  user_agent: \"tab\\there\"\n",
                          "test.yaml:2: upstream.user_agent: must be printable ASCII (no control characters or line breaks)");
        assert_load_error("upstream:\n  user_agent: \"caf\\u00e9\"\n",
                          "test.yaml:2: upstream.user_agent: must be printable ASCII (no control characters or line breaks)");
        snprintf(yaml, sizeof(yaml), "log_level: info\nupstream:\n  user_agent: %0257d\n", 0);
        assert_load_error(yaml, "test.yaml:3: upstream.user_agent: must be at most 256 characters");
        snprintf(yaml, sizeof(yaml), "upstream:\n  user_agent: a%0255d\n", 0);
        config_free(load_ok(yaml));
}
END_TEST

/* upstream.storage_region: default us-east-1, set from the file or the command line, checked
 * as one SigV4 scope component, shown by config_to_json. */
START_TEST(test_storage_region) {
        Config *c = load_ok("upstream:\n  storage_region: eu-west-3\n");
        json_object *o;
        char yaml[200];

        ck_assert_str_eq(c->storage_region, "eu-west-3");
        o = config_to_json(c);
        ck_assert_str_eq(json_str(o, "upstream", "storage_region"), "eu-west-3");
        json_object_put(o);
        set_ok(c, "upstream.storage_region", "garage_1");
        ck_assert_str_eq(c->storage_region, "garage_1");
        config_free(c);

        assert_load_error("upstream:\n  storage_region: eu west\n",
                          "test.yaml:2: upstream.storage_region: must hold only letters, digits, '-' and '_' (e.g. us-east-1)");
        assert_load_error("cache:\n  health_ttl_s: 1\nupstream:\n  storage_region: \"a/b\"\n",
                          "test.yaml:4: upstream.storage_region: must hold only letters, digits, '-' and '_' (e.g. us-east-1)");
        snprintf(yaml, sizeof(yaml), "upstream:\n  storage_region: r%064d\n", 0);
        assert_load_error(yaml, "test.yaml:2: upstream.storage_region: must be at most 64 characters");
        snprintf(yaml, sizeof(yaml), "upstream:\n  storage_region: r%063d\n", 0);
        config_free(load_ok(yaml));
        assert_load_error("upstream:\n  storage_regio: x\n", "test.yaml:2: upstream.storage_regio: unknown key");
}
END_TEST

/* The Manager's tolerant reading of job lists lives next to the configuration tests because
 * it is pure and links from the same core library. Timestamps: 'T' or a space. */
START_TEST(test_manager_parse_time) {
        double t = 0, u = 0;

        ck_assert_int_eq(manager_parse_time("2026-05-01T09:12:03.120000+00:00", &t), 0);
        ck_assert_int_eq(manager_parse_time("2026-05-01 09:12:03.120000+00:00", &u), 0);
        ck_assert(t > 1.7e9 && u > t - 0.001 && u < t + 0.001);
        ck_assert_int_eq(manager_parse_time("2026-05-01 11:12:03.12+02:00", &u), 0);
        ck_assert(u > t - 0.001 && u < t + 0.001);
        ck_assert_int_eq(manager_parse_time("2026-05-01t09:12:03Z", &u), 0);
        ck_assert_int_eq(manager_parse_time("2026-05-01_09:12:03Z", &u), -EINVAL);
        ck_assert_int_eq(manager_parse_time("2026-05-01", &u), -EINVAL);
        ck_assert_int_eq(manager_parse_time("2026-05-01 ", &u), -EINVAL);
}
END_TEST

/* manager_next_page() of a page answer: its result, and the next page's path or NULL. */
static void check_next_page(const char *answer, const char *path, int rc, const char *next) {
        json_object *o = json_tokener_parse(answer);
        char *n = NULL;

        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(manager_next_page(o, path, "https://avatar.example.com/api", &n), rc);
        if (next)
                ck_assert_str_eq(n, next);
        else
                ck_assert_ptr_null(n);
        free(n);
        json_object_put(o);
}

/* Paged job lists: "next" (a path, a query, or a URL under the API root only) or page/pages. */
START_TEST(test_manager_next_page) {
        check_next_page("{\"jobs\":[]}", "/jobs", 0, NULL);
        check_next_page("{\"jobs\":[],\"next\":null}", "/jobs", 0, NULL);
        check_next_page("{\"jobs\":[],\"next\":\"\"}", "/jobs", 0, NULL);
        check_next_page("{\"jobs\":[],\"next\":\"/jobs?cursor=abc\"}", "/jobs", 1, "/jobs?cursor=abc");
        check_next_page("{\"jobs\":[],\"next\":\"?cursor=2\"}", "/jobs", 1, "/jobs?cursor=2");
        check_next_page("{\"jobs\":[],\"next\":\"https://avatar.example.com/api/jobs?page=2\"}", "/jobs", 1, "/jobs?page=2");
        /* another origin, or a look-alike host, would get the credential */
        check_next_page("{\"jobs\":[],\"next\":\"https://evil.example/api/jobs?page=2\"}", "/jobs", -EBADMSG, NULL);
        check_next_page("{\"jobs\":[],\"next\":\"https://avatar.example.com/apix/jobs\"}", "/jobs", -EBADMSG, NULL);
        check_next_page("{\"jobs\":[],\"next\":\"/jobs?a=1\\r\\nX: y\"}", "/jobs", -EBADMSG, NULL);
        check_next_page("{\"jobs\":[],\"page\":1,\"pages\":3}", "/jobs?set_name=x", 1, "/jobs?set_name=x&page=2");
        check_next_page("{\"jobs\":[],\"page\":2,\"total_pages\":3}", "/jobs", 1, "/jobs?page=3");
        check_next_page("{\"jobs\":[],\"page\":3,\"pages\":3}", "/jobs", 0, NULL);
        check_next_page("{\"jobs\":[],\"page\":\"1\",\"pages\":3}", "/jobs", 0, NULL);
}
END_TEST

/* The daemon filters job lists again: a server that ignores a filter cannot widen the answer. */
START_TEST(test_manager_filter_jobs) {
        json_object *jobs = json_tokener_parse(
                "[{\"name\":\"a\",\"set_name\":\"AAAA-1\",\"display_name\":\"iris\",\"kind\":\"standard\",\"created_at\":\"2026-05-01 09:00:00Z\"},"
                " {\"name\":\"b\",\"set_name\":\"bbbb-2\",\"display_name\":\"iris\",\"kind\":\"advice\",\"created_at\":\"2026-05-02T09:00:00Z\"},"
                " {\"name\":\"c\",\"set_name\":\"aaaa-1\",\"display_name\":\"wine\",\"kind\":\"report\",\"created_at\":\"2026-05-03 09:00:00+00:00\"},"
                " {\"name\":\"d\",\"display_name\":\"iris\",\"kind\":\"standard\"}]");
        json_object *kinds = json_tokener_parse("[\"standard\",\"report\"]"), *f;

        f = manager_filter_jobs(jobs, "aaaa-1", NULL, NULL, -1);
        ck_assert_uint_eq(json_object_array_length(f), 2);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(json_object_array_get_idx(f, 0), "name")), "a");
        ck_assert_str_eq(json_object_get_string(json_object_object_get(json_object_array_get_idx(f, 1), "name")), "c");
        json_object_put(f);
        f = manager_filter_jobs(jobs, NULL, "iris", kinds, -1);
        ck_assert_uint_eq(json_object_array_length(f), 2);
        json_object_put(f);
        f = manager_filter_jobs(jobs, NULL, NULL, NULL, -1);
        ck_assert_uint_eq(json_object_array_length(f), 4);
        json_object_put(f);
        /* a limit the server ignored keeps the newest, timestamps with either separator */
        f = manager_filter_jobs(jobs, NULL, NULL, NULL, 2);
        ck_assert_uint_eq(json_object_array_length(f), 2);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(json_object_array_get_idx(f, 0), "name")), "c");
        ck_assert_str_eq(json_object_get_string(json_object_object_get(json_object_array_get_idx(f, 1), "name")), "b");
        json_object_put(f);
        f = manager_filter_jobs(jobs, "none", NULL, NULL, 0);
        ck_assert_uint_eq(json_object_array_length(f), 0);
        json_object_put(f);
        json_object_put(kinds);
        json_object_put(jobs);
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc;

        tc = tcase_create("defaults");
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_defaults_finalize);
        tcase_add_test(tc, test_free_null);
        tcase_add_test(tc, test_roles);
        suite_add_tcase(s, tc);

        tc = tcase_create("env");
        tcase_add_test(tc, test_env_null_and_unrelated);
        tcase_add_test(tc, test_env_base_url);
        tcase_add_test(tc, test_env_base_api_url);
        tcase_add_test(tc, test_env_storage_url);
        tcase_add_test(tc, test_env_storage_alias);
        tcase_add_test(tc, test_env_alias_with_other_urls);
        tcase_add_test(tc, test_env_case_insensitive);
        tcase_add_test(tc, test_env_timeout);
        tcase_add_test(tc, test_env_timeout_invalid);
        tcase_add_test(tc, test_env_bools);
        tcase_add_test(tc, test_env_bools_invalid);
        tcase_add_test(tc, test_env_applied_twice);
        suite_add_tcase(s, tc);

        tc = tcase_create("urls");
        tcase_add_test(tc, test_url_base_derivation);
        tcase_add_test(tc, test_url_base_conflicts);
        tcase_add_test(tc, test_url_base_conflict_env);
        tcase_add_test(tc, test_url_independent_defaults);
        tcase_add_test(tc, test_url_quote);
        tcase_add_test(tc, test_url_plain_http);
        tcase_add_test(tc, test_url_loopback_http);
        tcase_add_test(tc, test_url_not_http);
        tcase_add_test(tc, test_url_env_errors);
        tcase_add_test(tc, test_url_file_replaces_env);
        tcase_add_test(tc, test_url_file_keys_combine);
        suite_add_tcase(s, tc);

        tc = tcase_create("file");
        tcase_add_test(tc, test_file_full);
        tcase_add_test(tc, test_file_empty);
        tcase_add_test(tc, test_file_strings);
        tcase_add_test(tc, test_user_agent_default);
        tcase_add_test(tc, test_user_agent_invalid);
        tcase_add_test(tc, test_storage_region);
        tcase_add_test(tc, test_file_bools);
        tcase_add_test(tc, test_file_uints);
        tcase_add_test(tc, test_file_sizes);
        tcase_add_test(tc, test_file_mode);
        tcase_add_test(tc, test_file_log_level);
        tcase_add_test(tc, test_file_unknown_keys);
        tcase_add_test(tc, test_file_duplicates);
        tcase_add_test(tc, test_file_many_keys);
        tcase_add_test(tc, test_file_wrong_types);
        tcase_add_test(tc, test_file_nulls);
        tcase_add_test(tc, test_file_syntax_error);
        tcase_add_test(tc, test_file_not_mapping);
        tcase_add_test(tc, test_file_two_documents);
        tcase_add_test(tc, test_file_missing);
        tcase_add_test(tc, test_file_size_limit);
        tcase_add_test(tc, test_file_later_overrides);
        suite_add_tcase(s, tc);

        tc = tcase_create("access");
        tcase_add_test(tc, test_access_names_and_numbers);
        tcase_add_test(tc, test_access_replaces_default);
        tcase_add_test(tc, test_access_errors);
        tcase_add_test(tc, test_role_for);
        tcase_add_test(tc, test_role_for_defaults);
        suite_add_tcase(s, tc);

        tc = tcase_create("set");
        tcase_add_test(tc, test_set);
        tcase_add_test(tc, test_set_unknown);
        suite_add_tcase(s, tc);

        tc = tcase_create("errors");
        tcase_add_test(tc, test_error_to_string);
        tcase_add_test(tc, test_error_done_resets);
        suite_add_tcase(s, tc);

        tc = tcase_create("json");
        tcase_add_test(tc, test_to_json);
        tcase_add_test(tc, test_to_json_defaults);
        suite_add_tcase(s, tc);

        tc = tcase_create("cross-key");
        tcase_add_test(tc, test_cross_retry);
        tcase_add_test(tc, test_cross_poll);
        tcase_add_test(tc, test_cross_multipart);
        tcase_add_test(tc, test_cross_connections_clamped);
        tcase_add_test(tc, test_cross_socket);
        tcase_add_test(tc, test_cross_state_directory);
        suite_add_tcase(s, tc);

        tc = tcase_create("manager-lists");
        tcase_add_test(tc, test_manager_parse_time);
        tcase_add_test(tc, test_manager_next_page);
        tcase_add_test(tc, test_manager_filter_jobs);
        suite_add_tcase(s, tc);

        return s;
}

/* Runs the suite; the exit status is non-zero when a test failed. */
int main(void) {
        SRunner *sr = srunner_create(config_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
