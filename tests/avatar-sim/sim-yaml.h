/* SPDX-License-Identifier: MIT */
/*
 * avatar-sim resource YAML: what the simulator needs to know about a resource set (document
 * kinds and names, the tables of each schema and their input files, report options). The
 * YAML itself is stored verbatim elsewhere; this is only a parsed summary.
 */
#pragma once

#include "sim-util.h"

#define YAML_MAX_DOCS 256
#define YAML_MAX_TABLES 256

/* One table of an AvatarSchema document. */
typedef struct SetTable {
        char *name;
        char *volume; /* data.volume, NULL when absent */
        char *file;   /* data.file, NULL when absent (auto or avatarized schema) */
} SetTable;

/* One document of a resource set; unset fields are NULL. */
typedef struct SetDoc {
        char *kind;
        char *name;           /* metadata.name */
        char *display_name;   /* AvatarMetadata: spec.display_name */
        char *url;            /* AvatarVolume: spec.url */
        char *schema;         /* parameters documents: spec.schema */
        char *schema_ref;     /* AvatarSchema: spec.schema_ref */
        char *report_type;    /* AvatarReportParameters: spec.report_type */
        char *output_format;  /* AvatarReportParameters: spec.output_format */
        char *results_format; /* spec.results.format */
        SetTable *tables;     /* AvatarSchema: spec.tables */
        size_t n_tables;
} SetDoc;

typedef struct ResourceModel {
        SetDoc *docs;
        size_t n_docs;
} ResourceModel;

/*
 * Parses a multi-document YAML text. Returns 0, or -EINVAL with *ret_error (owned) saying
 * why, or -ENOMEM. Documents that are not mappings are an error; empty ones are skipped.
 */
int resource_model_parse(const char *yaml, size_t len, ResourceModel *ret, char **ret_error);
/* Frees the contents of a model. */
void resource_model_done(ResourceModel *m);
/* The document whose metadata.name is name, or NULL. Borrowed. */
const SetDoc *resource_model_find(const ResourceModel *m, const char *name);
/*
 * The schema a parameters document works on (its spec.schema, else the first original
 * AvatarSchema), or NULL. Borrowed.
 */
const SetDoc *resource_model_schema(const ResourceModel *m, const SetDoc *params);
/* The table of an original schema that an avatarized schema's table refers to, or NULL. */
const SetTable *resource_model_source_table(const ResourceModel *m, const SetDoc *schema,
                                            const char *table);
