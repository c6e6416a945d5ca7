/* SPDX-License-Identifier: MIT */
/*
 * Where the daemon's paths and proxies come from: $STATE_DIRECTORY and $RUNTIME_DIRECTORY
 * below the file and the command line, the configuration file found through
 * $CONFIGURATION_DIRECTORY, the proxy variables as libcurl reads them below upstream.proxy and
 * upstream.no_proxy, the proxy checks, masking and no_proxy matching (daemon/proxy.c), and the
 * safe creation of the state directory (daemon/dirs.c).
 *
 * Files the tests generate go to TEST_TMP_DIR (defined by meson).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build-config.h"
#include "config.h"
#include "dirs.h"
#include "macro.h"
#include "proxy.h"

/* A default Config with envp applied, asserting success. */
static Config *env_ok(const char *const *envp) {
        Config *c = NULL;
        ConfigError e = {};
        int r;

        ck_assert_int_eq(config_new(&c), 0);
        r = config_apply_env(c, (char *const *) envp, &e);
        ck_assert_msg(r == 0, "config_apply_env failed: %s: %s", strna(e.key), strna(e.message));
        return c;
}

/* Asserts that envp fails to apply with exactly `expected`. */
static void assert_env_error(const char *const *envp, const char *expected) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *s = NULL;
        ConfigError e = {};

        ck_assert_int_eq(config_new(&c), 0);
        ck_assert_int_eq(config_apply_env(c, (char *const *) envp, &e), -EINVAL);
        s = config_error_to_string(&e);
        ck_assert_str_eq(s, expected);
        config_error_done(&e);
}

/* Loads YAML into c as "test.yaml", asserting success. */
static void load_ok(Config *c, const char *yaml) {
        ConfigError e = {};
        int r;

        r = config_load_string(c, "test.yaml", yaml, strlen(yaml), &e);
        ck_assert_msg(r == 0, "loading failed: %s: %s", strna(e.key), strna(e.message));
}

/* Asserts that YAML fails to load into a default Config with exactly `expected`. */
static void assert_load_error(const char *yaml, const char *expected) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *s = NULL;
        ConfigError e = {};

        ck_assert_int_eq(config_new(&c), 0);
        ck_assert_int_eq(config_load_string(c, "test.yaml", yaml, strlen(yaml), &e), -EINVAL);
        s = config_error_to_string(&e);
        ck_assert_str_eq(s, expected);
        config_error_done(&e);
}

/* A fresh, empty directory below TEST_TMP_DIR. */
static char *make_tmp_dir(const char *name) {
        char *d = NULL;
        char cmd[512];

        ck_assert_int_ge(asprintf(&d, "%s/config-paths-%s", TEST_TMP_DIR, name), 0);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
        ck_assert_int_eq(system(cmd), 0);
        ck_assert_int_eq(mkdir(d, 0755), 0);
        return d;
}

/* Writes text to path. */
static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

/* ---- state directory and socket ------------------------------------------------------- */

/* The precedence of a path setting at `field` of Config: the compiled default `dflt` without
 * `variable`, then the environment (`variable` set to `env_value`, giving `from_env`), the
 * file's `key` over it, and the command line's `key` over the file. */
static void assert_path_precedence(size_t field, const char *dflt, const char *variable,
                                   const char *env_value, const char *from_env, const char *key) {
        static const char *const none[] = { NULL };
        _cleanup_free_ char *entry = NULL, *yaml = NULL, *from_file = NULL, *from_flag = NULL;
        const char *env[2] = {};
        ConfigError e = {};
        Config *c;

        ck_assert_int_ge(asprintf(&entry, "%s=%s", variable, env_value), 0);
        ck_assert_int_ge(asprintf(&from_file, "/srv/from-file/%s", key), 0);
        ck_assert_int_ge(asprintf(&from_flag, "/srv/from-flag/%s", key), 0);
        ck_assert_int_ge(asprintf(&yaml, "%s: %s\n", key, from_file), 0);
        env[0] = entry;

        c = env_ok(none);
        ck_assert_str_eq(*(char **) ((char *) c + field), dflt);
        config_free(c);

        c = env_ok(env);
        ck_assert_str_eq(*(char **) ((char *) c + field), from_env);
        load_ok(c, yaml);
        ck_assert_str_eq(*(char **) ((char *) c + field), from_file);
        ck_assert_int_eq(config_set(c, key, from_flag, &e), 0);
        ck_assert_str_eq(*(char **) ((char *) c + field), from_flag);
        config_free(c);
}

