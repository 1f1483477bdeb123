/* emit.c — MIL text and its weight file for anelm's matmul programs (the subset and layout
 * documented at the top of mil.h). Each function multiplies row-major activations [1, N, 1, K]
 * by const weights as 1x1 convs between two MIL-side transposes, so the caller's buffers need
 * no CPU transposes (ane.md §3.4, §3.5). Weights are converted tile by tile into Blob Storage
 * v2 (blob.h); a tile already written for an earlier function of the program is referenced
 * again, never stored twice.
 *
 * Weight formats (how a GGUF row becomes MIL consts):
 *   F16      fp16 [M, K, 1, 1], the rows as they are.
 *   Q8_0     int8 data [M, K, 1, 1] (the block's qs) + fp16 scale [M, K/32, 1, 1] (the block's d)
 *            through constexpr_blockwise_shift_scale: scale * data is exactly what GGUF's
 *            dequantization computes, so the mapping is lossless.
 *   Q4_0     int4 data (q - 8, in [-8, 7]) + the same scale: lossless for the same reason.
 *   LUT4/6/8 uint4/uint6/uint8 indices [M, K, 1, 1] + fp16 tables [M/G, 1, 1, 1, 2^b, 1] through
 *            constexpr_lut_to_dense, then a blockwise scale [M, 1, 1, 1] when row_scale is set.
 *   others   (BF16, F32, Q4_1, Q5_*, K-quants) dequantized with an_dequant_row and rounded to
 *            fp16: the ANE has no matching block format (ane.md §6.1 item 12), so these lose
 *            what fp16 cannot hold. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/ane/mil/mil.h"
#include "core/fp16.h"
#include "quant/lut.h"
#include "quant/quant.h"

#define WEIGHT_PATH "@model_path/weights/weight.bin"
#define MAX_CHANNELS 65536 /* every axis, and channels on every chip (ane.md §5.2) */

/* ---- text buffer ------------------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) AN_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        const size_t room = b->cap - b->len;
        const int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 16384;
        while (ncap - b->len <= (size_t)n) ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

/* ---- weights ---------------------------------------------------------------------------- */

typedef enum enc { ENC_FP16, ENC_Q8_0, ENC_Q4_0, ENC_LUT, ENC_DEQUANT } enc;

static enc encoding_of(uint32_t type) {
    switch (type) {
    case AN_TYPE_F16: return ENC_FP16;
    case AN_TYPE_Q8_0: return ENC_Q8_0;
    case AN_TYPE_Q4_0: return ENC_Q4_0;
    default: return an_lut_is_type(type) ? ENC_LUT : ENC_DEQUANT;
    }
}

/* A weight tile written to the blob: rows [m0, m0+mt) and columns [k0, k0+kt) of a matrix
 * identified by its data and tables (not by the an_mat's address, which callers may copy). */
typedef struct stored {
    const void *data;
    const uint16_t *lut, *row_scale;
    uint32_t type;
    int32_t lut_group;
    int64_t rows, cols, m0, mt, k0, kt;
    uint64_t off[3]; /* BLOBFILE offsets: data or indices; scale or tables; row scales */
} stored;

typedef struct emitter {
    sbuf t;
    an_blob_writer *bw;
    stored *st;
    size_t n_st, cap_st;
    int64_t cap; /* the chip's width cap */
    an_err *err;
} emitter;

static const char *wname(const an_mat *w) { return w->name ? w->name : "(unnamed weight)"; }

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* LUT tiles: rows are grouped in sub-groups of g rows, each lying inside one of the matrix's
 * groups, so a tile that starts or ends inside a group (or a short last group) still gets a
 * valid iOS18 lut shape [mt/g, ...]; g is the matrix's G whenever the tile is aligned to it. */
static int64_t lut_subgroup(const an_mat *w, int64_t m0, int64_t mt) {
    return gcd64(gcd64((int64_t)w->lut_group, mt), m0 ? m0 : mt);
}

