#include "weight_links.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <set>

#include "enum_names.h"
#include "log.h"
#include "onnxpipe/error.h"

namespace onnxpipe {

constexpr std::array<const char*, 3> kWeightStorageNames = {"auto", "link", "copy"};

WeightStorage weight_storage_from_name(const std::string& name) {
  if (auto storage = detail::enum_from_name<WeightStorage>(kWeightStorageNames, name)) return *storage;
  throw Error(ErrorCode::USAGE,
              "unknown weight storage '" + name + "' (" + detail::enum_names_text(kWeightStorageNames) + ")");
}

const char* weight_storage_name(WeightStorage storage) { return detail::enum_name(kWeightStorageNames, storage); }

namespace detail {

namespace fs = std::filesystem;

namespace {

// The source file's own name, unless a piece's files, the plan's or an earlier link would take it.
std::string link_name(const fs::path& source, size_t index, const std::set<std::string>& taken) {
  const std::string name = source.filename().string();
  const bool reserved = name.rfind("piece_", 0) == 0 || name == "plan.json" || name == "costs.json";
  if (!reserved && !taken.count(name)) return name;
  return "source_" + std::to_string(index) + "_" + name;
}

}  // namespace

void check_weight_storage(const GraphDesc& graph, WeightStorage storage) {
  if (storage != WeightStorage::LINK || !graph.data_files.empty()) return;
  const std::string reason = "nothing to link: " + graph.path + " keeps no weights in external data files";
  throw Error(ErrorCode::USAGE, "weights 'link': " + reason, ArgumentContext{"weights", "link", reason});
}

std::map<std::string, std::string> link_data_files(const GraphDesc& graph, WeightStorage storage, const fs::path& dir) {
  std::map<std::string, std::string> links;
  check_weight_storage(graph, storage);
  if (storage == WeightStorage::COPY || graph.data_files.empty()) return links;
  std::set<std::string> taken;
  for (size_t i = 0; i < graph.data_files.size(); ++i) {
    const std::string& source = graph.data_files[i];
    const std::string name = link_name(source, i, taken);
    const fs::path link = dir / name;
    if (::link(source.c_str(), link.c_str()) == 0) {
      links.emplace(source, name);
      taken.insert(name);
      continue;
    }
    const int error = errno;
    std::string reason =
        "cannot hard-link " + source + " into " + dir.parent_path().string() + ": " + std::strerror(error);
    if (error == EXDEV) reason += " (another filesystem)";
    for (const auto& [from, made] : links) ::unlink((dir / made).c_str());
    if (storage == WeightStorage::LINK)
      throw Error(ErrorCode::IO, "weights 'link': " + reason, ArgumentContext{"weights", "link", reason});
    log(LogLevel::WARN, "copying the weights into the pieces: " + reason);
    return {};
  }
  return links;
}

}  // namespace detail
}  // namespace onnxpipe
