/* cmd_gguf.c — `anelm inspect` (metadata and tensor table) and `anelm quantize`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "core/log.h"
#include "core/pool.h"
#include "gguf/gguf.h"
#include "quant/lut.h"
#include "quant/palettize.h"
#include "quant/quant.h"

static void print_scalar(const an_gguf_kv *kv) {
    switch (kv->type) {
    case AN_GGUF_F32:
    case AN_GGUF_F64: printf("%.9g", kv->v.f); break;
    case AN_GGUF_BOOL: printf("%s", kv->v.u ? "true" : "false"); break;
    case AN_GGUF_STR: cli_json_str(stdout, kv->v.s.p, kv->v.s.n > 200 ? 200 : kv->v.s.n); break;
    case AN_GGUF_I8:
    case AN_GGUF_I16:
    case AN_GGUF_I32:
    case AN_GGUF_I64: printf("%lld", (long long)kv->v.i); break;
    default: printf("%llu", (unsigned long long)kv->v.u); break;
    }
}

int cmd_inspect(int argc, char **argv) {
    const char *cmd = "inspect", *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: anelm inspect MODEL\n  prints the GGUF metadata and tensor table\n");
            return EXIT_OK;
        }
        if (argv[i][0] == '-') return cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        if (path) return cli_usage_error(cmd, "one MODEL only");
        path = argv[i];
    }
    if (!path) return cli_usage_error(cmd, "MODEL is required");
    an_err err = {0};
    an_gguf *g;
    if (an_gguf_open(&g, path, &err) != AN_OK) return cli_fail(&err);
    printf("file: %s\nGGUF version %u, %llu bytes, alignment %llu, data at byte %llu\n", path, an_gguf_version(g),
           (unsigned long long)an_gguf_size(g), (unsigned long long)an_gguf_alignment(g),
           (unsigned long long)an_gguf_data_offset(g));
    printf("\nmetadata (%lld keys):\n", (long long)an_gguf_n_kv(g));
    for (int64_t i = 0; i < an_gguf_n_kv(g); i++) {
        const an_gguf_kv *kv = an_gguf_kv_at(g, i);
        printf("  %-44.*s ", (int)kv->key.n, kv->key.p);
        if (kv->type != AN_GGUF_ARR) {
            printf("%-7s ", an_gguf_vtype_name(kv->type));
            print_scalar(kv);
        } else {
            printf("%s[%llu] ", an_gguf_vtype_name(kv->arr_type), (unsigned long long)kv->arr_n);
            uint64_t show = kv->arr_n < 6 ? kv->arr_n : 6;
            for (uint64_t j = 0; j < show; j++) {
                if (j) printf(", ");
                if (kv->arr_type == AN_GGUF_STR) cli_json_str(stdout, kv->arr_str[j].p, kv->arr_str[j].n > 40 ? 40 : kv->arr_str[j].n);
                else if (kv->arr_type == AN_GGUF_F32 || kv->arr_type == AN_GGUF_F64) printf("%g", an_gguf_arr_f64(kv, j));
                else printf("%lld", (long long)an_gguf_arr_i64(kv, j));
            }
            if (show < kv->arr_n) printf(", ...");
        }
        printf("\n");
    }
    printf("\ntensors (%lld):\n  %-32s %-6s %-22s %12s %12s\n", (long long)an_gguf_n_tensors(g), "name", "type",
           "shape", "offset", "bytes");
    for (int64_t i = 0; i < an_gguf_n_tensors(g); i++) {
        const an_gguf_tensor *t = an_gguf_tensor_at(g, i);
        char shape[64];
        int o = snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t->n_dims; d++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
        snprintf(shape + o, sizeof shape - (size_t)o, "]");
        printf("  %-32s %-6s %-22s %12llu %12llu\n", t->name, an_type_name(t->type), shape,
               (unsigned long long)t->off, (unsigned long long)t->nbytes);
    }
    an_gguf_free(g);
    return EXIT_OK;
}

/* ---- quantize ----------------------------------------------------------------------------- */

