/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the OpenRPC document support (proto/openrpc.c): loading and its failures,
 * method lookup and accessors, and params validation against the fixture
 * tests/proto/data/test.openrpc.json, which uses every supported schema keyword.
 *
 * JSON in this file is written with single quotes for readability; dq() turns them into
 * double quotes (the test inputs hold no single quote of their own).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "jsonrpc.h"
#include "macro.h"
#include "openrpc.h"

/* The fixture and the daemon's own document, compiled in by the build. */
extern const char test_openrpc_fixture[];
extern const size_t test_openrpc_fixture_len;
extern const char openrpc_document_text[];
extern const size_t openrpc_document_text_len;

/* Cleanup helper for json-c references. */
static void jo_putp(json_object **p) {
        if (*p)
                json_object_put(*p);
}

/* Cleanup helper for documents. */
static void openrpc_freep(OpenRpc **o) {
        openrpc_free(*o);
}

#define _cleanup_json_ _cleanup_(jo_putp)
#define _cleanup_openrpc_ _cleanup_(openrpc_freep)

/* Returns a copy of s with every ' turned into ". */
static char *dq(const char *s) {
        char *d = strdup(s);

        ck_assert_ptr_nonnull(d);
        for (char *p = d; *p; p++)
                if (*p == '\'')
                        *p = '"';
        return d;
}

/* Parses single-quoted test JSON. */
static json_object *js(const char *s) {
        _cleanup_free_ char *t = dq(s);
        json_object *o = NULL;

        ck_assert_int_eq(json_parse_strict(t, strlen(t), 64, &o), 0);
        return o;
}

/* The compact text of a value. */
static const char *text(json_object *o) {
        return json_object_to_json_string_ext(o, JSONRPC_WIRE_FLAGS);
}

/* Loads the fixture. */
static OpenRpc *fixture(void) {
        OpenRpc *o = NULL;
        const char *error = NULL;
        int r;

        r = openrpc_load(test_openrpc_fixture, test_openrpc_fixture_len, &o, &error);
        ck_assert_msg(r == 0, "fixture does not load: %d %s", r, strna(error));
        return o;
}

/* The fixture's method by name. */
static const OpenRpcMethod *method(const OpenRpc *o, const char *name) {
        const OpenRpcMethod *m = openrpc_method(o, name);

        ck_assert_msg(m != NULL, "no method %s", name);
        return m;
}

/* Asserts that params (NULL: absent) are valid and become `expected`. */
static void valid(const char *name, const char *params, const char *expected) {
        _cleanup_openrpc_ OpenRpc *o = fixture();
        _cleanup_json_ json_object *p = params ? js(params) : NULL, *out = NULL, *want = js(expected);
        OpenRpcError e = {};
        int r;

        r = openrpc_validate_params(o, method(o, name), p, &out, &e);
        ck_assert_msg(r == 0, "%s %s: %d %s", name, strna(params), r, strna(e.message));
        ck_assert_str_eq(text(out), text(want));
        openrpc_error_done(&e);
}

/* Asserts that params are refused with exactly this param, path and message. */
static void invalid(const char *name, const char *params, const char *param, const char *path,
                    const char *message) {
        _cleanup_openrpc_ OpenRpc *o = fixture();
        _cleanup_json_ json_object *p = params ? js(params) : NULL, *out = NULL;
        OpenRpcError e = {};

        ck_assert_msg(openrpc_validate_params(o, method(o, name), p, &out, &e) == -EINVAL,
                      "%s %s: accepted", name, strna(params));
        ck_assert_ptr_null(out);
        ck_assert_str_eq(e.message, message);
        if (param)
                ck_assert_str_eq(strna(e.param), param);
        else
                ck_assert_ptr_null(e.param);
        ck_assert_str_eq(e.path, path);
        openrpc_error_done(&e);
        ck_assert_ptr_null(e.message);
}

/* ---- the fixture: lookup and accessors ---- */

START_TEST(test_fixture_methods) {
        _cleanup_openrpc_ OpenRpc *o = fixture();
        static const char *const names[] = {
                "test.count", "test.report", "test.tables", "test.kinds", "test.empty", "rpc.discover",
        };
        static const char *const roles[] = { "read", "operate", "admin", "admin", "admin", "public" };
        static const bool fds[] = { false, true, false, false, false, false };
        json_object *v;

        ck_assert_uint_eq(openrpc_n_methods(o), ELEMENTSOF(names));
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const OpenRpcMethod *m = openrpc_method_at(o, i);

                ck_assert_str_eq(openrpc_method_name(m), names[i]);
                ck_assert_ptr_eq(openrpc_method(o, names[i]), m);
                ck_assert_str_eq(openrpc_method_role(m), roles[i]);
                ck_assert_int_eq(openrpc_method_accepts_fds(m), fds[i]);
        }
        ck_assert_ptr_null(openrpc_method_at(o, ELEMENTSOF(names)));
        ck_assert_ptr_null(openrpc_method(o, "test"));
        ck_assert_ptr_null(openrpc_method(o, "test.count2"));
        ck_assert_ptr_null(openrpc_method(o, ""));
        ck_assert_ptr_null(openrpc_method(o, NULL));
        ck_assert_str_eq(openrpc_method_summary(openrpc_method(o, "test.count")),
                         "An integer with bounds and a default.");
        ck_assert_str_eq(openrpc_method_summary(openrpc_method(o, "test.empty")), "");

        ck_assert(json_object_object_get_ex(openrpc_document(o), "openrpc", &v));
        ck_assert_str_eq(json_object_get_string(v), "1.2.6");
        ck_assert_ptr_null(openrpc_free(NULL));
}
END_TEST

