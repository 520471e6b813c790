/* The rate RNN's rollout and its adjoint (BPTT / e-prop / truncated BPTT) for ReLU units, float32.
 *
 * Same equations as backends/rate.py (_Rollout); this file only changes where the work happens:
 * one member of an ensemble at a time, all of its time steps, so its weights and its [B, N]
 * state stay in L1/L2 and every elementwise step is fused into the pass that produces its operand.
 * Products use a register-blocked 4 x 64 micro-kernel written with GCC vector extensions
 * (compiled with -march=native: AVX-512 where the CPU has it, two AVX2 halves elsewhere).
 *
 * Layouts (row-major, time-major like the Python side):
 *   x [T,E,B,NI]  states [T,E,B,N]  rates [T+1,E,B,N] (rates[t] = r[t] = relu(h[t]), rates[0] = relu(h0))
 *   outputs [T,E,B,O]  wt [E,N+NI+1,N] = (1-a)[W | W_in | b]^T   wout [E,O,N]  bout [E,O]
 * N must be a multiple of 16 (the Python side checks).
 */
#include <stddef.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef int v16i __attribute__((vector_size(64)));

static inline v16 ld(const float *p) { return *(const v16u *)p; }
static inline void st(float *p, v16 v) { *(v16u *)p = v; }
static inline v16 bc(float s) { return (v16){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }
static inline v16 keep_if(v16 v, v16 h) { return (v16)((v16i)v & (h > bc(0.0f))); }   /* h > 0 ? v : 0 */
/* relu that keeps NaN (as torch.relu does): NaN > 0 is false, NaN != NaN is true */
static inline v16 relu(v16 h) { return (v16)((v16i)h & ((h > bc(0.0f)) | (h != h))); }

/* C[r][16v..16v+15] += sum_k A[r*sai + k*sak] * Bm[k*ldb + 16v..], r < R, v < V (R, V constants). */
static inline __attribute__((always_inline)) void
mk(const int R, const int V, int K, const float *A, long sai, long sak, const float *Bm, long ldb,
   float *C, long ldc)
{
    v16 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) acc[r][v] = ld(C + r * ldc + 16 * v);
    for (int k = 0; k < K; k++) {
        v16 b[4];
        for (int v = 0; v < V; v++) {
            b[v] = ld(Bm + k * ldb + 16 * v);
            __asm__("" : "+v"(b[v]));          /* keep B in registers: one load per vector, not one per row */
        }
        for (int r = 0; r < R; r++) {
            v16 a = bc(A[r * sai + k * sak]);
            for (int v = 0; v < V; v++) acc[r][v] += a * b[v];
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) st(C + r * ldc + 16 * v, acc[r][v]);
}

static void mk44(int K, const float *A, long sai, long sak, const float *B, long ldb, float *C, long ldc)
{ mk(4, 4, K, A, sai, sak, B, ldb, C, ldc); }
static void mk41(int K, const float *A, long sai, long sak, const float *B, long ldb, float *C, long ldc)
{ mk(4, 1, K, A, sai, sak, B, ldb, C, ldc); }
static void mk14(int K, const float *A, long sai, long sak, const float *B, long ldb, float *C, long ldc)
{ mk(1, 4, K, A, sai, sak, B, ldb, C, ldc); }
static void mk11(int K, const float *A, long sai, long sak, const float *B, long ldb, float *C, long ldc)
{ mk(1, 1, K, A, sai, sak, B, ldb, C, ldc); }

/* C[M x NC] (row stride ldc) += A[M x K] B[K x NC], A[i][k] = A[i*sai + k*sak]; NC % 16 == 0. */
static void gemm_acc(int M, int NC, int K, const float *A, long sai, long sak, const float *B, long ldb,
                     float *C, long ldc)
{
    int i = 0;
    for (; i + 4 <= M; i += 4) {
        int j = 0;
        for (; j + 64 <= NC; j += 64) mk44(K, A + i * sai, sai, sak, B + j, ldb, C + i * ldc + j, ldc);
        for (; j < NC; j += 16) mk41(K, A + i * sai, sai, sak, B + j, ldb, C + i * ldc + j, ldc);
    }
    for (; i < M; i++) {
        int j = 0;
        for (; j + 64 <= NC; j += 64) mk14(K, A + i * sai, sai, sak, B + j, ldb, C + i * ldc + j, ldc);
        for (; j < NC; j += 16) mk11(K, A + i * sai, sai, sak, B + j, ldb, C + i * ldc + j, ldc);
    }
}

static inline float dot(const float *a, const float *b, int n)
{
    v16 s = bc(0.0f);
    for (int j = 0; j < n; j += 16) s += ld(a + j) * ld(b + j);
#ifdef __AVX512F__
    return _mm512_reduce_add_ps((__m512)s);
#else
    float out = 0.0f;
    for (int l = 0; l < 16; l++) out += s[l];
    return out;
#endif
}

void rollout_forward(int T, int E, int B, int N, int NI, int O, const float *x, const float *wt,
                     const float *wout, const float *bout, const float *h0, const float *noise, float alpha,
                     float *states, float *rates, float *outputs, int e0, int e1)
{
    const long BN = (long)B * N, step = (long)E * BN;
    const v16 va = bc(alpha);
    for (int e = e0; e < e1; e++) {
        const float *w = wt + (long)e * (N + NI + 1) * N, *wo = wout + (long)e * O * N, *bo = bout + (long)e * O;
        const float *bias = w + (long)(N + NI) * N;
        float *r0 = rates + e * BN;
        for (long j = 0; j < BN; j += 16) { v16 h = ld(h0 + e * BN + j); st(r0 + j, relu(h)); }
        for (int t = 0; t < T; t++) {
            const long off = t * step + e * BN;
            const float *hp = t ? states + off - step : h0 + e * BN, *xt = x + ((long)t * E + e) * B * NI;
            float *h = states + off, *rin = rates + off, *rout = rates + off + step;
            for (int b = 0; b < B; b++)          /* h = a h_prev + (1-a)(W_in x + b) (+ noise) */
                for (int j = 0; j < N; j += 16) {
                    v16 acc = va * ld(hp + b * N + j) + ld(bias + j);
                    for (int i = 0; i < NI; i++) acc += bc(xt[b * NI + i]) * ld(w + (long)(N + i) * N + j);
                    if (noise) acc += ld(noise + off + b * N + j);
                    st(h + b * N + j, acc);
                }
            gemm_acc(B, N, N, rin, N, 1, w, N, h, N);          /* h += r (1-a) W^T */
            for (long j = 0; j < BN; j += 16) { v16 v = ld(h + j); st(rout + j, relu(v)); }
            float *y = outputs + ((long)t * E + e) * B * O;
            for (int b = 0; b < B; b++)
                for (int o = 0; o < O; o++) y[b * O + o] = dot(rout + b * N, wo + (long)o * N, N) + bo[o];
        }
    }
}

/* lam[t] = dL/dh[t+1]; g_rec += sum lam[t]^T r[t]; g_drive_t[i][n] += sum lam[t][b][n] [x|1][t][b][i];
 * g_out[o] += sum gy[t][b][o] r[t+1][b].  One pass backward in time: each step's products run while
 * lam[t] is still in L1.  Scaling by (1-a) happens on the Python side. */
void rollout_backward(int T, int E, int B, int N, int NI, int O, const float *x, const float *states,
                      const float *rates, const float *back_w, const float *read_w, const float *gy,
                      const float *gs, const float *gr, float alpha, int eprop, int k, float *lam,
                      float *g_rec, float *g_drive_t, float *g_out, float *scratch, int e0, int e1)
{
    static const float one = 1.0f;
    const long BN = (long)B * N, step = (long)E * BN;
    const v16 va = bc(alpha), zero = bc(0.0f);
    for (int e = e0; e < e1; e++) {
        const float *bw = back_w + (long)e * N * N, *rw = read_w + (long)e * O * N;
        float *gre = g_rec + (long)e * N * N, *gd = g_drive_t + (long)e * (NI + 1) * N, *go = g_out + (long)e * O * N;
        float *g = scratch;                     /* [B, N]: dL/dr[t+1] of this member and step */
        for (int t = T - 1; t >= 0; t--) {
            const long off = t * step + e * BN;
            const int linked = t < T - 1 && !(k && (t + 1) % k == 0);
            const float *gyt = gy ? gy + ((long)t * E + e) * B * O : NULL, *xt = x + ((long)t * E + e) * B * NI;
            float *l = lam + off;
            for (int b = 0; b < B; b++)          /* g = dL/dr[t+1] from outside the recurrence */
                for (int j = 0; j < N; j += 16) {
                    v16 acc = gr ? ld(gr + off + b * N + j) : zero;
                    if (gyt)
                        for (int o = 0; o < O; o++) acc += bc(gyt[b * O + o]) * ld(rw + (long)o * N + j);
                    st(g + b * N + j, acc);
                }
            if (linked && !eprop) gemm_acc(B, N, N, l + step, N, 1, bw, N, g, N);   /* + lam[t+1] W */
            for (long j = 0; j < BN; j += 16) {
                v16 v = keep_if(ld(g + j), ld(states + off + j));
                if (linked) v += va * ld(l + step + j);
                if (gs) v += ld(gs + off + j);
                st(l + j, v);
            }
            gemm_acc(N, N, B, l, 1, N, rates + off, N, gre, N);                  /* lam^T r[t] */
            gemm_acc(NI, N, B, xt, 1, NI, l, N, gd, N);                          /* x^T lam */
            gemm_acc(1, N, B, &one, 0, 0, l, N, gd + (long)NI * N, N);            /* 1^T lam */
            if (gyt) gemm_acc(O, N, B, gyt, 1, O, rates + off + step, N, go, N);  /* gy^T r[t+1] */
        }
    }
}
