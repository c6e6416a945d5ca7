/* SPDX-License-Identifier: MIT */
/*
 * avatar-sim control API under /_sim (loopback only, no auth): fault injection, planned job
 * failures, compatibility answer, token expiry, results clean-up, the job clock, counters.
 * The full list is in the comment at the top of sim-main.c and in README.md.
 */
#pragma once

#include "sim-http.h"

/* Routes a /_sim request. */
void control_route(Req *r);
/* Applies the faults that match r: sets r->latency_ms, r->hold_id, r->action, r->body_fault,
 * r->fault. */
void fault_match(Sim *sim, Req *r);
/* Answers r as its injected fault says (status, 429 with retry-after). */
void fault_reply(Req *r);
/* Sets the /check_client answer back to the command-line one. Returns 0 or -ENOMEM. */
int compat_reset(Sim *sim);
/* Forgets every fault (release what they hold first: see http_release()). */
void faults_clear(Sim *sim);
/* A request held by the rule id is no longer held (released, or its client went away). */
void fault_hold_end(Sim *sim, unsigned id);
