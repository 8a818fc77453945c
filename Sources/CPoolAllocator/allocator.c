// The pool's allocator: jemalloc, linked into privia-fcgi and privia-ceiling (Package.swift).
//
// With glibc's malloc, allocation was about 14% of the pool's CPU on a list request: every
// request's 8 KiB libfcgi buffers sent glibc through malloc_consolidate. jemalloc with thread
// caches served 14% more lists a second in the benchmark (bench/README.md).
//
// jemalloc reads this string when it starts; MALLOC_CONF in the environment overrides it.
// Its default thread caches hold up to 200 objects per size class, and a pool holding 2,000
// streams has 2,000 threads: 491 MiB of RSS against glibc's 206. Eight objects per class and
// returning freed pages after a second keep 257 MiB at 2,000 streams, with the same list speed.
// jemalloc returns pages only while it is called, so without a background thread a worker kept
// the pages of a burst (64 answers of 2 MB at once) until its next requests; one background
// thread per process returns them after the decay time even when the worker falls idle.
const char *malloc_conf = "tcache_nslots_small_max:8,tcache_nslots_large:8,dirty_decay_ms:1000,muzzy_decay_ms:0,"
                          "background_thread:true,max_background_threads:1";
