// All kernel sources in one translation unit, compiled for the CPU emulator.
#include "emu.h"
#include "kernels/elementwise.cu"
#include "kernels/norm.cu"
#include "kernels/selection.cu"
#include "kernels/attention.cu"
