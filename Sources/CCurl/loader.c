// libcurl, loaded by the first call into it rather than when a process starts.
//
// Linking libcurl made every Privia process (pool master and workers, relay, CLI) map it and
// the libraries it needs (GnuTLS, Kerberos, LDAP, libssh2, nghttp2, ...) and run their start-up
// code, whether it ever called a provider or not. Only a worker that calls an OpenAI-compatible
// provider needs it: here each libcurl function the engine calls is defined under its own name
// and forwards to libcurl, opened with dlopen the first time one of them runs. These
// definitions are not exported (the executables do not link libcurl), so libcurl's own calls
// still reach libcurl's functions.
//
// A function the engine starts to call must be added to CURL_FUNCTIONS below, or the link
// fails naming it.

#define CURL_DISABLE_TYPECHECK  // curl_easy_setopt and friends are defined here, not called
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>

// The library's soname: the runtime package (libcurl4) installs it.
static const char library_name[] = "libcurl.so.4";

// X(return type, name, parameters, arguments, value when libcurl cannot be loaded)
#define CURL_FUNCTIONS(X)                                                                                  \
    X(CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)                                \
    X(CURL *, curl_easy_init, (void), (), NULL)                                                            \
    X(CURL *, curl_easy_duphandle, (CURL *h), (h), NULL)                                                   \
    X(CURLcode, curl_easy_perform, (CURL *h), (h), CURLE_FAILED_INIT)                                      \
    X(CURLcode, curl_easy_pause, (CURL *h, int mask), (h, mask), CURLE_FAILED_INIT)                        \
    X(CURLcode, curl_easy_upkeep, (CURL *h), (h), CURLE_FAILED_INIT)                                       \
    X(const char *, curl_easy_strerror, (CURLcode code), (code), "libcurl (libcurl.so.4) cannot be loaded") \
    X(struct curl_slist *, curl_slist_append, (struct curl_slist *l, const char *s), (l, s), NULL)         \
    X(CURLM *, curl_multi_init, (void), (), NULL)                                                          \
    X(CURLMcode, curl_multi_add_handle, (CURLM *m, CURL *h), (m, h), CURLM_INTERNAL_ERROR)                 \
    X(CURLMcode, curl_multi_remove_handle, (CURLM *m, CURL *h), (m, h), CURLM_INTERNAL_ERROR)              \
    X(CURLMcode, curl_multi_perform, (CURLM *m, int *running), (m, running), CURLM_INTERNAL_ERROR)         \
    X(CURLMcode, curl_multi_poll, (CURLM *m, struct curl_waitfd *fds, unsigned n, int ms, int *ready),     \
      (m, fds, n, ms, ready), CURLM_INTERNAL_ERROR)                                                        \
    X(CURLMcode, curl_multi_wait, (CURLM *m, struct curl_waitfd *fds, unsigned n, int ms, int *ready),     \
      (m, fds, n, ms, ready), CURLM_INTERNAL_ERROR)                                                        \
    X(CURLMcode, curl_multi_wakeup, (CURLM *m), (m), CURLM_INTERNAL_ERROR)                                 \
    X(CURLMsg *, curl_multi_info_read, (CURLM *m, int *left), (m, left), NULL)                             \
    X(CURLMcode, curl_multi_cleanup, (CURLM *m), (m), CURLM_INTERNAL_ERROR)                                \
    X(const char *, curl_multi_strerror, (CURLMcode code), (code), "libcurl (libcurl.so.4) cannot be loaded")

// Functions without a result: nothing to do when libcurl cannot be loaded (nothing was made).
#define CURL_PROCEDURES(X)                                                    \
    X(curl_easy_cleanup, (CURL *h), (h))                                      \
    X(curl_easy_reset, (CURL *h), (h))                                        \
    X(curl_slist_free_all, (struct curl_slist *l), (l))                       \
    X(curl_global_cleanup, (void), ())

