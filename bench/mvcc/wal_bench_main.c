/* bench/mvcc/wal_bench_main.c - standalone `wal-bench`: the same as
 * `mvcc-bench wal`. */
#include "bench/mvcc/wal_bench.h"

int main(int argc, char **argv)
{
    return bench_wal_main(argc, argv);
}
