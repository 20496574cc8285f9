/* SPDX-License-Identifier: MIT */
/* curl-glue: drives one libcurl multi handle from an sd-event loop (io + timer sources, no threads).
 *
 * curl tells us which sockets to watch (socket callback) and when to wake it (timer callback); we
 * keep the sockets in a private epoll set watched by one sd-event io source, map the timer onto
 * an sd-event time source, and call curl_multi_socket_action() when they fire.
 * curl re-registers a connection's socket for every transfer that reuses it (REMOVE when a transfer
 * ends, IN/OUT when the next one starts, usually within one loop iteration), so the epoll set is
 * updated lazily: the socket callback records what curl wants and the source's prepare callback
 * applies the net change just before the loop polls — most of the time there is none. A connection
 * curl keeps idle (between jobs, or while the engine waits for the disk) stays in the set as long
 * as it waited for input; it leaves only if it fires while unwanted (the server closed it). A closed
 * socket leaves the epoll set by itself, and a new one may get its number in the same iteration:
 * curl opens and closes its connections' sockets through us, so their numbers start afresh; for
 * any other socket (the resolver's) let go of and wanted again in one iteration, EPOLL_CTL_MOD
 * finds out whether the kernel knows it.
 * Finished transfers are collected from curl_multi_info_read() after curl_multi_socket_action()
 * has returned (drive()), so completion callbacks never run inside curl and may freely start or
 * stop other transfers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "curl-glue.h"
#include "log.h"
#include "macro.h"

#define EASY_POOL_MAX 1024

struct CurlGlue {
        sd_event *event;
        CURLM *multi;
        int epoll_fd;                   /* every socket curl asked us to watch */
        sd_event_source *sockets;
        sd_event_source *timer;
        sd_event_source *defer;
        curl_glue_done_t on_done;
        curl_glue_batch_t on_batch;
        void *userdata;
        unsigned n_handles;             /* easy handles in the multi handle, running or not collected */
        bool kick;                      /* curl asked to be called again at once */
        long max_connections;           /* CURLMOPT_MAXCONNECTS, 0 = libcurl's default */

        CURL **easy_pool;
        size_t n_easy_pool;

        uint8_t *watch;                 /* WATCH_* bits, indexed by socket fd */
        size_t n_watch;
        int *dirty;                     /* fds whose wanted and registered events may differ */
        size_t n_dirty, size_dirty;
};

enum {
        WATCH_WANT_IN   = 1 << 0,
        WATCH_WANT_OUT  = 1 << 1,
        WATCH_REG_IN    = 1 << 2,       /* what the epoll set holds */
        WATCH_REG_OUT   = 1 << 3,
        WATCH_DIRTY     = 1 << 4,
        WATCH_DROPPED   = 1 << 5,       /* let go of since the last apply: it may have been closed */
        WATCH_OURS      = 1 << 6,       /* a connection socket, opened and closed through us */
        WATCH_WANT_MASK = WATCH_WANT_IN | WATCH_WANT_OUT,
        WATCH_REG_MASK  = WATCH_REG_IN | WATCH_REG_OUT,
};

static uint32_t watch_epoll_events(uint8_t want) {
        return ((want & WATCH_WANT_IN) ? EPOLLIN : 0) | ((want & WATCH_WANT_OUT) ? EPOLLOUT : 0);
}

/* Makes the epoll set hold what curl last asked for on fd. A registration can be stale: when curl
 * closed the socket the kernel dropped it from the set, and the number may since have been reused. */
static void watch_apply(CurlGlue *g, int fd) {
        uint8_t *w = &g->watch[fd];
        uint8_t want = *w & WATCH_WANT_MASK, reg = (*w & WATCH_REG_MASK) >> 2;
        struct epoll_event ev = { .events = watch_epoll_events(want), .data.fd = fd };

        if (want == reg && want != 0 && (*w & WATCH_DROPPED) && !(*w & WATCH_OURS)) {
                /* The same socket, or a new one under its number that the kernel never saw (a
                 * resolver's socket pair closed and another opened for the next host name). */
                *w &= ~(WATCH_DIRTY | WATCH_DROPPED);
                if (epoll_ctl(g->epoll_fd, EPOLL_CTL_MOD, fd, &ev) >= 0 || errno != ENOENT)
                        return;
                reg = 0;
        }
        *w &= ~(WATCH_DIRTY | WATCH_DROPPED);
        if (want == reg)
                return;
        if (want == 0 && reg == WATCH_WANT_IN && (*w & WATCH_OURS))
                return; /* an idle connection: left in the set, see on_sockets() */
        if (want == 0)
                (void) epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        else if (reg != 0 && epoll_ctl(g->epoll_fd, EPOLL_CTL_MOD, fd, &ev) >= 0)
                ;
        else if (epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 &&
                 (errno != EEXIST || epoll_ctl(g->epoll_fd, EPOLL_CTL_MOD, fd, &ev) < 0)) {
                int running;

                log_debug_errno(errno, "Failed to watch curl socket %i: %m", fd);
                /* Tell curl, so that the transfer fails instead of hanging. */
                (void) curl_multi_socket_action(g->multi, fd, CURL_CSELECT_ERR, &running);
                (void) sd_event_source_set_enabled(g->defer, SD_EVENT_ONESHOT);
                want = 0;
        }
        *w = (*w & ~WATCH_REG_MASK) | (uint8_t) (want << 2);
}

