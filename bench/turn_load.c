/*
 * turn_load: the benchmark's client for chat turns held open through nginx, each on its own
 * connection: `POST /api/stream` read as server-sent events, or one question over a WebSocket
 * to `/api/ws/chat`. It notes, for each turn, when the question went out, when the response
 * head came (SSE), when every token arrived, and how the turn ended. Scenarios 6 (streams
 * held) and 8 (token latency) use it.
 *
 * Why C: at thousands of streams the client reads tens of thousands of TLS records a second.
 * An asyncio driver's event loop fell behind them, so it measured its own backlog as time to
 * first token. Even at ten turns its loop now and then ran late, which scenario 8 counted as
 * latency added by the server. One epoll loop with OpenSSL keeps up.
 *
 *   turn_load PORT CAFILE RAMP_MS DEADLINE_S HANDSHAKES < turns
 *
 * stdin: one line per turn, "sse|ws <bearer token> <conversation id>". Every connection is
 * opened first, TLS handshake and (ws) upgrade done (at most HANDSHAKES at a time); then turn
 * i's question goes out at RAMP_MS * i / N after the start. stdout: one JSON object
 * (drivers.py reads it): {"connect_seconds", "send_to_end_seconds", "cpu_seconds", "streams":
 * [[sent, response head, first token, last token, tokens, "done"|"error"|"", "failure or
 * empty", [token arrival, ...]], ...]} with times in seconds on CLOCK_MONOTONIC, the clock of
 * Python's time.perf_counter (a WebSocket turn has no response head: 0). Loopback only.
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

/* UPGRADE: a WebSocket waiting for its 101. FRAMES: a WebSocket turn reading frames. */
enum phase { IDLE, CONNECTING, HANDSHAKE, UPGRADE, READY, HEAD, BODY, FRAMES, ENDED };
enum { BUFFER = 1 << 16 };

