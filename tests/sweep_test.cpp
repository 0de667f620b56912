// The bench's sweep options (--images, --modes), parsed in tools/.
#include "sweep.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "onnxpipe/error.h"
#include "support/expect_error.h"

namespace onnxpipe {
namespace {

using cli::parse_image_sweep;
using cli::parse_modes;

TEST(BenchSweep, RangeIsPythonsRangeLikeTheSeed) {
  const detail::ImageSweep sweep = parse_image_sweep("1:81:2");
  ASSERT_EQ(sweep.counts.size(), 40u);
  EXPECT_EQ(sweep.counts.front(), 1);
  EXPECT_EQ(sweep.counts[1], 3);
  EXPECT_EQ(sweep.counts.back(), 79);  // the seed's range(1, maxN=81, 2)
  EXPECT_EQ(sweep.max_n, 81);
  EXPECT_EQ(sweep.step, 2);

  const detail::ImageSweep unit = parse_image_sweep("2:5");
  EXPECT_EQ(unit.counts, (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(unit.step, 1);
  EXPECT_EQ(unit.max_n, 5);
}

TEST(BenchSweep, CommaListsJoinCountsAndRanges) {
  const detail::ImageSweep one = parse_image_sweep("7");
  EXPECT_EQ(one.counts, std::vector<int>{7});
  EXPECT_EQ(one.max_n, 7);
  EXPECT_EQ(one.step, 0);

  const detail::ImageSweep list = parse_image_sweep("1, 2,4,8:33:8");
  EXPECT_EQ(list.counts, (std::vector<int>{1, 2, 4, 8, 16, 24, 32}));
  EXPECT_EQ(list.max_n, 32);
  EXPECT_EQ(list.step, 0);  // not a lone range: stepN is left empty
}

TEST(BenchSweep, BadSpecsAreUsageErrors) {
  for (const std::string spec :
       {"", "0", "-1", "a", "1.5", "1:1", "5:2", "1:9:0", "1:2:3:4", "1,,2", "1:", ":4", "3,", "99999999"}) {
    EXPECT_EQ(test::error_code_of([&] { parse_image_sweep(spec); }), ErrorCode::USAGE) << "spec '" << spec << "'";
  }
}

TEST(BenchSweep, ModesAreACommaListOfKnownModesEachOnce) {
  EXPECT_EQ(parse_modes("pipeline, sequence"),
            (std::vector<PipelineMode>{PipelineMode::PIPELINE, PipelineMode::SEQUENCE}));
  for (const std::string list : {"", "pipeline,pipeline", "parallel", "sequence,"}) {
    EXPECT_EQ(test::error_code_of([&] { parse_modes(list); }), ErrorCode::USAGE) << "modes '" << list << "'";
  }
}

}  // namespace
}  // namespace onnxpipe
