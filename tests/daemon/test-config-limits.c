/* SPDX-License-Identifier: MIT */
/*
 * daemon/config.c against hostile or broken input: the structure limits of a configuration
 * file (size, nesting depth, number of values) checked before libyaml builds the document,
 * and URLs carrying "user:password@", refused from the file, the command line and the
 * AVATAR_* variables with an error that never repeats the password (proxy URLs may carry
 * credentials, and are shown masked).
 *
 * Files the tests generate go to TEST_TMP_DIR, defined by meson.
 */
#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config-harness.h"
#include "macro.h"

#define SECRET "s3cr3t-Pa55"

/* Returns "limits: " followed by `depth` nested collections of the given open/close texts. */
static char *nested(const char *open, const char *close, const char *inner, size_t depth) {
        size_t lo = strlen(open), lc = strlen(close), li = strlen(inner);
        char *s = malloc(STRLEN("limits: ") + depth * (lo + lc) + li + 2), *p;

        ck_assert_ptr_nonnull(s);
        p = stpcpy(s, "limits: ");
        for (size_t i = 0; i < depth; i++)
                p = stpcpy(p, open);
        p = stpcpy(p, inner);
        for (size_t i = 0; i < depth; i++)
                p = stpcpy(p, close);
        strcpy(p, "\n");
        return s;
}

/* Loads text into a default Config and returns the formatted error (NULL when it loaded). */
static char *load_error(const char *text) {
        Config *c = new_config();
        ConfigError e = {};
        char *s = NULL;

        if (load(c, text, &e) < 0) {
                s = config_error_to_string(&e);
                ck_assert_ptr_nonnull(s);
        }
        config_error_done(&e);
        config_free(c);
        return s;
}

/* ---- structure limits ---- */

/* 100,000 nested flow sequences are refused at the line, naming the limit, before libyaml
 * builds anything: the walk stops at level 65 (a few milliseconds). Before the limit libyaml
 * took over a minute on this 200 kB text (its scanner is quadratic in the nesting), and the
 * error came from the loader after that. */
START_TEST(test_depth_flow_sequences) {
        _cleanup_free_ char *text = nested("[", "]", "", 100000), *err = NULL;

        err = load_error(text);
        ck_assert_ptr_nonnull(err);
        ck_assert_str_eq(err, "test.yaml:1: (structure): nested deeper than 64 levels");
}
END_TEST

/* Flow mappings and compact block sequences ("- - - x") nest too. */
START_TEST(test_depth_other_forms) {
        _cleanup_free_ char *maps = nested("{a: ", "}", "1", 100000), *e1 = NULL, *e2 = NULL,
                            *dashes = NULL;
        size_t n = 300000;
        char *p;

        e1 = load_error(maps);
        ck_assert_str_eq(e1, "test.yaml:1: (structure): nested deeper than 64 levels");

        dashes = malloc(STRLEN("limits:\n  ") + 2 * n + 3);
        ck_assert_ptr_nonnull(dashes);
        p = stpcpy(dashes, "limits:\n  ");
        for (size_t i = 0; i < n; i++)
                p = stpcpy(p, "- ");
        strcpy(p, "x\n");
        e2 = load_error(dashes);
        ck_assert_str_eq(e2, "test.yaml:2: (structure): nested deeper than 64 levels");
}
END_TEST

/* 64 levels (the root mapping is the first) pass the structure check and reach the usual
 * checks; 65 do not. */
START_TEST(test_depth_boundary) {
        _cleanup_free_ char *at = nested("[", "]", "", 63), *over = nested("[", "]", "", 64),
                            *e1 = NULL, *e2 = NULL;

        e1 = load_error(at);
        ck_assert_str_eq(e1, "test.yaml:1: limits: expected a mapping");
        e2 = load_error(over);
        ck_assert_str_eq(e2, "test.yaml:1: (structure): nested deeper than 64 levels");
}
END_TEST

/* A second document is walked too: its nesting is refused before the loader sees it. */
START_TEST(test_depth_second_document) {
        _cleanup_free_ char *deep = nested("[", "]", "", 1000), *text = NULL, *err = NULL;

        ck_assert_int_ge(asprintf(&text, "log_level: info\n---\n%s", deep), 0);
        err = load_error(text);
        ck_assert_str_eq(err, "test.yaml:3: (structure): nested deeper than 64 levels");
}
END_TEST