/* llama.cpp's general.file_type values for the "mostly T" files we write. */
static int file_type_of(an_type t) {
    switch (t) {
    case AN_TYPE_F32: return 0;
    case AN_TYPE_F16: return 1;
    case AN_TYPE_Q4_0: return 2;
    case AN_TYPE_Q4_1: return 3;
    case AN_TYPE_Q8_0: return 7;
    case AN_TYPE_Q5_0: return 8;
    case AN_TYPE_Q5_1: return 9;
    case AN_TYPE_Q2_K: return 10;
    case AN_TYPE_Q3_K: return 12; /* Q3_K_M */
    case AN_TYPE_Q4_K: return 15; /* Q4_K_M */
    case AN_TYPE_Q5_K: return 17; /* Q5_K_M */
    case AN_TYPE_Q6_K: return 18;
    case AN_TYPE_BF16: return 32;
    default: return -1;
    }
}

typedef struct {
    const an_gguf_tensor *t;
    an_type to;
    uint8_t *out;
    float *tmp; /* one dequantized row per thread: [nth][ne0] */
} qjob;

static void quant_rows(void *arg, int ith, int nth) {
    qjob *j = arg;
    const an_gguf_tensor *t = j->t;
    int64_t cols = t->ne[0], rows = t->nbytes / an_row_bytes(an_type_traits_get(t->type), (uint64_t)cols);
    uint64_t in_rb = an_row_bytes(an_type_traits_get(t->type), (uint64_t)cols);
    uint64_t out_rb = an_row_bytes(an_type_traits_get(j->to), (uint64_t)cols);
    float *tmp = j->tmp + (size_t)ith * (size_t)cols;
    for (int64_t r = ith; r < rows; r += nth) {
        an_dequant_row((an_type)t->type, (const uint8_t *)t->data + (uint64_t)r * in_rb, tmp, cols);
        an_quant_row_ref(j->to, tmp, j->out + (uint64_t)r * out_rb, cols);
    }
}

static bool parse_type(const char *s, an_type *out) {
    static const an_type types[] = {AN_TYPE_F32,  AN_TYPE_F16,  AN_TYPE_BF16, AN_TYPE_Q8_0, AN_TYPE_Q4_0,
                                    AN_TYPE_Q4_1, AN_TYPE_Q5_0, AN_TYPE_Q5_1, AN_TYPE_Q2_K, AN_TYPE_Q3_K,
                                    AN_TYPE_Q4_K, AN_TYPE_Q5_K, AN_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(s, an_type_name(types[i]))) {
            *out = types[i];
            return true;
        }
    int bits = an_pal_parse(s);
    if (bits) {
        *out = (an_type)an_pal_type(bits);
        return true;
    }
    return false;
}

/* FNV-1a of a tensor name: the palettizer's per-tensor salt (the load-time path, api.c, uses the
 * same, so a file and a load-time palettization of the same weights agree byte for byte). */
