/*
 * sse_load: scenario 6's load generator. Holds N `POST /api/stream` requests through nginx
 * at once and notes, for each, when the request went out, when its first and its last token
 * event arrived, and how it ended.
 *
 * Why C: at 2,000 streams of 21 tokens a second the client reads about 40,000 TLS records a
 * second. The asyncio driver spent ~30 us of Python on each and its event loop fell up to a
 * second behind, so it measured its own backlog as time to first token. One epoll loop with
 * OpenSSL spends a few microseconds on each.
 *
 *   sse_load PORT CAFILE RAMP_MS DEADLINE_S HANDSHAKES < streams
 *
 * stdin: one line per stream, "<bearer token> <conversation id>". Every connection is opened
 * and its TLS handshake done first (at most HANDSHAKES at a time); then stream i's request
 * goes out at RAMP_MS * i / N after the start. stdout: one JSON object (drivers.py reads it):
 * {"connect_seconds", "send_to_end_seconds", "cpu_seconds", "streams": [[sent, response head,
 * first token, last token, tokens, "done"|"error"|"", "failure or empty"], ...]} with times in seconds on
 * CLOCK_MONOTONIC, the clock of Python's time.perf_counter. Loopback only: 127.0.0.1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum phase { IDLE, CONNECTING, HANDSHAKE, READY, HEAD, BODY, ENDED };
enum { BUFFER = 1 << 16 };

typedef struct {
    int fd;
    SSL *ssl;
    enum phase phase;
    char *request;
    size_t request_length;
    /* decrypted bytes not yet parsed, and SSE text not yet split into events */
    char *in, *events;
    size_t in_length, events_length;
    long chunk_left;    /* data bytes of the current chunk still to come */
    int chunk_crlf;     /* the CRLF after a chunk's data is next */
    double sent, head, first, last;
    long tokens;
    const char *final;  /* "done", "error" or "" */
    const char *failure;
} stream;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec / 1e6;
}

static int epoll_fd;
static size_t open_streams;

static void watch(stream *s, uint32_t events, int op) {
    struct epoll_event e = {.events = events, .data.ptr = s};
    if (epoll_ctl(epoll_fd, op, s->fd, &e) != 0) {
        perror("epoll_ctl");
        exit(1);
    }
}

static void end(stream *s, const char *failure) {
    if (s->phase == ENDED) return;
    if (failure && !s->failure) s->failure = failure;
    if (s->ssl) SSL_free(s->ssl);
    if (s->fd >= 0) close(s->fd); /* also leaves the epoll set */
    s->ssl = NULL;
    s->fd = -1;
    s->phase = ENDED;
    open_streams--;
}

/* One SSE event block (the text between blank lines): a token, the final event, or a comment. */
static void on_event(stream *s, const char *block, size_t length, double at) {
    const char *name = "", *line = block, *stop = block + length;
    size_t name_length = 0;
    int has_data = 0;
    while (line < stop) {
        const char *eol = memchr(line, '\n', (size_t)(stop - line));
        if (!eol) eol = stop;
        if ((size_t)(eol - line) >= 6 && memcmp(line, "event:", 6) == 0) {
            name = line + 6;
            while (name < eol && *name == ' ') name++;
            name_length = (size_t)(eol - name);
        } else if ((size_t)(eol - line) >= 5 && memcmp(line, "data:", 5) == 0) {
            has_data = 1;
        }
        line = eol + 1;
    }
    if (!has_data) return; /* a heartbeat comment */
    if (name_length == 0 || (name_length == 7 && memcmp(name, "message", 7) == 0)) {
        if (s->tokens++ == 0) s->first = at;
        s->last = at;
    } else if (name_length == 4 && memcmp(name, "done", 4) == 0) {
        s->final = "done";
    } else if (name_length == 5 && memcmp(name, "error", 5) == 0) {
        s->final = "error";
    }
}

static void on_body_text(stream *s, const char *data, size_t length, double at) {
    if (s->events_length + length > BUFFER) {
        end(s, "an SSE event longer than 64 KiB");
        return;
    }
    memcpy(s->events + s->events_length, data, length);
    s->events_length += length;
    size_t start = 0;
    for (;;) {
        char *blank = memmem(s->events + start, s->events_length - start, "\n\n", 2);
        if (!blank) break;
        on_event(s, s->events + start, (size_t)(blank - (s->events + start)), at);
        start = (size_t)(blank - s->events) + 2;
        if (*s->final) return;
    }
    memmove(s->events, s->events + start, s->events_length - start);
    s->events_length -= start;
}

