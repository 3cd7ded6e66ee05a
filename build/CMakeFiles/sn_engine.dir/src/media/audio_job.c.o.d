CMakeFiles/sn_engine.dir/src/media/audio_job.c.o: \
 /work/main/src/media/audio_job.c /usr/include/stdc-predef.h \
 /work/main/src/media/audio_job.h /work/main/src/media/job.h \
 /usr/include/signal.h /usr/include/features.h \
 /usr/include/features-time64.h \
 /usr/include/x86_64-linux-gnu/bits/wordsize.h \
 /usr/include/x86_64-linux-gnu/bits/timesize.h \
 /usr/include/x86_64-linux-gnu/sys/cdefs.h \
 /usr/include/x86_64-linux-gnu/bits/long-double.h \
 /usr/include/x86_64-linux-gnu/gnu/stubs.h \
 /usr/include/x86_64-linux-gnu/gnu/stubs-64.h \
 /usr/include/x86_64-linux-gnu/bits/types.h \
 /usr/include/x86_64-linux-gnu/bits/typesizes.h \
 /usr/include/x86_64-linux-gnu/bits/time64.h \
 /usr/include/x86_64-linux-gnu/bits/signum-generic.h \
 /usr/include/x86_64-linux-gnu/bits/signum-arch.h \
 /usr/include/x86_64-linux-gnu/bits/types/sig_atomic_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/sigset_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/__sigset_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/struct_timespec.h \
 /usr/include/x86_64-linux-gnu/bits/endian.h \
 /usr/include/x86_64-linux-gnu/bits/endianness.h \
 /usr/include/x86_64-linux-gnu/bits/types/time_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/siginfo_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/__sigval_t.h \
 /usr/include/x86_64-linux-gnu/bits/siginfo-arch.h \
 /usr/include/x86_64-linux-gnu/bits/siginfo-consts.h \
 /usr/include/x86_64-linux-gnu/bits/types/sigval_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/sigevent_t.h \
 /usr/include/x86_64-linux-gnu/bits/sigevent-consts.h \
 /usr/include/x86_64-linux-gnu/bits/sigaction.h \
 /usr/include/x86_64-linux-gnu/bits/sigcontext.h \
 /usr/lib/gcc/x86_64-linux-gnu/12/include/stddef.h \
 /usr/include/x86_64-linux-gnu/bits/types/stack_t.h \
 /usr/include/x86_64-linux-gnu/sys/ucontext.h \
 /usr/include/x86_64-linux-gnu/bits/sigstack.h \
 /usr/include/x86_64-linux-gnu/bits/sigstksz.h \
 /usr/include/x86_64-linux-gnu/bits/ss_flags.h \
 /usr/include/x86_64-linux-gnu/bits/types/struct_sigstack.h \
 /usr/include/x86_64-linux-gnu/bits/pthreadtypes.h \
 /usr/include/x86_64-linux-gnu/bits/thread-shared-types.h \
 /usr/include/x86_64-linux-gnu/bits/pthreadtypes-arch.h \
 /usr/include/x86_64-linux-gnu/bits/atomic_wide_counter.h \
 /usr/include/x86_64-linux-gnu/bits/struct_mutex.h \
 /usr/include/x86_64-linux-gnu/bits/struct_rwlock.h \
 /usr/include/x86_64-linux-gnu/bits/sigthread.h \
 /usr/include/x86_64-linux-gnu/bits/signal_ext.h \
 /usr/lib/gcc/x86_64-linux-gnu/12/include/stdint.h /usr/include/stdint.h \
 /usr/include/x86_64-linux-gnu/bits/libc-header-start.h \
 /usr/include/x86_64-linux-gnu/bits/wchar.h \
 /usr/include/x86_64-linux-gnu/bits/stdint-intn.h \
 /usr/include/x86_64-linux-gnu/bits/stdint-uintn.h \
 /work/main/src/media/fmp4.h \
 /usr/include/x86_64-linux-gnu/libavcodec/avcodec.h \
 /usr/include/x86_64-linux-gnu/libavutil/samplefmt.h \
 /usr/include/x86_64-linux-gnu/libavutil/attributes.h \
 /usr/include/x86_64-linux-gnu/libavutil/avutil.h \
 /usr/include/x86_64-linux-gnu/libavutil/common.h /usr/include/errno.h \
 /usr/include/x86_64-linux-gnu/bits/errno.h /usr/include/linux/errno.h \
 /usr/include/x86_64-linux-gnu/asm/errno.h \
 /usr/include/asm-generic/errno.h /usr/include/asm-generic/errno-base.h \
 /usr/include/inttypes.h \
 /usr/lib/gcc/x86_64-linux-gnu/12/include/limits.h \
 /usr/lib/gcc/x86_64-linux-gnu/12/include/syslimits.h \
 /usr/include/limits.h /usr/include/x86_64-linux-gnu/bits/posix1_lim.h \
 /usr/include/x86_64-linux-gnu/bits/local_lim.h \
 /usr/include/linux/limits.h \
 /usr/include/x86_64-linux-gnu/bits/pthread_stack_min-dynamic.h \
 /usr/include/x86_64-linux-gnu/bits/pthread_stack_min.h \
 /usr/include/x86_64-linux-gnu/bits/posix2_lim.h /usr/include/math.h \
 /usr/include/x86_64-linux-gnu/bits/math-vector.h \
 /usr/include/x86_64-linux-gnu/bits/libm-simd-decl-stubs.h \
 /usr/include/x86_64-linux-gnu/bits/floatn.h \
 /usr/include/x86_64-linux-gnu/bits/floatn-common.h \
 /usr/include/x86_64-linux-gnu/bits/flt-eval-method.h \
 /usr/include/x86_64-linux-gnu/bits/fp-logb.h \
 /usr/include/x86_64-linux-gnu/bits/fp-fast.h \
 /usr/include/x86_64-linux-gnu/bits/mathcalls-helper-functions.h \
 /usr/include/x86_64-linux-gnu/bits/mathcalls.h /usr/include/stdio.h \
 /usr/lib/gcc/x86_64-linux-gnu/12/include/stdarg.h \
 /usr/include/x86_64-linux-gnu/bits/types/__fpos_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/__mbstate_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/__fpos64_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/__FILE.h \
 /usr/include/x86_64-linux-gnu/bits/types/FILE.h \
 /usr/include/x86_64-linux-gnu/bits/types/struct_FILE.h \
 /usr/include/x86_64-linux-gnu/bits/stdio_lim.h \
 /usr/include/x86_64-linux-gnu/bits/stdio.h /usr/include/stdlib.h \
 /usr/include/x86_64-linux-gnu/bits/waitflags.h \
 /usr/include/x86_64-linux-gnu/bits/waitstatus.h \
 /usr/include/x86_64-linux-gnu/sys/types.h \
 /usr/include/x86_64-linux-gnu/bits/types/clock_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/clockid_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/timer_t.h /usr/include/endian.h \
 /usr/include/x86_64-linux-gnu/bits/byteswap.h \
 /usr/include/x86_64-linux-gnu/bits/uintn-identity.h \
 /usr/include/x86_64-linux-gnu/sys/select.h \
 /usr/include/x86_64-linux-gnu/bits/select.h \
 /usr/include/x86_64-linux-gnu/bits/types/struct_timeval.h \
 /usr/include/alloca.h \
 /usr/include/x86_64-linux-gnu/bits/stdlib-bsearch.h \
 /usr/include/x86_64-linux-gnu/bits/stdlib-float.h /usr/include/string.h \
 /usr/include/x86_64-linux-gnu/bits/types/locale_t.h \
 /usr/include/x86_64-linux-gnu/bits/types/__locale_t.h \
 /usr/include/strings.h \
 /usr/include/x86_64-linux-gnu/libavutil/attributes.h \
 /usr/include/x86_64-linux-gnu/libavutil/macros.h \
 /usr/include/x86_64-linux-gnu/libavutil/avconfig.h \
 /usr/include/x86_64-linux-gnu/libavutil/mem.h \
 /usr/include/x86_64-linux-gnu/libavutil/avutil.h \
 /usr/include/x86_64-linux-gnu/libavutil/version.h \
 /usr/include/x86_64-linux-gnu/libavutil/error.h \
 /usr/include/x86_64-linux-gnu/libavutil/rational.h \
 /usr/include/x86_64-linux-gnu/libavutil/mathematics.h \
 /usr/include/x86_64-linux-gnu/libavutil/intfloat.h \
 /usr/include/x86_64-linux-gnu/libavutil/log.h \
 /usr/include/x86_64-linux-gnu/libavutil/pixfmt.h \
 /usr/include/x86_64-linux-gnu/libavutil/buffer.h \
 /usr/include/x86_64-linux-gnu/libavutil/dict.h \
 /usr/include/x86_64-linux-gnu/libavutil/frame.h \
 /usr/include/x86_64-linux-gnu/libavutil/buffer.h \
 /usr/include/x86_64-linux-gnu/libavutil/channel_layout.h \
 /usr/include/x86_64-linux-gnu/libavutil/dict.h \
 /usr/include/x86_64-linux-gnu/libavutil/samplefmt.h \
 /usr/include/x86_64-linux-gnu/libavutil/log.h \
 /usr/include/x86_64-linux-gnu/libavutil/pixfmt.h \
 /usr/include/x86_64-linux-gnu/libavutil/rational.h \
 /usr/include/x86_64-linux-gnu/libavcodec/codec.h \
 /usr/include/x86_64-linux-gnu/libavutil/hwcontext.h \
 /usr/include/x86_64-linux-gnu/libavutil/frame.h \
 /usr/include/x86_64-linux-gnu/libavcodec/codec_id.h \
 /usr/include/x86_64-linux-gnu/libavcodec/version_major.h \
 /usr/include/x86_64-linux-gnu/libavcodec/codec_desc.h \
 /usr/include/x86_64-linux-gnu/libavcodec/codec_id.h \
 /usr/include/x86_64-linux-gnu/libavcodec/codec_par.h \
 /usr/include/x86_64-linux-gnu/libavutil/channel_layout.h \
 /usr/include/x86_64-linux-gnu/libavcodec/defs.h \
 /usr/include/x86_64-linux-gnu/libavcodec/packet.h \
 /usr/include/x86_64-linux-gnu/libavutil/version.h \
 /usr/include/x86_64-linux-gnu/libavcodec/version_major.h \
 /usr/include/x86_64-linux-gnu/libavcodec/version.h \
 /work/main/src/media/probe.h /work/main/src/plan/ladder.h \
 /work/main/src/plan/chunks.h \
 /usr/include/x86_64-linux-gnu/libavfilter/buffersink.h \
 /usr/include/x86_64-linux-gnu/libavfilter/avfilter.h \
 /usr/include/x86_64-linux-gnu/libavfilter/version_major.h \
 /usr/include/x86_64-linux-gnu/libavfilter/version.h \
 /usr/include/x86_64-linux-gnu/libavfilter/version_major.h \
 /usr/include/x86_64-linux-gnu/libavfilter/buffersrc.h \
 /usr/include/x86_64-linux-gnu/libavformat/avformat.h /usr/include/time.h \
 /usr/include/x86_64-linux-gnu/bits/time.h \
 /usr/include/x86_64-linux-gnu/bits/types/struct_tm.h \
 /usr/include/x86_64-linux-gnu/bits/types/struct_itimerspec.h \
 /usr/include/x86_64-linux-gnu/libavcodec/codec.h \
 /usr/include/x86_64-linux-gnu/libavcodec/codec_par.h \
 /usr/include/x86_64-linux-gnu/libavcodec/defs.h \
 /usr/include/x86_64-linux-gnu/libavcodec/packet.h \
 /usr/include/x86_64-linux-gnu/libavformat/avio.h \
 /usr/include/x86_64-linux-gnu/libavformat/version_major.h \
 /usr/include/x86_64-linux-gnu/libavformat/version.h \
 /usr/include/x86_64-linux-gnu/libavformat/version_major.h \
 /work/main/src/hls/codecs.h /work/main/src/media/filters.h \
 /usr/include/x86_64-linux-gnu/libavfilter/avfilter.h \
 /work/main/src/media/input.h /work/main/src/util/error.h \
 /work/main/src/util/fsutil.h
