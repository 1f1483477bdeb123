/* amx.c — the AMX engine's portable part: permission, repacking ("compile"), the packed blob,
 * activation conversion and the split of work over threads. The tile code is in
 * amx_gemm_amx.c (x86-64 only); elsewhere an_amx_available says why not and nothing runs. */
#include "backends/amx/amx_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/fp16.h"
#include "quant/quant.h"

#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define AN_AMX_BUILD 1
#else
#define AN_AMX_BUILD 0
#endif

#define ALIGN64(x) (((x) + (size_t)63) & ~(size_t)63)

/* ---- availability ------------------------------------------------------------------------ */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_ok;
static const char *g_why = "AMX not probed";
#if AN_AMX_BUILD
static char g_why_buf[160]; /* reasons that quote errno */
#endif
static int g_f16_passes = 3;
static bool g_quant_ref; /* ANELM_AMX_QUANT_REF=1: the scalar activation quantizer (tests) */

static void probe(void) {
    const char *pe = getenv("ANELM_AMX_F16_PASSES");
    if (pe && pe[0] >= '1' && pe[0] <= '4' && pe[1] == 0) g_f16_passes = pe[0] - '0';
    const char *qr = getenv("ANELM_AMX_QUANT_REF");
    g_quant_ref = qr && strcmp(qr, "1") == 0;
    const char *e = getenv("ANELM_AMX");
    if (e && strcmp(e, "0") == 0) {
        g_why = "AMX disabled by ANELM_AMX=0";
        return;
    }
#if !AN_AMX_BUILD
    g_why = "no AMX: not an x86-64 Linux build";
#else
    const an_cpu_info *c = an_cpu();
    if (!c->amx_tile || !c->amx_int8 || !c->amx_bf16) {
        g_why = "no AMX: the CPU lacks AMX-TILE, AMX-INT8 or AMX-BF16 (cpuid)";
        return;
    }
    if (!(c->avx512f && c->avx512bw && c->avx512vl && c->avx512dq && c->avx512bf16)) {
        g_why = "no AMX: the CPU or OS lacks the AVX-512 F/BW/VL/DQ/BF16 the AMX engine's conversions use";
        return;
    }
    if (c->active != AN_ISA_AVX512) {
        g_why = "no AMX: ANELM_ISA caps the ISA below avx512";
        return;
    }
    /* Linux >= 5.16 keeps the 8 KiB tile state off until a process asks for it; without the
     * permission the first tile instruction raises SIGILL. */
    const long ARCH_GET_XCOMP_SUPP = 0x1021, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    unsigned long supp = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_SUPP, &supp) != 0) {
        snprintf(g_why_buf, sizeof g_why_buf, "no AMX: arch_prctl(ARCH_GET_XCOMP_SUPP) failed: %s (kernel < 5.16?)",
                 strerror(errno));
        g_why = g_why_buf;
        return;
    }
    if (!(supp & (1ul << XFEATURE_XTILEDATA))) {
        g_why = "no AMX: the kernel does not offer the XTILEDATA state component";
        return;
    }
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) {
        snprintf(g_why_buf, sizeof g_why_buf, "no AMX: the kernel refused XTILEDATA permission: %s", strerror(errno));
        g_why = g_why_buf;
        return;
    }
    g_ok = true;
    g_why = "AMX ready (AMX-TILE/INT8/BF16, XTILEDATA permission granted)";
#endif
}

bool an_amx_available(const char **why) {
    pthread_once(&g_once, probe);
    if (why) *why = g_why;
    return g_ok;
}

void an_amx_set_f16_passes(int passes) {
    pthread_once(&g_once, probe); /* so a later first probe does not overwrite it from the env */
    if (passes >= 1 && passes <= 4) g_f16_passes = passes;
}

int an_amx_f16_passes(void) {
    pthread_once(&g_once, probe);
    return g_f16_passes;
}

/* ---- formats ------------------------------------------------------------------------------ */

typedef struct {
    int kind, act, kb, nplanes, has_min;
} fmt;

