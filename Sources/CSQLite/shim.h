#include <sqlite3.h>

/* sqlite3_config is variadic, which Swift cannot call: these wrap the settings Privia uses.
   They must run before the process's first connection opens (SQLITE_MISUSE after that). */

/* Without memory statistics, SQLite's allocations skip a process-wide mutex that every
   thread of a pool worker would otherwise queue on. */
static inline int privia_sqlite_disable_memory_statistics(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
