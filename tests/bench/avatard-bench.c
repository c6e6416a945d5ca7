/* SPDX-License-Identifier: MIT */
/*
 * avatard-bench: the load generator behind scripts/bench.
 *
 *   avatard-bench call     --socket S --method M [--params JSON] --conns N [--calls N] [--seconds S]
 *   avatard-bench coalesce --socket S --conns N [--method M] [--params JSON]
 *   avatard-bench idle     --socket S --conns N[,N...] --pid PID
 *   avatard-bench wait     --socket S --clients N --runner ID --seconds S
 *   avatard-bench nodaemon --url URL [--key K] [--calls N] [--seconds S]
 *   avatard-bench upload   --socket S --file F [--size 1G] --pid PID
 *   avatard-bench flood    --socket S --conns N [--size 1000000] --pid PID
 *
 * Common options: --pid PID (the daemon: VmRSS and VmHWM from /proc before and after),
 * --sim-log F (avatar-sim's request log: the upstream requests the scenario caused, by route),
 * --route R (one route to report as upstream_route=N), --label L (echoed in the result line).
 *
 * call: N non-blocking Unix socket connections in one epoll loop, each with one request in
 * flight (closed loop: the next request goes as soon as the reply arrives). The request line
 * is serialized once. Latency is measured per call from the first byte sent to the end of the
 * reply line (CLOCK_MONOTONIC); percentiles come from a sorted sample array (every call up to
 * SAMPLES_MAX, a uniform reservoir beyond). --calls bounds the total number of calls (spread
 * over the connections), --seconds the duration; a short warm-up (--warmup, default 0.2 s)
 * runs first and is not counted. Replies are not parsed: a line that starts as a JSON-RPC
 * error counts as an error, a notification (a "method" member first) is skipped.
 * coalesce: every connection sends one call at the same moment (default
 * manager.get_last_jobs); meant for a cold cache, with --sim-log to count upstream requests.
 * idle: opens connections up to each level, makes one daemon.ping on each (so the daemon has
 * accepted and served them), lets them sit, and reports the daemon's VmRSS per level; then
 * closes them all and reports what the daemon kept ("idle-closed").
 * wait: N clients call runner.wait on one runner with timeout_s S at once; reports the
 * upstream requests during the wait and their rate per minute.
 * nodaemon: what a script does without avatard: one HTTP GET per call with a fresh libcurl
 * handle and a new connection each time (as one CLI invocation per call would).
 * upload: creates the file (CSV rows, exactly --size bytes) unless it already has that size,
 * creates a runner and calls runner.add_table with the file passed as a descriptor, sampling
 * the daemon's VmRSS every --interval-ms meanwhile.
 * flood: N connections each send --size bytes of a request line they never finish, all at
 * once, as fast as the daemon reads (past limits.max_buffered_bytes it refuses them: overloaded
 * and closed); reports the daemon's VmRSS before, at its peak (sampled every --interval-ms,
 * and VmHWM), while the connections are held, and after they all closed and the daemon trimmed
 * its heap (daemon.status heap_trims_total moved on), with how many were held and refused.
 *
 * Output: one line per result on stdout, "bench scenario=NAME key=value ...", values without
 * spaces (routes in routes= have "+" for the space); diagnostics go to stderr. Exit status 0
 * unless the scenario could not run at all (errors in replies are reported, not fatal).
 */

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#define SAMPLES_MAX (4u * 1024u * 1024u)  /* latencies kept exactly; a reservoir beyond */
#define LINE_MAX_BYTES (64u * 1024u * 1024u)
#define READ_CHUNK (64u * 1024u)
#define EPOLL_BATCH 512
#define NOTIFICATION_PREFIX "{\"jsonrpc\":\"2.0\",\"method\""
#define ERROR_PREFIX "{\"jsonrpc\":\"2.0\",\"error\""

typedef struct Options {
        const char *socket;
        const char *method;
        const char *params;
        const char *sim_log;
        const char *route;
        const char *runner;
        const char *url;
        const char *key;
        const char *file;
        const char *label;
        const char *levels;   /* idle: "1000,4000" */
        unsigned conns;
        uint64_t calls;
        double seconds;
        double warmup_s;
        double settle_s;
        uint64_t size;
        pid_t pid;
        unsigned interval_ms;
} Options;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
        va_list ap;
        fputs("avatard-bench: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(2);
}

static void *xmalloc(size_t n) {
        void *p = malloc(n ? n : 1);
        if (!p)
                die("out of memory");
        return p;
}

static void *xrealloc(void *p, size_t n) {
        p = realloc(p, n ? n : 1);
        if (!p)
                die("out of memory");
        return p;
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void sleep_s(double s) {
        struct timespec ts = { (time_t) s, (long) ((s - (double) (time_t) s) * 1e9) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Soft RLIMIT_NOFILE up to the hard limit: thousands of sockets. */
static void raise_nofile(unsigned want) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur != RLIM_INFINITY && want + 16 > rl.rlim_cur)
                die("RLIMIT_NOFILE is %llu, %u connections need more", (unsigned long long) rl.rlim_cur, want);
}

/* "1G", "512M", "64K", "1000": binary multiples. */
static uint64_t parse_size(const char *s) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s)
                die("bad size: %s", s);
        uint64_t m = 1;
        switch (*end) {
        case 'K': case 'k': m = 1024; end++; break;
        case 'M': case 'm': m = 1024 * 1024; end++; break;
        case 'G': case 'g': m = 1024 * 1024 * 1024; end++; break;
        default: break;
        }
        if (*end == 'i')
                end++;
        if (*end == 'B')
                end++;
        if (*end)
                die("bad size: %s", s);
        return (uint64_t) v * m;
}

/* --- /proc ------------------------------------------------------------------------------ */

/* A "Field:   N kB" line of /proc/PID/<file>, in KiB; -1 when unavailable. */
static long proc_kib(pid_t pid, const char *file, const char *field) {
        char path[64], line[256];
        size_t len = strlen(field);
        long v = -1;
        if (pid <= 0)
                return -1;
        snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, field, len) == 0 && line[len] == ':') {
                        v = strtol(line + len + 1, NULL, 10);
                        break;
                }
        }
        fclose(f);
        return v;
}

/* VmRSS, VmHWM, RssAnon, ... of /proc/PID/status. */
static long proc_status_kib(pid_t pid, const char *field) {
        return proc_kib(pid, "status", field);
}

