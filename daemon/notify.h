/* SPDX-License-Identifier: MIT */
/*
 * The service manager protocol (sd_notify): READY=1, RELOADING=1, STOPPING=1, STATUS=,
 * WATCHDOG=1. Every call is a no-op without libsystemd or outside a service ($NOTIFY_SOCKET
 * unset).
 */
#pragma once

#include <stdint.h>

#include "macro.h"

void notify_ready(void);
void notify_reloading(void);
void notify_stopping(void);
void notify_status(const char *format, ...) _printf_(1, 2);
void notify_watchdog(void);

/* The watchdog interval in microseconds when the service manager expects pings, else 0. */
uint64_t notify_watchdog_usec(void);

/* Sockets passed by the service manager: returns how many (starting at fd 3), 0 when none,
 * or -errno. */
int notify_listen_fds(void);

/* Whether fd is a listening Unix stream socket (for adopting it). */
int notify_is_unix_listener(int fd);
