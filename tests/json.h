/* json.h — a small JSON reader for tests (reference files in ../shared/reference and the
 * CLI's --json output). Strings are decoded (\uXXXX incl. surrogate pairs -> UTF-8) and may
 * hold NUL bytes, so their length is kept. */
#ifndef AN_TEST_JSON_H
#define AN_TEST_JSON_H

#include <stddef.h>

typedef enum { TJ_NULL, TJ_BOOL, TJ_NUM, TJ_STR, TJ_ARR, TJ_OBJ } t_json_kind;

typedef struct t_json {
    t_json_kind kind;
    double num;           /* TJ_NUM, TJ_BOOL (0/1) */
    char *str;            /* TJ_STR: decoded bytes, NUL-terminated */
    size_t len;           /* TJ_STR: byte length; TJ_ARR/TJ_OBJ: element count */
    struct t_json **items; /* TJ_ARR elements / TJ_OBJ values */
    char **keys;          /* TJ_OBJ keys */
} t_json;

t_json *t_json_parse(const char *s, size_t len); /* NULL on malformed input */
t_json *t_json_parse_file(const char *path);     /* NULL if unreadable or malformed */
void t_json_free(t_json *j);
const t_json *t_json_get(const t_json *obj, const char *key); /* NULL if absent / not object */
const t_json *t_json_at(const t_json *arr, size_t i);         /* NULL if out of range */

#endif