/* The idle figures: resident (shared library pages included), anonymous (the daemon's own
 * memory) and proportional (shared pages divided among the processes that map them). */
static void print_memory(pid_t pid) {
        printf(" rss_kib=%ld anon_kib=%ld pss_kib=%ld hwm_kib=%ld", proc_status_kib(pid, "VmRSS"),
               proc_status_kib(pid, "RssAnon"), proc_kib(pid, "smaps_rollup", "Pss"), proc_status_kib(pid, "VmHWM"));
}

/* --- latency samples --------------------------------------------------------------------- */

typedef struct Samples {
        uint64_t *v;
        size_t n, cap;
        uint64_t seen, max, rng;
} Samples;

static void samples_init(Samples *s) {
        *s = (Samples) { .cap = SAMPLES_MAX, .rng = 0x9e3779b97f4a7c15u };
        s->v = xmalloc(sizeof(uint64_t) * 4096);
}

static void samples_add(Samples *s, uint64_t x) {
        s->seen++;
        if (x > s->max)
                s->max = x;
        if (s->n < s->cap) {
                if ((s->n & (s->n - 1)) == 0 && s->n >= 4096)
                        s->v = xrealloc(s->v, sizeof(uint64_t) * (s->n * 2 < s->cap ? s->n * 2 : s->cap));
                s->v[s->n++] = x;
                return;
        }
        /* reservoir (algorithm R): each of the `seen` samples is kept with probability cap/seen */
        s->rng ^= s->rng << 13;
        s->rng ^= s->rng >> 7;
        s->rng ^= s->rng << 17;
        uint64_t j = s->rng % s->seen;
        if (j < s->cap)
                s->v[j] = x;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in ns. */
static uint64_t samples_pct(const Samples *s, double p) {
        if (s->n == 0)
                return 0;
        size_t rank = (size_t) (p / 100.0 * (double) s->n + 0.999999);
        if (rank < 1)
                rank = 1;
        if (rank > s->n)
                rank = s->n;
        return s->v[rank - 1];
}

static void print_latency(Samples *s) {
        qsort(s->v, s->n, sizeof(uint64_t), cmp_u64);
        printf(" p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f", samples_pct(s, 50) / 1e3,
               samples_pct(s, 90) / 1e3, samples_pct(s, 99) / 1e3, s->max / 1e3);
}

/* --- avatar-sim's request log ------------------------------------------------------------ */

static off_t file_size(const char *path) {
        struct stat st;
        if (!path || stat(path, &st) < 0)
                return 0;
        return st.st_size;
}

typedef struct RouteCount {
        char *route;
        uint64_t n;
} RouteCount;

/* Counts the log lines written after offset `from`, by "route". Prints upstream_total=,
 * upstream_route= (for `route`) and routes=. */
static void print_upstream(const char *path, off_t from, const char *route) {
        if (!path)
                return;
        /* the simulator writes its line as it sends the answer: let the last ones land */
        sleep_s(0.05);
        RouteCount *rc = NULL;
        size_t n_rc = 0;
        uint64_t total = 0, wanted = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "avatard-bench: %s: %s\n", path, strerror(errno));
                printf(" upstream_total=-1");
                return;
        }
        off_t end = lseek(fd, 0, SEEK_END);
        size_t len = end > from ? (size_t) (end - from) : 0;
        char *buf = xmalloc(len + 1);
        size_t got = 0;
        while (got < len) {
                ssize_t k = pread(fd, buf + got, len - got, from + (off_t) got);
                if (k <= 0)
                        break;
                got += (size_t) k;
        }
        close(fd);
        buf[got] = 0;
        for (char *line = buf; line < buf + got;) {
                char *nl = memchr(line, '\n', (size_t) (buf + got - line));
                if (!nl)
                        break; /* a partial last line is not counted */
                *nl = 0;
                char *r = strstr(line, "\"route\":\"");
                if (r) {
                        r += strlen("\"route\":\"");
                        char *q = strchr(r, '"');
                        if (q) {
                                *q = 0;
                                size_t i;
                                for (i = 0; i < n_rc; i++)
                                        if (strcmp(rc[i].route, r) == 0)
                                                break;
                                if (i == n_rc) {
                                        rc = xrealloc(rc, sizeof(*rc) * (n_rc + 1));
                                        rc[n_rc++] = (RouteCount) { strdup(r), 0 };
                                }
                                rc[i].n++;
                                total++;
                                if (route && strcmp(r, route) == 0)
                                        wanted++;
                        }
                }
                line = nl + 1;
        }
        printf(" upstream_total=%" PRIu64, total);
        if (route)
                printf(" upstream_route=%" PRIu64, wanted);
        printf(" routes=");
        for (size_t i = 0; i < n_rc; i++) {
                printf("%s", i ? "," : "");
                for (const char *p = rc[i].route; *p; p++)
                        putchar(*p == ' ' ? '+' : *p);
                printf(":%" PRIu64, rc[i].n);
                free(rc[i].route);
        }
        if (n_rc == 0)
                printf("-");
        free(rc);
        free(buf);
}

/* --- connections and the closed loop ------------------------------------------------------ */

static int unix_connect(const char *path, bool nonblock) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                die("socket path too long: %s", path);
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket: %s", strerror(errno));
        /* a blocking connect waits while the daemon's backlog is full instead of failing */
        while (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (errno == EINTR)
                        continue;
                die("connect %s: %s", path, strerror(errno));
        }
        if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                die("fcntl: %s", strerror(errno));
        return fd;
}

typedef struct Conn {
        int fd;
        char *buf;
        size_t len, cap;
        size_t sent;        /* bytes of the current request written */
        uint64_t t_sent;
        bool in_flight, want_out, dead;
} Conn;

typedef struct Run {
        int ep;
        Conn *conns;
        unsigned n;
        const char *req;
        size_t req_len;
        uint64_t limit;          /* calls to issue in total; 0: no limit */
        uint64_t deadline;       /* stop issuing at this instant (ns); 0: none */
        uint64_t give_up;        /* abandon calls still in flight at this instant; 0: never */
        const char *count_match; /* replies holding this substring are counted in `matched` */
        uint64_t issued, done, errors, notifications, matched, closed;
        unsigned active;         /* connections with a call in flight */
        uint64_t t_start, t_end;
        Samples *samples;
        char *first_error;
} Run;

static void conns_open(Run *r, const char *path, unsigned from, unsigned to) {
        for (unsigned i = from; i < to; i++) {
                Conn *c = &r->conns[i];
                *c = (Conn) { .fd = unix_connect(path, true) };
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
                if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                        die("epoll_ctl: %s", strerror(errno));
        }
}

