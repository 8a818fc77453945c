// Nothing to call: linking this target gives a process jemalloc and its settings (allocator.c).
