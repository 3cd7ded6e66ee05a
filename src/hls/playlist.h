/*
 * HLS playlist model and writer (RFC 8216). Renders media, I-frame and
 * master playlists to text; the caller decides where the text goes.
 * Pure C: no I/O.
 */
#ifndef SN_HLS_PLAYLIST_H
#define SN_HLS_PLAYLIST_H

#include <stddef.h>
#include <stdint.h>

enum sn_playlist_type {
    SN_PLAYLIST_VOD,          /* complete: EXT-X-PLAYLIST-TYPE:VOD + ENDLIST */
    SN_PLAYLIST_EVENT,        /* still growing: EXT-X-PLAYLIST-TYPE:EVENT */
};

struct sn_hls_segment {
    const char *uri;          /* relative to the playlist */
    double duration;          /* seconds, written with 6 decimals */
    int64_t byte_offset;      /* EXT-X-BYTERANGE when byte_length > 0 */
    int64_t byte_length;
};

struct sn_media_playlist {
    enum sn_playlist_type type;
    int version;              /* EXT-X-VERSION */
    int target_duration;      /* seconds; 0 = computed from the segments */
    const char *map_uri;      /* EXT-X-MAP (fMP4 init segment), or NULL */
    int iframes_only;         /* EXT-X-I-FRAMES-ONLY */
    const struct sn_hls_segment *segments;
    size_t n_segments;
};

/*
 * Returns the EXT-X-TARGETDURATION for the segments: the largest duration
 * rounded to the nearest integer (RFC 8216 section 4.3.3.1), at least 1.
 */
int sn_hls_target_duration(const struct sn_hls_segment *segments, size_t n);

/*
 * Renders a media playlist. Returns a NUL-terminated string the caller
 * frees with free(), or NULL when memory runs out or the model is invalid
 * (a segment with a negative duration or a missing URI).
 */
char *sn_hls_render_media(const struct sn_media_playlist *p);

struct sn_hls_audio {
    const char *group_id;     /* GROUP-ID, referenced by the variants */
    const char *name;
    const char *uri;
    int channels;             /* CHANNELS attribute */
};

struct sn_hls_variant {
    const char *uri;
    const char *iframe_uri;   /* EXT-X-I-FRAME-STREAM-INF, or NULL */
    int64_t bandwidth;        /* peak, bits per second, audio included */
    int64_t average_bandwidth;
    int64_t iframe_bandwidth;
    const char *codecs;       /* e.g. "avc1.64001f,mp4a.40.2" */
    const char *video_codec;  /* codecs of the I-frame stream: "avc1.64001f" */
    int width;                /* 0 for an audio-only variant */
    int height;
    double frame_rate;        /* 0 to omit */
    const char *audio_group;  /* AUDIO attribute, or NULL */
};

struct sn_master_playlist {
    int version;
    const struct sn_hls_audio *audio;     /* NULL when there is none */
    const struct sn_hls_variant *variants;
    size_t n_variants;
};

/* Renders a master playlist; same ownership and failure as media. */
char *sn_hls_render_master(const struct sn_master_playlist *p);

#endif
