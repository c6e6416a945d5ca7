/* SPDX-License-Identifier: MIT */
/*
 * shape-proxy: a TCP proxy on loopback that limits each connection to a rate, as a WAN path
 * or a per-flow shaper does, in front of avatar-sim for scripts/bench's shaped upload. With
 * --cert and --key it terminates TLS itself (OpenSSL; HTTP/1.1 only, as ALPN is not offered)
 * and forwards plain bytes. Bench-only: one thread per connection, blocking I/O.
 *
 * Usage: shape-proxy --target HOST:PORT [--listen 127.0.0.1] [--port N] [--port-file F]
 *                    [--rate BYTES_PER_S] [--cert PEM --key PEM]
 *   --rate     per connection and per direction (default 25 MiB/s; suffixes K, M, G: KiB...)
 *   --port 0   any free port, written to --port-file once listening (temp file + rename)
 * Runs until SIGTERM or SIGINT. Prints at exit: "shape-proxy connections=N bytes_up=N
 * bytes_down=N max_concurrent=N" (max_concurrent: connections open at once, at most).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define CHUNK (64 * 1024)

static struct sockaddr_in target;
static uint64_t rate = 25u * 1024u * 1024u;
static SSL_CTX *tls;
static atomic_uint_fast64_t n_conns, bytes_up, bytes_down;
static atomic_uint open_now, open_max;
static volatile sig_atomic_t stop;

static void die(const char *what) {
        fprintf(stderr, "shape-proxy: %s: %s\n", what, strerror(errno));
        exit(1);
}

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* The budget of one direction: `sent` bytes may not have left before start + sent / rate. */
typedef struct Shaper {
        uint64_t start_ns;
        uint64_t sent;
} Shaper;

/* Waits until n more bytes fit in the rate. */
static void shape(Shaper *s, size_t n) {
        uint64_t due, now;

        s->sent += n;
        due = s->start_ns + (uint64_t) ((double) s->sent * 1e9 / (double) rate);
        now = now_ns();
        if (due > now) {
                struct timespec ts = { .tv_sec = (time_t) ((due - now) / 1000000000u),
                                       .tv_nsec = (long) ((due - now) % 1000000000u) };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
}

typedef struct Conn {
        int client;
        int server;
        SSL *ssl;
} Conn;

/* Reads from the client (TLS or plain). */
static ssize_t client_read(Conn *c, char *b, size_t n) {
        if (c->ssl) {
                int k = SSL_read(c->ssl, b, (int) n);
                return k > 0 ? k : -1;
        }
        return read(c->client, b, n);
}

/* Writes all to the client. */
static bool client_write(Conn *c, const char *b, size_t n) {
        while (n > 0) {
                ssize_t k;

                if (c->ssl) {
                        int w = SSL_write(c->ssl, b, (int) n);
                        k = w > 0 ? w : -1;
                } else
                        k = write(c->client, b, n);
                if (k < 0 && errno == EINTR && !c->ssl)
                        continue;
                if (k <= 0)
                        return false;
                b += k;
                n -= (size_t) k;
        }
        return true;
}

/* Writes all to the server. */
static bool server_write(int fd, const char *b, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, b, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return false;
                b += k;
                n -= (size_t) k;
        }
        return true;
}

/* One connection: both directions in one thread, each shaped to the rate. */
static void *conn_main(void *userdata) {
        Conn *c = userdata;
        Shaper up = { .start_ns = now_ns() }, down = up;
        char *buf = malloc(CHUNK);
        unsigned o = atomic_fetch_add(&open_now, 1) + 1, m = atomic_load(&open_max);

        while (o > m && !atomic_compare_exchange_weak(&open_max, &m, o))
                ;
        if (!buf)
                goto out;
        if (c->ssl && SSL_accept(c->ssl) != 1)
                goto out;
        up.start_ns = down.start_ns = now_ns();
        for (;;) {
                struct pollfd p[2] = { { .fd = c->client, .events = POLLIN },
                                       { .fd = c->server, .events = POLLIN } };
                bool pending = c->ssl && SSL_pending(c->ssl) > 0;
                ssize_t n;

                if (!pending && poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pending || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                        n = client_read(c, buf, CHUNK);
                        if (n <= 0)
                                break;
                        shape(&up, (size_t) n);
                        if (!server_write(c->server, buf, (size_t) n))
                                break;
                        atomic_fetch_add(&bytes_up, (uint64_t) n);
                }
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        n = read(c->server, buf, CHUNK);
                        if (n <= 0)
                                break;
                        shape(&down, (size_t) n);
                        if (!client_write(c, buf, (size_t) n))
                                break;
                        atomic_fetch_add(&bytes_down, (uint64_t) n);
                }
        }
out:
        if (c->ssl) {
                (void) SSL_shutdown(c->ssl);
                SSL_free(c->ssl);
        }
        close(c->client);
        close(c->server);
        free(buf);
        free(c);
        atomic_fetch_sub(&open_now, 1);
        return NULL;
}

static void on_signal(int sig) {
        (void) sig;
        stop = 1;
}

/* "25M" and the like: bytes with a binary suffix. */
static uint64_t parse_size(const char *s) {
        char *e;
        uint64_t v = strtoull(s, &e, 10);

        switch (*e) {
        case 'K': case 'k': v <<= 10; break;
        case 'M': case 'm': v <<= 20; break;
        case 'G': case 'g': v <<= 30; break;
        case '\0': break;
        default: fprintf(stderr, "shape-proxy: bad size %s\n", s); exit(2);
        }
        return v;
}