START_TEST(test_state_directory_precedence) {
        static const char *const slash[] = { "STATE_DIRECTORY=/srv/state//", NULL };
        static const char *const empty[] = { "STATE_DIRECTORY=", NULL };
        Config *c;

        /* the compiled default, the environment's first path, the file, the command line
         * (--state-directory) */
        assert_path_precedence(offsetof(Config, state_directory), AVATARD_DEFAULT_STATE_DIR,
                               "STATE_DIRECTORY", "/var/lib/from-env:/var/lib/second",
                               "/var/lib/from-env", "state_directory");

        c = env_ok(empty);
        ck_assert_str_eq(c->state_directory, AVATARD_DEFAULT_STATE_DIR);
        config_free(c);
        c = env_ok(slash);
        ck_assert_str_eq(c->state_directory, "/srv/state");
        config_free(c);
}
END_TEST

START_TEST(test_state_directory_relative) {
        static const char *const env[] = { "STATE_DIRECTORY=var/lib/x", NULL };

        assert_env_error(env, "STATE_DIRECTORY: must be an absolute path, got 'var/lib/x'");
}
END_TEST

START_TEST(test_runtime_directory_precedence) {
        assert_path_precedence(offsetof(Config, socket_path), AVATARD_DEFAULT_SOCKET,
                               "RUNTIME_DIRECTORY", "/run/avatard-test:/run/other",
                               "/run/avatard-test/avatard.sock", "socket");
}
END_TEST

START_TEST(test_runtime_directory_errors) {
        static const char *const rel[] = { "RUNTIME_DIRECTORY=run/x", NULL };
        char longvar[200] = "RUNTIME_DIRECTORY=/";
        const char *const too_long[] = { longvar, NULL };
        _cleanup_free_ char *expected = NULL;

        assert_env_error(rel, "RUNTIME_DIRECTORY: must be an absolute path, got 'run/x'");
        memset(longvar + strlen(longvar), 'r', 100);
        longvar[19 + 100] = '\0';
        ck_assert_int_ge(asprintf(&expected, "RUNTIME_DIRECTORY: '%s' is too long for a Unix socket path below it",
                                  longvar + strlen("RUNTIME_DIRECTORY=")), 0);
        assert_env_error(too_long, expected);
}
END_TEST

/* ---- the configuration file ---------------------------------------------------------------- */

START_TEST(test_find_file_configuration_directory) {
        _cleanup_free_ char *dir = make_tmp_dir("confdir"), *var = NULL, *file = NULL, *found = NULL,
                            *tried = NULL;
        const char *envp[] = { NULL, NULL };

        ck_assert_int_ge(asprintf(&var, "CONFIGURATION_DIRECTORY=%s:/nonexistent", dir), 0);
        ck_assert_int_ge(asprintf(&file, "%s/avatard.yaml", dir), 0);
        envp[0] = var;

        /* no file there: the compiled default is tried next, and both are listed */
        ck_assert_int_eq(config_find_file((char *const *) envp, &found, &tried), 0);
        if (access(AVATARD_DEFAULT_CONFIG, F_OK) == 0)
                ck_assert_str_eq(found, AVATARD_DEFAULT_CONFIG);
        else
                ck_assert_ptr_null(found);
        {
                _cleanup_free_ char *want = NULL;

                ck_assert_int_ge(asprintf(&want, "%s, %s", file, AVATARD_DEFAULT_CONFIG), 0);
                ck_assert_str_eq(tried, want);
        }
        found = mfree(found);
        tried = mfree(tried);

        /* the file in $CONFIGURATION_DIRECTORY wins */
        write_file(file, "log_level: debug\n");
        ck_assert_int_eq(config_find_file((char *const *) envp, &found, &tried), 0);
        ck_assert_str_eq(found, file);
        ck_assert_str_eq(tried, file);
        found = mfree(found);
        tried = mfree(tried);

        /* one that cannot be read is still chosen: loading it says why */
        ck_assert_int_eq(chmod(file, 0), 0);
        ck_assert_int_eq(config_find_file((char *const *) envp, &found, NULL), 0);
        ck_assert_str_eq(found, file);
        (void) unlink(file);
}
END_TEST

