/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <grp.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <json-c/linkhash.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "build-config.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "protocol.h"
#include "proxy.h"
#include "upstream.h"

#define DEFAULT_API_URL "https://www.octopize.app/api"
#define DEFAULT_STORAGE_URL "https://www.octopize.app/storage"
#define DEFAULT_GROUP "avatar"

typedef enum KeyType {
        KEY_STRING,
        KEY_BOOL,
        KEY_UINT,   /* unsigned int */
        KEY_SIZE,   /* uint64_t, with optional K/M/G/KiB/MiB/GiB suffix */
        KEY_MODE,   /* mode_t, octal */
        KEY_LEVEL,  /* log level name */
        KEY_ACCESS, /* the access section: role → {users, groups} */
} KeyType;

typedef enum UrlKey {
        URL_NONE,
        URL_BASE,
        URL_API,
        URL_STORAGE,
} UrlKey;

/* Checks a string value; returns NULL when good, else what is wrong (static text). */
typedef const char *(*key_check_fn)(const char *value);

/* KEY_STRING flags. */
enum {
        KEY_KEEP_EMPTY = 1 << 0, /* "" is a value of its own (YAML null still unsets) */
        KEY_MASK_URL = 1 << 1,   /* a URL whose "user:password@" is masked when shown */
};

typedef struct KeyDef {
        const char *section; /* NULL for top level */
        const char *name;
        KeyType type;
        size_t offset;
        uint64_t min, max;
        UrlKey url;
        key_check_fn check;  /* KEY_STRING only, optional */
        unsigned flags;      /* KEY_STRING only */
} KeyDef;

#define K(sec, nm, ty, field, lo, hi) { sec, nm, ty, offsetof(Config, field), lo, hi, URL_NONE, NULL, 0 }
#define KU(sec, nm, field, u) { sec, nm, KEY_STRING, offsetof(Config, field), 0, 0, u, NULL, 0 }
#define KC(sec, nm, field, fn) { sec, nm, KEY_STRING, offsetof(Config, field), 0, 0, URL_NONE, fn, 0 }
#define KF(sec, nm, field, fn, fl) { sec, nm, KEY_STRING, offsetof(Config, field), 0, 0, URL_NONE, fn, fl }

/* A User-Agent goes into a header line as is: printable ASCII only, so no value can end
 * the line early or smuggle another header, and bounded. */
static const char *check_user_agent(const char *v) {
        if (strlen(v) > CONFIG_USER_AGENT_MAX)
                return "must be at most 256 characters";
        for (const char *p = v; *p; p++)
                if (*p < 0x20 || *p > 0x7e)
                        return "must be printable ASCII (no control characters or line breaks)";
        return NULL;
}

/* A SigV4 region is one credential-scope component: what the storage client accepts. */
static const char *check_region(const char *v) {
        if (strlen(v) > CONFIG_STORAGE_REGION_MAX)
                return "must be at most 64 characters";
        for (const char *p = v; *p; p++)
                if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
                    !(*p >= '0' && *p <= '9') && *p != '-' && *p != '_')
                        return "must hold only letters, digits, '-' and '_' (e.g. us-east-1)";
        return NULL;
}

/* upstream.proxy: checked as proxy_check() does; "" (no proxy) never reaches a check. */
static const char *check_proxy(const char *v) {
        return proxy_check(v);
}

/* upstream.no_proxy. */
static const char *check_no_proxy(const char *v) {
        return proxy_check_no_proxy(v);
}

/* Every key, its type, where it goes and its range. Defaults are in config_new(). */
static const KeyDef keys[] = {
        K(NULL, "socket", KEY_STRING, socket_path, 0, 0),
        K(NULL, "socket_mode", KEY_MODE, socket_mode, 0, 0777),
        K(NULL, "socket_group", KEY_STRING, socket_group, 0, 0),
        K(NULL, "state_directory", KEY_STRING, state_directory, 0, 0),
        K(NULL, "log_level", KEY_LEVEL, log_level, 0, 7),

        K("limits", "max_frame_bytes", KEY_SIZE, max_frame_bytes, PROTO_FRAME_MAX_MIN, PROTO_FRAME_MAX_MAX),
        K("limits", "max_connections", KEY_UINT, max_connections, 1, 1000000),
        K("limits", "max_connections_per_uid", KEY_UINT, max_connections_per_uid, 1, 1000000),
        K("limits", "max_inflight_per_connection", KEY_UINT, max_inflight_per_connection, 1, 4096),
        K("limits", "max_output_bytes", KEY_SIZE, max_output_bytes, 64 * 1024, UINT64_C(1) << 32),
        K("limits", "max_buffered_bytes", KEY_SIZE, max_buffered_bytes, PROTO_FRAME_MAX_MIN, UINT64_C(1) << 40),
        K("limits", "idle_timeout_s", KEY_UINT, idle_timeout_s, 0, 7 * 24 * 3600),
        K("limits", "frame_timeout_s", KEY_UINT, frame_timeout_s, 0, 3600),
        K("limits", "shutdown_timeout_s", KEY_UINT, shutdown_timeout_s, 0, 3600),

        KU("upstream", "base_url", base_url, URL_BASE),
        KU("upstream", "base_api_url", base_api_url, URL_API),
        KU("upstream", "storage_endpoint_url", storage_endpoint_url, URL_STORAGE),
        K("upstream", "api_key_file", KEY_STRING, api_key_file, 0, 0),
        KC("upstream", "user_agent", user_agent, check_user_agent),
        K("upstream", "ca_file", KEY_STRING, ca_file, 0, 0),
        KC("upstream", "storage_region", storage_region, check_region),
        KF("upstream", "proxy", proxy, check_proxy, KEY_KEEP_EMPTY | KEY_MASK_URL),
        KF("upstream", "no_proxy", no_proxy, check_no_proxy, KEY_KEEP_EMPTY),
        K("upstream", "should_verify_ssl", KEY_BOOL, should_verify_ssl, 0, 1),
        K("upstream", "verify_compatibility", KEY_BOOL, verify_compatibility, 0, 1),
        K("upstream", "allow_insecure_http", KEY_BOOL, allow_insecure_http, 0, 1),
        K("upstream", "timeout_s", KEY_UINT, timeout_s, 1, 24 * 3600),
        K("upstream", "connect_timeout_s", KEY_UINT, connect_timeout_s, 1, 600),
        K("upstream", "max_body_bytes", KEY_SIZE, max_body_bytes, 64 * 1024, UINT64_C(1) << 32),
        K("upstream", "max_attempts", KEY_UINT, max_attempts, 1, 50),
        K("upstream", "retry_base_ms", KEY_UINT, retry_base_ms, 1, 60000),
        K("upstream", "retry_max_ms", KEY_UINT, retry_max_ms, 1, 600000),
        K("upstream", "rate_limit_retries", KEY_UINT, rate_limit_retries, 0, 20),
        K("upstream", "max_retry_after_s", KEY_UINT, max_retry_after_s, 1, 3600),
        K("upstream", "max_connections", KEY_UINT, upstream_max_connections, 1, 1024),
        K("upstream", "breaker_threshold", KEY_UINT, breaker_threshold, 1, 1000),
        K("upstream", "breaker_cooldown_s", KEY_UINT, breaker_cooldown_s, 1, 3600),

        K("cache", "compatibility_ttl_s", KEY_UINT, compatibility_ttl_s, 1, 7 * 24 * 3600),
        K("cache", "health_ttl_s", KEY_UINT, health_ttl_s, 0, 3600),
        K("cache", "jobs_ttl_s", KEY_UINT, jobs_ttl_s, 0, 3600),
        K("cache", "stale_max_s", KEY_UINT, stale_max_s, 0, 7 * 24 * 3600),

        K("runners", "poll_min_s", KEY_UINT, poll_min_s, 1, 3600),
        K("runners", "poll_max_s", KEY_UINT, poll_max_s, 1, 3600),
        K("runners", "multipart_threshold_bytes", KEY_SIZE, multipart_threshold_bytes,
          5 * 1024 * 1024, UINT64_C(5) << 30),
        K("runners", "multipart_part_bytes", KEY_SIZE, multipart_part_bytes,
          5 * 1024 * 1024, UINT64_C(5) << 30),
        K("runners", "transfer_concurrency", KEY_UINT, transfer_concurrency, 1, 64),
        K("runners", "max_runners_per_uid", KEY_UINT, max_runners_per_uid, 1, 100000),

        { NULL, "access", KEY_ACCESS, 0, 0, 0, URL_NONE, NULL, 0 },
};

