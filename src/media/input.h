/*
 * Opening untrusted inputs safely.
 *
 * The input is read through our own AVIOContext over a file descriptor,
 * never by URL, and demuxers come from an allow-list of container formats
 * that cannot reference other files (no HLS, concat, image sequences,
 * subtitle or playlist formats). Every nested open a demuxer attempts goes
 * through an io_open callback that refuses it, and the protocol allow-list
 * is "file" alone as a second fence.
 */
#ifndef SN_MEDIA_INPUT_H
#define SN_MEDIA_INPUT_H

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

/* Comma-separated demuxer names accepted by default. */
extern const char sn_input_format_allowlist[];

/*
 * Opens path for demuxing and reads the stream information. On success sets
 * *out to a context the caller closes with sn_input_close() and returns 0.
 * On failure returns SN_ERR_INPUT (or -ENOMEM) with a one-line cause naming
 * the file in err; *out is untouched.
 */
int sn_input_open(const char *path, AVFormatContext **out, char *err,
                  size_t err_size);

/* Closes a context from sn_input_open(); accepts NULL. */
void sn_input_close(AVFormatContext **ctx);

/*
 * Opens a single-threaded decoder for st (one thread, because the worker
 * pool provides the parallelism). Returns 0 and sets *out, which the
 * caller frees with avcodec_free_context(), or a negative AVERROR:
 * AVERROR_DECODER_NOT_FOUND when FFmpeg has no decoder for the codec.
 * *out is NULL after a failure.
 */
int sn_decoder_open(const AVStream *st, AVCodecContext **out);

/* Returns the size of the file behind an opened input in bytes. */
int64_t sn_input_size(AVFormatContext *ctx);

#endif
