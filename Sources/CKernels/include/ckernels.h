/* Umbrella header of the CKernels target (the module Swift imports): small C
 * kernels compiled for the machine's vector width by function multi-versioning
 * (target_clones; no unsafeFlags). */
#ifndef CKERNELS_H
#define CKERNELS_H
#include "ckernels_elementwise.h"
#include "ckernels_classifier.h"
#include "ckernels_fpmode.h"
#endif