static void conns_close(Run *r, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                if (r->conns[i].fd >= 0)
                        close(r->conns[i].fd);
                free(r->conns[i].buf);
                r->conns[i] = (Conn) { .fd = -1 };
        }
}

static void run_init(Run *r, unsigned n) {
        *r = (Run) { .n = n };
        r->ep = epoll_create1(EPOLL_CLOEXEC);
        if (r->ep < 0)
                die("epoll_create1: %s", strerror(errno));
        r->conns = xmalloc(sizeof(Conn) * (n ? n : 1));
        for (unsigned i = 0; i < n; i++)
                r->conns[i] = (Conn) { .fd = -1 };
}

static void run_done(Run *r) {
        conns_close(r, r->n);
        free(r->conns);
        free(r->first_error);
        close(r->ep);
}

/* Resets the counters for a new phase on the same connections. */
static void run_reset(Run *r) {
        r->issued = r->done = r->errors = r->notifications = r->matched = r->closed = 0;
        r->active = 0;
        r->deadline = r->give_up = 0;
        r->limit = 0;
}

static void conn_want_out(Run *r, Conn *c, bool on) {
        struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
        if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                die("epoll_ctl: %s", strerror(errno));
        c->want_out = on;
}

static void conn_kill(Run *r, Conn *c, const char *why) {
        if (c->dead)
                return;
        c->dead = true;
        r->closed++;
        if (c->in_flight) {
                c->in_flight = false;
                r->active--;
                r->errors++;
        }
        if (!r->first_error) {
                r->first_error = strdup(why);
        }
        epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
}

static bool may_issue(const Run *r, uint64_t now) {
        if (r->limit && r->issued >= r->limit)
                return false;
        if (r->deadline && now >= r->deadline)
                return false;
        return true;
}

/* Starts (or continues) sending the request on c. */
static void conn_send(Run *r, Conn *c, uint64_t now) {
        if (!c->in_flight) {
                c->in_flight = true;
                c->sent = 0;
                c->t_sent = now;
                r->issued++;
                r->active++;
        }
        while (c->sent < r->req_len) {
                ssize_t k = send(c->fd, r->req + c->sent, r->req_len - c->sent, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                if (!c->want_out)
                                        conn_want_out(r, c, true);
                                return;
                        }
                        conn_kill(r, c, strerror(errno));
                        return;
                }
                c->sent += (size_t) k;
        }
        if (c->want_out)
                conn_want_out(r, c, false);
}

static void handle_line(Run *r, Conn *c, const char *line, size_t len, uint64_t now) {
        if (len == 0)
                return;
        if (len >= strlen(NOTIFICATION_PREFIX) && memcmp(line, NOTIFICATION_PREFIX, strlen(NOTIFICATION_PREFIX)) == 0) {
                r->notifications++;
                return;
        }
        if (!c->in_flight) {
                r->errors++; /* a reply nobody asked for */
                return;
        }
        if (r->samples)
                samples_add(r->samples, now - c->t_sent);
        c->in_flight = false;
        r->active--;
        r->done++;
        r->t_end = now;
        if (len >= strlen(ERROR_PREFIX) && memcmp(line, ERROR_PREFIX, strlen(ERROR_PREFIX)) == 0) {
                r->errors++;
                if (!r->first_error) {
                        r->first_error = xmalloc(len + 1);
                        memcpy(r->first_error, line, len);
                        r->first_error[len] = 0;
                }
        } else if (r->count_match && memmem(line, len, r->count_match, strlen(r->count_match)))
                r->matched++;
        if (may_issue(r, now))
                conn_send(r, c, now);
}

static void conn_read(Run *r, Conn *c) {
        if (c->cap - c->len < READ_CHUNK) {
                if (c->cap >= LINE_MAX_BYTES) {
                        conn_kill(r, c, "reply line too long");
                        return;
                }
                c->cap = c->cap ? c->cap * 2 : READ_CHUNK * 2;
                c->buf = xrealloc(c->buf, c->cap);
        }
        ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (k < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return;
                conn_kill(r, c, strerror(errno));
                return;
        }
        if (k == 0) {
                conn_kill(r, c, "the daemon closed the connection");
                return;
        }
        uint64_t now = now_ns();
        size_t old = c->len;
        c->len += (size_t) k;
        size_t start = 0;
        char *nl;
        /* only the new bytes can hold a newline */
        for (char *p = c->buf + old; (nl = memchr(p, '\n', c->len - (size_t) (p - c->buf))); p = nl + 1) {
                handle_line(r, c, c->buf + start, (size_t) (nl - (c->buf + start)), now);
                start = (size_t) (nl + 1 - c->buf);
                if (c->dead)
                        return;
        }
        if (start) {
                memmove(c->buf, c->buf + start, c->len - start);
                c->len -= start;
        }
}

/* Runs the closed loop over connections [0, r->n) until nothing is in flight and nothing
 * may be issued (or give_up passes). */
static void run_loop(Run *r) {
        struct epoll_event ev[EPOLL_BATCH];
        uint64_t now = now_ns();
        r->t_start = r->t_end = now;
        /* every connection sends its first request at once */
        for (unsigned i = 0; i < r->n; i++) {
                Conn *c = &r->conns[i];
                if (c->dead || c->in_flight || !may_issue(r, now))
                        continue;
                conn_send(r, c, now);
        }
        while (r->active > 0) {
                int timeout = 100;
                int k = epoll_wait(r->ep, ev, EPOLL_BATCH, timeout);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        die("epoll_wait: %s", strerror(errno));
                }
                for (int i = 0; i < k; i++) {
                        Conn *c = ev[i].data.ptr;
                        if (c->dead)
                                continue;
                        if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                                conn_read(r, c);
                        if (!c->dead && (ev[i].events & EPOLLOUT) && c->in_flight)
                                conn_send(r, c, now_ns());
                }
                if (r->give_up && now_ns() >= r->give_up) {
                        fprintf(stderr, "avatard-bench: %u calls still in flight at the time limit\n", r->active);
                        for (unsigned i = 0; i < r->n; i++)
                                if (r->conns[i].in_flight)
                                        conn_kill(r, &r->conns[i], "no reply before the time limit");
                        break;
                }
        }
}

