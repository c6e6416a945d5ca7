/* SPDX-License-Identifier: MIT */
/*
 * avatar-sim: the shared state of the simulator. One Sim per process, created in sim-main.c
 * and passed to every module; there is no other global state than the log level.
 *
 * Glossary:
 *   user     an identity: one per --api-key and one per --user; owns keys, sets, jobs and
 *            one storage bucket named after its UUID.
 *   set      a resource set: the YAML of a PUT /resources, stored verbatim, with the documents
 *            and tables parsed out of it (sim-yaml.c).
 *   job      a run of one parameters document of a set, moved along by the job clock.
 *   fault    a rule of /_sim/fault that changes how matching requests are answered.
 *   held     a request a hold fault parked unanswered until /_sim/release lets it go.
 */
#pragma once

#include <event2/event.h>
#include <event2/http.h>

#include "sim-util.h"

/* Limits: every peer-controlled quantity has one. */
#define SIM_MAX_BODY (128u * 1024 * 1024)   /* any request body (S3 PutObject, UploadPart) */
#define SIM_MAX_API_BODY (1u * 1024 * 1024) /* JSON bodies of the API and of /_sim */
#define SIM_MAX_YAML_BODY (4u * 1024 * 1024) /* PUT/POST /resources */
#define SIM_MAX_HEADERS (64u * 1024)         /* all request headers together */
#define SIM_JSON_DEPTH 32                    /* json_tokener depth for request bodies */
#define SIM_MAX_JOBS 50000
#define SIM_MAX_SETS 20000
#define SIM_MAX_KEYS 10000
#define SIM_MAX_TOKENS 10000
#define SIM_MAX_UPLOADS 1000
#define SIM_MAX_FAULTS 256
#define SIM_MAX_ROUTES 512            /* distinct route names counted in /_sim/stats */
#define SIM_MAX_BULK_DELETE 100
#define SIM_MAX_ACCESS_BATCH 1000
#define SIM_DEFAULT_MAX_CONNECTIONS 1024
#define SIM_UPLOAD_PREFIX_DAYS 30     /* GET /upload_url → s3://<user>/30d */
#define SIM_RESULTS_PREFIX "results"  /* results live under s3://<user>/results/<set>/<job>/ */
#define SIM_DEFAULT_API_KEY "avatar-sim-key"
#define SIM_MAX_KNOWN_CLIENTS 64

/*
 * The server generation simulated (--generation). The current one follows avatar-api.md (API
 * 3.x); the old one is how servers of the 1.0.8 client's time answered: GET /refresh only,
 * PUT /resources answered 201 + Location, no /access/batch, advice parameters nested under
 * "parameters", timestamps with a space separator, and a /check_client that answers "unknown"
 * to any User-Agent that does not lead with avatar-python/<a known version>.
 */
typedef enum SimGeneration {
        SIM_GENERATION_CURRENT,
        SIM_GENERATION_OLD,
} SimGeneration;

/* The client releases an old-generation server knows (--known-client replaces the list). */
#define SIM_DEFAULT_KNOWN_CLIENTS { "1.0.8", "1.20.0", "1.29.0" }

enum {
        SIM_LOG_ERR,
        SIM_LOG_WARNING,
        SIM_LOG_INFO,
        SIM_LOG_DEBUG,
};

extern int sim_log_level;

/* Logs a line to stderr when level is enabled. */
void sim_log(int level, const char *fmt, ...) _printf_(2, 3);

typedef struct Req Req;
typedef struct User User;
typedef struct ApiKey ApiKey;
typedef struct Token Token;
typedef struct ResourceSet ResourceSet;
typedef struct Job Job;
typedef struct JobFailure JobFailure;
typedef struct Upload Upload;
typedef struct Fault Fault;
typedef struct RouteCount RouteCount;
typedef struct Conn Conn;
typedef struct EtagCacheEntry EtagCacheEntry;

/* Command-line settings; strings are owned. */
typedef struct SimConfig {
        char *listen;
        int port;
        char *port_file;
        char **api_keys;
        size_t n_api_keys;
        char **users; /* "USER:PASSWORD" */
        size_t n_users;
        char *compat_status;
        char *compat_message;
        char *compat_recent; /* most_recent_compatible_client, NULL for null */
        unsigned job_step_ms;
        char *storage_dir;
        char *request_log;
        char *wire_log;       /* --wire-log: storage requests as received, for SigV4 checks */
        char *storage_key_id; /* --storage-credentials, NULL when per-user */
        char *storage_secret;
        char *public_url;
        bool legacy_auth;
        unsigned max_connections;
        uint64_t min_part_size;
        SimGeneration generation;
        char **known_clients; /* --known-client, NULL: SIM_DEFAULT_KNOWN_CLIENTS */
        size_t n_known_clients;
} SimConfig;

/* Compatibility answer served by /check_client; strings owned. */
typedef struct Compat {
        char *status;
        char *message;
        char *recent;
} Compat;

typedef struct Sim {
        SimConfig cfg;
        struct event_base *base;
        struct evhttp *http;
        struct event *sig_term;
        struct event *sig_int;
        struct event *job_timer;
        int port;
        char *public_base; /* "http://127.0.0.1:PORT", no trailing slash */
        char *storage_dir; /* resolved storage root */
        bool storage_dir_is_temp;
        int log_fd;
        int wire_fd; /* --wire-log, -1 without */

        Compat compat;

        /* sim-auth.c */
        User *users;
        ApiKey *keys;
        size_t n_keys;
        Token *tokens;
        size_t n_tokens;
        int64_t token_ttl_usec; /* 0: access tokens never expire by themselves */

        /* sim-jobs.c */
        ResourceSet **sets;
        size_t n_sets;
        Job **jobs;
        size_t n_jobs;
        uint64_t job_seq;
        JobFailure *failures;

        /* sim-storage.c */
        Upload *uploads;
        size_t n_uploads;
        EtagCacheEntry **etags; /* hash table of ETAG_BUCKETS chains */
        size_t n_etags;

        /* sim-control.c */
        Fault *faults;
        size_t n_faults;
        unsigned next_fault_id;
        uint64_t n_faults_applied;

        /* sim-http.c */
        Req *delayed; /* requests waiting out an injected latency */
        Req *held;    /* requests held by a hold fault until /_sim/release, oldest first */
        size_t n_held;
        Conn *conns;
        size_t n_conns;
        RouteCount *routes;
        size_t n_routes;
        uint64_t n_requests;
        char *last_user_agent;
        char *last_check_client_user_agent;
} Sim;
