/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include <yaml.h>

#include "sim-yaml.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(yaml_parser_t *, yaml_parser_delete);

/* Frees the contents of one document summary. */
static void set_doc_done(SetDoc *d) {
        free(d->kind);
        free(d->name);
        free(d->display_name);
        free(d->url);
        free(d->schema);
        free(d->schema_ref);
        free(d->report_type);
        free(d->output_format);
        free(d->results_format);
        for (size_t i = 0; i < d->n_tables; i++) {
                free(d->tables[i].name);
                free(d->tables[i].volume);
                free(d->tables[i].file);
        }
        free(d->tables);
}

/* Frees the contents of a model. */
void resource_model_done(ResourceModel *m) {
        for (size_t i = 0; i < m->n_docs; i++)
                set_doc_done(&m->docs[i]);
        free(m->docs);
        m->docs = NULL;
        m->n_docs = 0;
}

/* The value node of key in a mapping node, or NULL. */
static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key) {
        if (!map || map->type != YAML_MAPPING_NODE)
                return NULL;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
             p++) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);
                if (k && k->type == YAML_SCALAR_NODE &&
                    k->data.scalar.length == strlen(key) &&
                    memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
                        return yaml_document_get_node(doc, p->value);
        }
        return NULL;
}

/* Follows a path of keys from a mapping node. */
static yaml_node_t *map_path(yaml_document_t *doc, yaml_node_t *n, const char *const *keys,
                             size_t n_keys) {
        for (size_t i = 0; n && i < n_keys; i++)
                n = map_get(doc, n, keys[i]);
        return n;
}

/* Copies a scalar node's text into *ret (NULL when n is not a scalar). Returns 0 or -ENOMEM. */
static int scalar_dup(yaml_node_t *n, char **ret) {
        *ret = NULL;
        if (!n || n->type != YAML_SCALAR_NODE)
                return 0;
        if (memchr(n->data.scalar.value, '\0', n->data.scalar.length))
                return 0;
        *ret = strndup((const char *) n->data.scalar.value, n->data.scalar.length);
        return *ret ? 0 : -ENOMEM;
}

/* Copies the scalar at a key path. */
static int path_dup(yaml_document_t *doc, yaml_node_t *root, char **ret, size_t n_keys, ...) {
        const char *keys[8];
        va_list ap;

        assert(n_keys <= ELEMENTSOF(keys));
        va_start(ap, n_keys);
        for (size_t i = 0; i < n_keys; i++)
                keys[i] = va_arg(ap, const char *);
        va_end(ap);
        return scalar_dup(map_path(doc, root, keys, n_keys), ret);
}