START_TEST(test_lookup_many) {
        _cleanup_openrpc_ OpenRpc *o = NULL;
        _cleanup_free_ char *doc = NULL;
        size_t n = 0, cap = 1u << 16;
        const char *error = NULL;

        /* 300 methods in a scrambled order: every one is found, near misses are not. */
        doc = malloc(cap);
        ck_assert_ptr_nonnull(doc);
        n += (size_t) snprintf(doc + n, cap - n, "{\"openrpc\":\"1.0.0\",\"info\":{\"title\":\"t\",\"version\":\"1\"},\"methods\":[");
        for (unsigned i = 0; i < 300; i++)
                n += (size_t) snprintf(doc + n, cap - n, "%s{\"name\":\"area%u.verb%u\",\"params\":[],"
                                       "\"result\":{\"name\":\"r\",\"schema\":true}}",
                                       i > 0 ? "," : "", (i * 7919) % 300, i % 3);
        n += (size_t) snprintf(doc + n, cap - n, "]}");
        ck_assert_uint_lt(n, cap);

        ck_assert_int_eq(openrpc_load(doc, n, &o, &error), 0);
        ck_assert_uint_eq(openrpc_n_methods(o), 300);
        for (unsigned i = 0; i < 300; i++) {
                const OpenRpcMethod *m = openrpc_method_at(o, i);
                char name[64];

                ck_assert_ptr_eq(openrpc_method(o, openrpc_method_name(m)), m);
                (void) snprintf(name, sizeof(name), "%s.", openrpc_method_name(m));
                ck_assert_ptr_null(openrpc_method(o, name));
                /* an unclassified method is admin-only */
                ck_assert_str_eq(openrpc_method_role(m), "admin");
        }
        ck_assert_ptr_null(openrpc_method(o, "area0"));
        ck_assert_ptr_null(openrpc_method(o, "zzz"));
        ck_assert_ptr_null(openrpc_method(o, "a"));
}
END_TEST

START_TEST(test_daemon_document_loads) {
        _cleanup_openrpc_ OpenRpc *o = NULL;
        const char *error = NULL;
        int r;

        r = openrpc_load(openrpc_document_text, openrpc_document_text_len, &o, &error);
        ck_assert_msg(r == 0, "proto/avatard.openrpc.json does not load: %d %s", r, strna(error));
        for (size_t i = 0; i < openrpc_n_methods(o); i++) {
                const char *role = openrpc_method_role(openrpc_method_at(o, i));

                ck_assert(streq(role, "read") || streq(role, "operate") ||
                          streq(role, "admin") || streq(role, "public"));
        }
}
END_TEST

/* ---- params: structure, unknown, missing, defaults ---- */

START_TEST(test_count) {
        valid("test.count", "{'count':5}", "{'count':5}");
        valid("test.count", NULL, "{'count':10}");
        valid("test.count", "{}", "{'count':10}");
        valid("test.count", "[7]", "{'count':7}");
        valid("test.count", "[]", "{'count':10}");
        valid("test.count", "{'count':5.0}", "{'count':5.0}");
        valid("test.count", "{'count':100}", "{'count':100}");
        valid("test.count", "{'count':1}", "{'count':1}");

        invalid("test.count", "[1,2]", NULL, "", "too many params: 2 given, the method takes at most 1");
        invalid("test.count", "{'count':'x'}", "count", "", "invalid param 'count': expected integer, got string");
        invalid("test.count", "{'count':5.5}", "count", "", "invalid param 'count': expected integer, got number");
        invalid("test.count", "{'count':1e300}", "count", "", "invalid param 'count': expected integer, got number");
        invalid("test.count", "{'count':null}", "count", "", "invalid param 'count': expected integer, got null");
        invalid("test.count", "{'count':true}", "count", "", "invalid param 'count': expected integer, got boolean");
        invalid("test.count", "{'count':{}}", "count", "", "invalid param 'count': expected integer, got object");
        invalid("test.count", "{'count':[]}", "count", "", "invalid param 'count': expected integer, got array");
        invalid("test.count", "{'count':0}", "count", "", "invalid param 'count': must be >= 1");
        invalid("test.count", "{'count':-7}", "count", "", "invalid param 'count': must be >= 1");
        invalid("test.count", "{'count':101}", "count", "", "invalid param 'count': must be <= 100");
        invalid("test.count", "{'count':18446744073709551615}", "count", "", "invalid param 'count': must be <= 100");
        invalid("test.count", "{'cont':1}", "cont", "", "unknown param 'cont' (known: count)");
        /* unknown params are reported before anything else */
        invalid("test.count", "{'count':'x','cont':1}", "cont", "", "unknown param 'cont' (known: count)");
}
END_TEST

START_TEST(test_params_not_container) {
        _cleanup_openrpc_ OpenRpc *o = fixture();
        _cleanup_json_ json_object *p = json_object_new_string("x"), *out = NULL;
        OpenRpcError e = {};

        ck_assert_int_eq(openrpc_validate_params(o, method(o, "test.count"), p, &out, &e), -EINVAL);
        ck_assert_str_eq(e.message, "params must be an object or an array");
        ck_assert_ptr_null(e.param);
        openrpc_error_done(&e);
}
END_TEST