static const char *const sections[] = { "limits", "upstream", "cache", "runners" };

static const char *const role_names[_ROLE_MAX] = {
        [ROLE_NONE] = "none",
        [ROLE_READ] = "read",
        [ROLE_OPERATE] = "operate",
        [ROLE_ADMIN] = "admin",
};

/* Returns the name of a role. */
const char *role_to_string(Role r) {
        if (r < 0 || r >= _ROLE_MAX)
                return NULL;
        return role_names[r];
}

/* Parses a role name. */
Role role_from_string(const char *s) {
        for (Role r = 0; r < _ROLE_MAX; r++)
                if (streq_ptr(s, role_names[r]))
                        return r;
        return _ROLE_INVALID;
}

/* Releases the members of an error. */
void config_error_done(ConfigError *e) {
        if (!e)
                return;
        free(e->file);
        free(e->key);
        free(e->message);
        *e = (ConfigError){};
}

/* Formats an error as one line. */
char *config_error_to_string(const ConfigError *e) {
        char *s = NULL;
        int r;

        if (e->file && e->line > 0)
                r = asprintf(&s, "%s:%u: %s: %s", e->file, e->line, strna(e->key), strna(e->message));
        else if (e->file)
                r = asprintf(&s, "%s: %s: %s", e->file, strna(e->key), strna(e->message));
        else
                r = asprintf(&s, "%s: %s", strna(e->key), strna(e->message));
        return r < 0 ? NULL : s;
}

/* Fills an error (replacing what it held) and returns -EINVAL (or -ENOMEM). */
_printf_(5, 6) static int set_error(ConfigError *e, const char *file, unsigned line,
                                     const char *key, const char *fmt, ...) {
        va_list ap;
        char *m = NULL;
        int r;

        if (!e)
                return -EINVAL;
        config_error_done(e);
        va_start(ap, fmt);
        r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        e->message = m;
        e->file = file ? strdup(file) : NULL;
        e->key = key ? strdup(key) : NULL;
        e->line = line;
        return -EINVAL;
}

/* Releases an access rule's lists. */
static void access_rule_done(AccessRule *a) {
        free(a->uids);
        free(a->gids);
        *a = (AccessRule){};
}

/* Appends a gid to a rule. */
static int access_rule_add_gid(AccessRule *a, gid_t g) {
        gid_t *n = reallocarray(a->gids, a->n_gids + 1, sizeof(gid_t));
        if (!n)
                return -ENOMEM;
        a->gids = n;
        a->gids[a->n_gids++] = g;
        return 0;
}

/* Appends a uid to a rule. */
static int access_rule_add_uid(AccessRule *a, uid_t u) {
        uid_t *n = reallocarray(a->uids, a->n_uids + 1, sizeof(uid_t));
        if (!n)
                return -ENOMEM;
        a->uids = n;
        a->uids[a->n_uids++] = u;
        return 0;
}

/* Resolves a group name or number. Returns 0 with *ret, -ENOENT when unknown. */
static int resolve_group(const char *name, gid_t *ret) {
        char buf[4096], *end;
        struct group grp, *res = NULL;
        unsigned long v;

        errno = 0;
        v = strtoul(name, &end, 10);
        if (*name && *end == '\0' && errno == 0 && v < (unsigned long) (gid_t) -1) {
                *ret = (gid_t) v;
                return 0;
        }
        if (getgrnam_r(name, &grp, buf, sizeof(buf), &res) != 0 || !res)
                return -ENOENT;
        *ret = res->gr_gid;
        return 0;
}

/* Resolves a user name or number. Returns 0 with *ret, -ENOENT when unknown. */
static int resolve_user(const char *name, uid_t *ret) {
        char buf[4096], *end;
        struct passwd pw, *res = NULL;
        unsigned long v;

        errno = 0;
        v = strtoul(name, &end, 10);
        if (*name && *end == '\0' && errno == 0 && v < (unsigned long) (uid_t) -1) {
                *ret = (uid_t) v;
                return 0;
        }
        if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res)
                return -ENOENT;
        *ret = res->pw_uid;
        return 0;
}

