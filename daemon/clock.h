/* SPDX-License-Identifier: MIT */
/*
 * The daemon's clocks: monotonic microseconds for deadlines, ages and intervals, wall-clock
 * microseconds for what is shown to people, and the struct timeval libevent's timers take.
 */
#pragma once

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#include "macro.h"

/* Microseconds on the given clock. */
static inline uint64_t clock_usec(clockid_t id) {
        struct timespec ts;

        (void) clock_gettime(id, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000u;
}

/* Monotonic time in microseconds. */
static inline uint64_t now_usec(void) {
        return clock_usec(CLOCK_MONOTONIC);
}

/* Wall-clock time in microseconds. */
static inline uint64_t now_realtime_usec(void) {
        return clock_usec(CLOCK_REALTIME);
}

/* Microseconds as a struct timeval, for libevent timers. */
static inline struct timeval usec_to_timeval(uint64_t usec) {
        return (struct timeval) {
                .tv_sec = (time_t) (usec / USEC_PER_SEC),
                .tv_usec = (suseconds_t) (usec % USEC_PER_SEC),
        };
}