static uint64_t name_salt(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* One converted tensor and its companions (LUT types). */
typedef struct qout {
    uint8_t *data;
    uint16_t *lut, *scale;
} qout;

int cmd_quantize(int argc, char **argv) {
    const char *cmd = "quantize", *pos[3] = {0}, *embd_s = NULL, *keep[16];
    int np = 0, threads = 0, lut_group = 0, row_scale = 0, n_keep = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: anelm quantize IN OUT TYPE [-t N] [--lut-group G] [--row-scale]\n"
                   "                      [--token-embedding-type T] [--keep SUBSTRING]...\n"
                   "  TYPE: q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k f16 bf16 f32, or lut4 lut6 lut8\n"
                   "  every 2-D tensor whose row length is a multiple of the block size is converted with the\n"
                   "  format's reference rounding (K-quants: no importance matrix); others are copied.\n"
                   "  lut4/lut6/lut8 palettize each matrix by k-means: a table of 2^b fp16 values per group\n"
                   "  of G rows (--lut-group; default 1 for lut4, %d otherwise) and a b-bit index per weight;\n"
                   "  --row-scale adds a fp16 scale per row (max |w|) applied before clustering.\n"
                   "  The token embedding (the output matrix when tied) and output.weight get\n"
                   "  --token-embedding-type: by default TYPE, but Q6_K with lut4 and Q8_0 with lut6/lut8.\n"
                   "  --keep S copies tensors whose name contains S unchanged (repeatable, up to 16).\n",
                   AN_PAL_GROUP_DEFAULT);
            return EXIT_OK;
        }
        bool ok = true;
        if (!strcmp(a, "-t")) ok = cli_int(cmd, argc, argv, &i, 1, 256, &threads);
        else if (!strcmp(a, "--lut-group")) ok = cli_int(cmd, argc, argv, &i, 1, 4096, &lut_group);
        else if (!strcmp(a, "--row-scale")) row_scale = 1;
        else if (!strcmp(a, "--token-embedding-type")) ok = cli_str(cmd, argc, argv, &i, &embd_s);
        else if (!strcmp(a, "--keep")) {
            if (n_keep == 16) return cli_usage_error(cmd, "at most 16 --keep options");
            ok = cli_str(cmd, argc, argv, &i, &keep[n_keep]);
            n_keep += ok;
        }
        else if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option '%s'", a);
        else {
            if (np == 3) return cli_usage_error(cmd, "expected IN OUT TYPE");
            pos[np++] = a;
        }
        if (!ok) return EXIT_USAGE;
    }
    if (np != 3) return cli_usage_error(cmd, "expected IN OUT TYPE");
    an_type to, to_embd;
    if (!parse_type(pos[2], &to)) return cli_usage_error(cmd, "unknown type '%s'", pos[2]);
    to_embd = to;
    if (embd_s && !parse_type(embd_s, &to_embd))
        return cli_usage_error(cmd, "unknown --token-embedding-type '%s'", embd_s);
    const bool embd_default = !embd_s && an_lut_is_type(to); /* an_pal_embd_type, per its row length */
    const bool any_lut = an_lut_is_type(to) || an_lut_is_type(to_embd);
    if ((lut_group || row_scale) && !any_lut)
        return cli_usage_error(cmd, "--lut-group and --row-scale apply to lut4, lut6 and lut8 only");
    struct stat si, so;
    if (stat(pos[0], &si) == 0 && stat(pos[1], &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
        return cli_usage_error(cmd, "OUT is the input file; refusing to overwrite it");

    an_log_set_level(1);
    an_err err = {0};
    an_gguf *g = NULL;
    an_gguf_writer *w = NULL;
    an_pool *pool = NULL;
    int64_t nt = 0;
    qout *bufs = NULL;
    int rc = EXIT_OK;
    double sse_all = 0, ssw_all = 0;
    uint64_t mat_params = 0, mat_bytes = 0;
    an_pal_params pp = an_pal_defaults(an_lut_bits(to) ? an_lut_bits(to) : an_lut_bits(to_embd));
    if (lut_group) pp.group = lut_group;
    pp.row_scale = row_scale;
    if (an_gguf_open(&g, pos[0], &err) != AN_OK || an_gguf_writer_create(&w, &err) != AN_OK ||
        an_pool_create(&pool, threads ? threads : an_cpu_count(), &err) != AN_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    nt = an_gguf_n_tensors(g);
    for (int64_t i = 0; i < nt; i++) {
        const an_gguf_tensor *t = an_gguf_tensor_at(g, i);
        if (an_lut_is_type(t->type)) {
            an_err_set(&err, AN_E_UNSUPPORTED, "%s: tensor %s is already palettized (%s); quantize from the F16/BF16 model",
                       pos[0], t->name, an_type_name(t->type));
            rc = cli_fail(&err);
            goto out;
        }
    }
    an_gguf_writer_set_alignment(w, (uint32_t)an_gguf_alignment(g));
    for (int64_t i = 0; i < an_gguf_n_kv(g); i++) {
        const an_gguf_kv *kv = an_gguf_kv_at(g, i);
        if (an_str_eq(kv->key, "general.file_type") || an_str_eq(kv->key, "general.quantization_version") ||
            an_str_eq(kv->key, "general.alignment") ||
            (kv->key.n > 10 && !memcmp(kv->key.p, "anelm.lut.", 10)))
            continue;
        an_gguf_writer_kv_copy(w, kv);
    }
    if (an_gguf_find(g, "general.alignment")) an_gguf_writer_u32(w, "general.alignment", (uint32_t)an_gguf_alignment(g));
    an_gguf_writer_u32(w, "general.quantization_version", 2);
    if (file_type_of(to) >= 0) an_gguf_writer_u32(w, "general.file_type", (uint32_t)file_type_of(to));
    if (any_lut) {
        an_gguf_writer_u32(w, "anelm.lut.version", 1);
        an_gguf_writer_u32(w, "anelm.lut.bits", (uint32_t)pp.bits);
        an_gguf_writer_u32(w, "anelm.lut.group", (uint32_t)pp.group);
        an_gguf_writer_bool(w, "anelm.lut.row_scale", pp.row_scale);
        an_gguf_writer_u32(w, "anelm.lut.palettizer_version", AN_PAL_VERSION);
    }
    bufs = calloc((size_t)(nt ? nt : 1), sizeof *bufs);
    if (!bufs) {
        an_err_set(&err, AN_E_NOMEM, "out of memory");
        rc = cli_fail(&err);
        goto out;
    }
    for (int64_t i = 0; i < nt; i++) {
        const an_gguf_tensor *t = an_gguf_tensor_at(g, i);
        const bool is_embd = !strcmp(t->name, "token_embd.weight") || !strcmp(t->name, "output.weight");
        an_type tto = is_embd ? to_embd : to;
        if (embd_default && is_embd) {
            const uint32_t et = an_pal_embd_type(an_lut_bits(to), t->ne[0]);
            tto = et ? (an_type)et : (an_type)t->type;
        }
        const an_type_traits *tt = an_type_traits_get(tto);
        const bool lut = an_lut_is_type(tto);
        const bool src_ok = t->type == AN_TYPE_F32 || an_quant_is_weight_type(t->type);
        bool convert = t->n_dims >= 2 && t->type != (uint32_t)tto && t->ne[0] % tt->blck == 0 && src_ok;
        if (lut) convert = convert && t->n_dims == 2; /* tables are per matrix */
        for (int k = 0; k < n_keep; k++) convert = convert && !strstr(t->name, keep[k]);
        if (!convert) {
            an_gguf_writer_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
            if (t->n_dims >= 2) mat_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]), mat_bytes += t->nbytes;
            continue;
        }
        const uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        const uint64_t nbytes = rows * an_row_bytes(tt, (uint64_t)t->ne[0]);
        if (!(bufs[i].data = malloc(nbytes ? nbytes : 1))) {
            an_err_set(&err, AN_E_NOMEM, "out of memory quantizing tensor %s", t->name);
            rc = cli_fail(&err);
            goto out;
        }
        mat_params += rows * (uint64_t)t->ne[0];
        mat_bytes += nbytes;
        if (lut) {
            an_pal_params tp = pp;
            tp.bits = an_lut_bits(tto);
            const int64_t grp = an_pal_group((int64_t)rows, tp.group), n_tab = (int64_t)rows / grp, k = 1 << tp.bits;
            char lname[96], sname[96];
            snprintf(lname, sizeof lname, "%s.lut", t->name);
            snprintf(sname, sizeof sname, "%s.lut_scale", t->name);
            if (strlen(tp.row_scale ? sname : lname) >= 64) {
                an_err_set(&err, AN_E_UNSUPPORTED, "tensor name %s is too long for its companion tensor %s (GGUF names are < 64 bytes)",
                           t->name, tp.row_scale ? sname : lname);
                rc = cli_fail(&err);
                goto out;
            }
            bufs[i].lut = malloc((size_t)(n_tab * k) * sizeof(uint16_t));
            bufs[i].scale = tp.row_scale ? malloc(rows * sizeof(uint16_t)) : NULL;
            if (!bufs[i].lut || (tp.row_scale && !bufs[i].scale)) {
                an_err_set(&err, AN_E_NOMEM, "out of memory palettizing tensor %s", t->name);
                rc = cli_fail(&err);
                goto out;
            }
            double sse = 0, ssw = 0;
            if (an_palettize(pool, t->type, t->data, (int64_t)rows, t->ne[0], &tp, name_salt(t->name), bufs[i].data,
                             bufs[i].lut, bufs[i].scale, t->name, &sse, &ssw, &err) != AN_OK) {
                rc = cli_fail(&err);
                goto out;
            }
            sse_all += sse, ssw_all += ssw;
            an_log(2, "%s: %s, group %lld, relative squared error %.3e\n", t->name, an_type_name(tto), (long long)grp,
                   ssw > 0 ? sse / ssw : 0.0);
            an_gguf_writer_tensor(w, t->name, tto, t->n_dims, t->ne, bufs[i].data, nbytes);
            const int64_t lne[2] = {k, n_tab};
            an_gguf_writer_tensor(w, lname, AN_TYPE_F16, 2, lne, bufs[i].lut, (uint64_t)(n_tab * k) * 2);
            mat_bytes += (uint64_t)(n_tab * k) * 2;
            if (tp.row_scale) {
                const int64_t sne[1] = {(int64_t)rows};
                an_gguf_writer_tensor(w, sname, AN_TYPE_F16, 1, sne, bufs[i].scale, rows * 2);
                mat_bytes += rows * 2;
            }
        } else {
            qjob j = {.t = t, .to = tto, .out = bufs[i].data,
                      .tmp = malloc((size_t)an_pool_size(pool) * (size_t)t->ne[0] * sizeof(float))};
            if (!j.tmp) {
                an_err_set(&err, AN_E_NOMEM, "out of memory quantizing tensor %s", t->name);
                rc = cli_fail(&err);
                goto out;
            }
            an_pool_run(pool, quant_rows, &j);
            free(j.tmp);
            an_gguf_writer_tensor(w, t->name, tto, t->n_dims, t->ne, bufs[i].data, nbytes);
        }
        an_progress("quantize: tensors", (uint64_t)i + 1, (uint64_t)nt);
    }
    if (an_gguf_writer_write(w, pos[1], &err) != AN_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    fprintf(stderr, "wrote %s (%s", pos[1], an_type_name(to));
    const an_gguf_tensor *te = an_gguf_tensor_find(g, "token_embd.weight");
    if (te && (embd_s || embd_default)) {
        uint32_t et = embd_default ? an_pal_embd_type(an_lut_bits(to), te->ne[0]) : (uint32_t)to_embd;
        fprintf(stderr, ", token embedding %s", an_type_name(et ? et : te->type));
    }
    fprintf(stderr, "): matrices %.4f bits per weight", mat_params ? 8.0 * (double)mat_bytes / (double)mat_params : 0.0);
    if (ssw_all > 0) fprintf(stderr, ", palettized relative squared error %.3e", sse_all / ssw_all);
    fprintf(stderr, "\n");
out:
    for (int64_t i = 0; bufs && i < nt; i++) free(bufs[i].data), free(bufs[i].lut), free(bufs[i].scale);
    free(bufs);
    an_pool_free(pool);
    an_gguf_writer_free(w);
    an_gguf_free(g);
    return rc;
}