static int on_prepare(sd_event_source *s, void *userdata) {
        CurlGlue *g = userdata;

        /* watch_apply() may call into curl, which may dirty more fds: index, don't iterate. */
        for (size_t i = 0; i < g->n_dirty; i++)
                watch_apply(g, g->dirty[i]);
        g->n_dirty = 0;
        return 0;
}

static void drive(CurlGlue *g);

static bool loop_finished(CurlGlue *g) {
        /* curl_multi_cleanup() calls back into us while the loop may already be gone. */
        return sd_event_get_state(g->event) == SD_EVENT_FINISHED;
}

/* One sd-event source watches our private epoll set of all curl sockets. When it fires, every
 * ready socket is handed to curl in one go: with a hundred busy connections that is one loop
 * iteration instead of a hundred (sd-event dispatches one source per iteration). */
static int on_sockets(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CurlGlue *g = userdata;
        struct epoll_event events[256];
        int n, running;

        for (unsigned round = 0; round < 4; round++) {
                n = epoll_wait(g->epoll_fd, events, ELEMENTSOF(events), 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_debug_errno(errno, "epoll_wait() on curl sockets failed: %m");
                }
                for (int i = 0; i < n; i++) {
                        uint32_t ev = events[i].events;
                        int sock = events[i].data.fd, action = 0;

                        if ((g->watch[sock] & WATCH_WANT_MASK) == 0) {
                                /* curl let go of it: an idle connection left in the set
                                 * (watch_apply()) that the server closed or wrote to, or one
                                 * curl let go of in an earlier round. It leaves the set now. */
                                if (g->watch[sock] & WATCH_REG_MASK) {
                                        (void) epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, sock, NULL);
                                        g->watch[sock] &= (uint8_t) ~WATCH_REG_MASK;
                                }
                                continue;
                        }

                        if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
                                action |= CURL_CSELECT_IN;
                        if (ev & EPOLLOUT)
                                action |= CURL_CSELECT_OUT;
                        if (ev & EPOLLERR)
                                action |= CURL_CSELECT_ERR;
                        if (curl_multi_socket_action(g->multi, sock, action, &running) != CURLM_OK)
                                log_debug("curl_multi_socket_action() failed on fd %i.", sock);
                }
                if (n < (int) ELEMENTSOF(events))
                        break;
        }
        drive(g);
        return 0;
}

static int watch_reserve(CurlGlue *g, int fd) {
        size_t n;
        uint8_t *w;

        if (fd < 0)
                return -EBADF;
        if ((size_t) fd < g->n_watch)
                return 0;
        n = MAX((size_t) fd + 1, g->n_watch * 2);
        w = realloc(g->watch, n);
        if (!w)
                return -ENOMEM;
        memset(w + g->n_watch, 0, n - g->n_watch);
        g->watch = w;
        g->n_watch = n;
        return 0;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        CurlGlue *g = userp;
        uint8_t want = 0;

        if (watch_reserve(g, fd) < 0)
                return -1;
        if (!(g->watch[fd] & WATCH_DIRTY)) {
                if (g->n_dirty == g->size_dirty) {
                        size_t n = MAX(g->size_dirty * 2, (size_t) 64);
                        int *d = reallocarray(g->dirty, n, sizeof(int));

                        if (!d)
                                return -1;
                        g->dirty = d;
                        g->size_dirty = n;
                }
                g->dirty[g->n_dirty++] = fd;
                g->watch[fd] |= WATCH_DIRTY;
        }
        if (what == CURL_POLL_REMOVE)
                g->watch[fd] |= WATCH_DROPPED;
        else {
                if (what & CURL_POLL_IN)
                        want |= WATCH_WANT_IN;
                if (what & CURL_POLL_OUT)
                        want |= WATCH_WANT_OUT;
        }
        g->watch[fd] = (g->watch[fd] & ~WATCH_WANT_MASK) | want;
        return 0;
}

