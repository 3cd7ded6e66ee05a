/*
 * RFC 6381 codec strings for the HLS CODECS attribute, read from the
 * encoder's actual parameter sets rather than assumed from settings.
 */
#ifndef SN_HLS_CODECS_H
#define SN_HLS_CODECS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Writes "avc1.PPCCLL" (profile_idc, constraint flags, level_idc in hex)
 * taken from the first SPS in H.264 extradata, either Annex B (start
 * codes) or avcC. Returns 0, or -EINVAL when no SPS is found.
 */
int sn_codecs_avc(const uint8_t *extradata, size_t size, char *out,
                  size_t out_size);

/*
 * Writes "mp4a.40.N" where N is the audio object type of an
 * AudioSpecificConfig (2 for AAC-LC). Returns 0 or -EINVAL.
 */
int sn_codecs_aac(const uint8_t *extradata, size_t size, char *out,
                  size_t out_size);

#endif
