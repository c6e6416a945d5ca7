/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "build-config.h"
#include "log.h"
#include "notify.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

/* Sends one notification line, ignoring failures (there is nobody to report them to). */
static void notify_send(const char *line) {
#if HAVE_LIBSYSTEMD
        int r = sd_notify(0, line);

        if (r < 0)
                log_debug_errno(r, "Failed to notify the service manager, ignoring: %m");
#else
        (void) line;
#endif
}

/* READY=1: listening and configured. */
void notify_ready(void) {
        notify_send("READY=1");
}

/* RELOADING=1 with the monotonic timestamp systemd expects (as Type=notify-reload documents):
 * MONOTONIC_USEC= lets the service manager match the message to the reload it asked for. */
void notify_reloading(void) {
        struct timespec ts;
        char buf[64];

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
                 (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000);
        notify_send(buf);
}

/* STOPPING=1. */
void notify_stopping(void) {
        notify_send("STOPPING=1");
}

/* STATUS=<one line>. */
void notify_status(const char *format, ...) {
        char buf[512];
        va_list ap;
        int n;

        n = snprintf(buf, sizeof(buf), "STATUS=");
        va_start(ap, format);
        (void) vsnprintf(buf + n, sizeof(buf) - (size_t) n, format, ap);
        va_end(ap);
        notify_send(buf);
}

/* WATCHDOG=1. */
void notify_watchdog(void) {
        notify_send("WATCHDOG=1");
}

/* The watchdog interval, or 0. */
uint64_t notify_watchdog_usec(void) {
#if HAVE_LIBSYSTEMD
        uint64_t usec = 0;

        if (sd_watchdog_enabled(0, &usec) > 0)
                return usec;
#endif
        return 0;
}

/* Number of sockets passed by the service manager. */
int notify_listen_fds(void) {
#if HAVE_LIBSYSTEMD
        return sd_listen_fds(1);
#else
        return 0;
#endif
}

/* Whether fd is a listening Unix stream socket. */
int notify_is_unix_listener(int fd) {
#if HAVE_LIBSYSTEMD
        return sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
#else
        (void) fd;
        return 0;
#endif
}
