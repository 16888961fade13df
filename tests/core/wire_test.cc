#include "core/wire.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace clinrl::wire {
namespace {

TEST(WireTest, FieldErrorsNamePathExpectedAndValue) {
  const json msg = {{"op", "step"}, {"session", 12}};
  const Fields f(msg, "request");
  EXPECT_EQ(f.String("op"), "step");
  try {
    f.String("session");
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_STREQ(e.what(), "request.session: expected a string, got number 12");
  }
  try {
    f.String("action");
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_STREQ(e.what(), "request.action: required field is missing");
  }
  EXPECT_EQ(f.Int("seed", 5), 5);
  EXPECT_THROW(Fields(json::array(), "request"), BadRequest);
}

TEST(WireTest, ReplyShapesAndTypedErrors) {
  EXPECT_EQ(OkReply({{"x", 1}}), json({{"ok", true}, {"x", 1}}));
  const json err = ErrorReply("not_found", "no session 'abc'");
  EXPECT_EQ(err["error"]["code"], "not_found");
  EXPECT_THROW(CheckReply(err, "step"), NotFound);
  EXPECT_THROW(CheckReply(ErrorReply("bad_request", "x"), "step"), BadRequest);
  EXPECT_THROW(CheckReply(ErrorReply("timeout", "x"), "step"), Timeout);
  EXPECT_THROW(CheckReply(json::object(), "step"), InternalError);
  EXPECT_NO_THROW(CheckReply(OkReply(), "step"));
}

}  // namespace
}  // namespace clinrl::wire
