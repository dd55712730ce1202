#ifndef VAEAS_COPENBLAS_SHIM_H
#define VAEAS_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