START_TEST(test_report) {
        valid("test.report", "{'set_name':'abc'}",
              "{'set_name':'abc','report_language':'en','options':{'verbose':false,'tags':['a']},'note':null}");
        valid("test.report", "{'note':'n','k':3,'set_name':'a_1','report_language':'fr','ratio':1.49,'options':{}}",
              "{'set_name':'a_1','report_language':'fr','k':3,'ratio':1.49,'options':{},'note':'n'}");
        valid("test.report", "{'set_name':'abc','ratio':1}",
              "{'set_name':'abc','report_language':'en','ratio':1,'options':{'verbose':false,'tags':['a']},'note':null}");
        /* by position on an "either" method */
        valid("test.report", "['abc','fr']",
              "{'set_name':'abc','report_language':'fr','options':{'verbose':false,'tags':['a']},'note':null}");

        invalid("test.report", "{}", "set_name", "", "missing required param 'set_name'");
        invalid("test.report", NULL, "set_name", "", "missing required param 'set_name'");
        invalid("test.report", "{'x':1}", "x", "",
                "unknown param 'x' (known: set_name, report_language, k, ratio, options, note)");
        invalid("test.report", "{'set_name':''}", "set_name", "",
                "invalid param 'set_name': must be at least 1 character long");
        invalid("test.report", "{'set_name':'abcdefghi'}", "set_name", "",
                "invalid param 'set_name': must be at most 8 characters long");
        invalid("test.report", "{'set_name':'Abc'}", "set_name", "",
                "invalid param 'set_name': must match the pattern '^[a-z][a-z0-9_]*$'");
        invalid("test.report", "{'set_name':'ab\\u0000c'}", "set_name", "",
                "invalid param 'set_name': must match the pattern '^[a-z][a-z0-9_]*$'");
        invalid("test.report", "{'set_name':'abc','report_language':'de'}", "report_language", "",
                "invalid param 'report_language': must be one of \"en\", \"fr\"");
        invalid("test.report", "{'set_name':'abc','k':0}", "k", "", "invalid param 'k': must be >= 1");
        invalid("test.report", "{'set_name':'abc','ratio':0}", "ratio", "", "invalid param 'ratio': must be > 0");
        invalid("test.report", "{'set_name':'abc','ratio':-0.0}", "ratio", "", "invalid param 'ratio': must be > 0");
        invalid("test.report", "{'set_name':'abc','ratio':-1e-300}", "ratio", "", "invalid param 'ratio': must be > 0");
        valid("test.report", "{'set_name':'abc','ratio':1e-300,'options':{}}",
              "{'set_name':'abc','report_language':'en','ratio':1e-300,'options':{},'note':null}");
        invalid("test.report", "{'set_name':'abc','ratio':1.5}", "ratio", "", "invalid param 'ratio': must be < 1.5");
        invalid("test.report", "{'set_name':'abc','ratio':'x'}", "ratio", "",
                "invalid param 'ratio': expected number, got string");
        invalid("test.report", "{'set_name':'abc','options':{'verbose':1}}", "options", "/verbose",
                "invalid param 'options' at /verbose: expected boolean, got integer");
        invalid("test.report", "{'set_name':'abc','options':{'x':1}}", "options", "",
                "invalid param 'options': unknown member 'x' (known: verbose, tags)");
        invalid("test.report", "{'set_name':'abc','note':1}", "note", "",
                "invalid param 'note': expected string or null, got integer");
        /* document order decides which error comes first, not the order in the request */
        invalid("test.report", "{'k':0,'set_name':'Bad'}", "set_name", "",
                "invalid param 'set_name': must match the pattern '^[a-z][a-z0-9_]*$'");
}
END_TEST

START_TEST(test_defaults_are_copies) {
        _cleanup_openrpc_ OpenRpc *o = fixture();
        _cleanup_json_ json_object *p = js("{'set_name':'abc'}"), *out1 = NULL, *out2 = NULL;
        const OpenRpcMethod *m = method(o, "test.report");
        json_object *options, *tags;
        OpenRpcError e = {};

        ck_assert_int_eq(openrpc_validate_params(o, m, p, &out1, &e), 0);
        ck_assert(json_object_object_get_ex(out1, "options", &options));
        ck_assert(json_object_object_get_ex(options, "tags", &tags));
        json_object_array_add(tags, json_object_new_string("changed"));
        json_object_object_add(options, "verbose", json_object_new_boolean(true));

        ck_assert_int_eq(openrpc_validate_params(o, m, p, &out2, &e), 0);
        ck_assert_str_eq(text(out2),
                         "{\"set_name\":\"abc\",\"report_language\":\"en\","
                         "\"options\":{\"verbose\":false,\"tags\":[\"a\"]},\"note\":null}");
        /* the given params are shared, not copied */
        ck_assert(json_object_object_get_ex(out2, "set_name", &tags));
        ck_assert(json_object_object_get_ex(p, "set_name", &options));
        ck_assert_ptr_eq(tags, options);
}
END_TEST

START_TEST(test_validate_without_result) {
        _cleanup_openrpc_ OpenRpc *o = fixture();
        _cleanup_json_ json_object *p = js("{'count':3}");

        ck_assert_int_eq(openrpc_validate_params(o, method(o, "test.count"), p, NULL, NULL), 0);
        ck_assert_int_eq(openrpc_validate_params(o, method(o, "test.empty"), p, NULL, NULL), -EINVAL);
}
END_TEST

/* ---- params: arrays, objects, formats ---- */

