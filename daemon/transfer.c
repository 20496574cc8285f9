/* SPDX-License-Identifier: MIT */
/* transfer: one task while it runs — its curl easy handle on the wire, then its file on the disk
 * pool — until its single result is recorded with the job.
 *
 * Life cycle: start → (body arrives → FileWriter buffers it, pausing curl when the pool falls
 * behind) → curl done → slot released → commit or discard the file on the pool → result. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "file-writer.h"
#include "http-response.h"
#include "log.h"
#include "transfer.h"

struct Transfer {
        ListLink link;                  /* on job->transfers */
        Job *job;
        uint32_t index;
        CURL *easy;                     /* NULL once off the wire */
        FileWriter *writer;

        TaskStatus status;              /* decided when the wire part ends */
        long http_code;
        char *failure;                  /* our own reason to fail (size limit, disk) */
        bool paused;
        bool cancelled;
        uint64_t discarded;             /* body bytes of responses that are not the file */
        size_t commit_bytes;            /* counted in engine->committing_bytes */

        HttpResponse response;          /* what its header lines said */
        char errbuf[CURL_ERROR_SIZE];
};

Transfer *transfer_from_link(ListLink *l) {
        return container_of(l, Transfer, link);
}

static void transfer_free(Transfer *t) {
        if (!t)
                return;
        list_unlink(&t->link);
        file_writer_free(t->writer);
        free(t->failure);
        free(t);
}

/* HTTP/2 has no reason phrases, and HTTP/1.1 servers may send none. */
static const char *reason_phrase_default(long code) {
        switch (code) {
        case 206: return "Partial Content";
        case 300: return "Multiple Choices";
        case 304: return "Not Modified";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 402: return "Payment Required";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 406: return "Not Acceptable";
        case 407: return "Proxy Authentication Required";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 410: return "Gone";
        case 411: return "Length Required";
        case 412: return "Precondition Failed";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 416: return "Range Not Satisfiable";
        case 418: return "I'm a Teapot";
        case 421: return "Misdirected Request";
        case 422: return "Unprocessable Content";
        case 425: return "Too Early";
        case 426: return "Upgrade Required";
        case 428: return "Precondition Required";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 451: return "Unavailable For Legal Reasons";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        case 507: return "Insufficient Storage";
        case 508: return "Loop Detected";
        case 511: return "Network Authentication Required";
        default: return NULL;
        }
}

/* 206 is a part of the file: asyncd never asks for one, and must not save it as whole. */
static bool status_is_file(long code) {
        return code >= 200 && code <= 299 && code != 206;
}

/* Of a body that is not the file, this much is read so that the connection can serve the next
 * transfer; a longer (or endless) one is not waited for. */
#define DISCARD_MAX (64U * 1024U)

static void finish(Transfer *t, TaskStatus status, const char *error) {
        Job *j = t->job;
        uint32_t index = t->index;
        long code = t->http_code;
        uint64_t bytes = status == TASK_OK && t->writer ? file_writer_size(t->writer) : 0;
        _cleanup_free_ char *message = error ? strdup(error) : NULL;

        if (t->commit_bytes > 0) {
                j->engine->committing_bytes -= t->commit_bytes;
                engine_wake_scheduler(j->engine);
        }
        transfer_free(t);
        job_record_result(j, index, status, code, bytes, message);
}

static void set_failure(Transfer *t, const char *fmt, ...) _printf_(2, 3);
static void set_failure(Transfer *t, const char *fmt, ...) {
        va_list ap;

        if (t->failure)
                return;
        va_start(ap, fmt);
        if (vasprintf(&t->failure, fmt, ap) < 0)
                t->failure = NULL;
        va_end(ap);
}

static void on_writer_drained(FileWriter *w, void *userdata) {
        Transfer *t = userdata;

        if (t->paused && t->easy) {
                t->paused = false;
                /* May call on_write right here with the data curl held back. */
                (void) curl_easy_pause(t->easy, CURLPAUSE_CONT);
        }
}

