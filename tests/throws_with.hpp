// throws_with.hpp — the test suite's check for error messages.
//
//   EXPECT_TRUE(throws_with([&] { ... }, {"layer 2", "size"}));
//   expect_throws([&] { ... }, {"layer 2", "size"});   // the same, as a statement
//
// Passes when the code throws nmsnn::Error whose message contains every piece: a test of an
// error must check what the message says, not just that something was thrown.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "nmsnn/error.hpp"

[[nodiscard]] inline ::testing::AssertionResult throws_with(const std::function<void()>& f,
                                                            const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const nmsnn::Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      if (msg.find(p) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << msg << "\" lacks \"" << p << "\"";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-nmsnn exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

inline void expect_throws(const std::function<void()>& f, const std::vector<std::string>& parts) {
  EXPECT_TRUE(throws_with(f, parts));
}
