// A 64-bit content hash (FNV-1a): identities of files, caches and weights.
// Not cryptographic: it names content, it does not defend against forgery.
#ifndef SSLC_CORE_HASH_H
#define SSLC_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SSLC_HASH64_INIT 0xcbf29ce484222325ULL

// Continues hash h over n bytes of data (start from SSLC_HASH64_INIT).
uint64_t sslc_hash64(uint64_t h, const void *data, size_t n);

#endif
