#include "printer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>

#include "enum_names.h"
#include "onnxpipe/error.h"

namespace onnxpipe::cli {

namespace {

using Json = nlohmann::ordered_json;

bool cell_fits(const Field& field, const Cell& cell) {
  const Cell::Value& v = cell.value();
  switch (field.type) {
    case FieldType::STRING:
      return std::holds_alternative<std::string>(v);
    case FieldType::INT:
      return std::holds_alternative<int64_t>(v);
    case FieldType::FLOAT:
      return std::holds_alternative<double>(v) || std::holds_alternative<int64_t>(v);
    case FieldType::BOOL:
      return std::holds_alternative<bool>(v);
  }
  return false;
}

// Rows must have one cell per field, each null or of the field's type.
void check_row(const std::string& title, const std::vector<Field>& fields, const Row& row) {
  if (row.size() != fields.size()) {
    throw Error(ErrorCode::INTERNAL, "printer: table '" + title + "': row of " + std::to_string(row.size()) +
                                         " cells for " + std::to_string(fields.size()) + " fields");
  }
  for (size_t i = 0; i < row.size(); ++i) {
    if (!row[i].is_null() && !cell_fits(fields[i], row[i])) {
      throw Error(ErrorCode::INTERNAL,
                  "printer: table '" + title + "': field '" + fields[i].name + "' given a value of another type");
    }
  }
}

double as_double(const Cell& cell) {
  if (const auto* i = std::get_if<int64_t>(&cell.value())) return static_cast<double>(*i);
  return std::get<double>(cell.value());
}

std::string md_text(const Field& field, const Cell& cell) {
  if (cell.is_null()) return "-";
  switch (field.type) {
    case FieldType::STRING: {
      std::string text;
      for (char c : std::get<std::string>(cell.value())) {
        if (c == '|') text += '\\';
        text += (c == '\n' || c == '\r') ? ' ' : c;
      }
      return text;
    }
    case FieldType::INT:
      return std::to_string(std::get<int64_t>(cell.value()));
    case FieldType::FLOAT: {
      double value = as_double(cell);
      if (!std::isfinite(value)) return format_number(value);
      char buffer[64];
      if (field.decimals >= 0) {
        std::snprintf(buffer, sizeof buffer, "%.*f", field.decimals, value);
      } else {
        std::snprintf(buffer, sizeof buffer, "%.4g", value);
      }
      return buffer;
    }
    case FieldType::BOOL:
      return std::get<bool>(cell.value()) ? "yes" : "no";
  }
  return "";
}

std::string csv_text(const Field& field, const Cell& cell) {
  if (cell.is_null()) return "";
  switch (field.type) {
    case FieldType::STRING:
      return csv_escape(std::get<std::string>(cell.value()));
    case FieldType::INT:
      return std::to_string(std::get<int64_t>(cell.value()));
    case FieldType::FLOAT:
      return format_number(as_double(cell));
    case FieldType::BOOL:
      return std::get<bool>(cell.value()) ? "true" : "false";
  }
  return "";
}

Json json_value(const Field& field, const Cell& cell) {
  if (cell.is_null()) return nullptr;
  switch (field.type) {
    case FieldType::STRING:
      return std::get<std::string>(cell.value());
    case FieldType::INT:
      return std::get<int64_t>(cell.value());
    case FieldType::FLOAT: {
      double value = as_double(cell);
      // Rounded like csv, so that both formats carry the same figures.
      return std::isfinite(value) ? Json(std::stod(format_number(value))) : Json(nullptr);
    }
    case FieldType::BOOL:
      return std::get<bool>(cell.value());
  }
  return nullptr;
}

Json json_object(const std::vector<Field>& fields, const Row& row) {
  Json object = Json::object();
  for (size_t i = 0; i < fields.size(); ++i) object[fields[i].name] = json_value(fields[i], row[i]);
  return object;
}

std::string json_text(const Json& j, int indent) { return j.dump(indent, ' ', false, Json::error_handler_t::replace); }

// Keeps the current table's fields and checks every row against them.
class BasePrinter : public Printer {
 public:
  void begin_table(const std::string& title, const std::vector<Field>& fields) override {
    if (open_) throw Error(ErrorCode::INTERNAL, "printer: table '" + title_ + "' was not ended");
    if (finished_) throw Error(ErrorCode::INTERNAL, "printer: table '" + title + "' begun after finish");
    open_ = true;
    title_ = title;
    fields_ = fields;
    header();
  }
  void row(const Row& row) override {
    if (!open_) throw Error(ErrorCode::INTERNAL, "printer: row outside a table");
    check_row(title_, fields_, row);
    print_row(row);
  }
  void end_table() override {
    if (!open_) throw Error(ErrorCode::INTERNAL, "printer: end_table outside a table");
    open_ = false;
    footer();
    ++tables_;
  }
  void finish() override {
    if (open_) end_table();
    if (!finished_) document_end();
    finished_ = true;
  }

