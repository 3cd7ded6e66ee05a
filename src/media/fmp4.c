#include "media/fmp4.h"

#include <errno.h>
#include <string.h>

#include <libavformat/avformat.h>
#include <libavutil/intreadwrite.h>
#include <libavutil/opt.h>

#include "util/error.h"

struct sn_seg_writer {
    enum sn_segment_format format;
    const AVCodecContext *enc;
    AVRational tb;
    AVFormatContext *mux;
    uint8_t *init;
    int init_size;
    int in_segment;
    int packets_in_fragment;
    int fragment_starts_key[SN_MAX_IFRAMES];
    int n_fragments;
    struct sn_iframe keyframes[SN_MAX_IFRAMES];  /* pts; TS byte ranges */
    int n_keyframes;
};

static int fail(char *err, size_t err_size, const char *what, int averr)
{
    snprintf(err, err_size, "%s: %s", what, av_err2str(averr));
    return averr == AVERROR(ENOMEM) ? -ENOMEM : SN_ERR_MEDIA;
}

/* Takes what the muxer wrote so far and gives it a fresh memory buffer. */
static int take_bytes(AVFormatContext *mux, uint8_t **data, int *size,
                      int reopen)
{
    *size = avio_close_dyn_buf(mux->pb, data);
    mux->pb = NULL;
    return reopen ? avio_open_dyn_buf(&mux->pb) : 0;
}

static void free_muxer(AVFormatContext **mux)
{
    uint8_t *discard = NULL;

    if (*mux == NULL)
        return;
    if ((*mux)->pb != NULL) {
        avio_close_dyn_buf((*mux)->pb, &discard);
        av_free(discard);
    }
    avformat_free_context(*mux);
    *mux = NULL;
}

static int open_muxer(struct sn_seg_writer *w, AVFormatContext **out)
{
    const char *format = w->format == SN_SEGMENT_FMP4 ? "mp4" : "mpegts";
    AVDictionary *options = NULL;
    AVFormatContext *mux = NULL;
    AVStream *st;
    int rc;

    rc = avformat_alloc_output_context2(&mux, NULL, format, NULL);
    if (rc < 0)
        return rc;
    st = avformat_new_stream(mux, NULL);
    if (st == NULL) {
        rc = AVERROR(ENOMEM);
        goto out;
    }
    rc = avcodec_parameters_from_context(st->codecpar, w->enc);
    if (rc < 0)
        goto out;
    st->time_base = w->tb;
    mux->flags |= AVFMT_FLAG_BITEXACT;
    /* Timestamps are planned by Sinatra; the muxer must not shift them. */
    mux->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;

    if (w->format == SN_SEGMENT_FMP4) {
        /*
         * frag_custom: fragments end only when we flush, at each GOP.
         * frag_discont with no edit list: tfdt is the first packet's DTS,
         * which keeps the source timeline in every worker's output.
         */
        av_dict_set(&options, "movflags",
                    "frag_custom+empty_moov+default_base_moof+frag_discont"
                    "+skip_trailer", 0);
        av_dict_set(&options, "use_editlist", "0", 0);
        if (w->enc->codec_type == AVMEDIA_TYPE_VIDEO)
            av_dict_set_int(&options, "video_track_timescale", w->tb.den, 0);
    } else {
        av_dict_set(&options, "mpegts_copyts", "1", 0);
        /*
         * Each segment is its own transport stream, so continuity counters
         * restart at 0; the discontinuity indicator on each PID's first
         * packet (ISO/IEC 13818-1, 2.4.3.5) marks the jump as intended.
         */
        av_dict_set(&options, "mpegts_flags", "initial_discontinuity", 0);
    }

    rc = avio_open_dyn_buf(&mux->pb);
    if (rc >= 0)
        rc = avformat_write_header(mux, &options);
    if (rc >= 0) {
        *out = mux;
        mux = NULL;
    }

out:
    av_dict_free(&options);
    free_muxer(&mux);
    return rc;
}

int sn_seg_writer_new(struct sn_seg_writer **out, enum sn_segment_format fmt,
                      const AVCodecContext *enc, AVRational tb, char *err,
                      size_t err_size)
{
    struct sn_seg_writer *w = av_mallocz(sizeof(*w));
    int rc = 0;

    if (w == NULL)
        return fail(err, err_size, "segment writer", AVERROR(ENOMEM));
    w->format = fmt;
    w->enc = enc;
    w->tb = tb;

    if (fmt == SN_SEGMENT_FMP4) {
        rc = open_muxer(w, &w->mux);
        if (rc >= 0)
            rc = take_bytes(w->mux, &w->init, &w->init_size, 1);
        if (rc < 0) {
            sn_seg_writer_free(&w);
            return fail(err, err_size, "cannot start the fMP4 muxer", rc);
        }
    }

    *out = w;
    return 0;
}

