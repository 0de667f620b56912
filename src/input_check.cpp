#include "input_check.h"

#include <map>
#include <utility>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {

void validate_inputs(const std::vector<ValueDesc>& declared, const std::map<std::string, Tensor>& inputs) {
  std::map<std::string, const ValueDesc*> by_name;
  std::string names;
  for (const ValueDesc& d : declared) {
    by_name[d.name] = &d;
    names += (names.empty() ? "" : ", ") + d.name;
  }
  for (const auto& [name, tensor] : inputs) {
    if (!by_name.count(name)) {
      throw Error(ErrorCode::USAGE, "input '" + name + "': not an input of the model (inputs: " + names + ")");
    }
  }
  std::map<std::string, std::pair<int64_t, std::string>> symbols;  // param -> value, where it was first seen
  for (const ValueDesc& d : declared) {
    if (d.name.empty()) continue;
    const auto it = inputs.find(d.name);
    if (it == inputs.end()) throw Error(ErrorCode::USAGE, "input '" + d.name + "': missing");
    const Tensor& t = it->second;
    const std::string where = "input '" + d.name + "'";
    if (d.dtype != DType::UNDEFINED && t.dtype != d.dtype) {
      throw Error(ErrorCode::USAGE, where + ": expected " + dtype_name(d.dtype) + ", got " + dtype_name(t.dtype));
    }
    check_tensor(d.name, t);
    if (d.has_shape) {
      if (t.shape.size() != d.dims.size()) {
        throw Error(ErrorCode::USAGE, where + ": expected rank " + std::to_string(d.dims.size()) + " " + d.dims_text() +
                                          ", got " + shape_text(t.shape));
      }
      for (size_t i = 0; i < d.dims.size(); ++i) {
        const Dim& dim = d.dims[i];
        if (dim.value >= 0 && t.shape[i] != dim.value) {
          throw Error(ErrorCode::USAGE, where + ": dimension " + std::to_string(i) + " must be " +
                                            std::to_string(dim.value) + ", got " + shape_text(t.shape));
        }
        if (dim.value < 0 && !dim.param.empty()) {
          const auto [seen, inserted] = symbols.emplace(dim.param, std::make_pair(t.shape[i], d.name));
          if (!inserted && seen->second.first != t.shape[i]) {
            throw Error(ErrorCode::USAGE, where + ": dimension " + std::to_string(i) + " ('" + dim.param + "') is " +
                                              std::to_string(t.shape[i]) + " but " +
                                              std::to_string(seen->second.first) + " in input '" + seen->second.second +
                                              "'");
          }
        }
      }
    }
  }
}

}  // namespace onnxpipe::detail
