#pragma once
// The bench's rows as one table of columns, each a field and how to get its cell from a measurement (llama-bench's
// get_fields() is the model). In order: the seed's (n_imgs, maxN, stepN, repN, batch_size, n_threads, name, time,
// order, then wait0_i ... wtime_i for each stage i), then onnxpipe's figures and the build and setup on every row.
// The names and their order are a contract: scripts/plot.py reads them.
#include <functional>
#include <vector>

#include "bench.h"
#include "printer.h"

namespace onnxpipe::cli {

struct BenchColumn {
  Field field;         // field.in_md: a key column, shown in the md table (csv and json carry every column)
  bool fixed = false;  // the same on every row of a bench (md shows it once, above the table)
  std::function<Cell(const detail::Measurement&)> get;
};

// The columns of `bench`'s rows (one per stage, cut and device where the seed has them).
std::vector<BenchColumn> bench_columns(const detail::Bench& bench);

std::vector<Field> fields_of(const std::vector<BenchColumn>& columns);
Row row_of(const std::vector<BenchColumn>& columns, const detail::Measurement& m);

}  // namespace onnxpipe::cli