typedef struct {
    int websocket;
    int fd;
    SSL *ssl;
    enum phase phase;
    char *request; /* the POST (SSE) or the upgrade request (WebSocket) */
    size_t request_length;
    char *question; /* the JSON body */
    /* decrypted bytes not yet parsed, and SSE text not yet split into events */
    char *in, *events;
    size_t in_length, events_length;
    long chunk_left;    /* data bytes of the current chunk still to come */
    int chunk_crlf;     /* the CRLF after a chunk's data is next */
    double sent, head, first, last;
    double *token_times;
    long tokens, token_capacity;
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

static void on_token(stream *s, double at) {
    if (s->tokens == s->token_capacity) {
        s->token_capacity = s->token_capacity ? s->token_capacity * 2 : 64;
        s->token_times = realloc(s->token_times, (size_t)s->token_capacity * sizeof *s->token_times);
    }
    s->token_times[s->tokens++] = at;
    if (s->tokens == 1) s->first = at;
    s->last = at;
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
        on_token(s, at);
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

/* Writes one masked client frame whole (they are small: a question, a pong). */
static int send_frame(stream *s, int opcode, const char *payload, size_t length) {
    unsigned char frame[600];
    if (length > sizeof frame - 8) return 0;
    size_t header = 2;
    frame[0] = (unsigned char)(0x80 | opcode);
    if (length < 126) {
        frame[1] = (unsigned char)(0x80 | length);
    } else {
        frame[1] = 0x80 | 126;
        frame[2] = (unsigned char)(length >> 8);
        frame[3] = (unsigned char)length;
        header = 4;
    }
    unsigned char mask[4] = {(unsigned char)rand(), (unsigned char)rand(), (unsigned char)rand(), (unsigned char)rand()};
    memcpy(frame + header, mask, 4);
    for (size_t i = 0; i < length; i++) frame[header + 4 + i] = (unsigned char)payload[i] ^ mask[i % 4];
    int total = (int)(header + 4 + length);
    return SSL_write(s->ssl, frame, total) == total;
}

/* Parses whole server frames: tokens, the final frame, pings (answered), close. */
static void on_frames(stream *s, double at) {
    size_t used = 0;
    while (!*s->final) {
        const unsigned char *f = (const unsigned char *)s->in + used;
        size_t left = s->in_length - used;
        if (left < 2) break;
        if (f[1] & 0x80) {
            end(s, "a masked frame from the server");
            return;
        }
        size_t header = 2, length = f[1] & 0x7F;
        if (length == 126) {
            if (left < 4) break;
            length = (size_t)f[2] << 8 | f[3];
            header = 4;
        } else if (length == 127) {
            if (left < 10) break;
            length = 0;
            for (int i = 2; i < 10; i++) length = length << 8 | f[i];
            header = 10;
        }
        if (length > BUFFER - header) {
            end(s, "a frame longer than 64 KiB");
            return;
        }
        if (left < header + length) break;
        const char *payload = (const char *)f + header;
        int opcode = f[0] & 0x0F;
        used += header + length;
        if (!(f[0] & 0x80) || opcode == 0x0) {
            end(s, "a fragmented message (this client reads whole frames only)");
            return;
        }
        if (opcode == 0x8) {
            end(s, "the server closed the socket");
            return;
        }
        if (opcode == 0x9 && !send_frame(s, 0xA, payload, length)) {
            end(s, "a pong could not be written at once");
            return;
        }
        if (opcode != 0x1) continue;
        /* The relay writes compact JSON with "type" first. */
        if (length >= 15 && memcmp(payload, "{\"type\":\"token\"", 15) == 0) on_token(s, at);
        else if (length >= 14 && memcmp(payload, "{\"type\":\"done\"", 14) == 0) s->final = "done";
        else if (length >= 15 && memcmp(payload, "{\"type\":\"error\"", 15) == 0) s->final = "error";
    }
    memmove(s->in, s->in + used, s->in_length - used);
    s->in_length -= used;
}

/* A WebSocket's upgrade answer; returns 1 once the socket is READY or has ENDED. */
static int on_upgrade(stream *s) {
    char *head_end = memmem(s->in, s->in_length, "\r\n\r\n", 4);
    if (!head_end) return 0;
    int status = 0;
    if (sscanf(s->in, "HTTP/1.1 %d", &status) != 1 || status != 101) {
        end(s, "the upgrade was not answered 101");
        return 1;
    }
    size_t head_length = (size_t)(head_end - s->in) + 4;
    memmove(s->in, s->in + head_length, s->in_length - head_length);
    s->in_length -= head_length;
    s->phase = READY;
    watch(s, 0, EPOLL_CTL_MOD);
    return 1;
}

/* Reads what TLS has decrypted and hands it on; returns 0 once nothing more can be read now. */
static int read_some(stream *s) {
    if (s->in_length == BUFFER) {
        end(s, "a response head, chunk line or frame longer than 64 KiB");
        return 0;
    }
    int n = SSL_read(s->ssl, s->in + s->in_length, (int)(BUFFER - s->in_length));
    if (n <= 0) {
        int error = SSL_get_error(s->ssl, n);
        if (error != SSL_ERROR_WANT_READ)
            end(s, error == SSL_ERROR_ZERO_RETURN || error == SSL_ERROR_SYSCALL ? "the connection closed"
                                                                                 : "a TLS error while reading");
        return 0;
    }
    s->in_length += (size_t)n;
    return 1;
}

static void on_readable(stream *s) {
    while (read_some(s)) {
        if (s->phase == UPGRADE) {
            if (on_upgrade(s)) return;
            continue;
        }
        double at = now();
        if (s->websocket) on_frames(s, at);
        else on_bytes(s, at);
        if (s->phase == ENDED) return;
        if (*s->final) {
            end(s, strcmp(s->final, "done") == 0 ? NULL : "the turn ended with an error event");
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
    if (n == 1 && s->websocket) {
        if (SSL_write(s->ssl, s->request, (int)s->request_length) != (int)s->request_length) {
            end(s, "the upgrade request could not be written at once");
            return 1;
        }
        s->phase = UPGRADE;
        watch(s, EPOLLIN, EPOLL_CTL_MOD);
        return 0;
    }
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

/* Asks the question: the POST (SSE), or one text frame on the open socket (WebSocket). */
static void send_question(stream *s) {
    s->sent = now();
    int sent = s->websocket ? send_frame(s, 0x1, s->question, strlen(s->question))
                            : SSL_write(s->ssl, s->request, (int)s->request_length) == (int)s->request_length;
    if (!sent) {
        end(s, "the question could not be written at once");
        return;
    }
    s->phase = s->websocket ? FRAMES : HEAD;
    watch(s, EPOLLIN, EPOLL_CTL_MOD);
}

static void print_json_string(const char *text) { printf("\"%s\"", text ? text : ""); }

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORT CAFILE RAMP_MS DEADLINE_S HANDSHAKES < turns\n", argv[0]);
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
    char kind[8], token[4096], conversation[256];
    while (scanf("%7s %4095s %255s", kind, token, conversation) == 3) {
        if (count == capacity) {
            streams = realloc(streams, (capacity *= 2) * sizeof *streams);
            memset(streams + count, 0, (capacity - count) * sizeof *streams);
        }
        stream *s = &streams[count++];
        s->websocket = strcmp(kind, "ws") == 0;
        int body_length = asprintf(&s->question, "{\"question\": \"How fast is this server?\", \"conversation_id\": \"%s\"}",
                                   conversation);
        if (s->websocket) /* a browser sends the cookie and its Origin: it cannot set Authorization */
            s->request_length = (size_t)asprintf(&s->request,
                                                 "GET /api/ws/chat HTTP/1.1\r\nHost: localhost:%d\r\nUpgrade: websocket\r\n"
                                                 "Connection: Upgrade\r\nSec-WebSocket-Key: dHVybl9sb2FkIGJlbmNoIQ==\r\n"
                                                 "Sec-WebSocket-Version: 13\r\nOrigin: https://localhost:%d\r\n"
                                                 "Cookie: auth-token=%s\r\n\r\n",
                                                 port, port, token);
        else
            s->request_length = (size_t)asprintf(&s->request,
                                                 "POST /api/stream HTTP/1.1\r\nHost: localhost:%d\r\n"
                                                 "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                                                 "Accept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s",
                                                 port, token, body_length, s->question);
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
            int over = 0;
            if (s->phase == HANDSHAKE) {
                over = handshake(s);
            } else if (s->phase == UPGRADE) {
                on_readable(s);
                over = s->phase != UPGRADE;
            }
            if (over) {
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
            if (s->phase == READY) send_question(s);
        }
        int timeout = 50;
        if (to_send < count) {
            double wait = t0 + ramp * (double)to_send / (double)count - now();
            timeout = wait <= 0 ? 0 : (int)(wait * 1000) + 1;
        }
        int n = epoll_wait(epoll_fd, ready, 512, timeout);
        for (int i = 0; i < n; i++) {
            stream *s = ready[i].data.ptr;
            if (s->phase == HEAD || s->phase == BODY || s->phase == FRAMES) on_readable(s);
            else if (s->phase == READY) end(s, "the connection closed before its request"); /* HUP, ERR */
            else if (s->phase != ENDED) end(s, "the TLS handshake or upgrade did not finish before the deadline");
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
        printf(", [");
        for (long t = 0; t < s->tokens; t++) printf("%s%.6f", t ? ", " : "", s->token_times[t]);
        printf("]]");
    }
    printf("]}\n");
    return 0;
}