/* Creates a Config holding every default. */
int config_new(Config **ret) {
        _cleanup_(config_freep) Config *c = NULL;
        gid_t g;

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;

        c->socket_path = strdup(AVATARD_DEFAULT_SOCKET);
        c->state_directory = strdup(AVATARD_DEFAULT_STATE_DIR);
        c->socket_group = strdup(DEFAULT_GROUP);
        if (!c->socket_path || !c->state_directory || !c->socket_group)
                return -ENOMEM;
        c->socket_mode = 0660;
        c->log_level = LOG_INFO;

        c->max_frame_bytes = PROTO_FRAME_MAX_DEFAULT;
        c->max_connections = PROTO_CONNECTIONS_DEFAULT;
        c->max_connections_per_uid = PROTO_CONNECTIONS_PER_UID_DEFAULT;
        c->max_inflight_per_connection = PROTO_INFLIGHT_PER_CONN_DEFAULT;
        c->max_output_bytes = PROTO_OUTPUT_MAX_DEFAULT;
        c->max_buffered_bytes = PROTO_BUFFERED_MAX_DEFAULT;
        c->idle_timeout_s = PROTO_IDLE_TIMEOUT_DEFAULT_S;
        c->frame_timeout_s = PROTO_FRAME_TIMEOUT_DEFAULT_S;
        c->shutdown_timeout_s = 30;

        c->storage_region = strdup(CONFIG_DEFAULT_STORAGE_REGION);
        if (!c->storage_region)
                return -ENOMEM;
        c->should_verify_ssl = true;
        c->verify_compatibility = true;
        c->timeout_s = 60;
        c->connect_timeout_s = 10;
        c->max_body_bytes = 64 * 1024 * 1024;
        c->max_attempts = 6;
        c->retry_base_ms = 200;
        c->retry_max_ms = 5000;
        c->rate_limit_retries = 3;
        c->max_retry_after_s = 60;
        c->upstream_max_connections = 64;
        c->breaker_threshold = 5;
        c->breaker_cooldown_s = 10;

        c->compatibility_ttl_s = 3600;
        c->health_ttl_s = 5;
        c->jobs_ttl_s = 2;
        c->stale_max_s = 300;

        c->poll_min_s = 5;
        c->poll_max_s = 20;
        c->multipart_threshold_bytes = 64 * 1024 * 1024;
        c->multipart_part_bytes = 16 * 1024 * 1024;
        c->transfer_concurrency = 10;
        c->max_runners_per_uid = 1000;

        /* root is admin by rule in config_role_for(); members of "avatar" read and operate */
        if (resolve_group(DEFAULT_GROUP, &g) >= 0) {
                if (access_rule_add_gid(&c->access[ROLE_OPERATE], g) < 0)
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(c);
        return 0;
}

/* The User-Agent actually sent. */
const char *config_user_agent(const Config *c) {
        return c->user_agent ?: CONFIG_DEFAULT_USER_AGENT;
}

/* Frees a Config. */
Config *config_free(Config *c) {
        if (!c)
                return NULL;
        free(c->source);
        free(c->socket_path);
        free(c->socket_group);
        free(c->state_directory);
        free(c->base_url);
        free(c->base_api_url);
        free(c->storage_endpoint_url);
        free(c->api_url);
        free(c->storage_url);
        free(c->api_key_file);
        free(c->user_agent);
        free(c->ca_file);
        free(c->storage_region);
        erase_and_free(c->proxy);
        free(c->no_proxy);
        erase_and_free(c->env_http_proxy);
        erase_and_free(c->env_https_proxy);
        free(c->env_no_proxy);
        for (Role r = 0; r < _ROLE_MAX; r++)
                access_rule_done(&c->access[r]);
        free(c);
        return NULL;
}

/* Parses a boolean in the forms YAML 1.1 and pydantic accept. */
static int parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on", "1", "y", "t" };
        static const char *const no[] = { "false", "no", "off", "0", "n", "f" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

/* Parses an unsigned decimal integer, optionally with a size suffix. */
static int parse_u64(const char *s, bool allow_suffix, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t factor;
        } suffixes[] = {
                { "K", 1024 }, { "KiB", 1024 }, { "M", 1024 * 1024 }, { "MiB", 1024 * 1024 },
                { "G", UINT64_C(1) << 30 }, { "GiB", UINT64_C(1) << 30 },
        };
        char *end;
        unsigned long long v;

        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -ERANGE;
        if (*end == '\0') {
                *ret = v;
                return 0;
        }
        if (!allow_suffix)
                return -EINVAL;
        while (*end == ' ')
                end++;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                if (streq(end, suffixes[i].suffix)) {
                        if (v > UINT64_MAX / suffixes[i].factor)
                                return -ERANGE;
                        *ret = v * suffixes[i].factor;
                        return 0;
                }
        return -EINVAL;
}

/* Whether a URL names a user or a password: an '@' in its authority, which runs from after
 * "scheme://" (or from the start when there is no scheme) to the first '/', '?' or '#'. */
static bool url_has_userinfo(const char *url) {
        const char *a = strstr(url, "://");

        a = a ? a + 3 : url;
        return memchr(a, '@', strcspn(a, "/?#")) != NULL;
}

/* Stores a scalar into the field a key describes. `origin` names the source for errors. */
static int set_value(Config *c, const KeyDef *k, const char *value, const char *file,
                     unsigned line, const char *keyname, ConfigError *err) {
        char *p = (char *) c + k->offset;
        uint64_t v;
        bool b;
        int r;

        switch (k->type) {
        case KEY_STRING: {
                char **s = (char **) p;
                const char *why;
                char *n = NULL;

                if (k->check && !isempty(value) && (why = k->check(value)))
                        return set_error(err, file, line, keyname, "%s", why);
                /* the message never shows the value: it holds a password */
                if (k->url != URL_NONE && !isempty(value) && url_has_userinfo(value))
                        return set_error(err, file, line, keyname,
                                         "must not contain a user name or password ('user:password@'): "
                                         "the API is reached with the API key (upstream.api_key_file) "
                                         "and the storage with the credentials the API hands out");
                if (!isempty(value) || (value && (k->flags & KEY_KEEP_EMPTY))) {
                        n = strdup(value);
                        if (!n)
                                return -ENOMEM;
                }
                if (k->flags & KEY_MASK_URL)
                        erase_and_free(*s);
                else
                        free(*s);
                *s = n;
                return 0;
        }
        case KEY_BOOL:
                r = parse_bool(value, &b);
                if (r < 0)
                        return set_error(err, file, line, keyname,
                                         "expected a boolean (true/false), got '%s'", value);
                *(bool *) p = b;
                return 0;
        case KEY_UINT:
        case KEY_SIZE:
                r = parse_u64(value, k->type == KEY_SIZE, &v);
                if (r < 0 || v < k->min || v > k->max) {
                        if (r == -EINVAL)
                                return set_error(err, file, line, keyname,
                                                 "expected a non-negative integer%s, got '%s'",
                                                 k->type == KEY_SIZE ? " (optionally with K, M or G)" : "",
                                                 value);
                        return set_error(err, file, line, keyname,
                                         "must be between %" PRIu64 " and %" PRIu64 ", got '%s'",
                                         k->min, k->max, value);
                }
                if (k->type == KEY_UINT)
                        *(unsigned *) p = (unsigned) v;
                else
                        *(uint64_t *) p = v;
                return 0;
        case KEY_MODE: {
                char *end;
                unsigned long m;

                errno = 0;
                m = strtoul(value, &end, 8);
                if (errno != 0 || *end != '\0' || isempty(value) || m > k->max)
                        return set_error(err, file, line, keyname,
                                         "expected an octal mode such as 0660, got '%s'", value);
                *(mode_t *) p = (mode_t) m;
                return 0;
        }
        case KEY_LEVEL:
                r = log_level_from_string(value);
                if (r < 0)
                        return set_error(err, file, line, keyname,
                                         "expected one of emerg, alert, crit, err, warning, notice, info, debug; got '%s'",
                                         value);
                *(int *) p = r;
                return 0;
        case KEY_ACCESS:
                break;
        }
        return set_error(err, file, line, keyname, "cannot be set from a string");
}

/* Finds a key by section and name. */
static const KeyDef *find_key(const char *section, const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (streq_ptr(keys[i].section, section) && streq(keys[i].name, name))
                        return &keys[i];
        return NULL;
}

/* Whether `name` is a section. */
static bool is_section(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(sections); i++)
                if (streq(sections[i], name))
                        return true;
        return false;
}