/* Parses what has been read: the response head, then `Transfer-Encoding: chunked` framing. */
static void on_bytes(stream *s, double at) {
    size_t used = 0;
    if (s->phase == HEAD) {
        char *head_end = memmem(s->in, s->in_length, "\r\n\r\n", 4);
        if (!head_end) return;
        size_t head_length = (size_t)(head_end - s->in) + 4;
        int status = 0;
        if (sscanf(s->in, "HTTP/1.1 %d", &status) != 1 || status != 200) {
            end(s, status == 429 ? "status 429" : status >= 500 ? "status 5xx" : "status not 200");
            return;
        }
        if (!memmem(s->in, head_length, "chunked", 7)) {
            end(s, "expected a chunked streamed response");
            return;
        }
        used = head_length;
        s->head = at;
        s->phase = BODY;
    }
    while (s->phase == BODY && !*s->final) {
        size_t left = s->in_length - used;
        if (s->chunk_left > 0) {
            if (left == 0) break;
            size_t take = left < (size_t)s->chunk_left ? left : (size_t)s->chunk_left;
            on_body_text(s, s->in + used, take, at);
            used += take;
            s->chunk_left -= (long)take;
            s->chunk_crlf = s->chunk_left == 0;
        } else if (s->chunk_crlf) {
            if (left < 2) break;
            used += 2;
            s->chunk_crlf = 0;
        } else {
            char *eol = memmem(s->in + used, left, "\r\n", 2);
            if (!eol) break;
            long size = strtol(s->in + used, NULL, 16);
            used = (size_t)(eol - s->in) + 2;
            if (size == 0) {
                end(s, "the response ended before its final event");
                return;
            }
            s->chunk_left = size;
        }
    }
    if (s->phase == ENDED) return;
    memmove(s->in, s->in + used, s->in_length - used);
    s->in_length -= used;
}

static void on_readable(stream *s) {
    for (;;) {
        if (s->in_length == BUFFER) {
            end(s, "a response head or chunk line longer than 64 KiB");
            return;
        }
        int n = SSL_read(s->ssl, s->in + s->in_length, (int)(BUFFER - s->in_length));
        if (n <= 0) {
            int error = SSL_get_error(s->ssl, n);
            if (error == SSL_ERROR_WANT_READ) return;
            end(s, error == SSL_ERROR_ZERO_RETURN || error == SSL_ERROR_SYSCALL ? "the connection closed"
                                                                                 : "a TLS error while reading");
            return;
        }
        s->in_length += (size_t)n;
        on_bytes(s, now());
        if (s->phase == ENDED) return;
        if (*s->final) {
            end(s, strcmp(s->final, "done") == 0 ? NULL : "the stream ended with an error event");
            return;
        }
    }
}

/* Starts a connection; returns 0 if it failed at once (the stream has then ended). */
static int start_connect(stream *s, SSL_CTX *context, int port) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    open_streams++;
    if (connect(s->fd, (struct sockaddr *)&address, sizeof address) != 0 && errno != EINPROGRESS) {
        end(s, "connect failed");
        return 0;
    }
    s->ssl = SSL_new(context);
    SSL_set_fd(s->ssl, s->fd);
    SSL_set_tlsext_host_name(s->ssl, "localhost");
    SSL_set1_host(s->ssl, "127.0.0.1");
    SSL_set_connect_state(s->ssl);
    s->phase = CONNECTING;
    watch(s, EPOLLOUT, EPOLL_CTL_ADD);
    return 1;
}

/* Drives a handshake; returns 1 once it is over: READY (and not watched) or ENDED. */
static int handshake(stream *s) {
    int n = SSL_do_handshake(s->ssl);
    if (n == 1) {
        s->phase = READY;
        watch(s, 0, EPOLL_CTL_MOD);
        return 1;
    }
    int error = SSL_get_error(s->ssl, n);
    if (error == SSL_ERROR_WANT_READ) watch(s, EPOLLIN, EPOLL_CTL_MOD);
    else if (error == SSL_ERROR_WANT_WRITE) watch(s, EPOLLOUT, EPOLL_CTL_MOD);
    else end(s, "the TLS handshake failed");
    return s->phase == ENDED;
}

