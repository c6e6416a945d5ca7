/* SPDX-License-Identifier: MIT */
#include "json-util.h"
#include "jsonc-helpers.h"
#include "macro.h"

/* A string member, or NULL. */
const char *json_str(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* Whether an array holds a string. */
bool json_array_has_str(json_object *a, const char *s) {
        for (size_t i = 0; i < json_array_len(a); i++)
                if (streq_ptr(json_object_get_string(json_object_array_get_idx(a, i)), s))
                        return true;
        return false;
}

/* Deep copy or NULL. */
json_object *json_copy(json_object *o) {
        json_object *n = NULL;

        if (json_object_deep_copy(o, &n, NULL) < 0)
                return NULL;
        return n;
}