/* Drops URLs that came from the environment: a file or flag that sets any of the three URL
 * keys replaces the whole group, so base_url in the file and AVATAR_BASE_API_URL in the
 * environment never combine into a conflict the administrator did not write. */
static void drop_env_urls(Config *c) {
        if (!c->urls_from_env)
                return;
        c->base_url = mfree(c->base_url);
        c->base_api_url = mfree(c->base_api_url);
        c->storage_endpoint_url = mfree(c->storage_endpoint_url);
        c->urls_from_env = false;
}

/* Environment variables of the Avatar client that the daemon honours. */
static const struct {
        const char *name;
        const char *key; /* section.name */
} env_vars[] = {
        { "AVATAR_BASE_URL", "upstream.base_url" },
        { "AVATAR_BASE_API_URL", "upstream.base_api_url" },
        { "AVATAR_STORAGE_ENDPOINT_URL", "upstream.storage_endpoint_url" },
        { "STORAGE_ENDPOINT_URL", "upstream.storage_endpoint_url" },
        { "AVATAR_TIMEOUT", "upstream.timeout_s" },
        { "AVATAR_SHOULD_VERIFY_SSL", "upstream.should_verify_ssl" },
        { "AVATAR_VERIFY_COMPATIBILITY", "upstream.verify_compatibility" },
};

/* Finds a key given as "section.name" or "name". */
static const KeyDef *find_dotted_key(const char *dotted) {
        char section[32];
        const char *dot = strchr(dotted, '.');

        if (!dot)
                return find_key(NULL, dotted);
        if ((size_t) (dot - dotted) >= sizeof(section))
                return NULL;
        memcpy(section, dotted, (size_t) (dot - dotted));
        section[dot - dotted] = '\0';
        return find_key(section, dot + 1);
}

/* The value of an environment variable (exact name), or NULL. */
static const char *env_value(char *const *envp, const char *name) {
        size_t l = strlen(name);

        for (char *const *e = envp; e && *e; e++)
                if (strncmp(*e, name, l) == 0 && (*e)[l] == '=')
                        return *e + l + 1;
        return NULL;
}

/* The first path of a colon-separated list (systemd joins several directories that way), as
 * a malloc'd copy without trailing slashes. Returns 0, -EINVAL when it is not absolute, or
 * -ENOMEM. */