static bool fmt_of(uint32_t type, fmt *f) {
    memset(f, 0, sizeof *f);
    switch (type) {
    case AN_TYPE_F32: *f = (fmt){AMX_KIND_BF16, AMX_ACT_F32, 32, 3, 0}; return true;
    case AN_TYPE_F16: *f = (fmt){AMX_KIND_BF16, AMX_ACT_F16, 32, 2, 0}; return true;
    case AN_TYPE_BF16: *f = (fmt){AMX_KIND_BF16, AMX_ACT_BF16, 32, 1, 0}; return true;
    case AN_TYPE_Q8_0: *f = (fmt){AMX_KIND_I8, AMX_ACT_Q8_0, 32, 0, 0}; return true;
    case AN_TYPE_Q4_0: *f = (fmt){AMX_KIND_I8, AMX_ACT_Q8_0, 32, 0, 0}; return true;
    case AN_TYPE_Q4_1: *f = (fmt){AMX_KIND_I8, AMX_ACT_Q8_1, 32, 0, 1}; return true;
    case AN_TYPE_Q4_K: *f = (fmt){AMX_KIND_I8, AMX_ACT_Q8_K32, 32, 0, 1}; return true;
    case AN_TYPE_Q5_K: *f = (fmt){AMX_KIND_I8, AMX_ACT_Q8_K32, 32, 0, 1}; return true;
    case AN_TYPE_Q6_K: *f = (fmt){AMX_KIND_I8, AMX_ACT_Q8_K16, 16, 0, 0}; return true; /* 16-wide scales */
    /* palettized: bf16 table entries against bf16 activations, one pass; the rounding (2^-9
     * relative) is far below the palettization's own error (LUT6 NMSE ~1e-4) */
    case AN_TYPE_LUT4:
    case AN_TYPE_LUT6: *f = (fmt){AMX_KIND_LUT, AMX_ACT_BF16, 32, 1, 0}; return true;
    default: return false;
    }
}

bool an_amx_supports_type(uint32_t type) {
    fmt f;
    return fmt_of(type, &f);
}

/* ---- the packed blob ------------------------------------------------------------------------ */

#define BLOB_MAGIC "ANAMXW01"
#define HDR_BYTES 128

typedef struct {
    char magic[8];
    uint32_t type, kind, act, kb, nplanes, has_min;
    int64_t rows, cols, mp, kp, nblk, lut_group, ntab;
    uint64_t off_tiles, off_ws, off_wm, total;
} blob_hdr; /* first HDR_BYTES of the blob; this process's layout (a cache keys it by build) */
_Static_assert(sizeof(blob_hdr) <= HDR_BYTES, "blob header");

static bool layout(const an_mat *w, blob_hdr *h) {
    fmt f;
    memset(h, 0, sizeof *h);
    if (!fmt_of(w->type, &f) || w->rows <= 0 || w->cols <= 0) return false;
    const an_type_traits *tt = an_type_traits_get(w->type);
    if (!tt || w->cols % tt->blck) return false;
    memcpy(h->magic, BLOB_MAGIC, 8);
    h->type = w->type, h->kind = (uint32_t)f.kind, h->act = (uint32_t)f.act, h->kb = (uint32_t)f.kb;
    h->nplanes = (uint32_t)f.nplanes, h->has_min = (uint32_t)f.has_min;
    h->rows = w->rows, h->cols = w->cols;
    h->mp = (w->rows + 31) / 32 * 32;
    h->kp = f.kind != AMX_KIND_I8 ? (w->cols + 31) / 32 * 32 : w->cols;
    h->nblk = h->kp / f.kb;
    const uint64_t ngrp = (uint64_t)h->mp / 16, nb = (uint64_t)h->nblk;
    h->off_tiles = HDR_BYTES;
    if (f.kind == AMX_KIND_LUT) { /* indices, row scales, tables of 64 bf16 */
        if (!w->lut || w->lut_group <= 0 || w->rows % w->lut_group) return false;
        h->lut_group = w->lut_group, h->ntab = w->rows / w->lut_group;
        h->off_ws = ALIGN64(h->off_tiles + ngrp * nb * 512);
        h->off_wm = ALIGN64(h->off_ws + (uint64_t)h->mp * 4);
        h->total = ALIGN64(h->off_wm + (uint64_t)h->ntab * 128);
        return true;
    }
    uint64_t tiles = f.kind == AMX_KIND_BF16 ? (uint64_t)f.nplanes * ngrp * nb * 1024 : ngrp * nb * (uint64_t)f.kb * 16;
    h->off_ws = ALIGN64(h->off_tiles + tiles);
    uint64_t sc = f.kind == AMX_KIND_I8 ? ngrp * nb * 16 * 4 : 0;
    h->off_wm = ALIGN64(h->off_ws + sc);
    h->total = ALIGN64(h->off_wm + (f.has_min ? sc : 0));
    return true;
}

size_t an_amx_packed_size(const an_mat *w) {
    blob_hdr h;
    return layout(w, &h) ? (size_t)h.total : 0;
}

static float h2f(an_f16 h) { return an_f16_to_f32(h); }