START_TEST(test_tables) {
        valid("test.tables", "{'tables':[{'name':'a','fd':1}]}", "{'tables':[{'name':'a','fd':1}]}");
        valid("test.tables", "{'tables':[{'name':'a','data':''},{'name':'b','fd':0}],"
              "'ids':['123e4567-e89b-12d3-a456-426614174000','123E4567-E89B-12D3-A456-426614174000']}",
              "{'tables':[{'name':'a','data':''},{'name':'b','fd':0}],"
              "'ids':['123e4567-e89b-12d3-a456-426614174000','123E4567-E89B-12D3-A456-426614174000']}");

        invalid("test.tables", "[[]]", NULL, "", "params must be given by name (an object), not by position");
        invalid("test.tables", "{}", "tables", "", "missing required param 'tables'");
        invalid("test.tables", "{'tables':[]}", "tables", "", "invalid param 'tables': must have at least 1 item");
        invalid("test.tables", "{'tables':[{'name':'a','fd':1},{'name':'b','fd':2},{'name':'c','fd':3},{'name':'d','fd':4}]}",
                "tables", "", "invalid param 'tables': must have at most 3 items");
        invalid("test.tables", "{'tables':{}}", "tables", "", "invalid param 'tables': expected array, got object");
        invalid("test.tables", "{'tables':[{'name':'a'}]}", "tables", "/0",
                "invalid param 'tables' at /0: does not match any of the allowed alternatives");
        invalid("test.tables", "{'tables':[{'name':'a','fd':1,'data':'x'}]}", "tables", "/0",
                "invalid param 'tables' at /0: matches more than one of the alternatives it must match exactly one of");
        invalid("test.tables", "{'tables':[{'name':'a','fd':1,'extra':1}]}", "tables", "/0",
                "invalid param 'tables' at /0: unknown member 'extra' (known: name, fd, data)");
        invalid("test.tables", "{'tables':[{'fd':1}]}", "tables", "/0",
                "invalid param 'tables' at /0: missing required member 'name'");
        invalid("test.tables", "{'tables':[{'name':5,'fd':1}]}", "tables", "/0/name",
                "invalid param 'tables' at /0/name: expected string, got integer");
        invalid("test.tables", "{'tables':[{'name':'a','fd':1},{'name':'B','fd':1}]}", "tables", "/1/name",
                "invalid param 'tables' at /1/name: must match the pattern '^[a-z][a-z0-9_]*$'");
        invalid("test.tables", "{'tables':[{'name':'a','fd':-1}]}", "tables", "/0/fd",
                "invalid param 'tables' at /0/fd: must be >= 0");
        invalid("test.tables", "{'tables':[{'name':'a','fd':1}],'ids':['123e4567e89b12d3a456426614174000']}",
                "ids", "/0", "invalid param 'ids' at /0: must be a UUID (8-4-4-4-12 hexadecimal digits)");
        invalid("test.tables", "{'tables':[{'name':'a','fd':1}],'ids':['123e4567-e89b-12d3-a456-42661417400g']}",
                "ids", "/0", "invalid param 'ids' at /0: must be a UUID (8-4-4-4-12 hexadecimal digits)");
        invalid("test.tables", "{'tables':[{'name':'a','fd':1}],'ids':['123e4567-e89b-12d3-a456-4266141740000']}",
                "ids", "/0", "invalid param 'ids' at /0: must be a UUID (8-4-4-4-12 hexadecimal digits)");
        invalid("test.tables", "{'tables':[{'name':'a','fd':1}],'ids':['123e4567+e89b-12d3-a456-426614174000']}",
                "ids", "/0", "invalid param 'ids' at /0: must be a UUID (8-4-4-4-12 hexadecimal digits)");
        invalid("test.tables", "{'tables':[{'name':'a','fd':1}],'ids':['00000000-0000-0000-0000-000000000001',"
                "'00000000-0000-0000-0000-000000000002','00000000-0000-0000-0000-000000000001']}",
                "ids", "", "invalid param 'ids': must not contain duplicates (items 0 and 2 are equal)");
}
END_TEST

START_TEST(test_kinds) {
        valid("test.kinds", "['fast']", "{'mode':'fast'}");
        valid("test.kinds", "{'mode':'fast'}", "{'mode':'fast'}");  /* by name is always accepted */
        valid("test.kinds", "['fast','x',null,7,'ok']", "{'mode':'fast','value':'x','either':null,'both':7,'other':'ok'}");
        valid("test.kinds", "{'value':3.0,'either':'\\u00e9\\u00e9\\u00e9'}", "{'value':3.0,'either':'\\u00e9\\u00e9\\u00e9'}");
        valid("test.kinds", "{'anything':{'x':[1]},'nullable':null,'weights':{'a':0.5,'b':1}}",
              "{'weights':{'a':0.5,'b':1},'nullable':null,'anything':{'x':[1]}}");
        valid("test.kinds", "{'labels':[[1,2],[2,1],'1',1,true,false,null,{'a':1},{'a':2}]}",
              "{'labels':[[1,2],[2,1],'1',1,true,false,null,{'a':1},{'a':2}]}");
        valid("test.kinds", "{'big':9007199254740993,'level':100}", "{'level':100,'big':9007199254740993}");
        /* json-c keeps integers above INT64_MAX as uint64: they are still distinct values */
        valid("test.kinds", "{'labels':[9223372036854775807,18446744073709551615,9223372036854775806]}",
              "{'labels':[9223372036854775807,18446744073709551615,9223372036854775806]}");
        invalid("test.kinds", "{'big':18446744073709551615}", "big", "",
                "invalid param 'big': must be <= 9007199254740993");
        /* integers and doubles compare exactly: 2^53 + 2 as a double is above 2^53 + 1 */
        invalid("test.kinds", "{'big':9007199254740994.0}", "big", "",
                "invalid param 'big': must be <= 9007199254740993");
        valid("test.kinds", "{'big':9007199254740992.0}", "{'big':9007199254740992.0}");

        invalid("test.kinds", "{'mode':'slow'}", "mode", "", "invalid param 'mode': must be \"fast\"");
        invalid("test.kinds", "{'value':true}", "value", "", "invalid param 'value': expected string or integer, got boolean");
        invalid("test.kinds", "{'value':1.5}", "value", "", "invalid param 'value': expected string or integer, got number");
        invalid("test.kinds", "{'either':'abcd'}", "either", "", "invalid param 'either': must be at most 3 characters long");
        invalid("test.kinds", "{'either':'\\u00e9\\u00e9\\u00e9\\u00e9'}", "either", "",
                "invalid param 'either': must be at most 3 characters long");
        invalid("test.kinds", "{'either':5}", "either", "", "invalid param 'either': expected string or null, got integer");
        invalid("test.kinds", "{'both':3}", "both", "", "invalid param 'both': must be >= 5");
        invalid("test.kinds", "{'both':'x'}", "both", "", "invalid param 'both': expected integer, got string");
        invalid("test.kinds", "{'other':'forbidden'}", "other", "",
                "invalid param 'other': is not allowed (it matches the schema under \"not\")");
        invalid("test.kinds", "{'other':13.0}", "other", "",
                "invalid param 'other': is not allowed (it matches the schema under \"not\")");
        invalid("test.kinds", "{'tree':{'value':1,'children':[{'value':2,'children':[{'value':'x'}]}]}}",
                "tree", "/children/0/children/0/value",
                "invalid param 'tree' at /children/0/children/0/value: expected integer, got string");
        invalid("test.kinds", "{'tree':{'children':[{'leaf':true}]}}", "tree", "/children/0",
                "invalid param 'tree' at /children/0: unknown member 'leaf' (known: value, children)");
        invalid("test.kinds", "{'weights':{'a/b':2}}", "weights", "/a~1b",
                "invalid param 'weights' at /a~1b: must be <= 1");
        invalid("test.kinds", "{'weights':{'t~x':-1}}", "weights", "/t~0x",
                "invalid param 'weights' at /t~0x: must be >= 0");
        invalid("test.kinds", "{'nullable':1}", "nullable", "", "invalid param 'nullable': expected string or null, got integer");
        invalid("test.kinds", "{'nothing':1}", "nothing", "", "invalid param 'nothing': is not allowed");
        invalid("test.kinds", "{'labels':[1,1.0]}", "labels", "",
                "invalid param 'labels': must not contain duplicates (items 0 and 1 are equal)");
        invalid("test.kinds", "{'labels':['x',{'a':1,'b':[2]},{'b':[2],'a':1}]}", "labels", "",
                "invalid param 'labels': must not contain duplicates (items 1 and 2 are equal)");
        invalid("test.kinds", "{'labels':[null,true,null]}", "labels", "",
                "invalid param 'labels': must not contain duplicates (items 0 and 2 are equal)");
        invalid("test.kinds", "{'level':101}", "level", "", "invalid param 'level': must be <= 100");
        invalid("test.kinds", "{'level':'x'}", "level", "", "invalid param 'level': expected number, got string");
        invalid("test.kinds", "{'big':9007199254740994}", "big", "", "invalid param 'big': must be <= 9007199254740993");
        invalid("test.kinds", "['fast',1,null,5,1,{},{},null,1,1,[],1,1,1]", NULL, "",
                "too many params: 14 given, the method takes at most 13");
}
END_TEST