/* The kernel drops a socket from every epoll set when it is closed. Without this, a connect that
 * is refused and the next transfer's, whose socket gets the same number in the same iteration and
 * also waits to become writable, would look like one socket that never left the set: the new one
 * would go unwatched until curl's own timers looked at it (1,000 refused URLs at concurrency 100:
 * 1.8 s instead of 0.04 s). Knowing its connection sockets from birth to close spares the check
 * on every reuse of a connection. */
static curl_socket_t on_open_socket(void *userp, curlsocktype purpose, struct curl_sockaddr *address) {
        CurlGlue *g = userp;
        int fd;

        fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
        if (fd < 0)
                return CURL_SOCKET_BAD;
        if (watch_reserve(g, fd) < 0) {
                close(fd);
                return CURL_SOCKET_BAD;
        }
        g->watch[fd] = (uint8_t) ((g->watch[fd] & ~(WATCH_REG_MASK | WATCH_DROPPED)) | WATCH_OURS);
        return fd;
}

static int on_close_socket(void *userp, curl_socket_t fd) {
        CurlGlue *g = userp;

        if (fd >= 0 && (size_t) fd < g->n_watch)
                g->watch[fd] &= (uint8_t) ~(WATCH_REG_MASK | WATCH_OURS);
        return close(fd);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        CurlGlue *g = userdata;

        g->kick = true;
        drive(g);
        return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
        CurlGlue *g = userp;
        uint64_t usec;
        int r;

        if (loop_finished(g))
                return 0;

        g->kick = timeout_ms == 0;
        if (timeout_ms < 0)
                return sd_event_source_set_enabled(g->timer, SD_EVENT_OFF) < 0 ? -1 : 0;

        /* 0 means "act now", e.g. to start a new transfer: drive() does that before the loop
         * polls again, the timer is the fallback. Otherwise round up so curl never wakes up a
         * hair before its deadline and spins. */
        usec = timeout_ms == 0 ? 0 : (uint64_t) timeout_ms * USEC_PER_MSEC + USEC_PER_MSEC - 1;
        r = sd_event_source_set_time_relative(g->timer, usec);
        if (r < 0)
                return -1;
        return sd_event_source_set_enabled(g->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

/* Hands finished transfers to their owner. Returns false when there were none. */
static bool dispatch_done(CurlGlue *g) {
        struct {
                CURL *easy;
                CURLcode result;
        } done[64];
        size_t n = 0;
        CURLMsg *msg;
        int left;

        /* The message memory dies with curl_multi_remove_handle(): copy out first, then act. */
        while (n < ELEMENTSOF(done) && (msg = curl_multi_info_read(g->multi, &left))) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                done[n].easy = msg->easy_handle;
                done[n].result = msg->data.result;
                n++;
        }
        for (size_t i = 0; i < n; i++) {
                if (curl_multi_remove_handle(g->multi, done[i].easy) == CURLM_OK)
                        g->n_handles--;
                g->on_done(g, done[i].easy, done[i].result, g->userdata);
        }
        return n > 0;
}

/* Runs after curl_multi_socket_action(), outside any curl callback: finished transfers go to their
 * owner, whose new transfers curl then starts at once (it asks for that with a zero timeout).
 * Doing it in the same dispatch, as curl_multi_perform() would, means a reused connection's socket
 * goes from one transfer to the next without leaving the epoll set, and costs no extra loop
 * iterations. Bounded, so that a flood of instant failures cannot starve the loop. */
static void drive(CurlGlue *g) {
        for (unsigned round = 0; round < 16; round++) {
                int running;

                if (dispatch_done(g)) {
                        if (g->on_batch)
                                g->on_batch(g, g->userdata);
                } else if (!g->kick)
                        return;
                if (!g->kick)
                        continue;
                g->kick = false;
                if (curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running) != CURLM_OK)
                        log_debug("curl_multi_socket_action() failed on timeout.");
        }
        /* Whatever is left waits for the next iteration. */
        (void) sd_event_source_set_enabled(g->defer, SD_EVENT_ONESHOT);
}

static int on_defer(sd_event_source *s, void *userdata) {
        drive(userdata);
        return 0;
}

static int new_multi(CurlGlue *g, CURLM **ret) {
        CURLM *multi = curl_multi_init();

        if (!multi)
                return -ENOMEM;
        if (curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
            curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, g) != CURLM_OK ||
            curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(multi, CURLMOPT_TIMERDATA, g) != CURLM_OK ||
            (g->max_connections > 0 &&
             curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, g->max_connections) != CURLM_OK)) {
                curl_multi_cleanup(multi);
                return -EIO;
        }
        *ret = multi;
        return 0;
}