int main(int argc, char **argv) {
        const char *listen_addr = "127.0.0.1", *port_file = NULL, *cert = NULL, *key = NULL;
        const char *target_s = NULL;
        struct sockaddr_in a = { .sin_family = AF_INET };
        socklen_t al = sizeof(a);
        unsigned port = 0;
        struct sigaction sa = { .sa_handler = on_signal };
        sigset_t stop_signals;
        int lfd, one = 1;

        for (int i = 1; i < argc; i += 2) {
                const char *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (!v) {
                        fprintf(stderr, "shape-proxy: %s needs a value\n", argv[i]);
                        return 2;
                }
                if (strcmp(argv[i], "--target") == 0)
                        target_s = v;
                else if (strcmp(argv[i], "--listen") == 0)
                        listen_addr = v;
                else if (strcmp(argv[i], "--port") == 0)
                        port = (unsigned) strtoul(v, NULL, 10);
                else if (strcmp(argv[i], "--port-file") == 0)
                        port_file = v;
                else if (strcmp(argv[i], "--rate") == 0)
                        rate = parse_size(v);
                else if (strcmp(argv[i], "--cert") == 0)
                        cert = v;
                else if (strcmp(argv[i], "--key") == 0)
                        key = v;
                else {
                        fprintf(stderr, "shape-proxy: unknown option %s\n", argv[i]);
                        return 2;
                }
        }
        if (!target_s || rate == 0 || (!cert != !key)) {
                fprintf(stderr, "Usage: shape-proxy --target HOST:PORT [--listen ADDR] [--port N] "
                                "[--port-file F] [--rate BYTES_PER_S] [--cert PEM --key PEM]\n");
                return 2;
        }
        {
                char host[64];
                const char *colon = strrchr(target_s, ':');

                if (!colon || (size_t) (colon - target_s) >= sizeof(host)) {
                        fprintf(stderr, "shape-proxy: bad target %s\n", target_s);
                        return 2;
                }
                memcpy(host, target_s, (size_t) (colon - target_s));
                host[colon - target_s] = '\0';
                target.sin_family = AF_INET;
                target.sin_port = htons((uint16_t) strtoul(colon + 1, NULL, 10));
                if (inet_pton(AF_INET, host, &target.sin_addr) != 1) {
                        fprintf(stderr, "shape-proxy: bad target address %s\n", host);
                        return 2;
                }
        }
        if (cert) {
                tls = SSL_CTX_new(TLS_server_method());
                if (!tls || SSL_CTX_use_certificate_chain_file(tls, cert) != 1 ||
                    SSL_CTX_use_PrivateKey_file(tls, key, SSL_FILETYPE_PEM) != 1) {
                        ERR_print_errors_fp(stderr);
                        return 1;
                }
        }
        signal(SIGPIPE, SIG_IGN);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);

        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0)
                die("socket");
        (void) setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        a.sin_port = htons((uint16_t) port);
        if (inet_pton(AF_INET, listen_addr, &a.sin_addr) != 1) {
                fprintf(stderr, "shape-proxy: bad listen address %s\n", listen_addr);
                return 2;
        }
        if (bind(lfd, (struct sockaddr *) &a, sizeof(a)) < 0 || listen(lfd, 128) < 0 ||
            getsockname(lfd, (struct sockaddr *) &a, &al) < 0)
                die("listen");
        if (port_file) {
                char tmp[4096];
                FILE *f;

                snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
                f = fopen(tmp, "we");
                if (!f || fprintf(f, "%u\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0 ||
                    rename(tmp, port_file) < 0)
                        die(port_file);
        } else
                printf("%u\n", ntohs(a.sin_port));
        fflush(stdout);

        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGTERM);
        sigaddset(&stop_signals, SIGINT);
        while (!stop) {
                sigset_t old_mask;
                pthread_attr_t attr;
                pthread_t t;
                Conn *c;
                int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), sfd;

                if (cfd < 0) {
                        if (errno == EINTR)
                                continue;
                        die("accept");
                }
                sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (sfd < 0 || connect(sfd, (struct sockaddr *) &target, sizeof(target)) < 0) {
                        fprintf(stderr, "shape-proxy: connect to the target: %s\n", strerror(errno));
                        if (sfd >= 0)
                                close(sfd);
                        close(cfd);
                        continue;
                }
                (void) setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                (void) setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c = calloc(1, sizeof(*c));
                if (!c)
                        die("calloc");
                c->client = cfd;
                c->server = sfd;
                if (tls) {
                        c->ssl = SSL_new(tls);
                        if (!c->ssl || SSL_set_fd(c->ssl, cfd) != 1) {
                                ERR_print_errors_fp(stderr);
                                return 1;
                        }
                }
                atomic_fetch_add(&n_conns, 1);
                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                /* SIGTERM and SIGINT go to this thread only, the one in accept() */
                pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
                if (pthread_create(&t, &attr, conn_main, c) != 0)
                        die("pthread_create");
                pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
                pthread_attr_destroy(&attr);
        }
        if (port_file)
                (void) unlink(port_file);
        printf("shape-proxy connections=%" PRIu64 " bytes_up=%" PRIu64 " bytes_down=%" PRIu64
               " max_concurrent=%u\n", (uint64_t) atomic_load(&n_conns),
               (uint64_t) atomic_load(&bytes_up), (uint64_t) atomic_load(&bytes_down),
               atomic_load(&open_max));
        fflush(stdout);
        return 0;
}
