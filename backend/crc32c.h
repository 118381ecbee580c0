/* backend/crc32c.h - CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected
 * 0x82F63B78), as used by iSCSI (RFC 3720), ext4 and etcd's WAL.
 *
 * Internal to backend/: the public entry point backend_crc32c() is also
 * declared in backend/backend.h. Two implementations compute the same value:
 * the SSE4.2 `crc32` instruction when the CPU has it (checked once with
 * __builtin_cpu_supports), and a portable slicing-by-8 table otherwise.
 */
#ifndef METCD_BACKEND_CRC32C_H
#define METCD_BACKEND_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C update. backend_crc32c(0, buf, n) is the standard CRC-32C of buf
 * (initial value and final xor ~0 are applied inside), and calls chain:
 * backend_crc32c(backend_crc32c(0, a, na), b, nb) is the CRC of a || b.
 * buf may be NULL when n == 0. Thread-safe, no allocation. */
uint32_t backend_crc32c(uint32_t crc, const void *buf, size_t n);

/* The two implementations, for tests and benchmarks. backend_crc32c_hw()
 * must only be called when backend_crc32c_hw_available() returns nonzero. */
uint32_t backend_crc32c_sw(uint32_t crc, const void *buf, size_t n);
uint32_t backend_crc32c_hw(uint32_t crc, const void *buf, size_t n);
int backend_crc32c_hw_available(void);

#endif
