// Run config: YAML text -> validated RunConfig, every problem collected before one InputError.
// The schema is the table kLeaves (one row per leaf key with its reader); sections only nest.
// Rules: no yaml-cpp exception escapes (each becomes a problem line); nothing here recurses into
// user-controlled depth (yaml-cpp's parser itself stops at depth 2000), and the problem list is
// capped, so hostile input costs time linear in its size. Messages are one line each.
#include "app/config.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "app/errors.h"

namespace strata::app {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxShownChars = 60;        // of a value quoted in a message
constexpr std::size_t kMaxProblems = 100;         // more would only bury the first ones
constexpr std::size_t kMaxSuggestKeyChars = 100;  // longer keys get no "did you mean"
constexpr std::size_t kMaxConfigBytes = 1 << 20;  // 1 MiB: far above any real config

const char* const kSections[] = {"model",           "data", "cluster",    "train",
                                 "train.optimizer", "plan", "checkpoint", "output"};

// ---------------------------------------------------------------- text helpers
// Length of the valid UTF-8 sequence starting at s[i]; 0 when the bytes there are not UTF-8.
std::size_t utf8_length(const std::string& s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0Fu;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07u;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3Fu);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

std::string hex_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02X", c);
  return buf;
}

// One-line, printable form of user text for messages: control bytes and bytes that are not
// UTF-8 as \xNN, cut after kMaxShownChars characters.
std::string printable(const std::string& s) {
  std::string out;
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size(); ++chars) {
    if (chars == kMaxShownChars) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const std::size_t n = utf8_length(s, i);
    if (n == 0 || c < 0x20 || c == 0x7F) {
      out += hex_byte(c);
      i += 1;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

std::string in_quotes(const std::string& s) { return "\"" + printable(s) + "\""; }

// Shortest text that reads back as the same double (std::to_chars), in YAML's spelling.
std::string format_double(double x) {
  if (std::isnan(x)) return ".nan";
  if (std::isinf(x)) return x > 0 ? ".inf" : "-.inf";
  char buf[64];
  // Shortest round-trip digits in %g style: 0.0003 and 60 rather than 3e-04 and 6e+01.
  const auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::general);
  return std::string(buf, res.ptr);
}

// Edit distance, case-insensitive (two rows; callers bound the lengths).
std::size_t edit_distance(const std::string& a, const std::string& b) {
  const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; };
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t sub = prev[j - 1] + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string last_segment(const std::string& key) {
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// " (did you mean X?)" when one candidate is close to `key`: an edit distance of at most 2 and
// below half the length of the key's last segment (so a short "f8" suggests nothing, while
// "trian", "stpes" and "adam" do); else a unique candidate with the same last segment (`steps`
// at the top level -> train.steps).
std::string suggestion(const std::string& key, const std::vector<std::string>& candidates) {
  if (key.size() > kMaxSuggestKeyChars) return "";
  const std::string tail = last_segment(key);
  std::string best;
  std::size_t best_d = 3;
  for (const auto& cand : candidates) {
    // Lengths that differ by more than 2 cannot be within distance 2: skip the O(n*m) work.
    if (key.size() > cand.size() + 2 || cand.size() > key.size() + 2) continue;
    const std::size_t d = edit_distance(key, cand);
    if (d < best_d && 2 * d < tail.size()) best_d = d, best = cand;
  }
  if (best.empty()) {
    int matches = 0;
    for (const auto& cand : candidates) {
      if (last_segment(cand) == tail) ++matches, best = cand;
    }
    if (matches != 1) best.clear();
  }
  return best.empty() ? "" : " (did you mean " + best + "?)";
}

// ---------------------------------------------------------------- scalar parsing
enum class IntParse { kOk, kNotInteger, kOverflow };

bool all_digits(const std::string& s, std::size_t from) {
  if (from >= s.size()) return false;
  for (std::size_t i = from; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

// Plain decimal integers only (YAML 1.2 core without 0x/0o): "[-+]?[0-9]+".
IntParse parse_int64(const std::string& text, std::int64_t* out) {
  std::size_t start = (!text.empty() && (text[0] == '+' || text[0] == '-')) ? 1 : 0;
  if (!all_digits(text, start)) return IntParse::kNotInteger;
  const char* first = text.data() + (text[0] == '+' ? 1 : 0);
  const auto res = std::from_chars(first, text.data() + text.size(), *out);
  if (res.ec == std::errc::result_out_of_range) return IntParse::kOverflow;
  return res.ec == std::errc() ? IntParse::kOk : IntParse::kNotInteger;
}

IntParse parse_uint64(const std::string& text, std::uint64_t* out) {
  const std::size_t start = (!text.empty() && text[0] == '+') ? 1 : 0;
  if (!all_digits(text, start)) return IntParse::kNotInteger;
  const auto res = std::from_chars(text.data() + start, text.data() + text.size(), *out);
  if (res.ec == std::errc::result_out_of_range) return IntParse::kOverflow;
  return res.ec == std::errc() ? IntParse::kOk : IntParse::kNotInteger;
}

// Decimal floats: "[-+]?(d+(.d*)?|.d+)([eE][-+]?d+)?"; YAML's .inf/.nan spellings are numbers too
// (so the message can say "must be finite" rather than "not a number").
enum class FloatParse { kOk, kNotNumber, kNotFinite, kOverflow };

FloatParse parse_double(const std::string& text, double* out) {
  static const std::set<std::string> kNonFinite = {".inf",  ".Inf",  ".INF",  "+.inf",
                                                   "+.Inf", "+.INF", "-.inf", "-.Inf",
                                                   "-.INF", ".nan",  ".NaN",  ".NAN"};
  if (kNonFinite.count(text)) return FloatParse::kNotFinite;
  std::size_t i = (!text.empty() && (text[0] == '+' || text[0] == '-')) ? 1 : 0;
  const std::size_t int_begin = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  std::size_t digits = i - int_begin;
  if (i < text.size() && text[i] == '.') {
    const std::size_t frac_begin = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    digits += i - frac_begin;
  }
  if (digits == 0) return FloatParse::kNotNumber;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (!all_digits(text, i)) return FloatParse::kNotNumber;
    i = text.size();
  }
  if (i != text.size()) return FloatParse::kNotNumber;
  const char* first = text.data() + (text[0] == '+' ? 1 : 0);
  const auto res = std::from_chars(first, text.data() + text.size(), *out);
  if (res.ec == std::errc::result_out_of_range) return FloatParse::kOverflow;
  if (res.ec != std::errc() || res.ptr != text.data() + text.size()) return FloatParse::kNotNumber;
  return FloatParse::kOk;
}

// A plain scalar (or one with a standard numeric/bool/null tag) may be a number or a bool; a
// quoted one is always a string, as in YAML.
bool is_plain(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  return tag == "?" || tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
         tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null";
}

std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  return is_plain(node) ? printable(node.Scalar()) : "the string " + in_quotes(node.Scalar());
}

// ---------------------------------------------------------------- the reader
struct Site {              // where a value came from: orders and prefixes its messages
  int group = 0;           // 0 the file, 1 a --set, 2 the config as a whole
  std::int64_t order = 0;  // file line or --set index
  int line = 0;            // 1-based file line; 0 = none
  std::string base_dir;    // relative paths resolve against this ("" = keep them relative)
};

struct Value {
  YAML::Node node;
  std::string key;   // for messages: "train.steps", "plan.stages[1].layers"
  std::string leaf;  // the schema key it belongs to: "plan.stages"
  Site site;
};

struct Range {  // allowed interval of a number; messages print it
  double lo = -HUGE_VAL;
  bool lo_open = false;
  double hi = HUGE_VAL;
  bool hi_open = false;
  bool contains(double x) const {
    return (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
  }
  std::string text() const {
    if (hi == HUGE_VAL) return std::string(lo_open ? "> " : ">= ") + format_double(lo);
    return "in " + std::string(lo_open ? "(" : "[") + format_double(lo) + ", " + format_double(hi) +
           (hi_open ? ")" : "]");
  }
};

class Reader;
using ReadFn = void (*)(Reader&, const Value&, RunConfig&);

struct Leaf {  // one row of the schema: a leaf key and the function that reads its value
  const char* key;
  ReadFn read;
};
// Defined after the table of leaves (which needs Reader).
const Leaf* find_leaf(const std::string& key);
std::vector<std::string> known_keys();

bool is_section(const std::string& key) {
  return std::find(std::begin(kSections), std::end(kSections), key) != std::end(kSections);
}

class Reader {
 public:
  explicit Reader(std::string source) : source_(source.empty() ? "<config>" : std::move(source)) {}

  // ---- problems
  bool full() const { return problems_.size() >= kMaxProblems; }

  void report(const Site& site, const std::string& key, const std::string& text,
              const std::string& leaf = "") {
    bad_leaves_.insert(leaf.empty() ? key : leaf);
    if (full()) {
      ++dropped_;
      return;
    }
    std::string where;
    if (site.group == 1) {
      where = "--set " + printable(key);
    } else {
      where = source_ + (site.line > 0 ? ":" + std::to_string(site.line) : "");
      if (!key.empty()) where += ": " + printable(key);
    }
    problems_.push_back({site.group, site.order, problems_.size(), where + ": " + text});
  }
  void report(const Value& v, const std::string& text) { report(v.site, v.key, text, v.leaf); }
  bool type_error(const Value& v, const std::string& expected) {
    report(v, "expected " + expected + ", got " + describe(v.node));
    return false;
  }
  bool leaf_ok(const std::string& leaf) const { return bad_leaves_.count(leaf) == 0; }

  std::vector<std::string> sorted_problems() {
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
      return std::tie(a.group, a.order, a.seq) < std::tie(b.group, b.order, b.seq);
    });
    std::vector<std::string> lines;
    for (const auto& p : problems_) lines.push_back(p.text);
    if (dropped_ > 0) lines.push_back("... and " + std::to_string(dropped_) + " more problems");
    return lines;
  }
  bool ok() const { return problems_.empty(); }
  // After a syntax error the file's keys are unknown: "model.path missing" would be noise.
  void set_file_unreadable() { file_unreadable_ = true; }
  bool file_unreadable() const { return file_unreadable_; }

  // ---- where values come from
  Site file_site(const YAML::Node& node, const std::string& base_dir) const {
    Site s;
    s.group = 0;
    const YAML::Mark mark = node.Mark();
    s.line = mark.line >= 0 ? mark.line + 1 : 0;
    s.order = s.line;
    s.base_dir = base_dir;
    return s;
  }
  // A list element or nested entry: its own line in the file, the same --set otherwise.
  Value child(const Value& parent, const YAML::Node& node, const std::string& suffix) const {
    Value v{node, parent.key + suffix, parent.leaf, parent.site};
    if (parent.site.group == 0) v.site = file_site(node, parent.site.base_dir);
    return v;
  }
  void note_origin(const std::string& leaf, const Site& site) { origins_[leaf] = site; }
  std::optional<Site> origin(const std::string& leaf) const {
    auto it = origins_.find(leaf);
    if (it == origins_.end()) return std::nullopt;
    return it->second;
  }

  // ---- scalar readers: each reports its own problem and returns false on error
  bool integer(const Value& v, std::int64_t min, std::int64_t* out) {
    if (!v.node.IsScalar() || !is_plain(v.node)) return type_error(v, "an integer");
    const std::string& text = v.node.Scalar();
    std::int64_t x = 0;
    switch (parse_int64(text, &x)) {
      case IntParse::kNotInteger:
        return type_error(v, "an integer");
      case IntParse::kOverflow:
        report(v, printable(text) + " is out of range (integers must fit in 64 bits)");
        return false;
      case IntParse::kOk:
        break;
    }
    if (x < min) {
      report(v, printable(text) + " is out of range (must be >= " + std::to_string(min) + ")");
      return false;
    }
    *out = x;
    return true;
  }

  bool unsigned_integer(const Value& v, std::uint64_t* out) {
    if (!v.node.IsScalar() || !is_plain(v.node)) return type_error(v, "an integer");
    const std::string& text = v.node.Scalar();
    std::int64_t signed_value = 0;
    if (parse_int64(text, &signed_value) == IntParse::kOk && signed_value < 0) {
      report(v, printable(text) + " is out of range (must be >= 0)");
      return false;
    }
    switch (parse_uint64(text, out)) {
      case IntParse::kOk:
        return true;
      case IntParse::kOverflow:
        report(v, printable(text) + " is out of range (must be < 2^64)");
        return false;
      case IntParse::kNotInteger:
        break;
    }
    if (!text.empty() && text[0] == '-' && all_digits(text, 1)) {
      report(v, printable(text) + " is out of range (must be >= 0)");
      return false;
    }
    return type_error(v, "an integer");
  }

  bool number(const Value& v, const Range& range, double* out) {
    if (!v.node.IsScalar() || !is_plain(v.node)) return type_error(v, "a number");
    const std::string& text = v.node.Scalar();
    double x = 0;
    switch (parse_double(text, &x)) {
      case FloatParse::kNotNumber:
        return type_error(v, "a number");
      case FloatParse::kNotFinite:
        report(v, printable(text) + " is out of range (must be finite)");
        return false;
      case FloatParse::kOverflow:
        report(v, printable(text) + " is out of range for a double");
        return false;
      case FloatParse::kOk:
        break;
    }
    if (!range.contains(x)) {
      report(v, printable(text) + " is out of range (must be " + range.text() + ")");
      return false;
    }
    *out = x;
    return true;
  }

  bool boolean(const Value& v, bool* out) {
    static const std::set<std::string> kTrue = {"true", "True", "TRUE"};
    static const std::set<std::string> kFalse = {"false", "False", "FALSE"};
    if (v.node.IsScalar() && is_plain(v.node)) {
      if (kTrue.count(v.node.Scalar())) return *out = true, true;
      if (kFalse.count(v.node.Scalar())) return *out = false, true;
    }
    return type_error(v, "true or false");
  }

  // Any scalar (a path of digits is still a path) that is UTF-8 without control characters, so
  // that config_to_yaml can always write it back.
  bool text(const Value& v, bool allow_empty, std::string* out) {
    if (!v.node.IsScalar()) return type_error(v, "a string");
    const std::string& s = v.node.Scalar();
    for (std::size_t i = 0; i < s.size();) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      const std::size_t n = utf8_length(s, i);
      if (n == 0) {
        report(v, in_quotes(s) + " is not valid UTF-8 (byte " + hex_byte(c) + ")");
        return false;
      }
      if (c < 0x20 || c == 0x7F) {
        report(v, in_quotes(s) + " contains a control character (" + hex_byte(c) + ")");
        return false;
      }
      i += n;
    }
    if (s.empty() && !allow_empty) {
      report(v, "must not be empty");
      return false;
    }
    *out = s;
    return true;
  }

  bool choice(const Value& v, const std::vector<std::string>& allowed, std::string* out) {
    std::string s;
    if (!v.node.IsScalar()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return type_error(v, "one of " + list);
    }
    if (!text(v, true, &s)) return false;
    if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      report(v, in_quotes(s) + " is not one of " + list + suggestion(s, allowed));
      return false;
    }
    *out = s;
    return true;
  }

  static std::string resolve(const std::string& base_dir, const std::string& p) {
    if (p.empty() || base_dir.empty() || fs::path(p).is_absolute()) return p;
    return (fs::path(base_dir) / p).lexically_normal().string();
  }

  bool path(const Value& v, bool allow_empty, std::string* out) {
    std::string s;
    if (!text(v, allow_empty, &s)) return false;
    *out = resolve(v.site.base_dir, s);
    return true;
  }

  // [a, b] with both integers >= min.
  bool int_pair(const Value& v, const std::string& shape, std::int64_t min, std::int64_t* a,
                std::int64_t* b) {
    if (!v.node.IsSequence()) return type_error(v, "a list " + shape);
    if (v.node.size() != 2) {
      report(v, "expected 2 values " + shape + ", got " + std::to_string(v.node.size()));
      return false;
    }
    const bool ok_a = integer(child(v, v.node[0], "[0]"), min, a);
    const bool ok_b = integer(child(v, v.node[1], "[1]"), min, b);
    return ok_a && ok_b;
  }

  // ---- walking maps
  // Reads the entries of a section map (`prefix` "" for the top level).
  void read_section(const YAML::Node& map, const std::string& prefix, const Site& site,
                    RunConfig& config) {
    std::map<std::string, int> seen;  // key -> line of first occurrence
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node key_node = it->first;
      const YAML::Node value = it->second;
      Site entry_site = site;
      if (site.group == 0) entry_site = file_site(key_node, site.base_dir);
      if (!key_node.IsScalar() || key_node.Scalar().empty()) {
        report(entry_site, prefix.empty() ? "(top level)" : prefix,
               "keys must be non-empty strings, got " + describe(key_node));
        continue;
      }
      const std::string& name = key_node.Scalar();
      const std::string key = prefix.empty() ? name : prefix + "." + name;
      if (name.find('.') != std::string::npos) {
        report(entry_site, key, "keys may not contain '.'; nest the sections instead");
        continue;
      }
      auto [first, inserted] = seen.emplace(name, entry_site.line);
      if (!inserted) {
        report(entry_site, key,
               "duplicate key" + (first->second > 0 ? " (first given on line " +
                                                          std::to_string(first->second) + ")"
                                                    : std::string()));
        continue;
      }
      read_entry(key, value, entry_site, config);
    }
  }

  // One key = value (from the file or a --set): a section recurses, a leaf reads.
  void read_entry(const std::string& key, const YAML::Node& value, const Site& site,
                  RunConfig& config) {
    if (is_section(key)) {
      if (!value.IsDefined() || value.IsNull()) return;  // an empty section: all defaults
      if (!value.IsMap()) {
        report(site, key, "expected a map of " + key + ".* keys, got " + describe(value));
        return;
      }
      read_section(value, key, site, config);
      return;
    }
    if (const Leaf* leaf = find_leaf(key)) {
      note_origin(key, site);
      leaf->read(*this, Value{value, key, key, site}, config);
      return;
    }
    report(site, key, "unknown key" + (full() ? "" : suggestion(key, known_keys())));
  }

 private:
  struct Problem {
    int group;
    std::int64_t order;
    std::size_t seq;
    std::string text;
  };
  std::string source_;
  std::vector<Problem> problems_;
  std::size_t dropped_ = 0;
  bool file_unreadable_ = false;
  std::set<std::string> bad_leaves_;
  std::map<std::string, Site> origins_;
};

