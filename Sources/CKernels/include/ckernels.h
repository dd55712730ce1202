// Umbrella header of the CKernels target: small C kernels compiled for the
// machine's vector width by function multi-versioning (no unsafeFlags).
#ifndef CKERNELS_H
#define CKERNELS_H
#include "ckernels_classifier.h"
#endif