static const uint8_t *row_ptr(const an_mat *w, int64_t r) {
    return (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
}

static an_status append(emitter *e, an_blob_dtype dt, const void *data, uint64_t n, uint64_t *off) {
    return an_blob_append(e->bw, dt, data, n, off, e->err);
}

/* Converts tile (m0, mt, k0, kt) of w into its blobs; off[] as in `stored`. */
static an_status write_tile(emitter *e, const an_mat *w, int64_t m0, int64_t mt, int64_t k0, int64_t kt,
                            uint64_t off[3]) {
    const uint64_t n = (uint64_t)mt * (uint64_t)kt;
    an_status s = AN_OK;
    switch (encoding_of(w->type)) {
    case ENC_FP16: {
        uint16_t *buf = malloc(n * 2);
        if (!buf) break;
        for (int64_t r = 0; r < mt; r++) memcpy(buf + r * kt, row_ptr(w, m0 + r) + k0 * 2, (size_t)kt * 2);
        s = append(e, AN_BLOB_FP16, buf, n, &off[0]);
        free(buf);
        return s;
    }
    case ENC_Q8_0:
    case ENC_Q4_0: {
        /* GGUF blocks of 32: Q8_0 {fp16 d, int8 qs[32]}; Q4_0 {fp16 d, u8 qs[16]} with element j
         * in the low nibble of qs[j] and element j+16 in the high nibble, value q - 8 */
        const bool q8 = w->type == AN_TYPE_Q8_0;
        const size_t bsz = q8 ? sizeof(an_block_q8_0) : sizeof(an_block_q4_0);
        const int64_t nb = kt / AN_QK;
        uint8_t *q = malloc(n);
        uint16_t *sc = malloc((size_t)(mt * nb) * 2);
        uint8_t *packed = q8 ? NULL : malloc((n + 1) / 2);
        if (!q || !sc || (!q8 && !packed)) {
            free(q), free(sc), free(packed);
            break;
        }
        for (int64_t r = 0; r < mt; r++) {
            const uint8_t *blk = row_ptr(w, m0 + r) + (size_t)(k0 / AN_QK) * bsz;
            for (int64_t b = 0; b < nb; b++, blk += bsz) {
                memcpy(&sc[r * nb + b], blk, 2);
                uint8_t *dst = q + r * kt + b * AN_QK;
                if (q8) {
                    memcpy(dst, blk + 2, AN_QK);
                } else {
                    for (int j = 0; j < 16; j++) {
                        /* (q - 8) as a 4-bit two's complement nibble is q ^ 8 */
                        dst[j] = (uint8_t)((blk[2 + j] & 0x0F) ^ 8);
                        dst[j + 16] = (uint8_t)((blk[2 + j] >> 4) ^ 8);
                    }
                }
            }
        }
        if (q8) {
            s = append(e, AN_BLOB_INT8, q, n, &off[0]);
        } else {
            an_blob_pack_bits(q, n, 4, packed);
            s = append(e, AN_BLOB_INT4, packed, n, &off[0]);
        }
        if (s == AN_OK) s = append(e, AN_BLOB_FP16, sc, (uint64_t)(mt * nb), &off[1]);
        free(q), free(sc), free(packed);
        return s;
    }
    case ENC_LUT: {
        const int bits = an_lut_bits(w->type);
        const int64_t ent = (int64_t)1 << bits, g = lut_subgroup(w, m0, mt), ng = mt / g;
        uint8_t *idx = malloc(n), *packed = malloc((n * (uint64_t)bits + 7) / 8);
        uint16_t *lut = malloc((size_t)(ng * ent) * 2);
        if (!idx || !packed || !lut) {
            free(idx), free(packed), free(lut);
            break;
        }
        for (int64_t r = 0; r < mt; r++)
            for (int64_t k = 0; k < kt; k++) idx[r * kt + k] = (uint8_t)an_lut_index(row_ptr(w, m0 + r), k0 + k, bits);
        for (int64_t i = 0; i < ng; i++) /* sub-group i lies in the matrix's group (m0 + i*g) / G */
            memcpy(lut + i * ent, w->lut + (uint64_t)((m0 + i * g) / w->lut_group) * (uint64_t)ent, (size_t)ent * 2);
        an_blob_pack_bits(idx, n, bits, packed);
        const an_blob_dtype dt = bits == 4 ? AN_BLOB_UINT4 : bits == 6 ? AN_BLOB_UINT6 : AN_BLOB_UINT8;
        s = append(e, dt, packed, n, &off[0]);
        if (s == AN_OK) s = append(e, AN_BLOB_FP16, lut, (uint64_t)(ng * ent), &off[1]);
        if (s == AN_OK && w->row_scale) s = append(e, AN_BLOB_FP16, w->row_scale + m0, (uint64_t)mt, &off[2]);
        free(idx), free(packed), free(lut);
        return s;
    }
    case ENC_DEQUANT: {
        float *row = malloc((size_t)w->cols * sizeof *row);
        uint16_t *buf = malloc(n * 2);
        if (!row || !buf) {
            free(row), free(buf);
            break;
        }
        for (int64_t r = 0; r < mt; r++) {
            an_dequant_row((an_type)w->type, row_ptr(w, m0 + r), row, w->cols); /* whole blocks */
            for (int64_t k = 0; k < kt; k++) buf[r * kt + k] = an_f32_to_f16(row[k0 + k]);
        }
        s = append(e, AN_BLOB_FP16, buf, n, &off[0]);
        free(row), free(buf);
        return s;
    }
    }
    return an_err_set(e->err, AN_E_NOMEM, "ane mil: out of memory converting %s rows %lld+%lld", wname(w),
                      (long long)m0, (long long)mt);
}

/* The blobs of a tile: the ones already in the file, or written now. */
static an_status tile_offsets(emitter *e, const an_mat *w, int64_t m0, int64_t mt, int64_t k0, int64_t kt,
                              uint64_t off[3]) {
    for (size_t i = 0; i < e->n_st; i++) {
        const stored *s = &e->st[i];
        if (s->data == w->data && s->type == w->type && s->rows == w->rows && s->cols == w->cols &&
            s->lut == w->lut && s->row_scale == w->row_scale && s->lut_group == w->lut_group && s->m0 == m0 &&
            s->mt == mt && s->k0 == k0 && s->kt == kt) {
            memcpy(off, s->off, sizeof s->off);
            return AN_OK;
        }
    }
    if (e->n_st == e->cap_st) {
        size_t nc = e->cap_st ? e->cap_st * 2 : 16;
        stored *ns = realloc(e->st, nc * sizeof *ns);
        if (!ns) return an_err_set(e->err, AN_E_NOMEM, "ane mil: out of memory");
        e->st = ns;
        e->cap_st = nc;
    }
    off[0] = off[1] = off[2] = 0;
    AN_TRY(write_tile(e, w, m0, mt, k0, kt, off));
    e->st[e->n_st++] = (stored){w->data, w->lut, w->row_scale, w->type, w->lut_group, w->rows, w->cols,
                                m0, mt, k0, kt, {off[0], off[1], off[2]}};
    return AN_OK;
}

static void blob_const(emitter *e, const char *dt, const char *dims, const char *var, const char *sfx, uint64_t off) {
    sb_printf(&e->t,
              "        tensor<%s, [%s]> %s%s = const()[name = string(\"%s%s\"), val = tensor<%s, [%s]>(BLOBFILE(path "
              "= string(\"" WEIGHT_PATH "\"), offset = uint64(%llu)))];\n",
              dt, dims, var, sfx, var, sfx, dt, dims, (unsigned long long)off);
}

/* Statements defining `var` as fp16 [mt, kt, 1, 1] = tile (m0, mt, k0, kt) of w. */
static an_status weight_var(emitter *e, const an_mat *w, int64_t m0, int64_t mt, int64_t k0, int64_t kt,
                            const char *var) {
    uint64_t off[3];
    AN_TRY(tile_offsets(e, w, m0, mt, k0, kt, off));
    char dims[96], sdims[96];
    snprintf(dims, sizeof dims, "%lld, %lld, 1, 1", (long long)mt, (long long)kt);
    switch (encoding_of(w->type)) {
    case ENC_FP16:
    case ENC_DEQUANT:
        blob_const(e, "fp16", dims, var, "", off[0]);
        break;
    case ENC_Q8_0:
    case ENC_Q4_0:
        snprintf(sdims, sizeof sdims, "%lld, %lld, 1, 1", (long long)mt, (long long)(kt / AN_QK));
        blob_const(e, w->type == AN_TYPE_Q8_0 ? "int8" : "int4", dims, var, "_q", off[0]);
        blob_const(e, "fp16", sdims, var, "_s", off[1]);
        sb_printf(&e->t,
                  "        tensor<fp16, [%s]> %s = constexpr_blockwise_shift_scale(data = %s_q, scale = %s_s)[name = "
                  "string(\"%s\")];\n",
                  dims, var, var, var, var);
        break;
    case ENC_LUT: {
        const int bits = an_lut_bits(w->type);
        snprintf(sdims, sizeof sdims, "%lld, 1, 1, 1, %d, 1", (long long)(mt / lut_subgroup(w, m0, mt)), 1 << bits);
        blob_const(e, bits == 4 ? "uint4" : bits == 6 ? "uint6" : "uint8", dims, var, "_idx", off[0]);
        blob_const(e, "fp16", sdims, var, "_lut", off[1]);
        const char *dense = w->row_scale ? "_pal" : "";
        sb_printf(&e->t,
                  "        tensor<fp16, [%s]> %s%s = constexpr_lut_to_dense(indices = %s_idx, lut = %s_lut)[name = "
                  "string(\"%s%s\")];\n",
                  dims, var, dense, var, var, var, dense);
        if (w->row_scale) {
            snprintf(sdims, sizeof sdims, "%lld, 1, 1, 1", (long long)mt);
            blob_const(e, "fp16", sdims, var, "_rs", off[2]);
            sb_printf(&e->t,
                      "        tensor<fp16, [%s]> %s = constexpr_blockwise_shift_scale(data = %s_pal, scale = %s_rs)"
                      "[name = string(\"%s\")];\n",
                      dims, var, var, var, var);
        }
        break;
    }
    }
    return AN_OK;
}

/* A channel-first activation [1, width, 1, N] holding contraction columns [k0, k0 + width). */
typedef struct chan_in {
    char name[32];
    int64_t k0, width;
} chan_in;

/* cname [1, mt, 1, N] = sum over the inputs j of conv(in[j], rows [m0, m0+mt) of w restricted to
 * in[j]'s columns); weight vars are wvar (one input) or wvar_k<j>. */
static an_status conv_sum(emitter *e, const an_mat *w, int64_t m0, int64_t mt, const chan_in *in, int n_in, int n,
                          const char *wvar, const char *cname) {
    char acc[64] = "";
    for (int j = 0; j < n_in; j++) {
        char wv[64], part[64];
        if (n_in == 1) {
            snprintf(wv, sizeof wv, "%s", wvar);
            snprintf(part, sizeof part, "%s", cname);
        } else {
            snprintf(wv, sizeof wv, "%s_k%d", wvar, j);
            snprintf(part, sizeof part, "%s_k%d", cname, j);
        }
        AN_TRY(weight_var(e, w, m0, mt, in[j].k0, in[j].width, wv));
        sb_printf(&e->t,
                  "        tensor<fp16, [1, %lld, 1, %d]> %s = conv(x = %s, weight = %s, strides = strides, pad_type = "
                  "pad_type, pad = pad, dilations = dilations, groups = groups)[name = string(\"%s\")];\n",
                  (long long)mt, n, part, in[j].name, wv, part);
        if (j == 0) {
            snprintf(acc, sizeof acc, "%s", part);
        } else {
            /* partial sums in fp16, as the ANE stores every op output */
            char sum[64];
            if (j == n_in - 1) snprintf(sum, sizeof sum, "%s", cname);
            else snprintf(sum, sizeof sum, "%s_a%d", cname, j);
            sb_printf(&e->t, "        tensor<fp16, [1, %lld, 1, %d]> %s = add(x = %s, y = %s)[name = string(\"%s\")];\n",
                      (long long)mt, n, sum, acc, part, sum);
            snprintf(acc, sizeof acc, "%s", sum);
        }
    }
    return AN_OK;
}

/* ---- checks ----------------------------------------------------------------------------- */

static an_status check_mat(emitter *e, const an_mat *w, int fi) {
    if (!w) return an_err_set(e->err, AN_E_USAGE, "ane mil: function %d: missing weight", fi);
    if (!w->data || w->rows < 1 || w->cols < 1)
        return an_err_set(e->err, AN_E_USAGE, "ane mil: weight %s: empty (%lld x %lld, data %s)", wname(w),
                          (long long)w->rows, (long long)w->cols, w->data ? "set" : "NULL");
    if (w->cols > MAX_CHANNELS)
        return an_err_set(e->err, AN_E_RANGE, "ane mil: weight %s: K = %lld inputs exceeds the ANE's %d channels",
                          wname(w), (long long)w->cols, MAX_CHANNELS);
    if (an_lut_is_type(w->type)) return an_lut_check(w, e->err);
    if (w->type != AN_TYPE_F16 && !an_quant_is_weight_type(w->type))
        return an_err_set(e->err, AN_E_UNSUPPORTED, "ane mil: weight %s: type %s has no conversion for the ANE",
                          wname(w), an_type_name(w->type));
    const an_type_traits *tt = an_type_traits_get(w->type);
    if (!tt || w->cols % tt->blck)
        return an_err_set(e->err, AN_E_USAGE, "ane mil: weight %s: K = %lld is not a whole number of %s blocks",
                          wname(w), (long long)w->cols, an_type_name(w->type));
    if (w->row_bytes != an_row_bytes(tt, (uint64_t)w->cols))
        return an_err_set(e->err, AN_E_USAGE, "ane mil: weight %s: row_bytes %llu, %s rows of %lld are %llu bytes",
                          wname(w), (unsigned long long)w->row_bytes, an_type_name(w->type), (long long)w->cols,
                          (unsigned long long)an_row_bytes(tt, (uint64_t)w->cols));
    return AN_OK;
}

/* The activation input split into pieces of at most the cap (its width is the K axis). */
static int split_input(emitter *e, int64_t k, chan_in *in, int64_t *width, int64_t *col0) {
    const an_ane_tiling t = an_ane_tile(1, k, e->cap);
    for (int j = 0; j < t.n_k; j++) {
        in[j].k0 = col0[j] = j * t.k_tile;
        in[j].width = width[j] = j == t.n_k - 1 ? k - j * t.k_tile : t.k_tile;
        snprintf(in[j].name, sizeof in[j].name, t.n_k == 1 ? "xt" : "xt%d", j);
    }
    return t.n_k;
}

static void header(emitter *e, const char *fname, const struct an_mil_io *io) {
    sb_printf(&e->t, "    func %s<ios18>(", fname);
    for (int j = 0; j < io->n_in; j++) {
        if (io->n_in == 1) sb_printf(&e->t, "tensor<fp16, [1, %d, 1, %lld]> x", io->n, (long long)io->in_width[0]);
        else sb_printf(&e->t, "%stensor<fp16, [1, %d, 1, %lld]> x%d", j ? ", " : "", io->n, (long long)io->in_width[j], j);
    }
    sb_printf(&e->t, ") {\n");
    sb_printf(&e->t,
              "        tensor<int32, [4]> perm = const()[name = string(\"perm\"), val = tensor<int32, [4]>([0, 3, 2, 1])];\n"
              "        tensor<int32, [2]> strides = const()[name = string(\"strides\"), val = tensor<int32, [2]>([1, 1])];\n"
              "        string pad_type = const()[name = string(\"pad_type\"), val = string(\"valid\")];\n"
              "        tensor<int32, [4]> pad = const()[name = string(\"pad\"), val = tensor<int32, [4]>([0, 0, 0, 0])];\n"
              "        tensor<int32, [2]> dilations = const()[name = string(\"dilations\"), val = tensor<int32, [2]>([1, "
              "1])];\n"
              "        int32 groups = const()[name = string(\"groups\"), val = int32(1)];\n");
    for (int j = 0; j < io->n_in; j++) {
        char xn[16] = "x";
        if (io->n_in > 1) snprintf(xn, sizeof xn, "x%d", j);
        sb_printf(&e->t, "        tensor<fp16, [1, %lld, 1, %d]> xt%s = transpose(x = %s, perm = perm)[name = string(\"xt%s\")];\n",
                  (long long)io->in_width[j], io->n, io->n_in > 1 ? xn + 1 : "", xn, io->n_in > 1 ? xn + 1 : "");
    }
}

/* One output: y = transpose(c) [1, N, 1, width]; recorded in io. */
static an_status output(emitter *e, struct an_mil_io *io, const char *c, const char *y, int64_t width, int wi,
                        int64_t col0, char (*names)[40]) {
    if (io->n_out == AN_MIL_MAX_OUT)
        return an_err_set(e->err, AN_E_RANGE, "ane mil: more than %d outputs in one function (output tiles of wide "
                          "weights count one each)", AN_MIL_MAX_OUT);
    sb_printf(&e->t, "        tensor<fp16, [1, %d, 1, %lld]> %s = transpose(x = %s, perm = perm)[name = string(\"%s\")];\n",
              io->n, (long long)width, y, c, y);
    snprintf(names[io->n_out], 40, "%s", y);
    io->out_width[io->n_out] = width;
    io->out_w[io->n_out] = wi;
    io->out_col0[io->n_out] = col0;
    io->n_out++;
    return AN_OK;
}

/* ---- functions -------------------------------------------------------------------------- */

static an_status emit_fn(emitter *e, const an_mil_fn *fn, int fi, const char *fname, struct an_mil_io *io) {
    memset(io, 0, sizeof *io);
    io->n = fn->n;
    if (fn->n < AN_ANE_BUCKET || fn->n % AN_ANE_BUCKET || fn->n > e->cap)
        return an_err_set(e->err, AN_E_USAGE, "ane mil: function %d: N = %d tokens is not a bucket (a multiple of %d, "
                          "at most %lld)", fi, fn->n, AN_ANE_BUCKET, (long long)e->cap);
    const int want = fn->kind == AN_MIL_FFN ? 3 : -1;
    if ((want > 0 && fn->n_w != want) || fn->n_w < 1 || fn->n_w > 4)
        return an_err_set(e->err, AN_E_USAGE, "ane mil: function %d: %d weights for a %s", fi, fn->n_w,
                          fn->kind == AN_MIL_FFN ? "fused FFN (gate, up, down)" : "linear (1 to 4)");
    for (int i = 0; i < fn->n_w; i++) AN_TRY(check_mat(e, fn->w[i], fi));
    const an_mat *w0 = fn->w[0];
    for (int i = 1; i < fn->n_w && fn->kind == AN_MIL_LINEAR; i++)
        if (fn->w[i]->cols != w0->cols)
            return an_err_set(e->err, AN_E_USAGE, "ane mil: weight %s: K = %lld, but %s (same input) has K = %lld",
                              wname(fn->w[i]), (long long)fn->w[i]->cols, wname(w0), (long long)w0->cols);
    if (fn->kind == AN_MIL_FFN) {
        const an_mat *g = fn->w[0], *u = fn->w[1], *d = fn->w[2];
        if (u->rows != g->rows || u->cols != g->cols)
            return an_err_set(e->err, AN_E_USAGE, "ane mil: weight %s: %lld x %lld, but gate %s is %lld x %lld",
                              wname(u), (long long)u->rows, (long long)u->cols, wname(g), (long long)g->rows,
                              (long long)g->cols);
        if (d->cols != g->rows)
            return an_err_set(e->err, AN_E_USAGE, "ane mil: weight %s: K = %lld, but the FFN's hidden size (rows of %s) "
                              "is %lld", wname(d), (long long)d->cols, wname(g), (long long)g->rows);
    }

    /* count the outputs before converting any weight */
    int n_out = 0, widest = fn->n_w - 1;
    for (int i = 0; i < fn->n_w; i++) {
        if (fn->kind == AN_MIL_FFN && i != 2) continue; /* gate and up stay inside */
        n_out += an_ane_tile(fn->w[i]->rows, 1, e->cap).n_m;
        if (fn->w[i]->rows > fn->w[widest]->rows) widest = i;
    }
    if (n_out > AN_MIL_MAX_OUT)
        return an_err_set(e->err, AN_E_RANGE, "ane mil: weight %s: %lld rows; with tiles of at most %lld rows the "
                          "function needs %d outputs, more than %d", wname(fn->w[widest]),
                          (long long)fn->w[widest]->rows, (long long)e->cap, n_out, AN_MIL_MAX_OUT);

    chan_in in[AN_MIL_MAX_IN];
    io->n_in = split_input(e, w0->cols, in, io->in_width, io->in_col0);
    header(e, fname, io);
    char outs[AN_MIL_MAX_OUT][40];

    if (fn->kind == AN_MIL_LINEAR) {
        for (int i = 0; i < fn->n_w; i++) {
            const an_mat *w = fn->w[i];
            const an_ane_tiling t = an_ane_tile(w->rows, w->cols, e->cap);
            for (int m = 0; m < t.n_m; m++) {
                const int64_t m0 = m * t.m_tile, mt = m == t.n_m - 1 ? w->rows - m0 : t.m_tile;
                char sfx[16] = "", wv[40], cv[40], yv[40];
                if (t.n_m > 1) snprintf(sfx, sizeof sfx, "_m%d", m);
                snprintf(wv, sizeof wv, "w%d%s", i, sfx);
                snprintf(cv, sizeof cv, "c%d%s", i, sfx);
                snprintf(yv, sizeof yv, "y%d%s", i, sfx);
                AN_TRY(conv_sum(e, w, m0, mt, in, io->n_in, fn->n, wv, cv));
                AN_TRY(output(e, io, cv, yv, mt, i, m0, outs));
            }
        }
    } else {
        const an_mat *g = fn->w[0], *u = fn->w[1], *d = fn->w[2];
        const int64_t f = g->rows;
        if (f > MAX_CHANNELS)
            return an_err_set(e->err, AN_E_RANGE, "ane mil: weight %s: FFN hidden size %lld exceeds the ANE's %d "
                              "channels", wname(g), (long long)f, MAX_CHANNELS);
        AN_TRY(conv_sum(e, g, 0, f, in, io->n_in, fn->n, "gate", "g"));
        AN_TRY(conv_sum(e, u, 0, f, in, io->n_in, fn->n, "up", "u"));
        sb_printf(&e->t,
                  "        tensor<fp16, [1, %lld, 1, %d]> gs = sigmoid(x = g)[name = string(\"gs\")];\n"
                  "        tensor<fp16, [1, %lld, 1, %d]> gsilu = mul(x = g, y = gs)[name = string(\"gsilu\")];\n"
                  "        tensor<fp16, [1, %lld, 1, %d]> h = mul(x = gsilu, y = u)[name = string(\"h\")];\n",
                  (long long)f, fn->n, (long long)f, fn->n, (long long)f, fn->n);
        /* the down projection contracts over f on the channel axis: slice it to the cap */
        const an_ane_tiling td = an_ane_tile(d->rows, f, e->cap);
        chan_in hs[AN_MIL_MAX_IN];
        if (td.n_k > AN_MIL_MAX_IN)
            return an_err_set(e->err, AN_E_RANGE, "ane mil: weight %s: K = %lld needs %d slices", wname(d),
                              (long long)f, td.n_k);
        for (int j = 0; j < td.n_k; j++) {
            hs[j].k0 = j * td.k_tile;
            hs[j].width = j == td.n_k - 1 ? f - hs[j].k0 : td.k_tile;
            if (td.n_k == 1) {
                snprintf(hs[j].name, sizeof hs[j].name, "h");
                continue;
            }
            snprintf(hs[j].name, sizeof hs[j].name, "h_k%d", j);
            sb_printf(&e->t,
                      "        tensor<int32, [4]> h_k%d_begin = const()[name = string(\"h_k%d_begin\"), val = "
                      "tensor<int32, [4]>([0, %lld, 0, 0])];\n"
                      "        tensor<int32, [4]> h_k%d_end = const()[name = string(\"h_k%d_end\"), val = tensor<int32, "
                      "[4]>([1, %lld, 1, %d])];\n"
                      "        tensor<fp16, [1, %lld, 1, %d]> h_k%d = slice_by_index(x = h, begin = h_k%d_begin, end = "
                      "h_k%d_end)[name = string(\"h_k%d\")];\n",
                      j, j, (long long)hs[j].k0, j, j, (long long)(hs[j].k0 + hs[j].width), fn->n,
                      (long long)hs[j].width, fn->n, j, j, j, j);
        }
        for (int m = 0; m < td.n_m; m++) {
            const int64_t m0 = m * td.m_tile, mt = m == td.n_m - 1 ? d->rows - m0 : td.m_tile;
            char sfx[16] = "", wv[40], cv[40], yv[40];
            if (td.n_m > 1) snprintf(sfx, sizeof sfx, "_m%d", m);
            snprintf(wv, sizeof wv, "down%s", sfx);
            snprintf(cv, sizeof cv, "d%s", sfx);
            snprintf(yv, sizeof yv, "y%s", sfx);
            AN_TRY(conv_sum(e, d, m0, mt, hs, td.n_k, fn->n, wv, cv));
            AN_TRY(output(e, io, cv, yv, mt, 0, m0, outs));
        }
    }
    sb_printf(&e->t, "    } -> (");
    for (int j = 0; j < io->n_out; j++) sb_printf(&e->t, "%s%s", j ? ", " : "", outs[j]);
    sb_printf(&e->t, ");\n");
    return AN_OK;
}

an_status an_mil_emit(const an_mil_fn *fns, int n_fns, an_ane_family f, an_mil_program *out, an_err *err) {
    memset(out, 0, sizeof *out);
    if (!fns || n_fns < 1 || n_fns > AN_ANE_BANK_MAX_FNS)
        return an_err_set(err, AN_E_USAGE, "ane mil: %d functions (1 to %d per program)", n_fns, AN_ANE_BANK_MAX_FNS);
    emitter e = {.cap = an_ane_spatial_cap(f), .err = err};
    an_status s = an_blob_writer_create(&e.bw, err);
    out->io = calloc((size_t)n_fns, sizeof *out->io);
    if (s == AN_OK && !out->io) s = an_err_set(err, AN_E_NOMEM, "ane mil: out of memory");
    if (s == AN_OK)
        sb_printf(&e.t, "program(1.3)\n"
                        "[buildInfo = dict<string, string>({{\"coremlc-component-MIL\", \"3510.2.1\"}, "
                        "{\"coremlc-version\", \"3505.4.1\"}, {\"coremltools-component-milinternal\", \"\"}, "
                        "{\"coremltools-version\", \"9.0\"}})]\n"
                        "{\n");
    for (int i = 0; i < n_fns && s == AN_OK; i++) {
        char name[32] = "main";
        if (n_fns > 1) snprintf(name, sizeof name, "procedure%03d", i);
        s = emit_fn(&e, &fns[i], i, name, &out->io[i]);
    }
    if (s == AN_OK) sb_printf(&e.t, "}\n");
    if (s == AN_OK && e.t.oom) s = an_err_set(err, AN_E_NOMEM, "ane mil: out of memory writing the MIL text");
    free(e.st);
    if (s != AN_OK) {
        free(e.t.p);
        an_blob_writer_free(e.bw);
        free(out->io);
        memset(out, 0, sizeof *out);
        return s;
    }
    out->text = e.t.p;
    out->text_len = e.t.len;
    out->blob = an_blob_writer_release(e.bw, &out->blob_len);
    out->n_fns = n_fns;
    return AN_OK;
}

void an_mil_program_free(an_mil_program *p) {
    if (!p) return;
    free(p->text);
    free(p->blob);
    free(p->io);
    memset(p, 0, sizeof *p);
}
