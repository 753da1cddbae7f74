/* SPDX-License-Identifier: Apache-2.0 */
/* JWT claims (JSON) <-> google.protobuf.Struct, for ValidateJWTSVIDResponse.claims.
 * Numbers become doubles; objects and arrays nest as struct_value / list_value. The
 * tree is malloc'd the way protobuf-c's own unpacker allocates, so
 * protobuf_c_message_free_unpacked(m, NULL) frees it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "workload_api_internal.h"

static int value_from_json(const json_t *j, unsigned depth, Google__Protobuf__Value **ret);

static int struct_from_json(const json_t *j, unsigned depth, Google__Protobuf__Struct **ret) {
        Google__Protobuf__Struct *s;
        const char *key;
        json_t *val;
        size_t n = json_object_size(j);
        int r = 0;

        if (depth > WAPI_STRUCT_DEPTH_MAX)
                return -E2BIG;
        s = malloc(sizeof(*s));
        if (!s)
                return -ENOMEM;
        google__protobuf__struct__init(s);
        if (n > 0) {
                s->fields = calloc(n, sizeof(*s->fields));
                if (!s->fields) {
                        free(s);
                        return -ENOMEM;
                }
        }
        json_object_foreach((json_t *) j, key, val) {
                Google__Protobuf__Struct__FieldsEntry *e;

                if (s->n_fields >= n)
                        break;
                e = malloc(sizeof(*e));
                if (!e) {
                        r = -ENOMEM;
                        break;
                }
                google__protobuf__struct__fields_entry__init(e);
                s->fields[s->n_fields++] = e;
                e->key = strdup(key);
                if (!e->key) {
                        r = -ENOMEM;
                        break;
                }
                r = value_from_json(val, depth + 1, &e->value);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                protobuf_c_message_free_unpacked(&s->base, NULL);
                return r;
        }
        *ret = s;
        return 0;
}

static int list_from_json(const json_t *j, unsigned depth, Google__Protobuf__ListValue **ret) {
        Google__Protobuf__ListValue *l;
        size_t n = json_array_size(j);
        int r = 0;

        if (depth > WAPI_STRUCT_DEPTH_MAX)
                return -E2BIG;
        l = malloc(sizeof(*l));
        if (!l)
                return -ENOMEM;
        google__protobuf__list_value__init(l);
        if (n > 0) {
                l->values = calloc(n, sizeof(*l->values));
                if (!l->values) {
                        free(l);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = value_from_json(json_array_get(j, i), depth + 1, &l->values[i]);
                if (r >= 0)
                        l->n_values++;
        }
        if (r < 0) {
                protobuf_c_message_free_unpacked(&l->base, NULL);
                return r;
        }
        *ret = l;
        return 0;
}

static int value_fill(Google__Protobuf__Value *v, const json_t *j, unsigned depth) {
        switch (json_typeof(j)) {
        case JSON_OBJECT:
                v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
                return struct_from_json(j, depth, &v->struct_value);
        case JSON_ARRAY:
                v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
                return list_from_json(j, depth, &v->list_value);
        case JSON_STRING:
                v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
                v->string_value = strdup(json_string_value(j));
                return v->string_value ? 0 : -ENOMEM;
        case JSON_INTEGER:
        case JSON_REAL:
                v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
                v->number_value = json_number_value(j);
                return 0;
        case JSON_TRUE:
        case JSON_FALSE:
                v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
                v->bool_value = json_is_true(j);
                return 0;
        case JSON_NULL:
                v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
                v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
                return 0;
        }
        return -EINVAL;
}

static int value_from_json(const json_t *j, unsigned depth, Google__Protobuf__Value **ret) {
        Google__Protobuf__Value *v;
        int r;

        v = malloc(sizeof(*v));
        if (!v)
                return -ENOMEM;
        google__protobuf__value__init(v);
        r = value_fill(v, j, depth);
        if (r < 0) {
                /* A failed struct/list left its member NULL: nothing else to free. */
                v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND__NOT_SET;
                protobuf_c_message_free_unpacked(&v->base, NULL);
                return r;
        }
        *ret = v;
        return 0;
}

int wapi_struct_from_json(const json_t *j, Google__Protobuf__Struct **ret) {
        if (!json_is_object(j) || !ret)
                return -EINVAL;
        return struct_from_json(j, 0, ret);
}

/* --- the reverse, for printing --- */

static json_t *value_to_json(const Google__Protobuf__Value *v, unsigned depth);

static json_t *struct_to_json(const Google__Protobuf__Struct *s, unsigned depth) {
        json_t *o;

        if (depth > WAPI_STRUCT_DEPTH_MAX)
                return NULL;
        o = json_object();
        for (size_t i = 0; o && i < s->n_fields; i++) {
                json_t *v = s->fields[i]->value ? value_to_json(s->fields[i]->value, depth + 1)
                                                : json_null();

                if (!v || json_object_set_new(o, s->fields[i]->key, v) < 0) {
                        json_decref(o);
                        return NULL;
                }
        }
        return o;
}

static json_t *list_to_json(const Google__Protobuf__ListValue *l, unsigned depth) {
        json_t *a;

        if (depth > WAPI_STRUCT_DEPTH_MAX)
                return NULL;
        a = json_array();
        for (size_t i = 0; a && i < l->n_values; i++)
                if (json_array_append_new(a, value_to_json(l->values[i], depth + 1)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *value_to_json(const Google__Protobuf__Value *v, unsigned depth) {
        double d;

        switch (v->kind_case) {
        case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
                return v->struct_value ? struct_to_json(v->struct_value, depth) : json_object();
        case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
                return v->list_value ? list_to_json(v->list_value, depth) : json_array();
        case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
                return json_string(v->string_value);
        case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
                d = v->number_value;
                /* Whole numbers print as integers (exp, iat). */
                if (d > -9e15 && d < 9e15 && d == (double) (json_int_t) d)
                        return json_integer((json_int_t) d);
                return json_real(d);
        case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
                return json_boolean(v->bool_value);
        default:
                return json_null();
        }
}

int wapi_struct_to_json(const Google__Protobuf__Struct *s, json_t **ret) {
        json_t *o;

        if (!s || !ret)
                return -EINVAL;
        o = struct_to_json(s, 0);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}
