/* SPDX-License-Identifier: MIT */
/*
 * Logging: to the journal with structured fields when stderr is connected to journald
 * (JOURNAL_STREAM matches stderr) and libsystemd is available, to stderr otherwise.
 *
 * Rules (systemd's): log at most once, at the layer that decides; the *_errno variants
 * return -abs(error) so `return log_error_errno(r, "Failed to bind '%s': %m", path);` works;
 * %m prints strerror(abs(error)). Warnings that do not stop the operation end in ", ignoring".
 * Never pass a secret to a log call.
 *
 * Every message and every context field is escaped on its way out (log_escape()), whatever
 * its arguments: a table name, a set name, a method name, the peer's comm or a server's
 * message can hold a newline, an ESC or bytes that are not UTF-8, and none of them may start a
 * line of its own, drive the terminal a log is read on, or hide what follows.
 */
#pragma once

#include <stdarg.h>
#include <sys/types.h>
#include <syslog.h>

#include "macro.h"

/* Optional structured context. On the journal each set member becomes a field
 * (RPC_METHOD=, CLIENT_PID=, CLIENT_UID=, CLIENT_COMM=, RUNNER_ID=, JOB_NAME=); on stderr
 * they are printed as a bracketed prefix. Unset members: NULL / 0 (pid 0 means unset). */
typedef struct LogContext {
        const char *rpc_method;
        pid_t client_pid;
        uid_t client_uid;
        const char *client_comm;
        const char *runner_id;
        const char *job_name;
} LogContext;

typedef enum LogTarget {
        LOG_TARGET_AUTO,    /* journal when stderr is the journal, else stderr */
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
} LogTarget;

/* Sets the highest priority that is emitted (LOG_ERR .. LOG_DEBUG). */
void log_set_max_level(int level);
int log_get_max_level(void);

/* Parses "emerg".."debug" (also "warn", "error") or a number 0..7; returns the level or
 * -EINVAL. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/* Picks the backend. Call again after daemonizing or reopening stderr. */
void log_open(LogTarget target);

/* Copies src into dst (size bytes, at least 1; always terminated) with every control
 * character escaped: "\n", "\r", "\t", other C0 characters and DEL as "\xNN"; each byte that
 * is not part of well-formed UTF-8 as "\xNN"; the C1 controls, the line and paragraph
 * separators and the bidirectional overrides and isolates (U+0080..U+009F, U+2028, U+2029,
 * U+202A..U+202E, U+2066..U+2069) as "\uNNNN". A backslash stays as it is. What does not fit
 * is cut at a character or escape boundary. Returns dst. */
char *log_escape(char *dst, size_t size, const char *src);

/* Whether a message of this level would be emitted (to skip expensive formatting). */
bool log_would_log(int level);

/* The one emitter. Returns -abs(error) (or 0 when error is 0). */
int log_internal(int level, int error, const LogContext *ctx, const char *file, int line,
                 const char *func, const char *format, ...) _printf_(7, 8);
int log_internalv(int level, int error, const LogContext *ctx, const char *file, int line,
                  const char *func, const char *format, va_list ap) _printf_(7, 0);

#define log_full_errno_ctx(level, error, ctx, ...)                                          \
        ({                                                                                  \
                int _l = (level), _e = (error);                                             \
                log_would_log(_l) ? log_internal(_l, _e, (ctx), __FILE__, __LINE__,         \
                                                 __func__, __VA_ARGS__)                     \
                                  : (_e > 0 ? -_e : _e);                                    \
        })
#define log_full_errno(level, error, ...) log_full_errno_ctx(level, error, NULL, __VA_ARGS__)

#define log_debug(...) (void) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) (void) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) (void) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) (void) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) (void) log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_notice_errno(error, ...) log_full_errno(LOG_NOTICE, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, error, __VA_ARGS__)

#define log_ctx(level, ctx, ...) (void) log_full_errno_ctx(level, 0, ctx, __VA_ARGS__)

/* Log an out-of-memory condition and return -ENOMEM. */
#define log_oom() log_full_errno(LOG_ERR, ENOMEM, "Out of memory.")