START_TEST(test_find_file_without_environment) {
        static const char *const none[] = { NULL };
        static const char *const rel[] = { "CONFIGURATION_DIRECTORY=etc/avatard", NULL };
        _cleanup_free_ char *found = NULL, *tried = NULL;

        ck_assert_int_eq(config_find_file((char *const *) none, &found, &tried), 0);
        ck_assert_str_eq(tried, AVATARD_DEFAULT_CONFIG);
        found = mfree(found);
        tried = mfree(tried);
        /* a relative directory is not one systemd passes: ignored */
        ck_assert_int_eq(config_find_file((char *const *) rel, &found, &tried), 0);
        ck_assert_str_eq(tried, AVATARD_DEFAULT_CONFIG);
}
END_TEST

/* ---- proxies: configuration and environment ------------------------------------------------ */

START_TEST(test_proxy_keys) {
        _cleanup_(config_freep) Config *c = NULL;
        static const char *const none[] = { NULL };
        ConfigError e = {};

        c = env_ok(none);
        ck_assert_ptr_null(config_proxy(c, "https"));
        ck_assert_str_eq(config_proxy_source(c), "none");

        load_ok(c, "upstream:\n  proxy: http://user:secret@proxy.corp:3128\n  no_proxy: .corp, 10.0.0.0/8\n");
        ck_assert_str_eq(config_proxy(c, "https"), "http://user:secret@proxy.corp:3128");
        ck_assert_str_eq(config_proxy(c, "http"), "http://user:secret@proxy.corp:3128");
        ck_assert_str_eq(config_no_proxy(c), ".corp, 10.0.0.0/8");
        ck_assert_str_eq(config_proxy_source(c), "config");

        /* "" is kept: no proxy at all */
        load_ok(c, "upstream:\n  proxy: \"\"\n");
        ck_assert_ptr_nonnull(c->proxy);
        ck_assert_str_eq(config_proxy(c, "https"), "");
        ck_assert_str_eq(config_proxy_source(c), "config");
        /* null leaves it unset again */
        load_ok(c, "upstream:\n  proxy: ~\n");
        ck_assert_ptr_null(c->proxy);
        ck_assert_str_eq(config_proxy_source(c), "none");

        /* --set */
        ck_assert_int_eq(config_set(c, "upstream.proxy", "socks5h://127.0.0.1:1080", &e), 0);
        ck_assert_str_eq(config_proxy(c, "https"), "socks5h://127.0.0.1:1080");
        ck_assert_int_eq(config_set(c, "upstream.proxy", "", &e), 0);
        ck_assert_str_eq(c->proxy, "");
}
END_TEST

START_TEST(test_proxy_key_errors) {
        assert_load_error("upstream:\n  proxy: ftp://proxy:21\n",
                          "test.yaml:2: upstream.proxy: must use the scheme http, https, socks5 or socks5h");
        assert_load_error("upstream:\n  proxy: proxy.corp:3128\n",
                          "test.yaml:2: upstream.proxy: must be a URL with a scheme (http://, https://, socks5:// or socks5h://)");
        assert_load_error("upstream:\n  proxy: http://\n",
                          "test.yaml:2: upstream.proxy: is not a URL");
        assert_load_error("upstream:\n  proxy: http://proxy:3128/path\n",
                          "test.yaml:2: upstream.proxy: must not have a path");
        assert_load_error("upstream:\n  proxy: \"http://pro xy:3128\"\n",
                          "test.yaml:2: upstream.proxy: must be printable ASCII without blanks");
        assert_load_error("upstream:\n  proxy: [a]\n",
                          "test.yaml:2: upstream.proxy: expected a single value");
        assert_load_error("upstream:\n  no_proxy: \"a\\x01b\"\n",
                          "test.yaml:2: upstream.no_proxy: must be printable ASCII");
}
END_TEST

