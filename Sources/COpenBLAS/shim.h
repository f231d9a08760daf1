// OpenBLAS's own cblas.h (cblas_* with the CBLAS_ORDER / CBLAS_TRANSPOSE enums, openblas_set_num_threads,
// openblas_get_config), found through pkg-config's openblas: its -I flag (Debian: .../openblas-pthread, Homebrew:
// the keg's include) comes before the system paths, so a cblas.h of another BLAS on the default path is not taken.
#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H
#include <cblas.h>
#endif
