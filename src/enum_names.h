#pragma once
// The text names of an enum's values, as one table per enum in declaration order (the enums are 0, 1, 2 ...):
//   constexpr std::array<const char*, 3> kModeNames = {"sequence", "pipeline", "replicas"};
//   enum_name(kModeNames, PipelineMode::PIPELINE) == "pipeline"; enum_from_name<PipelineMode>(kModeNames, "pipeline")
#include <array>
#include <cstddef>
#include <optional>
#include <string>

namespace onnxpipe::detail {

template <typename Enum, size_t N>
const char* enum_name(const std::array<const char*, N>& names, Enum value) {
  const auto index = static_cast<size_t>(value);
  return index < N ? names[index] : "?";
}

template <typename Enum, size_t N>
std::optional<Enum> enum_from_name(const std::array<const char*, N>& names, const std::string& text) {
  for (size_t i = 0; i < N; ++i) {
    if (text == names[i]) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

// "a, b or c": the names for a message listing what is accepted.
template <size_t N>
std::string enum_names_text(const std::array<const char*, N>& names) {
  std::string text;
  for (size_t i = 0; i < N; ++i) text += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(names[i]);
  return text;
}

}  // namespace onnxpipe::detail
