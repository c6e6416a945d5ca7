/* SPDX-License-Identifier: MIT */
/*
 * storage-cli: a command-line driver of daemon/storage.c, for interoperability tests against
 * third-party S3 servers.
 *
 *   storage-cli put|put-multipart|get ENDPOINT s3://BUCKET/KEY FILE [OPTIONS]
 *
 * FILE "-" is standard input (put: streamed, the size unknown) or standard output (get).
 * put-multipart sets the threshold to 0, so any non-empty object goes up in parts.
 * Credentials come from --id/--secret or STORAGE_ACCESS_KEY_ID/STORAGE_SECRET_ACCESS_KEY.
 * On success one line goes to stderr: the bytes, the ETag and the client's counters (JSON).
 * Exit status: 0 done, 1 the operation failed, 2 usage.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "storage.h"
#include "upstream.h"

#define MIB (UINT64_C(1) << 20)

/* What the run needs after the loop. */
typedef struct Run {
        struct event_base *base;
        Storage *storage;
        int error;
        bool done;
} Run;

/* Prints the usage text. */
static void usage(FILE *f) {
        fputs("Usage: storage-cli put|put-multipart|get ENDPOINT s3://BUCKET/KEY FILE [OPTIONS]\n"
              "  --id ID             access key id (or STORAGE_ACCESS_KEY_ID)\n"
              "  --secret SECRET     secret key (or STORAGE_SECRET_ACCESS_KEY)\n"
              "  --region REGION     SigV4 region (default us-east-1)\n"
              "  --part-size BYTES   multipart part size (default 5 MiB)\n"
              "  --threshold BYTES   multipart above this size (default 16 MiB)\n"
              "  --timeout-ms N      per HTTP request (default: Upstream's)\n"
              "  --debug             log at debug level\n"
              "FILE \"-\" is stdin (put) or stdout (get).\n",
              f);
}

/* Parses a byte count. */
static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (isempty(s) || *s == '-')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* The operation ended: report it and stop the loop. */
static void on_done(const StorageResult *res, void *userdata) {
        Run *run = userdata;
        json_object *stats;

        run->done = true;
        run->error = res->error;
        if (res->error < 0) {
                fprintf(stderr, "storage-cli: %s", res->message);
                if (res->status > 0)
                        fprintf(stderr, " (HTTP %ld%s%s)", res->status, res->s3_code ? ", " : "",
                                res->s3_code ?: "");
                fputc('\n', stderr);
        } else {
                stats = storage_stats_json(run->storage);
                fprintf(stderr, "storage-cli: %" PRIu64 " bytes, ETag %s, %s\n", res->bytes,
                        strna(res->etag),
                        stats ? json_object_to_json_string_ext(stats, JSON_C_TO_STRING_PLAIN)
                              : "{}");
                json_object_put(stats);
        }
        event_base_loopbreak(run->base);
}

/* Parses the command line, runs one operation on a fresh loop. */
int main(int argc, char **argv) {
        enum { ARG_ID = 0x100, ARG_SECRET, ARG_REGION, ARG_PART, ARG_THRESHOLD, ARG_TIMEOUT,
               ARG_DEBUG, ARG_HELP };
        static const struct option options[] = {
                { "id", required_argument, NULL, ARG_ID },
                { "secret", required_argument, NULL, ARG_SECRET },
                { "region", required_argument, NULL, ARG_REGION },
                { "part-size", required_argument, NULL, ARG_PART },
                { "threshold", required_argument, NULL, ARG_THRESHOLD },
                { "timeout-ms", required_argument, NULL, ARG_TIMEOUT },
                { "debug", no_argument, NULL, ARG_DEBUG },
                { "help", no_argument, NULL, ARG_HELP },
                {}
        };
        const char *id = getenv("STORAGE_ACCESS_KEY_ID"), *secret = getenv("STORAGE_SECRET_ACCESS_KEY");
        const char *verb, *endpoint, *url, *file;
        StorageOptions so = { .part_size = 5 * MIB, .multipart_threshold = 16 * MIB };
        UpstreamOptions uo = { .verify_ssl = true };
        StorageCredentials cred;
        Upstream *up = NULL;
        Run run = {};
        bool get;
        int c, fd = -1, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_ID:
                        id = optarg;
                        break;
                case ARG_SECRET:
                        secret = optarg;
                        break;
                case ARG_REGION:
                        so.region = optarg;
                        break;
                case ARG_PART:
                        if (parse_u64(optarg, &so.part_size) < 0) {
                                fprintf(stderr, "storage-cli: bad --part-size '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case ARG_THRESHOLD:
                        if (parse_u64(optarg, &so.multipart_threshold) < 0) {
                                fprintf(stderr, "storage-cli: bad --threshold '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case ARG_TIMEOUT:
                        if (parse_u64(optarg, &so.timeout_ms) < 0) {
                                fprintf(stderr, "storage-cli: bad --timeout-ms '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case ARG_DEBUG:
                        log_set_max_level(LOG_DEBUG);
                        break;
                case ARG_HELP:
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        if (argc - optind != 4 || isempty(id) || isempty(secret)) {
                usage(stderr);
                return 2;
        }
        verb = argv[optind];
        endpoint = argv[optind + 1];
        url = argv[optind + 2];
        file = argv[optind + 3];
        get = streq(verb, "get");
        if (streq(verb, "put-multipart"))
                so.multipart_threshold = 0;
        else if (!get && !streq(verb, "put")) {
                usage(stderr);
                return 2;
        }
        so.endpoint_url = endpoint;
        cred = (StorageCredentials) { id, secret };

        /* a reader that went away is an error of the operation, not a signal */
        signal(SIGPIPE, SIG_IGN);

        if (streq(file, "-"))
                fd = get ? STDOUT_FILENO : STDIN_FILENO;
        else
                fd = get ? open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                         : open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "storage-cli: cannot open %s: %m\n", file);
                return 1;
        }

        run.base = event_base_new();
        if (!run.base) {
                fprintf(stderr, "storage-cli: out of memory\n");
                r = -ENOMEM;
                goto out;
        }
        r = upstream_new(run.base, &uo, &up);
        if (r < 0) {
                fprintf(stderr, "storage-cli: %s\n", strerror(-r));
                goto out;
        }
        r = storage_new(run.base, up, &so, &run.storage);
        if (r < 0) {
                fprintf(stderr, "storage-cli: bad options: %s\n", strerror(-r));
                goto out;
        }
        if (get)
                r = storage_get_fd(run.storage, url, &cred, fd, NULL, on_done, &run, NULL);
        else {
                struct stat st;
                int64_t size = -1;

                if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
                        size = (int64_t) st.st_size;
                r = storage_put_fd(run.storage, url, &cred, fd, size, NULL, on_done, &run, NULL);
        }
        if (r < 0) {
                fprintf(stderr, "storage-cli: %s\n", strerror(-r));
                goto out;
        }
        event_base_dispatch(run.base);
        r = run.done ? run.error : -EIO;
out:
        run.storage = storage_free(run.storage);
        up = upstream_free(up);
        if (run.base)
                event_base_free(run.base);
        if (fd > STDERR_FILENO)
                close(fd);
        return r < 0 ? 1 : 0;
}
