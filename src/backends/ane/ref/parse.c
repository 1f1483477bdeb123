/* parse.c — recursive-descent parser for the MIL subset of mil/mil.h:
 *
 *   program  := 'program' '(' 1.3 ')' [ '[' 'buildInfo' '=' dict<string, string>({{"k", "v"}, ...}) ']' ]
 *               '{' func+ '}'
 *   func     := 'func' NAME '<' 'ios18' '>' '(' [type NAME {',' type NAME}] ')' '{' stmt* '}'
 *               '->' '(' [NAME {',' NAME}] ')' ';'
 *   stmt     := type NAME '=' OP '(' [ARG '=' value {',' ...}] ')' '[' attr {',' attr} ']' ';'
 *   attr     := 'name' '=' string("NAME") | 'val' '=' literal          (val only for const)
 *   value    := NAME | literal
 *   literal  := dtype '(' scalar ')' | tensor<dt, [dims]> '(' ( '[' list ']' | BLOBFILE(...) ) ')'
 *   type     := dtype | 'tensor' '<' dtype ',' '[' dims ']' '>'
 *
 * MIL is in SSA order, so every statement is checked as soon as it is read (ops.c): names are
 * resolved against what came before, and the declared type must be what the op produces. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ane/ref/ref_impl.h"
#include "core/fp16.h"

#define BLOB_PATH "@model_path/weights/weight.bin"

typedef struct P {
    ref_ctx *c;
    ref_tok *t;
    size_t n, i;
} P;

static const ref_tok *cur(const P *p) { return &p->t[p->i]; }
static const ref_tok *peek(const P *p, size_t k) { return &p->t[p->i + k < p->n ? p->i + k : p->n - 1]; }
static void adv(P *p) {
    if (p->i + 1 < p->n) p->i++;
}
static bool tok_is(const ref_tok *t, const char *s) {
    size_t n = strlen(s);
    return t->kind == TK_IDENT && t->n == n && memcmp(t->p, s, n) == 0;
}

static const char *tok_desc(const ref_tok *t, char *buf, size_t cap) {
    if (t->kind == TK_EOF) return "end of text";
    int n = t->n > 40 ? 40 : (int)t->n;
    snprintf(buf, cap, "'%.*s'%s", n, t->p, t->n > 40 ? "..." : "");
    /* the text may hold any byte: keep the message printable */
    for (char *q = buf; *q; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f) *q = '?';
    return buf;
}

static an_status fail_at(P *p, const ref_tok *t, const char *fmt, ...) AN_PRINTF(3, 4);
static an_status fail_at(P *p, const ref_tok *t, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return an_err_set(p->c->err, AN_E_FORMAT, "MIL line %d, column %d: %s", t->line, t->col, msg);
}

static an_status expect(P *p, ref_tok_kind k, const char *what) {
    if (cur(p)->kind != k) {
        char b[64];
        return fail_at(p, cur(p), "expected %s, found %s", what, tok_desc(cur(p), b, sizeof b));
    }
    adv(p);
    return AN_OK;
}

static an_status expect_word(P *p, const char *w) {
    if (!tok_is(cur(p), w)) {
        char b[64];
        return fail_at(p, cur(p), "expected '%s', found %s", w, tok_desc(cur(p), b, sizeof b));
    }
    adv(p);
    return AN_OK;
}

