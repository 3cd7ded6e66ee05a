/*
 * Segment writer: turns an encoder's packets into HLS segment files, either
 * fMP4/CMAF (one init segment, then one moof+mdat fragment per GOP inside
 * each segment) or MPEG-TS (a complete transport stream per segment). The
 * writer holds bytes in memory until a segment ends and hands them to the
 * caller, who decides where they go.
 *
 * Timestamps are written as given: fMP4 fragments carry the first packet's
 * DTS in tfdt and MPEG-TS keeps PTS and DTS, so segments made by different
 * workers join with no gap.
 */
#ifndef SN_MEDIA_FMP4_H
#define SN_MEDIA_FMP4_H

#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

enum sn_segment_format {
    SN_SEGMENT_FMP4,
    SN_SEGMENT_TS,
};

/* Maximum I-frames recorded per segment (one per keyframe interval). */
#define SN_MAX_IFRAMES 64

struct sn_iframe {
    int64_t pts;              /* in the writer's time base */
    int64_t offset;           /* byte range in the segment file */
    int64_t length;
};

struct sn_segment_bytes {
    uint8_t *data;            /* av_malloc'd; free with av_free() */
    size_t size;
    struct sn_iframe iframes[SN_MAX_IFRAMES];
    int n_iframes;
};

struct sn_seg_writer;

/*
 * Creates a writer for packets of enc (whose extradata must be set, i.e.
 * opened with AV_CODEC_FLAG_GLOBAL_HEADER) in time base tb. For fMP4 the
 * init segment is produced here. Returns 0 or SN_ERR_MEDIA/-ENOMEM with the
 * cause in err.
 */
int sn_seg_writer_new(struct sn_seg_writer **out, enum sn_segment_format fmt,
                      const AVCodecContext *enc, AVRational tb, char *err,
                      size_t err_size);

/* The fMP4 init segment (ftyp+moov); NULL and 0 for MPEG-TS. */
const uint8_t *sn_seg_writer_init(const struct sn_seg_writer *w,
                                  size_t *size);

/*
 * Starts a segment. For fMP4, fragment_number is the mfhd sequence number
 * of its first fragment, so numbers keep rising across workers.
 */
int sn_seg_writer_begin(struct sn_seg_writer *w, int64_t fragment_number,
                        char *err, size_t err_size);

/*
 * Writes one packet (time base tb, duration set) into the open segment.
 * A keyframe starts a new fragment (fMP4) and is recorded as an I-frame.
 * The writer does not take ownership of pkt. Returns 0 or SN_ERR_MEDIA.
 */
int sn_seg_writer_write(struct sn_seg_writer *w, AVPacket *pkt, char *err,
                        size_t err_size);

/*
 * Ends the open segment and moves its bytes and I-frame ranges to *out,
 * which the caller frees with sn_segment_bytes_release().
 */
int sn_seg_writer_end(struct sn_seg_writer *w, struct sn_segment_bytes *out,
                      char *err, size_t err_size);

void sn_segment_bytes_release(struct sn_segment_bytes *b);

void sn_seg_writer_free(struct sn_seg_writer **w);

#endif
