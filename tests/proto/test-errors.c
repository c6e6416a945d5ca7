/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the error classes (proto/errors.c): the table, the errno mapping and the
 * shape of error objects.
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "jsonrpc.h"
#include "macro.h"

/* Cleanup helper for json-c references. */
static void jo_putp(json_object **p) {
        if (*p)
                json_object_put(*p);
}

/* The published classes: any change here is a protocol change. */
static const RpcErrorInfo expected[] = {
        { RPC_PARSE_ERROR,           "parse_error",           NULL, false },
        { RPC_INVALID_REQUEST,       "invalid_request",       NULL, false },
        { RPC_METHOD_NOT_FOUND,      "method_not_found",      NULL, false },
        { RPC_INVALID_PARAMS,        "invalid_params",        NULL, false },
        { RPC_INTERNAL_ERROR,        "internal_error",        NULL, false },
        { RPC_UPSTREAM_UNREACHABLE,  "upstream_unreachable",  NULL, true  },
        { RPC_UPSTREAM_HTTP_ERROR,   "upstream_http_error",   NULL, false },
        { RPC_CREDENTIAL_REJECTED,   "credential_rejected",   NULL, false },
        { RPC_INCOMPATIBLE,          "incompatible",          NULL, false },
        { RPC_PERMISSION_DENIED,     "permission_denied",     NULL, false },
        { RPC_NOT_FOUND,             "not_found",             NULL, false },
        { RPC_AMBIGUOUS,             "ambiguous",             NULL, false },
        { RPC_RATE_LIMITED,          "rate_limited",          NULL, true  },
        { RPC_OVERLOADED,            "overloaded",            NULL, true  },
        { RPC_CONFLICT,              "conflict",              NULL, false },
        { RPC_INVALID_STATE,         "invalid_state",         NULL, false },
        { RPC_TIMEOUT,               "timeout",               NULL, true  },
        { RPC_NOT_AUTHENTICATED,     "not_authenticated",     NULL, false },
        { RPC_JOB_FAILED,            "job_failed",            NULL, false },
        { RPC_STORAGE_ERROR,         "storage_error",         NULL, false },
        { RPC_IO_ERROR,              "io_error",              NULL, false },
        { RPC_SHUTTING_DOWN,         "shutting_down",         NULL, true  },
        { RPC_UPSTREAM_BAD_RESPONSE, "upstream_bad_response", NULL, false },
        { RPC_STATE_NOT_SAVED,       "state_not_saved",       NULL, true  },
        { RPC_JOBS_LOST,             "jobs_lost",             NULL, false },
};

START_TEST(test_table_complete) {
        const RpcErrorInfo *t;
        size_t n = 0;

        t = rpc_error_table(&n);
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_eq(n, ELEMENTSOF(expected));

        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                const RpcErrorInfo *info = rpc_error_info(expected[i].code);

                ck_assert_int_eq(info->code, expected[i].code);
                ck_assert_str_eq(info->name, expected[i].name);
                ck_assert_int_eq(info->retryable, expected[i].retryable);
                ck_assert_ptr_nonnull(info->message);
                ck_assert_uint_gt(strlen(info->message), 0);
                ck_assert_ptr_eq(rpc_error_info_by_name(expected[i].name), info);
                /* table order is the enum's order */
                ck_assert_int_eq(t[i].code, expected[i].code);
        }
}
END_TEST

START_TEST(test_table_unique_snake_case) {
        const RpcErrorInfo *t;
        size_t n = 0;

        t = rpc_error_table(&n);
        for (size_t i = 0; i < n; i++) {
                for (const char *p = t[i].name; *p; p++)
                        ck_assert(islower((unsigned char) *p) || *p == '_');
                for (size_t k = 0; k < i; k++) {
                        ck_assert_int_ne(t[i].code, t[k].code);
                        ck_assert_str_ne(t[i].name, t[k].name);
                }
                /* our own classes live in the reserved server range */
                if (t[i].code > -32600)
                        ck_assert(t[i].code >= -32099 && t[i].code <= -32000);
        }
}
END_TEST

START_TEST(test_spec_messages) {
        ck_assert_str_eq(rpc_error_info(RPC_PARSE_ERROR)->message, "Parse error");
        ck_assert_str_eq(rpc_error_info(RPC_INVALID_REQUEST)->message, "Invalid Request");
        ck_assert_str_eq(rpc_error_info(RPC_METHOD_NOT_FOUND)->message, "Method not found");
        ck_assert_str_eq(rpc_error_info(RPC_INVALID_PARAMS)->message, "Invalid params");
        ck_assert_str_eq(rpc_error_info(RPC_INTERNAL_ERROR)->message, "Internal error");
}
END_TEST