// ---------------------------------------------------------------- readers of composite keys
void read_micro_batches(Reader& r, const Value& v, RunConfig& c) {
  if (v.node.IsScalar() && v.node.Scalar() == "auto") {
    c.micro_batches = 0;
    return;
  }
  std::int64_t x = 0;
  const IntParse parsed = v.node.IsScalar() && is_plain(v.node) ? parse_int64(v.node.Scalar(), &x)
                                                                : IntParse::kNotInteger;
  if (parsed == IntParse::kNotInteger) {
    r.type_error(v, "an integer >= 1 or auto");
  } else if (parsed == IntParse::kOk && x < 1) {
    r.report(v, printable(v.node.Scalar()) + " is out of range (must be >= 1, or auto)");
  } else {
    r.integer(v, 1, &c.micro_batches);  // in range, or reports the overflow
  }
}

void read_betas(Reader& r, const Value& v, RunConfig& c) {
  if (!v.node.IsSequence()) {
    r.type_error(v, "a list [beta1, beta2]");
    return;
  }
  if (v.node.size() != 2) {
    r.report(v, "expected 2 values [beta1, beta2], got " + std::to_string(v.node.size()));
    return;
  }
  const Range unit{0.0, false, 1.0, true};
  double b1 = 0, b2 = 0;
  const bool ok1 = r.number(r.child(v, v.node[0], "[0]"), unit, &b1);
  const bool ok2 = r.number(r.child(v, v.node[1], "[1]"), unit, &b2);
  if (ok1 && ok2) c.optimizer.beta1 = b1, c.optimizer.beta2 = b2;
}