static char *build_request(const char *method, const char *params) {
        char *s = NULL;
        if (params && *params) {
                if (asprintf(&s, "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"params\":%s,\"id\":1}\n", method, params) < 0)
                        die("out of memory");
        } else if (asprintf(&s, "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"id\":1}\n", method) < 0)
                die("out of memory");
        return s;
}

static void print_rss(const Options *o, long rss_before) {
        if (o->pid <= 0)
                return;
        printf(" rss_before_kib=%ld rss_after_kib=%ld hwm_kib=%ld", rss_before, proc_status_kib(o->pid, "VmRSS"),
               proc_status_kib(o->pid, "VmHWM"));
}

static void print_head(const char *scenario, const Options *o) {
        printf("bench scenario=%s", scenario);
        if (o->label)
                printf(" label=%s", o->label);
}

static void report_first_error(const Run *r) {
        if (r->first_error)
                fprintf(stderr, "avatard-bench: first error: %.2000s\n", r->first_error);
}

/* call and coalesce */
static int cmd_call(const Options *o, bool coalesce) {
        if (!o->socket)
                die("--socket is needed");
        const char *method = o->method ? o->method : coalesce ? "manager.get_last_jobs" : NULL;
        if (!method)
                die("--method is needed");
        unsigned n = o->conns ? o->conns : 1;
        raise_nofile(n);
        char *req = build_request(method, o->params);
        Samples s;
        samples_init(&s);
        Run r;
        run_init(&r, n);
        r.req = req;
        r.req_len = strlen(req);

        long rss_before = proc_status_kib(o->pid, "VmRSS");
        conns_open(&r, o->socket, 0, n);

        if (!coalesce && o->warmup_s > 0) {
                r.deadline = now_ns() + (uint64_t) (o->warmup_s * 1e9);
                r.give_up = r.deadline + 30 * 1000000000ull;
                run_loop(&r);
                report_first_error(&r);
                run_reset(&r);
        }

        off_t log_from = file_size(o->sim_log);
        r.samples = &s;
        if (coalesce)
                r.limit = n;
        else {
                r.limit = o->calls;
                if (o->seconds > 0)
                        r.deadline = now_ns() + (uint64_t) (o->seconds * 1e9);
                if (!r.limit && !r.deadline)
                        r.limit = 10000;
        }
        r.give_up = (r.deadline ? r.deadline : now_ns() + (uint64_t) ((o->seconds > 0 ? o->seconds : 60) * 1e9)) +
                    60 * 1000000000ull;
        run_loop(&r);
        report_first_error(&r);

        double secs = (double) (r.t_end - r.t_start) / 1e9;
        print_head(coalesce ? "coalesce" : "call", o);
        printf(" method=%s conns=%u calls=%" PRIu64 " errors=%" PRIu64 " closed=%" PRIu64 " seconds=%.3f rate=%.0f", method,
               n, r.done, r.errors, r.closed, secs, secs > 0 ? (double) r.done / secs : 0.0);
        print_latency(&s);
        print_rss(o, rss_before);
        print_upstream(o->sim_log, log_from, o->route);
        printf("\n");
        fflush(stdout);
        run_done(&r);
        free(s.v);
        free(req);
        return 0;
}

static long status_number(const char *sock, const char *key);

/* idle: VmRSS with 0 and each level of idle connections. */
static int cmd_idle(const Options *o) {
        if (!o->socket || o->pid <= 0)
                die("--socket and --pid are needed");
        const char *levels = o->levels ? o->levels : "1000";
        unsigned lv[32], n_lv = 0, max = 0;
        for (const char *p = levels; *p && n_lv < 32;) {
                char *end;
                unsigned long v = strtoul(p, &end, 10);
                if (end == p)
                        die("bad --conns list: %s", levels);
                lv[n_lv++] = (unsigned) v;
                if (v > max)
                        max = (unsigned) v;
                p = *end == ',' ? end + 1 : end;
        }
        raise_nofile(max);
        char *req = build_request("daemon.ping", NULL);
        Run r;
        run_init(&r, max);
        r.req = req;
        r.req_len = strlen(req);

        sleep_s(o->settle_s);
        long rss0 = proc_status_kib(o->pid, "VmRSS");
        long anon0 = proc_status_kib(o->pid, "RssAnon");
        print_head("idle", o);
        printf(" conns=0");
        print_memory(o->pid);
        printf(" per_conn_bytes=0\n");
        fflush(stdout);
        unsigned open = 0;
        for (unsigned i = 0; i < n_lv; i++) {
                unsigned want = lv[i];
                if (want <= open)
                        continue;
                conns_open(&r, o->socket, open, want);
                /* one ping on each new connection: accepted and served once, then idle */
                Run sub = r;
                sub.conns = r.conns + open;
                sub.n = want - open;
                run_reset(&sub);
                sub.limit = want - open;
                sub.give_up = now_ns() + 60 * 1000000000ull;
                sub.samples = NULL;
                sub.first_error = NULL;
                run_loop(&sub);
                report_first_error(&sub);
                free(sub.first_error);
                open = want;
                sleep_s(o->settle_s);
                long rss = proc_status_kib(o->pid, "VmRSS");
                long anon = proc_status_kib(o->pid, "RssAnon");
                print_head("idle", o);
                printf(" conns=%u pinged=%" PRIu64 " errors=%" PRIu64, want, sub.done, sub.errors);
                print_memory(o->pid);
                printf(" per_conn_bytes=%.0f per_conn_anon_bytes=%.0f\n", (double) (rss - rss0) * 1024.0 / (double) want,
                       (double) (anon - anon0) * 1024.0 / (double) want);
                fflush(stdout);
        }
        /* and once they are gone: what the daemon keeps of what they used, once it has given
         * its heap back (daemon.status heap_trims_total moved on; up to 30 s) */
        long trims0 = status_number(o->socket, "heap_trims_total"), trims = trims0;
        conns_close(&r, r.n);
        uint64_t t_close = now_ns();
        while (now_ns() - t_close < 30 * 1000000000ull) {
                sleep_s(0.1);
                trims = status_number(o->socket, "heap_trims_total");
                if (trims > trims0)
                        break;
        }
        double trim_s = (double) (now_ns() - t_close) / 1e9;
        sleep_s(o->settle_s);
        print_head("idle-closed", o);
        printf(" conns=0 after=%u trims=%ld trim_s=%.2f", open, trims - trims0, trim_s);
        print_memory(o->pid);
        printf("\n");
        fflush(stdout);
        run_done(&r);
        free(req);
        return 0;
}

