// The real MPI header, found through pkg-config's ompi-c (its -I flags reach every target that depends on CMPI,
// C targets included). Swift never calls MPI directly (its handles are macros): CSpeedMPI wraps it.
#ifndef CMPI_SHIM_H
#define CMPI_SHIM_H
#include <mpi.h>
#endif