void read_no_decay(Reader& r, const Value& v, RunConfig& c) {
  if (!v.node.IsSequence()) {
    r.type_error(v, "a list of parameter-name patterns");
    return;
  }
  std::vector<std::string> patterns;
  bool ok = true;
  for (std::size_t i = 0; i < v.node.size(); ++i) {
    std::string p;
    if (r.text(r.child(v, v.node[i], "[" + std::to_string(i) + "]"), false, &p)) {
      patterns.push_back(p);
    } else {
      ok = false;
    }
  }
  if (ok) c.optimizer.no_decay = patterns;
}

bool read_stage(Reader& r, const Value& v, StageSpec* stage) {
  static const std::vector<std::string> kStageKeys = {"layers", "submesh", "logical_mesh",
                                                      "recompute"};
  if (!v.node.IsMap()) return r.type_error(v, "a map {layers, submesh, logical_mesh, recompute}");
  bool ok = true, has_layers = false, has_submesh = false, has_mesh = false;
  std::set<std::string> seen;
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    const YAML::Node key_node = it->first;
    Value kv = r.child(v, it->second, "");
    if (v.site.group == 0) kv.site = r.file_site(key_node, v.site.base_dir);
    if (!key_node.IsScalar()) {
      r.report(kv, "stage keys must be strings, got " + describe(key_node));
      ok = false;
      continue;
    }
    const std::string name = key_node.Scalar();
    kv.key = v.key + "." + name;
    if (!seen.insert(name).second) {
      r.report(kv, "duplicate key");
      ok = false;
    } else if (name == "layers") {
      has_layers = r.int_pair(kv, "[begin, end)", 0, &stage->layer_begin, &stage->layer_end);
      ok &= has_layers;
      if (has_layers && stage->layer_begin >= stage->layer_end) {
        r.report(kv, "[" + std::to_string(stage->layer_begin) + ", " +
                         std::to_string(stage->layer_end) +
                         ") is an empty range (need begin < end)");
        ok = false;
      }
    } else if (name == "submesh") {
      has_submesh =
          r.int_pair(kv, "[hosts, devices]", 1, &stage->submesh_hosts, &stage->submesh_devices);
      ok &= has_submesh;
    } else if (name == "logical_mesh") {
      has_mesh = r.int_pair(kv, "[d0, d1]", 1, &stage->mesh0, &stage->mesh1);
      ok &= has_mesh;
    } else if (name == "recompute") {
      ok &= r.boolean(kv, &stage->recompute);
    } else {
      r.report(kv, "unknown stage key (expected layers, submesh, logical_mesh or recompute)" +
                       suggestion(name, kStageKeys));
      ok = false;
    }
  }
  if (!has_layers && seen.count("layers") == 0) {
    r.report(v, "missing layers: [begin, end)");
    ok = false;
  }
  if (!has_submesh && seen.count("submesh") == 0) {
    r.report(v, "missing submesh: [hosts, devices]");
    ok = false;
  }
  if (!ok) return false;
  if (!has_mesh) {  // the logical mesh defaults to the physical shape
    stage->mesh0 = stage->submesh_hosts;
    stage->mesh1 = stage->submesh_devices;
  }
  // The logical mesh is a reshape of the submesh's devices.
  std::int64_t logical = 0, physical = 0;
  const bool overflow =
      __builtin_mul_overflow(stage->mesh0, stage->mesh1, &logical) ||
      __builtin_mul_overflow(stage->submesh_hosts, stage->submesh_devices, &physical);
  if (overflow || logical != physical) {
    r.report(v, "logical_mesh [" + std::to_string(stage->mesh0) + ", " +
                    std::to_string(stage->mesh1) + "] does not hold the submesh's " +
                    std::to_string(stage->submesh_hosts) + " x " +
                    std::to_string(stage->submesh_devices) + " devices");
    return false;
  }
  return true;
}

