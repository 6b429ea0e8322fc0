// HDF5 helpers (h5.h). Every HDF5 call is checked; failures become h5::Error with the file, the
// object and the innermost message of HDF5's error stack, which is then cleared. File-level checks
// on user inputs (open_strata_file, check_host_memory) throw InputError instead.
#include "app/h5.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>

#include "app/errors.h"

namespace strata::app::h5 {
namespace {

namespace fs = std::filesystem;

herr_t keep_innermost(unsigned n, const H5E_error2_t* err, void* data) {
  // Walking upward, entry 0 is where HDF5 detected the problem: the most specific message.
  if (n == 0 && err != nullptr && err->desc != nullptr)
    *static_cast<std::string*>(data) = err->desc;
  return 0;
}

// The innermost message on this thread's HDF5 error stack (one line); clears the stack.
std::string take_hdf5_detail() {
  std::string desc;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, &desc);
  H5Eclear2(H5E_DEFAULT);
  for (char& c : desc) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return desc;
}

std::string with_detail(std::string message) {
  const std::string detail = take_hdf5_detail();
  if (!detail.empty()) message += " (HDF5: " + detail + ")";
  return message;
}

// Absolute name of `name` relative to `loc` ("/params/x"); `name` empty means `loc` itself.
std::string object_name(hid_t loc, const std::string& name) {
  if (!name.empty() && name.front() == '/') return name;
  std::string base = "/";
  const ssize_t n = H5Iget_name(loc, nullptr, 0);
  if (n > 0) {
    base.assign(static_cast<std::size_t>(n) + 1, '\0');
    H5Iget_name(loc, base.data(), base.size());
    base.resize(static_cast<std::size_t>(n));
  }
  if (name.empty()) return base;
  return base == "/" ? "/" + name : base + "/" + name;
}

[[noreturn]] void fail(hid_t loc, const std::string& name, const std::string& what) {
  std::string detail = take_hdf5_detail();  // before any call below can push more errors
  std::string message = file_name(loc) + ": " + object_name(loc, name) + ": " + what;
  if (!detail.empty()) message += " (HDF5: " + detail + ")";
  throw Error(message);
}

// Attribute failures: "x.h5: root attribute 'seed' is missing", "x.h5: /tokens: attribute ...".
[[noreturn]] void fail_attr(hid_t obj, const std::string& attr, const std::string& what) {
  std::string detail = take_hdf5_detail();
  const std::string owner = object_name(obj, "");
  std::string message = file_name(obj) + ": " +
                        (owner == "/" ? "root attribute '" : owner + ": attribute '") + attr +
                        "' " + what;
  if (!detail.empty()) message += " (HDF5: " + detail + ")";
  throw Error(message);
}

[[noreturn]] void fail_path(const std::string& path, const std::string& what) {
  throw Error(with_detail(path + ": " + what));
}

std::uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return std::numeric_limits<std::uint64_t>::max();
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

std::string gib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
  return text;
}

PropList file_access(bool strong_close) {
  PropList fapl(H5Pcreate(H5P_FILE_ACCESS));
  if (!fapl.valid()) throw Error(with_detail("HDF5: cannot create a file access property list"));
  // Strong close for files we write: H5Fclose then really closes the file, so its status is the
  // final flush and the rename that follows sees a complete file.
  if (strong_close) H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
#if H5_VERSION_GE(1, 10, 7)
  // Lustre and NFS mounts often have flock disabled, and HDF5 would then refuse every open.
  H5Pset_file_locking(fapl.get(), true, true);
#endif
  return fapl;
}

PropList link_create_with_parents() {
  PropList lcpl(H5Pcreate(H5P_LINK_CREATE));
  if (!lcpl.valid() || H5Pset_create_intermediate_group(lcpl.get(), 1) < 0) {
    throw Error(with_detail("HDF5: cannot create a link creation property list"));
  }
  return lcpl;
}