int curl_glue_new(CurlGlue **ret, sd_event *event, curl_glue_done_t on_done, void *userdata) {
        _cleanup_(curl_glue_freep) CurlGlue *g = NULL;
        int r;

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(event);
        g->epoll_fd = -EBADF;
        g->on_done = on_done;
        g->userdata = userdata;

        g->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (g->epoll_fd < 0)
                return negative_errno();
        r = sd_event_add_io(event, &g->sockets, g->epoll_fd, EPOLLIN, on_sockets, g);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(g->sockets, "curl-sockets");
        r = sd_event_source_set_prepare(g->sockets, on_prepare);
        if (r < 0)
                return r;

        r = sd_event_add_time(event, &g->timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_timer, g);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(g->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(g->timer, "curl-timer");
        /* sd-event's default accuracy of 250 ms would stretch curl's timeouts. */
        (void) sd_event_source_set_time_accuracy(g->timer, 1);

        r = sd_event_add_defer(event, &g->defer, on_defer, g);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(g->defer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(g->defer, "curl-defer");

        r = new_multi(g, &g->multi);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(g);
        return 0;
}

CurlGlue *curl_glue_free(CurlGlue *g) {
        if (!g)
                return NULL;

        for (size_t i = 0; i < g->n_easy_pool; i++)
                curl_easy_cleanup(g->easy_pool[i]);
        free(g->easy_pool);

        /* Sources first: curl_multi_cleanup() may still call the socket callback, which must find
         * them gone (loop_finished()) or still valid. */
        if (g->multi) {
                (void) curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, NULL);
                (void) curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, NULL);
                curl_multi_cleanup(g->multi);
        }
        sd_event_source_disable_unref(g->sockets);
        safe_close(g->epoll_fd);
        sd_event_source_disable_unref(g->timer);
        sd_event_source_disable_unref(g->defer);
        sd_event_unref(g->event);
        free(g->watch);
        free(g->dirty);
        free(g);
        return NULL;
}

int curl_glue_set_max_connections(CurlGlue *g, unsigned n) {
        /* libcurl 7.88's default is 4 per easy handle added, so the bound would move with load. */
        if (curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, (long) n) != CURLM_OK)
                return -EINVAL;
        g->max_connections = (long) n;
        return 0;
}

int curl_glue_close_connections(CurlGlue *g) {
        CURLM *old = g->multi, *fresh;
        int r;

        /* libcurl 7.88 cannot be told to close its idle connections (it looks at them only when a
         * transfer ends or needs one), but a multi handle closes them all when it goes: swap in a
         * new one. curl_multi_cleanup() closes the sockets through on_close_socket() and may call
         * on_socket()/on_curl_timer(), which only touch the glue's own state. */
        if (g->n_handles > 0)
                return -EBUSY;
        r = new_multi(g, &fresh);
        if (r < 0)
                return r;
        g->multi = fresh;
        curl_multi_cleanup(old);
        return 0;
}

int curl_glue_add(CurlGlue *g, CURL *easy) {
        if (curl_multi_add_handle(g->multi, easy) != CURLM_OK)
                return -EIO;
        g->n_handles++;
        return 0;
}

void curl_glue_remove(CurlGlue *g, CURL *easy) {
        /* A handle that stayed counted would keep the idle connections open for good
         * (curl_glue_close_connections()). */
        if (curl_multi_remove_handle(g->multi, easy) == CURLM_OK)
                g->n_handles--;
}

CURL *curl_glue_get_easy(CurlGlue *g) {
        CURL *easy;

        if (g->n_easy_pool > 0)
                return g->easy_pool[--g->n_easy_pool];
        easy = curl_easy_init();
        /* Set once, kept across reuse. A connection closes through the callback of the transfer
         * that opened it. */
        if (easy &&
            (curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, g) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, g) != CURLE_OK))
                easy = (curl_easy_cleanup(easy), NULL);
        return easy;
}

void curl_glue_put_easy(CurlGlue *g, CURL *easy) {
        if (!easy)
                return;
        if (g->n_easy_pool < EASY_POOL_MAX) {
                if (!g->easy_pool) {
                        g->easy_pool = calloc(EASY_POOL_MAX, sizeof(CURL *));
                        if (!g->easy_pool) {
                                curl_easy_cleanup(easy);
                                return;
                        }
                }
                g->easy_pool[g->n_easy_pool++] = easy;
                return;
        }
        curl_easy_cleanup(easy);
}

void curl_glue_set_batch_callback(CurlGlue *g, curl_glue_batch_t on_batch) {
        g->on_batch = on_batch;
}