void read_stages(Reader& r, const Value& v, RunConfig& c) {
  if (!v.node.IsSequence()) {
    r.type_error(v, "a list of stages");
    return;
  }
  std::vector<StageSpec> stages;
  bool ok = true;
  for (std::size_t i = 0; i < v.node.size() && !r.full(); ++i) {
    const Value sv = r.child(v, v.node[i], "[" + std::to_string(i) + "]");
    StageSpec s;
    if (!read_stage(r, sv, &s)) {
      ok = false;
      continue;
    }
    // Stages cut the model's layers into consecutive pieces, in order, from layer 0; whether
    // the last one ends at the model's layer count is checked once the model is read.
    const std::int64_t expected_begin = stages.empty() ? 0 : stages.back().layer_end;
    if (ok && s.layer_begin != expected_begin) {
      r.report(sv, "layers begin at " + std::to_string(s.layer_begin) + " but must begin at " +
                       std::to_string(expected_begin) +
                       (stages.empty() ? " (the first stage starts at layer 0)"
                                       : " (where the previous stage ends)"));
      ok = false;
    }
    stages.push_back(s);
  }
  if (ok) c.plan_stages = stages;
}

void read_resume(Reader& r, const Value& v, RunConfig& c) {
  std::string s;
  if (!r.text(v, false, &s)) return;
  c.checkpoint_resume = (s == "auto" || s == "never") ? s : Reader::resolve(v.site.base_dir, s);
}

