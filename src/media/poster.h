/*
 * The poster job: one upright, square-pixel JPEG from about 10% into the
 * video, at the size of the rung it is given.
 */
#ifndef SN_MEDIA_POSTER_H
#define SN_MEDIA_POSTER_H

#include "media/job.h"

/*
 * Decodes the first frame at or after 10% of the video's duration, orients
 * and scales it like the rung, and writes it as JPEG to path atomically.
 * Returns 0 or a negative SN_ERR_* code with one line naming source->name
 * in err. Thread-safe like the video job.
 */
int sn_poster_run(const struct sn_source *source, const struct sn_probe *probe,
                  const struct sn_rung *rung, const char *path, char *err,
                  size_t err_size);

#endif
