#pragma once
// Where the exported models are (scripts/export_models.py): $ONNXPIPE_MODELS, else <source>/models.
#include <filesystem>

namespace onnxpipe::test {

std::filesystem::path models_dir();

}  // namespace onnxpipe::test
