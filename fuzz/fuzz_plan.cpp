// plan.json text through Plan::from_json and validate(). A plan that validates must survive its own round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "onnxpipe/plan.h"

using namespace onnxpipe;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  Plan plan;
  if (!fuzz::accepts([&] {
        plan = Plan::from_json(text);
        plan.validate();
      })) {
    return 0;
  }
  const std::string json = plan.to_json();
  Plan again;
  fuzz::require(fuzz::accepts([&] {
                  again = Plan::from_json(json);
                  again.validate();
                }),
                "a valid plan's to_json() reads back and validates");
  fuzz::require(again.to_json() == json, "to_json(from_json(to_json(plan))) == to_json(plan)");
  return 0;
}