// ---------------------------------------------------------------- the schema
const Range kPositive{0.0, true};
const Range kNonNegative{0.0, false};

#define STRATA_LEAF(key, body)                                 \
  Leaf {                                                       \
    key, [](Reader& r, const Value& v, RunConfig& c) { body; } \
  }

const Leaf kLeaves[] = {
    STRATA_LEAF("model.path", r.path(v, false, &c.model_path)),
    STRATA_LEAF("data.path", r.path(v, true, &c.data_path)),
    STRATA_LEAF("data.val_path", r.path(v, true, &c.val_path)),
    STRATA_LEAF("cluster.preset", r.text(v, false, &c.cluster_preset)),
    STRATA_LEAF("cluster.hosts", r.integer(v, 0, &c.cluster_hosts)),
    STRATA_LEAF("cluster.devices_per_host", r.integer(v, 0, &c.cluster_devices_per_host)),
    STRATA_LEAF("cluster.backend", r.choice(v, {"auto", "host", "cuda"}, &c.backend)),
    STRATA_LEAF("train.steps", r.integer(v, 1, &c.steps)),
    STRATA_LEAF("train.global_batch", r.integer(v, 1, &c.global_batch)),
    STRATA_LEAF("train.micro_batches", read_micro_batches(r, v, c)),
    STRATA_LEAF("train.dtype", r.choice(v, {"f64", "f32", "bf16", "f16"}, &c.dtype)),
    STRATA_LEAF("train.master_dtype", r.choice(v, {"auto", "f32", "f64"}, &c.master_dtype)),
    STRATA_LEAF("train.seed", r.unsigned_integer(v, &c.seed)),
    STRATA_LEAF("train.shuffle", r.boolean(v, &c.shuffle)),
    STRATA_LEAF("train.log_every", r.integer(v, 1, &c.log_every)),
    STRATA_LEAF("train.eval_every", r.integer(v, 0, &c.eval_every)),
    STRATA_LEAF("train.clip_grad_norm", r.number(v, kNonNegative, &c.optimizer.clip_grad_norm)),
    STRATA_LEAF("train.optimizer.kind", r.choice(v, {"adamw", "sgd"}, &c.optimizer.kind)),
    STRATA_LEAF("train.optimizer.lr", r.number(v, kPositive, &c.optimizer.lr)),
    STRATA_LEAF("train.optimizer.betas", read_betas(r, v, c)),
    STRATA_LEAF("train.optimizer.eps", r.number(v, kPositive, &c.optimizer.eps)),
    STRATA_LEAF("train.optimizer.weight_decay",
                r.number(v, kNonNegative, &c.optimizer.weight_decay)),
    STRATA_LEAF("train.optimizer.momentum",
                r.number(v, Range{0.0, false, 1.0, true}, &c.optimizer.momentum)),
    STRATA_LEAF("train.optimizer.no_decay", read_no_decay(r, v, c)),
    STRATA_LEAF("train.optimizer.schedule",
                r.choice(v, {"constant", "cosine"}, &c.optimizer.schedule)),
    STRATA_LEAF("train.optimizer.warmup_steps", r.integer(v, 0, &c.optimizer.warmup_steps)),
    STRATA_LEAF("train.optimizer.min_lr", r.number(v, kNonNegative, &c.optimizer.min_lr)),
    STRATA_LEAF("plan.method", r.choice(v,
                                        {"auto", "data-parallel", "zero2", "zero3", "megatron",
                                         "megatron-best", "intra-only", "inter-only", "manual"},
                                        &c.plan_method)),
    STRATA_LEAF("plan.dp", r.integer(v, 1, &c.plan_dp)),
    STRATA_LEAF("plan.tp", r.integer(v, 1, &c.plan_tp)),
    STRATA_LEAF("plan.pp", r.integer(v, 1, &c.plan_pp)),
    STRATA_LEAF("plan.stages", read_stages(r, v, c)),
    STRATA_LEAF("plan.schedule", r.choice(v, {"1f1b", "gpipe"}, &c.plan_schedule)),
    STRATA_LEAF("plan.recompute", r.choice(v, {"auto", "always", "never"}, &c.plan_recompute)),
    STRATA_LEAF("plan.solver", r.choice(v, {"auto", "lp_solve", "cbc"}, &c.plan_solver)),
    STRATA_LEAF("plan.ilp_time_limit_s", r.number(v, kPositive, &c.plan_ilp_time_limit_s)),
    STRATA_LEAF("checkpoint.dir", r.path(v, true, &c.checkpoint_dir)),
    STRATA_LEAF("checkpoint.every_steps", r.integer(v, 0, &c.checkpoint_every_steps)),
    STRATA_LEAF("checkpoint.keep", r.integer(v, 1, &c.checkpoint_keep)),
    STRATA_LEAF("checkpoint.resume", read_resume(r, v, c)),
    STRATA_LEAF("output.dir", r.path(v, false, &c.output_dir)),
    STRATA_LEAF("output.metrics", r.path(v, true, &c.metrics_path)),
    STRATA_LEAF("output.save_model", r.boolean(v, &c.save_model)),
    STRATA_LEAF("output.dump_gradients_step", r.integer(v, 0, &c.dump_gradients_step)),
};

