/* SPDX-License-Identifier: MIT */
/*
 * fake-avatard SOCKET: the scripted fake daemon of fake-daemon.c as a program, for the shell
 * tests of avatarctl. Serves until SIGTERM or SIGINT.
 */
#include <signal.h>

#include "fake-daemon.h"
#include "macro.h"

/* Starts the fake at argv[1] and waits for a termination signal. */
int main(int argc, char *argv[]) {
        FakeDaemon *f = NULL;
        sigset_t ss;
        int sig, r;

        if (argc != 2) {
                fprintf(stderr, "usage: fake-avatard SOCKET\n");
                return EXIT_FAILURE;
        }

        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        /* Blocked before the thread starts, so only sigwait() sees them. */
        (void) pthread_sigmask(SIG_BLOCK, &ss, NULL);
        (void) signal(SIGPIPE, SIG_IGN);

        r = fake_daemon_start(argv[1], &f);
        if (r < 0) {
                fprintf(stderr, "fake-avatard: cannot listen on %s: %s\n", argv[1], strerror(-r));
                return EXIT_FAILURE;
        }
        (void) sigwait(&ss, &sig);
        fake_daemon_stop(f);
        return EXIT_SUCCESS;
}
