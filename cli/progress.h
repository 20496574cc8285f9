/* SPDX-License-Identifier: MIT */
/* progress: the tqdm-like progress bar and the spinner, rendered to strings (no I/O here). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ProgressState {
        unsigned done;          /* tasks with a result */
        unsigned total;         /* tasks in the job, 0 if not known yet */
        uint64_t elapsed_usec;
        uint64_t bytes;         /* bytes received so far, 0 if not known */
        unsigned frame;         /* spinner frame, advanced by the caller */
} ProgressState;

/* tqdm's format_interval(): "MM:SS", or "H:MM:SS" from one hour on. */
void progress_format_interval(uint64_t usec, char *buf, size_t size);

/* tqdm's rate: "12.34it/s", or "1.50s/it" below one per second, "?it/s" when unknown (rate <= 0). */
void progress_format_rate(double per_sec, char *buf, size_t size);

/* One spinner frame: braille dots with unicode, "|/-\" otherwise. */
const char *progress_spinner(unsigned frame, bool unicode);

/* The bar without the bar part: " 65%|" and "| 13/20 [00:01<00:00,  9.80it/s, 1.2M]". */
int progress_render_parts(const ProgressState *s, char **ret_left, char **ret_right);

/* The bar body, exactly width columns, tqdm's charset (eighths of a block, or " 123456789#"). */
char *progress_render_bar(double fraction, unsigned width, bool unicode);

/* The whole line, at most columns wide: the spinner line while nothing is done yet, else
 * " 65%|██████▌   | 13/20 [00:01<00:00,  9.80it/s, 1.2M]". Returns NULL when out of memory. */
char *progress_render(const ProgressState *s, unsigned columns, bool unicode);