/* wait: many clients wait on one runner. */
static int cmd_wait(const Options *o) {
        if (!o->socket || !o->runner)
                die("--socket and --runner are needed");
        unsigned n = o->conns ? o->conns : 100;
        double secs = o->seconds > 0 ? o->seconds : 60;
        raise_nofile(n);
        char params[256];
        snprintf(params, sizeof(params), "{\"runner_id\":\"%s\",\"timeout_s\":%.3f}", o->runner, secs);
        char *req = build_request("runner.wait", params);
        Samples s;
        samples_init(&s);
        Run r;
        run_init(&r, n);
        r.req = req;
        r.req_len = strlen(req);
        r.samples = &s;
        r.count_match = "\"timed_out\":true";
        long rss_before = proc_status_kib(o->pid, "VmRSS");
        conns_open(&r, o->socket, 0, n);
        off_t log_from = file_size(o->sim_log);
        r.limit = n;
        r.give_up = now_ns() + (uint64_t) ((secs + 60) * 1e9);
        uint64_t t0 = now_ns();
        run_loop(&r);
        double elapsed = (double) (now_ns() - t0) / 1e9;
        report_first_error(&r);
        print_head("wait", o);
        printf(" clients=%u replies=%" PRIu64 " errors=%" PRIu64 " timed_out=%" PRIu64 " notifications=%" PRIu64
               " seconds=%.3f",
               n, r.done, r.errors, r.matched, r.notifications, elapsed);
        print_latency(&s);
        print_rss(o, rss_before);
        if (o->sim_log) {
                /* the rate per minute needs the count: read it once more, quietly */
                print_upstream(o->sim_log, log_from, o->route ? o->route : "GET /api/jobs");
        }
        printf(" window_s=%.3f\n", elapsed);
        fflush(stdout);
        run_done(&r);
        free(s.v);
        free(req);
        return 0;
}

/* --- no daemon: libcurl, a new handle and connection per call ------------------------------ */

static size_t discard_body(char *p, size_t size, size_t n, void *userdata) {
        (void) p;
        (void) userdata;
        return size * n;
}

static int cmd_nodaemon(const Options *o) {
        if (!o->url)
                die("--url is needed");
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                die("curl_global_init failed");
        struct curl_slist *headers = NULL;
        char auth[512];
        if (o->key) {
                snprintf(auth, sizeof(auth), "Authorization: api-key-v1 %s", o->key);
                headers = curl_slist_append(headers, auth);
        }
        Samples s;
        samples_init(&s);
        uint64_t limit = o->calls, errors = 0, done = 0;
        double secs = o->seconds;
        if (!limit && secs <= 0)
                limit = 1000;
        off_t log_from = 0;
        for (int phase = 0; phase < 2; phase++) {
                /* phase 0: a few warm-up calls, not counted */
                uint64_t t0 = now_ns();
                uint64_t deadline = phase ? (secs > 0 ? t0 + (uint64_t) (secs * 1e9) : 0) : t0 + 200000000ull;
                uint64_t want = phase ? limit : 0;
                if (phase)
                        log_from = file_size(o->sim_log);
                uint64_t n = 0;
                for (;;) {
                        uint64_t t = now_ns();
                        if ((want && n >= want) || (deadline && t >= deadline))
                                break;
                        CURL *e = curl_easy_init();
                        if (!e)
                                die("curl_easy_init failed");
                        curl_easy_setopt(e, CURLOPT_URL, o->url);
                        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
                        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
                        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
                        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
                        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
                        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
                        curl_easy_setopt(e, CURLOPT_USERAGENT, "avatard-bench");
                        CURLcode rc = curl_easy_perform(e);
                        long status = 0;
                        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
                        curl_easy_cleanup(e);
                        uint64_t t1 = now_ns();
                        n++;
                        if (phase) {
                                samples_add(&s, t1 - t);
                                done++;
                                if (rc != CURLE_OK || status != 200) {
                                        if (errors++ == 0)
                                                fprintf(stderr, "avatard-bench: %s: %s, HTTP %ld\n", o->url,
                                                        curl_easy_strerror(rc), status);
                                }
                        }
                }
                if (phase) {
                        double el = (double) (now_ns() - t0) / 1e9;
                        print_head("nodaemon", o);
                        printf(" conns=1 calls=%" PRIu64 " errors=%" PRIu64 " seconds=%.3f rate=%.0f", done, errors, el,
                               el > 0 ? (double) done / el : 0.0);
                        print_latency(&s);
                        print_upstream(o->sim_log, log_from, o->route);
                        printf("\n");
                }
        }
        fflush(stdout);
        curl_slist_free_all(headers);
        curl_global_cleanup();
        free(s.v);
        return 0;
}

/* --- upload ------------------------------------------------------------------------------ */

/* Makes `path` a CSV file of exactly `size` bytes (unless it already has that size). */
static void ensure_file(const char *path, uint64_t size) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t) st.st_size == size)
                return;
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                die("%s: %s", path, strerror(errno));
        /* one block of rows, repeated; row numbers restart per block, which CSV does not mind */
        size_t blk = 1024 * 1024;
        char *b = xmalloc(blk + 128);
        size_t len = 0;
        static const char *const cat[] = { "alpha", "beta", "gamma", "delta" };
        len += (size_t) sprintf(b, "id,age,height,weight,category\n");
        for (unsigned i = 0; len < blk - 64; i++)
                len += (size_t) sprintf(b + len, "%u,%u,%u.%u,%u.%u,%s\n", i, 18 + i % 70, 150 + i % 50, i % 10,
                                        50 + i % 60, (i * 7) % 10, cat[i % 4]);
        uint64_t left = size;
        bool first = true;
        while (left > 0) {
                const char *p = b;
                size_t n = len;
                if (!first) {
                        /* skip the header line in later blocks */
                        const char *nl = memchr(b, '\n', len);
                        p = nl + 1;
                        n = len - (size_t) (p - b);
                }
                if (n > left)
                        n = (size_t) left;
                size_t off = 0;
                while (off < n) {
                        ssize_t k = write(fd, p + off, n - off);
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                die("write %s: %s", path, strerror(errno));
                        }
                        off += (size_t) k;
                }
                left -= n;
                first = false;
        }
        if (size > 0) {
                /* end on a newline */
                if (pwrite(fd, "\n", 1, (off_t) size - 1) != 1)
                        die("write %s: %s", path, strerror(errno));
        }
        if (close(fd) < 0)
                die("close %s: %s", path, strerror(errno));
        free(b);
}