const uint8_t *sn_seg_writer_init(const struct sn_seg_writer *w, size_t *size)
{
    *size = w->init != NULL ? (size_t)w->init_size : 0;
    return w->init;
}

int sn_seg_writer_begin(struct sn_seg_writer *w, int64_t fragment_number,
                        char *err, size_t err_size)
{
    int rc = 0;

    w->in_segment = 1;
    w->packets_in_fragment = 0;
    w->n_fragments = 0;
    w->n_keyframes = 0;

    if (w->format == SN_SEGMENT_FMP4)
        rc = av_opt_set_int(w->mux->priv_data, "fragment_index",
                            fragment_number, 0);
    else
        rc = open_muxer(w, &w->mux);
    if (rc < 0)
        return fail(err, err_size, "cannot start a segment", rc);
    return 0;
}

/*
 * Writes a copy of pkt, because the muxer may change the packet's fields.
 * The muxer may have chosen its own time base in avformat_write_header()
 * (MPEG-TS always uses 90 kHz), so timestamps are converted to it.
 */
static int write_copy(AVFormatContext *mux, const AVPacket *pkt,
                      AVRational tb)
{
    AVPacket *copy = av_packet_clone(pkt);
    int rc;

    if (copy == NULL)
        return AVERROR(ENOMEM);
    copy->stream_index = 0;
    av_packet_rescale_ts(copy, tb, mux->streams[0]->time_base);
    rc = av_write_frame(mux, copy);
    av_packet_free(&copy);
    return rc;
}

int sn_seg_writer_write(struct sn_seg_writer *w, AVPacket *pkt, char *err,
                        size_t err_size)
{
    /* Audio packets are all keyframes; only video splits into fragments. */
    int key = (pkt->flags & AV_PKT_FLAG_KEY) != 0 &&
              w->enc->codec_type == AVMEDIA_TYPE_VIDEO;
    int rc;

    if (!w->in_segment)
        return fail(err, err_size, "packet outside a segment",
                    AVERROR(EINVAL));

    /* fMP4: every GOP gets its own fragment, so each I-frame starts one. */
    if (w->format == SN_SEGMENT_FMP4 && key && w->packets_in_fragment > 0) {
        rc = av_write_frame(w->mux, NULL);
        if (rc < 0)
            return fail(err, err_size, "cannot write a fragment", rc);
        w->packets_in_fragment = 0;
    }
    if (w->packets_in_fragment == 0 && w->n_fragments < SN_MAX_IFRAMES)
        w->fragment_starts_key[w->n_fragments++] = key;

    if (key && w->n_keyframes < SN_MAX_IFRAMES) {
        struct sn_iframe *k = &w->keyframes[w->n_keyframes++];

        k->pts = pkt->pts;
        k->offset = avio_tell(w->mux->pb);
    }
    rc = write_copy(w->mux, pkt, w->tb);
    if (rc < 0)
        return fail(err, err_size, "cannot write a packet", rc);
    if (key && w->n_keyframes <= SN_MAX_IFRAMES) {
        struct sn_iframe *k = &w->keyframes[w->n_keyframes - 1];

        k->length = avio_tell(w->mux->pb) - k->offset;
    }
    w->packets_in_fragment++;
    return 0;
}

/* Reads one box header; returns its total size or 0 when malformed. */
static uint64_t box_at(const uint8_t *p, size_t avail, uint32_t *type,
                       size_t *header)
{
    uint64_t size;

    if (avail < 8)
        return 0;
    size = AV_RB32(p);
    *type = AV_RB32(p + 4);
    *header = 8;
    if (size == 1 && avail >= 16) {
        size = AV_RB64(p + 8);
        *header = 16;
    }
    if (size < *header || size > avail)
        return 0;
    return size;
}

static const uint8_t *find_child(const uint8_t *p, size_t size, uint32_t type,
                                 size_t *child_size)
{
    while (size >= 8) {
        uint32_t t;
        size_t header;
        uint64_t n = box_at(p, size, &t, &header);

        if (n == 0)
            return NULL;
        if (t == type) {
            *child_size = (size_t)n;
            return p;
        }
        p += n;
        size -= (size_t)n;
    }
    return NULL;
}

