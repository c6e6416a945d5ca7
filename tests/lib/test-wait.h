/* SPDX-License-Identifier: MIT */
/*
 * The one place where the C tests wait. A test waits for the event it needs — a callback, a
 * state, a count — never for time: test_wait_until() runs the event loop until a condition
 * holds, and its deadline only bounds a hang. Deadlines are multiplied by
 * $AVATARD_TEST_TIME_SCALE (set by scripts/test for the sanitizer and valgrind legs), so a
 * slow leg waits longer but asserts the same things.
 *
 * Nothing else in tests/ may sleep or arm a timer: scripts/test rejects sleep(), usleep(),
 * nanosleep() and evtimer_add() anywhere but here and in the simulators' fault injection.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct event_base;

/*
 * How much earlier than asked a timer may be seen to fire: libevent reads the coarse
 * monotonic clock (a few milliseconds of resolution) and test_now_ms() the precise one. A
 * lower bound on the time a feature waited (a Retry-After, a cooldown, a deadline) allows
 * this much; it never needs to allow for a slow machine, which only makes waits longer.
 */
#define TEST_TIMER_SLACK_MS 10u

/* Generous default bound of a wait (milliseconds, before scaling). */
#define TEST_WAIT_MS 30000u

/* A condition waited for; `arg` is the caller's. */
typedef bool (*TestCondition)(void *arg);

/* The factor of $AVATARD_TEST_TIME_SCALE (at least 1). */
unsigned test_time_scale(void);

/* ms scaled by test_time_scale(). */
uint64_t test_deadline_ms(uint64_t ms);

/* Monotonic milliseconds. */
uint64_t test_now_ms(void);

/*
 * Runs `base` until cond(arg) holds, checking after every loop iteration (and before the
 * first). Returns true when it holds, false when max_ms (scaled) passed first. Callbacks may
 * still call event_base_loopbreak(): the condition is checked again and the wait goes on.
 */
bool test_wait_until(struct event_base *base, TestCondition cond, void *arg, uint64_t max_ms);

/*
 * Runs `base` for ms milliseconds (scaled), whatever happens: only for checking that nothing
 * more happens once the event a test waited for has been seen (a cancelled request never
 * calls back). It never triggers the step under test.
 */
void test_run_quiet(struct event_base *base, uint64_t ms);

/*
 * Without an event loop (threads, child processes): polls cond(arg) with a short, growing
 * pause until it holds or max_ms (scaled) passed.
 */
bool test_poll_until(TestCondition cond, void *arg, uint64_t max_ms);

/*
 * A pause that is part of what a fake peer does, not of a test's waiting: a scripted
 * server that answers late or a slow reader. Unscaled.
 */
void test_fake_pause_ms(uint64_t ms);