START_TEST(test_empty) {
        valid("test.empty", "{}", "{}");
        valid("test.empty", "[]", "{}");
        valid("test.empty", NULL, "{}");
        invalid("test.empty", "{'a':1}", "a", "", "unknown param 'a' (the method takes no params)");
        invalid("test.empty", "[1]", NULL, "", "too many params: 1 given, the method takes 0");
}
END_TEST

START_TEST(test_long_names_cut) {
        _cleanup_free_ char *p1 = NULL, *p2 = NULL, *want1 = NULL, *want2 = NULL;
        char x[201], e[81], ecut[65];

        memset(x, 'x', 200);
        x[200] = '\0';
        ck_assert_int_ge(asprintf(&p1, "{'%s':1}", x), 0);
        ck_assert_int_ge(asprintf(&want1, "unknown param '%.64s...' (known: count)", x), 0);
        invalid("test.count", p1, x, "", want1);

        /* 40 two-byte characters: the cut falls on a character boundary (32 of them). */
        for (size_t i = 0; i < 40; i++)
                memcpy(e + 2 * i, "\xc3\xa9", 2);
        e[80] = '\0';
        memcpy(ecut, e, 64);
        ecut[64] = '\0';
        ck_assert_int_ge(asprintf(&p2, "{'%s':1}", e), 0);
        ck_assert_int_ge(asprintf(&want2, "unknown param '%s...' (known: count)", ecut), 0);
        invalid("test.count", p2, e, "", want2);

        /* 63 ASCII bytes then a two-byte character straddling the limit */
        memset(x, 'y', 63);
        memcpy(x + 63, "\xc3\xa9zz", 5);
        free(p2);
        free(want2);
        ck_assert_int_ge(asprintf(&p2, "{'%s':1}", x), 0);
        ck_assert_int_ge(asprintf(&want2, "unknown param '%.63s...' (known: count)", x), 0);
        invalid("test.count", p2, x, "", want2);
}
END_TEST

/* Builds a tree value `depth` levels deep whose innermost value is `leaf`. */
static json_object *tree_new(unsigned depth, json_object *leaf) {
        json_object *t = json_object_new_object();

        json_object_object_add(t, "value", leaf);
        for (unsigned i = 1; i < depth; i++) {
                json_object *parent = json_object_new_object(), *children = json_object_new_array();

                json_object_array_add(children, t);
                json_object_object_add(parent, "children", children);
                t = parent;
        }
        return t;
}

/* Validates {"tree": tree} against test.kinds. */
static int validate_tree(json_object *tree, OpenRpcError *e) {
        _cleanup_openrpc_ OpenRpc *o = fixture();
        _cleanup_json_ json_object *p = json_object_new_object(), *out = NULL;

        json_object_object_add(p, "tree", tree);
        return openrpc_validate_params(o, method(o, "test.kinds"), p, &out, e);
}

START_TEST(test_validation_depth) {
        OpenRpcError e = {};

        /* Values built in memory are not bounded by the parser: the validator bounds itself. */
        ck_assert_int_eq(validate_tree(tree_new(20, json_object_new_int(1)), &e), 0);
        ck_assert_int_eq(validate_tree(tree_new(20, json_object_new_string("x")), &e), -EINVAL);
        ck_assert_str_eq(e.param, "tree");
        ck_assert_ptr_nonnull(strstr(e.message, ": expected integer, got string"));
        ck_assert_ptr_nonnull(strstr(e.path, "/children/0/children/0/"));
        openrpc_error_done(&e);

        ck_assert_int_eq(validate_tree(tree_new(500, json_object_new_int(1)), &e), -EINVAL);
        ck_assert_ptr_nonnull(strstr(e.message, "nested too deeply to validate"));
        openrpc_error_done(&e);
}
END_TEST

START_TEST(test_unique_items_large) {
        _cleanup_openrpc_ OpenRpc *o = fixture();
        _cleanup_json_ json_object *p = json_object_new_object();
        json_object *labels = json_object_new_array(), *out = NULL;
        OpenRpcError e = {};

        /* Sorting by hash keeps this linearithmic; pairwise comparison would be 2e8 steps. */
        for (int i = 0; i < 20000; i++)
                json_object_array_add(labels, i % 2 ? json_object_new_int(i) : json_object_new_double(i + 0.5));
        json_object_object_add(p, "labels", labels);
        ck_assert_int_eq(openrpc_validate_params(o, method(o, "test.kinds"), p, &out, &e), 0);
        json_object_put(out);

        json_object_array_add(labels, json_object_new_double(19999.0));
        ck_assert_int_eq(openrpc_validate_params(o, method(o, "test.kinds"), p, NULL, &e), -EINVAL);
        ck_assert_str_eq(e.message, "invalid param 'labels': must not contain duplicates (items 19999 and 20000 are equal)");
        openrpc_error_done(&e);
}
END_TEST