static int first_path(const char *list, char **ret) {
        size_t n = strcspn(list, ":");
        char *p;

        if (n == 0 || list[0] != '/')
                return -EINVAL;
        while (n > 1 && list[n - 1] == '/')
                n--;
        p = strndup(list, n);
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

/* $STATE_DIRECTORY and $RUNTIME_DIRECTORY, as systemd passes them (StateDirectory=,
 * RuntimeDirectory=): the defaults the file and the command line may still override. */
static int apply_env_directories(Config *c, char *const *envp, ConfigError *err) {
        const char *v;
        char *dir = NULL, *sock = NULL;
        int r;

        v = env_value(envp, "STATE_DIRECTORY");
        if (!isempty(v)) {
                r = first_path(v, &dir);
                if (r == -EINVAL)
                        return set_error(err, NULL, 0, "STATE_DIRECTORY",
                                         "must be an absolute path, got '%s'", v);
                if (r < 0)
                        return r;
                free(c->state_directory);
                c->state_directory = dir;
        }
        v = env_value(envp, "RUNTIME_DIRECTORY");
        if (!isempty(v)) {
                r = first_path(v, &dir);
                if (r == -EINVAL)
                        return set_error(err, NULL, 0, "RUNTIME_DIRECTORY",
                                         "must be an absolute path, got '%s'", v);
                if (r < 0)
                        return r;
                r = asprintf(&sock, "%s/avatard.sock", dir);
                free(dir);
                if (r < 0)
                        return -ENOMEM;
                if (strlen(sock) >= 108) {
                        free(sock);
                        return set_error(err, NULL, 0, "RUNTIME_DIRECTORY",
                                         "'%s' is too long for a Unix socket path below it", v);
                }
                free(c->socket_path);
                c->socket_path = sock;
        }
        return 0;
}

/* The environment's proxy for one scheme: normalized and checked, "" when set empty. */
static int env_proxy(char *const *envp, const char *scheme, char **ret, const char **ret_var,
                     ConfigError *err) {
        _cleanup_(erase_and_freep) char *n = NULL;
        const char *name, *v, *why;
        int r;

        v = proxy_from_env(envp, scheme, &name);
        if (!v) {
                *ret = erase_and_free(*ret);
                *ret_var = NULL;
                return 0;
        }
        if (isempty(v)) {
                n = strdup("");
                if (!n)
                        return -ENOMEM;
        } else {
                r = proxy_normalize(v, &n);
                if (r < 0)
                        return r;
                /* the message never shows the value: it may hold a password */
                why = proxy_check(n);
                if (why)
                        return set_error(err, NULL, 0, name, "%s", why);
        }
        erase_and_free(*ret);
        *ret = TAKE_PTR(n);
        *ret_var = name;
        return 0;
}

/* The proxy variables, as libcurl would read them (proxy.h). */
static int apply_env_proxies(Config *c, char *const *envp, ConfigError *err) {
        const char *v, *name, *why;
        int r;

        r = env_proxy(envp, "http", &c->env_http_proxy, &c->env_http_proxy_var, err);
        if (r < 0)
                return r;
        r = env_proxy(envp, "https", &c->env_https_proxy, &c->env_https_proxy_var, err);
        if (r < 0)
                return r;
        c->env_no_proxy = mfree(c->env_no_proxy);
        c->env_no_proxy_var = NULL;
        v = proxy_no_proxy_from_env(envp, &name);
        if (v) {
                why = proxy_check_no_proxy(v);
                if (why)
                        return set_error(err, NULL, 0, name, "%s", why);
                c->env_no_proxy = strdup(v);
                if (!c->env_no_proxy)
                        return -ENOMEM;
                c->env_no_proxy_var = name;
        }
        return 0;
}

/* Reads the AVATAR_* variables from envp. */
int config_apply_env(Config *c, char *const *envp, ConfigError *ret_error) {
        bool urls_seen = false;
        int r;

        assert_return(c, -EINVAL);
        if (!envp)
                return 0;

        /* AVATAR_STORAGE_ENDPOINT_URL wins over the unprefixed alias: apply the alias first */
        for (size_t pass = 0; pass < 2; pass++)
                for (char *const *e = envp; *e; e++) {
                        const char *eq = strchr(*e, '=');
                        size_t n;

                        if (!eq)
                                continue;
                        n = (size_t) (eq - *e);
                        for (size_t i = 0; i < ELEMENTSOF(env_vars); i++) {
                                const KeyDef *k;
                                bool alias = streq(env_vars[i].name, "STORAGE_ENDPOINT_URL");

                                if ((pass == 0) != alias)
                                        continue;
                                if (strlen(env_vars[i].name) != n ||
                                    strncasecmp(*e, env_vars[i].name, n) != 0)
                                        continue;
                                k = find_dotted_key(env_vars[i].key);
                                assert(k);
                                if (k->url != URL_NONE && !urls_seen) {
                                        drop_env_urls(c);
                                        urls_seen = true;
                                }
                                /* AVATAR_TIMEOUT may be fractional in the Python client */
                                if (streq(env_vars[i].key, "upstream.timeout_s")) {
                                        char *end;
                                        double d;

                                        errno = 0;
                                        d = strtod(eq + 1, &end);
                                        if (errno != 0 || *end != '\0' || !(d >= 1 && d <= 86400))
                                                return set_error(ret_error, NULL, 0, env_vars[i].name,
                                                                 "expected seconds between 1 and 86400, got '%s'",
                                                                 eq + 1);
                                        /* round a fraction up: 2.0005 is 3, not 2 */
                                        c->timeout_s = (unsigned) d;
                                        if ((double) c->timeout_s < d)
                                                c->timeout_s++;
                                        continue;
                                }
                                r = set_value(c, k, eq + 1, NULL, 0, env_vars[i].name, ret_error);
                                if (r < 0)
                                        return r;
                        }
                }
        if (urls_seen)
                c->urls_from_env = true;
        r = apply_env_directories(c, envp, ret_error);
        if (r < 0)
                return r;
        return apply_env_proxies(c, envp, ret_error);
}

/* The configuration file used when none is given. */
int config_find_file(char *const *envp, char **ret_path, char **ret_tried) {
        _cleanup_free_ char *dir = NULL, *in_dir = NULL, *tried = NULL;
        const char *candidates[2], *v;
        size_t n = 0;

        assert_return(ret_path, -EINVAL);
        v = env_value(envp, "CONFIGURATION_DIRECTORY");
        if (!isempty(v) && first_path(v, &dir) >= 0) {
                if (asprintf(&in_dir, "%s/avatard.yaml", dir) < 0)
                        return -ENOMEM;
                candidates[n++] = in_dir;
        }
        if (n == 0 || !streq(candidates[0], AVATARD_DEFAULT_CONFIG))
                candidates[n++] = AVATARD_DEFAULT_CONFIG;

        *ret_path = NULL;
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                char *t = NULL;

                if (asprintf(&t, "%s%s%s", tried ?: "", tried ? ", " : "", candidates[i]) < 0)
                        return -ENOMEM;
                free(tried);
                tried = t;
                /* only a file that is not there is skipped: one we cannot read is reported */
                if (stat(candidates[i], &st) < 0 && (errno == ENOENT || errno == ENOTDIR))
                        continue;
                *ret_path = strdup(candidates[i]);
                if (!*ret_path)
                        return -ENOMEM;
                break;
        }
        if (ret_tried)
                *ret_tried = TAKE_PTR(tried);
        return 0;
}

/* The proxy for URLs of a scheme. */
const char *config_proxy(const Config *c, const char *scheme) {
        if (c->proxy)
                return c->proxy;
        return strcasecmp(scheme, "https") == 0 ? c->env_https_proxy : c->env_http_proxy;
}

/* The hosts reached directly. */
const char *config_no_proxy(const Config *c) {
        return c->no_proxy ?: c->env_no_proxy;
}

/* Where the proxy setting comes from. */
const char *config_proxy_source(const Config *c) {
        if (c->proxy)
                return "config";
        if (!isempty(c->env_http_proxy) || !isempty(c->env_https_proxy))
                return "environment";
        return "none";
}

/* Returns the scalar text of a node, or NULL when it is not a scalar. */
static const char *scalar(yaml_node_t *n) {
        if (!n || n->type != YAML_SCALAR_NODE)
                return NULL;
        return (const char *) n->data.scalar.value;
}

/* Whether a scalar node is YAML null ("~", "null", empty, unquoted). */
static bool is_null(yaml_node_t *n) {
        const char *s = scalar(n);

        if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        return streq(s, "") || streq(s, "~") || streq(s, "null") || streq(s, "Null") ||
               streq(s, "NULL");
}

/* 1-based line of a node. */
static unsigned line_of(yaml_node_t *n) {
        return n ? (unsigned) n->start_mark.line + 1 : 0;
}

/* Checks a mapping for duplicate keys. */
static int check_duplicates(yaml_document_t *doc, yaml_node_t *map, const char *file,
                            const char *prefix, ConfigError *err) {
        struct lh_table *seen;
        int r = 0;

        /* a hash of the keys seen so far: linear in the number of keys (a pairwise scan of a
         * 1 MiB file of keys would take minutes) */
        seen = lh_kchar_table_new(64, NULL);
        if (!seen)
                return -ENOMEM;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *kn = yaml_document_get_node(doc, p->key);
                const char *k = scalar(kn);

                if (!k)
                        continue;
                if (lh_table_lookup_entry(seen, k)) {
                        r = set_error(err, file, line_of(kn), k, "duplicate key%s%s", prefix ? " in " : "",
                                      prefix ? prefix : "");
                        break;
                }
                if (lh_table_insert(seen, k, NULL) < 0) {
                        r = -ENOMEM;
                        break;
                }
        }
        lh_table_free(seen);
        return r;
}

