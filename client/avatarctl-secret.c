/* SPDX-License-Identifier: MIT */
/*
 * avatarctl: reading a secret from the terminal without echo, or from stdin.
 *
 * The terminal's settings are saved before echo is turned off; a signal that would end the
 * process while echo is off first restores them (the handler only calls tcsetattr(), write()
 * and raise(), all async-signal-safe), so an interrupted prompt never leaves the user's
 * terminal without echo.
 */
#include <signal.h>
#include <termios.h>

#include "avatarctl-secret.h"
#include "macro.h"

/* The settings to restore, valid while `termios_saved` is set. File-scope because the signal
 * handler needs them; only ever touched by the one thread avatarctl runs. */
static struct termios saved_termios;
static volatile sig_atomic_t termios_saved;

/* The signals whose default action ends the process, and that a user sends to a prompt. */
static const int restore_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* Restores the terminal, then lets the signal take its default effect (SA_RESETHAND already
 * reinstated it; raise() delivers it once the handler returns). */
static void on_signal(int sig) {
        if (termios_saved) {
                ssize_t k;

                (void) tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
                /* End the prompt's line; nothing to do if it cannot be written. */
                k = write(STDERR_FILENO, "\n", 1);
                (void) k;
        }
        (void) raise(sig);
}

/* Turns echo off on stdin (a terminal), keeping line editing and echoing the final newline.
 * Installs the restoring handlers; the old ones go to `old`. Returns 0 or -errno. */
static int echo_off(struct sigaction old[static ELEMENTSOF(restore_signals)]) {
        struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESETHAND };
        struct termios t;
        size_t i;

        if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return negative_errno();
        (void) sigemptyset(&sa.sa_mask);
        for (i = 0; i < ELEMENTSOF(restore_signals); i++)
                (void) sigaction(restore_signals[i], &sa, &old[i]);
        termios_saved = 1;

        t = saved_termios;
        t.c_lflag &= ~(tcflag_t) (ECHO | ECHOE | ECHOK);
        t.c_lflag |= ECHONL;
        /* TCSADRAIN: what the user typed ahead stays and is read as the answer. */
        if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) < 0)
                return negative_errno();
        return 0;
}

/* Restores the terminal and the signal handlers that echo_off() replaced. */
static void echo_restore(const struct sigaction old[static ELEMENTSOF(restore_signals)]) {
        size_t i;

        if (!termios_saved)
                return;
        (void) tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
        termios_saved = 0;
        for (i = 0; i < ELEMENTSOF(restore_signals); i++)
                (void) sigaction(restore_signals[i], &old[i], NULL);
}

/* read(2) that goes on after a signal. */
ssize_t ctl_read_retry(int fd, void *buf, size_t size) {
        for (;;) {
                ssize_t n = read(fd, buf, size);

                if (n >= 0 || errno != EINTR)
                        return n < 0 ? negative_errno() : n;
        }
}

/* Reads one line from stdin, byte by byte, into a new erasable buffer. */
static int read_line(char **ret) {
        _cleanup_erase_free_ char *buf = NULL;
        size_t len = 0;
        bool any = false;

        buf = malloc(CTL_SECRET_MAX + 1);
        if (!buf)
                return -ENOMEM;
        buf[0] = '\0';

        for (;;) {
                ssize_t n;
                char c;

                n = ctl_read_retry(STDIN_FILENO, &c, 1);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                any = true;
                if (c == '\n')
                        break;
                if (len >= CTL_SECRET_MAX) {
                        explicit_bzero(&c, sizeof(c));
                        return -EFBIG;
                }
                buf[len++] = c;
                buf[len] = '\0';
                explicit_bzero(&c, sizeof(c));
        }
        if (!any)
                return -ENODATA;
        if (len > 0 && buf[len - 1] == '\r')
                buf[--len] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Reads a secret line, with echo off on a terminal. */
int ctl_read_secret(const char *prompt, char **ret) {
        struct sigaction old[ELEMENTSOF(restore_signals)] = {};
        bool tty = isatty(STDIN_FILENO) > 0;
        int r;

        if (tty) {
                r = echo_off(old);
                if (r < 0) {
                        echo_restore(old);
                        return r;
                }
                if (prompt) {
                        (void) fputs(prompt, stderr);
                        (void) fflush(stderr);
                }
        }
        r = read_line(ret);
        if (tty) {
                echo_restore(old);
                /* ECHONL ended the line on Enter; end it on Ctrl-D too. */
                if (r == -ENODATA && prompt)
                        (void) fputc('\n', stderr);
        }
        return r;
}