/* Sends one line, with `pass_fd` (>= 0) as SCM_RIGHTS ancillary data. */
static void send_line(int fd, const char *line, int pass_fd) {
        size_t len = strlen(line), off = 0;
        while (off < len) {
                struct iovec iov = { (void *) (line + off), len - off };
                union {
                        struct cmsghdr h;
                        char b[CMSG_SPACE(sizeof(int))];
                } u;
                struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
                if (off == 0 && pass_fd >= 0) {
                        memset(&u, 0, sizeof(u));
                        m.msg_control = u.b;
                        m.msg_controllen = sizeof(u.b);
                        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof(int));
                        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
                }
                ssize_t k = sendmsg(fd, &m, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { fd, POLLOUT, 0 };
                                poll(&p, 1, 1000);
                                continue;
                        }
                        die("send: %s", strerror(errno));
                }
                off += (size_t) k;
        }
}

typedef struct LineReader {
        char *buf;
        size_t len, cap, start;
} LineReader;

/* Returns the next complete line (NUL-terminated, in the reader's buffer) or NULL when none
 * is buffered; reads at most once (non-blocking socket). *closed is set at EOF. */
static char *read_line(int fd, LineReader *lr, bool *closed, bool do_read) {
        for (;;) {
                char *nl = lr->len > lr->start ? memchr(lr->buf + lr->start, '\n', lr->len - lr->start) : NULL;
                if (nl) {
                        char *line = lr->buf + lr->start;
                        *nl = 0;
                        lr->start = (size_t) (nl + 1 - lr->buf);
                        return line;
                }
                if (!do_read)
                        return NULL;
                do_read = false;
                if (lr->start) {
                        memmove(lr->buf, lr->buf + lr->start, lr->len - lr->start);
                        lr->len -= lr->start;
                        lr->start = 0;
                }
                if (lr->cap - lr->len < READ_CHUNK) {
                        lr->cap = lr->cap ? lr->cap * 2 : READ_CHUNK * 2;
                        if (lr->cap > LINE_MAX_BYTES)
                                die("reply line too long");
                        lr->buf = xrealloc(lr->buf, lr->cap);
                }
                ssize_t k = recv(fd, lr->buf + lr->len, lr->cap - lr->len - 1, MSG_DONTWAIT);
                if (k == 0) {
                        *closed = true;
                        return NULL;
                }
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return NULL;
                        die("recv: %s", strerror(errno));
                }
                lr->len += (size_t) k;
        }
}

typedef struct Sampler {
        pid_t pid;
        long peak_kib;
        uint64_t n;
} Sampler;

static void sampler_tick(Sampler *s) {
        long v = proc_status_kib(s->pid, "VmRSS");
        if (v > s->peak_kib)
                s->peak_kib = v;
        s->n++;
}

/* One call on a blocking-style connection: sends, then reads until the reply (notifications
 * are counted). Samples the daemon's RSS every interval_ms meanwhile. Returns the parsed
 * reply (new reference). */
static json_object *call_once(int fd, LineReader *lr, const char *line, int pass_fd, unsigned interval_ms,
                              Sampler *sampler, uint64_t *notifications) {
        send_line(fd, line, pass_fd);
        bool closed = false, do_read = false;
        for (;;) {
                char *l = read_line(fd, lr, &closed, do_read);
                do_read = false;
                if (l) {
                        if (strncmp(l, NOTIFICATION_PREFIX, strlen(NOTIFICATION_PREFIX)) == 0) {
                                if (notifications)
                                        (*notifications)++;
                                continue;
                        }
                        json_object *j = json_tokener_parse(l);
                        if (!j)
                                die("unparsable reply: %.500s", l);
                        return j;
                }
                if (closed)
                        die("the daemon closed the connection");
                struct pollfd p = { fd, POLLIN, 0 };
                int k = poll(&p, 1, sampler ? (int) interval_ms : 1000);
                if (k < 0 && errno != EINTR)
                        die("poll: %s", strerror(errno));
                if (sampler)
                        sampler_tick(sampler);
                do_read = k > 0;
        }
}

static const char *json_str(json_object *o, const char *path0, const char *path1) {
        json_object *a = NULL, *b = NULL;
        if (!json_object_object_get_ex(o, path0, &a))
                return NULL;
        if (!path1)
                return json_object_get_string(a);
        if (!json_object_object_get_ex(a, path1, &b))
                return NULL;
        return json_object_get_string(b);
}

