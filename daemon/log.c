/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "build-config.h"
#include "log.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-journal.h>
#endif

/* Log settings are the only file-scope mutable state besides arg_* (see style.md). */
static int log_max_level = LOG_INFO;
static LogTarget log_target = LOG_TARGET_STDERR;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",   [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",       [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",     [LOG_DEBUG] = "debug",
};

/* Sets the highest priority that is emitted. */
void log_set_max_level(int level) {
        log_max_level = CLAMP(level, LOG_EMERG, LOG_DEBUG);
}

/* Returns the highest priority that is emitted. */
int log_get_max_level(void) {
        return log_max_level;
}

/* Parses a level name or number. */
int log_level_from_string(const char *s) {
        if (isempty(s))
                return -EINVAL;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        if (streq(s, "warn"))
                return LOG_WARNING;
        if (streq(s, "error"))
                return LOG_ERR;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (level_names[i] && streq(s, level_names[i]))
                        return (int) i;
        return -EINVAL;
}

/* Returns the name of a level, or NULL. */
const char *log_level_to_string(int level) {
        if (level < 0 || (size_t) level >= ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

/* Whether stderr is connected to journald: JOURNAL_STREAM holds "dev:ino" of it. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

/* Picks the backend. */
void log_open(LogTarget target) {
        if (target == LOG_TARGET_AUTO)
                target = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
#if !HAVE_LIBSYSTEMD
        target = LOG_TARGET_STDERR;
#endif
        log_target = target;
}

/* Whether a message of this level would be emitted. */
bool log_would_log(int level) {
        return level <= log_max_level;
}

#if HAVE_LIBSYSTEMD
/* Sends one entry with its structured fields to the journal. */
static void log_to_journal(int level, int error, const LogContext *ctx, const char *file,
                           int line, const char *func, const char *msg) {
        char f[16][128];
        struct iovec iov[16];
        size_t n = 0;
        char *m = NULL;

        if (asprintf(&m, "MESSAGE=%s", msg) < 0)
                return;
        iov[n++] = (struct iovec){ m, strlen(m) };
#define ADDF(...)                                                                  \
        do {                                                                       \
                snprintf(f[n], sizeof(f[n]), __VA_ARGS__);                         \
                iov[n] = (struct iovec){ f[n], strlen(f[n]) };                     \
                n++;                                                               \
        } while (false)
        ADDF("PRIORITY=%d", level);
        ADDF("SYSLOG_IDENTIFIER=avatard");
        ADDF("CODE_FILE=%s", file);
        ADDF("CODE_LINE=%d", line);
        ADDF("CODE_FUNC=%s", func);
        if (error != 0)
                ADDF("ERRNO=%d", abs(error));
        if (ctx) {
                if (ctx->rpc_method)
                        ADDF("RPC_METHOD=%s", ctx->rpc_method);
                if (ctx->client_pid > 0) {
                        ADDF("CLIENT_PID=%d", (int) ctx->client_pid);
                        ADDF("CLIENT_UID=%u", (unsigned) ctx->client_uid);
                }
                if (ctx->client_comm)
                        ADDF("CLIENT_COMM=%s", ctx->client_comm);
                if (ctx->runner_id)
                        ADDF("RUNNER_ID=%s", ctx->runner_id);
                if (ctx->job_name)
                        ADDF("JOB_NAME=%s", ctx->job_name);
        }
#undef ADDF
        (void) sd_journal_sendv(iov, (int) n);
        free(m);
}
#endif

/* Appends one part to the context prefix of a stderr line, after a blank unless it is the
 * first; *p counts what was asked for, so once past the size nothing more is written. */
_printf_(4, 5)
static void prefix_append(char *prefix, size_t size, size_t *p, const char *format, ...) {
        va_list ap;
        int n;

        if (*p > 0 && *p < size)
                *p += (size_t) snprintf(prefix + *p, size - *p, " ");
        if (*p >= size)
                return;
        va_start(ap, format);
        n = vsnprintf(prefix + *p, size - *p, format, ap);
        va_end(ap);
        if (n > 0)
                *p += (size_t) n;
}

/* Writes one line to stderr: "<level>: [context] message". */
static void log_to_stderr(int level, const LogContext *ctx, const char *msg) {
        char prefix[256] = "";
        size_t p = 0;

        if (ctx) {
                if (ctx->rpc_method)
                        prefix_append(prefix, sizeof(prefix), &p, "%s", ctx->rpc_method);
                if (ctx->client_pid > 0)
                        prefix_append(prefix, sizeof(prefix), &p, "pid=%d uid=%u",
                                      (int) ctx->client_pid, (unsigned) ctx->client_uid);
                if (ctx->client_comm)
                        prefix_append(prefix, sizeof(prefix), &p, "comm=%s", ctx->client_comm);
                if (ctx->runner_id)
                        prefix_append(prefix, sizeof(prefix), &p, "runner=%s", ctx->runner_id);
                if (ctx->job_name)
                        prefix_append(prefix, sizeof(prefix), &p, "job=%s", ctx->job_name);
        }
        if (p > 0)
                fprintf(stderr, "avatard[%d]: %s: [%s] %s\n", (int) getpid(),
                        strna(log_level_to_string(level)), prefix, msg);
        else
                fprintf(stderr, "avatard[%d]: %s: %s\n", (int) getpid(),
                        strna(log_level_to_string(level)), msg);
}

/* The one emitter (va_list form). */
int log_internalv(int level, int error, const LogContext *ctx, const char *file, int line,
                  const char *func, const char *format, va_list ap) {
        char buf[2048];
        int saved_errno = errno;

        if (error < 0)
                error = -error;
        if (!log_would_log(level))
                return -error;

        /* %m prints the error we were given, not whatever errno holds. */
        errno = error;
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        errno = saved_errno;

#if HAVE_LIBSYSTEMD
        if (log_target == LOG_TARGET_JOURNAL) {
                log_to_journal(level, error, ctx, file, line, func, buf);
                return -error;
        }
#else
        (void) file;
        (void) line;
        (void) func;
#endif
        log_to_stderr(level, ctx, buf);
        return -error;
}

/* The one emitter. */
int log_internal(int level, int error, const LogContext *ctx, const char *file, int line,
                 const char *func, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_internalv(level, error, ctx, file, line, func, format, ap);
        va_end(ap);
        return r;
}
