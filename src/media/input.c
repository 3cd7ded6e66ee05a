#include "media/input.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/avstring.h>

#include "util/error.h"

/*
 * Containers a phone, camera or editing tool produces. Left out on purpose:
 * hls, concat, image2 and other sequence or playlist demuxers, every
 * subtitle format, and data formats such as tty or bin, because they read
 * other files, URLs or arbitrary text.
 */
const char sn_input_format_allowlist[] =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts,avi,flv,wav,w64,"
    "mp3,aac,flac,ogg,mxf,asf,mpeg,mpegvideo,h264,hevc,m4v,ac3,eac3,"
    "caf,aiff,amr,dv,ivf,nut,rm,gxf,lxf";

#define IO_BUFFER_SIZE (64 * 1024)

/* ---- the file source ---------------------------------------------------- */

struct file_reader {
    struct sn_reader reader;
    int fd;
};

static int64_t file_read(struct sn_reader *r, int64_t offset, void *buf,
                         size_t n)
{
    struct file_reader *f = (struct file_reader *)r;
    ssize_t got;

    if (offset < 0)
        return -EINVAL;
    if (n > INT_MAX)
        n = INT_MAX;

    do {
        got = pread(f->fd, buf, n, (off_t)offset);
    } while (got < 0 && errno == EINTR);
    return got < 0 ? -errno : (int64_t)got;
}

static void file_close(struct sn_reader *r)
{
    struct file_reader *f = (struct file_reader *)r;

    if (f == NULL)
        return;
    close(f->fd);
    free(f);
}

static int file_open(void *opaque, struct sn_reader **out, char *err,
                     size_t err_size)
{
    const char *path = opaque;
    struct file_reader *f;
    struct stat st;
    int fd;

    /* O_NONBLOCK so that opening a FIFO cannot block; it is rejected
     * below like every other file that is not a regular one. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return SN_ERR_INPUT;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: not a regular file", path);
        close(fd);
        return SN_ERR_INPUT;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);

    f = malloc(sizeof(*f));
    if (f == NULL) {
        close(fd);
        snprintf(err, err_size, "%s: out of memory", path);
        return -ENOMEM;
    }
    f->reader = (struct sn_reader){
        .size = (int64_t)st.st_size,
        .read = file_read,
        .close = file_close,
    };
    f->fd = fd;
    *out = &f->reader;
    return 0;
}

void sn_source_file(struct sn_source *src, const char *path)
{
    src->name = path;
    src->open = file_open;
    src->opaque = (void *)path;
}

/* ---- an AVIOContext over a reader --------------------------------------- */

/* The AVIOContext's opaque: the reader and the demuxer's position in it. */
struct input_io {
    struct sn_reader *reader;
    int64_t pos;
    int read_error;           /* the first failed read's code, or 0 */
    int64_t error_offset;     /* where that read started */
};

static int is_project_code(int64_t code)
{
    return code <= -SN_ERR_BASE && code > -SN_ERR_BASE - 1000;
}

static int read_packet(void *opaque, uint8_t *buf, int size)
{
    struct input_io *io = opaque;
    int64_t n;

    n = io->reader->read(io->reader, io->pos, buf, (size_t)size);
    if (n < 0) {
        if (io->read_error == 0) {
            io->read_error = (int)n;
            io->error_offset = io->pos;
        }
        /* -errno is already an AVERROR on POSIX systems. */
        return is_project_code(n) ? AVERROR(EIO) : (int)n;
    }
    if (n == 0)
        return AVERROR_EOF;

    io->pos += n;
    return (int)n;
}

static int64_t seek(void *opaque, int64_t offset, int whence)
{
    struct input_io *io = opaque;
    int64_t size = io->reader->size;
    int64_t base;

    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
        return size >= 0 ? size : AVERROR(ENOSYS);
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = io->pos;
        break;
    case SEEK_END:
        if (size < 0)
            return AVERROR(ENOSYS);
        base = size;
        break;
    default:
        return AVERROR(EINVAL);
    }

    /* A position past the end is allowed, as with lseek(): reads there
     * return the end of the file. */
    if (offset < -base || offset > INT64_MAX - base)
        return AVERROR(EINVAL);
    io->pos = base + offset;
    return io->pos;
}

/* Rejects every nested open: an input may only read its own bytes. */
static int refuse_io_open(struct AVFormatContext *s, AVIOContext **pb,
                          const char *url, int flags, AVDictionary **options)
{
    (void)s;
    (void)pb;
    (void)url;
    (void)flags;
    (void)options;
    return AVERROR(EPERM);
}

static void close_io(AVIOContext **pb)
{
    struct input_io *io;

    if (*pb == NULL)
        return;
    io = (*pb)->opaque;
    if (io != NULL) {
        io->reader->close(io->reader);
        av_free(io);
    }
    av_freep(&(*pb)->buffer);
    avio_context_free(pb);
}