Datatype vlen_string_type(H5T_cset_t cset) {
  Datatype type(H5Tcopy(H5T_C_S1));
  if (!type.valid() || H5Tset_size(type.get(), H5T_VARIABLE) < 0 ||
      H5Tset_cset(type.get(), cset) < 0) {
    throw Error(with_detail("HDF5: cannot create a variable-length string type"));
  }
  return type;
}

Dataspace make_space(const solver::Shape& shape, hid_t loc, const std::string& name) {
  if (shape.empty()) return Dataspace(H5Screate(H5S_SCALAR));
  std::vector<hsize_t> dims;
  for (const std::int64_t d : shape) {
    if (d < 0) fail(loc, name, "negative dim in shape " + solver::shape_to_string(shape));
    dims.push_back(static_cast<hsize_t>(d));
  }
  Dataspace space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  if (!space.valid())
    fail(loc, name, "cannot create a dataspace of shape " + solver::shape_to_string(shape));
  return space;
}

TypeClass type_class_of(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return TypeClass::kInteger;
    case H5T_FLOAT:
      return TypeClass::kFloat;
    case H5T_STRING:
      return TypeClass::kString;
    default:
      return TypeClass::kOther;
  }
}

// Shape of a simple or scalar dataspace; throws for a null dataspace.
solver::Shape shape_of(hid_t space, hid_t loc, const std::string& name) {
  const H5S_class_t cls = H5Sget_simple_extent_type(space);
  if (cls == H5S_SCALAR) return {};
  if (cls != H5S_SIMPLE) fail(loc, name, "has no data (null dataspace)");
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) fail(loc, name, "cannot read the dataspace");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0) {
    fail(loc, name, "cannot read the dataspace");
  }
  solver::Shape shape;
  for (const hsize_t d : dims) {
    if (d > static_cast<hsize_t>(std::numeric_limits<std::int64_t>::max())) {
      fail(loc, name, "dimension too large");
    }
    shape.push_back(static_cast<std::int64_t>(d));
  }
  return shape;
}

// Element count of `shape`, refusing products that overflow or exceed host memory at
// `element_bytes` each (a crafted file could otherwise ask for an absurd allocation).
std::size_t checked_count(const solver::Shape& shape, std::size_t element_bytes, hid_t loc,
                          const std::string& name) {
  std::uint64_t count = 1;
  for (const std::int64_t d : shape) {
    const auto ud = static_cast<std::uint64_t>(d);
    if (ud != 0 && count > std::numeric_limits<std::uint64_t>::max() / ud) {
      fail(loc, name, "shape " + solver::shape_to_string(shape) + " overflows");
    }
    count *= ud;
  }
  if (element_bytes != 0 && count > physical_memory_bytes() / element_bytes) {
    fail(loc, name,
         "shape " + solver::shape_to_string(shape) + " needs more than this host's " +
             gib(physical_memory_bytes()) + " of memory");
  }
  return static_cast<std::size_t>(count);
}

// Reads one string from a scalar or one-element attribute or dataset. `read` performs the
// H5Aread/H5Dread with the given memory type into the buffer.
// Reads one string from a scalar or one-element attribute or dataset. `read` performs the
// H5Aread/H5Dread with the given memory type into the buffer; `error` throws.
std::string read_one_string(hid_t file_type, hid_t space,
                            const std::function<void(const std::string&)>& error,
                            const std::function<herr_t(hid_t, void*)>& read) {
  if (H5Tget_class(file_type) != H5T_STRING) error("is not a string");
  if (H5Sget_simple_extent_npoints(space) != 1) error("is not a single string");
  const H5T_cset_t cset = H5Tget_cset(file_type);
  if (H5Tis_variable_str(file_type) > 0) {
    Datatype mem = vlen_string_type(cset);
    char* text = nullptr;
    if (read(mem.get(), &text) < 0) error("cannot read the string");
    std::string out = text != nullptr ? text : "";
    H5free_memory(text);
    return out;
  }
  const std::size_t size = H5Tget_size(file_type);
  if (size == 0) error("has an invalid string size");
  if (size > (std::size_t{1} << 30)) error("has an absurd string size " + std::to_string(size));
  Datatype mem(H5Tcopy(file_type));
  std::vector<char> buffer(size, '\0');
  if (!mem.valid() || read(mem.get(), buffer.data()) < 0) error("cannot read the string");
  std::string out(buffer.data(), strnlen(buffer.data(), size));
  if (H5Tget_strpad(file_type) == H5T_STR_SPACEPAD) {
    out.erase(out.find_last_not_of(' ') + 1);
  }
  return out;
}

