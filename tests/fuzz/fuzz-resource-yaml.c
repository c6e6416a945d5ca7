/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for daemon/resource-yaml.c: parses the input as a resource YAML stream;
 * whatever parses must emit, parse back to an equal value and emit to the same text again
 * (the fixed point the export → import → export path relies on).
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resource-yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: parse; if accepted, emit, re-parse, compare, emit again. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_object *docs = NULL, *back = NULL;
        char *error = NULL, *text = NULL, *again = NULL;
        size_t len = 0, again_len = 0;
        int r;

        r = resource_yaml_parse((const char *) data, size, &docs, &error);
        if (r < 0) {
                /* Refused input always says why, on one line. */
                assert(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                assert(r == -ENOMEM || (error && !strchr(error, '\n')));
                free(error);
                return 0;
        }
        assert(!error);

        r = resource_yaml_emit(docs, &text, &len);
        /* Escapes can make the text longer than the input, never past the limit here. */
        assert(r == 0 || (r == -E2BIG && size > RESOURCE_YAML_MAX_BYTES / 4));
        if (r == 0) {
                assert(strlen(text) == len);
                r = resource_yaml_parse(text, len, &back, &error);
                assert(r == 0);
                assert(json_object_equal(docs, back));
                r = resource_yaml_emit(back, &again, &again_len);
                assert(r == 0);
                assert(again_len == len && memcmp(again, text, len) == 0);
        }

        free(again);
        free(text);
        free(error);
        json_object_put(back);
        json_object_put(docs);
        return 0;
}
