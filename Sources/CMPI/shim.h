#ifndef VAEAS_CMPI_SHIM_H
#define VAEAS_CMPI_SHIM_H
// Open MPI defines its predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM …)
// as macros over addresses of global structs, which Swift cannot import.
// These static inline functions hand the same handles to Swift.
#include <mpi.h>

static inline MPI_Comm vaeas_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype vaeas_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype vaeas_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype vaeas_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op vaeas_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op vaeas_mpi_max(void) { return MPI_MAX; }
static inline void *vaeas_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int vaeas_mpi_success(void) { return MPI_SUCCESS; }
static inline MPI_Status *vaeas_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline int vaeas_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }

#endif
