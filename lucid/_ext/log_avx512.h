/* log(m) in float64 for AVX-512 loops, from two 16-entry tables held in four
 * registers (exp_avx512.h's counterpart):
 *   m = 2**e f, f in [1, 2) (vgetexppd, vgetmantpd), c = 1 + (2 k + 1) / 32
 *   the middle of f's sixteenth [1 + k / 16, 1 + (k + 1) / 16),
 *   log(m) = e log(2) + log(c) + log1p(r), r = f / c - 1, |r| <= 1 / 33,
 * log1p a degree-6 Taylor polynomial: an absolute error below 4e-12 (plus
 * 1e-16 |log m|), about fourteen vector operations for 8 values. The
 * distillation loss's JSD (distill_avx512.h) takes the log of its mixture
 * m = beta p + (1 - beta) q with it, for a loss checked to 1e-6.
 *
 * m >= 0 only (a probability): 0 gives -inf, +inf gives +inf, NaN stays NaN
 * (vgetexppd's results carry them through); subnormal m are exact (vgetexppd
 * and vgetmantpd read them as they are).
 */
#ifndef LUCID_LOG_AVX512_H
#define LUCID_LOG_AVX512_H

#include "exp_avx512.h"

/* log(c_k) and 1 / c_k for c_k = 1 + (2 k + 1) / 32, k = 0..15 (rounded
 * once from 200-bit values). */
static const double lucid_log16_log_c[16] = {
    0x1.f829b0e783300p-6, 0x1.6f0d28ae56b4cp-4, 0x1.29552f81ff523p-3, 0x1.9525a9cf456b4p-3,
    0x1.fb9186d5e3e2bp-3, 0x1.2e8e2bae11d31p-2, 0x1.5d1bdbf5809cap-2, 0x1.89a3386c1425bp-2,
    0x1.b44f77bcc8f63p-2, 0x1.dd46a04c1c4a1p-2, 0x1.02552a5a5d0ffp-1, 0x1.154c3d2f4d5eap-1,
    0x1.2795e1289b11bp-1, 0x1.393e0d3562a1ap-1, 0x1.4a4f85db03ebbp-1, 0x1.5ad404c359f2dp-1,
};
static const double lucid_log16_inv_c[16] = {
    0x1.f07c1f07c1f08p-1, 0x1.d41d41d41d41dp-1, 0x1.bacf914c1bad0p-1, 0x1.a41a41a41a41ap-1,
    0x1.8f9c18f9c18fap-1, 0x1.7d05f417d05f4p-1, 0x1.6c16c16c16c17p-1, 0x1.5c9882b931057p-1,
    0x1.4e5e0a72f0539p-1, 0x1.4141414141414p-1, 0x1.3521cfb2b78c1p-1, 0x1.29e4129e4129ep-1,
    0x1.1f7047dc11f70p-1, 0x1.15b1e5f75270dp-1, 0x1.0c9714fbcda3bp-1, 0x1.0410410410410p-1,
};

typedef struct {
    __m512d log_c_lo, log_c_hi, inv_c_lo, inv_c_hi;
} lucid_log16_tables;

LUCID_AVX512_FN lucid_log16_tables lucid_log16_load(void)
{
    lucid_log16_tables l;
    l.log_c_lo = _mm512_loadu_pd(lucid_log16_log_c);
    l.log_c_hi = _mm512_loadu_pd(lucid_log16_log_c + 8);
    l.inv_c_lo = _mm512_loadu_pd(lucid_log16_inv_c);
    l.inv_c_hi = _mm512_loadu_pd(lucid_log16_inv_c + 8);
    return l;
}

/* log(m) for m >= 0 (see the top of the file). */
LUCID_AVX512_FN __m512d lucid_log16(const lucid_log16_tables *l, __m512d m)
{
    __m512d e = _mm512_getexp_pd(m);
    __m512d f = _mm512_getmant_pd(m, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    /* f's top four mantissa bits, k, are the low four bits of its bits >> 48
     * (the only index bits vpermt2pd reads). */
    __m512i k = _mm512_srli_epi64(_mm512_castpd_si512(f), 48);
    __m512d log_c = _mm512_permutex2var_pd(l->log_c_lo, k, l->log_c_hi);
    __m512d r = _mm512_fmsub_pd(f, _mm512_permutex2var_pd(l->inv_c_lo, k, l->inv_c_hi),
                                _mm512_set1_pd(1.0));
    /* log1p(r) = r + r**2 q(r), q the Taylor terms -1/2 + r/3 - r**2/4 + ... - r**4/6. */
    __m512d q = _mm512_fmadd_pd(_mm512_set1_pd(-1.0 / 6), r, _mm512_set1_pd(1.0 / 5));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(-1.0 / 4));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(1.0 / 3));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(-1.0 / 2));
    __m512d log1p_r = _mm512_fmadd_pd(_mm512_mul_pd(r, r), q, r);
    return _mm512_fmadd_pd(e, _mm512_set1_pd(0x1.62e42fefa39efp-1), _mm512_add_pd(log_c, log1p_r));
}

#endif /* LUCID_LOG_AVX512_H */