/* Parses a list of user or group names into a rule. */
static int load_names(yaml_document_t *doc, yaml_node_t *list, AccessRule *rule, bool groups,
                      const char *file, const char *keyname, ConfigError *err) {
        int r;

        if (is_null(list))
                return 0;
        if (list->type != YAML_SEQUENCE_NODE)
                return set_error(err, file, line_of(list), keyname, "expected a list of %s",
                                 groups ? "group names" : "user names");
        for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top; i++) {
                yaml_node_t *n = yaml_document_get_node(doc, *i);
                const char *s = scalar(n);

                if (isempty(s))
                        return set_error(err, file, line_of(n), keyname, "expected a %s name",
                                         groups ? "group" : "user");
                if (groups) {
                        gid_t g;

                        r = resolve_group(s, &g);
                        if (r < 0)
                                return set_error(err, file, line_of(n), keyname, "unknown group '%s'", s);
                        r = access_rule_add_gid(rule, g);
                } else {
                        uid_t u;

                        r = resolve_user(s, &u);
                        if (r < 0)
                                return set_error(err, file, line_of(n), keyname, "unknown user '%s'", s);
                        r = access_rule_add_uid(rule, u);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Parses the access section: {admin|operate|read: {users: [...], groups: [...]}}. A role
 * named in the file replaces that role's default rule. */
static int load_access(Config *c, yaml_document_t *doc, yaml_node_t *map, const char *file,
                       ConfigError *err) {
        int r;

        if (is_null(map))
                return 0;
        if (map->type != YAML_MAPPING_NODE)
                return set_error(err, file, line_of(map), "access", "expected a mapping of roles");
        r = check_duplicates(doc, map, file, "access", err);
        if (r < 0)
                return r;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *kn = yaml_document_get_node(doc, p->key);
                yaml_node_t *vn = yaml_document_get_node(doc, p->value);
                const char *role = scalar(kn);
                char keyname[64];
                Role ro = role_from_string(role);
                AccessRule rule = {};

                if (!role || ro <= ROLE_NONE)
                        return set_error(err, file, line_of(kn), "access",
                                         "unknown role '%s' (known: read, operate, admin)", strna(role));
                if (!is_null(vn)) {
                        if (vn->type != YAML_MAPPING_NODE)
                                return set_error(err, file, line_of(vn), role,
                                                 "expected a mapping with users and groups");
                        r = check_duplicates(doc, vn, file, role, err);
                        if (r < 0)
                                return r;
                        for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
                                yaml_node_t *k2 = yaml_document_get_node(doc, q->key);
                                const char *what = scalar(k2);
                                bool groups;

                                if (streq_ptr(what, "users"))
                                        groups = false;
                                else if (streq_ptr(what, "groups"))
                                        groups = true;
                                else {
                                        access_rule_done(&rule);
                                        return set_error(err, file, line_of(k2), "access",
                                                         "unknown key '%s' in role %s (known: users, groups)",
                                                         strna(what), role);
                                }
                                snprintf(keyname, sizeof(keyname), "access.%s.%s", role, what);
                                r = load_names(doc, yaml_document_get_node(doc, q->value), &rule, groups,
                                               file, keyname, err);
                                if (r < 0) {
                                        access_rule_done(&rule);
                                        return r;
                                }
                        }
                }
                access_rule_done(&c->access[ro]);
                c->access[ro] = rule;
        }
        return 0;
}

/* Applies one key/value pair of a mapping (a section or the top level). */
static int load_pair(Config *c, yaml_document_t *doc, const char *section, yaml_node_t *kn,
                     yaml_node_t *vn, const char *file, ConfigError *err) {
        const char *name = scalar(kn);
        char dotted[128];
        const KeyDef *k;

        if (!name)
                return set_error(err, file, line_of(kn), section ? section : "(top level)",
                                 "keys must be plain strings");
        snprintf(dotted, sizeof(dotted), "%s%s%s", section ? section : "", section ? "." : "", name);

        if (!section && is_section(name)) {
                int r;

                if (is_null(vn))
                        return 0;
                if (vn->type != YAML_MAPPING_NODE)
                        return set_error(err, file, line_of(vn), name, "expected a mapping");
                r = check_duplicates(doc, vn, file, name, err);
                if (r < 0)
                        return r;
                for (yaml_node_pair_t *p = vn->data.mapping.pairs.start; p < vn->data.mapping.pairs.top; p++) {
                        r = load_pair(c, doc, name, yaml_document_get_node(doc, p->key),
                                      yaml_document_get_node(doc, p->value), file, err);
                        if (r < 0)
                                return r;
                }
                return 0;
        }

        k = find_key(section, name);
        if (!k)
                return set_error(err, file, line_of(kn), dotted, "unknown key");
        if (k->type == KEY_ACCESS)
                return load_access(c, doc, vn, file, err);
        if (k->url != URL_NONE)
                drop_env_urls(c);
        if (is_null(vn)) {
                if (k->type != KEY_STRING)
                        return set_error(err, file, line_of(vn), dotted, "a value is required");
                /* a key where "" means something: null leaves it unset */
                return set_value(c, k, (k->flags & KEY_KEEP_EMPTY) ? NULL : "", file, line_of(vn),
                                 dotted, err);
        }
        if (vn->type != YAML_SCALAR_NODE)
                return set_error(err, file, line_of(vn), dotted, "expected a single value");
        return set_value(c, k, scalar(vn), file, line_of(vn), dotted, err);
}

/* Walks the text's events before any document is built, and refuses nesting deeper than
 * CONFIG_DEPTH_MAX or more than CONFIG_NODES_MAX values at the line where the limit is
 * crossed. libyaml's loader has no such limits, and its scanner is quadratic in the nesting
 * of flow collections: a 200 kB file of 100,000 nested "[" kept it busy for over a minute,
 * while this walk stops after the first 65 (it reads ahead at most about 1 KiB). A syntax
 * error ends the walk without an error of its own: the loader reports it as before. */
static int check_structure(const char *text, size_t len, const char *name, ConfigError *err) {
        yaml_parser_t parser;
        unsigned depth = 0, nodes = 0;
        int r = 0;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
        for (;;) {
                yaml_event_t ev;
                yaml_event_type_t t;
                unsigned line;

                if (!yaml_parser_parse(&parser, &ev))
                        break;
                t = ev.type;
                line = (unsigned) ev.start_mark.line + 1;
                yaml_event_delete(&ev);
                if (t == YAML_STREAM_END_EVENT)
                        break;
                if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
                        depth--;
                        continue;
                }
                if (t != YAML_SCALAR_EVENT && t != YAML_ALIAS_EVENT &&
                    t != YAML_SEQUENCE_START_EVENT && t != YAML_MAPPING_START_EVENT)
                        continue;
                if (++nodes > CONFIG_NODES_MAX) {
                        r = set_error(err, name, line, "(structure)", "more than %u values",
                                      CONFIG_NODES_MAX);
                        break;
                }
                if (t != YAML_SCALAR_EVENT && t != YAML_ALIAS_EVENT && ++depth > CONFIG_DEPTH_MAX) {
                        r = set_error(err, name, line, "(structure)", "nested deeper than %u levels",
                                      CONFIG_DEPTH_MAX);
                        break;
                }
        }
        yaml_parser_delete(&parser);
        return r;
}

