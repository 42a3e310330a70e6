// From /work/shared/bench/ref_adam.c (the shared bandwidth yardsticks, see its README.md); unchanged below this line.
// Reference fused fp32 Adam (one pass, OpenMP, compiler-vectorised for the host): a proxy for the
// memory-bandwidth limit on this machine. Prints median ms per step for N elements.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 16L * 1024 * 1024;
  float *p = aligned_alloc(64, n * 4), *g = aligned_alloc(64, n * 4), *m = aligned_alloc(64, n * 4), *v = aligned_alloc(64, n * 4);
  #pragma omp parallel for
  for (long i = 0; i < n; i++) { p[i] = 0.5f; g[i] = 0.01f * (i % 7); m[i] = 0; v[i] = 0; }
  double ts[21];
  for (int r = 0; r < 21; r++) {
    int t = r + 1; float b1 = 0.9f, b2 = 0.999f, lr = 1e-3f, eps = 1e-8f;
    float bc1 = 1 - powf(b1, t), bc2s = sqrtf(1 - powf(b2, t)), step = lr / bc1;
    double t0 = omp_get_wtime();
    #pragma omp parallel for simd
    for (long i = 0; i < n; i++) {
      float gi = g[i];
      float mi = b1 * m[i] + (1 - b1) * gi; float vi = b2 * v[i] + (1 - b2) * gi * gi;
      m[i] = mi; v[i] = vi; p[i] -= step * mi / (sqrtf(vi) / bc2s + eps);
    }
    ts[r] = omp_get_wtime() - t0;
  }
  for (int i = 1; i < 21; i++) for (int j = i; j > 0 && ts[j] < ts[j - 1]; j--) { double x = ts[j]; ts[j] = ts[j - 1]; ts[j - 1] = x; }
  printf("%.4f\n", ts[10] * 1e3);
  return p[0] > 1e9;
}