/* ---- numbers ------------------------------------------------------------------------------ */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A number token: *is_int when it is an integer literal (then *iv holds it, exactly). */
static an_status parse_number(P *p, const ref_tok *t, double *d, bool *is_int, int64_t *iv) {
    const char *s = t->p, *e = t->p + t->n;
    bool neg = false;
    if (s < e && (*s == '-' || *s == '+')) neg = *s++ == '-';
    *is_int = false;
    *iv = 0;
    if (e - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        /* hex: mantissa digits (at most 15 significant, exact in a double), '.', 'p' exponent */
        uint64_t m = 0;
        int digits = 0, frac = -1;
        bool any = false, has_p = false;
        long ex = 0;
        for (; s < e; s++) {
            if (*s == '.') {
                if (frac >= 0) return fail_at(p, t, "malformed hex number (two '.')");
                frac = 0;
                continue;
            }
            int h = hexval(*s);
            if (h < 0) break;
            any = true;
            if (m || h) digits++;
            if (digits > 15) return fail_at(p, t, "hex number has more than 15 significant digits");
            m = m * 16 + (uint64_t)h;
            if (frac >= 0) frac++;
        }
        if (!any) return fail_at(p, t, "malformed hex number");
        if (s < e && (*s == 'p' || *s == 'P')) {
            has_p = true;
            s++;
            bool eneg = false;
            if (s < e && (*s == '+' || *s == '-')) eneg = *s++ == '-';
            if (s == e) return fail_at(p, t, "malformed hex float exponent");
            for (; s < e && *s >= '0' && *s <= '9'; s++) {
                ex = ex * 10 + (*s - '0');
                if (ex > 100000) return fail_at(p, t, "hex float exponent out of range");
            }
            if (eneg) ex = -ex;
        }
        if (s != e) return fail_at(p, t, "malformed number");
        if (!has_p && frac >= 0) return fail_at(p, t, "hex number with a '.' needs a 'p' exponent");
        if (frac > 0) ex -= 4L * frac;
        double v = ldexp((double)m, (int)ex);
        *d = neg ? -v : v;
        if (!has_p) {
            *is_int = true;
            *iv = neg ? -(int64_t)m : (int64_t)m;
        }
        return AN_OK;
    }
    bool dot = false, exp = false;
    const char *q = s;
    if (q == e) return fail_at(p, t, "malformed number");
    for (; q < e; q++) {
        if (*q == '.' && !dot && !exp) dot = true;
        else if ((*q == 'e' || *q == 'E') && !exp && q > s) {
            exp = true;
            if (q + 1 < e && (q[1] == '+' || q[1] == '-')) q++;
            if (q + 1 >= e) return fail_at(p, t, "malformed number");
        } else if (*q < '0' || *q > '9') {
            return fail_at(p, t, "malformed number");
        }
    }
    if (!dot && !exp) {
        uint64_t v = 0;
        for (q = s; q < e; q++) {
            if (v > (UINT64_C(1) << 62) / 10) return fail_at(p, t, "integer out of range");
            v = v * 10 + (uint64_t)(*q - '0');
        }
        *is_int = true;
        *iv = neg ? -(int64_t)v : (int64_t)v;
        *d = (double)*iv;
        return AN_OK;
    }
    char buf[80];
    if (t->n >= sizeof buf) return fail_at(p, t, "number too long");
    memcpy(buf, t->p, t->n);
    buf[t->n] = 0;
    char *end;
    *d = strtod(buf, &end);
    if (end != buf + t->n) return fail_at(p, t, "malformed number");
    return AN_OK;
}

static an_status parse_int(P *p, int64_t *v) {
    const ref_tok *t = cur(p);
    if (t->kind != TK_NUMBER) {
        char b[64];
        return fail_at(p, t, "expected an integer, found %s", tok_desc(t, b, sizeof b));
    }
    double d;
    bool is_int;
    AN_TRY(parse_number(p, t, &d, &is_int, v));
    if (!is_int) return fail_at(p, t, "expected an integer");
    adv(p);
    return AN_OK;
}

/* ---- types -------------------------------------------------------------------------------- */

static an_status parse_dtype(P *p, ref_dt *dt) {
    const ref_tok *t = cur(p);
    *dt = t->kind == TK_IDENT ? ref_dt_from_name(t->p, t->n) : DT_NONE;
    if (*dt == DT_NONE) {
        char b[64];
        return fail_at(p, t, "expected a data type (fp16, int32, ...), found %s", tok_desc(t, b, sizeof b));
    }
    adv(p);
    return AN_OK;
}

static bool at_type(const P *p) {
    const ref_tok *t = cur(p);
    return tok_is(t, "tensor") || (t->kind == TK_IDENT && ref_dt_from_name(t->p, t->n) != DT_NONE);
}

