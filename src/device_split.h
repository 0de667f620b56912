#pragma once
// A model split on the fly for the devices that will run it (Pipeline and Bench given a model file instead of a plan),
// in a temporary directory removed with it. One rule for both: one piece per device when there are several (with one
// device, split.parts pieces all on it), and Balance::TIME measured on the kind of device the stages run on unless
// split.device says otherwise.
#include <string>
#include <vector>

#include "onnxpipe/plan.h"
#include "onnxpipe/split.h"
#include "staging.h"

namespace onnxpipe::detail {

class DeviceSplit {
 public:
  // Error(USAGE) when several devices disagree with split.parts; split_model's errors otherwise.
  DeviceSplit(const std::string& model, SplitOptions split, const std::vector<std::string>& devices);

  const Plan& plan() const { return plan_; }
  const std::string& dir() const { return dir_; }  // the plan directory

 private:
  TempDir temp_;
  std::string dir_;
  Plan plan_;
};

}  // namespace onnxpipe::detail
