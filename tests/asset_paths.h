// Where the shared test assets live: $NIBBLE_ASSETS, else ../shared next to the repository.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace nibble::testing {

inline std::filesystem::path assets_dir() {
  if (const char* env = std::getenv("NIBBLE_ASSETS"); env && *env) return env;
#ifdef NIBBLE_SOURCE_DIR
  return std::filesystem::path(NIBBLE_SOURCE_DIR) / ".." / "shared";
#else
  return std::filesystem::path("..") / "shared";
#endif
}

// Full path of an asset, or "" when it is absent (tests then skip with a message).
inline std::string asset(const std::string& relative) {
  std::filesystem::path p = assets_dir() / relative;
  return std::filesystem::exists(p) ? p.lexically_normal().string() : std::string();
}

}  // namespace nibble::testing
