// The base URL `clinrl serve --port 0` listens on, read from the first line
// it prints ("... on http://127.0.0.1:PORT ..."), for tests that start the
// server as a user does.
#pragma once

#include <string>

#include "tests/cli/background_process.h"

namespace clinrl::serve::testing {

// Waits up to two minutes for the server's first line; "" when it printed
// no URL (the caller's assertion then shows `first_line`).
inline std::string ServeUrl(clinrl::testing::BackgroundProcess& server,
                            std::string* first_line = nullptr) {
  const std::string first = server.ReadLine(120);
  if (first_line != nullptr) *first_line = first;
  const size_t at = first.find("http://127.0.0.1:");
  if (at == std::string::npos) return "";
  return first.substr(at, first.find(' ', at) - at);
}

}  // namespace clinrl::serve::testing
