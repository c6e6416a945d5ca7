/* SPDX-License-Identifier: MIT */
/*
 * daemon/config.c: defaults, the AVATAR_* environment, the URL rules of avatar-api.md §1,
 * the access section and role lookup, command-line overrides, error formatting and the JSON
 * view for daemon.status. YAML parsing and the cross-key checks are in test-config-file.c;
 * the helpers both use in config-harness.c.
 *
 * Fixtures live in TEST_DATA_DIR; files the tests generate go to TEST_TMP_DIR. Both are
 * defined by meson.
 */
#include <check.h>
#include <grp.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "build-config.h"
#include "config.h"
#include "config-harness.h"
#include "macro.h"
#include "protocol.h"

#define DEFAULT_API_URL "https://www.octopize.app/api"
#define DEFAULT_STORAGE_URL "https://www.octopize.app/storage"
#define PLAIN_HTTP_HINT "uses plain http to a host that is not loopback; use https or set upstream.allow_insecure_http"

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
        ck_assert_uint_eq(c->transfer_concurrency, 10);
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

        ck_assert_str_eq(json_str_at(o, NULL, "source"), DATA("full.yaml"));
        ck_assert_str_eq(json_str_at(o, NULL, "socket"), "/run/avatard-test/avatard.sock");
        ck_assert_str_eq(json_str_at(o, NULL, "socket_mode"), "0600");
        ck_assert_str_eq(json_str_at(o, NULL, "log_level"), "debug");
        ck_assert_int_eq(json_object_get_int64(json_at(o, "limits", "max_frame_bytes")), 2 * 1024 * 1024);
        ck_assert_int_eq(json_object_get_int64(json_at(o, "limits", "max_connections")), 100);
        ck_assert(!json_object_get_boolean(json_at(o, "upstream", "should_verify_ssl")));
        ck_assert_int_eq(json_object_get_int64(json_at(o, "upstream", "max_connections")), 16);
        ck_assert_int_eq(json_object_get_int64(json_at(o, "runners", "max_runners_per_uid")), 7);
        ck_assert_int_eq(json_object_get_int64(json_at(o, "cache", "stale_max_s")), 30);

        /* the effective URLs, next to the configured ones */
        ck_assert_str_eq(json_str_at(o, "upstream", "api_url"), "https://avatar.example.com/api");
        ck_assert_str_eq(json_str_at(o, "upstream", "storage_url"), "https://storage.example.com");
        ck_assert_str_eq(json_str_at(o, "upstream", "base_api_url"), "https://avatar.example.com/api/");
        ck_assert(json_object_is_type(json_at(o, "upstream", "base_url"), json_type_null));
        ck_assert_str_eq(json_str_at(o, "upstream", "api_key_file"), "/etc/avatard/api-key");

        /* access lists, by role */
        v = json_at(json_at(o, NULL, "access"), "read", "uids");
        ck_assert_uint_eq(json_object_array_length(v), 2);
        ck_assert_int_eq(json_object_get_int64(json_object_array_get_idx(v, 1)), 1234);
        a = json_at(o, NULL, "access");
        ck_assert(!json_object_object_get_ex(a, "none", NULL));
        ck_assert_uint_eq(json_object_array_length(json_at(a, "admin", "uids")), 1);

        /* no key anywhere: only the key file's path */
        text = json_object_to_json_string(o);
        ck_assert_ptr_null(strstr(text, "sk-secret-never-shown"));
        ck_assert(!json_object_object_get_ex(json_at(o, NULL, "upstream"), "api_key", NULL));
        json_object_object_foreach(json_at(o, NULL, "upstream"), k, val) {
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
        ck_assert(json_object_is_type(json_at(o, NULL, "source"), json_type_null));
        ck_assert_str_eq(json_str_at(o, NULL, "socket_mode"), "0660");
        ck_assert_str_eq(json_str_at(o, NULL, "log_level"), "info");
        ck_assert_str_eq(json_str_at(o, "upstream", "api_url"), DEFAULT_API_URL);
        ck_assert_str_eq(json_str_at(o, "upstream", "storage_url"), DEFAULT_STORAGE_URL);
        ck_assert(json_object_is_type(json_at(o, "upstream", "user_agent"), json_type_null));
        ck_assert(json_object_get_boolean(json_at(o, "upstream", "verify_compatibility")));
        ck_assert_int_eq(json_object_get_int64(json_at(o, "upstream", "timeout_s")), 60);
        json_object_put(o);

        /* an environment base URL shows up derived */
        ck_assert_int_eq(apply_env(c, env, &e), 0);
        finalize_ok(c);
        o = config_to_json(c);
        ck_assert_str_eq(json_str_at(o, "upstream", "base_url"), "http://127.0.0.1:8080");
        ck_assert_str_eq(json_str_at(o, "upstream", "api_url"), "http://127.0.0.1:8080/api");
        ck_assert_str_eq(json_str_at(o, "upstream", "storage_url"), "http://127.0.0.1:8080/storage");
        json_object_put(o);
        config_free(c);
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

        return s;
}

/* Runs the suite; the exit status is non-zero when a test failed. */
int main(void) {
        return config_test_main(config_suite());
}
