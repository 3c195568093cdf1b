// safe_message.hpp — the test suite's check that an error quoting user text stays one safe line.
//
//   EXPECT_TRUE(throws_safe_line([&] { ... }, {"line 3", "'a\\nb'"}));
//
// Passes when the code throws nmsnn::Error whose message contains every piece (as throws_with),
// and is what the README promises even for hostile input: one line (no newline or carriage
// return), no control byte (no ESC to start a terminal code; a NUL would cut the message, so the
// pieces should include text that comes after the user's), and shorter than 400 characters.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "throws_with.hpp"

[[nodiscard]] inline ::testing::AssertionResult throws_safe_line(
    const std::function<void()>& f, const std::vector<std::string>& parts) {
  std::string msg;
  const ::testing::AssertionResult has_parts = throws_with(
      [&] {
        try {
          f();
        } catch (const nmsnn::Error& e) {
          msg = e.what();
          throw;
        }
      },
      parts);
  if (!has_parts) return has_parts;
  for (const char c : msg) {
    if ((unsigned char)c < 0x20 || c == 0x7f) {
      return ::testing::AssertionFailure()
             << "message has control byte " << int((unsigned char)c) << ": " << msg.substr(0, 400);
    }
  }
  if (msg.size() >= 400) {
    return ::testing::AssertionFailure()
           << "message is " << msg.size() << " bytes long: " << msg.substr(0, 400) << "...";
  }
  return ::testing::AssertionSuccess();
}