/* Size of the first sample of a traf: from trun, else tfhd's default. */
static int64_t first_sample_size(const uint8_t *traf, size_t size)
{
    size_t tfhd_size = 0, trun_size = 0;
    const uint8_t *tfhd = find_child(traf + 8, size - 8,
                                     MKBETAG('t', 'f', 'h', 'd'), &tfhd_size);
    const uint8_t *trun = find_child(traf + 8, size - 8,
                                     MKBETAG('t', 'r', 'u', 'n'), &trun_size);
    uint32_t flags;
    size_t pos;

    if (trun == NULL || trun_size < 16)
        return -1;
    flags = AV_RB24(trun + 9);
    pos = 16 + ((flags & 0x1) ? 4 : 0) + ((flags & 0x4) ? 4 : 0);
    if (flags & 0x200) {
        pos += (flags & 0x100) ? 4 : 0;
        return pos + 4 <= trun_size ? (int64_t)AV_RB32(trun + pos) : -1;
    }

    if (tfhd == NULL || tfhd_size < 16)
        return -1;
    flags = AV_RB24(tfhd + 9);
    pos = 16 + ((flags & 0x1) ? 8 : 0) + ((flags & 0x2) ? 4 : 0) +
          ((flags & 0x8) ? 4 : 0);
    if ((flags & 0x10) && pos + 4 <= tfhd_size)
        return AV_RB32(tfhd + pos);
    return -1;
}

/*
 * Finds each fragment's I-frame byte range: from the start of its moof to
 * the end of its first sample, which is the key frame (RFC 8216 section
 * 4.3.2.6 requires the range to contain the I-frame and what is needed to decode
 * it).
 */
static void locate_fmp4_iframes(struct sn_seg_writer *w,
                                struct sn_segment_bytes *out)
{
    const uint8_t *p = out->data;
    size_t avail = out->size, offset = 0;
    int fragment = 0, key = 0;

    while (avail >= 8 && fragment < w->n_fragments) {
        uint32_t type, mdat_type;
        size_t header, mdat_header, traf_size;
        uint64_t n = box_at(p, avail, &type, &header);
        const uint8_t *traf;
        int64_t sample;

        if (n == 0)
            break;
        if (type == MKBETAG('m', 'o', 'o', 'f')) {
            traf = find_child(p + 8, (size_t)n - 8,
                              MKBETAG('t', 'r', 'a', 'f'), &traf_size);
            sample = traf ? first_sample_size(traf, traf_size) : -1;
            if (w->fragment_starts_key[fragment] && sample > 0 &&
                box_at(p + n, avail - n, &mdat_type, &mdat_header) &&
                key < w->n_keyframes) {
                struct sn_iframe *f = &out->iframes[out->n_iframes++];

                f->pts = w->keyframes[key].pts;
                f->offset = (int64_t)offset;
                f->length = (int64_t)n + (int64_t)mdat_header + sample;
            }
            key += w->fragment_starts_key[fragment];
            fragment++;
        }
        p += n;
        offset += (size_t)n;
        avail -= (size_t)n;
    }
}

int sn_seg_writer_end(struct sn_seg_writer *w, struct sn_segment_bytes *out,
                      char *err, size_t err_size)
{
    int size = 0, rc;

    memset(out, 0, sizeof(*out));
    if (!w->in_segment)
        return fail(err, err_size, "no open segment", AVERROR(EINVAL));
    w->in_segment = 0;

    if (w->format == SN_SEGMENT_FMP4) {
        rc = w->packets_in_fragment > 0 ? av_write_frame(w->mux, NULL) : 0;
        if (rc >= 0)
            rc = take_bytes(w->mux, &out->data, &size, 1);
    } else {
        rc = av_write_trailer(w->mux);
        if (rc >= 0)
            rc = take_bytes(w->mux, &out->data, &size, 0);
        free_muxer(&w->mux);
    }
    if (rc < 0)
        return fail(err, err_size, "cannot finish a segment", rc);
    out->size = (size_t)size;

    if (w->format == SN_SEGMENT_FMP4) {
        locate_fmp4_iframes(w, out);
    } else {
        memcpy(out->iframes, w->keyframes,
               (size_t)w->n_keyframes * sizeof(out->iframes[0]));
        out->n_iframes = w->n_keyframes;
    }
    return 0;
}

void sn_segment_bytes_release(struct sn_segment_bytes *b)
{
    av_freep(&b->data);
    b->size = 0;
    b->n_iframes = 0;
}

void sn_seg_writer_free(struct sn_seg_writer **w)
{
    if (*w == NULL)
        return;
    free_muxer(&(*w)->mux);
    av_free((*w)->init);
    av_freep(w);
}