static an_status parse_type(P *p, ref_type *ty) {
    memset(ty, 0, sizeof *ty);
    if (!tok_is(cur(p), "tensor")) return parse_dtype(p, &ty->dt);
    adv(p);
    AN_TRY(expect(p, TK_LT, "'<'"));
    AN_TRY(parse_dtype(p, &ty->dt));
    AN_TRY(expect(p, TK_COMMA, "','"));
    AN_TRY(expect(p, TK_LBRACK, "'['"));
    while (cur(p)->kind != TK_RBRACK) {
        if (ty->rank > 0) AN_TRY(expect(p, TK_COMMA, "',' or ']'"));
        const ref_tok *t = cur(p);
        int64_t v;
        AN_TRY(parse_int(p, &v));
        if (ty->rank == REF_MAX_TYPE_RANK) return fail_at(p, t, "rank above %d", REF_MAX_TYPE_RANK);
        if (v < 1 || v > REF_MAX_AXIS)
            return fail_at(p, t, "axis %lld is outside 1..%d (the ANE's limit)", (long long)v, REF_MAX_AXIS);
        ty->dim[ty->rank++] = v;
    }
    adv(p);
    AN_TRY(expect(p, TK_GT, "'>'"));
    return AN_OK;
}

/* ---- values ------------------------------------------------------------------------------- */