/* Parses YAML text into c. */
int config_load_string(Config *c, const char *name, const char *text, size_t len,
                       ConfigError *ret_error) {
        yaml_parser_t parser;
        yaml_document_t doc = {}, extra = {};
        yaml_node_t *root;
        unsigned extra_line;
        int r;

        assert_return(c, -EINVAL);
        if (len > CONFIG_FILE_MAX)
                return set_error(ret_error, name, 0, "(file)", "larger than %u bytes", CONFIG_FILE_MAX);
        r = check_structure(text, len, name, ret_error);
        if (r < 0)
                return r;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
        /* load the next document too: a second one would otherwise be ignored silently */
        if (!yaml_parser_load(&parser, &doc) || !yaml_parser_load(&parser, &extra)) {
                yaml_document_delete(&doc);
                r = set_error(ret_error, name, (unsigned) parser.problem_mark.line + 1, "(syntax)",
                              "%s%s%s", strna(parser.problem), parser.context ? " " : "",
                              parser.context ? parser.context : "");
                yaml_parser_delete(&parser);
                return r;
        }
        yaml_parser_delete(&parser);
        root = yaml_document_get_root_node(&extra);
        extra_line = root && !is_null(root) ? line_of(root) : 0;
        yaml_document_delete(&extra);
        if (extra_line > 0) {
                yaml_document_delete(&doc);
                return set_error(ret_error, name, extra_line, "(top level)",
                                 "only one YAML document is allowed");
        }

        root = yaml_document_get_root_node(&doc);
        if (!root || is_null(root)) {
                /* an empty file is a valid configuration that changes nothing */
                yaml_document_delete(&doc);
                return 0;
        }
        if (root->type != YAML_MAPPING_NODE) {
                r = set_error(ret_error, name, line_of(root), "(top level)", "expected a mapping of keys");
                goto out;
        }
        r = check_duplicates(&doc, root, name, NULL, ret_error);
        if (r < 0)
                goto out;
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
                r = load_pair(c, &doc, NULL, yaml_document_get_node(&doc, p->key),
                              yaml_document_get_node(&doc, p->value), name, ret_error);
                if (r < 0)
                        goto out;
        }
        r = 0;
out:
        yaml_document_delete(&doc);
        return r;
}

/* Parses the YAML file at path into c. */
int config_load_file(Config *c, const char *path, bool optional, ConfigError *ret_error) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t n;
        int r;

        assert_return(c && path, -EINVAL);
        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                if (r == -ENOENT && optional)
                        return 0;
                config_error_done(ret_error);
                if (ret_error) {
                        ret_error->file = strdup(path);
                        ret_error->key = strdup("(file)");
                        ret_error->message = strdup(strerror(-r));
                }
                return r;
        }
        buf = malloc(CONFIG_FILE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
        if (ferror(f))
                return set_error(ret_error, path, 0, "(file)", "read error");
        if (n > CONFIG_FILE_MAX)
                return set_error(ret_error, path, 0, "(file)", "larger than %u bytes", CONFIG_FILE_MAX);
        r = config_load_string(c, path, buf, n, ret_error);
        if (r < 0)
                return r;
        free(c->source);
        c->source = strdup(path);
        return c->source ? 0 : -ENOMEM;
}

/* Sets one key from a string. */
int config_set(Config *c, const char *key, const char *value, ConfigError *ret_error) {
        const KeyDef *k;

        assert_return(c && key && value, -EINVAL);
        k = find_dotted_key(key);
        if (!k || k->type == KEY_ACCESS)
                return set_error(ret_error, NULL, 0, key, "unknown key");
        if (k->url != URL_NONE)
                drop_env_urls(c);
        return set_value(c, k, value, NULL, 0, key, ret_error);
}

/* Removes trailing slashes in place. */
static void strip_trailing_slashes(char *s) {
        size_t n = strlen(s);

        while (n > 0 && s[n - 1] == '/')
                s[--n] = '\0';
}

/* Sets *dst to a normalised copy of src (trailing slashes removed). */
static int set_url(char **dst, const char *src) {
        char *n = strdup(src);

        if (!n)
                return -ENOMEM;
        strip_trailing_slashes(n);
        free(*dst);
        *dst = n;
        return 0;
}

/* Checks one effective URL. */
static int check_url(const Config *c, const char *url, const char *key, ConfigError *err) {
        /* URLs from AVATAR_* variables are not in the file: name no file for them */
        const char *file = c->urls_from_env ? NULL : c->source;
        int r;

        if (strchr(url, '"'))
                return set_error(err, file, 0, key, "must not contain '\"'");
        r = upstream_check_url(url, c->allow_insecure_http);
        /* other schemes fail the same way, but allow_insecure_http does not help them */
        if (r == -EPROTONOSUPPORT && strncasecmp(url, "http:", 5) == 0)
                return set_error(err, file, 0, key,
                                 "'%s' uses plain http to a host that is not loopback; use https or set upstream.allow_insecure_http",
                                 url);
        if (r < 0)
                return set_error(err, file, 0, key, "'%s' is not an http(s) URL", url);
        return 0;
}