#undef STRATA_LEAF

const Leaf* find_leaf(const std::string& key) {
  for (const Leaf& leaf : kLeaves) {
    if (key == leaf.key) return &leaf;
  }
  return nullptr;
}

std::vector<std::string> known_keys() {
  std::vector<std::string> keys(std::begin(kSections), std::end(kSections));
  for (const Leaf& leaf : kLeaves) keys.emplace_back(leaf.key);
  return keys;
}

// ---------------------------------------------------------------- the passes
// Events are ignored: only where documents start matters.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;
  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Where a second YAML document starts (Mark::null_mark() when there is none). Not
// YAML::LoadAll: yaml-cpp 0.7 yields empty documents forever, without consuming input, on text
// such as ", a" (found by fuzz_config), so at most two documents are parsed here.
YAML::Mark find_second_document(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  for (int i = 0; i < 2 && parser.HandleNextDocument(starts); ++i) {
  }
  return starts.marks.size() >= 2 ? starts.marks[1] : YAML::Mark::null_mark();
}

void read_file(Reader& r, const std::string& text, const std::string& base_dir, RunConfig& c) {
  Site top;
  top.base_dir = base_dir;
  if (text.size() > kMaxConfigBytes) {
    r.report(top, "",
             "the file has " + std::to_string(text.size()) + " bytes (more than " +
                 std::to_string(kMaxConfigBytes) + "); is this a config?");
    r.set_file_unreadable();
    return;
  }
  YAML::Node root;
  YAML::Mark second_document = YAML::Mark::null_mark();
  try {
    root = YAML::Load(text);
    second_document = find_second_document(text);
  } catch (const YAML::Exception& e) {
    Site at = top;
    at.line = e.mark.line >= 0 ? e.mark.line + 1 : 0;
    at.order = at.line;
    r.report(at, "", "YAML syntax error: " + printable(e.msg));
    r.set_file_unreadable();
    return;
  }
  if (second_document.line >= 0) {
    Site at = top;
    at.line = second_document.line + 1;
    at.order = at.line;
    r.report(at, "", "a config holds one YAML document; another starts here");
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) {
    r.report(r.file_site(root, base_dir), "",
             "the top level must be a map of sections (model, data, cluster, train, plan, "
             "checkpoint, output), got " +
                 describe(root));
    r.set_file_unreadable();
    return;
  }
  r.read_section(root, "", top, c);
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

std::string working_directory() {
  try {
    return fs::current_path().string();
  } catch (const fs::filesystem_error&) {
    return "";  // the directory was removed: keep paths relative
  }
}

void apply_set(Reader& r, const std::string& arg, std::size_t index, RunConfig& c) {
  Site site;
  site.group = 1;
  site.order = static_cast<std::int64_t>(index);
  // A --set path is relative to where the command runs; made absolute so the resolved config
  // printed at startup (and stored with checkpoints) does not depend on the working directory.
  site.base_dir = working_directory();
  const auto eq = arg.find('=');
  if (eq == std::string::npos) {
    r.report(site, trim(arg), "missing '=' (expected --set key=value)");
    return;
  }
  const std::string key = trim(arg.substr(0, eq));
  if (key.empty()) {
    r.report(site, arg, "missing the key before '=' (expected --set key=value)");
    return;
  }
  if (!is_section(key) && !find_leaf(key)) {
    r.report(site, key, "unknown key" + suggestion(key, known_keys()));
    return;
  }
  YAML::Node value;
  try {
    value = YAML::Load(arg.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    r.report(site, key, "the value is not valid YAML: " + printable(e.msg));
    return;
  }
  if (is_section(key) && value.IsNull()) {
    r.report(site, key, "expected a map of " + key + ".* keys, got null");
    return;
  }
  r.read_entry(key, value, site, c);
}

// Checks that involve several keys, once the file and every --set are in.
void check_whole(Reader& r, RunConfig& c) {
  // The default output.dir ("out") is where the command runs, like a --set path: outputs should
  // not land beside the config file unless the config says so.
  if (!r.origin("output.dir")) c.output_dir = Reader::resolve(working_directory(), c.output_dir);
  if (c.model_path.empty() && r.leaf_ok("model.path") && !r.file_unreadable()) {
    Site s;
    s.group = 2;
    r.report(s, "model.path", "missing (the model file is required)");
  }
  if (r.leaf_ok("train.optimizer.min_lr") && r.leaf_ok("train.optimizer.lr") &&
      c.optimizer.min_lr > c.optimizer.lr) {
    const auto at = r.origin("train.optimizer.min_lr");
    const auto lr_at = r.origin("train.optimizer.lr");
    Site s = at ? *at : lr_at ? *lr_at : Site{};
    r.report(s, at ? "train.optimizer.min_lr" : "train.optimizer.lr",
             "min_lr " + format_double(c.optimizer.min_lr) + " is greater than lr " +
                 format_double(c.optimizer.lr));
  }
  if (c.plan_method == "manual" && c.plan_stages.empty() && r.leaf_ok("plan.stages") &&
      r.leaf_ok("plan.method")) {
    const auto at = r.origin("plan.method");
    r.report(at ? *at : Site{}, "plan.method",
             "manual needs plan.stages (a non-empty list of stages)");
  }
}

// YAML double-quoted string. Control bytes become \xNN escapes; bytes that are not UTF-8 cannot
// be written in YAML at all and come out as the code point of the same number (parse_config
// rejects such strings, so only configs built in code can hold them).
std::string yaml_string(const std::string& s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const std::size_t n = utf8_length(s, i);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      i += 1;
    } else if (n == 0 || c < 0x20 || c == 0x7F) {
      out += hex_byte(c);
      i += 1;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out + "\"";
}

std::string yaml_bool(bool b) { return b ? "true" : "false"; }

}  // namespace

// ------------------------------------------------------------------ public functions
std::string RunConfig::resolved_metrics_path() const {
  if (!metrics_path.empty()) return metrics_path;
  return (fs::path(output_dir) / "metrics.jsonl").string();
}

RunConfig parse_config(const std::string& yaml_text, const std::string& source,
                       const std::string& base_dir, const std::vector<std::string>& sets) {
  RunConfig config;
  config.source = source;
  Reader reader(source);
  read_file(reader, yaml_text, base_dir, config);
  for (std::size_t i = 0; i < sets.size(); ++i) apply_set(reader, sets[i], i, config);
  check_whole(reader, config);
  if (!reader.ok()) throw InputError(reader.sorted_problems());
  return config;
}

RunConfig load_config(const std::string& path, const std::vector<std::string>& sets) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw InputError(path + ": is a directory, not a config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read the config file (" + std::strerror(errno) + ")");
  std::string text;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxConfigBytes) break;  // parse_config reports the size
  }
  fs::path base = fs::absolute(fs::path(path), ec).parent_path();
  if (ec) base = fs::path(path).parent_path();
  return parse_config(text, path, base.lexically_normal().string(), sets);
}

