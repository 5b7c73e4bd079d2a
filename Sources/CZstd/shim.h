#ifndef TLORA_CZSTD_SHIM_H
#define TLORA_CZSTD_SHIM_H
// Only the stable zstd API: the advanced API (ZSTD_STATIC_LINKING_ONLY) has no stable ABI with a shared library.
#include <zstd.h>
#endif