static struct {
#define FIELD(type, name, params, args, failed) type(*name) params;
#define PROCEDURE_FIELD(name, params, args) void(*name) params;
    CURL_FUNCTIONS(FIELD)
    CURL_PROCEDURES(PROCEDURE_FIELD)
    CURLcode (*curl_easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*curl_easy_getinfo)(CURL *, CURLINFO, ...);
    CURLMcode (*curl_multi_setopt)(CURLM *, CURLMoption, ...);
} curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void) {
    void *library = dlopen(library_name, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) return;
    // All or nothing: a libcurl missing one of them is treated as no libcurl.
#define LOOK_UP(name) *(void **)&curl.name = dlsym(library, #name);
#define LOOK_UP_FUNCTION(type, name, params, args, failed) LOOK_UP(name)
#define LOOK_UP_PROCEDURE(name, params, args) LOOK_UP(name)
    CURL_FUNCTIONS(LOOK_UP_FUNCTION)
    CURL_PROCEDURES(LOOK_UP_PROCEDURE)
    LOOK_UP(curl_easy_setopt)
    LOOK_UP(curl_easy_getinfo)
    LOOK_UP(curl_multi_setopt)
    void **entry = (void **)&curl;
    for (size_t i = 0; i < sizeof curl / sizeof(void *); i++) {
        if (entry[i] == NULL) {
            for (size_t j = 0; j < sizeof curl / sizeof(void *); j++) entry[j] = NULL;
            return;
        }
    }
}

static int loaded(void) {
    pthread_once(&load_once, load);
    return curl.curl_global_init != NULL;
}

#define DEFINE_FUNCTION(type, name, params, args, failed) \
    type name params { return loaded() ? curl.name args : failed; }
#define DEFINE_PROCEDURE(name, params, args) \
    void name params {                       \
        if (loaded()) curl.name args;        \
    }
CURL_FUNCTIONS(DEFINE_FUNCTION)
CURL_PROCEDURES(DEFINE_PROCEDURE)

// The variadic ones. The value after an option is a long, a pointer (object or function) or a
// curl_off_t, by the option's number range (CURLOPTTYPE_*): read it as that and pass it on.
#define FORWARD_OPTION(function, handle, option)                                       \
    va_list arguments;                                                                 \
    va_start(arguments, option);                                                       \
    if (option < CURLOPTTYPE_OBJECTPOINT) {                                            \
        long value = va_arg(arguments, long);                                          \
        va_end(arguments);                                                             \
        return curl.function(handle, option, value);                                   \
    } else if (option >= CURLOPTTYPE_FUNCTIONPOINT && option < CURLOPTTYPE_OFF_T) {    \
        void (*value)(void) = va_arg(arguments, void (*)(void));                       \
        va_end(arguments);                                                             \
        return curl.function(handle, option, value);                                   \
    } else if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB) {             \
        curl_off_t value = va_arg(arguments, curl_off_t);                              \
        va_end(arguments);                                                             \
        return curl.function(handle, option, value);                                   \
    } else {                                                                           \
        void *value = va_arg(arguments, void *);                                       \
        va_end(arguments);                                                             \
        return curl.function(handle, option, value);                                   \
    }

CURLcode curl_easy_setopt(CURL *handle, CURLoption option, ...) {
    if (!loaded()) return CURLE_FAILED_INIT;
    FORWARD_OPTION(curl_easy_setopt, handle, option)
}

CURLMcode curl_multi_setopt(CURLM *handle, CURLMoption option, ...) {
    if (!loaded()) return CURLM_INTERNAL_ERROR;
    FORWARD_OPTION(curl_multi_setopt, handle, option)
}

// Every CURLINFO_* takes a pointer to where the answer goes.
CURLcode curl_easy_getinfo(CURL *handle, CURLINFO info, ...) {
    if (!loaded()) return CURLE_FAILED_INIT;
    va_list arguments;
    va_start(arguments, info);
    void *value = va_arg(arguments, void *);
    va_end(arguments);
    return curl.curl_easy_getinfo(handle, info, value);
}