std::vector<std::string> check_train_requirements(const RunConfig& config) {
  const std::string where = config.source.empty() ? "<config>" : config.source;
  std::vector<std::string> problems;
  if (config.data_path.empty()) {
    problems.push_back(where + ": data.path: missing (train needs the training dataset)");
  }
  if (config.eval_every > 0 && config.val_path.empty()) {
    problems.push_back(where + ": train.eval_every: " + std::to_string(config.eval_every) +
                       " needs data.val_path (the validation dataset)");
  }
  return problems;
}

bool same_settings(const RunConfig& a, const RunConfig& b) {
  const auto& oa = a.optimizer;
  const auto& ob = b.optimizer;
  const bool optimizer_same = oa.kind == ob.kind && oa.lr == ob.lr && oa.beta1 == ob.beta1 &&
                              oa.beta2 == ob.beta2 && oa.eps == ob.eps &&
                              oa.weight_decay == ob.weight_decay && oa.momentum == ob.momentum &&
                              oa.no_decay == ob.no_decay && oa.schedule == ob.schedule &&
                              oa.warmup_steps == ob.warmup_steps && oa.min_lr == ob.min_lr &&
                              oa.clip_grad_norm == ob.clip_grad_norm;
  const auto stage_tuple = [](const StageSpec& s) {
    return std::tie(s.layer_begin, s.layer_end, s.submesh_hosts, s.submesh_devices, s.mesh0,
                    s.mesh1, s.recompute);
  };
  const bool stages_same =
      a.plan_stages.size() == b.plan_stages.size() &&
      std::equal(
          a.plan_stages.begin(), a.plan_stages.end(), b.plan_stages.begin(),
          [&](const StageSpec& x, const StageSpec& y) { return stage_tuple(x) == stage_tuple(y); });
  return optimizer_same && stages_same && a.model_path == b.model_path &&
         a.data_path == b.data_path && a.val_path == b.val_path &&
         a.cluster_preset == b.cluster_preset && a.cluster_hosts == b.cluster_hosts &&
         a.cluster_devices_per_host == b.cluster_devices_per_host && a.backend == b.backend &&
         a.steps == b.steps && a.global_batch == b.global_batch &&
         a.micro_batches == b.micro_batches && a.dtype == b.dtype &&
         a.master_dtype == b.master_dtype && a.seed == b.seed && a.shuffle == b.shuffle &&
         a.eval_every == b.eval_every && a.log_every == b.log_every &&
         a.plan_method == b.plan_method && a.plan_dp == b.plan_dp && a.plan_tp == b.plan_tp &&
         a.plan_pp == b.plan_pp && a.plan_schedule == b.plan_schedule &&
         a.plan_recompute == b.plan_recompute && a.plan_solver == b.plan_solver &&
         a.plan_ilp_time_limit_s == b.plan_ilp_time_limit_s &&
         a.checkpoint_dir == b.checkpoint_dir &&
         a.checkpoint_every_steps == b.checkpoint_every_steps &&
         a.checkpoint_keep == b.checkpoint_keep && a.checkpoint_resume == b.checkpoint_resume &&
         a.output_dir == b.output_dir && a.metrics_path == b.metrics_path &&
         a.save_model == b.save_model && a.dump_gradients_step == b.dump_gradients_step;
}

