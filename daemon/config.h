/* SPDX-License-Identifier: MIT */
/*
 * Configuration: defaults → environment (the Avatar client's AVATAR_* variables) → YAML file
 * → command-line overrides, then validation and normalisation, all into a new Config object
 * before it is used. A reload builds a complete new Config the same way and swaps it in only
 * when it is valid, so a bad file never replaces a good one.
 *
 * The YAML file is a mapping of the keys below (see avatard(8) and README.md). Unknown keys,
 * duplicate keys, wrong types and out-of-range values are errors that name the key and the
 * line. Pure parsing: no logging here; errors are returned to the caller who logs them.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

typedef enum Role {
        ROLE_NONE,
        ROLE_READ,    /* status, health, jobs, results */
        ROLE_OPERATE, /* runners, deletions (implies read) */
        ROLE_ADMIN,   /* authenticate, API keys, reload (implies operate) */
        _ROLE_MAX,
        _ROLE_INVALID = -EINVAL,
} Role;

const char *role_to_string(Role r);
Role role_from_string(const char *s);

/* Who gets a role: user names/uids and group names/gids, resolved at load time. */
typedef struct AccessRule {
        uid_t *uids;
        size_t n_uids;
        gid_t *gids;
        size_t n_gids;
} AccessRule;

typedef struct Config {
        char *source;                /* file the config came from, NULL when none */
        bool urls_from_env;          /* the URL keys came from AVATAR_* variables */

        /* daemon */
        char *socket_path;
        mode_t socket_mode;
        char *socket_group;          /* NULL: leave the group alone */
        char *state_directory;
        int log_level;

        /* limits */
        uint64_t max_frame_bytes;
        unsigned max_connections;
        unsigned max_connections_per_uid;
        unsigned max_inflight_per_connection;
        uint64_t max_output_bytes;
        uint64_t max_buffered_bytes;
        unsigned idle_timeout_s;
        unsigned frame_timeout_s;
        unsigned shutdown_timeout_s;

        /* upstream (URLs normalised: api_url and storage_url always set after validation) */
        char *base_url;              /* as configured, trailing "/" and "/api" removed */
        char *base_api_url;          /* as configured */
        char *storage_endpoint_url;  /* as configured */
        char *api_url;               /* effective API root, no trailing "/" */
        char *storage_url;           /* effective storage endpoint, no trailing "/" */
        char *api_key_file;
        char *user_agent;            /* NULL: CONFIG_DEFAULT_USER_AGENT */
        char *ca_file;
        char *storage_region;        /* SigV4 region of the storage endpoint */
        char *proxy;                 /* upstream.proxy: NULL unset, "" no proxy at all */
        char *no_proxy;              /* upstream.no_proxy: NULL unset */
        bool should_verify_ssl;
        bool verify_compatibility;
        bool allow_insecure_http;
        unsigned timeout_s;
        unsigned connect_timeout_s;
        uint64_t max_body_bytes;
        unsigned max_attempts;
        unsigned retry_base_ms;
        unsigned retry_max_ms;
        unsigned rate_limit_retries;
        unsigned max_retry_after_s;
        unsigned upstream_max_connections;
        unsigned breaker_threshold;
        unsigned breaker_cooldown_s;

        /* cache */
        unsigned compatibility_ttl_s;
        unsigned health_ttl_s;
        unsigned jobs_ttl_s;
        unsigned stale_max_s;

        /* runners */
        unsigned poll_min_s;
        unsigned poll_max_s;
        uint64_t multipart_threshold_bytes;
        uint64_t multipart_part_bytes;
        unsigned transfer_concurrency;
        unsigned max_runners_per_uid;

        /* access: index by Role (ROLE_READ .. ROLE_ADMIN) */
        AccessRule access[_ROLE_MAX];

        /* the environment's proxies (proxy.h), read by config_apply_env(): NULL when the
         * variable is not set, "" when it is set empty; the *_var are the variables' names */
        char *env_http_proxy;
        char *env_https_proxy;
        char *env_no_proxy;
        const char *env_http_proxy_var;
        const char *env_https_proxy_var;
        const char *env_no_proxy_var;
} Config;

/* The User-Agent sent when upstream.user_agent is not set: the published client's form first,
 * since the server answers /check_client from it (avatar-api.md §3), then the daemon. */
#define CONFIG_DEFAULT_USER_AGENT "avatar-python/" AVATARD_CLIENT_COMPAT_VERSION " avatard/" AVATARD_VERSION
#define CONFIG_DEFAULT_STORAGE_REGION "us-east-1"
#define CONFIG_USER_AGENT_MAX 256u
#define CONFIG_STORAGE_REGION_MAX 64u

