// From /work/shared/bench/stream.c (the shared bandwidth yardsticks, see its README.md); unchanged below this line.
// Minimal STREAM-style bandwidth probe: copy and triad over float32 arrays, OpenMP threads.
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>
#define N (64L*1024*1024)
int main(void){
  float *a=aligned_alloc(64,N*4),*b=aligned_alloc(64,N*4),*c=aligned_alloc(64,N*4);
  #pragma omp parallel for
  for(long i=0;i<N;i++){a[i]=1;b[i]=2;c[i]=0;}
  double best_copy=1e9,best_triad=1e9;
  for(int r=0;r<10;r++){
    double t=omp_get_wtime();
    #pragma omp parallel for
    for(long i=0;i<N;i++) c[i]=a[i];
    t=omp_get_wtime()-t; if(t<best_copy)best_copy=t;
    t=omp_get_wtime();
    #pragma omp parallel for
    for(long i=0;i<N;i++) a[i]=b[i]+3.0f*c[i];
    t=omp_get_wtime()-t; if(t<best_triad)best_triad=t;
  }
  printf("threads=%d copy_GBps=%.1f triad_GBps=%.1f\n",omp_get_max_threads(),2.0*N*4/best_copy/1e9,3.0*N*4/best_triad/1e9);
  return 0;
}
