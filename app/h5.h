// HDF5 helpers shared by Strata's files (model, dataset, checkpoint): move-only RAII owners for
// hid_t, typed scalar attributes, whole-dataset and hyperslab reads and writes, group listing, and
// the open-and-check / write-to-temp-and-rename steps every Strata file goes through.
// Serial HDF5 only (TOOLCHAIN.md 1). HDF5's own error printing is silenced; every failure throws
// h5::Error naming the file and object. HDF5 1.10 can crash on crafted files (TOOLCHAIN.md 7.2):
// these helpers reject malformed content, not malicious content. Destructors never throw.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "solver/ir/dtype.h"
#include "solver/ir/tensor.h"

namespace strata::app::h5 {

// Any HDF5 failure: one line, "<file>: <object>: <problem> (HDF5: <innermost library message>)".
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Owner of one hid_t closed by `Close`. Move-only; `get()` exposes the raw id.
template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { (void)close(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      (void)close();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now; false when HDF5 reports a failure (for a file: the final flush failed).
  [[nodiscard]] bool close() noexcept {
    if (id_ < 0) return true;
    const herr_t status = Close(id_);
    id_ = H5I_INVALID_HID;
    return status >= 0;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using File = Handle<H5Fclose>;
using Group = Handle<H5Gclose>;
using Dataset = Handle<H5Dclose>;
using Dataspace = Handle<H5Sclose>;
using Datatype = Handle<H5Tclose>;
using Attribute = Handle<H5Aclose>;
using PropList = Handle<H5Pclose>;
using Object = Handle<H5Oclose>;  // a group, dataset or named datatype opened by H5Oopen

// Turns off HDF5's automatic error-stack printing for this thread. Every helper below calls it,
// so callers that use only these helpers never need to.
void silence_errors();

// ---------------------------------------------------------------- files
// True when `path` starts with the HDF5 signature (says nothing about the rest of the file).
bool is_hdf5(const std::string& path);
// Creates (truncating) `path`. Closing the returned File closes every object still open in it.
File create_file(const std::string& path);
// Opens an existing file read-only, or read-write when `writable`.
File open_file(const std::string& path, bool writable = false);
// Name of the file that holds `obj`, as it was opened ("?" when unknown).
std::string file_name(hid_t obj);

// Writes `path` atomically: creates `path + ".tmp"`, calls `fill(file)`, closes it (checking the
// final flush), fsyncs and renames it over `path`. On any exception the temporary is removed and
// the exception propagates; I/O failures throw h5::Error naming the path.
void write_atomically(const std::string& path, const std::function<void(hid_t file)>& fill);

// ---------------------------------------------------------------- groups and links
enum class ObjectKind : std::uint8_t { kGroup, kDataset, kOther };
struct Member {
  std::string name;                      // link name inside the group (may contain dots)
  ObjectKind kind = ObjectKind::kOther;  // soft and external links are kOther (never followed)
};

// True when every component of `path` (relative to `loc`, or absolute) exists.
bool exists(hid_t loc, const std::string& path);
// Creates `path`, and any missing intermediate groups.
Group create_group(hid_t loc, const std::string& path);
Group open_group(hid_t loc, const std::string& path);
Dataset open_dataset(hid_t loc, const std::string& path);
// Members of group `path` in name order.
std::vector<Member> list_members(hid_t loc, const std::string& path);
// Names of the datasets directly in group `path`, in name order.
std::vector<std::string> list_datasets(hid_t loc, const std::string& path);
// Unlinks `path` (the space is not reclaimed inside the file).
void remove(hid_t loc, const std::string& path);

// ---------------------------------------------------------------- attributes
// Scalar attributes of any object (a file id means its root group). Writes replace an existing
// attribute of the same name. Strings are stored as variable-length UTF-8 (h5py reads them as
// str); reads accept fixed-length strings too. Integer reads accept any integer type; double
// reads accept integers and floats. A missing attribute or another type class throws h5::Error.
bool has_attr(hid_t obj, const std::string& name);
void write_attr_string(hid_t obj, const std::string& name, const std::string& value);
void write_attr_int(hid_t obj, const std::string& name, std::int64_t value);    // i64 LE
void write_attr_uint(hid_t obj, const std::string& name, std::uint64_t value);  // u64 LE
void write_attr_double(hid_t obj, const std::string& name, double value);       // f64 LE
std::string read_attr_string(hid_t obj, const std::string& name);
std::int64_t read_attr_int(hid_t obj, const std::string& name);
std::uint64_t read_attr_uint(hid_t obj, const std::string& name);  // negative values throw
double read_attr_double(hid_t obj, const std::string& name);

// ---------------------------------------------------------------- datasets
// A scalar variable-length UTF-8 string dataset (no 64 KiB limit, unlike attributes). The read
// accepts scalar or one-element datasets of variable- or fixed-length strings.
void write_string_dataset(hid_t loc, const std::string& path, const std::string& text);
std::string read_string_dataset(hid_t loc, const std::string& path);

enum class TypeClass : std::uint8_t { kInteger, kFloat, kString, kOther };
struct DatasetInfo {
  solver::Shape shape;  // {} for a scalar dataset
  TypeClass type_class = TypeClass::kOther;
  std::size_t type_bytes = 0;  // size of one element in the file
  bool is_signed = true;       // integers only
};
DatasetInfo dataset_info(hid_t loc, const std::string& path);
// "f32", "f64", "i32", "u16", ... , "string", "other": for messages.
std::string type_name(const DatasetInfo& info);
// The IR dtype a numeric dataset holds (f32, f64 or i32); throws h5::Error for any other type.
solver::DType dataset_dtype(hid_t loc, const std::string& path);

// Whole-dataset writes with the given shape (contiguous layout, little-endian file types).
// `data` holds num_elements(shape) values. Missing intermediate groups are created, so
// "optimizer/<name>/m" works; an existing dataset at `path` is an error.
void write_dataset(hid_t loc, const std::string& path, const solver::Shape& shape,
                   const float* data);
void write_dataset(hid_t loc, const std::string& path, const solver::Shape& shape,
                   const double* data);
void write_dataset(hid_t loc, const std::string& path, const solver::Shape& shape,
                   const std::int32_t* data);
// Writes double values stored as `file_dtype` (kF32: each value rounded to float; kF64; kI32:
// values must be integral and in range).
void write_values(hid_t loc, const std::string& path, const solver::Shape& shape,
                  const std::vector<double>& values, solver::DType file_dtype);

// Whole-dataset reads, converted by HDF5 from the file type. f32/f64 reads require a float
// dataset, i32 reads an integer dataset; a value outside the memory type's range (an int64 of
// 2^40, an f64 of 1e300 read as f32) throws rather than being clipped. `shape` (optional)
// receives the dataset shape.
std::vector<float> read_f32(hid_t loc, const std::string& path, solver::Shape* shape = nullptr);
std::vector<double> read_f64(hid_t loc, const std::string& path, solver::Shape* shape = nullptr);
std::vector<std::int32_t> read_i32(hid_t loc, const std::string& path,
                                   solver::Shape* shape = nullptr);
// Reads the box [start, start + count) of a numeric dataset (row-major), for loading shards.
std::vector<double> read_f64_slab(hid_t loc, const std::string& path, const solver::Shape& start,
                                  const solver::Shape& count);
std::vector<std::int32_t> read_i32_slab(hid_t loc, const std::string& path,
                                        const solver::Shape& start, const solver::Shape& count);

// ---------------------------------------------------------------- Strata files
// These throw InputError (app/errors.h) with one line "<path>: <problem>".
struct StrataFile {
  File file;
  std::string format;        // root attribute `format`, e.g. "strata-model"
  std::int64_t version = 0;  // root attribute `version`
};
// Opens `path` read-only as a Strata file. Rejects a missing path, a directory, an empty or
// non-HDF5 file, a truncated or unreadable HDF5 file, and a file without a string root attribute
// `format` starting with "strata-". `expected` (when not empty) must equal the format ("x.h5: is
// a strata-dataset file, expected a strata-model file"), and `version` must be in
// [1, max_version]; with `expected` empty the version is not checked.
StrataFile open_strata_file(const std::string& path, const std::string& expected = "",
                            std::int64_t max_version = 0);

// Throws InputError "<path>: <what> need(s) N GiB of host memory but this host has M GiB" when
// `bytes` exceeds physical memory (sysconf(_SC_PHYS_PAGES) * page size). Call before allocating.
void check_host_memory(const std::string& path, const std::string& what, std::uint64_t bytes);

}  // namespace strata::app::h5
