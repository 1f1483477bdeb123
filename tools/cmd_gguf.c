/* cmd_gguf.c — `anelm inspect` (metadata and tensor table) and `anelm quantize`. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "core/log.h"
#include "core/pool.h"
#include "gguf/gguf.h"
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
    return false;
}

int cmd_quantize(int argc, char **argv) {
    const char *cmd = "quantize", *pos[3] = {0};
    int np = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: anelm quantize IN OUT TYPE [-t N]\n"
                   "  TYPE: q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k f16 bf16 f32\n"
                   "  every 2-D tensor (token embedding included) whose row length is a multiple of the\n"
                   "  block size is converted with the format's reference rounding; others are copied.\n");
            return EXIT_OK;
        }
        if (!strcmp(a, "-t")) {
            if (!cli_int(cmd, argc, argv, &i, 1, 256, &threads)) return EXIT_USAGE;
            continue;
        }
        if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option '%s'", a);
        if (np == 3) return cli_usage_error(cmd, "expected IN OUT TYPE");
        pos[np++] = a;
    }
    if (np != 3) return cli_usage_error(cmd, "expected IN OUT TYPE");
    an_type to;
    if (!parse_type(pos[2], &to)) return cli_usage_error(cmd, "unknown type '%s'", pos[2]);
    struct stat si, so;
    if (stat(pos[0], &si) == 0 && stat(pos[1], &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
        return cli_usage_error(cmd, "OUT is the input file; refusing to overwrite it");

    an_log_set_level(1);
    an_err err = {0};
    an_gguf *g = NULL;
    an_gguf_writer *w = NULL;
    an_pool *pool = NULL;
    int64_t nt = 0;
    uint8_t **bufs = NULL;
    int rc = EXIT_OK;
    if (an_gguf_open(&g, pos[0], &err) != AN_OK || an_gguf_writer_create(&w, &err) != AN_OK ||
        an_pool_create(&pool, threads ? threads : an_cpu_count(), &err) != AN_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    an_gguf_writer_set_alignment(w, (uint32_t)an_gguf_alignment(g));
    for (int64_t i = 0; i < an_gguf_n_kv(g); i++) {
        const an_gguf_kv *kv = an_gguf_kv_at(g, i);
        if (an_str_eq(kv->key, "general.file_type") || an_str_eq(kv->key, "general.quantization_version") ||
            an_str_eq(kv->key, "general.alignment"))
            continue;
        an_gguf_writer_kv_copy(w, kv);
    }
    if (an_gguf_find(g, "general.alignment")) an_gguf_writer_u32(w, "general.alignment", (uint32_t)an_gguf_alignment(g));
    an_gguf_writer_u32(w, "general.quantization_version", 2);
    if (file_type_of(to) >= 0) an_gguf_writer_u32(w, "general.file_type", (uint32_t)file_type_of(to));
    nt = an_gguf_n_tensors(g);
    bufs = calloc((size_t)(nt ? nt : 1), sizeof *bufs);
    if (!bufs) {
        an_err_set(&err, AN_E_NOMEM, "out of memory");
        rc = cli_fail(&err);
        goto out;
    }
    for (int64_t i = 0; i < nt; i++) {
        const an_gguf_tensor *t = an_gguf_tensor_at(g, i);
        const an_type_traits *tt = an_type_traits_get(to);
        bool convert = t->n_dims >= 2 && t->type != (uint32_t)to && t->ne[0] % tt->blck == 0 &&
                       (t->type == AN_TYPE_F32 || t->type == AN_TYPE_F16 || t->type == AN_TYPE_BF16 ||
                        an_quant_is_weight_type(t->type));
        if (!convert) {
            an_gguf_writer_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
            continue;
        }
        uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        uint64_t nbytes = rows * an_row_bytes(tt, (uint64_t)t->ne[0]);
        if (!(bufs[i] = malloc(nbytes ? nbytes : 1))) {
            an_err_set(&err, AN_E_NOMEM, "out of memory quantizing tensor %s", t->name);
            rc = cli_fail(&err);
            goto out;
        }
        qjob j = {.t = t, .to = to, .out = bufs[i],
                  .tmp = malloc((size_t)an_pool_size(pool) * (size_t)t->ne[0] * sizeof(float))};
        if (!j.tmp) {
            an_err_set(&err, AN_E_NOMEM, "out of memory quantizing tensor %s", t->name);
            rc = cli_fail(&err);
            goto out;
        }
        an_pool_run(pool, quant_rows, &j);
        free(j.tmp);
        an_gguf_writer_tensor(w, t->name, to, t->n_dims, t->ne, bufs[i], nbytes);
        an_progress("quantize: tensors", (uint64_t)i + 1, (uint64_t)nt);
    }
    if (an_gguf_writer_write(w, pos[1], &err) != AN_OK) {
        rc = cli_fail(&err);
        goto out;
    }
    fprintf(stderr, "wrote %s (%s)\n", pos[1], an_type_name(to));
out:
    for (int64_t i = 0; bufs && i < nt; i++) free(bufs[i]);
    free(bufs);
    an_pool_free(pool);
    an_gguf_writer_free(w);
    an_gguf_free(g);
    return rc;
}
