#pragma once
// The one exception type of onnxpipe: a code (what kind of failure) and a message that carries its context, outermost
// first: "stage 2 (piece_2.onnx, cuda:1): input 'x': expected float, got int64". Where a pipeline stage failed, the
// stage is also a structured part of the error (Error::stage()), so that callers need not parse the message.
#include <optional>
#include <stdexcept>
#include <string>

namespace onnxpipe {

// What went wrong, by who can mend it. How to present each (a CLI exit status, a Python exception class) is the
// caller's choice.
enum class ErrorCode {
  USAGE,            // the caller asked for something that cannot be done as asked: a bad option value, an
                    // unknown name, a count out of range, inputs that do not match the model's declaration
  INVALID_MODEL,    // a model or plan that is not what it claims: not ONNX, truncated, cyclic, a dangling input, a
                    // plan.json that does not validate or does not match its pieces
  INVALID_DATA,     // a tensor file (.npy, .pb) or other data the caller gave that cannot be read as what it claims
  IO,               // a file or directory that cannot be read, written, created or replaced
  RUNTIME,          // ONNX Runtime or the device failed while loading or running
  VERIFY_MISMATCH,  // the pieces were run and do not reproduce the model within the tolerances
  CANCELLED,        // the request was dropped because its pipeline shut down
  DOES_NOT_FIT,     // the pieces need more memory than the devices can give (their capacities, or the machine's
                    // available memory): no partition fits, or a plan does not fit the devices it is to run on
  INTERNAL,         // an invariant of onnxpipe broke: a bug of ours
};

const char* error_code_name(ErrorCode code);  // "usage", "invalid_model", ...

// The pipeline stage an error happened in.
struct StageContext {
  std::string kind = "stage";  // "stage" (a piece of a pipeline) or "replica" (a whole model in replicas mode)
  int index = 0;               // stage index in its lane, or replica index
  std::string piece;           // the file the stage runs ("piece_1.onnx")
  std::string device;          // "cpu:1", "cuda:0"
  std::string label() const;   // "stage 1 (piece_1.onnx, cpu:1)"
};

// The argument of a call an error is about, in the library's terms, so that a front end can name it in its own (a CLI
// by its flag) instead of parsing the message.
struct ArgumentContext {
  std::string field;     // the options-struct field: "dims", "inputs", "cuts", "force", "weights"
  std::string entry;     // the key or item in it ("seq", an input's name, a tensor), or the path for "force"
  std::string reason;    // what is wrong, without naming the argument: "no input of the model has ..."
  bool missing = false;  // the entry has no value and needs one (reason says why)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  // An error about one argument of the call: `message` in the library's words, `argument` for a front end.
  Error(ErrorCode code, const std::string& message, ArgumentContext argument);
  ErrorCode code() const noexcept { return code_; }
  // Where it happened, when a pipeline stage (or a session made for one) raised it.
  const std::optional<StageContext>& stage() const noexcept { return stage_; }
  // The argument it is about, while the message says nothing more than that argument's fault.
  const std::optional<ArgumentContext>& argument() const noexcept { return argument_; }
  // The same error with "context: " in front of its message (and no argument(): the message now says more).
  Error with_context(const std::string& context) const;
  // The same error attributed to `stage` (its label in front of the message); an error already attributed to a
  // stage is returned unchanged.
  Error with_stage(const StageContext& stage) const;

 private:
  ErrorCode code_;
  std::optional<StageContext> stage_;
  std::optional<ArgumentContext> argument_;
};

}  // namespace onnxpipe
