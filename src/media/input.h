/*
 * Opening untrusted inputs safely.
 *
 * The input is read through our own AVIOContext over a reader from a
 * source (a local file, or an object in a store read by ranges), never by
 * URL, and demuxers come from an allow-list of container formats that
 * cannot reference other files (no HLS, concat, image sequences, subtitle
 * or playlist formats). Every nested open a demuxer attempts goes through
 * an io_open callback that rejects it, and the protocol allow-list is
 * "file" alone as a second fence.
 */
#ifndef SN_MEDIA_INPUT_H
#define SN_MEDIA_INPUT_H

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "store/store.h"

/* Comma-separated demuxer names accepted by default. */
extern const char sn_input_format_allowlist[];

/*
 * The origin of an input's bytes: a name for messages and a way to open
 * a reader. The name is also the URL the demuxers see, so its extension
 * helps to recognise raw streams such as .h264 or .aac. open() must make a
 * new reader on every call and keep no state of its own, because one
 * source is shared read-only by every job of a video, across threads and
 * forked worker processes. open() returns 0 and *out, or a negative
 * SN_ERR_* code with a one-line cause naming the input in err.
 */
struct sn_source {
    const char *name;
    int (*open)(void *opaque, struct sn_reader **out, char *err,
                size_t err_size);
    void *opaque;
};

/*
 * Fills src to read the regular file at path (the CLI's case). src keeps
 * the pointer, so path must outlive it. open() rejects anything that is
 * not a regular file (a FIFO, a device, a folder) with SN_ERR_INPUT.
 */
void sn_source_file(struct sn_source *src, const char *path);

/*
 * Opens a reader from src, demuxes it and reads the stream information.
 * On success sets *out to a context the caller closes with sn_input_close()
 * and returns 0. On failure returns a negative code with a one-line cause
 * naming src->name in err, and *out is untouched: SN_ERR_INPUT when the
 * bytes are not supported media, -ENOMEM, or the code of a failed open()
 * or read (SN_ERR_AGAIN or SN_ERR_BACKEND from a store, so a transient
 * store failure is not mistaken for bad input).
 * Thread-safe: every call opens its own reader.
 */
int sn_input_open_source(const struct sn_source *src, AVFormatContext **out,
                         char *err, size_t err_size);

/* Opens the file at path like sn_input_open_source() with sn_source_file(). */
int sn_input_open(const char *path, AVFormatContext **out, char *err,
                  size_t err_size);

/* Closes a context from sn_input_open*() and its reader; accepts NULL. */
void sn_input_close(AVFormatContext **ctx);

/*
 * Opens a single-threaded decoder for st (one thread, because the worker
 * pool provides the parallelism). Returns 0 and sets *out, which the
 * caller frees with avcodec_free_context(), or a negative AVERROR:
 * AVERROR_DECODER_NOT_FOUND when FFmpeg has no decoder for the codec.
 * *out is NULL after a failure.
 */
int sn_decoder_open(const AVStream *st, AVCodecContext **out);

/* Returns the size in bytes of the object behind an opened input. */
int64_t sn_input_size(AVFormatContext *ctx);

/*
 * Demuxers take a failed read for the end of the file, so a job that
 * reaches the end calls this to tell the two apart. Returns 0 when every
 * read of the input succeeded. Else writes the cause, starting with "read
 * failed at byte", into cause and returns the reader's SN_ERR_* code, or
 * SN_ERR_INPUT for an errno from a local file.
 */
int sn_input_read_error(AVFormatContext *ctx, char *cause, size_t cause_size);

#endif
