/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by every component: cleanup attributes, ownership transfer,
 * argument checks and errno wrappers. The conventions follow systemd's: a fallible function
 * returns >= 0 on success and a negative errno on failure; constructors return through
 * `**ret`; destructors accept NULL and return NULL.
 */
#pragma once

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _public_ __attribute__((visibility("default")))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CLAMP(x, lo, hi) MIN(MAX((x), (lo)), (hi))
#define STRLEN(s) (sizeof(s) - 1)

/* Take ownership of a pointer: returns it and leaves NULL behind. */
#define TAKE_PTR(p)                          \
        ({                                   \
                typeof(p) _ptr_ = (p);       \
                (p) = NULL;                  \
                _ptr_;                       \
        })

/* Take ownership of a file descriptor: returns it and leaves -1 behind. */
#define TAKE_FD(fd)                          \
        ({                                   \
                int _fd_ = (fd);             \
                (fd) = -1;                   \
                _fd_;                        \
        })

/* Check an argument of a public-ish entry point; a failed check is a caller bug. */
#define assert_return(expr, r)               \
        do {                                 \
                if (_unlikely_(!(expr)))     \
                        return (r);          \
        } while (false)

/* Turn a libc "-1 and errno" result into a negative errno. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}
#define RET_NERRNO(expr)                     \
        ({                                   \
                long _r_ = (long) (expr);    \
                _r_ < 0 ? negative_errno() : (int) _r_; \
        })

/* Define `func##p(type *p)` that calls func(*p) when *p is not NULL, for _cleanup_. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)          \
        static inline void func##p(type *p) {            \
                if (*p)                                  \
                        func(*p);                        \
        }

/* Frees and returns NULL, for `p = mfree(p);`. */
static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void) close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Close a descriptor if valid and return -1, for `fd = safe_close(fd);`. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -1;
}

/* Zero memory that held a secret in a way the compiler cannot elide. */
static inline void explicit_bzero_safe(void *p, size_t n) {
        if (p && n > 0)
                explicit_bzero(p, n);
}

/* Free a string that held a secret after zeroing it. Returns NULL. */
static inline char *erase_and_free(char *s) {
        if (s) {
                explicit_bzero_safe(s, strlen(s));
                free(s);
        }
        return NULL;
}
static inline void erase_and_freep(char **p) {
        *p = erase_and_free(*p);
}
#define _cleanup_erase_free_ _cleanup_(erase_and_freep)

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)
#define isempty(s) (!(s) || (s)[0] == '\0')

static inline const char *strna(const char *s) {
        return s ? s : "n/a";
}

/* Return the suffix after `prefix` when s starts with it, else NULL. */
static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

/* True when s ends with suffix. */
static inline bool endswith(const char *s, const char *suffix) {
        size_t ls = strlen(s), lx = strlen(suffix);
        return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

#define USEC_PER_SEC ((uint64_t) 1000000ULL)
#define USEC_PER_MSEC ((uint64_t) 1000ULL)
#define MSEC_PER_SEC ((uint64_t) 1000ULL)