Attribute open_attr(hid_t obj, const std::string& name) {
  silence_errors();
  const htri_t present = H5Aexists(obj, name.c_str());
  if (present < 0) fail_attr(obj, name, "cannot be looked up");
  if (present == 0) fail_attr(obj, name, "is missing");
  Attribute attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
  if (!attr.valid()) fail_attr(obj, name, "cannot be opened");
  return attr;
}

void write_attr(hid_t obj, const std::string& name, hid_t file_type, hid_t mem_type,
                const void* value) {
  silence_errors();
  const htri_t present = H5Aexists(obj, name.c_str());
  if (present < 0) fail_attr(obj, name, "cannot be looked up");
  if (present > 0 && H5Adelete(obj, name.c_str()) < 0) {
    fail_attr(obj, name, "cannot be replaced");
  }
  Dataspace space(H5Screate(H5S_SCALAR));
  Attribute attr(H5Acreate2(obj, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!space.valid() || !attr.valid()) fail_attr(obj, name, "cannot be created");
  if (H5Awrite(attr.get(), mem_type, value) < 0) fail_attr(obj, name, "cannot be written");
}

// Type class and signedness of a numeric attribute; throws unless its class is one of `allowed`.
struct NumericAttr {
  Attribute attr;
  TypeClass type_class = TypeClass::kOther;
  bool is_signed = true;
};
NumericAttr open_numeric_attr(hid_t obj, const std::string& name, bool allow_float,
                              const char* expected) {
  NumericAttr out{open_attr(obj, name)};
  Datatype type(H5Aget_type(out.attr.get()));
  Dataspace space(H5Aget_space(out.attr.get()));
  if (!type.valid() || !space.valid()) fail_attr(obj, name, "cannot be read");
  out.type_class = type_class_of(type.get());
  if (!(out.type_class == TypeClass::kInteger ||
        (allow_float && out.type_class == TypeClass::kFloat))) {
    fail_attr(obj, name, std::string("is not ") + expected);
  }
  if (H5Sget_simple_extent_npoints(space.get()) != 1) {
    fail_attr(obj, name, "is not a single value");
  }
  out.is_signed = out.type_class != TypeClass::kInteger || H5Tget_sign(type.get()) != H5T_SGN_NONE;
  return out;
}

template <class T>
void write_typed(hid_t loc, const std::string& path, const solver::Shape& shape, const T* data,
                 hid_t file_type, hid_t mem_type) {
  silence_errors();
  const std::size_t count = checked_count(shape, 0, loc, path);
  Dataspace space = make_space(shape, loc, path);
  PropList lcpl = link_create_with_parents();
  Dataset dataset(
      H5Dcreate2(loc, path.c_str(), file_type, space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!dataset.valid()) fail(loc, path, "cannot create dataset");
  if (count > 0 && H5Dwrite(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    fail(loc, path, "cannot write dataset");
  }
}

struct OpenedDataset {
  Dataset dataset;
  DatasetInfo info;
};
OpenedDataset open_with_info(hid_t loc, const std::string& path) {
  OpenedDataset out{open_dataset(loc, path), {}};
  Dataspace space(H5Dget_space(out.dataset.get()));
  Datatype type(H5Dget_type(out.dataset.get()));
  if (!space.valid() || !type.valid()) fail(loc, path, "cannot read the dataset's type or shape");
  out.info.shape = shape_of(space.get(), loc, path);
  out.info.type_class = type_class_of(type.get());
  out.info.type_bytes = H5Tget_size(type.get());
  out.info.is_signed =
      out.info.type_class != TypeClass::kInteger || H5Tget_sign(type.get()) != H5T_SGN_NONE;
  return out;
}

H5T_conv_ret_t abort_on_overflow(H5T_conv_except_t kind, hid_t, hid_t, void*, void*, void* data) {
  if (kind != H5T_CONV_EXCEPT_RANGE_HI && kind != H5T_CONV_EXCEPT_RANGE_LOW)
    return H5T_CONV_UNHANDLED;
  *static_cast<bool*>(data) = true;
  return H5T_CONV_ABORT;
}

// Transfer properties that make HDF5 fail a read instead of clipping values that do not fit the
// memory type (an int64 token of 2^40 must not become INT32_MAX); `*overflow` records why.
PropList strict_transfer(bool* overflow) {
  PropList dxpl(H5Pcreate(H5P_DATASET_XFER));
  if (!dxpl.valid() || H5Pset_type_conv_cb(dxpl.get(), abort_on_overflow, overflow) < 0) {
    throw Error(with_detail("HDF5: cannot create a dataset transfer property list"));
  }
  return dxpl;
}

template <class T>
std::vector<T> read_whole(hid_t loc, const std::string& path, solver::Shape* shape, hid_t mem_type,
                          TypeClass needed, const char* needed_name) {
  OpenedDataset opened = open_with_info(loc, path);
  if (opened.info.type_class != needed) {
    fail(loc, path, "holds " + type_name(opened.info) + ", expected " + needed_name);
  }
  const std::size_t count = checked_count(opened.info.shape, sizeof(T), loc, path);
  std::vector<T> values(count);
  bool overflow = false;
  PropList dxpl = strict_transfer(&overflow);
  if (count > 0 &&
      H5Dread(opened.dataset.get(), mem_type, H5S_ALL, H5S_ALL, dxpl.get(), values.data()) < 0) {
    if (overflow) {
      take_hdf5_detail();
      fail(loc, path, "holds a value outside the range of " + std::string(needed_name));
    }
    fail(loc, path, "cannot read dataset");
  }
  if (shape != nullptr) *shape = opened.info.shape;
  return values;
}

template <class T>
std::vector<T> read_slab(hid_t loc, const std::string& path, const solver::Shape& start,
                         const solver::Shape& count, hid_t mem_type, TypeClass needed,
                         const char* needed_name) {
  OpenedDataset opened = open_with_info(loc, path);
  if (opened.info.type_class != needed) {
    fail(loc, path, "holds " + type_name(opened.info) + ", expected " + needed_name);
  }
  const solver::Shape& dims = opened.info.shape;
  bool inside = start.size() == dims.size() && count.size() == dims.size();
  for (std::size_t i = 0; inside && i < dims.size(); ++i) {
    inside =
        start[i] >= 0 && count[i] >= 0 && start[i] <= dims[i] && count[i] <= dims[i] - start[i];
  }
  if (!inside) {
    fail(loc, path,
         "slab at " + solver::shape_to_string(start) + " of " + solver::shape_to_string(count) +
             " is outside shape " + solver::shape_to_string(dims));
  }
  const std::size_t n = checked_count(count, sizeof(T), loc, path);
  std::vector<T> values(n);
  if (n == 0) return values;
  bool overflow = false;
  PropList dxpl = strict_transfer(&overflow);
  if (dims.empty()) {  // scalar: the only slab is the whole value
    if (H5Dread(opened.dataset.get(), mem_type, H5S_ALL, H5S_ALL, dxpl.get(), values.data()) < 0) {
      fail(loc, path, "cannot read dataset");
    }
    return values;
  }
  std::vector<hsize_t> h_start(start.begin(), start.end()), h_count(count.begin(), count.end());
  Dataspace file_space(H5Dget_space(opened.dataset.get()));
  Dataspace mem_space(H5Screate_simple(static_cast<int>(h_count.size()), h_count.data(), nullptr));
  if (!file_space.valid() || !mem_space.valid() ||
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, h_start.data(), nullptr, h_count.data(),
                          nullptr) < 0 ||
      H5Dread(opened.dataset.get(), mem_type, mem_space.get(), file_space.get(), dxpl.get(),
              values.data()) < 0) {
    if (overflow) {
      take_hdf5_detail();
      fail(loc, path, "holds a value outside the range of " + std::string(needed_name));
    }
    fail(loc, path, "cannot read slab");
  }
  return values;
}

herr_t collect_member(hid_t group, const char* name, const H5L_info_t* info, void* data) {
  Member member{name, ObjectKind::kOther};
  if (info->type == H5L_TYPE_HARD) {  // soft and external links are never followed
    Object object(H5Oopen(group, name, H5P_DEFAULT));
    if (object.valid()) {
      const H5I_type_t type = H5Iget_type(object.get());
      if (type == H5I_GROUP) member.kind = ObjectKind::kGroup;
      if (type == H5I_DATASET) member.kind = ObjectKind::kDataset;
    }
  }
  static_cast<std::vector<Member>*>(data)->push_back(std::move(member));
  return 0;
}

// Best effort: push the renamed file's data and directory entry to stable storage, so a crash
// right after a checkpoint does not leave an empty file under the final name.
void sync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

// ---------------------------------------------------------------- files

bool is_hdf5(const std::string& path) {
  silence_errors();
  const htri_t result = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  return result > 0;
}

File create_file(const std::string& path) {
  silence_errors();
  PropList fapl = file_access(true);
  File file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!file.valid()) fail_path(path, "cannot create HDF5 file");
  return file;
}

File open_file(const std::string& path, bool writable) {
  silence_errors();
  PropList fapl = file_access(false);
  File file(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl.get()));
  if (!file.valid()) fail_path(path, "cannot open HDF5 file");
  return file;
}