static void on_writer_finished(FileWriter *w, int r, void *userdata) {
        Transfer *t = userdata;

        if (r > 0)
                finish(t, TASK_OK, NULL);
        else if (t->cancelled)
                finish(t, TASK_CANCELLED, NULL);
        else if (r < 0)
                finish(t, TASK_ERROR, file_writer_error_message(w));
        else
                finish(t, t->status, t->failure);
}

static const FileWriterCallbacks writer_callbacks = {
        .on_drained = on_writer_drained,
        .on_finished = on_writer_finished,
};

static int ensure_writer(Transfer *t) {
        Job *j = t->job;

        if (t->writer)
                return 0;
        return file_writer_new(&t->writer, j->engine->pool, j->dirfd, j->tasks[t->index].filename,
                               (j->options.overwrite ? FILE_WRITER_OVERWRITE : 0) |
                               (j->options.fsync ? FILE_WRITER_FSYNC : 0),
                               &writer_callbacks, t);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata) {
        Transfer *t = userdata;
        uint64_t max = t->job->options.max_bytes;
        size_t n = size * nmemb;
        long code = 0;
        int r;

        /* Bodies of error pages (and of redirects, if curl hands them over) are not the file. */
        (void) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
        if (!status_is_file(code)) {
                t->discarded += n;
                return t->discarded <= DISCARD_MAX ? n : 0;
        }

        if (max > 0 && (t->writer ? file_writer_size(t->writer) : 0) + n > max) {
                set_failure(t, "body larger than the limit of %" PRIu64 " bytes", max);
                return 0;
        }
        if (!t->writer) {
                curl_off_t length = -1;

                /* Not CURLOPT_MAXFILESIZE: it applies to every response, and the limit is for the
                 * file, not for error pages or redirects. */
                if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) != CURLE_OK)
                        length = -1;
                if (max > 0 && length > 0 && (uint64_t) length > max) {
                        set_failure(t, "body larger than the limit of %" PRIu64 " bytes", max);
                        return 0;
                }
                r = ensure_writer(t);
                if (r < 0) {
                        set_failure(t, "%s", strerror(-r));
                        return 0;
                }
                if (length > 0)
                        file_writer_expect(t->writer, (uint64_t) length);
        }
        if (file_writer_is_full(t->writer)) {
                t->paused = true;
                return CURL_WRITEFUNC_PAUSE;
        }
        r = file_writer_write(t->writer, data, n);
        if (r < 0) {
                set_failure(t, "%s", r == -ENOMEM ? strerror(-r) : file_writer_error_message(t->writer));
                return 0;
        }
        return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata) {
        Transfer *t = userdata;
        size_t n = size * nmemb;

        if (http_response_header(&t->response, data, n) < 0) {
                set_failure(t, "conflicting Content-Length headers (%" PRIu64 " and %" PRIu64 ")",
                            t->response.length, t->response.other_length);
                return 0;
        }
        return n;
}

/* The body of a redirect that curl follows is read and dropped by curl, never handed to on_write:
 * in a job with max_bytes it is bounded here, like an error page's, by the larger of max_bytes and
 * DISCARD_MAX (a redirect's body is no part of the file, and short ones must pass). */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        Transfer *t = userdata;
        uint64_t max = MAX(t->job->options.max_bytes, (uint64_t) DISCARD_MAX);
        long code = 0;

        if (t->job->options.max_bytes == 0 || dlnow <= 0 || (uint64_t) dlnow <= max || !t->response.location)
                return 0;
        (void) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code < 300 || code > 399)
                return 0;
        set_failure(t, "redirect body larger than %" PRIu64 " bytes", max);
        return 1;
}

/* Called once the transfer has its connection, just before the request goes out. */
static int on_connected(void *userdata, char *primary_ip, char *local_ip, int primary_port, int local_port) {
        Transfer *t = userdata;

        job_end_probe(t->job);
        return CURL_PREREQFUNC_OK;
}

