/* SPDX-License-Identifier: MIT */
/* curl-glue: drives one libcurl multi handle from an sd-event loop (io + timer sources, no threads). */
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>

typedef struct CurlGlue CurlGlue;

/* Called on the loop, never from inside a curl callback, once per finished easy handle. The handle
 * has already been removed from the multi handle; the callee owns it again. */
typedef void (*curl_glue_done_t)(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

/* Called after a batch of done callbacks, at a point where starting transfers takes effect at once:
 * curl starts them before the loop polls again. */
typedef void (*curl_glue_batch_t)(CurlGlue *g, void *userdata);

int curl_glue_new(CurlGlue **ret, sd_event *event, curl_glue_done_t on_done, void *userdata);
CurlGlue *curl_glue_free(CurlGlue *g);
void curl_glue_set_batch_callback(CurlGlue *g, curl_glue_batch_t on_batch);
/* The most connections curl keeps, in use and idle: a bound on the sockets the daemon holds. */
int curl_glue_set_max_connections(CurlGlue *g, unsigned n);
/* Closes the connections curl keeps for reuse (there must be no transfer on the wire: -EBUSY). */
int curl_glue_close_connections(CurlGlue *g);

/* Starts a transfer on an easy handle from curl_glue_get_easy(), which watches its sockets. The
 * caller keeps ownership of the easy handle. */
int curl_glue_add(CurlGlue *g, CURL *easy);
/* Stops a transfer that has not completed yet; its done callback will not run. */
void curl_glue_remove(CurlGlue *g, CURL *easy);

/* Easy handles are expensive to set up; finished ones are kept for the next transfer. */
CURL *curl_glue_get_easy(CurlGlue *g);
void curl_glue_put_easy(CurlGlue *g, CURL *easy);

static inline void curl_glue_freep(CurlGlue **g) {
        curl_glue_free(*g);
}
