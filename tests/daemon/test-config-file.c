/* SPDX-License-Identifier: MIT */
/*
 * daemon/config.c: YAML parsing (every key type, ranges, unknown and duplicate keys, wrong
 * node types, nulls, syntax errors, file limits) and the cross-key validation; and the job
 * lists of daemon/manager.h (times, paging, filtering). The rest of config.c is tested in
 * test-config.c.
 *
 * Fixtures live in TEST_DATA_DIR; files the tests generate go to TEST_TMP_DIR. Both are
 * defined by meson.
 */
#include <check.h>
#include <fcntl.h>
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
#include "config-harness.h"
#include "macro.h"
#include "manager.h"
#include "protocol.h"

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
        assert_load_error("runners:\n  transfer_concurrency: 0\n",
                          "test.yaml:2: runners.transfer_concurrency: must be between 1 and 64, got '0'");
        assert_load_error("runners:\n  transfer_concurrency: 65\n",
                          "test.yaml:2: runners.transfer_concurrency: must be between 1 and 64, got '65'");
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
        ck_assert_str_eq(json_str_at(o, "upstream", "storage_region"), "eu-west-3");
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

static Suite *config_file_suite(void) {
        Suite *s = suite_create("config-file");
        TCase *tc;

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
        return config_test_main(config_file_suite());
}