static int cmd_upload(const Options *o) {
        if (!o->socket || !o->file)
                die("--socket and --file are needed");
        uint64_t size = o->size ? o->size : 1024ull * 1024 * 1024;
        ensure_file(o->file, size);
        int data = open(o->file, O_RDONLY | O_CLOEXEC);
        if (data < 0)
                die("%s: %s", o->file, strerror(errno));
        int fd = unix_connect(o->socket, true);
        LineReader lr = { 0 };
        char *req;

        if (asprintf(&req,
                     "{\"jsonrpc\":\"2.0\",\"method\":\"manager.create_runner\",\"params\":{\"set_name\":\"%s\"},\"id\":1}\n",
                     o->label ? o->label : "bench-upload") < 0)
                die("out of memory");
        json_object *rep = call_once(fd, &lr, req, -1, 0, NULL, NULL);
        free(req);
        const char *runner = json_str(rep, "result", "runner_id");
        if (!runner)
                die("manager.create_runner failed: %s", json_object_to_json_string(rep));
        char *runner_id = strdup(runner);
        json_object_put(rep);

        const char *base = strrchr(o->file, '/');
        base = base ? base + 1 : o->file;
        if (asprintf(&req,
                     "{\"jsonrpc\":\"2.0\",\"method\":\"runner.add_table\",\"params\":{\"runner_id\":\"%s\","
                     "\"table_name\":\"bench\",\"data\":{\"fd\":0},\"file_name\":\"%s\"},\"id\":2}\n",
                     runner_id, base) < 0)
                die("out of memory");
        Sampler sm = { .pid = o->pid, .peak_kib = -1 };
        long rss_before = proc_status_kib(o->pid, "VmRSS");
        long hwm_before = proc_status_kib(o->pid, "VmHWM");
        off_t log_from = file_size(o->sim_log);
        uint64_t notes = 0;
        sampler_tick(&sm);
        uint64_t t0 = now_ns();
        rep = call_once(fd, &lr, req, data, o->interval_ms ? o->interval_ms : 10, &sm, &notes);
        double secs = (double) (now_ns() - t0) / 1e9;
        sampler_tick(&sm);
        free(req);
        close(data);

        json_object *res = NULL, *up = NULL, *jb = NULL;
        uint64_t bytes = 0;
        int errors = 0;
        const char *url = NULL;
        if (json_object_object_get_ex(rep, "result", &res) && json_object_object_get_ex(res, "upload", &up)) {
                if (json_object_object_get_ex(up, "bytes", &jb))
                        bytes = (uint64_t) json_object_get_int64(jb);
                url = json_str(up, "storage_url", NULL);
        } else {
                errors = 1;
                fprintf(stderr, "avatard-bench: runner.add_table failed: %s\n", json_object_to_json_string(rep));
        }
        if (!errors && bytes != size) {
                errors = 1;
                fprintf(stderr, "avatard-bench: uploaded %" PRIu64 " bytes of %" PRIu64 "\n", bytes, size);
        }
        print_head("upload", o);
        printf(" bytes=%" PRIu64 " errors=%d seconds=%.3f mib_s=%.1f mb_s=%.1f notifications=%" PRIu64, bytes, errors,
               secs, secs > 0 ? (double) bytes / secs / 1048576.0 : 0.0, secs > 0 ? (double) bytes / secs / 1e6 : 0.0,
               notes);
        if (o->pid > 0)
                printf(" rss_before_kib=%ld rss_peak_kib=%ld rss_after_kib=%ld hwm_before_kib=%ld hwm_after_kib=%ld samples=%" PRIu64,
                       rss_before, sm.peak_kib, proc_status_kib(o->pid, "VmRSS"), hwm_before,
                       proc_status_kib(o->pid, "VmHWM"), sm.n);
        printf(" storage_url=%s runner_id=%s", url ? url : "-", runner_id);
        print_upstream(o->sim_log, log_from, o->route);
        printf("\n");
        fflush(stdout);
        json_object_put(rep);
        free(runner_id);
        free(lr.buf);
        close(fd);
        return 0;
}

/* --- main -------------------------------------------------------------------------------- */

/* --- flood ------------------------------------------------------------------------------ */

/* One daemon.status on a connection of its own: the first number after "KEY":, or -1. */
static long status_number(const char *sock, const char *key) {
        int fd = unix_connect(sock, false);
        LineReader lr = {};
        bool closed = false;
        char *line = NULL, pat[128];
        long v = -1;

        send_line(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.status\",\"id\":1}\n", -1);
        while (!line && !closed) {
                struct pollfd p = { fd, POLLIN, 0 };
                if (poll(&p, 1, 10000) <= 0)
                        break;
                line = read_line(fd, &lr, &closed, true);
        }
        snprintf(pat, sizeof(pat), "\"%s\":", key);
        if (line && strstr(line, pat))
                v = strtol(strstr(line, pat) + strlen(pat), NULL, 10);
        free(lr.buf);
        close(fd);
        return v;
}

typedef struct FloodConn {
        int fd;
        uint64_t sent;
        bool done, refused, closed;
} FloodConn;

/* Whether every byte written on the connection was taken by the daemon. */
static bool flood_read_all(const FloodConn *c) {
        int q = 0;
        return ioctl(c->fd, SIOCOUTQ, &q) == 0 && q == 0;
}

/* The daemon answered (a refusal) or closed: read what it said. */
static void flood_input(FloodConn *c) {
        char b[4096];
        for (;;) {
                ssize_t k = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
                if (k > 0) {
                        if (memmem(b, (size_t) k, "-32008", 6))
                                c->refused = true;
                        continue;
                }
                if (k == 0 || (errno != EAGAIN && errno != EINTR))
                        c->closed = true;
                return;
        }
}

static int cmd_flood(const Options *o) {
        if (!o->socket || o->pid <= 0)
                die("--socket and --pid are needed");
        unsigned n = o->conns ? o->conns : 1000, interval = o->interval_ms ? o->interval_ms : 10;
        uint64_t size = o->size ? o->size : 1000000;
        static const char head[] = "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\",\"params\":{\"echo\":\"";
        if (size < sizeof(head))
                die("--size is too small");
        raise_nofile(n + 16);
        char *pad = xmalloc(size);
        memset(pad, 'a', size);
        memcpy(pad, head, sizeof(head) - 1);
        FloodConn *c = xmalloc(sizeof(FloodConn) * n);
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
                die("epoll_create1: %s", strerror(errno));

        sleep_s(o->settle_s);
        long rss0 = proc_status_kib(o->pid, "VmRSS"), anon0 = proc_status_kib(o->pid, "RssAnon"), peak = rss0;
        uint64_t t0 = now_ns(), give_up = t0 + 120 * 1000000000ull;
        for (unsigned i = 0; i < n; i++) {
                c[i] = (FloodConn) { .fd = unix_connect(o->socket, true) };
                struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = i };
                if (epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev) < 0)
                        die("epoll_ctl: %s", strerror(errno));
        }
        /* until each connection has had all its bytes taken by the daemon, or was refused */
        unsigned left = n;
        while (left > 0 && now_ns() < give_up) {
                struct epoll_event evs[EPOLL_BATCH];
                int k = epoll_wait(ep, evs, EPOLL_BATCH, (int) interval);
                long v = proc_status_kib(o->pid, "VmRSS");
                if (v > peak)
                        peak = v;
                for (int j = 0; j < k; j++) {
                        FloodConn *f = &c[evs[j].data.u32];
                        if (f->done)
                                continue;
                        if (evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                                flood_input(f);
                        if (!f->closed && (evs[j].events & EPOLLOUT) && f->sent < size) {
                                ssize_t w = send(f->fd, pad + f->sent, size - f->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                                if (w > 0)
                                        f->sent += (uint64_t) w;
                                else if (w < 0 && errno != EAGAIN && errno != EINTR)
                                        f->closed = true;
                                if (f->sent == size) {
                                        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = evs[j].data.u32 };
                                        (void) epoll_ctl(ep, EPOLL_CTL_MOD, f->fd, &ev);
                                }
                        }
                        if (f->closed || f->refused) {
                                f->done = true;
                                left--;
                        }
                }
                /* those that sent everything: done once the daemon read it all */
                for (unsigned i = 0; i < n; i++)
                        if (!c[i].done && c[i].sent == size && flood_read_all(&c[i])) {
                                /* a refusal closes the daemon's end, which empties the queue too */
                                flood_input(&c[i]);
                                c[i].done = true;
                                left--;
                        }
        }
        double fill_s = (double) (now_ns() - t0) / 1e9;
        unsigned refused = 0, closed = 0, held = 0;
        uint64_t sent = 0;
        for (unsigned i = 0; i < n; i++) {
                sent += c[i].sent;
                if (c[i].refused)
                        refused++;
                else if (c[i].closed)
                        closed++;
                else
                        held++;
        }
        sleep_s(o->settle_s);
        long rss_held = proc_status_kib(o->pid, "VmRSS");
        if (rss_held > peak)
                peak = rss_held;
        long hwm = proc_status_kib(o->pid, "VmHWM");
        /* the refused connections are gone already: the heap may have been trimmed since */
        long trims0 = status_number(o->socket, "heap_trims_total");

        for (unsigned i = 0; i < n; i++)
                close(c[i].fd);
        /* the daemon gives the heap back a moment after a wave of departures */
        uint64_t t_close = now_ns();
        long trims = -1;
        while (now_ns() - t_close < 30 * 1000000000ull) {
                sleep_s(0.5);
                trims = status_number(o->socket, "heap_trims_total");
                if (trims > trims0)
                        break;
        }
        sleep_s(o->settle_s);
        long rss_after = proc_status_kib(o->pid, "VmRSS"), anon_after = proc_status_kib(o->pid, "RssAnon");

        print_head("flood", o);
        printf(" conns=%u bytes_per_conn=%" PRIu64 " sent_mib=%.1f fill_s=%.2f held=%u refused=%u closed=%u"
               " rss_before_kib=%ld rss_peak_kib=%ld rss_held_kib=%ld rss_after_kib=%ld anon_before_kib=%ld"
               " anon_after_kib=%ld hwm_kib=%ld delta_after_kib=%ld trims=%ld\n",
               n, size, (double) sent / 1048576.0, fill_s, held, refused, closed, rss0, peak, rss_held, rss_after, anon0,
               anon_after, hwm, rss_after - rss0, trims - trims0);
        fflush(stdout);
        close(ep);
        free(c);
        free(pad);
        return 0;
}

