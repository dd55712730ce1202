#ifndef VAEAS_CZLIB_SHIM_H
#define VAEAS_CZLIB_SHIM_H
#include <zlib.h>
#endif
