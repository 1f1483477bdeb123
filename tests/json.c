/* json.c — recursive-descent JSON reader for tests. Depth-limited; no allocation limits beyond
 * the input size, which tests control. */
#include "json.h"
#include "t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s, *e;
    int depth;
} jp;

static void ws(jp *p) {
    while (p->s < p->e && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static t_json *node(t_json_kind k) {
    t_json *j = calloc(1, sizeof *j);
    if (j) j->kind = k;
    return j;
}

static int put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

static int hex4(const char *s, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        *v <<= 4;
        if (c >= '0' && c <= '9') *v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') *v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') *v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    return 1;
}

/* Parses a string at p->s (which points at the opening quote). */
static char *pstr(jp *p, size_t *len) {
    p->s++;
    const char *q = p->s;
    size_t cap = 0;
    while (q < p->e && *q != '"') { if (*q == '\\') q++; q++; cap++; }
    char *o = malloc(cap * 4 + 1), *w = o;
    if (!o) return NULL;
    while (p->s < p->e && *p->s != '"') {
        char c = *p->s++;
        if (c != '\\') { *w++ = c; continue; }
        if (p->s >= p->e) break;
        c = *p->s++;
        switch (c) {
        case 'n': *w++ = '\n'; break;
        case 't': *w++ = '\t'; break;
        case 'r': *w++ = '\r'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'u': {
            unsigned cp, lo;
            if (p->e - p->s < 4 || !hex4(p->s, &cp)) { free(o); return NULL; }
            p->s += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && p->e - p->s >= 6 && p->s[0] == '\\' && p->s[1] == 'u' &&
                hex4(p->s + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p->s += 6;
            }
            w += put_utf8(w, cp);
            break;
        }
        default: *w++ = c; break;
        }
    }
    if (p->s >= p->e) { free(o); return NULL; }
    p->s++;
    *w = 0;
    *len = (size_t)(w - o);
    return o;
}

static t_json *pval(jp *p);

static int push(t_json *j, t_json *v, char *key) {
    t_json **it = realloc(j->items, (j->len + 1) * sizeof *it);
    if (!it) return 0;
    j->items = it;
    if (j->kind == TJ_OBJ) {
        char **k = realloc(j->keys, (j->len + 1) * sizeof *k);
        if (!k) return 0;
        j->keys = k;
        k[j->len] = key;
    }
    it[j->len++] = v;
    return 1;
}

static t_json *pval(jp *p) {
    ws(p);
    if (p->s >= p->e || ++p->depth > 200) return NULL;
    t_json *j = NULL;
    char c = *p->s;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        j = node(obj ? TJ_OBJ : TJ_ARR);
        p->s++;
        ws(p);
        if (p->s < p->e && *p->s == (obj ? '}' : ']')) { p->s++; goto done; }
        for (;;) {
            char *key = NULL;
            if (obj) {
                ws(p);
                size_t kl;
                if (p->s >= p->e || *p->s != '"' || !(key = pstr(p, &kl))) goto fail;
                ws(p);
                if (p->s >= p->e || *p->s != ':') { free(key); goto fail; }
                p->s++;
            }
            t_json *v = pval(p);
            if (!v || !push(j, v, key)) { free(key); t_json_free(v); goto fail; }
            ws(p);
            if (p->s < p->e && *p->s == ',') { p->s++; continue; }
            if (p->s < p->e && *p->s == (obj ? '}' : ']')) { p->s++; break; }
            goto fail;
        }
    } else if (c == '"') {
        j = node(TJ_STR);
        if (!(j->str = pstr(p, &j->len))) goto fail;
    } else if (!strncmp(p->s, "true", 4) || !strncmp(p->s, "false", 5)) {
        j = node(TJ_BOOL);
        j->num = c == 't';
        p->s += c == 't' ? 4 : 5;
    } else if (!strncmp(p->s, "null", 4)) {
        j = node(TJ_NULL);
        p->s += 4;
    } else {
        char *end;
        j = node(TJ_NUM);
        j->num = strtod(p->s, &end);
        if (end == p->s || end > p->e) goto fail;
        p->s = end;
    }
done:
    p->depth--;
    return j;
fail:
    t_json_free(j);
    return NULL;
}

t_json *t_json_parse(const char *s, size_t len) {
    /* strtod needs a terminated buffer: work on a copy */
    char *c = malloc(len + 1);
    if (!c) return NULL;
    memcpy(c, s, len);
    c[len] = 0;
    jp p = {c, c + len, 0};
    t_json *j = pval(&p);
    ws(&p);
    if (j && p.s != p.e) { t_json_free(j); j = NULL; }
    free(c);
    return j;
}

t_json *t_json_parse_file(const char *path) {
    size_t n;
    char *b = t_read_file(path, &n);
    t_json *j = b ? t_json_parse(b, n) : NULL;
    free(b);
    return j;
}

void t_json_free(t_json *j) {
    if (!j) return;
    for (size_t i = 0; i < j->len && j->items; i++) {
        t_json_free(j->items[i]);
        if (j->keys) free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    free(j->str);
    free(j);
}

const t_json *t_json_get(const t_json *o, const char *key) {
    if (!o || o->kind != TJ_OBJ) return NULL;
    for (size_t i = 0; i < o->len; i++)
        if (!strcmp(o->keys[i], key)) return o->items[i];
    return NULL;
}

const t_json *t_json_at(const t_json *a, size_t i) {
    if (!a || (a->kind != TJ_ARR && a->kind != TJ_OBJ) || i >= a->len) return NULL;
    return a->items[i];
}
