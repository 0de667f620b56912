// The CLI's result printers (tools/printer.{h,cpp}): fields, escaping, one row per call, each format.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

// The printers are part of the CLI executable, not of the library: compiled into this test directly.
#include "onnxpipe/error.h"
#include "printer.h"

namespace onnxpipe::cli {
namespace {

using nlohmann::json;

const std::vector<Field> kFields = {
    {"name", FieldType::STRING},
    {"count", FieldType::INT},
    {"time_ms", FieldType::FLOAT, 2},
    {"ok", FieldType::BOOL},
    {"detail", FieldType::STRING, -1, false},
};

std::string print(Format format, const std::vector<Row>& rows, const std::string& title = "") {
  std::ostringstream out;
  auto printer = make_printer(format, out);
  printer->begin_table(title, kFields);
  for (const Row& row : rows) printer->row(row);
  printer->end_table();
  printer->finish();
  return out.str();
}

const std::vector<Row> kRows = {
    {"plain", 3, 1.5, true, "x"},
    {"a,b \"quoted\"\nline", int64_t(1) << 40, 0.1 + 0.2, false, nullptr},
    {"none", nullptr, std::numeric_limits<double>::quiet_NaN(), nullptr, ""},
};

TEST(Printer, CsvEscapesPerRfc4180) {
  EXPECT_EQ(csv_escape("plain"), "plain");
  EXPECT_EQ(csv_escape("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_escape("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_escape("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_escape("cr\r"), "\"cr\r\"");
  EXPECT_EQ(csv_escape(""), "");
}

TEST(Printer, CsvCarriesEveryFieldOneLinePerRow) {
  EXPECT_EQ(print(Format::CSV, kRows),
            "name,count,time_ms,ok,detail\n"
            "plain,3,1.5,true,x\n"
            "\"a,b \"\"quoted\"\"\nline\",1099511627776,0.3,false,\n"
            "none,,nan,,\n");
}

TEST(Printer, CsvSeparatesTablesWithAnEmptyLine) {
  std::ostringstream out;
  auto printer = make_printer(Format::CSV, out);
  printer->record("summary", {{"parts", FieldType::INT}}, {2});
  printer->table("pieces", {{"piece", FieldType::INT}}, {{0}, {1}});
  printer->finish();
  EXPECT_EQ(out.str(), "parts\n2\n\npiece\n0\n1\n");
}

TEST(Printer, JsonIsAnArrayForOneUntitledTable) {
  json doc = json::parse(print(Format::JSON, kRows));
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 3u);
  EXPECT_EQ(doc[0], json::parse(R"({"name": "plain", "count": 3, "time_ms": 1.5, "ok": true, "detail": "x"})"));
  EXPECT_EQ(doc[1]["name"], "a,b \"quoted\"\nline");
  EXPECT_EQ(doc[1]["count"], int64_t(1) << 40);
  EXPECT_EQ(doc[1]["time_ms"], 0.3);  // rounded to 10 significant digits like csv
  EXPECT_TRUE(doc[1]["detail"].is_null());
  EXPECT_TRUE(doc[2]["count"].is_null());
  EXPECT_TRUE(doc[2]["time_ms"].is_null());  // NaN has no JSON number
  // Fields keep their order (nlohmann::json would sort them: look at the text).
  std::string text = print(Format::JSON, {kRows[0]});
  EXPECT_LT(text.find("\"name\""), text.find("\"count\""));
  EXPECT_LT(text.find("\"count\""), text.find("\"time_ms\""));
}

TEST(Printer, JsonIsAnObjectOfTitledTables) {
  std::ostringstream out;
  auto printer = make_printer(Format::JSON, out);
  printer->record("summary", {{"parts", FieldType::INT}, {"balance", FieldType::STRING}}, {2, "flops"});
  printer->table("pieces", {{"piece", FieldType::INT}}, {{0}, {1}});
  printer->finish();
  json doc = json::parse(out.str());
  EXPECT_EQ(doc,
            json::parse(R"({"summary": {"parts": 2, "balance": "flops"}, "pieces": [{"piece": 0}, {"piece": 1}]})"));
}

TEST(Printer, JsonlPrintsEachRowAsItComes) {
  std::ostringstream out;
  auto printer = make_printer(Format::JSONL, out);
  printer->begin_table("runs", kFields);
  printer->row(kRows[0]);
  EXPECT_EQ(out.str(),
            "{\"table\":\"runs\",\"name\":\"plain\",\"count\":3,\"time_ms\":1.5,\"ok\":true,\"detail\":\"x\"}\n");
  printer->row(kRows[1]);
  printer->end_table();
  printer->finish();
  std::istringstream lines(out.str());
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) EXPECT_EQ(json::parse(line)["table"], "runs");
  EXPECT_EQ(count, 2);
  // An untitled table has no "table" member.
  EXPECT_EQ(json::parse(print(Format::JSONL, {kRows[0]})).count("table"), 0u);
}

TEST(Printer, MarkdownShowsKeyFieldsAndRowsAsTheyCome) {
  std::ostringstream out;
  auto printer = make_printer(Format::MD, out);
  printer->begin_table("runs", kFields);
  EXPECT_EQ(out.str(),
            "## runs\n\n"
            "| name | count | time_ms | ok  |\n"
            "| ---- | ----: | ------: | --- |\n");
  printer->row(kRows[0]);
  EXPECT_EQ(out.str().substr(out.str().rfind("| plain")), "| plain |     3 |    1.50 | yes |\n");
  printer->row(kRows[2]);
  EXPECT_EQ(out.str().substr(out.str().rfind("| none")), "| none |     - |     nan | -   |\n");
  printer->row({"a|b", 1, 2, true, ""});
  EXPECT_NE(out.str().find("| a\\|b |"), std::string::npos);  // a pipe would split the cell
  printer->finish();
}

TEST(Printer, MarkdownAlignsWholeTablesAndRecords) {
  std::ostringstream out;
  auto printer = make_printer(Format::MD, out);
  printer->table("", {{"op", FieldType::STRING}, {"count", FieldType::INT}}, {{"Conv", 20}, {"GlobalAveragePool", 1}});
  printer->record("model", {{"nodes", FieldType::INT}, {"producer", FieldType::STRING}}, {49, "pytorch"});
  printer->finish();
  EXPECT_EQ(out.str(),
            "| op                | count |\n"
            "| ----------------- | ----: |\n"
            "| Conv              |    20 |\n"
            "| GlobalAveragePool |     1 |\n"
            "\n"
            "## model\n\n"
            "| field    | value   |\n"
            "| -------- | ------- |\n"
            "| nodes    | 49      |\n"
            "| producer | pytorch |\n");
}

TEST(Printer, RowsMustMatchTheFields) {
  std::ostringstream out;
  auto printer = make_printer(Format::CSV, out);
  printer->begin_table("t", kFields);
  for (const Row& bad : std::vector<Row>{{"too", 1}, {"x", "not an int", 1.0, true, ""}, {"x", 1, "1.0", true, ""}}) {
    try {
      printer->row(bad);
      ADD_FAILURE() << "a bad row was printed";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::INTERNAL);
    }
  }
  printer->row({"ints are fine for floats", 1, 2, true, ""});
  EXPECT_NE(out.str().find("ints are fine for floats,1,2,true,"), std::string::npos);
}

TEST(Printer, FormatsAndNumbers) {
  for (Format format : {Format::MD, Format::CSV, Format::JSON, Format::JSONL}) {
    EXPECT_EQ(format_from_name(format_name(format)), format);
  }
  EXPECT_THROW(format_from_name("xml"), Error);
  EXPECT_EQ(format_number(0.1 + 0.2), "0.3");
  EXPECT_EQ(format_number(1e-7), "1e-07");
  EXPECT_EQ(format_number(123456), "123456");
  EXPECT_EQ(format_number(1.0 / 3), "0.3333333333");
  EXPECT_EQ(format_number(-std::numeric_limits<double>::infinity()), "-inf");
}

}  // namespace
}  // namespace onnxpipe::cli