/* Builds "limits: [1,1,...]" with n items: n + 3 values with the root, the key and the list. */
static char *flat_list(size_t n) {
        char *s = malloc(STRLEN("limits: [") + 2 * n + 3), *p;

        ck_assert_ptr_nonnull(s);
        p = stpcpy(s, "limits: [");
        for (size_t i = 0; i < n; i++)
                p = stpcpy(p, i ? ",1" : "1");
        strcpy(p, "]\n");
        return s;
}

/* CONFIG_NODES_MAX values pass; one more is refused. Keys, aliases and collections count. */
START_TEST(test_node_limit) {
        _cleanup_free_ char *at = flat_list(CONFIG_NODES_MAX - 3), *over = flat_list(CONFIG_NODES_MAX - 2),
                            *e1 = NULL, *e2 = NULL, *e3 = NULL, *aliases = NULL;
        char *p;

        e1 = load_error(at);
        ck_assert_str_eq(e1, "test.yaml:1: limits: expected a mapping");
        e2 = load_error(over);
        ck_assert_str_eq(e2, "test.yaml:1: (structure): more than 200000 values");

        /* aliases are values of their own: no expansion, but no free pass either */
        aliases = malloc(64 + 4 * (size_t) CONFIG_NODES_MAX);
        ck_assert_ptr_nonnull(aliases);
        p = stpcpy(aliases, "x: &a 1\nlimits: [");
        for (size_t i = 0; i < CONFIG_NODES_MAX; i++)
                p = stpcpy(p, i ? ",*a" : "*a");
        strcpy(p, "]\n");
        e3 = load_error(aliases);
        ck_assert_str_eq(e3, "test.yaml:2: (structure): more than 200000 values");
}
END_TEST

/* config_load_string() keeps the file's size limit too (the fuzz harness and any other
 * caller); syntax errors are still the loader's, with their line. */
START_TEST(test_string_size_and_syntax) {
        size_t n = CONFIG_FILE_MAX + 1;
        _cleanup_free_ char *big = malloc(n), *err = NULL;
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_ptr_nonnull(big);
        memset(big, '#', n);
        big[n - 1] = '\n';
        ck_assert_int_eq(config_load_string(c, "big.yaml", big, n, &e), -EINVAL);
        assert_error(&e, "big.yaml: (file): larger than 1048576 bytes");
        ck_assert_int_eq(config_load_string(c, "big.yaml", big, n - 1, &e), 0);
        ck_assert_ptr_null(e.message);
        config_free(c);

        err = load_error("log_level: info\nlimits: [[[\n");
        ck_assert_ptr_nonnull(strstr(err, "test.yaml:3: (syntax): "));
}
END_TEST

/* ---- credentials in URLs ---- */

/* Asserts that an error names `expected_prefix` and does not repeat the password. */
static void assert_userinfo_error(ConfigError *e, const char *expected_prefix) {
        _cleanup_free_ char *s = config_error_to_string(e);

        ck_assert_ptr_nonnull(s);
        ck_assert_msg(startswith(s, expected_prefix), "error: %s", s);
        ck_assert_ptr_nonnull(strstr(s, "must not contain a user name or password"));
        ck_assert_msg(!strstr(s, SECRET), "the error repeats the password: %s", s);
        ck_assert_msg(!strstr(s, "alice"), "the error repeats the user: %s", s);
        config_error_done(e);
}

/* The three URL keys refuse "user:password@" in the file, at its line. */
START_TEST(test_userinfo_file) {
        static const struct {
                const char *yaml;
                const char *prefix;
        } cases[] = {
                { "upstream:\n  base_url: https://alice:" SECRET "@avatar.example.com\n",
                  "test.yaml:2: upstream.base_url: " },
                { "upstream:\n  base_api_url: https://alice:" SECRET "@avatar.example.com/api\n",
                  "test.yaml:2: upstream.base_api_url: " },
                { "upstream:\n\n  storage_endpoint_url: http://alice:" SECRET "@127.0.0.1:9000/storage\n",
                  "test.yaml:3: upstream.storage_endpoint_url: " },
                /* a user without a password, a URL without a scheme, an empty user */
                { "upstream:\n  base_url: https://alice@avatar.example.com/\n", "test.yaml:2: upstream.base_url: " },
                { "upstream:\n  base_url: alice:" SECRET "@avatar.example.com/api\n", "test.yaml:2: upstream.base_url: " },
                { "upstream:\n  base_url: 'https://:" SECRET "@avatar.example.com'\n", "test.yaml:2: upstream.base_url: " },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Config *c = new_config();
                ConfigError e = {};

                ck_assert_int_eq(load(c, cases[i].yaml, &e), -EINVAL);
                assert_userinfo_error(&e, cases[i].prefix);
                config_free(c);
        }
}
END_TEST