START_TEST(test_unknown) {
        ck_assert_int_eq(rpc_error_info(12345)->code, RPC_INTERNAL_ERROR);
        ck_assert_int_eq(rpc_error_info(-32050)->code, RPC_INTERNAL_ERROR);
        ck_assert_ptr_null(rpc_error_info_by_name("no_such_class"));
        ck_assert_ptr_null(rpc_error_info_by_name(""));
        ck_assert_ptr_null(rpc_error_info_by_name(NULL));
}
END_TEST

START_TEST(test_errno_mapping) {
        static const struct {
                int r;
                int code;
        } map[] = {
                { -EINVAL, RPC_INVALID_PARAMS },
                { -EDOM, RPC_INVALID_PARAMS },
                { -ERANGE, RPC_INVALID_PARAMS },
                { -ENOENT, RPC_NOT_FOUND },
                { -ENXIO, RPC_NOT_FOUND },
                { -ESRCH, RPC_NOT_FOUND },
                { -EACCES, RPC_PERMISSION_DENIED },
                { -EPERM, RPC_PERMISSION_DENIED },
                { -ENOTUNIQ, RPC_AMBIGUOUS },
                { -EEXIST, RPC_CONFLICT },
                { -EBUSY, RPC_CONFLICT },
                { -EALREADY, RPC_CONFLICT },
                { -ECONNREFUSED, RPC_UPSTREAM_UNREACHABLE },
                { -ECONNRESET, RPC_UPSTREAM_UNREACHABLE },
                { -EHOSTUNREACH, RPC_UPSTREAM_UNREACHABLE },
                { -ENETUNREACH, RPC_UPSTREAM_UNREACHABLE },
                { -ENETDOWN, RPC_UPSTREAM_UNREACHABLE },
                { -EHOSTDOWN, RPC_UPSTREAM_UNREACHABLE },
                { -ECONNABORTED, RPC_UPSTREAM_UNREACHABLE },
                { -EPIPE, RPC_UPSTREAM_UNREACHABLE },
                { -ETIMEDOUT, RPC_TIMEOUT },
                { -ETIME, RPC_TIMEOUT },
                { -EPROTO, RPC_UPSTREAM_HTTP_ERROR },
                { -EBADMSG, RPC_UPSTREAM_BAD_RESPONSE },
                { -EKEYREJECTED, RPC_CREDENTIAL_REJECTED },
                { -EKEYEXPIRED, RPC_CREDENTIAL_REJECTED },
                { -ENOKEY, RPC_NOT_AUTHENTICATED },
                { -EPROTONOSUPPORT, RPC_INCOMPATIBLE },
                { -EUSERS, RPC_OVERLOADED },
                { -EAGAIN, RPC_OVERLOADED },
                { -ENOBUFS, RPC_OVERLOADED },
                { -EMFILE, RPC_OVERLOADED },
                { -ESTALE, RPC_INVALID_STATE },
                { -ENOTCONN, RPC_INVALID_STATE },
                { -EINPROGRESS, RPC_INVALID_STATE },
                { -ECANCELED, RPC_SHUTTING_DOWN },
                { -ESHUTDOWN, RPC_SHUTTING_DOWN },
                { -EIO, RPC_IO_ERROR },
                { -EBADF, RPC_IO_ERROR },
                { -ENOSPC, RPC_IO_ERROR },
                { -EFBIG, RPC_IO_ERROR },
                { -EREMOTEIO, RPC_STORAGE_ERROR },
                { -ECHILD, RPC_JOB_FAILED },
                { -EMSGSIZE, RPC_UPSTREAM_BAD_RESPONSE },
                /* everything else */
                { -ENOMEM, RPC_INTERNAL_ERROR },
                { -E2BIG, RPC_INTERNAL_ERROR },
                { -ENOTDIR, RPC_INTERNAL_ERROR },
                { -9999, RPC_INTERNAL_ERROR },
                { 0, RPC_INTERNAL_ERROR },
                { 1, RPC_INTERNAL_ERROR },
                { EINVAL, RPC_INTERNAL_ERROR },
        };

        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                ck_assert_msg(rpc_error_code_from_errno(map[i].r) == map[i].code,
                              "errno %d: got %d, expected %d", map[i].r,
                              rpc_error_code_from_errno(map[i].r), map[i].code);
}
END_TEST