/* Reads spec.tables of an AvatarSchema document. */
static int parse_tables(yaml_document_t *doc, yaml_node_t *root, SetDoc *d) {
        static const char *const path[] = { "spec", "tables" };
        yaml_node_t *tables = map_path(doc, root, path, 2);
        size_t n;
        int r;

        if (!tables || tables->type != YAML_SEQUENCE_NODE)
                return 0;
        n = (size_t) (tables->data.sequence.items.top - tables->data.sequence.items.start);
        if (n > YAML_MAX_TABLES)
                return -E2BIG;
        d->tables = calloc(n ? n : 1, sizeof(SetTable));
        if (!d->tables)
                return -ENOMEM;
        for (yaml_node_item_t *it = tables->data.sequence.items.start;
             it < tables->data.sequence.items.top; it++) {
                yaml_node_t *t = yaml_document_get_node(doc, *it);
                SetTable *st = &d->tables[d->n_tables];

                r = scalar_dup(map_get(doc, t, "name"), &st->name);
                if (r < 0)
                        return r;
                if (!st->name)
                        continue;
                d->n_tables++;
                r = path_dup(doc, t, &st->volume, 2, "data", "volume");
                if (r >= 0)
                        r = path_dup(doc, t, &st->file, 2, "data", "file");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Summarises one loaded document into d. */
static int parse_doc(yaml_document_t *doc, yaml_node_t *root, SetDoc *d) {
        int r;

        r = path_dup(doc, root, &d->kind, 1, "kind");
        if (r >= 0)
                r = path_dup(doc, root, &d->name, 2, "metadata", "name");
        if (r >= 0)
                r = path_dup(doc, root, &d->display_name, 2, "spec", "display_name");
        if (r >= 0)
                r = path_dup(doc, root, &d->url, 2, "spec", "url");
        if (r >= 0)
                r = path_dup(doc, root, &d->schema, 2, "spec", "schema");
        if (r >= 0)
                r = path_dup(doc, root, &d->schema_ref, 2, "spec", "schema_ref");
        if (r >= 0)
                r = path_dup(doc, root, &d->report_type, 2, "spec", "report_type");
        if (r >= 0)
                r = path_dup(doc, root, &d->output_format, 2, "spec", "output_format");
        if (r >= 0)
                r = path_dup(doc, root, &d->results_format, 3, "spec", "results", "format");
        if (r >= 0 && d->kind && streq(d->kind, "AvatarSchema"))
                r = parse_tables(doc, root, d);
        return r;
}

/* Parses a multi-document YAML text. */
int resource_model_parse(const char *yaml, size_t len, ResourceModel *ret, char **ret_error) {
        yaml_parser_t parser;
        _cleanup_(yaml_parser_deletep) yaml_parser_t *pp = NULL;
        ResourceModel m = {};
        int r = 0;

        *ret_error = NULL;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        pp = &parser;
        yaml_parser_set_input_string(&parser, (const unsigned char *) yaml, len);
        for (;;) {
                yaml_document_t doc;
                yaml_node_t *root;
                SetDoc *nd;

                if (!yaml_parser_load(&parser, &doc)) {
                        *ret_error = strprintf("Invalid YAML: %s at line %zu, column %zu",
                                               strna(parser.problem),
                                               (size_t) parser.problem_mark.line + 1,
                                               (size_t) parser.problem_mark.column + 1);
                        r = *ret_error ? -EINVAL : -ENOMEM;
                        break;
                }
                root = yaml_document_get_root_node(&doc);
                if (!root) { /* end of the stream */
                        yaml_document_delete(&doc);
                        break;
                }
                if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0) {
                        yaml_document_delete(&doc); /* an empty document */
                        continue;
                }
                if (root->type != YAML_MAPPING_NODE) {
                        yaml_document_delete(&doc);
                        *ret_error = strprintf("Invalid YAML: document %zu is not a mapping",
                                               m.n_docs + 1);
                        r = *ret_error ? -EINVAL : -ENOMEM;
                        break;
                }
                if (m.n_docs >= YAML_MAX_DOCS) {
                        yaml_document_delete(&doc);
                        *ret_error = strdup("Invalid YAML: too many documents");
                        r = *ret_error ? -EINVAL : -ENOMEM;
                        break;
                }
                nd = realloc(m.docs, (m.n_docs + 1) * sizeof(SetDoc));
                if (!nd) {
                        yaml_document_delete(&doc);
                        r = -ENOMEM;
                        break;
                }
                m.docs = nd;
                memset(&m.docs[m.n_docs], 0, sizeof(SetDoc));
                m.n_docs++;
                r = parse_doc(&doc, root, &m.docs[m.n_docs - 1]);
                yaml_document_delete(&doc);
                if (r == -E2BIG) {
                        *ret_error = strdup("Invalid YAML: too many tables");
                        r = *ret_error ? -EINVAL : -ENOMEM;
                }
                if (r < 0)
                        break;
        }
        if (r >= 0 && m.n_docs == 0) {
                *ret_error = strdup("Invalid YAML: no documents");
                r = *ret_error ? -EINVAL : -ENOMEM;
        }
        if (r < 0) {
                resource_model_done(&m);
                return r;
        }
        *ret = m;
        return 0;
}

/* The document whose metadata.name is name, or NULL. */
const SetDoc *resource_model_find(const ResourceModel *m, const char *name) {
        for (size_t i = 0; i < m->n_docs; i++)
                if (m->docs[i].name && streq(m->docs[i].name, name))
                        return &m->docs[i];
        return NULL;
}

/* The schema a parameters document works on. */
const SetDoc *resource_model_schema(const ResourceModel *m, const SetDoc *params) {
        const SetDoc *d = params && params->schema ? resource_model_find(m, params->schema) : NULL;

        if (d && d->kind && streq(d->kind, "AvatarSchema"))
                return d;
        for (size_t i = 0; i < m->n_docs; i++)
                if (m->docs[i].kind && streq(m->docs[i].kind, "AvatarSchema") &&
                    !m->docs[i].schema_ref)
                        return &m->docs[i];
        return NULL;
}

/* The table of an original schema that an avatarized schema's table refers to. */
const SetTable *resource_model_source_table(const ResourceModel *m, const SetDoc *schema,
                                            const char *table) {
        for (unsigned depth = 0; schema && depth < 8; depth++) {
                for (size_t i = 0; i < schema->n_tables; i++)
                        if (streq(schema->tables[i].name, table) && schema->tables[i].file)
                                return &schema->tables[i];
                schema = schema->schema_ref ? resource_model_find(m, schema->schema_ref) : NULL;
        }
        return NULL;
}