/* The command line (--set) and the AVATAR_* variables refuse them too. */
START_TEST(test_userinfo_set_and_env) {
        static const char *const vars[] = {
                "AVATAR_BASE_URL", "AVATAR_BASE_API_URL", "AVATAR_STORAGE_ENDPOINT_URL",
                "STORAGE_ENDPOINT_URL", "avatar_base_url",
        };
        Config *c = new_config();
        ConfigError e = {};

        ck_assert_int_eq(config_set(c, "upstream.base_api_url", "https://alice:" SECRET "@h.example/api", &e),
                         -EINVAL);
        assert_userinfo_error(&e, "upstream.base_api_url: ");
        ck_assert_ptr_null(c->base_api_url);
        config_free(c);

        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                _cleanup_free_ char *var = NULL;
                const char *envp[2] = {};
                _cleanup_free_ char *prefix = NULL;

                ck_assert_int_ge(asprintf(&var, "%s=https://alice:%s@h.example/", vars[i], SECRET), 0);
                envp[0] = var;
                c = new_config();
                ck_assert_int_eq(config_apply_env(c, (char *const *) envp, &e), -EINVAL);
                /* the error names the variable as the table spells it */
                ck_assert_int_ge(asprintf(&prefix, "%s: ", i == 4 ? "AVATAR_BASE_URL" : vars[i]), 0);
                assert_userinfo_error(&e, prefix);
                config_free(c);
        }
}
END_TEST

/* An '@' outside the authority is not a password: a path, a query or a fragment may hold one. */
START_TEST(test_userinfo_not_in_authority) {
        Config *c = load_ok("upstream:\n  base_api_url: https://avatar.example.com/a@b/api?u=x@y#z@w\n");

        finalize_ok(c);
        ck_assert_str_eq(c->api_url, "https://avatar.example.com/a@b/api?u=x@y#z@w");
        config_free(c);
}
END_TEST

/* A proxy may carry credentials: accepted, and masked where the configuration is shown. */
START_TEST(test_userinfo_proxy_masked) {
        Config *c = load_ok("upstream:\n  proxy: http://alice:" SECRET "@proxy.example:3128\n");
        json_object *j;
        const char *text;

        finalize_ok(c);
        ck_assert_str_eq(c->proxy, "http://alice:" SECRET "@proxy.example:3128");
        j = config_to_json(c);
        ck_assert_ptr_nonnull(j);
        text = json_object_to_json_string(j);
        ck_assert_msg(!strstr(text, SECRET), "daemon.status would show the proxy's password: %s", text);
        ck_assert_str_eq(json_str_at(j, "upstream", "proxy"), "http://***@proxy.example:3128");
        json_object_put(j);
        config_free(c);
}
END_TEST

static Suite *config_limits_suite(void) {
        Suite *s = suite_create("config-limits");
        TCase *tc;

        tc = tcase_create("structure");
        /* the old loader took over a minute on the deep file: fail, do not hang, there */
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_depth_flow_sequences);
        tcase_add_test(tc, test_depth_other_forms);
        tcase_add_test(tc, test_depth_boundary);
        tcase_add_test(tc, test_depth_second_document);
        tcase_add_test(tc, test_node_limit);
        tcase_add_test(tc, test_string_size_and_syntax);
        suite_add_tcase(s, tc);

        tc = tcase_create("url-credentials");
        tcase_add_test(tc, test_userinfo_file);
        tcase_add_test(tc, test_userinfo_set_and_env);
        tcase_add_test(tc, test_userinfo_not_in_authority);
        tcase_add_test(tc, test_userinfo_proxy_masked);
        suite_add_tcase(s, tc);

        return s;
}

/* Runs the suite; the exit status is non-zero when a test failed. */
int main(void) {
        return config_test_main(config_limits_suite());
}
