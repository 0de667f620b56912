// Order statistics shared by every report: nearest rank, no interpolation.
#include "stats.h"

#include <gtest/gtest.h>

#include <cmath>

namespace onnxpipe::detail {
namespace {

TEST(Stats, PercentileIsTheValueAtTheRoundedRank) {
  const std::vector<double> five = {50, 10, 40, 20, 30};
  EXPECT_EQ(percentile(five, 0.0), 10);
  EXPECT_EQ(percentile(five, 0.5), 30);
  EXPECT_EQ(percentile(five, 0.9), 50);  // rank 3.6 -> 4
  EXPECT_EQ(percentile(five, 0.7), 40);  // rank 2.8 -> 3
  EXPECT_EQ(percentile(five, 1.0), 50);
  EXPECT_EQ(percentile({7}, 0.99), 7);
}

TEST(Stats, MedianOfAnEvenCountIsTheUpperMiddleValue) {
  EXPECT_EQ(median({4, 1, 3, 2}), 3);  // rank 1.5 -> 2: a value that was measured, not an average
  EXPECT_EQ(median({2, 1}), 2);
}

TEST(Stats, NoValuesHaveNoPercentile) { EXPECT_TRUE(std::isnan(percentile({}, 0.5))); }

}  // namespace
}  // namespace onnxpipe::detail
