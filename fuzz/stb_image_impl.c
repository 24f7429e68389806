// stb_image's decoders compiled into libnibble with the build's sanitizer and coverage flags, so
// that AddressSanitizer and libFuzzer see inside them (Debian's libstb.so is not instrumented).
// Added by the top-level CMakeLists.txt to sanitizer and fuzzer builds only; the definitions
// here take precedence over libstb.so's.
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