/* Big receive buffers cut the per-chunk cost of large bodies, but every transfer on the wire holds
 * one: share a fixed budget per job between its concurrent transfers. Never below 16 KiB, the
 * largest HTTP/2 DATA frame we allow: libcurl 7.88 leaves a stream whose frame did not fit its
 * buffer stalled until the connection next wakes up (8 KiB: the last of 2,000 files 30 s late). */
#define RECEIVE_BUFFER_BUDGET (1024L * 1024L)

static long receive_buffer_size(unsigned concurrency) {
        return MIN(MAX(RECEIVE_BUFFER_BUDGET / (long) MAX(concurrency, 1U), (long) CURL_MAX_WRITE_SIZE),
                   256L * 1024L);
}

/* Rounded up: 999 µs truncated to 0 would mean "no limit" to curl. Not (usec + unit - 1) / unit:
 * near UINT64_MAX that wraps to 0 too. */
static long usec_to_units_up(uint64_t usec, uint64_t unit) {
        return (long) MIN(usec / unit + (usec % unit > 0), (uint64_t) LONG_MAX);
}

static int setup_easy(Transfer *t) {
        const JobOptions *o = &t->job->options;
        CURL *e = t->easy;

        /* Not CURLOPT_PIPEWAIT for sharing an HTTP/2 connection: with libcurl 7.88 the waiting
         * transfers fail one handshake at a time when a host's certificate is refused, and beyond
         * 100 streams each opens a connection anyway (bench/README.md). The job's probe instead. */
        if (curl_easy_setopt(e, CURLOPT_URL, t->job->tasks[t->index].url) != CURLE_OK)
                return -ENOMEM;
        (void) curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_connected);
        (void) curl_easy_setopt(e, CURLOPT_PREREQDATA, t);
        (void) curl_easy_setopt(e, CURLOPT_PRIVATE, t);
        (void) curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
        (void) curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
        (void) curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        (void) curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
        (void) curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
        (void) curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        (void) curl_easy_setopt(e, CURLOPT_MAXREDIRS, 20L);
        (void) curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        (void) curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        (void) curl_easy_setopt(e, CURLOPT_USERAGENT, "asyncd/" PACKAGE_VERSION);
        (void) curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL);
        (void) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, usec_to_units_up(o->timeout_usec, USEC_PER_MSEC));
        (void) curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, usec_to_units_up(o->connect_timeout_usec, USEC_PER_MSEC));
        /* A peer that went silent (a dead link sends no reset) would hold its slot forever. curl does
         * not count a transfer paused for the disk as slow. */
        (void) curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, o->stall_timeout_usec > 0 ? 1L : 0L);
        (void) curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, usec_to_units_up(o->stall_timeout_usec, USEC_PER_SEC));
        (void) curl_easy_setopt(e, CURLOPT_BUFFERSIZE, receive_buffer_size(o->concurrency));
        (void) curl_easy_setopt(e, CURLOPT_NOPROGRESS, o->max_bytes > 0 ? 0L : 1L);
        (void) curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
        (void) curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
        return 0;
}

int transfer_start(Job *j, uint32_t index) {
        Transfer *t;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->job = j;
        t->index = index;

        t->easy = curl_glue_get_easy(j->engine->glue);
        if (!t->easy) {
                free(t);
                return -ENOMEM;
        }
        r = setup_easy(t);
        if (r >= 0)
                r = curl_glue_add(j->engine->glue, t->easy);
        if (r < 0) {
                curl_glue_put_easy(j->engine->glue, t->easy);
                free(t);
                return r;
        }
        list_append(&j->transfers, &t->link);
        return 0;
}

/* The wire part is over, for whatever reason: give the easy handle and the slot back. */
static void leave_wire(Transfer *t) {
        CurlGlue *g = t->job->engine->glue;

        (void) curl_easy_setopt(t->easy, CURLOPT_PRIVATE, NULL);
        curl_glue_put_easy(g, t->easy);
        t->easy = NULL;
        job_end_probe(t->job);
        job_release_slot(t->job);
}

