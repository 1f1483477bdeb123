/* palettize.h — weight palettization: k-means tables of fp16 values shared by groups of rows,
 * each weight replaced by a b-bit index into its group's table (the LUT4/LUT6/LUT8 formats of
 * core/types.h; layout in an_mat, backends/cpu/cpu.h, and the README's "LUT format").
 *
 * Algorithm, per group of G consecutive output rows (n = G * cols values):
 *  - optional row scale: each row is divided by its max |w| rounded to fp16 (stored as the
 *    row's scale), and its values are weighted by scale^2 in the clustering, so the objective
 *    stays the squared error of the reconstructed weights;
 *  - the values are sorted once (radix sort, O(n)), and weighted prefix sums of 1, x and x^2
 *    are built; then the sum of squared distances of any run of sorted values to a point is
 *    O(1), and the run of values nearest to a centroid is found by binary search between the
 *    midpoints of neighbouring centroids;
 *  - greedy k-means++ initialisation (2 + ln k candidates per step, the one that lowers the
 *    potential most is kept), each step O(candidates * log n);
 *  - Lloyd iterations (at most `iters`, stopping when no boundary moves), each O(k log n);
 *  - centroids rounded to fp16 (the stored table), and every weight assigned to its nearest
 *    entry of the rounded table (ties to the lower entry).
 * Results depend only on the weights, the parameters, the seed and the caller's salt (one per
 * tensor): groups are independent and seeded by their index, so the bytes are the same for any
 * thread count. */
#ifndef AN_QUANT_PALETTIZE_H
#define AN_QUANT_PALETTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "core/status.h"
#include "core/types.h"

/* Bumped whenever the palettizer's output for given inputs changes (part of cache keys). */
#define AN_PAL_VERSION 1u

/* Defaults, chosen by measurement on TinyScribe-28M (README, "LUT quality"). */
#define AN_PAL_ITERS 40
#define AN_PAL_STARTS 2 /* k-means++ starts per group; the lowest-error result is kept */
#define AN_PAL_GROUP_DEFAULT 4 /* 6 and 8 bits; 4 bits: 1 (an_pal_default_group) */

typedef struct an_pal_params {
    int bits;       /* 4, 6 or 8 */
    int group;      /* rows sharing one table (>= 1); see an_pal_group */
    bool row_scale; /* per-row fp16 scale (max |w|) applied before clustering */
    int iters;      /* Lloyd iteration budget; 0: AN_PAL_ITERS */
    uint64_t seed;
} an_pal_params;

/* bits-bit palettization with the default group (an_pal_default_group), no row scale,
 * AN_PAL_ITERS, seed 0. */
an_pal_params an_pal_defaults(int bits);

/* Default rows per table: 1 for 4 bits (a 16-entry table costs 0.5 bit per weight on 512-wide
 * rows), AN_PAL_GROUP_DEFAULT for 6 and 8 bits. */
int an_pal_default_group(int bits);

/* The type the token embedding (which is also the output matrix when tied) gets in a
 * palettized model: it is kept out of the tables because it is the most sensitive matrix
 * (README, "LUT quality"). Q6_K for 4-bit models, Q8_0 otherwise; Q8_0 when cols is not a
 * multiple of 256 for Q6_K; 0 (keep the source type) when cols is not a multiple of 32 either. */
uint32_t an_pal_embd_type(int bits, int64_t cols);

/* AN_TYPE_LUT4/6/8 for bits 4/6/8, else 0 (the way back is an_lut_bits, quant/lut.h). */
uint32_t an_pal_type(int bits);

/* The group actually used for a matrix of `rows` rows: the largest divisor of rows that is at
 * most `group` (the format needs rows to be a whole number of groups). */
int64_t an_pal_group(int64_t rows, int group);

/* Parses "lut4" / "lut6" / "lut8" (any case) to 4/6/8; 0 otherwise. */
int an_pal_parse(const char *s);

/* The core, exposed for tests: weighted 1-D k-means of n values into k clusters (k <= 256).
 * x: the values, w: their weights (NULL: all 1). Writes k centroids in ascending order to c
 * (when the values have fewer than k distinct points, the last ones repeat). Returns the
 * weighted sum of squared distances to the nearest centroid, or a negative value when out of
 * memory. Deterministic in (x, w, n, k, iters, seed). */
double an_kmeans_1d(const float *x, const float *w, int64_t n, int k, int iters, uint64_t seed, float *c);

/* Palettizes a rows x cols matrix stored as rows of src_type (any type an_dequant_row handles).
 * Outputs, allocated by the caller:
 *   idx:   rows * an_row_bytes(traits of an_pal_type(bits), cols) bytes of packed indices;
 *   lut:   (rows / g) * 2^bits fp16 tables, g = an_pal_group(rows, p->group);
 *   scale: rows fp16 row scales when p->row_scale (else unused, may be NULL).
 * salt: distinguishes tensors (e.g. a hash of the name) so that equal groups in different
 * tensors do not share random streams. label: names the tensor in errors (NULL: "matrix").
 * sse / ssw (may be NULL): sum of squared reconstruction errors and of squared weights.
 * Fails on non-finite weights (naming label and row), bad parameters and out of memory. */
an_status an_palettize(an_pool *pool, uint32_t src_type, const void *src, int64_t rows, int64_t cols,
                       const an_pal_params *p, uint64_t salt, void *idx, uint16_t *lut, uint16_t *scale,
                       const char *label, double *sse, double *ssw, an_err *err);

#endif