/* Wraps reader in an AVIOContext that owns it, also on failure. */
static int open_io(struct sn_reader *reader, AVIOContext **out)
{
    struct input_io *io = av_mallocz(sizeof(*io));
    uint8_t *buffer = av_malloc(IO_BUFFER_SIZE);

    if (io == NULL || buffer == NULL)
        goto nomem;
    io->reader = reader;

    *out = avio_alloc_context(buffer, IO_BUFFER_SIZE, 0, io, read_packet,
                              NULL, seek);
    if (*out == NULL)
        goto nomem;
    return 0;

nomem:
    av_free(buffer);
    av_free(io);
    reader->close(reader);
    return -ENOMEM;
}

static struct input_io *input_io_of(AVFormatContext *ctx)
{
    return ctx != NULL && ctx->pb != NULL ? ctx->pb->opaque : NULL;
}

static int read_error(const struct input_io *io, char *cause,
                      size_t cause_size)
{
    if (io == NULL || io->read_error == 0)
        return 0;

    if (is_project_code(io->read_error)) {
        snprintf(cause, cause_size, "read failed at byte %lld (%s)",
                 (long long)io->error_offset,
                 io->read_error == SN_ERR_AGAIN
                     ? "the store is temporarily unavailable"
                     : "the store failed");
        return io->read_error;
    }
    snprintf(cause, cause_size, "read failed at byte %lld: %s",
             (long long)io->error_offset, strerror(-io->read_error));
    return SN_ERR_INPUT;
}

int sn_input_read_error(AVFormatContext *ctx, char *cause, size_t cause_size)
{
    return read_error(input_io_of(ctx), cause, cause_size);
}

/*
 * Reports a failed open or stream-info read. A failed read of the source
 * is named as such, with its own code, so that a store that failed is not
 * blamed on the media.
 */
static int open_failed(const struct sn_source *src,
                       const struct input_io *io, const char *what,
                       int averror, char *err, size_t err_size)
{
    char cause[SN_ERR_SIZE];
    int rc = read_error(io, cause, sizeof(cause));

    if (rc < 0) {
        snprintf(err, err_size, "%s: %s", src->name, cause);
        return rc;
    }
    snprintf(err, err_size, "%s: %s (%s)", src->name, what,
             av_err2str(averror));
    return SN_ERR_INPUT;
}

int sn_input_open_source(const struct sn_source *src, AVFormatContext **out,
                         char *err, size_t err_size)
{
    struct sn_reader *reader = NULL;
    AVFormatContext *ctx = NULL;
    AVIOContext *pb = NULL;
    AVDictionary *options = NULL;
    int rc;

    rc = src->open(src->opaque, &reader, err, err_size);
    if (rc < 0)
        return rc;
    if (open_io(reader, &pb) < 0)
        goto nomem;

    ctx = avformat_alloc_context();
    if (ctx == NULL)
        goto nomem;
    ctx->pb = pb;
    ctx->flags |= AVFMT_FLAG_CUSTOM_IO;
    ctx->io_open = refuse_io_open;
    ctx->format_whitelist = av_strdup(sn_input_format_allowlist);
    ctx->protocol_whitelist = av_strdup("file");
    av_dict_set(&options, "enable_drefs", "0", 0);

    rc = avformat_open_input(&ctx, src->name, NULL, &options);
    av_dict_free(&options);
    if (rc < 0) {
        /* avformat_open_input() frees ctx on failure, but not custom I/O. */
        rc = open_failed(src, pb->opaque, "not a supported media file", rc,
                         err, err_size);
        close_io(&pb);
        return rc;
    }

    /* A read that fails here ends the stream information early without
     * an error, so the reader's record is checked as well. */
    rc = avformat_find_stream_info(ctx, NULL);
    if (rc < 0 || input_io_of(ctx)->read_error != 0) {
        rc = open_failed(src, input_io_of(ctx),
                         "cannot read stream information", rc, err, err_size);
        sn_input_close(&ctx);
        return rc;
    }

    *out = ctx;
    return 0;

nomem:
    close_io(&pb);
    snprintf(err, err_size, "%s: out of memory", src->name);
    return -ENOMEM;
}

int sn_input_open(const char *path, AVFormatContext **out, char *err,
                  size_t err_size)
{
    struct sn_source src;

    sn_source_file(&src, path);
    return sn_input_open_source(&src, out, err, err_size);
}

void sn_input_close(AVFormatContext **ctx)
{
    AVIOContext *pb;

    if (*ctx == NULL)
        return;
    pb = (*ctx)->pb;
    avformat_close_input(ctx);
    close_io(&pb);
}

int sn_decoder_open(const AVStream *st, AVCodecContext **out)
{
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    AVCodecContext *dec;
    int rc;

    *out = NULL;
    if (codec == NULL)
        return AVERROR_DECODER_NOT_FOUND;
    dec = avcodec_alloc_context3(codec);
    if (dec == NULL)
        return AVERROR(ENOMEM);

    rc = avcodec_parameters_to_context(dec, st->codecpar);
    if (rc >= 0) {
        dec->thread_count = 1;
        dec->pkt_timebase = st->time_base;
        rc = avcodec_open2(dec, codec, NULL);
    }
    if (rc < 0) {
        avcodec_free_context(&dec);
        return rc;
    }
    *out = dec;
    return 0;
}

int64_t sn_input_size(AVFormatContext *ctx)
{
    const struct input_io *io = input_io_of(ctx);

    return io != NULL ? io->reader->size : -1;
}
