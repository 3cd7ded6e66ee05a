#include "media/input.h"

#include <errno.h>
#include <fcntl.h>
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

struct input_file {
    int fd;
    int64_t size;
};

static int read_packet(void *opaque, uint8_t *buf, int size)
{
    struct input_file *f = opaque;
    ssize_t n;

    do {
        n = read(f->fd, buf, (size_t)size);
    } while (n < 0 && errno == EINTR);

    if (n < 0)
        return AVERROR(errno);
    if (n == 0)
        return AVERROR_EOF;
    return (int)n;
}

static int64_t seek(void *opaque, int64_t offset, int whence)
{
    struct input_file *f = opaque;
    off_t pos;

    if (whence == AVSEEK_SIZE)
        return f->size;

    pos = lseek(f->fd, (off_t)offset, whence & ~AVSEEK_FORCE);
    return pos < 0 ? AVERROR(errno) : (int64_t)pos;
}

/* Refuses every nested open: an input may only read its own bytes. */
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

static void close_file(AVIOContext **pb)
{
    struct input_file *f;

    if (*pb == NULL)
        return;
    f = (*pb)->opaque;
    if (f != NULL) {
        close(f->fd);
        av_free(f);
    }
    av_freep(&(*pb)->buffer);
    avio_context_free(pb);
}

static int open_file(const char *path, AVIOContext **out, char *err,
                     size_t err_size)
{
    struct input_file *f = NULL;
    uint8_t *buffer = NULL;
    struct stat st;
    int fd;

    /* O_NONBLOCK so that opening a FIFO cannot block; it is rejected
     * below like every other file that is not a regular one. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
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

    f = av_mallocz(sizeof(*f));
    buffer = av_malloc(IO_BUFFER_SIZE);
    if (f == NULL || buffer == NULL)
        goto nomem;
    f->fd = fd;
    f->size = (int64_t)st.st_size;

    *out = avio_alloc_context(buffer, IO_BUFFER_SIZE, 0, f, read_packet,
                              NULL, seek);
    if (*out == NULL)
        goto nomem;
    return 0;

nomem:
    av_free(buffer);
    av_free(f);
    close(fd);
    snprintf(err, err_size, "%s: out of memory", path);
    return -ENOMEM;
}

int sn_input_open(const char *path, AVFormatContext **out, char *err,
                  size_t err_size)
{
    AVFormatContext *ctx = NULL;
    AVIOContext *pb = NULL;
    AVDictionary *options = NULL;
    int rc;

    rc = open_file(path, &pb, err, err_size);
    if (rc < 0)
        return rc;

    ctx = avformat_alloc_context();
    if (ctx == NULL) {
        close_file(&pb);
        snprintf(err, err_size, "%s: out of memory", path);
        return -ENOMEM;
    }
    ctx->pb = pb;
    ctx->flags |= AVFMT_FLAG_CUSTOM_IO;
    ctx->io_open = refuse_io_open;
    ctx->format_whitelist = av_strdup(sn_input_format_allowlist);
    ctx->protocol_whitelist = av_strdup("file");
    av_dict_set(&options, "enable_drefs", "0", 0);

    rc = avformat_open_input(&ctx, path, NULL, &options);
    av_dict_free(&options);
    if (rc < 0) {
        /* avformat_open_input() frees ctx on failure, but not custom I/O. */
        close_file(&pb);
        snprintf(err, err_size,
                 "%s: not a supported media file (%s)", path,
                 av_err2str(rc));
        return SN_ERR_INPUT;
    }

    rc = avformat_find_stream_info(ctx, NULL);
    if (rc < 0) {
        sn_input_close(&ctx);
        snprintf(err, err_size, "%s: cannot read stream information (%s)",
                 path, av_err2str(rc));
        return SN_ERR_INPUT;
    }

    *out = ctx;
    return 0;
}

void sn_input_close(AVFormatContext **ctx)
{
    AVIOContext *pb;

    if (*ctx == NULL)
        return;
    pb = (*ctx)->pb;
    avformat_close_input(ctx);
    close_file(&pb);
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
    struct input_file *f = ctx->pb ? ctx->pb->opaque : NULL;

    return f != NULL ? f->size : -1;
}
