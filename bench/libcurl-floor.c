/* SPDX-License-Identifier: MIT */
/* libcurl-floor: the least CPU a libcurl client spends on the small set, to put a floor under
 * the wall-time targets. One thread, the multi socket API on a bare epoll set, one easy handle per
 * slot reused for every transfer, the network options asyncd's transfers set (redirects,
 * protocols, connect timeout, receive buffer), no progress, no logging, no header parsing of its own.
 *
 *   libcurl-floor LIST CONC discard        bodies are dropped in the write callback
 *   libcurl-floor LIST CONC save DIR       each body is written as DIR/<last path segment> with
 *                                          open(O_CREAT|O_EXCL) + write + close in this thread
 *
 * LIST holds one URL per line. Prints one line: "files N bytes B not_found F errors E wall S
 * user S sys S". Anything asyncd spends beyond this (its daemon, D-Bus, atomic file creation,
 * the hand-off to disk threads) is its own design's cost; what is below it is libcurl's and the
 * kernel's. Used by bench/run.py. */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct Slot {
        CURL *easy;
        char *body;
        size_t size, allocated;
        const char *url;
} Slot;

static int epfd = -1;
static long timeout_ms = -1;
static int save_dir = -1;
static unsigned long long n_files, n_bytes, n_not_found, n_errors;

static void die(const char *what) {
        fprintf(stderr, "libcurl-floor: %s: %s\n", what, strerror(errno));
        exit(1);
}

/* Sockets stay in the epoll set when curl lets go of them between two transfers on one
 * connection, and are taken out only if they fire while unwanted: a transfer costs no epoll_ctl,
 * as in asyncd's glue. Connection sockets are opened and closed here, so a number the kernel
 * reuses is known to be out of the set. Numeric hosts only (no resolver sockets). */
static unsigned char wanted[65536], in_set_events[65536];

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
        struct epoll_event ev = { .data.fd = s };
        (void) e; (void) userp; (void) socketp;

        if (s < 0 || s >= 65536)
                return -1;
        if (what == CURL_POLL_REMOVE) {
                wanted[s] = 0;
                return 0;
        }
        ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
        wanted[s] = 1;
        if (in_set_events[s] == ev.events)
                return 0;
        if (epoll_ctl(epfd, in_set_events[s] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) < 0)
                die("epoll_ctl");
        in_set_events[s] = (unsigned char) ev.events;
        return 0;
}

static curl_socket_t on_open_socket(void *userp, curlsocktype purpose, struct curl_sockaddr *a) {
        int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
        (void) userp; (void) purpose;

        if (fd >= 0 && fd < 65536)
                in_set_events[fd] = 0, wanted[fd] = 0;
        return fd >= 0 ? fd : CURL_SOCKET_BAD;
}

static int on_close_socket(void *userp, curl_socket_t s) {
        (void) userp;
        if (s >= 0 && s < 65536)
                in_set_events[s] = 0, wanted[s] = 0;
        return close(s);
}

static int on_timer(CURLM *m, long ms, void *userp) {
        (void) m; (void) userp;
        timeout_ms = ms;
        return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *userp) {
        Slot *slot = userp;
        size_t len = size * n;

        if (save_dir < 0) {
                slot->size += len;
                return len;
        }
        if (slot->size + len > slot->allocated) {
                slot->allocated = (slot->size + len) * 2;
                slot->body = realloc(slot->body, slot->allocated);
                if (!slot->body)
                        die("realloc");
        }
        memcpy(slot->body + slot->size, p, len);
        slot->size += len;
        return len;
}