static int find_name(const ref_fn *fn, const char *s, size_t n) {
    for (int i = 0; i < fn->nv; i++)
        if (fn->v[i].name && strlen(fn->v[i].name) == n && memcmp(fn->v[i].name, s, n) == 0) return i;
    return -1;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* The contents of a string token, escapes resolved. */
static an_status string_val(P *p, const ref_tok *t, char **out) {
    char *d = malloc(t->n);
    if (!d) return an_err_set(p->c->err, AN_E_NOMEM, "MIL: out of memory");
    size_t k = 0;
    for (size_t i = 1; i + 1 < t->n; i++) {
        char c = t->p[i];
        if (c == '\\') c = t->p[++i];
        if (c == 0) {
            free(d);
            return fail_at(p, t, "NUL byte in a string");
        }
        d[k++] = c;
    }
    d[k] = 0;
    *out = d;
    return AN_OK;
}

static an_status expect_string(P *p, char **out) {
    const ref_tok *t = cur(p);
    if (t->kind != TK_STRING) {
        char b[64];
        return fail_at(p, t, "expected a string, found %s", tok_desc(t, b, sizeof b));
    }
    AN_TRY(string_val(p, t, out));
    adv(p);
    return AN_OK;
}

/* One literal element of dtype dt at token t, checked against the dtype's range and rounded
 * to it (fp16 literals are the fp16 value nearest to what is written). */
static an_status literal_elem(P *p, ref_dt dt, double *out) {
    const ref_tok *t = cur(p);
    const ref_dt_info *di = ref_dt_get(dt);
    if (dt == DT_BOOL) {
        if (tok_is(t, "true")) *out = 1;
        else if (tok_is(t, "false")) *out = 0;
        else {
            char b[64];
            return fail_at(p, t, "expected true or false, found %s", tok_desc(t, b, sizeof b));
        }
        adv(p);
        return AN_OK;
    }
    if (t->kind != TK_NUMBER) {
        char b[64];
        return fail_at(p, t, "expected a %s number, found %s", di->name, tok_desc(t, b, sizeof b));
    }
    double d;
    bool is_int;
    int64_t iv;
    AN_TRY(parse_number(p, t, &d, &is_int, &iv));
    if (di->is_float) {
        /* via float: for fp16/bf16 a double rounding, harmless for the literals MIL writers
         * emit (exact hex floats) */
        float f = d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d; /* no UB past float's range */
        if (dt == DT_FP16) f = an_round_f16(f);
        else if (dt == DT_BF16) f = an_bf16_to_f32(an_f32_to_bf16(f));
        *out = f;
    } else {
        if (!is_int) return fail_at(p, t, "expected an integer for %s", di->name);
        if (iv < di->lo || iv > di->hi)
            return fail_at(p, t, "%lld is out of range for %s", (long long)iv, di->name);
        *out = (double)iv;
    }
    adv(p);
    return AN_OK;
}

/* Nested '[' lists, flattened into v->num (v->n elements expected). */
static an_status literal_list(P *p, ref_val *v, int64_t *k, int depth) {
    const ref_tok *open = cur(p);
    AN_TRY(expect(p, TK_LBRACK, "'['"));
    if (depth > REF_MAX_TYPE_RANK)
        return fail_at(p, open, "tensor literal nested deeper than rank %d", REF_MAX_TYPE_RANK);
    bool first = true;
    while (cur(p)->kind != TK_RBRACK) {
        if (!first) AN_TRY(expect(p, TK_COMMA, "',' or ']'"));
        first = false;
        if (cur(p)->kind == TK_LBRACK) {
            AN_TRY(literal_list(p, v, k, depth + 1));
            continue;
        }
        if (*k >= v->n) return fail_at(p, cur(p), "tensor literal has more than the %lld elements of its type",
                                       (long long)v->n);
        AN_TRY(literal_elem(p, v->type.dt, &v->num[(*k)++]));
    }
    adv(p);
    return AN_OK;
}

static an_status blob_ready(P *p, const ref_tok *t) {
    ref_ctx *c = p->c;
    if (c->bf_parsed) return AN_OK;
    if (!c->blob) return fail_at(p, t, "BLOBFILE but no weight file was given");
    AN_TRY(an_blob_parse(c->blob, c->blob_len, BLOB_PATH, &c->bf, c->err));
    c->bf_parsed = true;
    return AN_OK;
}

/* BLOBFILE(path = string("@model_path/weights/weight.bin"), offset = uint64(X)): v->raw points
 * at the data of the blob whose metadata is at X, after checking its dtype and size. */
static an_status parse_blobfile(P *p, ref_val *v) {
    const ref_tok *at = cur(p);
    AN_TRY(expect_word(p, "BLOBFILE"));
    AN_TRY(expect(p, TK_LPAREN, "'('"));
    bool have_path = false;
    int64_t off = -1;
    const ref_tok *off_tok = NULL;
    for (int k = 0; k < 2; k++) {
        if (k) AN_TRY(expect(p, TK_COMMA, "','"));
        const ref_tok *key = cur(p);
        if (tok_is(key, "path") && !have_path) {
            adv(p);
            AN_TRY(expect(p, TK_EQ, "'='"));
            AN_TRY(expect_word(p, "string"));
            AN_TRY(expect(p, TK_LPAREN, "'('"));
            const ref_tok *st = cur(p);
            char *path;
            AN_TRY(expect_string(p, &path));
            bool ok = strcmp(path, BLOB_PATH) == 0;
            free(path);
            have_path = true;
            if (!ok) return fail_at(p, st, "BLOBFILE path must be \"%s\"", BLOB_PATH);
            AN_TRY(expect(p, TK_RPAREN, "')'"));
        } else if (tok_is(key, "offset") && off < 0) {
            adv(p);
            AN_TRY(expect(p, TK_EQ, "'='"));
            AN_TRY(expect_word(p, "uint64"));
            AN_TRY(expect(p, TK_LPAREN, "'('"));
            off_tok = cur(p);
            AN_TRY(parse_int(p, &off));
            if (off < 0) return fail_at(p, off_tok, "negative BLOBFILE offset");
            AN_TRY(expect(p, TK_RPAREN, "')'"));
        } else {
            char b[64];
            return fail_at(p, key, "expected BLOBFILE argument path or offset, found %s", tok_desc(key, b, sizeof b));
        }
    }
    AN_TRY(expect(p, TK_RPAREN, "')'"));
    AN_TRY(blob_ready(p, at));
    const an_blob_entry *e = an_blob_find(&p->c->bf, (uint64_t)off);
    if (!e)
        return fail_at(p, off_tok,
                       "BLOBFILE offset %lld is not the metadata offset of any blob in the weight file "
                       "(it must name the metadata, not the data)",
                       (long long)off);
    const ref_dt_info *di = ref_dt_get(v->type.dt);
    if (!di->blob) return fail_at(p, at, "%s tensors cannot come from a BLOBFILE", di->name);
    if (e->dtype != di->blob)
        return fail_at(p, off_tok, "blob at offset %lld holds %s, the type says %s", (long long)off,
                       an_blob_dtype_name(e->dtype) ? an_blob_dtype_name(e->dtype) : "?", di->name);
    const uint64_t bits = (uint64_t)v->n * (uint64_t)di->bits, need = (bits + 7) / 8;
    if (e->size != need || (e->padding_bits && e->padding_bits != e->size * 8 - bits))
        return fail_at(p, off_tok, "blob at offset %lld has %llu bytes (padding %llu bits); %lld %s elements need %llu",
                       (long long)off, (unsigned long long)e->size, (unsigned long long)e->padding_bits,
                       (long long)v->n, di->name, (unsigned long long)need);
    v->raw = e->data;
    return AN_OK;
}

/* literal into slot v (type, data). */
static an_status parse_literal(P *p, ref_fn *fn, int slot) {
    ref_type ty;
    const ref_tok *at = cur(p);
    AN_TRY(parse_type(p, &ty));
    ref_val *v = &fn->v[slot];
    v->type = ty;
    v->kind = V_CONST;
    v->n = ref_type_elems(&ty);
    v->line = at->line;
    v->col = at->col;
    if (v->n < 0) return fail_at(p, at, "tensor has more than 2^36 elements");
    AN_TRY(expect(p, TK_LPAREN, "'('"));
    if (ty.dt == DT_STRING) {
        if (ty.rank) return fail_at(p, at, "string tensors are not supported");
        AN_TRY(expect_string(p, &v->str));
    } else if (ty.rank > 0 && tok_is(cur(p), "BLOBFILE")) {
        AN_TRY(parse_blobfile(p, v));
    } else {
        /* inline elements: bounded by the text (every element takes a token) */
        if (v->n > (int64_t)(p->n - p->i)) return fail_at(p, at, "tensor literal has fewer elements than its type");
        v->num = malloc((size_t)v->n * sizeof *v->num);
        if (!v->num) return an_err_set(p->c->err, AN_E_NOMEM, "MIL: out of memory");
        if (ty.rank == 0) {
            AN_TRY(literal_elem(p, ty.dt, &v->num[0]));
        } else {
            int64_t k = 0;
            const ref_tok *lt = cur(p);
            AN_TRY(literal_list(p, v, &k, 1));
            if (k != v->n)
                return fail_at(p, lt, "tensor literal has %lld elements, its type %lld", (long long)k, (long long)v->n);
        }
    }
    AN_TRY(expect(p, TK_RPAREN, "')'"));
    return AN_OK;
}

/* A new anonymous slot for an inline literal argument (or a const's val). */
static an_status literal_slot(P *p, ref_fn *fn, int *slot) {
    *slot = ref_fn_add_val(fn, p->c->err);
    if (*slot < 0) return AN_E_NOMEM;
    return parse_literal(p, fn, *slot);
}

/* ---- statements --------------------------------------------------------------------------- */

static bool at_literal(const P *p) {
    const ref_tok *t = cur(p), *n = peek(p, 1);
    if (tok_is(t, "tensor")) return n->kind == TK_LT;
    return t->kind == TK_IDENT && n->kind == TK_LPAREN && ref_dt_from_name(t->p, t->n) != DT_NONE;
}

#define MAX_ARGS 16

static an_status parse_stmt(P *p, ref_fn *fn) {
    ref_type ty;
    const ref_tok *ty_tok = cur(p);
    AN_TRY(parse_type(p, &ty));
    const ref_tok *name = cur(p);
    AN_TRY(expect(p, TK_IDENT, "a value name"));
    if (find_name(fn, name->p, name->n) >= 0) {
        char b[64];
        return fail_at(p, name, "%s is already defined in function %s", tok_desc(name, b, sizeof b), fn->name);
    }
    AN_TRY(expect(p, TK_EQ, "'='"));
    const ref_tok *op = cur(p);
    AN_TRY(expect(p, TK_IDENT, "an op name"));
    AN_TRY(expect(p, TK_LPAREN, "'('"));
    ref_arg args[MAX_ARGS];
    int n_args = 0;
    while (cur(p)->kind != TK_RPAREN) {
        if (n_args) AN_TRY(expect(p, TK_COMMA, "',' or ')'"));
        const ref_tok *an = cur(p);
        AN_TRY(expect(p, TK_IDENT, "an argument name"));
        for (int k = 0; k < n_args; k++)
            if (args[k].name_n == an->n && memcmp(args[k].name, an->p, an->n) == 0) {
                char b[64];
                return fail_at(p, an, "argument %s given twice", tok_desc(an, b, sizeof b));
            }
        if (n_args == MAX_ARGS) return fail_at(p, an, "more than %d arguments", MAX_ARGS);
        AN_TRY(expect(p, TK_EQ, "'='"));
        ref_arg *a = &args[n_args++];
        *a = (ref_arg){an->p, an->n, -1, an->line, an->col};
        if (at_literal(p)) {
            AN_TRY(literal_slot(p, fn, &a->slot));
        } else {
            const ref_tok *ref = cur(p);
            if (ref->kind == TK_LPAREN) return fail_at(p, ref, "tuple arguments are not supported");
            AN_TRY(expect(p, TK_IDENT, "a value name or a literal"));
            a->slot = find_name(fn, ref->p, ref->n);
            if (a->slot < 0) {
                char b[64];
                return fail_at(p, ref, "%s is not defined (before this statement, in function %s)",
                               tok_desc(ref, b, sizeof b), fn->name);
            }
        }
    }
    adv(p);
    const bool is_const = op->n == 5 && memcmp(op->p, "const", 5) == 0;
    if (is_const && n_args) return fail_at(p, op, "const takes no arguments (its value is the val attribute)");
    /* attributes: name (must repeat the value's name) and, for const, val */
    AN_TRY(expect(p, TK_LBRACK, "'['"));
    bool have_name = false;
    int val_slot = -1;
    while (cur(p)->kind != TK_RBRACK) {
        if (have_name || val_slot >= 0) AN_TRY(expect(p, TK_COMMA, "',' or ']'"));
        const ref_tok *at = cur(p);
        if (tok_is(at, "name") && !have_name) {
            adv(p);
            AN_TRY(expect(p, TK_EQ, "'='"));
            AN_TRY(expect_word(p, "string"));
            AN_TRY(expect(p, TK_LPAREN, "'('"));
            const ref_tok *st = cur(p);
            char *s;
            AN_TRY(expect_string(p, &s));
            bool same = strlen(s) == name->n && memcmp(s, name->p, name->n) == 0;
            free(s);
            if (!same) return fail_at(p, st, "name attribute differs from the value's name");
            AN_TRY(expect(p, TK_RPAREN, "')'"));
            have_name = true;
        } else if (tok_is(at, "val") && val_slot < 0) {
            if (!is_const) return fail_at(p, at, "only const takes a val attribute");
            adv(p);
            AN_TRY(expect(p, TK_EQ, "'='"));
            AN_TRY(literal_slot(p, fn, &val_slot));
        } else {
            char b[64];
            return fail_at(p, at, "expected attribute name or val, found %s", tok_desc(at, b, sizeof b));
        }
    }
    adv(p);
    AN_TRY(expect(p, TK_SEMI, "';'"));
    if (!have_name) return fail_at(p, name, "statement has no name attribute");
    char tb[96], vb[96];
    if (is_const) {
        if (val_slot < 0) return fail_at(p, op, "const without a val attribute");
        ref_val *v = &fn->v[val_slot];
        if (!ref_type_eq(&v->type, &ty))
            return fail_at(p, ty_tok, "declared type %s but the value is %s", ref_type_str(&ty, tb, sizeof tb),
                           ref_type_str(&v->type, vb, sizeof vb));
        v->name = dup_n(name->p, name->n);
        if (!v->name) return an_err_set(p->c->err, AN_E_NOMEM, "MIL: out of memory");
        return AN_OK;
    }
    if (ty.rank > REF_MAX_RANK) return fail_at(p, ty_tok, "rank above %d (the ANE's limit)", REF_MAX_RANK);
    int out = ref_fn_add_val(fn, p->c->err);
    if (out < 0) return AN_E_NOMEM;
    ref_val *v = &fn->v[out];
    v->type = ty;
    v->kind = V_OP;
    v->n = ref_type_elems(&ty);
    v->line = ty_tok->line;
    v->col = ty_tok->col;
    if (v->n < 0) return fail_at(p, ty_tok, "tensor has more than 2^36 elements");
    AN_TRY(ref_op_build(p->c, fn, op->p, op->n, args, n_args, out, op->line, op->col));
    /* named only now, so that the op's arguments could not refer to it */
    fn->v[out].name = dup_n(name->p, name->n);
    if (!fn->v[out].name) return an_err_set(p->c->err, AN_E_NOMEM, "MIL: out of memory");
    return AN_OK;
}

static an_status add_io(P *p, an_mil_ref_tensor **arr, int n, int slot, const ref_fn *fn) {
    an_mil_ref_tensor *na = realloc(*arr, (size_t)(n + 1) * sizeof *na);
    if (!na) return an_err_set(p->c->err, AN_E_NOMEM, "MIL: out of memory");
    *arr = na;
    const ref_val *v = &fn->v[slot];
    an_mil_ref_tensor *t = &na[n];
    memset(t, 0, sizeof *t);
    t->name = v->name;
    t->rank = v->type.rank;
    for (int d = 0; d < v->type.rank; d++) t->dims[d] = v->type.dim[d];
    t->n = v->n;
    return AN_OK;
}

static an_status add_slot_idx(P *p, int **arr, int n, int slot) {
    int *na = realloc(*arr, (size_t)(n + 1) * sizeof *na);
    if (!na) return an_err_set(p->c->err, AN_E_NOMEM, "MIL: out of memory");
    na[n] = slot;
    *arr = na;
    return AN_OK;
}

static an_status parse_func(P *p) {
    an_mil_ref *r = p->c->r;
    AN_TRY(expect_word(p, "func"));
    const ref_tok *name = cur(p);
    AN_TRY(expect(p, TK_IDENT, "a function name"));
    for (int i = 0; i < r->n_fns; i++)
        if (strlen(r->fn[i].name) == name->n && memcmp(r->fn[i].name, name->p, name->n) == 0) {
            char b[64];
            return fail_at(p, name, "function %s is defined twice", tok_desc(name, b, sizeof b));
        }
    ref_fn *nf = realloc(r->fn, (size_t)(r->n_fns + 1) * sizeof *nf);
    if (!nf) return an_err_set(p->c->err, AN_E_NOMEM, "MIL: out of memory");
    r->fn = nf;
    ref_fn *fn = &r->fn[r->n_fns++];
    memset(fn, 0, sizeof *fn);
    fn->name = dup_n(name->p, name->n);
    if (!fn->name) return an_err_set(p->c->err, AN_E_NOMEM, "MIL: out of memory");
    AN_TRY(expect(p, TK_LT, "'<'"));
    const ref_tok *os = cur(p);
    if (!tok_is(os, "ios18")) {
        char b[64];
        return fail_at(p, os, "opset %s is not supported (the constexpr forms used need ios18)",
                       tok_desc(os, b, sizeof b));
    }
    adv(p);
    AN_TRY(expect(p, TK_GT, "'>'"));
    AN_TRY(expect(p, TK_LPAREN, "'('"));
    while (cur(p)->kind != TK_RPAREN) {
        if (fn->n_in) AN_TRY(expect(p, TK_COMMA, "',' or ')'"));
        ref_type ty;
        const ref_tok *tt = cur(p);
        AN_TRY(parse_type(p, &ty));
        const ref_tok *in = cur(p);
        AN_TRY(expect(p, TK_IDENT, "an input name"));
        if (ty.dt != DT_FP16 || ty.rank == 0) return fail_at(p, tt, "inputs must be fp16 tensors");
        if (ty.rank > REF_MAX_RANK) return fail_at(p, tt, "rank above %d (the ANE's limit)", REF_MAX_RANK);
        if (find_name(fn, in->p, in->n) >= 0) return fail_at(p, in, "input name used twice");
        int s = ref_fn_add_val(fn, p->c->err);
        if (s < 0) return AN_E_NOMEM;
        ref_val *v = &fn->v[s];
        v->type = ty;
        v->kind = V_INPUT;
        v->n = ref_type_elems(&ty);
        v->line = tt->line;
        v->col = tt->col;
        if (v->n < 0) return fail_at(p, tt, "tensor has more than 2^36 elements");
        v->name = dup_n(in->p, in->n);
        if (!v->name) return an_err_set(p->c->err, AN_E_NOMEM, "MIL: out of memory");
        AN_TRY(add_slot_idx(p, &fn->in, fn->n_in, s));
        AN_TRY(add_io(p, &fn->in_t, fn->n_in, s, fn));
        fn->n_in++;
    }
    adv(p);
    AN_TRY(expect(p, TK_LBRACE, "'{'"));
    while (cur(p)->kind != TK_RBRACE) {
        if (cur(p)->kind == TK_EOF) return expect(p, TK_RBRACE, "'}'");
        if (!at_type(p)) {
            char b[64];
            return fail_at(p, cur(p), "expected a statement (starting with its type) or '}', found %s",
                           tok_desc(cur(p), b, sizeof b));
        }
        AN_TRY(parse_stmt(p, fn));
    }
    adv(p);
    AN_TRY(expect(p, TK_ARROW, "'->'"));
    AN_TRY(expect(p, TK_LPAREN, "'('"));
    while (cur(p)->kind != TK_RPAREN) {
        if (fn->n_out) AN_TRY(expect(p, TK_COMMA, "',' or ')'"));
        const ref_tok *o = cur(p);
        AN_TRY(expect(p, TK_IDENT, "an output name"));
        int s = find_name(fn, o->p, o->n);
        char b[64];
        if (s < 0) return fail_at(p, o, "output %s is not defined in function %s", tok_desc(o, b, sizeof b), fn->name);
        if (fn->v[s].type.dt != DT_FP16 || fn->v[s].type.rank == 0 || fn->v[s].type.rank > REF_MAX_RANK)
            return fail_at(p, o, "output %s is not an fp16 tensor of rank 1..%d", tok_desc(o, b, sizeof b),
                           REF_MAX_RANK);
        AN_TRY(add_slot_idx(p, &fn->out, fn->n_out, s));
        AN_TRY(add_io(p, &fn->out_t, fn->n_out, s, fn));
        fn->n_out++;
    }
    adv(p);
    if (!fn->n_out) return fail_at(p, cur(p), "function %s has no outputs", fn->name);
    AN_TRY(expect(p, TK_SEMI, "';'"));
    return AN_OK;
}

/* [buildInfo = dict<string, string>({{"k", "v"}, ...})]: read and ignored (the ANE compiler
 * does not appear to check it strictly, ane.md §3.1). */
static an_status parse_build_info(P *p) {
    AN_TRY(expect(p, TK_LBRACK, "'['"));
    AN_TRY(expect_word(p, "buildInfo"));
    AN_TRY(expect(p, TK_EQ, "'='"));
    AN_TRY(expect_word(p, "dict"));
    AN_TRY(expect(p, TK_LT, "'<'"));
    AN_TRY(expect_word(p, "string"));
    AN_TRY(expect(p, TK_COMMA, "','"));
    AN_TRY(expect_word(p, "string"));
    AN_TRY(expect(p, TK_GT, "'>'"));
    AN_TRY(expect(p, TK_LPAREN, "'('"));
    AN_TRY(expect(p, TK_LBRACE, "'{'"));
    bool first = true;
    while (cur(p)->kind != TK_RBRACE) {
        if (!first) AN_TRY(expect(p, TK_COMMA, "',' or '}'"));
        first = false;
        AN_TRY(expect(p, TK_LBRACE, "'{'"));
        AN_TRY(expect(p, TK_STRING, "a string"));
        AN_TRY(expect(p, TK_COMMA, "','"));
        AN_TRY(expect(p, TK_STRING, "a string"));
        AN_TRY(expect(p, TK_RBRACE, "'}'"));
    }
    adv(p);
    AN_TRY(expect(p, TK_RPAREN, "')'"));
    AN_TRY(expect(p, TK_RBRACK, "']'"));
    return AN_OK;
}

an_status ref_parse(ref_ctx *c, const char *text, size_t len) {
    P p = {c, NULL, 0, 0};
    AN_TRY(ref_lex(text, len, &p.t, &p.n, c->err));
    an_status st = expect_word(&p, "program");
    if (!st) st = expect(&p, TK_LPAREN, "'('");
    if (!st) {
        const ref_tok *v = cur(&p);
        if (v->kind != TK_NUMBER || v->n != 3 || memcmp(v->p, "1.3", 3) != 0) {
            char b[64];
            st = fail_at(&p, v, "expected program version 1.3, found %s", tok_desc(v, b, sizeof b));
        }
        adv(&p);
    }
    if (!st) st = expect(&p, TK_RPAREN, "')'");
    if (!st && cur(&p)->kind == TK_LBRACK) st = parse_build_info(&p);
    if (!st) st = expect(&p, TK_LBRACE, "'{'");
    if (!st && !tok_is(cur(&p), "func")) st = expect_word(&p, "func");
    while (!st && tok_is(cur(&p), "func")) st = parse_func(&p);
    if (!st) st = expect(&p, TK_RBRACE, "'func' or '}'");
    if (!st) st = expect(&p, TK_EOF, "end of text after the program");
    free(p.t);
    return st;
}
