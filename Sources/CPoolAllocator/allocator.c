// The pool's allocator: jemalloc, linked into privia-fcgi and privia-ceiling (Package.swift).
//
// With glibc's malloc, every request's 8 KiB libfcgi buffers sent glibc through
// malloc_consolidate, a large share of a short request's CPU; jemalloc's thread caches avoid it.
//
// jemalloc reads this string when it starts; MALLOC_CONF in the environment overrides it.
// Its default thread caches hold up to 200 objects per size class in every thread, and a pool
// holding thousands of streams has thousands of threads, so its RSS grew far past glibc's.
// Eight objects per class, and freed pages returned after a second, keep the RSS near glibc's
// without giving back the speed. jemalloc returns pages only while it is called, so one
// background thread per process returns them after the decay time even when the worker idles.
const char *malloc_conf = "tcache_nslots_small_max:8,tcache_nslots_large:8,dirty_decay_ms:1000,muzzy_decay_ms:0,"
                          "background_thread:true,max_background_threads:1";