START_TEST(test_proxy_environment) {
        static const char *const env[] = {
                "HTTP_PROXY=http://cgi-injected:1", "http_proxy=http://plain:3128",
                "HTTPS_PROXY=http://upper:3128", "https_proxy=secure.corp:8080",
                "NO_PROXY=upper.example", "no_proxy=localhost,.internal", NULL };
        static const char *const upper[] = { "HTTPS_PROXY=http://upper:3128", "HTTP_PROXY=http://x:1", NULL };
        static const char *const all[] = { "ALL_PROXY=socks5://all:1080", NULL };
        static const char *const empty[] = { "https_proxy=", "all_proxy=http://all:1", NULL };
        Config *c;

        c = env_ok(env);
        /* a value without a scheme is http:// */
        ck_assert_str_eq(config_proxy(c, "https"), "http://secure.corp:8080");
        ck_assert_str_eq(config_proxy(c, "http"), "http://plain:3128");
        ck_assert_str_eq(config_no_proxy(c), "localhost,.internal");
        ck_assert_str_eq(c->env_https_proxy_var, "https_proxy");
        ck_assert_str_eq(c->env_no_proxy_var, "no_proxy");
        ck_assert_str_eq(config_proxy_source(c), "environment");
        /* the configuration wins, each key on its own */
        load_ok(c, "upstream:\n  proxy: http://cfg:3128\n");
        ck_assert_str_eq(config_proxy(c, "https"), "http://cfg:3128");
        ck_assert_str_eq(config_no_proxy(c), "localhost,.internal");
        load_ok(c, "upstream:\n  proxy: \"\"\n  no_proxy: \"\"\n");
        ck_assert_str_eq(config_proxy(c, "https"), "");
        ck_assert_str_eq(config_no_proxy(c), "");
        config_free(c);

        /* HTTPS_PROXY counts, HTTP_PROXY never does (a CGI request can set it) */
        c = env_ok(upper);
        ck_assert_str_eq(config_proxy(c, "https"), "http://upper:3128");
        ck_assert_ptr_null(config_proxy(c, "http"));
        config_free(c);

        c = env_ok(all);
        ck_assert_str_eq(config_proxy(c, "https"), "socks5://all:1080");
        ck_assert_str_eq(config_proxy(c, "http"), "socks5://all:1080");
        ck_assert_str_eq(c->env_http_proxy_var, "ALL_PROXY");
        config_free(c);

        /* set but empty: direct for that scheme, all_proxy is not consulted */
        c = env_ok(empty);
        ck_assert_str_eq(config_proxy(c, "https"), "");
        ck_assert_str_eq(config_proxy(c, "http"), "http://all:1");
        config_free(c);
}
END_TEST

START_TEST(test_proxy_environment_errors) {
        static const char *const bad[] = { "https_proxy=ftp://user:hunter2@proxy:21", NULL };
        static const char *const bad_host[] = { "http_proxy=http://:3128", NULL };

        /* named by the variable; the value (a password) is never repeated */
        assert_env_error(bad, "https_proxy: must use the scheme http, https, socks5 or socks5h");
        assert_env_error(bad_host, "http_proxy: is not a URL");
}
END_TEST

START_TEST(test_proxy_json_masked) {
        _cleanup_(config_freep) Config *c = NULL;
        static const char *const none[] = { NULL };
        json_object *o, *up, *v;
        const char *s;

        c = env_ok(none);
        load_ok(c, "upstream:\n  proxy: http://user:hunter2@proxy.corp:3128\n");
        o = config_to_json(c);
        ck_assert(json_object_object_get_ex(o, "upstream", &up));
        ck_assert(json_object_object_get_ex(up, "proxy", &v));
        ck_assert_str_eq(json_object_get_string(v), "http://***@proxy.corp:3128");
        s = json_object_to_json_string(o);
        ck_assert_ptr_null(strstr(s, "hunter2"));
        json_object_put(o);
}
END_TEST

/* ---- proxy.c -------------------------------------------------------------------------------- */

START_TEST(test_proxy_mask) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "http://proxy:3128", "http://proxy:3128" },
                { "http://user:pw@proxy:3128", "http://***@proxy:3128" },
                { "http://user@proxy:3128/", "http://***@proxy:3128/" },
                { "socks5h://u:p@w@[::1]:1080", "socks5h://***@[::1]:1080" },
                { "user:pw@proxy:3128", "***@proxy:3128" },
                { "http://proxy:3128/a@b", "http://proxy:3128/a@b" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *m = proxy_mask(cases[i].in);

                ck_assert_str_eq(m, cases[i].out);
        }
}
END_TEST

