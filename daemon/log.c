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

/* Length of the well-formed UTF-8 sequence at p (n bytes available), or 0 when the bytes
 * there are not one (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
 * The rule of proto's utf8_sequence_len(), kept here since the programs and tests that link
 * this file on its own do not link proto. */
static size_t utf8_len(const unsigned char *p, size_t n) {
        unsigned char lo = 0x80, hi = 0xbf;
        size_t l;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                l = 2;
        else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                l = 3;
                lo = p[0] == 0xe0 ? 0xa0 : lo;
                hi = p[0] == 0xed ? 0x9f : hi;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                l = 4;
                lo = p[0] == 0xf0 ? 0x90 : lo;
                hi = p[0] == 0xf4 ? 0x8f : hi;
        } else
                return 0;
        if (n < l || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < l; i++)
                if (p[i] < 0x80 || p[i] > 0xbf)
                        return 0;
        return l;
}

/* The code point of a well-formed UTF-8 sequence of l bytes. */
static unsigned utf8_code_point(const unsigned char *p, size_t l) {
        static const unsigned char lead_mask[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
        unsigned cp = p[0] & lead_mask[l];

        for (size_t i = 1; i < l; i++)
                cp = (cp << 6) | (p[i] & 0x3f);
        return cp;
}

/* Whether a code point beyond ASCII changes how a line reads: a C1 control (U+009B is CSI on
 * some terminals), a line or paragraph separator, a bidirectional override or isolate. */
static bool code_point_is_control(unsigned cp) {
        return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
               (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Copies src with its control characters and malformed bytes escaped. */
char *log_escape(char *dst, size_t size, const char *src) {
        const unsigned char *p = (const unsigned char *) src, *end = p + strlen(src);
        size_t o = 0;

        assert(size > 0);
        while (p < end) {
                char esc[8];
                const char *piece = esc;
                size_t l = utf8_len(p, (size_t) (end - p)), n;

                if (l == 0) {
                        n = (size_t) snprintf(esc, sizeof(esc), "\\x%02x", *p);
                        l = 1;
                } else if (*p == '\n' || *p == '\r' || *p == '\t') {
                        esc[0] = '\\';
                        esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
                        n = 2;
                } else if (*p < 0x20 || *p == 0x7f)
                        n = (size_t) snprintf(esc, sizeof(esc), "\\x%02x", *p);
                else if (l > 1 && code_point_is_control(utf8_code_point(p, l)))
                        n = (size_t) snprintf(esc, sizeof(esc), "\\u%04x", utf8_code_point(p, l));
                else {
                        piece = (const char *) p;
                        n = l;
                }
                if (n >= size - o)
                        break;
                memcpy(dst + o, piece, n);
                o += n;
                p += l;
        }
        dst[o] = '\0';
        return dst;
}

/* Whether a string holds nothing log_escape() would change. */
static bool log_is_clean(const char *s) {
        const unsigned char *p = (const unsigned char *) s, *end = p + strlen(s);

        while (p < end) {
                size_t l;

                if (*p >= 0x20 && *p < 0x7f) {
                        p++;
                        continue;
                }
                l = utf8_len(p, (size_t) (end - p));
                if (l <= 1 || code_point_is_control(utf8_code_point(p, l)))
                        return false;
                p += l;
        }
        return true;
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
                char e[sizeof(f[0])];

                if (ctx->rpc_method)
                        ADDF("RPC_METHOD=%s", log_escape(e, sizeof(e), ctx->rpc_method));
                if (ctx->client_pid > 0) {
                        ADDF("CLIENT_PID=%d", (int) ctx->client_pid);
                        ADDF("CLIENT_UID=%u", (unsigned) ctx->client_uid);
                }
                if (ctx->client_comm)
                        ADDF("CLIENT_COMM=%s", log_escape(e, sizeof(e), ctx->client_comm));
                if (ctx->runner_id)
                        ADDF("RUNNER_ID=%s", log_escape(e, sizeof(e), ctx->runner_id));
                if (ctx->job_name)
                        ADDF("JOB_NAME=%s", log_escape(e, sizeof(e), ctx->job_name));
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
        char prefix[256] = "", e[sizeof(prefix)];
        size_t p = 0;

        if (ctx) {
                if (ctx->rpc_method)
                        prefix_append(prefix, sizeof(prefix), &p, "%s", log_escape(e, sizeof(e), ctx->rpc_method));
                if (ctx->client_pid > 0)
                        prefix_append(prefix, sizeof(prefix), &p, "pid=%d uid=%u",
                                      (int) ctx->client_pid, (unsigned) ctx->client_uid);
                if (ctx->client_comm)
                        prefix_append(prefix, sizeof(prefix), &p, "comm=%s",
                                      log_escape(e, sizeof(e), ctx->client_comm));
                if (ctx->runner_id)
                        prefix_append(prefix, sizeof(prefix), &p, "runner=%s",
                                      log_escape(e, sizeof(e), ctx->runner_id));
                if (ctx->job_name)
                        prefix_append(prefix, sizeof(prefix), &p, "job=%s",
                                      log_escape(e, sizeof(e), ctx->job_name));
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
        /* every byte of a message may become a 4-byte escape */
        char buf[2048], escaped[4 * sizeof(buf)];
        const char *msg = buf;
        int saved_errno = errno;

        if (error < 0)
                error = -error;
        if (!log_would_log(level))
                return -error;

        /* %m prints the error we were given, not whatever errno holds. */
        errno = error;
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        errno = saved_errno;
        /* escaped whole, not argument by argument: no call site can forget it */
        if (!log_is_clean(buf))
                msg = log_escape(escaped, sizeof(escaped), buf);

#if HAVE_LIBSYSTEMD
        if (log_target == LOG_TARGET_JOURNAL) {
                log_to_journal(level, error, ctx, file, line, func, msg);
                return -error;
        }
#else
        (void) file;
        (void) line;
        (void) func;
#endif
        log_to_stderr(level, ctx, msg);
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