static void send_request(stream *s) {
    s->sent = now();
    int n = SSL_write(s->ssl, s->request, (int)s->request_length);
    if (n != (int)s->request_length) {
        end(s, "the request could not be written at once");
        return;
    }
    s->phase = HEAD;
    watch(s, EPOLLIN, EPOLL_CTL_MOD);
}

static void print_json_string(const char *text) { printf("\"%s\"", text ? text : ""); }

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORT CAFILE RAMP_MS DEADLINE_S HANDSHAKES < streams\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    double ramp = atof(argv[3]) / 1000, deadline = atof(argv[4]);
    size_t handshakes = (size_t)atol(argv[5]);

    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);

    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    if (!context || SSL_CTX_load_verify_locations(context, argv[2], NULL) != 1) {
        fprintf(stderr, "cannot load the CA file %s\n", argv[2]);
        return 1;
    }
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(context, alpn, sizeof alpn - 1);

    size_t capacity = 1024, count = 0;
    stream *streams = calloc(capacity, sizeof *streams);
    char token[4096], conversation[256];
    while (scanf("%4095s %255s", token, conversation) == 2) {
        if (count == capacity) {
            streams = realloc(streams, (capacity *= 2) * sizeof *streams);
            memset(streams + count, 0, (capacity - count) * sizeof *streams);
        }
        stream *s = &streams[count++];
        char body[512];
        int body_length = snprintf(body, sizeof body,
                                   "{\"question\": \"How fast is this server?\", \"conversation_id\": \"%s\"}",
                                   conversation);
        s->request_length = (size_t)asprintf(&s->request,
                                             "POST /api/stream HTTP/1.1\r\nHost: localhost:%d\r\n"
                                             "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                                             "Accept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s",
                                             port, token, body_length, body);
        s->in = malloc(BUFFER);
        s->events = malloc(BUFFER);
        s->fd = -1;
        s->final = "";
    }

    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ready[512];

    /* Connect and shake hands, at most `handshakes` at a time (both ends spend CPU on them). */
    double started = now();
    size_t next = 0, shaking = 0, connected = 0;
    while (connected < count) {
        while (next < count && shaking < handshakes) {
            if (start_connect(&streams[next++], context, port)) shaking++;
            else connected++;
        }
        int n = epoll_wait(epoll_fd, ready, 512, 1000);
        for (int i = 0; i < n; i++) {
            stream *s = ready[i].data.ptr;
            if (s->phase == CONNECTING) s->phase = HANDSHAKE;
            if (s->phase == HANDSHAKE && handshake(s)) {
                shaking--;
                connected++;
            }
        }
        if (now() - started > deadline) break;
    }
    double connect_seconds = now() - started;

    /* Send on schedule, read everything that arrives, until all have ended or the deadline. */
    double cpu = cpu_seconds(), t0 = now();
    size_t to_send = 0;
    while (open_streams > 0 && now() - t0 < deadline) {
        double t = now();
        while (to_send < count && t0 + ramp * (double)to_send / (double)count <= t) {
            stream *s = &streams[to_send++];
            if (s->phase == READY) send_request(s);
        }
        int timeout = 50;
        if (to_send < count) {
            double wait = t0 + ramp * (double)to_send / (double)count - now();
            timeout = wait <= 0 ? 0 : (int)(wait * 1000) + 1;
        }
        int n = epoll_wait(epoll_fd, ready, 512, timeout);
        for (int i = 0; i < n; i++) {
            stream *s = ready[i].data.ptr;
            if (s->phase == HEAD || s->phase == BODY) on_readable(s);
            else if (s->phase == READY) end(s, "the connection closed before its request"); /* HUP, ERR */
            else if (s->phase != ENDED) end(s, "the TLS handshake did not finish before the deadline");
        }
    }
    double wall = now() - t0;
    cpu = cpu_seconds() - cpu;
    for (size_t i = 0; i < count; i++)
        if (streams[i].phase != ENDED) end(&streams[i], "unfinished at the deadline");

    printf("{\"connect_seconds\": %.6f, \"send_to_end_seconds\": %.6f, \"cpu_seconds\": %.6f, \"streams\": [",
           connect_seconds, wall, cpu);
    for (size_t i = 0; i < count; i++) {
        stream *s = &streams[i];
        printf("%s[%.6f, %.6f, %.6f, %.6f, %ld, ", i ? ", " : "", s->sent, s->head, s->first, s->last, s->tokens);
        print_json_string(s->final);
        printf(", ");
        print_json_string(s->failure);
        printf("]");
    }
    printf("]}\n");
    return 0;
}