/* Limits of a configuration file, far above what a real one needs (a few hundred values; four
 * levels: access → role → users → name) and checked before libyaml builds the document: a
 * file over CONFIG_FILE_MAX bytes, nested deeper than CONFIG_DEPTH_MAX collections or holding
 * more than CONFIG_NODES_MAX values (scalars, keys included, aliases and collections) is
 * refused with the line where the limit was crossed. */
#define CONFIG_FILE_MAX (1024u * 1024u)
#define CONFIG_DEPTH_MAX 64u
#define CONFIG_NODES_MAX 200000u

/* The User-Agent actually sent (the configured one or the default). */
const char *config_user_agent(const Config *c);

/* A configuration error: "FILE:LINE: KEY: message" when printed. */
typedef struct ConfigError {
        char *file;     /* NULL for environment / command line */
        unsigned line;  /* 1-based, 0 when unknown */
        char *key;      /* dotted key, e.g. "limits.max_frame_bytes", or an env var name */
        char *message;
} ConfigError;

void config_error_done(ConfigError *e);
/* Formats an error as one line; returns a malloc'd string or NULL on OOM. */
char *config_error_to_string(const ConfigError *e);

/* A Config with every default (access: root admin, group "avatar" read+operate). */
int config_new(Config **ret);
Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

/* Reads the AVATAR_* variables (names matched case-insensitively, as the Python client does)
 * from `envp` (NULL-terminated "NAME=value" strings; pass `environ`). Applies URL, timeout,
 * SSL and compatibility settings. AVATAR_API_KEY is not read here (see the credential code).
 * Also reads what systemd passes: $STATE_DIRECTORY (the first of its colon-separated paths)
 * becomes state_directory and $RUNTIME_DIRECTORY/avatard.sock the socket, both below the file
 * and the command line; and the proxy variables as libcurl would read them (proxy.h), which
 * upstream.proxy and upstream.no_proxy override. Returns 0, or -EINVAL with *ret_error filled
 * for a malformed value (the key is the variable's name). */
int config_apply_env(Config *c, char *const *envp, ConfigError *ret_error);

/* The configuration file used when none is given: $CONFIGURATION_DIRECTORY/avatard.yaml (the
 * first of its colon-separated paths), then AVATARD_DEFAULT_CONFIG; the first that exists (a
 * file that exists but cannot be read is still chosen, so that loading it reports why). Returns
 * 0 with a malloc'd *ret_path, or NULL when there is none, and in *ret_tried (may be NULL) the
 * paths tried, comma-separated; -ENOMEM. */
int config_find_file(char *const *envp, char **ret_path, char **ret_tried);

/* The proxy for URLs of `scheme` ("http" or "https"): upstream.proxy when it is set ("": none),
 * else the environment's. NULL or "" means direct. */
const char *config_proxy(const Config *c, const char *scheme);
/* The hosts reached directly: upstream.no_proxy when set, else the environment's. */
const char *config_no_proxy(const Config *c);
/* Where the proxy setting comes from: "config" (upstream.proxy is set, possibly to ""),
 * "environment" (a proxy variable is set and not empty) or "none". */
const char *config_proxy_source(const Config *c);

/* Parses the YAML file at `path` into `c` (overriding what it sets). A missing file is
 * -ENOENT unless `optional` (then 0 with nothing changed). Returns 0 or -errno with
 * *ret_error filled. */
int config_load_file(Config *c, const char *path, bool optional, ConfigError *ret_error);

/* Same from a memory buffer (at most CONFIG_FILE_MAX bytes); `name` is used in errors. */
int config_load_string(Config *c, const char *name, const char *text, size_t len,
                       ConfigError *ret_error);

/* Sets one key from a string as the file would (for command-line overrides such as
 * "socket" or "log_level"). Returns 0 or -EINVAL with *ret_error. */
int config_set(Config *c, const char *key, const char *value, ConfigError *ret_error);

/* Cross-key validation and normalisation (URL rules of avatar-api.md §1, scheme policy,
 * min <= max pairs). Call once after all sources were applied. Returns 0 or -EINVAL with
 * *ret_error. */
int config_finalize(Config *c, ConfigError *ret_error);

/* The effective configuration as JSON for daemon.status (no secrets: a proxy's
 * "user:password@" is masked). New reference. */
struct json_object *config_to_json(const Config *c);

/* The role a peer gets: the highest role whose rule matches its uid or one of its groups;
 * uid 0 is always admin. */
Role config_role_for(const Config *c, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups);