std::string config_to_yaml(const RunConfig& c) {
  const auto& o = c.optimizer;
  std::ostringstream y;
  if (!c.source.empty()) y << "# Strata run config, resolved from " << printable(c.source) << "\n";
  y << "model:\n"
    << "  path: " << yaml_string(c.model_path) << "\n"
    << "data:\n"
    << "  path: " << yaml_string(c.data_path) << "\n"
    << "  val_path: " << yaml_string(c.val_path) << "\n"
    << "cluster:\n"
    << "  preset: " << yaml_string(c.cluster_preset) << "\n"
    << "  hosts: " << c.cluster_hosts << "\n"
    << "  devices_per_host: " << c.cluster_devices_per_host << "\n"
    << "  backend: " << yaml_string(c.backend) << "\n"
    << "train:\n"
    << "  steps: " << c.steps << "\n"
    << "  global_batch: " << c.global_batch << "\n"
    << "  micro_batches: " << (c.micro_batches == 0 ? "auto" : std::to_string(c.micro_batches))
    << "\n"
    << "  dtype: " << yaml_string(c.dtype) << "\n"
    << "  master_dtype: " << yaml_string(c.master_dtype) << "\n"
    << "  seed: " << c.seed << "\n"
    << "  shuffle: " << yaml_bool(c.shuffle) << "\n"
    << "  log_every: " << c.log_every << "\n"
    << "  eval_every: " << c.eval_every << "\n"
    << "  clip_grad_norm: " << format_double(o.clip_grad_norm) << "\n"
    << "  optimizer:\n"
    << "    kind: " << yaml_string(o.kind) << "\n"
    << "    lr: " << format_double(o.lr) << "\n"
    << "    betas: [" << format_double(o.beta1) << ", " << format_double(o.beta2) << "]\n"
    << "    eps: " << format_double(o.eps) << "\n"
    << "    weight_decay: " << format_double(o.weight_decay) << "\n"
    << "    momentum: " << format_double(o.momentum) << "\n"
    << "    no_decay: [";
  for (std::size_t i = 0; i < o.no_decay.size(); ++i) {
    y << (i ? ", " : "") << yaml_string(o.no_decay[i]);
  }
  y << "]\n"
    << "    schedule: " << yaml_string(o.schedule) << "\n"
    << "    warmup_steps: " << o.warmup_steps << "\n"
    << "    min_lr: " << format_double(o.min_lr) << "\n"
    << "plan:\n"
    << "  method: " << yaml_string(c.plan_method) << "\n"
    << "  dp: " << c.plan_dp << "\n"
    << "  tp: " << c.plan_tp << "\n"
    << "  pp: " << c.plan_pp << "\n"
    << "  stages:" << (c.plan_stages.empty() ? " []" : "") << "\n";
  for (const auto& s : c.plan_stages) {
    y << "    - {layers: [" << s.layer_begin << ", " << s.layer_end << "], submesh: ["
      << s.submesh_hosts << ", " << s.submesh_devices << "], logical_mesh: [" << s.mesh0 << ", "
      << s.mesh1 << "], recompute: " << yaml_bool(s.recompute) << "}\n";
  }
  y << "  schedule: " << yaml_string(c.plan_schedule) << "\n"
    << "  recompute: " << yaml_string(c.plan_recompute) << "\n"
    << "  solver: " << yaml_string(c.plan_solver) << "\n"
    << "  ilp_time_limit_s: " << format_double(c.plan_ilp_time_limit_s) << "\n"
    << "checkpoint:\n"
    << "  dir: " << yaml_string(c.checkpoint_dir) << "\n"
    << "  every_steps: " << c.checkpoint_every_steps << "\n"
    << "  keep: " << c.checkpoint_keep << "\n"
    << "  resume: " << yaml_string(c.checkpoint_resume) << "\n"
    << "output:\n"
    << "  dir: " << yaml_string(c.output_dir) << "\n"
    << "  metrics: " << yaml_string(c.metrics_path) << "\n"
    << "  save_model: " << yaml_bool(c.save_model) << "\n"
    << "  dump_gradients_step: " << c.dump_gradients_step << "\n";
  return y.str();
}

}  // namespace strata::app
