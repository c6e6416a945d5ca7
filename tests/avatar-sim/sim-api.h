/* SPDX-License-Identifier: MIT */
/*
 * avatar-sim API: everything under /api (and GET /), as avatar-api.md §2–§5 describe it:
 * authentication, compatibility, users, API keys, jobs, resources, results and /access.
 */
#pragma once

#include "sim-http.h"

/* Routes an API request: sets r->route, r->handler, and authenticates it (r->user, r->auth). */
void api_route(Req *r);
