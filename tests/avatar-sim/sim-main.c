/* SPDX-License-Identifier: MIT */
/*
 * avatar-sim: a simulator of the Avatar API server (avatar-api.md) for avatard's tests.
 * One process, one libevent loop, loopback only by default:
 *
 *   /api/...      the API (API keys, legacy login, /check_client, users, jobs, resources,
 *                 results, /access, /upload_url)
 *   /storage/...  an S3-compatible store (path-style, AWS SigV4 required)
 *   /_sim/...     the control API below (no auth, loopback clients only)
 *
 * Control API (JSON bodies; an empty body is {}; unknown fields are a 422):
 *
 *   POST   /_sim/fault          add a fault rule; answers 201 with the rule and its "id".
 *          match:  "path"   segment prefix of the request path ("/api/jobs" matches
 *                           /api/jobs and /api/jobs/x, not /api/jobsx), default: every path
 *                  "route"  exact route name as in the request log ("GET /api/jobs/{name}")
 *                  "method" GET, POST, PUT, DELETE or HEAD
 *          effect: "status" answer this status instead (JSON {"message": ...}; 401 answers
 *                           {"detail":"Not authenticated"}; /storage paths get S3 XML)
 *                  "response"       JSON to answer with, with "status"
 *                  "retry_after_s"  S: a 429 (unless "status" says otherwise) with
 *                                   "Retry-After: S" and {"retry_after": S}
 *                  "retry_after_in" "header", "body" or "both" (default)
 *                  "latency_ms"     delay the request (adds up over matching rules)
 *                  "hold"           true: park the request unanswered, without a timer,
 *                                   until /_sim/release (or the rule's removal) lets it
 *                                   go on normally; the first matching hold rule holds it
 *                  "drop"           close the connection without answering
 *                  "body"           "truncated": valid HTTP, JSON cut in half;
 *                                   "invalid": a non-JSON body with a JSON Content-Type;
 *                                   "short": Content-Length of the full body, half of it
 *                                   sent, then the connection is closed.
 *                                   The request is processed normally first.
 *                  "count"  N: the next N matching requests only; absent: always
 *          Rules apply in the order they were added; latency adds up, and only the first
 *          matching rule that changes the answer (status, drop, body) is used and counted.
 *          A hold rule whose count is spent stays listed until its requests are released.
 *   GET    /_sim/faults         the rules, with their "hits" and the requests they hold now
 *                               ("held")
 *   DELETE /_sim/faults         remove every rule; what they hold goes on ({"released": N})
 *   DELETE /_sim/fault/{id}     remove one rule; what it holds goes on
 *   POST   /_sim/release        {"id": N, "route": "GET /api/jobs"}: the held requests of
 *                                that rule and/or route (all without either) go on;
 *                                answers {"released": N}
 *   POST   /_sim/job-failure    {"parameters_name": "standard" | "job": "<name>",
 *                                "status": "error"|"lost"|"orphaned", "exception": "...",
 *                                "count": N}: the next N jobs created with that
 *                                parameters_name (or that existing job) end in that status
 *                                with that exception text (orphaned: before running; lost:
 *                                half-way; error: at the end)
 *   POST   /_sim/compat         {"status": "compatible"|"incompatible"|"unknown",
 *                                "message": "...", "most_recent_compatible_client": "1.2.3"}
 *   POST   /_sim/cleanup-results {"job": "<name>"}: delete its result files; GET /results
 *                                answers 404 "Results file for job <name> not found"
 *   POST   /_sim/expire-tokens  {"refresh": false}: every legacy access token (and refresh
 *                                token when asked) expires now
 *   POST   /_sim/tokens         {"access_ttl_ms": N}: lifetime of access tokens issued from
 *                                now on (0: no expiry)
 *   POST   /_sim/tick           {"count": N}: advance every job N steps now
 *   POST   /_sim/clock          {"job_step_ms": N}: the job clock (0: only /_sim/tick)
 *   POST   /_sim/reset          {"stats": false}: release held requests, remove faults and
 *                                planned failures, restore
 *                                the command-line compatibility answer and token lifetime;
 *                                "stats": true also zeroes the counters
 *   GET    /_sim/stats          {"requests", "routes": {"GET /api/jobs": N, ...},
 *                                "connections", "faults", "faults_applied", "held", "jobs", "sets",
 *                                "uploads", "job_step_ms", "last_user_agent",
 *                                "last_check_client_user_agent"}
 *   GET    /_sim/jobs           every job of every user, with its "owner"
 *
 * The request log (--request-log) has one JSON line per request received:
 *   {"ts": <unix ms>, "method", "path" (as sent), "query" (as sent, secrets redacted),
 *    "route": "GET /api/jobs/{name}", "status" (0 when dropped), "user_agent",
 *    "auth": "none"|"api-key"|"bearer"|"sigv4"|"password"|"invalid"|"expired",
 *    "bytes_in", "duration_ms", "fault" (only when a rule applied)}
 *
 * The wire log (--wire-log) has one JSON line per storage (/storage) request, written when it
 * is answered (or dropped), holding what a SigV4 verifier needs to recompute the signature:
 *   {"ts": <unix ms>, "method", "target" (the request target exactly as received, path and
 *    query, nothing redacted), "headers": [["Name", "value"], ...] (every header as received,
 *    in order, names in their case), "body_sha256" (lowercase hex of the body as received),
 *    "body_len", "route", "status" (0 when dropped)}
 * It holds signatures and the headers verbatim: it is for tests only.
 *
 * --generation old simulates a server of the 1.0.8 client's time (see SimGeneration in sim.h
 * and README.md): what a tolerant client must cope with besides the current contract.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <fcntl.h>

#include <event2/event.h>

#include "sim-auth.h"
#include "sim-control.h"
#include "sim-http.h"
#include "sim-jobs.h"
#include "sim-storage.h"

#define SIM_VERSION "1.0"

int sim_log_level = SIM_LOG_WARNING;

/* Logs a line to stderr when level is enabled. */
void sim_log(int level, const char *fmt, ...) {
        static const char *const names[] = { "error", "warning", "info", "debug" };
        int saved = errno;
        va_list ap;

        if (level > sim_log_level)
                return;
        fprintf(stderr, "avatar-sim: %s: ", names[level]);
        va_start(ap, fmt);
        errno = saved;
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* Prints the usage text. */
static void usage(FILE *f) {
        fputs("Usage: avatar-sim [OPTIONS]\n"
              "Simulates the Avatar API server: the API under /api, S3 storage under /storage,\n"
              "a control API under /_sim.\n\n"
              "  --listen ADDR                 address to listen on (default 127.0.0.1)\n"
              "  --port N                      port, 0 for any free one (default 0)\n"
              "  --port-file FILE              write the port there once listening\n"
              "  --api-key KEY                 accept this API key (one user per key; repeatable)\n"
              "  --user USER:PASSWORD          a legacy login user (repeatable)\n"
              "  --compat STATUS               /check_client status: compatible, incompatible, unknown\n"
              "  --compat-message TEXT         /check_client message\n"
              "  --compat-recent VERSION       /check_client most_recent_compatible_client\n"
              "  --job-step-ms N               job clock step (default 200; 0: /_sim/tick only)\n"
              "  --storage-dir DIR             object store root (default: a temporary directory)\n"
              "  --request-log FILE            append one JSON line per request\n"
              "  --wire-log FILE               append one JSON line per storage request as received:\n"
              "                                method, target, headers in order, body SHA-256\n"
              "  --storage-credentials ID:SECRET  hand out this storage key pair to everyone\n"
              "  --public-url URL              base of the URLs in results (default http://ADDR:PORT)\n"
              "  --legacy-auth yes|no          serve /login and /refresh (default yes)\n"
              "  --max-connections N           connection cap (default 1024)\n"
              "  --min-part-size BYTES         multipart minimum part size (default 5242880)\n"
              "  --generation current|old      server generation (default current, per avatar-api.md)\n"
              "  --known-client VERSION        an avatar-python release an old server knows\n"
              "                                (repeatable; default 1.0.8, 1.20.0, 1.29.0)\n"
              "  --log-level LEVEL             error, warning, info or debug (default warning)\n"
              "  --help, --version\n"
              "Without --api-key and --user, the key \"" SIM_DEFAULT_API_KEY "\" is accepted.\n",
              f);
}

/* Frees the command-line settings. */
static void config_done(SimConfig *c) {
        free(c->listen);
        free(c->port_file);
        for (size_t i = 0; i < c->n_api_keys; i++)
                erase_and_free(c->api_keys[i]);
        free(c->api_keys);
        for (size_t i = 0; i < c->n_users; i++)
                erase_and_free(c->users[i]);
        free(c->users);
        free(c->compat_status);
        free(c->compat_message);
        free(c->compat_recent);
        free(c->storage_dir);
        free(c->request_log);
        free(c->wire_log);
        free(c->storage_key_id);
        erase_and_free(c->storage_secret);
        free(c->public_url);
        for (size_t i = 0; i < c->n_known_clients; i++)
                free(c->known_clients[i]);
        free(c->known_clients);
}

/* Appends a copy of s to a string array. */
static int strv_push(char ***v, size_t *n, const char *s) {
        char **nv = realloc(*v, (*n + 1) * sizeof(char *));

        if (!nv)
                return -ENOMEM;
        *v = nv;
        nv[*n] = strdup(s);
        if (!nv[*n])
                return -ENOMEM;
        (*n)++;
        return 0;
}

/* Parses an unsigned number within [lo, hi]. */
static int parse_number(const char *s, unsigned long long lo, unsigned long long hi,
                        unsigned long long *ret) {
        char *end;
        unsigned long long v;

        if (!s || !*s || *s == '-')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end || v < lo || v > hi)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Replaces *slot with a copy of s. */
static int set_string(char **slot, const char *s) {
        char *c = strdup(s);

        if (!c)
                return -ENOMEM;
        free(*slot);
        *slot = c;
        return 0;
}

/* Parses the command line. Returns 1 to run, 0 to exit successfully, -errno on errors. */
static int parse_args(int argc, char **argv, SimConfig *c) {
        enum {
                ARG_LISTEN = 0x100,
                ARG_PORT,
                ARG_PORT_FILE,
                ARG_API_KEY,
                ARG_USER,
                ARG_COMPAT,
                ARG_COMPAT_MESSAGE,
                ARG_COMPAT_RECENT,
                ARG_JOB_STEP_MS,
                ARG_STORAGE_DIR,
                ARG_REQUEST_LOG,
                ARG_WIRE_LOG,
                ARG_STORAGE_CREDENTIALS,
                ARG_PUBLIC_URL,
                ARG_LEGACY_AUTH,
                ARG_MAX_CONNECTIONS,
                ARG_MIN_PART_SIZE,
                ARG_LOG_LEVEL,
                ARG_GENERATION,
                ARG_KNOWN_CLIENT,
                ARG_HELP,
                ARG_VERSION,
        };
        static const struct option options[] = {
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "port", required_argument, NULL, ARG_PORT },
                { "port-file", required_argument, NULL, ARG_PORT_FILE },
                { "api-key", required_argument, NULL, ARG_API_KEY },
                { "user", required_argument, NULL, ARG_USER },
                { "compat", required_argument, NULL, ARG_COMPAT },
                { "compat-message", required_argument, NULL, ARG_COMPAT_MESSAGE },
                { "compat-recent", required_argument, NULL, ARG_COMPAT_RECENT },
                { "job-step-ms", required_argument, NULL, ARG_JOB_STEP_MS },
                { "storage-dir", required_argument, NULL, ARG_STORAGE_DIR },
                { "request-log", required_argument, NULL, ARG_REQUEST_LOG },
                { "wire-log", required_argument, NULL, ARG_WIRE_LOG },
                { "storage-credentials", required_argument, NULL, ARG_STORAGE_CREDENTIALS },
                { "public-url", required_argument, NULL, ARG_PUBLIC_URL },
                { "legacy-auth", required_argument, NULL, ARG_LEGACY_AUTH },
                { "max-connections", required_argument, NULL, ARG_MAX_CONNECTIONS },
                { "min-part-size", required_argument, NULL, ARG_MIN_PART_SIZE },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "generation", required_argument, NULL, ARG_GENERATION },
                { "known-client", required_argument, NULL, ARG_KNOWN_CLIENT },
                { "help", no_argument, NULL, ARG_HELP },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        unsigned long long v;
        int opt, r = 0;

        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (opt) {
                case ARG_LISTEN:
                        r = set_string(&c->listen, optarg);
                        break;
                case ARG_PORT:
                        r = parse_number(optarg, 0, 65535, &v);
                        if (r >= 0)
                                c->port = (int) v;
                        break;
                case ARG_PORT_FILE:
                        r = set_string(&c->port_file, optarg);
                        break;
                case ARG_API_KEY:
                        r = isempty(optarg) ? -EINVAL : strv_push(&c->api_keys, &c->n_api_keys, optarg);
                        break;
                case ARG_USER:
                        r = !strchr(optarg, ':') || optarg[0] == ':'
                                    ? -EINVAL
                                    : strv_push(&c->users, &c->n_users, optarg);
                        break;
                case ARG_COMPAT:
                        if (!streq(optarg, "compatible") && !streq(optarg, "incompatible") &&
                            !streq(optarg, "unknown"))
                                r = -EINVAL;
                        else
                                r = set_string(&c->compat_status, optarg);
                        break;
                case ARG_COMPAT_MESSAGE:
                        r = set_string(&c->compat_message, optarg);
                        break;
                case ARG_COMPAT_RECENT:
                        r = set_string(&c->compat_recent, optarg);
                        break;
                case ARG_JOB_STEP_MS:
                        r = parse_number(optarg, 0, 3600000, &v);
                        if (r >= 0)
                                c->job_step_ms = (unsigned) v;
                        break;
                case ARG_STORAGE_DIR:
                        r = set_string(&c->storage_dir, optarg);
                        break;
                case ARG_REQUEST_LOG:
                        r = set_string(&c->request_log, optarg);
                        break;
                case ARG_WIRE_LOG:
                        r = set_string(&c->wire_log, optarg);
                        break;
                case ARG_STORAGE_CREDENTIALS: {
                        const char *colon = strchr(optarg, ':');
                        if (!colon || colon == optarg || !colon[1]) {
                                r = -EINVAL;
                                break;
                        }
                        free(c->storage_key_id);
                        erase_and_free(c->storage_secret);
                        c->storage_key_id = strndup(optarg, (size_t) (colon - optarg));
                        c->storage_secret = strdup(colon + 1);
                        r = c->storage_key_id && c->storage_secret ? 0 : -ENOMEM;
                        break;
                }
                case ARG_PUBLIC_URL:
                        r = startswith(optarg, "http://") || startswith(optarg, "https://")
                                    ? set_string(&c->public_url, optarg)
                                    : -EINVAL;
                        break;
                case ARG_LEGACY_AUTH:
                        if (streq(optarg, "yes"))
                                c->legacy_auth = true;
                        else if (streq(optarg, "no"))
                                c->legacy_auth = false;
                        else
                                r = -EINVAL;
                        break;
                case ARG_GENERATION:
                        if (streq(optarg, "current"))
                                c->generation = SIM_GENERATION_CURRENT;
                        else if (streq(optarg, "old"))
                                c->generation = SIM_GENERATION_OLD;
                        else
                                r = -EINVAL;
                        break;
                case ARG_KNOWN_CLIENT:
                        /* a version is matched as a token of the User-Agent: no spaces, no '/' */
                        if (isempty(optarg) || strpbrk(optarg, " \t/") ||
                            c->n_known_clients >= SIM_MAX_KNOWN_CLIENTS)
                                r = -EINVAL;
                        else
                                r = strv_push(&c->known_clients, &c->n_known_clients, optarg);
                        break;
                case ARG_MAX_CONNECTIONS:
                        r = parse_number(optarg, 1, 1000000, &v);
                        if (r >= 0)
                                c->max_connections = (unsigned) v;
                        break;
                case ARG_MIN_PART_SIZE:
                        r = parse_number(optarg, 0, UINT64_C(5) << 30, &v);
                        if (r >= 0)
                                c->min_part_size = v;
                        break;
                case ARG_LOG_LEVEL:
                        if (streq(optarg, "error"))
                                sim_log_level = SIM_LOG_ERR;
                        else if (streq(optarg, "warning"))
                                sim_log_level = SIM_LOG_WARNING;
                        else if (streq(optarg, "info"))
                                sim_log_level = SIM_LOG_INFO;
                        else if (streq(optarg, "debug"))
                                sim_log_level = SIM_LOG_DEBUG;
                        else
                                r = -EINVAL;
                        break;
                case ARG_HELP:
                        usage(stdout);
                        return 0;
                case ARG_VERSION:
                        puts("avatar-sim " SIM_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return -EINVAL;
                }
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        fprintf(stderr, "avatar-sim: invalid value for --%s: '%s'\n",
                                options[opt - ARG_LISTEN].name, optarg);
                        return r;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "avatar-sim: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        if (!c->listen && set_string(&c->listen, "127.0.0.1") < 0)
                return -ENOMEM;
        return 1;
}

/* Writes the port to the port file atomically. */
static int write_port_file(Sim *sim) {
        char buf[16];

        if (!sim->cfg.port_file)
                return 0;
        snprintf(buf, sizeof(buf), "%d\n", sim->port);
        return write_file_atomic(sim->cfg.port_file, buf, strlen(buf));
}

/* SIGTERM and SIGINT: leave the loop; main() frees everything. */
static void on_signal(evutil_socket_t sig, short what _unused_, void *arg) {
        Sim *sim = arg;

        sim_log(SIM_LOG_INFO, "Received signal %d, exiting", (int) sig);
        event_base_loopexit(sim->base, NULL);
}

/* Raises the soft descriptor limit to the hard one and sizes the connection cap from it. */
static void raise_nofile(Sim *sim) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
                (void) getrlimit(RLIMIT_NOFILE, &rl);
        }
        /* keep room for objects being read or written and the request log */
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 64 &&
            sim->cfg.max_connections > rl.rlim_cur - 64)
                sim->cfg.max_connections = (unsigned) (rl.rlim_cur - 64);
}