/* Q4_K/Q5_K 6-bit scale and min of sub-block j (the 12-byte packing of the format). */
static void scale_min_k4(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* One weight row -> int8 quants q[K] and per-block (kb) scale ws and min wm such that
 * w[k] = ws[b] * q[k] + wm[b], with ws and wm computed in f32 as the format's dequantization
 * computes them. */
static void unpack_row_i8(uint32_t type, const uint8_t *src, int64_t K, int8_t *q, float *ws, float *wm) {
    switch (type) {
    case AN_TYPE_Q8_0:
        for (int64_t b = 0; b < K / 32; b++) {
            an_block_q8_0 x;
            memcpy(&x, src + b * sizeof x, sizeof x);
            memcpy(q + b * 32, x.qs, 32);
            ws[b] = h2f(x.d);
        }
        break;
    case AN_TYPE_Q4_0:
        for (int64_t b = 0; b < K / 32; b++) {
            an_block_q4_0 x;
            memcpy(&x, src + b * sizeof x, sizeof x);
            for (int j = 0; j < 16; j++) {
                q[b * 32 + j] = (int8_t)((x.qs[j] & 0xF) - 8);
                q[b * 32 + j + 16] = (int8_t)((x.qs[j] >> 4) - 8);
            }
            ws[b] = h2f(x.d);
        }
        break;
    case AN_TYPE_Q4_1:
        for (int64_t b = 0; b < K / 32; b++) {
            an_block_q4_1 x;
            memcpy(&x, src + b * sizeof x, sizeof x);
            for (int j = 0; j < 16; j++) {
                q[b * 32 + j] = (int8_t)(x.qs[j] & 0xF);
                q[b * 32 + j + 16] = (int8_t)(x.qs[j] >> 4);
            }
            ws[b] = h2f(x.d);
            wm[b] = h2f(x.m);
        }
        break;
    case AN_TYPE_Q4_K:
    case AN_TYPE_Q5_K:
        for (int64_t sb = 0; sb < K / 256; sb++) {
            an_block_q5_K x5;
            an_block_q4_K x4;
            const uint8_t *scales, *qs, *qh = NULL;
            float d, dmin;
            if (type == AN_TYPE_Q4_K) {
                memcpy(&x4, src + sb * sizeof x4, sizeof x4);
                scales = x4.scales, qs = x4.qs, d = h2f(x4.d), dmin = h2f(x4.dmin);
            } else {
                memcpy(&x5, src + sb * sizeof x5, sizeof x5);
                scales = x5.scales, qs = x5.qs, qh = x5.qh, d = h2f(x5.d), dmin = h2f(x5.dmin);
            }
            int8_t *o = q + sb * 256;
            for (int c = 0; c < 4; c++) /* 64 elements per 32 bytes: low nibbles, then high */
                for (int l = 0; l < 32; l++) {
                    int lo = qs[32 * c + l] & 0xF, hi = qs[32 * c + l] >> 4;
                    if (qh) {
                        lo += ((qh[l] >> (2 * c)) & 1) << 4;
                        hi += ((qh[l] >> (2 * c + 1)) & 1) << 4;
                    }
                    o[64 * c + l] = (int8_t)lo;
                    o[64 * c + 32 + l] = (int8_t)hi;
                }
            for (int j = 0; j < 8; j++) {
                int sc, m;
                scale_min_k4(scales, j, &sc, &m);
                ws[sb * 8 + j] = d * (float)sc;
                wm[sb * 8 + j] = -(dmin * (float)m);
            }
        }
        break;
    case AN_TYPE_Q6_K:
        for (int64_t sb = 0; sb < K / 256; sb++) {
            an_block_q6_K x;
            memcpy(&x, src + sb * sizeof x, sizeof x);
            int8_t *o = q + sb * 256;
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = x.ql + 64 * h, *qh = x.qh + 32 * h;
                for (int l = 0; l < 32; l++) {
                    o[128 * h + l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                    o[128 * h + l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                    o[128 * h + l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                    o[128 * h + l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
            }
            const float d = h2f(x.d);
            for (int j = 0; j < 16; j++) ws[sb * 16 + j] = d * (float)x.scales[j]; /* element e: scale e/16 */
        }
        break;
    default: break;
    }
}

an_status an_amx_pack_into(const an_mat *w, void *buf, size_t cap, an_err *err) {
    blob_hdr h;
    if (!layout(w, &h)) return an_err_set(err, AN_E_UNSUPPORTED, "amx: cannot pack %s (%s, %lld x %lld)",
                                          w->name ? w->name : "weight", an_type_name(w->type),
                                          (long long)w->rows, (long long)w->cols);
    if (cap < h.total || ((uintptr_t)buf & 63))
        return an_err_set(err, AN_E_USAGE, "amx: pack buffer of %zu bytes (need %llu, 64-aligned)", cap,
                          (unsigned long long)h.total);
    uint8_t *base = buf;
    memset(base, 0, (size_t)h.total); /* padding rows, k and alignment gaps are zero */
    memcpy(base, &h, sizeof h);
    const int64_t K = h.cols, nb = h.nblk, ngrp = h.mp / 16;
    uint8_t *tiles = base + h.off_tiles;
    if (h.kind == AMX_KIND_LUT) {
        const int bits = h.type == AN_TYPE_LUT4 ? 4 : 6;
        float *ws = (float *)(base + h.off_ws);
        uint16_t *lut = (uint16_t *)(base + h.off_wm);
        for (int64_t t = 0; t < h.ntab; t++)
            for (int e = 0; e < (1 << bits); e++) lut[t * 64 + e] = an_f32_to_bf16(an_f16_to_f32(w->lut[(t << bits) + e]));
        for (int64_t r = 0; r < h.rows; r++) {
            const uint8_t *row = (const uint8_t *)w->data + (uint64_t)r * w->row_bytes;
            ws[r] = w->row_scale ? an_f16_to_f32(w->row_scale[r]) : 1.0f;
            uint8_t *t = tiles + (size_t)((r / 16) * nb) * 512 + (size_t)(r % 16) * 2;
            for (int64_t k = 0; k < K; k++) { /* bit stream element k (LSB-first) */
                const uint64_t bit = (uint64_t)k * (uint64_t)bits;
                const unsigned v = (unsigned)(row[bit / 8] | (bit / 8 + 1 < w->row_bytes ? row[bit / 8 + 1] << 8 : 0));
                t[(size_t)(k / 32) * 512 + (size_t)((k % 32) / 2) * 32 + (size_t)(k % 2)] =
                    (uint8_t)((v >> (bit % 8)) & ((1u << bits) - 1));
            }
        }
    } else if (h.kind == AMX_KIND_BF16) {
        float *row = malloc(sizeof(float) * (size_t)K);
        if (!row) return an_err_set(err, AN_E_NOMEM, "amx: pack scratch");
        const size_t plane = (size_t)(ngrp * nb) * 1024;
        for (int64_t r = 0; r < h.rows; r++) {
            an_dequant_row((an_type)h.type, (const uint8_t *)w->data + (uint64_t)r * w->row_bytes, row, K);
            uint8_t *t = tiles + (size_t)((r / 16) * nb) * 1024 + (size_t)(r % 16) * 4;
            for (int64_t k = 0; k < K; k++) {
                /* split into bf16 planes whose sum is the value (exact for F16, 24 bits for F32) */
                float v = row[k];
                uint16_t part[3];
                for (uint32_t pl = 0; pl < h.nplanes; pl++) {
                    part[pl] = an_f32_to_bf16(v);
                    v -= an_bf16_to_f32(part[pl]);
                }
                size_t off = (size_t)(k / 32) * 1024 + (size_t)((k % 32) / 2) * 64 + (size_t)(k % 2) * 2;
                for (uint32_t pl = 0; pl < h.nplanes; pl++) memcpy(t + pl * plane + off, &part[pl], 2);
            }
        }
        free(row);
    } else {
        const int kb = (int)h.kb;
        int8_t *q = malloc((size_t)K);
        float *sc = malloc(sizeof(float) * 2 * (size_t)nb);
        if (!q || !sc) {
            free(q);
            free(sc);
            return an_err_set(err, AN_E_NOMEM, "amx: pack scratch");
        }
        float *ws = (float *)(base + h.off_ws), *wm = (float *)(base + h.off_wm);
        const size_t tb = (size_t)kb * 16;
        for (int64_t r = 0; r < h.rows; r++) {
            memset(sc, 0, sizeof(float) * 2 * (size_t)nb);
            unpack_row_i8(h.type, (const uint8_t *)w->data + (uint64_t)r * w->row_bytes, K, q, sc, sc + nb);
            const int64_t g = r / 16, rr = r % 16;
            for (int64_t b = 0; b < nb; b++) {
                int8_t *t = (int8_t *)tiles + (size_t)(g * nb + b) * tb + rr * 4;
                for (int k = 0; k < kb; k++) t[(k / 4) * 64 + k % 4] = q[b * kb + k];
                ws[(g * nb + b) * 16 + rr] = sc[b];
                if (h.has_min) wm[(g * nb + b) * 16 + rr] = sc[nb + b];
            }
        }
        free(q);
        free(sc);
    }
    return AN_OK;
}

an_status an_amx_weight_view(const void *blob, size_t n, const an_mat *w, an_amx_weight **out, an_err *err) {
    *out = NULL;
    blob_hdr h, want;
    if (n < HDR_BYTES || ((uintptr_t)blob & 63)) return an_err_set(err, AN_E_FORMAT, "amx: packed blob too short or misaligned");
    memcpy(&h, blob, sizeof h);
    if (!layout(w, &want)) return an_err_set(err, AN_E_UNSUPPORTED, "amx: unsupported weight %s", an_type_name(w->type));
    if (memcmp(&h, &want, sizeof h) != 0 || n < h.total)
        return an_err_set(err, AN_E_FORMAT, "amx: packed blob does not match %s (%s %lld x %lld)",
                          w->name ? w->name : "weight", an_type_name(w->type), (long long)w->rows, (long long)w->cols);
    an_amx_weight *p = calloc(1, sizeof *p);
    if (!p) return an_err_set(err, AN_E_NOMEM, "amx: weight");
    p->src = *w;
    p->src.data = NULL;
    p->kind = (int)h.kind, p->act = (int)h.act, p->kb = (int)h.kb, p->nplanes = (int)h.nplanes;
    p->has_min = (int)h.has_min;
    p->mp = h.mp, p->kp = h.kp, p->nblk = h.nblk, p->ngrp = h.mp / 16;
    p->lut_group = h.lut_group, p->ntab = h.ntab;
    const uint8_t *base = blob;
    p->tiles = base + h.off_tiles;
    p->ws = (const float *)(base + h.off_ws);
    p->wm = (const float *)(base + h.off_wm);
    if (h.kind == AMX_KIND_LUT) p->lut = (const uint16_t *)(base + h.off_wm), p->wm = NULL;
    *out = p;
    return AN_OK;
}

an_status an_amx_pack(const an_mat *w, an_amx_weight **out, an_err *err) {
    *out = NULL;
    const size_t sz = an_amx_packed_size(w);
    if (!sz) return an_amx_pack_into(w, NULL, 0, err); /* reports the reason */
    void *buf = aligned_alloc(64, sz);
    if (!buf) return an_err_set(err, AN_E_NOMEM, "amx: %zu bytes for packed %s", sz, w->name ? w->name : "weight");
    an_status s = an_amx_pack_into(w, buf, sz, err);
    if (s == AN_OK) s = an_amx_weight_view(buf, sz, w, out, err);
    if (s != AN_OK) {
        free(buf);
        return s;
    }
    (*out)->owned = buf;
    return AN_OK;
}

void an_amx_weight_free(an_amx_weight *w) {
    if (!w) return;
    free(w->owned);
    free(w);
}

const an_mat *an_amx_weight_mat(const an_amx_weight *w) { return &w->src; }

/* ---- matmul ------------------------------------------------------------------------------- */

/* Rows of one chunk stay in L2 (<= ~1 MiB of packed weights) while every token block passes
 * over them; each token block's panel (32 x K) is reused by all the chunk's row blocks. */
#define CHUNK_BYTES (1u << 20)

/* Per-thread scratch: a converted activation row (<= 4 bytes per element), the 32 x 32 float
 * output block, two 32 x 32 int32 blocks (the INT8 kernel's software pipeline), and a chunk
 * of LUT rows expanded to BF16 tiles (at least one 32-row block). */
static size_t lut_chunk_bytes(int64_t kp) {
    const size_t blk = (size_t)kp * 64;
    return blk > CHUNK_BYTES ? blk : CHUNK_BYTES;
}
static size_t per_thread_bytes(int64_t kp) { return ALIGN64((size_t)kp * 4 + 512) + 3 * 4096 + lut_chunk_bytes(kp); }

static size_t panel_bytes(int64_t kp, int np) {
    const size_t bf = 3 * ALIGN64((size_t)np * (size_t)kp * 2);
    const size_t i8 = ALIGN64((size_t)np * (size_t)kp) + 2 * ALIGN64((size_t)np * (size_t)(kp / 16) * 4);
    return bf > i8 ? bf : i8;
}

size_t an_amx_wsize(int64_t k_max, int n_max, int nth) {
    const int64_t kp = (k_max + 31) / 32 * 32;
    const int np = (n_max < 1 ? 1 : n_max + 31) / 32 * 32;
    return panel_bytes(kp, np) + (size_t)(nth < 1 ? 1 : nth) * per_thread_bytes(kp) + 64;
}

/* The scalar reference of the INT8 activation conversion (an_amx_k_quant_row is the AVX-512
 * one the engine runs, bit for bit the same): x[K] quantized as llama.cpp's CPU path does
 * (an_quant_act_row), block b's kb quants to q + b * qstride, as[b] its scale, am[b] scale x
 * the sum of its quants. tmp: an_quant_act_row's output for K (K/32 * 36 bytes suffices). */
static void quant_row_ref(const float *x, int64_t K, int act, int kb, int8_t *q, int64_t qstride, float *as,
                          float *am, uint8_t *tmp) {
    if (act == AMX_ACT_Q8_0 || act == AMX_ACT_Q8_1) {
        const bool q81 = act == AMX_ACT_Q8_1;
        an_quant_act_row(q81 ? AN_TYPE_Q8_1 : AN_TYPE_Q8_0, x, tmp, K);
        const size_t bs = q81 ? sizeof(an_block_q8_1) : sizeof(an_block_q8_0);
        for (int64_t b = 0; b < K / 32; b++) {
            const uint8_t *blk = tmp + (size_t)b * bs;
            an_f16 d;
            memcpy(&d, blk, 2);
            int8_t *qb = q + b * qstride;
            memcpy(qb, blk + (q81 ? 4 : 2), 32);
            int s = 0;
            for (int i = 0; i < 32; i++) s += qb[i];
            as[b] = an_f16_to_f32(d);
            /* the block sum from the integers (exact up to one rounding), not Q8_1's f16 s */
            am[b] = as[b] * (float)s;
        }
        return;
    }
    an_quant_act_row(AN_TYPE_Q8_K, x, tmp, K);
    for (int64_t sb = 0; sb < K / 256; sb++) {
        an_block_q8_K blk;
        memcpy(&blk, tmp + (size_t)sb * sizeof blk, sizeof blk);
        for (int64_t b = 0; b < 256 / kb; b++) {
            memcpy(q + (sb * (256 / kb) + b) * qstride, blk.qs + b * kb, (size_t)kb);
            const int s = kb == 16 ? blk.bsums[b] : blk.bsums[2 * b] + blk.bsums[2 * b + 1];
            as[sb * (256 / kb) + b] = blk.d;
            am[sb * (256 / kb) + b] = blk.d * (float)s;
        }
    }
}

an_status an_amx_quant_act_row(uint32_t type, const float *x, int64_t K, bool reference, int8_t *q, float *as,
                               float *am, an_err *err) {
    fmt f;
    if (!fmt_of(type, &f) || f.kind != AMX_KIND_I8)
        return an_err_set(err, AN_E_UNSUPPORTED, "amx: %s has no INT8 activation form", an_type_name(type));
    const int64_t need = f.act >= AMX_ACT_Q8_K32 ? 256 : 32;
    if (K <= 0 || K % need) return an_err_set(err, AN_E_USAGE, "amx: K = %lld is not a multiple of %lld", (long long)K, (long long)need);
    if (reference) {
        uint8_t *tmp = malloc((size_t)(K / 256 + 1) * sizeof(an_block_q8_K) + (size_t)K / 32 * sizeof(an_block_q8_1));
        if (!tmp) return an_err_set(err, AN_E_NOMEM, "amx: scratch");
        quant_row_ref(x, K, f.act, f.kb, q, f.kb, as, am, tmp);
        free(tmp);
        return AN_OK;
    }
    const char *why;
    if (!an_amx_available(&why)) return an_err_set(err, AN_E_UNSUPPORTED, "%s", why);
#if AN_AMX_BUILD
    an_amx_k_quant_row(x, K, f.act, f.kb, q, f.kb, as, am);
    return AN_OK;
#else
    return an_err_set(err, AN_E_UNSUPPORTED, "amx: not built for this architecture");
#endif
}

#if AN_AMX_BUILD
typedef struct {
    const an_amx_weight *const *w;
    const an_mm_out *outs;
    int n_outs;
    int64_t units; /* 32-row blocks of all outputs */
    const float *x;
    int64_t K;
    int n;
    amx_panel p;
    uint8_t *thr;
    size_t per_thread;
    uint8_t pass[6][2];
    int npass;
} amx_job;

static void job_convert(void *arg, int ith, int nth) {
    amx_job *j = arg;
    const amx_panel *p = &j->p;
    const int t0 = p->np * ith / nth, t1 = p->np * (ith + 1) / nth;
    if (p->act <= AMX_ACT_F32) {
        an_amx_k_convert_bf16(j->x, j->K, j->n, p, t0, t1);
        return;
    }
    uint8_t *tmp = j->thr + (size_t)ith * j->per_thread;
    const int64_t K = j->K, nb = p->nblk, kb = p->kb;
    for (int t = t0; t < t1; t++) {
        /* tile order: token tile t/16, block b, then 16 x kb */
        int8_t *q = p->q + (int64_t)(t / 16) * nb * 16 * kb + (t % 16) * kb;
        float *as = p->as + (int64_t)t * nb, *am = p->am + (int64_t)t * nb;
        if (t >= j->n) {
            for (int64_t b = 0; b < nb; b++) memset(q + b * 16 * kb, 0, (size_t)kb);
            memset(as, 0, sizeof(float) * (size_t)nb);
            memset(am, 0, sizeof(float) * (size_t)nb);
            continue;
        }
        const float *xr = j->x + (int64_t)t * K;
        if (g_quant_ref) quant_row_ref(xr, K, p->act, (int)kb, q, 16 * kb, as, am, tmp);
        else an_amx_k_quant_row(xr, K, p->act, (int)kb, q, 16 * kb, as, am);
    }
}

/* Output unit u (a 32-row block of the concatenated outputs) -> output index and local block. */
static int locate(const amx_job *j, int64_t u, int64_t *local) {
    for (int o = 0; o < j->n_outs; o++) {
        const int64_t cnt = j->w[o]->mp / 32;
        if (u < cnt) {
            *local = u;
            return o;
        }
        u -= cnt;
    }
    *local = 0;
    return -1;
}

static void job_gemm(void *arg, int ith, int nth) {
    amx_job *j = arg;
    uint8_t *thr = j->thr + (size_t)ith * j->per_thread;
    float *c = (float *)(thr + ALIGN64((size_t)j->p.kp * 4 + 512));
    int32_t *ib = (int32_t *)(c + 1024);
    uint16_t *xl = (uint16_t *)(ib + 2048); /* expanded LUT rows (lut_chunk_bytes) */
    int cfg_kind = -1, cfg_kb = -1;
    int64_t u = j->units * ith / nth;
    const int64_t u1 = j->units * (ith + 1) / nth;
    while (u < u1) {
        int64_t lb;
        const int o = locate(j, u, &lb);
        const an_amx_weight *w = j->w[o];
        const an_mm_out *out = &j->outs[o];
        const int kind = w->kind == AMX_KIND_LUT ? AMX_KIND_BF16 : w->kind; /* LUT runs on BF16 tiles */
        if (kind != cfg_kind || w->kb != cfg_kb) {
            an_amx_k_config(kind, w->kb);
            cfg_kind = kind, cfg_kb = w->kb;
        }
        const int npl = w->kind == AMX_KIND_BF16 ? w->nplanes : 1;
        const size_t blk_bytes = (size_t)w->kp * 32 * (w->kind != AMX_KIND_I8 ? 2 * (size_t)npl : 1);
        int64_t rb = (int64_t)(CHUNK_BYTES / blk_bytes);
        if (rb < 1) rb = 1;
        if (rb > w->mp / 32 - lb) rb = w->mp / 32 - lb;
        if (rb > u1 - u) rb = u1 - u;
        an_amx_weight xw; /* LUT: the chunk's rows expanded, as a one-plane BF16 weight */
        if (w->kind == AMX_KIND_LUT) {
            an_amx_k_expand_lut(w, 2 * lb, 2 * rb, xl);
            xw = *w;
            xw.kind = AMX_KIND_BF16, xw.nplanes = 1, xw.ngrp = 2 * rb, xw.tiles = (const uint8_t *)xl;
        }
        for (int t0 = 0; t0 < j->n; t0 += 32) {
            const int nt = j->n - t0 < 32 ? j->n - t0 : 32, two_a = nt > 16;
            for (int64_t b = lb; b < lb + rb; b++) {
                if (w->kind == AMX_KIND_LUT) {
                    static const uint8_t one[1][2] = {{0, 0}};
                    an_amx_k_block_bf16(&xw, &j->p, 2 * (b - lb), t0, two_a, one, 1, c);
                    const int64_t r0 = b * 32;
                    for (int t = 0; t < nt; t++) /* each row's scale (1 when the matrix has none) */
                        for (int r = 0; r < 32; r++) c[t * 32 + r] *= w->ws[r0 + r];
                } else if (w->kind == AMX_KIND_BF16) {
                    const bool f16 = w->act == AMX_ACT_F16, f32 = w->act == AMX_ACT_F32;
                    static const uint8_t one[1][2] = {{0, 0}};
                    an_amx_k_block_bf16(w, &j->p, 2 * b, t0, two_a, f16 || f32 ? (const uint8_t(*)[2])j->pass : one,
                                        f16 || f32 ? j->npass : 1, c);
                } else {
                    an_amx_k_block_i8(w, &j->p, 2 * b, t0, two_a, c, ib);
                }
                const int64_t r0 = b * 32;
                const int nr = (int)(w->src.rows - r0 < 32 ? w->src.rows - r0 : 32);
                for (int t = 0; t < nt; t++) memcpy(out->y + (int64_t)(t0 + t) * out->ldy + r0, c + t * 32, sizeof(float) * (size_t)nr);
            }
        }
        u += rb;
    }
    if (cfg_kind >= 0) an_amx_k_release();
}
#endif

an_status an_amx_matmul(an_pool *pool, const an_amx_weight *const *w, const an_mm_out *outs, int n_outs,
                        const float *x, int n, void *ws, an_err *err) {
    const char *why;
    if (!an_amx_available(&why)) return an_err_set(err, AN_E_UNSUPPORTED, "%s", why);
    if (n_outs <= 0 || n <= 0) return AN_OK;
    for (int o = 1; o < n_outs; o++)
        if (w[o]->src.cols != w[0]->src.cols)
            return an_err_set(err, AN_E_USAGE, "amx: fused weights differ in K (%lld vs %lld)",
                              (long long)w[o]->src.cols, (long long)w[0]->src.cols);
#if AN_AMX_BUILD
    const int nth = an_pool_size(pool);
    int o0 = 0;
    while (o0 < n_outs) { /* groups of consecutive weights sharing the activation format */
        int o1 = o0 + 1;
        while (o1 < n_outs && w[o1]->act == w[o0]->act && w[o1]->kb == w[o0]->kb) o1++;
        amx_job j;
        memset(&j, 0, sizeof j);
        j.w = w + o0, j.outs = outs + o0, j.n_outs = o1 - o0;
        j.x = x, j.K = w[o0]->src.cols, j.n = n;
        for (int o = 0; o < j.n_outs; o++) j.units += j.w[o]->mp / 32;
        amx_panel *p = &j.p;
        p->act = w[o0]->act, p->kb = w[o0]->kb, p->kp = w[o0]->kp, p->nblk = w[o0]->nblk;
        p->np = (n + 31) / 32 * 32;
        p->nplanes = w[o0]->kind == AMX_KIND_BF16 ? w[o0]->nplanes : w[o0]->kind == AMX_KIND_LUT ? 1 : 0;
        uint8_t *b = (uint8_t *)ALIGN64((uintptr_t)ws);
        const size_t pb = ALIGN64((size_t)p->np * (size_t)p->kp * 2);
        if (p->nplanes) {
            for (int i = 0; i < p->nplanes; i++) p->bf[i] = (uint16_t *)(b + (size_t)i * pb);
        } else {
            p->q = (int8_t *)b;
            p->as = (float *)(b + ALIGN64((size_t)p->np * (size_t)p->kp));
            p->am = p->as + ALIGN64((size_t)p->np * (size_t)(p->kp / 16) * 4) / 4;
        }
        j.thr = b + panel_bytes(p->kp, p->np);
        j.per_thread = per_thread_bytes(p->kp);
        if (p->act == AMX_ACT_F16) {
            static const uint8_t f16p[4][4][2] = {{{0, 0}},
                                                  {{0, 0}, {1, 0}},
                                                  {{1, 0}, {0, 0}, {0, 1}},
                                                  {{0, 0}, {0, 1}, {1, 1}, {1, 0}}};
            j.npass = an_amx_f16_passes();
            memcpy(j.pass, f16p[j.npass - 1], sizeof f16p[0]);
        } else if (p->act == AMX_ACT_F32) { /* the plane pairs of order <= 2, ordered to reuse tiles */
            static const uint8_t f32p[6][2] = {{0, 0}, {0, 1}, {0, 2}, {1, 1}, {1, 0}, {2, 0}};
            memcpy(j.pass, f32p, sizeof f32p);
            j.npass = 6;
        }
        an_pool_run(pool, job_convert, &j);
        an_pool_run(pool, job_gemm, &j);
        o0 = o1;
    }
    (void)nth;
    return AN_OK;
#else
    (void)pool, (void)outs, (void)x, (void)ws;
    return an_err_set(err, AN_E_UNSUPPORTED, "amx: not built for this architecture");
#endif
}
