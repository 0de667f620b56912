#pragma once
// Result printers for stdout, in the manner of llama-bench: a command describes its table once as a list of typed
// fields, then hands over one row at a time; the printer writes md, csv, json or jsonl. Rows are flushed as they come
// (json, a single document, is written when the printer finishes).
//
// A command may print several tables (inspect: the model, its values, its cut candidates). Formats:
//   md    a table per title ("## title" above it); records are shown as two columns, field | value.
//   csv   RFC 4180; several tables are separated by an empty line, each with its header row.
//   json  one untitled table: an array of objects; otherwise an object with one member per title (a record is an
//         object, a table an array of objects). Non-finite numbers are null.
//   jsonl one object per row; rows of titled tables carry "table": title first.
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace onnxpipe::cli {

enum class Format { MD, CSV, JSON, JSONL };
Format format_from_name(const std::string& name);  // md|csv|json|jsonl, else Error(USAGE)
const char* format_name(Format format);

enum class FieldType { STRING, INT, FLOAT, BOOL };

struct Field {
  std::string name;
  FieldType type = FieldType::STRING;
  int decimals = -1;  // md: digits after the point for FLOAT; -1: 4 significant digits
  bool in_md = true;  // md shows the key fields only; csv and json carry every field
  int width = 0;      // md: column width (wider values overflow: rows are printed as they come)
};

// One value of a row: null (unknown), a string, an integer, a floating-point number or a bool.
class Cell {
 public:
  using Value = std::variant<std::monostate, std::string, int64_t, double, bool>;
  Cell() = default;
  Cell(std::nullptr_t) {}
  Cell(const char* text) : value_(std::string(text)) {}
  Cell(std::string text) : value_(std::move(text)) {}
  Cell(bool flag) : value_(flag) {}
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Cell(T number) : value_(static_cast<int64_t>(number)) {}
  template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  Cell(T number) : value_(static_cast<double>(number)) {}

  const Value& value() const { return value_; }
  bool is_null() const { return std::holds_alternative<std::monostate>(value_); }

 private:
  Value value_;
};

using Row = std::vector<Cell>;  // one cell per field, in the fields' order

class Printer {
 public:
  virtual ~Printer() = default;
  // Starts a table (its header). An empty title makes an untitled table.
  virtual void begin_table(const std::string& title, const std::vector<Field>& fields) = 0;
  virtual void row(const Row& row) = 0;
  virtual void end_table() = 0;
  // A whole table at once, when every row is at hand (md then aligns the columns to the data).
  virtual void table(const std::string& title, const std::vector<Field>& fields, const std::vector<Row>& rows);
  // A table of exactly one row, such as a summary (md shows it as field | value lines, json as one object).
  virtual void record(const std::string& title, const std::vector<Field>& fields, const Row& row);
  // Ends the document; nothing may be printed after it.
  virtual void finish() = 0;
};

// A printer writing to `out`. Rows whose cells do not match the fields' types throw Error(INTERNAL).
std::unique_ptr<Printer> make_printer(Format format, std::ostream& out);

// Quotes a CSV field when it needs it (RFC 4180: comma, quote, CR or LF inside; quotes doubled).
std::string csv_escape(const std::string& text);

// A number as printed in csv and json: up to 10 significant digits, no trailing noise ("0.3", "1e-07", "12345").
std::string format_number(double value);

}  // namespace onnxpipe::cli
