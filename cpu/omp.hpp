// OpenMP's runtime calls where the build has OpenMP (TG_OPENMP, the default), and their
// one-thread meanings where it does not (TG_OPENMP=OFF: the ThreadSanitizer build,
// whose runtime cannot see libgomp's synchronisation). The pragmas need nothing: without
// -fopenmp they are ignored and every region runs on the calling thread.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#else
inline int omp_get_max_threads() { return 1; }
inline int omp_get_num_threads() { return 1; }
inline int omp_get_thread_num() { return 0; }
inline int omp_in_parallel() { return 0; }
inline void omp_set_num_threads(int) {}
#endif