std::string file_name(hid_t obj) {
  const ssize_t n = H5Fget_name(obj, nullptr, 0);
  if (n < 0) {
    H5Eclear2(H5E_DEFAULT);
    return "?";
  }
  std::string name(static_cast<std::size_t>(n) + 1, '\0');
  H5Fget_name(obj, name.data(), name.size());
  name.resize(static_cast<std::size_t>(n));
  return name;
}

void write_atomically(const std::string& path, const std::function<void(hid_t file)>& fill) {
  const std::string tmp = path + ".tmp";
  try {
    {
      File file = create_file(tmp);
      fill(file.get());
      if (!file.close()) fail_path(tmp, "cannot finish writing (flush or close failed)");
    }
    sync_path(tmp, O_RDONLY);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw Error(path + ": cannot rename " + tmp + " to it: " + ec.message());
    const fs::path parent = fs::path(path).parent_path();
    sync_path(parent.empty() ? "." : parent.string(), O_RDONLY | O_DIRECTORY);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);  // never leave a partial file behind; the original error matters more
    throw;
  }
}

// ---------------------------------------------------------------- groups and links

bool exists(hid_t loc, const std::string& path) {
  silence_errors();
  // H5Lexists needs every parent to exist, so test the prefixes one by one.
  std::string prefix = !path.empty() && path.front() == '/' ? "/" : "";
  std::size_t begin = 0;
  while (begin <= path.size()) {
    std::size_t end = path.find('/', begin);
    if (end == std::string::npos) end = path.size();
    if (end > begin) {
      if (!prefix.empty() && prefix.back() != '/') prefix += '/';
      prefix += path.substr(begin, end - begin);
      if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
    }
    begin = end + 1;
  }
  return true;
}

