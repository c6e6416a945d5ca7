/* SPDX-License-Identifier: MIT */
/* avatard: argument parsing and the main loop. */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "build-config.h"
#include "config.h"
#include "log.h"
#include "server.h"

/* Exit statuses (avatard(8), EXIT STATUS): 78 is sysexits.h's EX_CONFIG, which systemd shows
 * as "status=78/CONFIG" and a unit can keep from restarting (RestartPreventExitStatus=78). */
#define EXIT_USAGE 2
#define EXIT_CONFIG 78

/* Command-line settings (the only mutable globals besides the log settings). */
static const char *arg_config = NULL;
static bool arg_check_config = false;
static char *arg_overrides[2 * 8 + 1];
static size_t arg_n_overrides = 0;

/* Prints usage, with the defaults in effect here: after $CONFIGURATION_DIRECTORY,
 * $RUNTIME_DIRECTORY and $STATE_DIRECTORY. */
static void help(void) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *found = NULL, *tried = NULL, *conf = NULL;
        ConfigError e = {};

        if (config_new(&c) < 0 || config_apply_env(c, environ, &e) < 0) {
                /* a bad variable is reported at start; the help shows the compiled defaults */
                config_error_done(&e);
                c = config_free(c);
        }
        if (config_find_file(environ, &found, &tried) >= 0 &&
            asprintf(&conf, "%s%s", found ?: tried ?: AVATARD_DEFAULT_CONFIG,
                     found ? "" : ": none present") < 0)
                conf = NULL;

        printf("Usage: avatard [OPTIONS]\n\n"
               "Holds the Avatar API key and serves Avatar operations to local tools over a\n"
               "JSON-RPC 2.0 Unix socket.\n\n"
               "Options:\n"
               "  -c, --config PATH          configuration file (default %s)\n"
               "  -s, --socket PATH          socket to listen on (default %s)\n"
               "      --state-directory DIR  where runners are kept (default %s)\n"
               "  -l, --log-level LEVEL      err, warning, notice, info or debug\n"
               "      --set KEY=VALUE        override one configuration key (e.g. limits.idle_timeout_s=60)\n"
               "      --check-config         validate the configuration and exit\n"
               "  -h, --help                 show this help\n"
               "      --version              show the version\n\n"
               "Exit status: 0 success, 1 failure, 2 usage error, 78 invalid configuration.\n"
               "See avatard(8).\n",
               conf ?: AVATARD_DEFAULT_CONFIG, c ? c->socket_path : AVATARD_DEFAULT_SOCKET,
               c ? c->state_directory : AVATARD_DEFAULT_STATE_DIR);
}

/* Records a KEY=VALUE override for the configuration. */
static int add_override(const char *key, const char *value) {
        if (arg_n_overrides + 2 >= ELEMENTSOF(arg_overrides)) {
                fprintf(stderr, "avatard: too many overrides\n");
                return -E2BIG;
        }
        arg_overrides[arg_n_overrides++] = (char *) key;
        arg_overrides[arg_n_overrides++] = (char *) value;
        return 0;
}

/* Parses argv. Returns 1 to continue, 0 to exit successfully, <0 on error. */
static int parse_argv(int argc, char *argv[]) {
        enum { ARG_CHECK_CONFIG = 0x100, ARG_VERSION, ARG_STATE_DIR, ARG_SET };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "socket", required_argument, NULL, 's' },
                { "state-directory", required_argument, NULL, ARG_STATE_DIR },
                { "log-level", required_argument, NULL, 'l' },
                { "set", required_argument, NULL, ARG_SET },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "c:s:l:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case 's':
                        r = add_override("socket", optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_STATE_DIR:
                        r = add_override("state_directory", optarg);
                        if (r < 0)
                                return r;
                        break;
                case 'l':
                        r = log_level_from_string(optarg);
                        if (r < 0) {
                                fprintf(stderr, "avatard: invalid log level '%s'\n", optarg);
                                return -EINVAL;
                        }
                        log_set_max_level(r);
                        r = add_override("log_level", optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_SET: {
                        char *eq = strchr(optarg, '=');

                        if (!eq || eq == optarg) {
                                fprintf(stderr, "avatard: --set expects KEY=VALUE, got '%s'\n", optarg);
                                return -EINVAL;
                        }
                        *eq = '\0';
                        r = add_override(optarg, eq + 1);
                        if (r < 0)
                                return r;
                        break;
                }
                case ARG_CHECK_CONFIG:
                        arg_check_config = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("avatard %s\n", AVATARD_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "avatard: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(server_freep) Server *s = NULL;
        _cleanup_free_ char *err = NULL;
        struct event_base *base;
        ServerOptions opts;
        int r;

        log_open(LOG_TARGET_AUTO);
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        /* the process holds a credential: no core dumps, no ptrace by other users */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

        opts = (ServerOptions){
                .config_path = arg_config,
                .config_optional = !arg_config,
                .overrides = arg_overrides,
                .envp = environ,
        };

        base = event_base_new();
        if (!base) {
                log_error("Failed to create the event loop.");
                return EXIT_FAILURE;
        }
        r = server_new(base, &opts, &s, &err);
        if (r < 0) {
                /* server_new() keeps -EINVAL for the configuration (and the key it names) */
                if (arg_check_config)
                        fprintf(stderr, "%s\n", err ?: strerror(-r));
                else if (r == -EINVAL)
                        log_error("Invalid configuration: %s", err ?: strerror(-r));
                else
                        log_error("Cannot start: %s", err ?: strerror(-r));
                event_base_free(base);
                return r == -EINVAL ? EXIT_CONFIG : EXIT_FAILURE;
        }
        if (arg_check_config) {
                printf("Configuration OK%s%s.\n", s->core.config->source ? ": " : " (defaults)",
                       s->core.config->source ?: "");
                s = server_free(s);
                event_base_free(base);
                return EXIT_SUCCESS;
        }

        r = server_start(s);
        if (r < 0) {
                s = server_free(s);
                event_base_free(base);
                return EXIT_FAILURE;
        }
        r = event_base_dispatch(base);
        if (r < 0)
                log_error("The event loop failed.");
        log_info("Stopped.");
        s = server_free(s);
        event_base_free(base);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
