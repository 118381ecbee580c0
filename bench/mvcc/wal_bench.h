/* bench/mvcc/wal_bench.h - WAL group-commit benchmark, run as
 * `mvcc-bench wal [options]` (or the standalone wal-bench). */
#ifndef METCD_BENCH_MVCC_WAL_BENCH_H
#define METCD_BENCH_MVCC_WAL_BENCH_H

/* Measures the raw write+fdatasync rate of the disk under --dir, then WAL
 * entries/s with group commit at each producer count (producers = appends
 * kept outstanding from the loop), and prints the achieved batch size and
 * the ratio to (fdatasync rate x batch size). argv[0] is the subcommand
 * name. Returns 0, or 1 on a usage or I/O error, or 2 when a ratio misses
 * the 80% target. */
int bench_wal_main(int argc, char **argv);

#endif