START_TEST(test_no_proxy_match) {
        static const struct {
                const char *list, *host;
                bool match;
        } cases[] = {
                { NULL, "a.example", false },
                { "", "a.example", false },
                { "*", "anything", true },
                { "example.com", "example.com", true },
                { "example.com", "api.example.com", true },
                { "example.com", "notexample.com", false },
                { ".example.com", "api.example.com", true },
                { ".example.com", "example.com", true },
                { "EXAMPLE.com", "Api.Example.COM", true },
                { "example.com", "example.com.", true },
                { "a.b, example.com", "x.example.com", true },
                { "a.b example.com\texample.org", "example.org", true },
                { "localhost", "127.0.0.1", false },
                { "127.0.0.1", "127.0.0.1", true },
                { "127.0.0.0/8", "127.1.2.3", true },
                { "10.0.0.0/8", "127.0.0.1", false },
                { "192.168.1.0/24", "192.168.1.77", true },
                { "192.168.1.0/24", "192.168.2.1", false },
                { "::1", "[::1]", true },
                { "[::1]", "::1", true },
                { "fd00::/8", "[fd12:3456::1]", true },
                { "fd00::/8", "[fe80::1]", false },
                { "*.example.com", "a.example.com", false },
                { "a,*", "b", false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                ck_assert_msg(proxy_no_proxy_matches(cases[i].list, cases[i].host) == cases[i].match,
                              "no_proxy '%s', host '%s': expected %s", strna(cases[i].list), cases[i].host,
                              cases[i].match ? "a match" : "no match");
}
END_TEST

START_TEST(test_proxy_pick) {
        const char *p = NULL;

        ck_assert_ptr_null(proxy_pick(NULL, NULL, NULL, "https", "h"));
        ck_assert_str_eq(proxy_pick("http://h:1", "http://s:1", NULL, "https", "h"), "http://s:1");
        ck_assert_str_eq(proxy_pick("http://h:1", "http://s:1", NULL, "http", "h"), "http://h:1");
        ck_assert_ptr_null(proxy_pick("http://h:1", "", NULL, "https", "h"));
        ck_assert_ptr_null(proxy_pick("http://h:1", "http://s:1", "h", "https", "h"));
        ck_assert_int_eq(proxy_pick_url("http://h:1", "http://s:1", "127.0.0.1", "http://127.0.0.1:8080/api", &p), 0);
        ck_assert_ptr_null(p);
        ck_assert_int_eq(proxy_pick_url("http://h:1", "http://s:1", "localhost", "http://127.0.0.1:8080/api", &p), 0);
        ck_assert_str_eq(p, "http://h:1");
        ck_assert_int_eq(proxy_pick_url("http://h:1", NULL, NULL, "https://api.example/api", &p), 0);
        ck_assert_ptr_null(p);
        ck_assert_int_eq(proxy_pick_url("http://h:1", NULL, NULL, "not a url", &p), -EINVAL);
}
END_TEST

/* ---- dirs.c --------------------------------------------------------------------------------- */

START_TEST(test_dirs_make) {
        _cleanup_free_ char *base = make_tmp_dir("dirs"), *deep = NULL, *why = NULL, *dots = NULL;
        struct stat st;

        ck_assert_int_ge(asprintf(&deep, "%s/a/b/state", base), 0);
        ck_assert_int_eq(dirs_make(deep, 0700, &why), 0);
        ck_assert_ptr_null(why);
        ck_assert_int_eq(stat(deep, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_int_eq(st.st_mode & 07777, 0700);
        /* an existing directory is fine, and keeps its mode */
        ck_assert_int_eq(chmod(deep, 0750), 0);
        ck_assert_int_eq(dirs_make(deep, 0700, &why), 0);
        ck_assert_int_eq(stat(deep, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0750);

        ck_assert_int_ge(asprintf(&dots, "%s/a/../b", base), 0);
        ck_assert_int_eq(dirs_make(dots, 0700, &why), -EINVAL);
        ck_assert_ptr_nonnull(strstr(why, "'.' and '..' are not allowed"));
        why = mfree(why);
        ck_assert_int_eq(dirs_make("relative/dir", 0700, &why), -EINVAL);
        why = mfree(why);
}
END_TEST

START_TEST(test_dirs_make_symlinks) {
        _cleanup_free_ char *base = make_tmp_dir("links"), *real = NULL, *link = NULL, *through = NULL,
                            *why = NULL;
        struct stat st;

        ck_assert_int_ge(asprintf(&real, "%s/real", base), 0);
        ck_assert_int_ge(asprintf(&link, "%s/link", base), 0);
        ck_assert_int_ge(asprintf(&through, "%s/link/state", base), 0);
        ck_assert_int_eq(mkdir(real, 0755), 0);
        ck_assert_int_eq(symlink(real, link), 0);

        /* our own link is followed */
        ck_assert_int_eq(dirs_make(through, 0700, &why), 0);
        ck_assert_int_eq(stat(through, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_int_eq(rmdir(through), 0);

        /* a link another user owns is not: only root can make one to try */
        if (geteuid() == 0) {
                ck_assert_int_eq(lchown(link, 65534, 65534), 0);
                ck_assert_int_eq(dirs_make(through, 0700, &why), -EPERM);
                ck_assert_ptr_nonnull(strstr(why, "symbolic link owned by another user"));
                ck_assert_ptr_nonnull(strstr(why, link));
                ck_assert_int_eq(access(through, F_OK), -1);
        }
}
END_TEST

START_TEST(test_dirs_make_unwritable_parent) {
        _cleanup_free_ char *base = make_tmp_dir("ro"), *locked = NULL, *want = NULL, *why = NULL;

        /* root may write anywhere but in a pseudo file system such as /sys */
        if (geteuid() == 0) {
                if (access("/sys/kernel", F_OK) < 0)
                        return;
                ck_assert_int_eq(dirs_make("/sys/avatard-test/state", 0700, &why), -EPERM);
                ck_assert_str_eq(why, "'/sys/avatard-test': cannot create it: Operation not permitted "
                                 "(uid 0 may not write to its parent)");
                return;
        }
        ck_assert_int_ge(asprintf(&locked, "%s/locked", base), 0);
        ck_assert_int_eq(mkdir(locked, 0500), 0);
        ck_assert_int_ge(asprintf(&want, "%s/locked/lib/avatard", base), 0);
        ck_assert_int_eq(dirs_make(want, 0700, &why), -EACCES);
        ck_assert_ptr_nonnull(strstr(why, "/locked/lib': cannot create it"));
        ck_assert_ptr_nonnull(strstr(why, "may not write to its parent"));
        (void) chmod(locked, 0700);
}
END_TEST

static Suite *paths_suite(void) {
        Suite *s = suite_create("config-paths");
        TCase *tc;

        tc = tcase_create("directories");
        tcase_add_test(tc, test_state_directory_precedence);
        tcase_add_test(tc, test_state_directory_relative);
        tcase_add_test(tc, test_runtime_directory_precedence);
        tcase_add_test(tc, test_runtime_directory_errors);
        suite_add_tcase(s, tc);

        tc = tcase_create("config file");
        tcase_add_test(tc, test_find_file_configuration_directory);
        tcase_add_test(tc, test_find_file_without_environment);
        suite_add_tcase(s, tc);

        tc = tcase_create("proxy config");
        tcase_add_test(tc, test_proxy_keys);
        tcase_add_test(tc, test_proxy_key_errors);
        tcase_add_test(tc, test_proxy_environment);
        tcase_add_test(tc, test_proxy_environment_errors);
        tcase_add_test(tc, test_proxy_json_masked);
        suite_add_tcase(s, tc);

        tc = tcase_create("proxy");
        tcase_add_test(tc, test_proxy_mask);
        tcase_add_test(tc, test_no_proxy_match);
        tcase_add_test(tc, test_proxy_pick);
        suite_add_tcase(s, tc);

        tc = tcase_create("dirs");
        tcase_add_test(tc, test_dirs_make);
        tcase_add_test(tc, test_dirs_make_symlinks);
        tcase_add_test(tc, test_dirs_make_unwritable_parent);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(paths_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
