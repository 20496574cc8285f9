/* SPDX-License-Identifier: MIT */
/* transfer: one task while it runs — its curl easy handle on the wire, then its file on the disk
 * pool — until its single result is recorded with the job. */
#pragma once

#include <curl/curl.h>

#include "job.h"

typedef struct Transfer Transfer;

/* Starts task index of job j. On failure the caller records an error result for it. */
int transfer_start(Job *j, uint32_t index);
/* Cancels: stops the wire transfer and discards its file; the result (cancelled) follows. */
void transfer_cancel(Transfer *t);
/* From the engine's curl glue: the easy handle finished. */
void transfer_on_curl_done(CURL *easy, CURLcode code);

Transfer *transfer_from_link(ListLink *l);
