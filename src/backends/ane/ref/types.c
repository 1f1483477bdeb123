/* types.c — MIL data types (names, element bits, blob.h codes, integer ranges) and tensor
 * types of the reference executor. */
#include <stdio.h>
#include <string.h>

#include "backends/ane/ref/ref_impl.h"

static const ref_dt_info g_dt[DT_COUNT] = {
    [DT_NONE] = {"?", 0, 0, false, false, 0, 0},
    [DT_FP16] = {"fp16", 16, AN_BLOB_FP16, true, true, 0, 0},
    [DT_FP32] = {"fp32", 32, AN_BLOB_FP32, true, true, 0, 0},
    [DT_BF16] = {"bf16", 16, AN_BLOB_BF16, true, true, 0, 0},
    [DT_INT32] = {"int32", 32, AN_BLOB_INT32, false, true, INT32_MIN, INT32_MAX},
    [DT_INT16] = {"int16", 16, AN_BLOB_INT16, false, true, INT16_MIN, INT16_MAX},
    [DT_UINT16] = {"uint16", 16, AN_BLOB_UINT16, false, false, 0, UINT16_MAX},
    [DT_UINT32] = {"uint32", 32, AN_BLOB_UINT32, false, false, 0, UINT32_MAX},
    [DT_INT8] = {"int8", 8, AN_BLOB_INT8, false, true, INT8_MIN, INT8_MAX},
    [DT_UINT8] = {"uint8", 8, AN_BLOB_UINT8, false, false, 0, UINT8_MAX},
    [DT_INT4] = {"int4", 4, AN_BLOB_INT4, false, true, -8, 7},
    [DT_UINT1] = {"uint1", 1, AN_BLOB_UINT1, false, false, 0, 1},
    [DT_UINT2] = {"uint2", 2, AN_BLOB_UINT2, false, false, 0, 3},
    [DT_UINT3] = {"uint3", 3, AN_BLOB_UINT3, false, false, 0, 7},
    [DT_UINT4] = {"uint4", 4, AN_BLOB_UINT4, false, false, 0, 15},
    [DT_UINT6] = {"uint6", 6, AN_BLOB_UINT6, false, false, 0, 63},
    [DT_BOOL] = {"bool", 0, 0, false, false, 0, 1},
    [DT_STRING] = {"string", 0, 0, false, false, 0, 0},
    /* only BLOBFILE offsets; beyond 2^62 no file exists */
    [DT_UINT64] = {"uint64", 0, 0, false, false, 0, INT64_C(1) << 62},
};

const ref_dt_info *ref_dt_get(ref_dt dt) { return &g_dt[dt > DT_NONE && dt < DT_COUNT ? dt : DT_NONE]; }

ref_dt ref_dt_from_name(const char *s, size_t n) {
    for (int d = DT_NONE + 1; d < DT_COUNT; d++)
        if (strlen(g_dt[d].name) == n && memcmp(g_dt[d].name, s, n) == 0) return (ref_dt)d;
    return DT_NONE;
}

int64_t ref_type_elems(const ref_type *t) {
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++) {
        n *= t->dim[d]; /* each dim <= 2^16 and n <= 2^36 before: no overflow */
        if (n > REF_MAX_ELEMS) return -1;
    }
    return n;
}

bool ref_type_eq(const ref_type *a, const ref_type *b) {
    if (a->dt != b->dt || a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dim[d] != b->dim[d]) return false;
    return true;
}

const char *ref_type_str(const ref_type *t, char *buf, size_t cap) {
    const char *dn = ref_dt_get(t->dt)->name;
    if (t->rank == 0) {
        snprintf(buf, cap, "%s", dn);
        return buf;
    }
    int k = snprintf(buf, cap, "tensor<%s, [", dn);
    for (int d = 0; d < t->rank && k > 0 && (size_t)k < cap; d++)
        k += snprintf(buf + k, cap - (size_t)k, "%s%lld", d ? ", " : "", (long long)t->dim[d]);
    if (k > 0 && (size_t)k < cap) snprintf(buf + k, cap - (size_t)k, "]>");
    return buf;
}