/* The final response's header is complete and its body is not the file: however that body ended
 * (cut short, reset, silent, or not waited for beyond DISCARD_MAX), the status says what happened,
 * as with curl --fail, which does not read it at all. Not for a redirect curl was about to follow:
 * it was not followed, curl's reason stands. */
static bool status_decides(Transfer *t) {
        if (!t->response.headers_done || t->http_code < 200 || status_is_file(t->http_code))
                return false;
        return !(t->http_code >= 300 && t->http_code <= 399 && t->response.location);
}

static TaskStatus classify(Transfer *t, CURLcode code, char *error, size_t error_size) {
        const char *reason;

        if (t->failure)
                return TASK_ERROR;
        if (code != CURLE_OK && !status_decides(t)) {
                long os_errno = 0;

                /* curl says "Couldn't connect to server"; the socket error says why. */
                (void) curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &os_errno);
                /* libcurl 7.88 reports a header line beyond its 100 KiB limit as bare "Out of memory". */
                if (code == CURLE_OUT_OF_MEMORY && !t->errbuf[0] && t->http_code > 0 && !t->response.headers_done)
                        snprintf(t->errbuf, sizeof(t->errbuf),
                                 "Out of memory, or a response header line longer than libcurl's limit of 100 KiB");
                if (os_errno > 0 && IN_SET(code, (CURLcode) CURLE_COULDNT_CONNECT, (CURLcode) CURLE_RECV_ERROR, (CURLcode) CURLE_SEND_ERROR) &&
                    !strstr(t->errbuf, strerror((int) os_errno)))
                        snprintf(error, error_size, "%s (%s)", t->errbuf[0] ? t->errbuf : curl_easy_strerror(code),
                                 strerror((int) os_errno));
                else
                        snprintf(error, error_size, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
                return TASK_ERROR;
        }
        if (status_is_file(t->http_code))
                return TASK_OK;
        if (t->http_code == 404)
                return TASK_NOT_FOUND;
        reason = t->response.reason[0] ? t->response.reason : reason_phrase_default(t->http_code);
        snprintf(error, error_size, "HTTP %ld%s%s%s", t->http_code, reason ? " " : "", reason ?: "",
                 t->http_code == 206 ? " (a part of the file, which was not asked for)" : "");
        return TASK_ERROR;
}

void transfer_on_curl_done(CURL *easy, CURLcode code) {
        char error[CURL_ERROR_SIZE + 64] = "";
        Transfer *t = NULL;
        int r;

        (void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
        if (!t)
                return;
        (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t->http_code);
        t->status = classify(t, code, error, sizeof(error));
        if (!t->failure && error[0])
                set_failure(t, "%s", error);
        leave_wire(t);

        if (t->status == TASK_OK) {
                /* An empty 2xx body never called on_write: it still makes an (empty) file. */
                r = ensure_writer(t);
                if (r < 0) {
                        finish(t, TASK_ERROR, strerror(-r));
                        return;
                }
                /* Counted first: the commit may end, and free t, before it returns. */
                t->commit_bytes = sizeof(*t) + file_writer_memory(t->writer);
                t->job->engine->committing_bytes += t->commit_bytes;
                file_writer_commit(t->writer);
        } else if (t->writer)
                file_writer_abort(t->writer);
        else
                finish(t, t->status, t->failure);
}

void transfer_cancel(Transfer *t) {
        if (!t->easy)
                return; /* already committing or discarding its file: that outcome stands */
        t->cancelled = true;
        /* The result names the status a cancelled transfer had received, if any. */
        (void) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->http_code);

        curl_glue_remove(t->job->engine->glue, t->easy);
        leave_wire(t);
        if (t->writer)
                file_writer_abort(t->writer);
        else
                finish(t, TASK_CANCELLED, NULL);
}