START_TEST(test_result) {
        _cleanup_openrpc_ OpenRpc *o = fixture();
        _cleanup_json_ json_object *five = json_object_new_int(5), *str = json_object_new_string("x"),
                *good = js("{'id':'123e4567-e89b-12d3-a456-426614174000','extra':1}"),
                *bad = js("{'id':'nope'}"), *none = js("{}");
        OpenRpcError e = {};

        ck_assert_int_eq(openrpc_validate_result(o, method(o, "test.count"), five, &e), 0);
        ck_assert_int_eq(openrpc_validate_result(o, method(o, "test.count"), str, &e), -EINVAL);
        ck_assert_str_eq(e.message, "invalid result: expected integer, got string");
        ck_assert_ptr_null(e.param);
        ck_assert_str_eq(e.path, "");
        openrpc_error_done(&e);

        ck_assert_int_eq(openrpc_validate_result(o, method(o, "test.report"), good, &e), 0);
        ck_assert_int_eq(openrpc_validate_result(o, method(o, "test.report"), bad, &e), -EINVAL);
        ck_assert_str_eq(e.message, "invalid result at /id: must be a UUID (8-4-4-4-12 hexadecimal digits)");
        ck_assert_str_eq(e.path, "/id");
        openrpc_error_done(&e);
        ck_assert_int_eq(openrpc_validate_result(o, method(o, "test.report"), none, &e), -EINVAL);
        ck_assert_str_eq(e.message, "invalid result: missing required member 'id'");
        openrpc_error_done(&e);

        ck_assert_int_eq(openrpc_validate_result(o, method(o, "test.kinds"), NULL, &e), 0);
        ck_assert_int_eq(openrpc_validate_result(o, method(o, "test.tables"), five, &e), -EINVAL);
        ck_assert_str_eq(e.message, "invalid result: must be true");
        openrpc_error_done(&e);
}
END_TEST

/* ---- load failures ---- */

#define HEAD "{'openrpc':'1.2.6','info':{'title':'t','version':'1'},"

/* A document with one method whose params and result are given. */
static char *doc_method(const char *params, const char *extra_method_members, const char *components) {
        char *s = NULL, *d;

        ck_assert_int_ge(asprintf(&s, HEAD "'methods':[{'name':'m','params':%s,"
                                  "'result':{'name':'r','schema':true}%s}]%s%s}",
                                  params, extra_method_members, components ? ",'components':" : "",
                                  components ?: ""), 0);
        d = dq(s);
        free(s);
        return d;
}

/* Asserts that a single-quoted document fails to load with r and exactly this message. */
static void load_fails_text(const char *doc, int r, const char *error) {
        OpenRpc *o = NULL;
        const char *e = NULL;

        ck_assert_int_eq(openrpc_load(doc, strlen(doc), &o, &e), r);
        ck_assert_ptr_null(o);
        ck_assert_msg(e && streq(e, error), "for %s:\n  got      %s\n  expected %s", doc, strna(e), error);
        /* ret_error is optional */
        ck_assert_int_eq(openrpc_load(doc, strlen(doc), &o, NULL), r);
}

/* Same, for a document written with single quotes. */
static void load_fails(const char *doc, const char *error) {
        _cleanup_free_ char *d = dq(doc);

        load_fails_text(d, -EINVAL, error);
}

/* Same, for a one-method document built by doc_method(). */
static void method_fails(const char *params, const char *extra, const char *components, const char *error) {
        _cleanup_free_ char *d = doc_method(params, extra, components);

        load_fails_text(d, -EINVAL, error);
}

/* Asserts that a one-method document loads. */
static void method_loads(const char *params, const char *extra, const char *components) {
        _cleanup_free_ char *d = doc_method(params, extra, components);
        _cleanup_openrpc_ OpenRpc *o = NULL;
        const char *e = NULL;

        ck_assert_msg(openrpc_load(d, strlen(d), &o, &e) == 0, "%s: %s", d, strna(e));
}

START_TEST(test_load_document_shape) {
        load_fails_text("{\"openrpc\":", -EBADMSG, "the document is not valid JSON");
        load_fails_text("{\"openrpc\":\"1.2.6\",\"info\":{\"title\":\"t\",\"version\":\"1\"},\"methods\":[NaN]}",
                        -EBADMSG, "the document is not valid JSON");
        load_fails("[]", "the document is not a JSON object");
        load_fails("{'info':{'title':'t','version':'1'},'methods':[]}", "missing \"openrpc\" or not a 1.x version");
        load_fails("{'openrpc':'2.0.0','info':{'title':'t','version':'1'},'methods':[]}",
                   "missing \"openrpc\" or not a 1.x version");
        load_fails("{'openrpc':1.2,'info':{'title':'t','version':'1'},'methods':[]}",
                   "missing \"openrpc\" or not a 1.x version");
        load_fails("{'openrpc':'1.2.6','methods':[]}",
                   "\"info\" must be an object with \"title\" and \"version\" strings");
        load_fails("{'openrpc':'1.2.6','info':{'title':'t'},'methods':[]}",
                   "\"info\" must be an object with \"title\" and \"version\" strings");
        load_fails(HEAD "'x':1}", "missing \"methods\" array");
        load_fails(HEAD "'methods':{}}", "missing \"methods\" array");
        load_fails(HEAD "'methods':[1]}", "a method must be an object");
        load_fails(HEAD "'methods':[],'components':[]}", "\"components\" must be an object");
        load_fails(HEAD "'methods':[],'components':{'schemas':[]}}", "\"components.schemas\" must be an object");
        load_fails(HEAD "'methods':[{'name':'a','params':[],'result':{'name':'r','schema':true}},"
                   "{'name':'b','params':[],'result':{'name':'r','schema':true}},"
                   "{'name':'a','params':[],'result':{'name':'r','schema':true}}]}",
                   "duplicate method name");
        load_fails(HEAD "'methods':[{'name':'','params':[],'result':{'name':'r','schema':true}}]}",
                   "a method needs a \"name\" of 1 to PROTO_METHOD_NAME_MAX bytes");
        load_fails(HEAD "'methods':[{'params':[],'result':{'name':'r','schema':true}}]}",
                   "a method needs a \"name\" of 1 to PROTO_METHOD_NAME_MAX bytes");
        load_fails(HEAD "'methods':[{'name':'m','result':{'name':'r','schema':true}}]}",
                   "a method needs a \"params\" array");
        load_fails(HEAD "'methods':[{'name':'m','params':[]}]}", "a method needs a \"result\"");
}
END_TEST