 protected:
  virtual void header() = 0;
  virtual void print_row(const Row& row) = 0;
  virtual void footer() {}
  virtual void document_end() {}

  std::string title_;
  std::vector<Field> fields_;
  int tables_ = 0;  // tables ended so far

 private:
  bool open_ = false;
  bool finished_ = false;
};

class MdPrinter : public BasePrinter {
 public:
  explicit MdPrinter(std::ostream& out) : out_(out) {}

  void table(const std::string& title, const std::vector<Field>& fields, const std::vector<Row>& rows) override {
    std::vector<Field> aligned = fields;
    for (const Row& row : rows) {
      check_row(title, fields, row);
      for (size_t i = 0; i < fields.size(); ++i) {
        aligned[i].width = std::max<int>(aligned[i].width, md_text(fields[i], row[i]).size());
      }
    }
    Printer::table(title, aligned, rows);
  }

  void record(const std::string& title, const std::vector<Field>& fields, const Row& row) override {
    // Shown vertically: a summary reads better as field | value lines than as one very wide row. All of it is at
    // hand, so the columns are aligned to the data.
    check_row(title, fields, row);
    std::vector<Field> md_fields;
    Row md_row;
    for (size_t i = 0; i < fields.size() && i < row.size(); ++i) {
      if (!fields[i].in_md) continue;
      md_fields.push_back(fields[i]);
      md_row.push_back(row[i]);
    }
    Field name{"field"}, value{"value"};
    for (size_t i = 0; i < md_fields.size(); ++i) {
      name.width = std::max<int>(name.width, md_fields[i].name.size());
      value.width = std::max<int>(value.width, md_text(md_fields[i], md_row[i]).size());
    }
    begin_table(title, {name, value});
    for (size_t i = 0; i < md_fields.size(); ++i) this->row({md_fields[i].name, md_text(md_fields[i], md_row[i])});
    end_table();
  }

 protected:
  void header() override {
    if (tables_ > 0) out_ << "\n";
    if (!title_.empty()) out_ << "## " << title_ << "\n\n";
    widths_.clear();
    std::string line = "|", rule = "|";
    for (const Field& field : fields_) {
      if (!field.in_md) continue;
      bool number = field.type == FieldType::INT || field.type == FieldType::FLOAT;
      size_t width = std::max<size_t>({field.name.size(), static_cast<size_t>(field.width), 3});
      widths_.push_back(width);
      line += " " + pad(field.name, width, number) + " |";
      rule += " " + (number ? std::string(width - 1, '-') + ":" : std::string(width, '-')) + " |";
    }
    out_ << line << "\n" << rule << "\n" << std::flush;
  }
  void print_row(const Row& row) override {
    std::string line = "|";
    size_t column = 0;
    for (size_t i = 0; i < fields_.size(); ++i) {
      if (!fields_[i].in_md) continue;
      bool number = fields_[i].type == FieldType::INT || fields_[i].type == FieldType::FLOAT;
      line += " " + pad(md_text(fields_[i], row[i]), widths_[column++], number) + " |";
    }
    out_ << line << "\n" << std::flush;
  }