/* Sets everything up and runs the loop until a signal. */
static int run(Sim *sim) {
        int r;

        sim->base = event_base_new();
        if (!sim->base)
                return -ENOMEM;
        r = auth_init(sim);
        if (r < 0) {
                sim_log(SIM_LOG_ERR, "Invalid users: %s", strerror(-r));
                return r;
        }
        r = compat_reset(sim);
        if (r < 0)
                return r;
        r = storage_init(sim);
        if (r < 0) {
                sim_log(SIM_LOG_ERR, "Cannot set up the storage directory: %s", strerror(-r));
                return r;
        }
        if (sim->cfg.request_log) {
                sim->log_fd = open(sim->cfg.request_log,
                                   O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
                if (sim->log_fd < 0) {
                        r = -errno;
                        sim_log(SIM_LOG_ERR, "Cannot open the request log %s: %s",
                                sim->cfg.request_log, strerror(-r));
                        return r;
                }
        }
        if (sim->cfg.wire_log) {
                sim->wire_fd = open(sim->cfg.wire_log,
                                    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
                if (sim->wire_fd < 0) {
                        r = -errno;
                        sim_log(SIM_LOG_ERR, "Cannot open the wire log %s: %s",
                                sim->cfg.wire_log, strerror(-r));
                        return r;
                }
        }
        r = http_start(sim);
        if (r < 0) {
                sim_log(SIM_LOG_ERR, "Cannot listen on %s:%d: %s", sim->cfg.listen, sim->cfg.port,
                        strerror(-r));
                return r;
        }
        r = jobs_clock_set(sim, sim->cfg.job_step_ms);
        if (r < 0)
                return r;
        sim->sig_term = evsignal_new(sim->base, SIGTERM, on_signal, sim);
        sim->sig_int = evsignal_new(sim->base, SIGINT, on_signal, sim);
        if (!sim->sig_term || !sim->sig_int || evsignal_add(sim->sig_term, NULL) < 0 ||
            evsignal_add(sim->sig_int, NULL) < 0)
                return -EIO;
        r = write_port_file(sim);
        if (r < 0) {
                sim_log(SIM_LOG_ERR, "Cannot write the port file %s: %s", sim->cfg.port_file,
                        strerror(-r));
                return r;
        }
        sim_log(SIM_LOG_INFO, "Listening on %s (storage in %s)", sim->public_base,
                sim->storage_dir);
        if (!sim->cfg.port_file) {
                printf("avatar-sim listening on %s\n", sim->public_base);
                fflush(stdout);
        }
        if (event_base_dispatch(sim->base) < 0)
                return -EIO;
        return 0;
}

/* Frees everything, in the order the parts depend on each other. */
static void sim_done(Sim *sim) {
        if (sim->cfg.port_file && sim->port > 0)
                (void) unlink(sim->cfg.port_file);
        http_stop(sim);
        jobs_done(sim);
        storage_done(sim);
        faults_clear(sim);
        auth_done(sim);
        free(sim->compat.status);
        free(sim->compat.message);
        free(sim->compat.recent);
        if (sim->sig_term)
                event_free(sim->sig_term);
        if (sim->sig_int)
                event_free(sim->sig_int);
        if (sim->log_fd >= 0)
                close(sim->log_fd);
        if (sim->wire_fd >= 0)
                close(sim->wire_fd);
        if (sim->base)
                event_base_free(sim->base);
        config_done(&sim->cfg);
}

/* Parses the command line, runs the simulator until SIGTERM/SIGINT, frees everything. */
int main(int argc, char **argv) {
        Sim sim = {
                .log_fd = -1,
                .wire_fd = -1,
                .cfg = {
                        .job_step_ms = 200,
                        .legacy_auth = true,
                        .max_connections = SIM_DEFAULT_MAX_CONNECTIONS,
                        .min_part_size = UINT64_C(5) * 1024 * 1024,
                },
        };
        int r;

        r = parse_args(argc, argv, &sim.cfg);
        if (r <= 0) {
                config_done(&sim.cfg);
                return r == 0 ? EXIT_SUCCESS : 2;
        }
        (void) signal(SIGPIPE, SIG_IGN);
        raise_nofile(&sim);
        r = run(&sim);
        sim_done(&sim);
        libevent_global_shutdown();
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