START_TEST(test_load_method_members) {
        method_loads("[]", "", NULL);
        method_loads("[]", ",'paramStructure':'by-position','x-avatard-role':'operate','x-avatard-fds':true,"
                     "'x-other':1,'tags':[],'examples':[]", NULL);
        method_fails("[]", ",'paramStructure':'named'", NULL,
                     "\"paramStructure\" must be \"by-name\", \"by-position\" or \"either\"");
        method_fails("[]", ",'x-avatard-role':'root'", NULL,
                     "\"x-avatard-role\" must be \"read\", \"operate\", \"admin\" or \"public\"");
        method_fails("[]", ",'x-avatard-role':1", NULL,
                     "\"x-avatard-role\" must be \"read\", \"operate\", \"admin\" or \"public\"");
        method_fails("[]", ",'x-avatard-fds':'yes'", NULL, "\"x-avatard-fds\" must be a boolean");
        method_fails("[{'name':'a','schema':true},{'name':'b','schema':true},{'name':'a','schema':{}}]", "", NULL,
                     "duplicate param name in a method");
        method_fails("[{'schema':true}]", "", NULL, "a content descriptor needs a non-empty \"name\"");
        method_fails("[{'name':'','schema':true}]", "", NULL, "a content descriptor needs a non-empty \"name\"");
        method_fails("[{'name':'a'}]", "", NULL, "a content descriptor needs a \"schema\"");
        method_fails("[{'name':'a','schema':true,'required':'yes'}]", "", NULL,
                     "a content descriptor's \"required\" must be a boolean");
        method_fails("[1]", "", NULL, "a content descriptor must be an object");
}
END_TEST

START_TEST(test_load_refs) {
        method_loads("[{'$ref':'#/components/contentDescriptors/P'}]", "",
                     "{'contentDescriptors':{'P':{'name':'p','schema':{'$ref':'#/components/schemas/S'}}},"
                     "'schemas':{'S':{'type':'string'}}}");
        method_fails("[{'name':'a','schema':{'$ref':'#/components/schemas/Missing'}}]", "",
                     "{'schemas':{'S':{}}}", "unresolvable $ref: no such entry in components.schemas");
        method_fails("[{'name':'a','schema':{'$ref':'#/components/schemas/Missing'}}]", "", NULL,
                     "unresolvable $ref: no such entry in components.schemas");
        method_fails("[{'name':'a','schema':{'$ref':'#/definitions/S'}}]", "", NULL,
                     "unresolvable $ref: a schema may only refer to \"#/components/schemas/NAME\"");
        method_fails("[{'name':'a','schema':{'$ref':'#/components/schemas/'}}]", "", NULL,
                     "unresolvable $ref: a schema may only refer to \"#/components/schemas/NAME\"");
        method_fails("[{'name':'a','schema':{'$ref':'#/components/schemas/A/b'}}]", "", NULL,
                     "unresolvable $ref: a schema may only refer to \"#/components/schemas/NAME\"");
        method_fails("[{'$ref':'#/components/contentDescriptors/Missing'}]", "", NULL,
                     "unresolvable $ref: no such entry in components.contentDescriptors");
        method_fails("[{'$ref':'#/components/schemas/S'}]", "", "{'schemas':{'S':{}}}",
                     "unresolvable $ref: a content descriptor may only refer to \"#/components/contentDescriptors/NAME\"");
        /* recursion through properties or items is fine; through same-instance keywords not */
        method_loads("[{'name':'a','schema':{'$ref':'#/components/schemas/L'}}]", "",
                     "{'schemas':{'L':{'type':'object','properties':{'next':{'$ref':'#/components/schemas/L'}}}}}");
        method_fails("[]", "", "{'schemas':{'A':{'$ref':'#/components/schemas/B'},'B':{'$ref':'#/components/schemas/A'}}}",
                     "a schema refers to itself without an intervening property or item ($ref/allOf/anyOf/oneOf/not cycle)");
        method_fails("[]", "", "{'schemas':{'A':{'allOf':[{'type':'string'},{'$ref':'#/components/schemas/A'}]}}}",
                     "a schema refers to itself without an intervening property or item ($ref/allOf/anyOf/oneOf/not cycle)");
        method_fails("[]", "", "{'schemas':{'A':{'not':{'$ref':'#/components/schemas/A'}}}}",
                     "a schema refers to itself without an intervening property or item ($ref/allOf/anyOf/oneOf/not cycle)");
        method_fails("[]", "", "{'schemas':{'A':{'$ref':'#/components/schemas/A'}}}",
                     "a schema refers to itself without an intervening property or item ($ref/allOf/anyOf/oneOf/not cycle)");
        method_fails("[]", "", "{'schemas':{'A':{'anyOf':[{'oneOf':[{'$ref':'#/components/schemas/A'}]}]}}}",
                     "a schema refers to itself without an intervening property or item ($ref/allOf/anyOf/oneOf/not cycle)");
}
END_TEST

/* Asserts that a one-param method whose schema is `schema` fails with `error`. */
static void schema_fails(const char *schema, const char *error) {
        _cleanup_free_ char *params = NULL;

        ck_assert_int_ge(asprintf(&params, "[{'name':'a','schema':%s}]", schema), 0);
        method_fails(params, "", NULL, error);
}