 private:
  static std::string pad(const std::string& text, size_t width, bool right) {
    if (text.size() >= width) return text;
    std::string fill(width - text.size(), ' ');
    return right ? fill + text : text + fill;
  }

  std::ostream& out_;
  std::vector<size_t> widths_;
};

class CsvPrinter : public BasePrinter {
 public:
  explicit CsvPrinter(std::ostream& out) : out_(out) {}

 protected:
  void header() override {
    if (tables_ > 0) out_ << "\n";
    std::string line;
    for (size_t i = 0; i < fields_.size(); ++i) line += (i ? "," : "") + csv_escape(fields_[i].name);
    out_ << line << "\n" << std::flush;
  }
  void print_row(const Row& row) override {
    std::string line;
    for (size_t i = 0; i < fields_.size(); ++i) line += (i ? "," : "") + csv_text(fields_[i], row[i]);
    out_ << line << "\n" << std::flush;
  }

 private:
  std::ostream& out_;
};

class JsonPrinter : public BasePrinter {
 public:
  explicit JsonPrinter(std::ostream& out) : out_(out) {}

  void record(const std::string& title, const std::vector<Field>& fields, const Row& row) override {
    begin_table(title, fields);
    this->row(row);
    end_table();
    parts_.back().second = parts_.back().second.at(0);
  }

 protected:
  void header() override { parts_.emplace_back(title_, Json::array()); }
  void print_row(const Row& row) override { parts_.back().second.push_back(json_object(fields_, row)); }
  void document_end() override {
    Json document;
    if (parts_.size() == 1 && parts_[0].first.empty()) {
      document = parts_[0].second;
    } else {
      document = Json::object();
      for (auto& [title, part] : parts_) {
        if (title.empty()) throw Error(ErrorCode::INTERNAL, "printer: json with several tables needs titles");
        document[title] = std::move(part);
      }
    }
    out_ << json_text(document, 2) << "\n" << std::flush;
  }

 private:
  std::ostream& out_;
  std::vector<std::pair<std::string, Json>> parts_;
};

class JsonlPrinter : public BasePrinter {
 public:
  explicit JsonlPrinter(std::ostream& out) : out_(out) {}

 protected:
  void header() override {}
  void print_row(const Row& row) override {
    Json object = Json::object();
    if (!title_.empty()) object["table"] = title_;
    object.update(json_object(fields_, row));
    out_ << json_text(object, -1) << "\n" << std::flush;
  }

 private:
  std::ostream& out_;
};

}  // namespace

constexpr std::array<const char*, 4> kFormatNames = {"md", "csv", "json", "jsonl"};

Format format_from_name(const std::string& name) {
  if (auto format = detail::enum_from_name<Format>(kFormatNames, name)) return *format;
  throw Error(ErrorCode::USAGE, "unknown format '" + name + "' (" + detail::enum_names_text(kFormatNames) + ")");
}

const char* format_name(Format format) { return detail::enum_name(kFormatNames, format); }

void Printer::table(const std::string& title, const std::vector<Field>& fields, const std::vector<Row>& rows) {
  begin_table(title, fields);
  for (const Row& row : rows) this->row(row);
  end_table();
}

void Printer::record(const std::string& title, const std::vector<Field>& fields, const Row& row) {
  begin_table(title, fields);
  this->row(row);
  end_table();
}

std::unique_ptr<Printer> make_printer(Format format, std::ostream& out) {
  switch (format) {
    case Format::MD:
      return std::make_unique<MdPrinter>(out);
    case Format::CSV:
      return std::make_unique<CsvPrinter>(out);
    case Format::JSON:
      return std::make_unique<JsonPrinter>(out);
    case Format::JSONL:
      return std::make_unique<JsonlPrinter>(out);
  }
  throw Error(ErrorCode::INTERNAL, "make_printer: unknown format");
}

std::string csv_escape(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string format_number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.10g", value);
  return buffer;
}

}  // namespace onnxpipe::cli