static void usage(FILE *f) {
        fputs("Usage: avatard-bench call|coalesce|idle|wait|nodaemon|upload|flood [OPTIONS]\n"
              "  --socket PATH      avatard's socket (or the echo server's)\n"
              "  --method M         method to call (call, coalesce)\n"
              "  --params JSON      params of each call\n"
              "  --conns N          connections (idle: a list N,N,...; wait: same as --clients)\n"
              "  --clients N        waiting clients (wait)\n"
              "  --calls N          calls in total (call, nodaemon)\n"
              "  --seconds S        duration (call, nodaemon) or runner.wait timeout (wait)\n"
              "  --warmup S         warm-up before measuring (call; default 0.2)\n"
              "  --settle S         pause before each RSS sample (idle; default 0.5)\n"
              "  --pid PID          the daemon, for VmRSS/VmHWM from /proc\n"
              "  --sim-log FILE     avatar-sim's request log: upstream requests by route\n"
              "  --route ROUTE      a route to report as upstream_route=N\n"
              "  --runner ID        runner to wait on (wait)\n"
              "  --url URL --key K  endpoint and API key (nodaemon)\n"
              "  --file F --size S  table to upload, created when absent (upload; default 1G)\n"
              "  --size S           bytes of an unfinished line per connection (flood; default 1000000)\n"
              "  --interval-ms N    RSS sampling period during the upload (default 10)\n"
              "  --label L          echoed in the result line\n",
              f);
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                { "socket", required_argument, NULL, 's' },
                { "method", required_argument, NULL, 'm' },
                { "params", required_argument, NULL, 'P' },
                { "conns", required_argument, NULL, 'c' },
                { "clients", required_argument, NULL, 'c' },
                { "calls", required_argument, NULL, 'n' },
                { "seconds", required_argument, NULL, 't' },
                { "warmup", required_argument, NULL, 'w' },
                { "settle", required_argument, NULL, 'S' },
                { "pid", required_argument, NULL, 'p' },
                { "sim-log", required_argument, NULL, 'l' },
                { "route", required_argument, NULL, 'r' },
                { "runner", required_argument, NULL, 'R' },
                { "url", required_argument, NULL, 'u' },
                { "key", required_argument, NULL, 'k' },
                { "file", required_argument, NULL, 'f' },
                { "size", required_argument, NULL, 'z' },
                { "interval-ms", required_argument, NULL, 'i' },
                { "label", required_argument, NULL, 'L' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        const char *cmd = argv[1];
        Options o = { .warmup_s = 0.2, .settle_s = 0.5 };
        int opt;
        optind = 2;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (opt) {
                case 's': o.socket = optarg; break;
                case 'm': o.method = optarg; break;
                case 'P': o.params = optarg; break;
                case 'c':
                        o.levels = optarg; /* idle takes a list */
                        o.conns = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'n': o.calls = strtoull(optarg, NULL, 10); break;
                case 't': o.seconds = strtod(optarg, NULL); break;
                case 'w': o.warmup_s = strtod(optarg, NULL); break;
                case 'S': o.settle_s = strtod(optarg, NULL); break;
                case 'p': o.pid = (pid_t) strtol(optarg, NULL, 10); break;
                case 'l': o.sim_log = optarg; break;
                case 'r': o.route = optarg; break;
                case 'R': o.runner = optarg; break;
                case 'u': o.url = optarg; break;
                case 'k': o.key = optarg; break;
                case 'f': o.file = optarg; break;
                case 'z': o.size = parse_size(optarg); break;
                case 'i': o.interval_ms = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'L': o.label = optarg; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc)
                die("unexpected argument: %s", argv[optind]);
        signal(SIGPIPE, SIG_IGN);

        if (strcmp(cmd, "call") == 0)
                return cmd_call(&o, false);
        if (strcmp(cmd, "coalesce") == 0)
                return cmd_call(&o, true);
        if (strcmp(cmd, "idle") == 0)
                return cmd_idle(&o);
        if (strcmp(cmd, "wait") == 0)
                return cmd_wait(&o);
        if (strcmp(cmd, "nodaemon") == 0)
                return cmd_nodaemon(&o);
        if (strcmp(cmd, "upload") == 0)
                return cmd_upload(&o);
        if (strcmp(cmd, "flood") == 0)
                return cmd_flood(&o);
        usage(stderr);
        return 2;
}