Group create_group(hid_t loc, const std::string& path) {
  silence_errors();
  PropList lcpl = link_create_with_parents();
  Group group(H5Gcreate2(loc, path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!group.valid()) fail(loc, path, "cannot create group");
  return group;
}

Group open_group(hid_t loc, const std::string& path) {
  silence_errors();
  if (!exists(loc, path)) fail(loc, path, "group is missing");
  Group group(H5Gopen2(loc, path.c_str(), H5P_DEFAULT));
  if (!group.valid()) fail(loc, path, "is not a group");
  return group;
}

Dataset open_dataset(hid_t loc, const std::string& path) {
  silence_errors();
  if (!exists(loc, path)) fail(loc, path, "dataset is missing");
  Dataset dataset(H5Dopen2(loc, path.c_str(), H5P_DEFAULT));
  if (!dataset.valid()) fail(loc, path, "is not a dataset");
  return dataset;
}

std::vector<Member> list_members(hid_t loc, const std::string& path) {
  Group group = open_group(loc, path);
  std::vector<Member> members;
  if (H5Literate(group.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_member, &members) < 0) {
    fail(loc, path, "cannot list group");
  }
  return members;
}

std::vector<std::string> list_datasets(hid_t loc, const std::string& path) {
  std::vector<std::string> names;
  for (const Member& member : list_members(loc, path)) {
    if (member.kind == ObjectKind::kDataset) names.push_back(member.name);
  }
  return names;
}

void remove(hid_t loc, const std::string& path) {
  silence_errors();
  if (H5Ldelete(loc, path.c_str(), H5P_DEFAULT) < 0) fail(loc, path, "cannot remove");
}

// ---------------------------------------------------------------- attributes

bool has_attr(hid_t obj, const std::string& name) {
  silence_errors();
  const htri_t present = H5Aexists(obj, name.c_str());
  if (present < 0) fail_attr(obj, name, "cannot be looked up");
  return present > 0;
}

void write_attr_string(hid_t obj, const std::string& name, const std::string& value) {
  Datatype type = vlen_string_type(H5T_CSET_UTF8);
  const char* text = value.c_str();
  write_attr(obj, name, type.get(), type.get(), &text);
}

void write_attr_int(hid_t obj, const std::string& name, std::int64_t value) {
  write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void write_attr_uint(hid_t obj, const std::string& name, std::uint64_t value) {
  write_attr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}

void write_attr_double(hid_t obj, const std::string& name, double value) {
  write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

std::string read_attr_string(hid_t obj, const std::string& name) {
  Attribute attr = open_attr(obj, name);
  Datatype type(H5Aget_type(attr.get()));
  Dataspace space(H5Aget_space(attr.get()));
  if (!type.valid() || !space.valid()) fail_attr(obj, name, "cannot be read");
  return read_one_string(
      type.get(), space.get(), [&](const std::string& what) { fail_attr(obj, name, what); },
      [&](hid_t mem, void* buffer) { return H5Aread(attr.get(), mem, buffer); });
}

std::int64_t read_attr_int(hid_t obj, const std::string& name) {
  NumericAttr a = open_numeric_attr(obj, name, false, "an integer");
  if (!a.is_signed) {
    std::uint64_t value = 0;
    if (H5Aread(a.attr.get(), H5T_NATIVE_UINT64, &value) < 0)
      fail_attr(obj, name, "cannot be read");
    if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail_attr(obj, name, "is out of the int64 range");
    }
    return static_cast<std::int64_t>(value);
  }
  std::int64_t value = 0;
  if (H5Aread(a.attr.get(), H5T_NATIVE_INT64, &value) < 0) fail_attr(obj, name, "cannot be read");
  return value;
}

std::uint64_t read_attr_uint(hid_t obj, const std::string& name) {
  NumericAttr a = open_numeric_attr(obj, name, false, "an integer");
  if (a.is_signed) {
    std::int64_t value = 0;
    if (H5Aread(a.attr.get(), H5T_NATIVE_INT64, &value) < 0) fail_attr(obj, name, "cannot be read");
    if (value < 0) fail_attr(obj, name, "is negative");
    return static_cast<std::uint64_t>(value);
  }
  std::uint64_t value = 0;
  if (H5Aread(a.attr.get(), H5T_NATIVE_UINT64, &value) < 0) fail_attr(obj, name, "cannot be read");
  return value;
}

double read_attr_double(hid_t obj, const std::string& name) {
  NumericAttr a = open_numeric_attr(obj, name, true, "a number");
  double value = 0.0;
  if (H5Aread(a.attr.get(), H5T_NATIVE_DOUBLE, &value) < 0) fail_attr(obj, name, "cannot be read");
  return value;
}

// ---------------------------------------------------------------- datasets

void write_string_dataset(hid_t loc, const std::string& path, const std::string& text) {
  silence_errors();
  Datatype type = vlen_string_type(H5T_CSET_UTF8);
  Dataspace space(H5Screate(H5S_SCALAR));
  PropList lcpl = link_create_with_parents();
  Dataset dataset(
      H5Dcreate2(loc, path.c_str(), type.get(), space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!dataset.valid()) fail(loc, path, "cannot create dataset");
  const char* data = text.c_str();
  if (H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &data) < 0) {
    fail(loc, path, "cannot write dataset");
  }
}

std::string read_string_dataset(hid_t loc, const std::string& path) {
  Dataset dataset = open_dataset(loc, path);
  Datatype type(H5Dget_type(dataset.get()));
  Dataspace space(H5Dget_space(dataset.get()));
  if (!type.valid() || !space.valid()) fail(loc, path, "cannot read the dataset's type or shape");
  return read_one_string(
      type.get(), space.get(), [&](const std::string& what) { fail(loc, path, what); },
      [&](hid_t mem, void* buffer) {
        return H5Dread(dataset.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer);
      });
}

DatasetInfo dataset_info(hid_t loc, const std::string& path) {
  return open_with_info(loc, path).info;
}

std::string type_name(const DatasetInfo& info) {
  const std::string bits = std::to_string(info.type_bytes * 8);
  switch (info.type_class) {
    case TypeClass::kFloat:
      return "f" + bits;
    case TypeClass::kInteger:
      return (info.is_signed ? "i" : "u") + bits;
    case TypeClass::kString:
      return "string";
    case TypeClass::kOther:
      break;
  }
  return "other";
}

solver::DType dataset_dtype(hid_t loc, const std::string& path) {
  const DatasetInfo info = dataset_info(loc, path);
  if (info.type_class == TypeClass::kFloat && info.type_bytes == 4) return solver::DType::kF32;
  if (info.type_class == TypeClass::kFloat && info.type_bytes == 8) return solver::DType::kF64;
  if (info.type_class == TypeClass::kInteger && info.is_signed && info.type_bytes == 4) {
    return solver::DType::kI32;
  }
  fail(loc, path, "holds " + type_name(info) + ", expected f32, f64 or i32");
}

void write_dataset(hid_t loc, const std::string& path, const solver::Shape& shape,
                   const float* data) {
  write_typed(loc, path, shape, data, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT);
}

void write_dataset(hid_t loc, const std::string& path, const solver::Shape& shape,
                   const double* data) {
  write_typed(loc, path, shape, data, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
}

void write_dataset(hid_t loc, const std::string& path, const solver::Shape& shape,
                   const std::int32_t* data) {
  write_typed(loc, path, shape, data, H5T_STD_I32LE, H5T_NATIVE_INT32);
}

void write_values(hid_t loc, const std::string& path, const solver::Shape& shape,
                  const std::vector<double>& values, solver::DType file_dtype) {
  const std::size_t count = checked_count(shape, 0, loc, path);
  if (values.size() != count) {
    fail(loc, path,
         std::to_string(values.size()) + " values for shape " + solver::shape_to_string(shape));
  }
  switch (file_dtype) {
    case solver::DType::kF64:
      write_dataset(loc, path, shape, values.data());
      return;
    case solver::DType::kF32: {
      // Rounded here rather than by HDF5, so the stored bits are exactly float(value).
      std::vector<float> narrow(values.begin(), values.end());
      write_dataset(loc, path, shape, narrow.data());
      return;
    }
    case solver::DType::kI32: {
      std::vector<std::int32_t> ints(count);
      for (std::size_t i = 0; i < count; ++i) {
        const double v = values[i];
        if (!(v >= std::numeric_limits<std::int32_t>::min() &&
              v <= std::numeric_limits<std::int32_t>::max() && std::trunc(v) == v)) {
          fail(loc, path, "value " + std::to_string(v) + " is not an int32");
        }
        ints[i] = static_cast<std::int32_t>(v);
      }
      write_dataset(loc, path, shape, ints.data());
      return;
    }
    default:
      fail(loc, path, std::string("cannot store dtype ") + solver::dtype_name(file_dtype));
  }
}

std::vector<float> read_f32(hid_t loc, const std::string& path, solver::Shape* shape) {
  return read_whole<float>(loc, path, shape, H5T_NATIVE_FLOAT, TypeClass::kFloat, "f32");
}

std::vector<double> read_f64(hid_t loc, const std::string& path, solver::Shape* shape) {
  return read_whole<double>(loc, path, shape, H5T_NATIVE_DOUBLE, TypeClass::kFloat, "f64");
}

std::vector<std::int32_t> read_i32(hid_t loc, const std::string& path, solver::Shape* shape) {
  return read_whole<std::int32_t>(loc, path, shape, H5T_NATIVE_INT32, TypeClass::kInteger, "i32");
}

std::vector<double> read_f64_slab(hid_t loc, const std::string& path, const solver::Shape& start,
                                  const solver::Shape& count) {
  return read_slab<double>(loc, path, start, count, H5T_NATIVE_DOUBLE, TypeClass::kFloat, "f64");
}

std::vector<std::int32_t> read_i32_slab(hid_t loc, const std::string& path,
                                        const solver::Shape& start, const solver::Shape& count) {
  return read_slab<std::int32_t>(loc, path, start, count, H5T_NATIVE_INT32, TypeClass::kInteger,
                                 "i32");
}

// ---------------------------------------------------------------- Strata files

StrataFile open_strata_file(const std::string& path, const std::string& expected,
                            std::int64_t max_version) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw InputError(path + ": no such file");
  if (fs::is_directory(status)) throw InputError(path + ": is a directory, expected an HDF5 file");
  {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw InputError(path + ": cannot read: " + std::strerror(errno));
    ::close(fd);
  }
  const std::uintmax_t size = fs::file_size(path, ec);
  if (!ec && size == 0) throw InputError(path + ": empty file, not an HDF5 file");
  if (!is_hdf5(path)) throw InputError(path + ": not an HDF5 file");

  StrataFile out;
  silence_errors();
  {
    PropList fapl = file_access(false);
    out.file = File(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
    // Taken before fapl's H5Pclose, which would clear the error stack.
    if (!out.file.valid()) {
      throw InputError(with_detail(path + ": cannot open HDF5 file (truncated or corrupt)"));
    }
  }
  const hid_t root = out.file.get();
  const std::string want = expected.empty() ? "" : ", expected a " + expected + " file";
  try {
    if (!has_attr(root, "format")) {
      throw InputError(path + ": not a Strata file (no root attribute 'format')" + want);
    }
    out.format = read_attr_string(root, "format");
  } catch (const Error&) {
    throw InputError(path + ": root attribute 'format' is not a string" + want);
  }
  if (out.format.rfind("strata-", 0) != 0) {
    throw InputError(path + ": not a Strata file (format '" + out.format + "')" + want);
  }
  if (expected.empty()) {
    if (has_attr(root, "version")) out.version = read_attr_int(root, "version");
    return out;
  }
  if (out.format != expected) {
    throw InputError(path + ": is a " + out.format + " file, expected a " + expected + " file");
  }
  try {
    if (!has_attr(root, "version"))
      throw InputError(path + ": root attribute 'version' is missing");
    out.version = read_attr_int(root, "version");
  } catch (const Error&) {
    throw InputError(path + ": root attribute 'version' is not an integer");
  }
  if (out.version < 1) {
    throw InputError(path + ": version " + std::to_string(out.version) +
                     " is invalid (must be >= 1)");
  }
  if (out.version > max_version) {
    throw InputError(path + ": " + expected + " version " + std::to_string(out.version) +
                     " is newer than this build supports (" + std::to_string(max_version) + ")");
  }
  return out;
}

void check_host_memory(const std::string& path, const std::string& what, std::uint64_t bytes) {
  const std::uint64_t available = physical_memory_bytes();
  if (bytes > available) {
    throw InputError(path + ": " + what + " need " + gib(bytes) + " (" + std::to_string(bytes) +
                     " bytes) of host memory but this host has " + gib(available));
  }
}

}  // namespace strata::app::h5
