/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the state files a restarted daemon reads back (daemon/state.c,
 * daemon/runner.c): the input is one to four runner files, written to a runner directory and
 * loaded with runners_new() — state_load_dir() reads each (bounded), parses it
 * (json_parse_strict), and runner_from_file_json() restores the runner or the file is moved
 * aside as damaged; the runners with unfinished jobs are handed to the poller (never run
 * here, so nothing goes upstream).
 *
 * Checked: every file is either loaded or moved aside (and named in the damaged list); each
 * runner's status (runner.get_status, with its documents) travels on the wire; and a runner
 * saved and loaded again is the same runner (its status equal but for updated_at), so what
 * the daemon writes it can always read back.
 *
 * Input: the files, separated by lines "%%%".
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "cache.h"
#include "config.h"
#include "jsonrpc.h"
#include "log.h"
#include "poller.h"
#include "runner.h"
#include "upstream.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FILES_MAX 4
#define SEPARATOR "\n%%%\n"
/* A status nests the documents: their depth plus a few levels. */
#define STATUS_DEPTH 96

static struct event_base *base;
static Config *config;
static Upstream *upstream;
static Api *api;
static Cache *cache;
static Poller *poller;
static char top[PATH_MAX];      /* the state directory */
static char dir[PATH_MAX + 16]; /* its runners/ */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path) < 0 ? -1 : 0;
}

static void remove_top(void) {
        if (top[0])
                (void) nftw(top, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The services a Runners registry needs; nothing here ever runs the loop. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        ConfigError err = {};
        int r;

        (void) argc;
        (void) argv;
        /* damaged files are logged at error level: keep the fuzzer's output readable */
        log_set_max_level(LOG_EMERG);
        snprintf(top, sizeof(top), "%s/avatard-fuzz-state-XXXXXX", tmp);
        assert(mkdtemp(top));
        atexit(remove_top);
        snprintf(dir, sizeof(dir), "%s/runners", top);
        assert(mkdir(dir, 0700) == 0);

        base = event_base_new();
        assert(base);
        r = config_new(&config);
        assert(r == 0);
        r = config_finalize(config, &err);
        assert(r == 0);
        r = upstream_new(base, NULL, &upstream);
        assert(r == 0);
        r = api_new(base, upstream, config, &api);
        assert(r == 0);
        r = cache_new(api, &cache);
        assert(r == 0);
        r = poller_new(base, api, cache, config, &poller);
        assert(r == 0);
        return 0;
}

/* Removes every file of the runner directory; returns how many there were. */
static size_t clean_dir(void) {
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;

        if (!d)
                return 0;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
                    unlinkat(dirfd(d), de->d_name, 0) == 0)
                        n++;
        closedir(d);
        return n;
}

static void write_file(const char *name, const char *p, size_t n) {
        char path[PATH_MAX + 64];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert(fd >= 0);
        assert(write(fd, p, n) == (ssize_t) n);
        close(fd);
}

/* A value that goes on the wire: serialize, parse back, compare. */
static void check_wire(json_object *o) {
        json_object *back = NULL;
        char *text = NULL;
        size_t len = 0;
        int r;

        r = jsonrpc_serialize(o, &text, &len);
        assert(r == 0);
        assert(!memchr(text, '\n', len - 1));
        r = json_parse_strict(text, len - 1, STATUS_DEPTH, &back);
        assert(r == 0);
        assert(json_object_equal(o, back));
        json_object_put(back);
        free(text);
}

/* A runner's status without the time of its last save. */
static json_object *status_of(Runner *r) {
        json_object *o = runner_status_json(r, true);

        assert(o);
        json_object_object_del(o, "updated_at");
        return o;
}

/* Whether the daemon can name the runner's file after its id: the ids it makes are UUIDs.
 * A file with another id is loaded all the same (see tests/fuzz/README.md); saving it would
 * write wherever the id points, so it is not saved here. */
static bool id_is_file_name(const char *id) {
        for (const char *p = id; *p; p++)
                if (!strchr("0123456789abcdefABCDEF-", *p))
                        return false;
        return true;
}

/* One input: the runner files. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *p = (const char *) data, *end = p + size;
        json_object *statuses[FILES_MAX * 2] = {};
        size_t n_files = 0, n_status = 0;
        bool round_trip = true;
        Runners *rs = NULL;
        Runner *r;
        int q;

        (void) clean_dir();
        for (; n_files < FILES_MAX; n_files++) {
                const char *sep = memmem(p, (size_t) (end - p), SEPARATOR, strlen(SEPARATOR));
                char name[16];

                snprintf(name, sizeof(name), "%zu.json", n_files);
                write_file(name, p, sep ? (size_t) (sep - p) : (size_t) (end - p));
                if (!sep) {
                        n_files++;
                        break;
                }
                p = sep + strlen(SEPARATOR);
        }

        q = runners_new(poller, top, &rs);
        assert(q == 0);
        /* every file was loaded, or moved aside and named */
        assert(rs->n + json_object_array_length(rs->damaged) == n_files);
        assert(rs->n <= n_files);
        check_wire(rs->damaged);

        TAILQ_FOREACH(r, &rs->list, link) {
                json_object *st = runner_status_json(r, true), *stats;
                const RunnerJob *failed = NULL;

                assert(st);
                check_wire(st);
                json_object_put(st);
                st = runner_status_json(r, false);
                check_wire(st);
                json_object_put(st);
                for (size_t i = 0; i < r->n_jobs; i++) {
                        json_object *j = runner_job_json(&r->jobs[i]);

                        check_wire(j);
                        json_object_put(j);
                        assert(runner_job(r, r->jobs[i].parameters_name));
                }
                (void) runner_jobs_done(r, NULL, &failed);
                assert(runner_find(rs, r->id) == r);
                stats = runners_stats_json(rs);
                check_wire(stats);
                json_object_put(stats);
                if (!id_is_file_name(r->id))
                        round_trip = false;
        }

        if (round_trip && rs->n > 0) {
                (void) clean_dir();
                TAILQ_FOREACH(r, &rs->list, link) {
                        assert(n_status < FILES_MAX * 2);
                        statuses[n_status++] = status_of(r);
                        q = runner_save(r);
                        assert(q == 0);
                }
                runners_free(rs);
                rs = NULL;

                q = runners_new(poller, top, &rs);
                assert(q == 0);
                assert(json_object_array_length(rs->damaged) == 0);
                assert(rs->n == n_status);
                for (size_t i = 0; i < n_status; i++) {
                        const char *id = json_object_get_string(json_object_object_get(statuses[i], "runner_id"));
                        json_object *again;

                        r = runner_find(rs, id);
                        assert(r);
                        again = status_of(r);
                        assert(json_object_equal(statuses[i], again));
                        json_object_put(again);
                        json_object_put(statuses[i]);
                }
        }
        runners_free(rs);
        return 0;
}
