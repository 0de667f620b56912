// resnet18 with uneven caps: a small second device forces a cut other than the flops balance's, and the pieces fit
// their caps and reproduce the model.
#include <gtest/gtest.h>

#include <filesystem>

#include "onnxpipe/placement.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "support/models_dir.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;

namespace onnxpipe {
namespace {

TEST(PlacementModel, UnevenCapsGiveUnevenPiecesThatFitAndVerify) {
  const fs::path model = test::models_dir() / "resnet18.onnx";
  if (!fs::exists(model)) GTEST_SKIP() << model << " is absent: run `make models` to export it";
  test::TempDir dir;
  SplitOptions options;
  options.parts = 2;
  options.balance = Balance::FLOPS;
  options.output_dir = dir.file("balanced");
  const Plan balanced = split_model(model.string(), options);

  options.output_dir = dir.file("capped");
  options.placement.devices = parse_devices("cpu:1=60MiB,cpu:1=40MiB");
  options.placement.measure_memory = false;  // weights once and a 16 MiB session: the arithmetic below
  const Plan capped = split_model(model.string(), options);
  EXPECT_GT(capped.pieces[0].node_count, balanced.pieces[0].node_count);
  const std::vector<StageMemory> stages = check_plan_fits(capped, options.placement);
  for (const StageMemory& stage : stages) EXPECT_LE(stage.total, stage.capacity) << "stage " << stage.index;
  // The second device holds only the tail: its 40 MiB take the last layer-4 block and the classifier.
  EXPECT_GT(capped.pieces[0].weight_bytes, capped.pieces[1].weight_bytes);
  EXPECT_TRUE(verify_split(model.string(), options.output_dir, {}).pass());
}

}  // namespace
}  // namespace onnxpipe