static void save(Slot *slot) {
        const char *name = strrchr(slot->url, '/');
        int fd;

        fd = openat(save_dir, name ? name + 1 : slot->url, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                die("open");
        if (write(fd, slot->body, slot->size) != (ssize_t) slot->size)
                die("write");
        if (close(fd) < 0)
                die("close");
}

static void start(CURLM *multi, Slot *slot, const char *url) {
        slot->url = url;
        slot->size = 0;
        (void) curl_easy_setopt(slot->easy, CURLOPT_URL, url);
        if (curl_multi_add_handle(multi, slot->easy) != CURLM_OK) {
                fprintf(stderr, "libcurl-floor: curl_multi_add_handle failed\n");
                exit(1);
        }
}

static Slot *new_slot(size_t conc) {
        Slot *slot = calloc(1, sizeof(Slot));

        if (!slot || !(slot->easy = curl_easy_init()))
                die("calloc");
        (void) curl_easy_setopt(slot->easy, CURLOPT_PRIVATE, slot);
        (void) curl_easy_setopt(slot->easy, CURLOPT_WRITEFUNCTION, on_body);
        (void) curl_easy_setopt(slot->easy, CURLOPT_WRITEDATA, slot);
        (void) curl_easy_setopt(slot->easy, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(slot->easy, CURLOPT_FOLLOWLOCATION, 1L);
        (void) curl_easy_setopt(slot->easy, CURLOPT_MAXREDIRS, 20L);
        (void) curl_easy_setopt(slot->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        (void) curl_easy_setopt(slot->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        (void) curl_easy_setopt(slot->easy, CURLOPT_CONNECTTIMEOUT_MS, 30000L);
        /* asyncd's receive buffer: 1 MiB shared by the job's transfers, 16-256 KiB each. */
        (void) curl_easy_setopt(slot->easy, CURLOPT_BUFFERSIZE,
                                conc >= 64 ? 16384L : conc <= 4 ? 262144L : (long) (1048576 / conc));
        (void) curl_easy_setopt(slot->easy, CURLOPT_USERAGENT, "libcurl-floor");
        (void) curl_easy_setopt(slot->easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        (void) curl_easy_setopt(slot->easy, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
        return slot;
}

static char **read_list(const char *path, size_t *ret_n) {
        char **urls = NULL, *line = NULL;
        size_t n = 0, cap = 0, len = 0;
        FILE *f = fopen(path, "re");
        ssize_t k;

        if (!f)
                die(path);
        while ((k = getline(&line, &len, f)) > 0) {
                while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r'))
                        line[--k] = 0;
                if (k == 0)
                        continue;
                if (n == cap && !(urls = realloc(urls, (cap = cap ? cap * 2 : 1024) * sizeof(char *))))
                        die("realloc");
                if (!(urls[n++] = strdup(line)))
                        die("strdup");
        }
        free(line);
        fclose(f);
        *ret_n = n;
        return urls;
}

/* Counts the finished transfer, saves its body, and returns its slot for the next one. */
static Slot *finish(CURLM *multi, CURLMsg *msg) {
        Slot *slot;
        long code = 0;

        (void) curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &slot);
        (void) curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        (void) curl_multi_remove_handle(multi, msg->easy_handle);
        if (msg->data.result != CURLE_OK)
                n_errors++;
        else if (code == 404)
                n_not_found++;
        else if (code != 200)
                n_errors++;
        else {
                n_files++;
                n_bytes += slot->size;
                if (save_dir >= 0)
                        save(slot);
        }
        return slot;
}

static double now(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int main(int argc, char *argv[]) {
        struct epoll_event events[256];
        struct rusage ru;
        size_t n_urls, next = 0, conc;
        int running = 0, n;
        char **urls;
        CURLM *multi;
        double t0;

        if (argc < 4 || (strcmp(argv[3], "discard") != 0 && (strcmp(argv[3], "save") != 0 || argc < 5))) {
                fprintf(stderr, "usage: libcurl-floor LIST CONC discard | save DIR\n");
                return 2;
        }
        conc = strtoul(argv[2], NULL, 10);
        if (conc == 0)
                conc = 1;
        if (strcmp(argv[3], "save") == 0 && (save_dir = open(argv[4], O_DIRECTORY | O_CLOEXEC)) < 0)
                die(argv[4]);
        urls = read_list(argv[1], &n_urls);

        t0 = now(CLOCK_MONOTONIC);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0)
                die("epoll_create1");
        multi = curl_multi_init();
        (void) curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        (void) curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);

        for (size_t i = 0; i < conc && next < n_urls; i++)
                start(multi, new_slot(conc), urls[next++]);
        (void) curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);

        while (running > 0 || next < n_urls) {
                CURLMsg *msg;
                int left;

                n = epoll_wait(epfd, events, 256, (int) timeout_ms);
                if (n < 0 && errno != EINTR)
                        die("epoll_wait");
                if (n <= 0)
                        (void) curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
                for (int i = 0; i < n; i++) {
                        int fd = events[i].data.fd, bits = (events[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                                   (events[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                                   (events[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
                        if (!wanted[fd]) {
                                (void) epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
                                in_set_events[fd] = 0;
                                continue;
                        }
                        (void) curl_multi_socket_action(multi, fd, bits, &running);
                }
                bool started = false;
                while ((msg = curl_multi_info_read(multi, &left)))
                        if (msg->msg == CURLMSG_DONE) {
                                Slot *slot = finish(multi, msg);

                                if (next < n_urls) {
                                        start(multi, slot, urls[next++]);
                                        started = true;
                                }
                        }
                if (started)
                        (void) curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }

        getrusage(RUSAGE_SELF, &ru);
        printf("files %llu bytes %llu not_found %llu errors %llu wall %.3f user %.3f sys %.3f\n",
               n_files, n_bytes, n_not_found, n_errors, now(CLOCK_MONOTONIC) - t0,
               ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
        return n_errors > 0;
}