/* Serializes o compactly (the wire form without the newline). */
static const char *wire(json_object *o) {
        return json_object_to_json_string_ext(o, JSONRPC_WIRE_FLAGS);
}

START_TEST(test_object_default) {
        _cleanup_(jo_putp) json_object *e = NULL;

        e = rpc_error_object_new(RPC_METHOD_NOT_FOUND, NULL, NULL);
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(wire(e), "{\"code\":-32601,\"message\":\"Method not found\","
                         "\"data\":{\"name\":\"method_not_found\",\"retryable\":false}}");
}
END_TEST

START_TEST(test_object_message_and_data) {
        _cleanup_(jo_putp) json_object *e = NULL, *e2 = NULL, *e3 = NULL;
        json_object *data;

        data = json_object_new_object();
        json_object_object_add(data, "retry_after_ms", json_object_new_int(1500));
        e = rpc_error_object_new(RPC_RATE_LIMITED, "Slow down", data);
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(wire(e), "{\"code\":-32007,\"message\":\"Slow down\",\"data\":"
                         "{\"retry_after_ms\":1500,\"name\":\"rate_limited\",\"retryable\":true}}");

        /* Members the caller set are kept. */
        data = json_object_new_object();
        json_object_object_add(data, "retryable", json_object_new_boolean(false));
        e2 = rpc_error_object_new(RPC_TIMEOUT, NULL, data);
        ck_assert_str_eq(wire(e2), "{\"code\":-32011,\"message\":\"Timeout\",\"data\":"
                         "{\"retryable\":false,\"name\":\"timeout\"}}");

        /* A non-object data is kept under "detail". */
        e3 = rpc_error_object_new(RPC_NOT_FOUND, NULL, json_object_new_string("job 7"));
        ck_assert_str_eq(wire(e3), "{\"code\":-32005,\"message\":\"Not found\",\"data\":"
                         "{\"detail\":\"job 7\",\"name\":\"not_found\",\"retryable\":false}}");
}
END_TEST

START_TEST(test_object_every_class) {
        const RpcErrorInfo *t;
        size_t n;

        t = rpc_error_table(&n);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(jo_putp) json_object *e = rpc_error_object_new(t[i].code, NULL, NULL);
                json_object *v, *d;

                ck_assert_ptr_nonnull(e);
                ck_assert_int_eq(json_object_object_length(e), 3);
                ck_assert(json_object_object_get_ex(e, "code", &v));
                ck_assert_int_eq(json_object_get_int(v), t[i].code);
                ck_assert(json_object_object_get_ex(e, "message", &v));
                ck_assert_str_eq(json_object_get_string(v), t[i].message);
                ck_assert(json_object_object_get_ex(e, "data", &d));
                ck_assert(json_object_object_get_ex(d, "name", &v));
                ck_assert_str_eq(json_object_get_string(v), t[i].name);
                ck_assert(json_object_object_get_ex(d, "retryable", &v));
                ck_assert(json_object_is_type(v, json_type_boolean));
                ck_assert_int_eq(json_object_get_boolean(v), t[i].retryable);
        }
}
END_TEST

START_TEST(test_object_unknown_code) {
        _cleanup_(jo_putp) json_object *e = NULL;

        /* Never an undocumented code on the wire. */
        e = rpc_error_object_new(-31999, NULL, NULL);
        ck_assert_str_eq(wire(e), "{\"code\":-32603,\"message\":\"Internal error\","
                         "\"data\":{\"name\":\"internal_error\",\"retryable\":false}}");
}
END_TEST

/* The errors suite. */
static Suite *errors_suite(void) {
        Suite *s = suite_create("errors");
        TCase *tc;

        tc = tcase_create("table");
        tcase_add_test(tc, test_table_complete);
        tcase_add_test(tc, test_table_unique_snake_case);
        tcase_add_test(tc, test_spec_messages);
        tcase_add_test(tc, test_unknown);
        tcase_add_test(tc, test_errno_mapping);
        suite_add_tcase(s, tc);

        tc = tcase_create("object");
        tcase_add_test(tc, test_object_default);
        tcase_add_test(tc, test_object_message_and_data);
        tcase_add_test(tc, test_object_every_class);
        tcase_add_test(tc, test_object_unknown_code);
        suite_add_tcase(s, tc);

        return s;
}

/* Runs the suite; the exit status tells meson whether every check passed. */
int main(void) {
        SRunner *sr = srunner_create(errors_suite());
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
