/* Umbrella header of the CKernels target (the module Swift imports). */
#ifndef CKERNELS_H
#define CKERNELS_H
#include "ckernels_elementwise.h"
#endif
