# Cross-compiling for aarch64 (the Raspberry Pi 5) with Debian 12's cross
# toolchain (crossbuild-essential-arm64) against the arm64 multiarch
# libraries that scripts/bootstrap.sh deps-arm64 installs.
#
# Tests run under qemu-aarch64 through CMAKE_CROSSCOMPILING_EMULATOR: no binfmt
# registration is needed, and the arm64 loader and libraries sit in their
# multiarch places (/lib/ld-linux-aarch64.so.1, /usr/lib/aarch64-linux-gnu).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(PKG_CONFIG_EXECUTABLE aarch64-linux-gnu-pkg-config CACHE FILEPATH "")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
# Find arm64 libraries and headers only, build tools from the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