/* Cross-key validation and normalisation. */
int config_finalize(Config *c, ConfigError *ret_error) {
        const char *origin, *base_key, *api_key, *storage_key;
        bool env;
        int r;

        assert_return(c, -EINVAL);
        env = c->urls_from_env;
        origin = env ? "environment" : "upstream";
        base_key = env ? "AVATAR_BASE_URL" : "upstream.base_url";
        api_key = env ? "AVATAR_BASE_API_URL" : "upstream.base_api_url";
        storage_key = env ? "AVATAR_STORAGE_ENDPOINT_URL" : "upstream.storage_endpoint_url";

        if (c->base_url && (c->base_api_url || c->storage_endpoint_url))
                return set_error(ret_error, env ? NULL : c->source, 0, base_key,
                                 "cannot set base_url together with base_api_url or storage_endpoint_url (%s)",
                                 origin);
        if (c->base_url) {
                size_t n;
                char *a = NULL, *s = NULL;

                strip_trailing_slashes(c->base_url);
                /* the deprecated form with the /api suffix is accepted, as Manager(base_url=) does */
                n = strlen(c->base_url);
                if (endswith(c->base_url, "/api"))
                        c->base_url[n - 4] = '\0';
                strip_trailing_slashes(c->base_url);
                if (asprintf(&a, "%s/api", c->base_url) < 0)
                        return -ENOMEM;
                if (asprintf(&s, "%s/storage", c->base_url) < 0) {
                        free(a);
                        return -ENOMEM;
                }
                free(c->api_url);
                free(c->storage_url);
                c->api_url = a;
                c->storage_url = s;
        } else {
                /* each falls back to the SaaS default on its own; neither derives the other */
                r = set_url(&c->api_url, c->base_api_url ?: DEFAULT_API_URL);
                if (r < 0)
                        return r;
                r = set_url(&c->storage_url, c->storage_endpoint_url ?: DEFAULT_STORAGE_URL);
                if (r < 0)
                        return r;
        }
        r = check_url(c, c->api_url, c->base_url ? base_key : api_key, ret_error);
        if (r < 0)
                return r;
        r = check_url(c, c->storage_url, c->base_url ? base_key : storage_key, ret_error);
        if (r < 0)
                return r;

        if (c->retry_base_ms > c->retry_max_ms)
                return set_error(ret_error, c->source, 0, "upstream.retry_base_ms",
                                 "must not exceed upstream.retry_max_ms (%u)", c->retry_max_ms);
        if (c->max_buffered_bytes < c->max_frame_bytes)
                return set_error(ret_error, c->source, 0, "limits.max_buffered_bytes",
                                 "must be at least limits.max_frame_bytes (%" PRIu64 ")", c->max_frame_bytes);
        if (c->poll_min_s > c->poll_max_s)
                return set_error(ret_error, c->source, 0, "runners.poll_min_s",
                                 "must not exceed runners.poll_max_s (%u)", c->poll_max_s);
        if (c->multipart_part_bytes > c->multipart_threshold_bytes)
                return set_error(ret_error, c->source, 0, "runners.multipart_part_bytes",
                                 "must not exceed runners.multipart_threshold_bytes");
        if (c->max_connections_per_uid > c->max_connections)
                c->max_connections_per_uid = c->max_connections;
        if (isempty(c->socket_path) || c->socket_path[0] != '/')
                return set_error(ret_error, c->source, 0, "socket", "must be an absolute path");
        if (strlen(c->socket_path) >= 108)
                return set_error(ret_error, c->source, 0, "socket",
                                 "is longer than a Unix socket path may be (107 bytes)");
        if (isempty(c->state_directory) || c->state_directory[0] != '/')
                return set_error(ret_error, c->source, 0, "state_directory", "must be an absolute path");
        return 0;
}

/* Adds an access rule as {"uids": [...], "gids": [...]}. */
static json_object *access_rule_to_json(const AccessRule *a) {
        json_object *o = json_object_new_object(), *u = json_object_new_array(),
                    *g = json_object_new_array();

        for (size_t i = 0; i < a->n_uids; i++)
                json_object_array_add(u, json_object_new_int64(a->uids[i]));
        for (size_t i = 0; i < a->n_gids; i++)
                json_object_array_add(g, json_object_new_int64(a->gids[i]));
        json_object_object_add(o, "uids", u);
        json_object_object_add(o, "gids", g);
        return o;
}

/* The effective configuration as JSON (no secrets: the key file's path only). */
json_object *config_to_json(const Config *c) {
        json_object *o = json_object_new_object(), *sec[ELEMENTSOF(sections)] = {}, *acc;

        if (!o)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(sections); i++) {
                sec[i] = json_object_new_object();
                json_object_object_add(o, sections[i], sec[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const KeyDef *k = &keys[i];
                const char *p = (const char *) c + k->offset;
                json_object *dst = o, *v = NULL;

                for (size_t j = 0; k->section && j < ELEMENTSOF(sections); j++)
                        if (streq(sections[j], k->section))
                                dst = sec[j];
                switch (k->type) {
                case KEY_STRING: {
                        const char *str = *(char *const *) p;

                        if (str && (k->flags & KEY_MASK_URL)) {
                                _cleanup_free_ char *m = proxy_mask(str);

                                v = m ? json_object_new_string(m) : NULL;
                        } else
                                v = str ? json_object_new_string(str) : NULL;
                        break;
                }
                case KEY_BOOL:
                        v = json_object_new_boolean(*(const bool *) p);
                        break;
                case KEY_UINT:
                        v = json_object_new_int64(*(const unsigned *) p);
                        break;
                case KEY_SIZE:
                        v = json_object_new_uint64(*(const uint64_t *) p);
                        break;
                case KEY_MODE: {
                        char m[8];

                        snprintf(m, sizeof(m), "%04o", (unsigned) *(const mode_t *) p);
                        v = json_object_new_string(m);
                        break;
                }
                case KEY_LEVEL:
                        v = json_object_new_string(strna(log_level_to_string(*(const int *) p)));
                        break;
                case KEY_ACCESS:
                        continue;
                }
                json_object_object_add(dst, k->name, v);
        }
        json_object_object_add(sec[1], "api_url", c->api_url ? json_object_new_string(c->api_url) : NULL);
        json_object_object_add(sec[1], "storage_url",
                               c->storage_url ? json_object_new_string(c->storage_url) : NULL);
        acc = json_object_new_object();
        for (Role r = ROLE_READ; r < _ROLE_MAX; r++)
                json_object_object_add(acc, role_to_string(r), access_rule_to_json(&c->access[r]));
        json_object_object_add(o, "access", acc);
        json_object_object_add(o, "source", c->source ? json_object_new_string(c->source) : NULL);
        return o;
}

/* Whether a rule matches a uid or any of the groups. */
static bool rule_matches(const AccessRule *a, uid_t uid, gid_t gid, const gid_t *groups,
                         size_t n_groups) {
        for (size_t i = 0; i < a->n_uids; i++)
                if (a->uids[i] == uid)
                        return true;
        for (size_t i = 0; i < a->n_gids; i++) {
                if (a->gids[i] == gid)
                        return true;
                for (size_t j = 0; j < n_groups; j++)
                        if (a->gids[i] == groups[j])
                                return true;
        }
        return false;
}

/* The role a peer gets. */
Role config_role_for(const Config *c, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups) {
        if (uid == 0)
                return ROLE_ADMIN;
        for (Role r = ROLE_ADMIN; r > ROLE_NONE; r--)
                if (rule_matches(&c->access[r], uid, gid, groups, n_groups))
                        return r;
        return ROLE_NONE;
}
