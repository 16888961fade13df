#include "core/registry.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace clinrl {
namespace {

using WidgetFactory = std::function<int()>;

class WidgetRegistry : public Registry<WidgetFactory> {
 public:
  WidgetRegistry()
      : Registry("widget",
                 "widget '{name}' is not registered; registered widgets: "
                 "{known}") {}
};

TEST(Registry, FindsWhatWasAddedAndListsTheNamesSorted) {
  WidgetRegistry registry;
  registry.Add("beta", [] { return 2; });
  registry.Add("alpha", [] { return 1; });
  EXPECT_EQ(registry.Names(), (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_TRUE(registry.Has("alpha"));
  EXPECT_FALSE(registry.Has("gamma"));
  EXPECT_EQ(registry.Find("gamma"), nullptr);
  ASSERT_NE(registry.Find("alpha"), nullptr);
  EXPECT_EQ((*registry.Find("alpha"))(), 1);
  EXPECT_EQ(registry.Get("beta")(), 2);
}

TEST(Registry, UnknownNameIsNotFoundListingTheRegisteredNames) {
  WidgetRegistry registry;
  try {
    registry.Get("alpha");
    FAIL() << "expected NotFound";
  } catch (const NotFound& e) {
    EXPECT_STREQ(e.what(),
                 "widget 'alpha' is not registered; registered widgets: "
                 "(none)");
  }
  registry.Add("beta", [] { return 2; });
  registry.Add("alpha", [] { return 1; });
  try {
    registry.Get("gamma");
    FAIL() << "expected NotFound";
  } catch (const NotFound& e) {
    EXPECT_STREQ(e.what(),
                 "widget 'gamma' is not registered; registered widgets: "
                 "alpha, beta");
  }
}

TEST(Registry, NameRegisteredTwiceIsAnInternalErrorAndKeepsTheFirst) {
  WidgetRegistry registry;
  registry.Add("alpha", [] { return 1; });
  try {
    registry.Add("alpha", [] { return 7; });
    FAIL() << "expected InternalError";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("widget 'alpha' registered twice"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(registry.Get("alpha")(), 1);
}

// What the CLINRL_REGISTER_* macros expand to: the lambda runs when the
// static object is constructed.
WidgetRegistry& StaticWidgets() {
  static WidgetRegistry registry;
  return registry;
}
static StaticRegistration register_delta([] {
  StaticWidgets().Add("delta", [] { return 4; });
});

TEST(Registry, StaticRegistrationAddsBeforeMain) {
  EXPECT_EQ(StaticWidgets().Get("delta")(), 4);
}

}  // namespace
}  // namespace clinrl