START_TEST(test_load_schema_keywords) {
        method_loads("[{'name':'a','schema':{'type':['string','null'],'enum':['x',null],'const':'x',"
                     "'minLength':0,'maxLength':3,'pattern':'^x$','format':'date-time','title':'t',"
                     "'description':'d','examples':['x'],'$comment':'c','deprecated':false,'x-y':{},"
                     "'default':'x'}},"
                     "{'name':'b','schema':{'type':'array','items':{'type':'integer'},'minItems':0,"
                     "'maxItems':2,'uniqueItems':false}},"
                     "{'name':'c','schema':{'type':'number','minimum':-1.5,'maximum':2,'exclusiveMinimum':-2,"
                     "'exclusiveMaximum':3}},"
                     "{'name':'d','schema':{'type':'object','properties':{},'required':[],"
                     "'additionalProperties':{'type':'string'}}},"
                     "{'name':'e','schema':{'oneOf':[true],'anyOf':[{}],'allOf':[{}],'not':false}}]", "", NULL);

        schema_fails("5", "a schema must be an object or a boolean");
        schema_fails("{'type':'int'}", "schema keyword \"type\" must name string, integer, number, boolean, "
                     "object, array or null, or be a non-empty array of distinct such names");
        schema_fails("{'type':[]}", "schema keyword \"type\" must name string, integer, number, boolean, "
                     "object, array or null, or be a non-empty array of distinct such names");
        schema_fails("{'type':['string','string']}", "schema keyword \"type\" must name string, integer, "
                     "number, boolean, object, array or null, or be a non-empty array of distinct such names");
        schema_fails("{'enum':[]}", "schema keyword \"enum\" must be a non-empty array");
        schema_fails("{'properties':[]}", "schema keyword \"properties\" must be an object");
        schema_fails("{'required':true}", "schema keyword \"required\" must be an array of distinct strings");
        schema_fails("{'required':['a','a']}", "schema keyword \"required\" must be an array of distinct strings");
        schema_fails("{'additionalProperties':1}", "a schema must be an object or a boolean");
        schema_fails("{'items':[{}]}", "schema keyword \"items\" must be one schema (the tuple form is not supported)");
        schema_fails("{'minItems':-1}", "schema keyword \"minItems\" must be a non-negative integer");
        schema_fails("{'maxItems':1.5}", "schema keyword \"maxItems\" must be a non-negative integer");
        schema_fails("{'uniqueItems':1}", "schema keyword \"uniqueItems\" must be a boolean");
        schema_fails("{'minimum':'1'}", "schema keyword \"minimum\" must be a number");
        schema_fails("{'maximum':null}", "schema keyword \"maximum\" must be a number");
        schema_fails("{'exclusiveMinimum':true}", "schema keyword \"exclusiveMinimum\" must be a number");
        schema_fails("{'exclusiveMaximum':false}", "schema keyword \"exclusiveMaximum\" must be a number");
        schema_fails("{'minLength':-1}", "schema keyword \"minLength\" must be a non-negative integer");
        schema_fails("{'maxLength':'3'}", "schema keyword \"maxLength\" must be a non-negative integer");
        schema_fails("{'pattern':5}", "schema keyword \"pattern\" must be a string");
        schema_fails("{'pattern':'([a-z'}", "a pattern is not a valid POSIX extended regular expression");
        schema_fails("{'pattern':'^\\\\d+$'}", "a pattern uses \\d or \\D, which POSIX regular expressions do not have; write [0-9]");
        schema_fails("{'format':1}", "schema keyword \"format\" must be a string");
        schema_fails("{'allOf':[]}", "schema keyword \"allOf\" must be a non-empty array");
        schema_fails("{'anyOf':{}}", "schema keyword \"anyOf\" must be a non-empty array");
        schema_fails("{'oneOf':[1]}", "a schema must be an object or a boolean");
        schema_fails("{'not':[]}", "a schema must be an object or a boolean");
        schema_fails("{'minimun':1}", "a schema uses a keyword outside the supported subset "
                     "(see openrpc.h; annotations may use an \"x-\" prefix)");
        schema_fails("{'multipleOf':2}", "a schema uses a keyword outside the supported subset "
                     "(see openrpc.h; annotations may use an \"x-\" prefix)");
        schema_fails("{'type':'object','properties':{'a':{'patternProperties':{}}}}",
                     "a schema uses a keyword outside the supported subset "
                     "(see openrpc.h; annotations may use an \"x-\" prefix)");
        schema_fails("{'type':'integer','default':'ten'}", "a param's default does not match its schema");
        schema_fails("{'type':'integer','minimum':5,'default':1}", "a param's default does not match its schema");
}
END_TEST

START_TEST(test_load_escaped_backslash_d) {
        /* "\\d" is an escaped backslash followed by a letter d: fine */
        method_loads("[{'name':'a','schema':{'pattern':'^a\\\\\\\\d$'}}]", "", NULL);
}
END_TEST

/* The openrpc suite. */
static Suite *openrpc_suite(void) {
        Suite *s = suite_create("openrpc");
        TCase *tc;

        tc = tcase_create("document");
        tcase_add_test(tc, test_fixture_methods);
        tcase_add_test(tc, test_lookup_many);
        tcase_add_test(tc, test_daemon_document_loads);
        suite_add_tcase(s, tc);

        tc = tcase_create("params");
        tcase_add_test(tc, test_count);
        tcase_add_test(tc, test_params_not_container);
        tcase_add_test(tc, test_report);
        tcase_add_test(tc, test_defaults_are_copies);
        tcase_add_test(tc, test_validate_without_result);
        tcase_add_test(tc, test_tables);
        tcase_add_test(tc, test_kinds);
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_long_names_cut);
        tcase_add_test(tc, test_validation_depth);
        tcase_add_test(tc, test_unique_items_large);
        tcase_add_test(tc, test_result);
        suite_add_tcase(s, tc);

        tc = tcase_create("load-failures");
        tcase_add_test(tc, test_load_document_shape);
        tcase_add_test(tc, test_load_method_members);
        tcase_add_test(tc, test_load_refs);
        tcase_add_test(tc, test_load_schema_keywords);
        tcase_add_test(tc, test_load_escaped_backslash_d);
        suite_add_tcase(s, tc);

        return s;
}

/* Runs the suite; the exit status tells meson whether every check passed. */
int main(void) {
        SRunner *sr = srunner_create(openrpc_suite());
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
