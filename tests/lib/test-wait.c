/* SPDX-License-Identifier: MIT */
/* The one place where the C tests wait: see test-wait.h. */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <time.h>

#include "test-wait.h"

unsigned test_time_scale(void) {
        static unsigned scale;
        const char *s;
        char *end;
        unsigned long v;

        if (scale > 0)
                return scale;
        scale = 1;
        s = getenv("AVATARD_TEST_TIME_SCALE");
        if (s && *s) {
                errno = 0;
                v = strtoul(s, &end, 10);
                if (errno == 0 && *end == '\0' && v >= 1 && v <= 1000)
                        scale = (unsigned) v;
        }
        return scale;
}

uint64_t test_deadline_ms(uint64_t ms) {
        return ms * test_time_scale();
}

uint64_t test_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* Sleeps ms milliseconds, resuming after signals. */
static void pause_ms(uint64_t ms) {
        struct timespec ts = { .tv_sec = (time_t) (ms / 1000u),
                               .tv_nsec = (long) (ms % 1000u) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* libevent: the deadline of a wait passed. */
static void on_deadline(evutil_socket_t fd, short what, void *userdata) {
        bool *expired = userdata;

        (void) fd;
        (void) what;
        *expired = true;
}

/* Runs base until cond holds (cond may be NULL: never) or the scaled deadline. */
static bool run_until(struct event_base *base, TestCondition cond, void *arg, uint64_t max_ms) {
        uint64_t ms = test_deadline_ms(max_ms);
        struct timeval tv = { .tv_sec = (time_t) (ms / 1000u),
                              .tv_usec = (suseconds_t) (ms % 1000u) * 1000 };
        bool expired = false, held;
        struct event *deadline = evtimer_new(base, on_deadline, &expired);

        if (!deadline)
                abort();
        evtimer_add(deadline, &tv);
        while (!(held = cond && cond(arg)) && !expired)
                if (event_base_loop(base, EVLOOP_ONCE) < 0)
                        break;
        event_free(deadline);
        return held;
}

bool test_wait_until(struct event_base *base, TestCondition cond, void *arg, uint64_t max_ms) {
        return run_until(base, cond, arg, max_ms);
}

void test_run_quiet(struct event_base *base, uint64_t ms) {
        (void) run_until(base, NULL, NULL, ms);
}

bool test_poll_until(TestCondition cond, void *arg, uint64_t max_ms) {
        uint64_t deadline = test_now_ms() + test_deadline_ms(max_ms), step = 1;

        while (!cond(arg)) {
                if (test_now_ms() >= deadline)
                        return false;
                pause_ms(step);
                if (step < 50)
                        step *= 2;
        }
        return true;
}

void test_fake_pause_ms(uint64_t ms) {
        pause_ms(ms);
}
