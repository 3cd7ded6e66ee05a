# Cross build for 64-bit Arm Linux (AWS Graviton) on Debian 12 with the
# cross compiler from gcc-aarch64-linux-gnu and the :arm64 multiarch
# development packages (dpkg --add-architecture arm64, then e.g.
# apt-get install libavcodec-dev:arm64). scripts/setup.sh installs both.
#
#   cmake -S . -B build-arm64 -DSN_LAMBDA_ONLY=ON \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_AR aarch64-linux-gnu-ar CACHE FILEPATH "")
set(CMAKE_RANLIB aarch64-linux-gnu-ranlib CACHE FILEPATH "")
set(CMAKE_STRIP aarch64-linux-gnu-strip CACHE FILEPATH "")

# Debian's cross gcc already searches the multiarch folders
# /usr/include/aarch64-linux-gnu and /usr/lib/aarch64-linux-gnu, so no
# sysroot is set. pkg-config must read only the arm64 .pc files, or it
# would hand out the host's x86_64 library folders.
set(ENV{PKG_CONFIG_LIBDIR}
    "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Programs run on the build machine; libraries and headers come from the
# arm64 folders only.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)

# try_run() and tests of the cross-built programs run under qemu.
find_program(SN_QEMU_AARCH64 qemu-aarch64-static)
if(SN_QEMU_AARCH64)
    set(CMAKE_CROSSCOMPILING_EMULATOR
        "${SN_QEMU_AARCH64};-L;/usr/aarch64-linux-gnu")
endif()
