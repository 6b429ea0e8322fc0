// Layouts: validity, the text notation, local shapes and per-device slices (layout.h).
// A dim split on both axes is axis-0-major: the device at (c0, c1) holds chunk c0 * d1 + c1.
// Pure C++.
#include "solver/intra/layout.h"

#include <stdexcept>

namespace strata::solver {
namespace {

// Parses "0", "1", "01" into an axis set; -1 when malformed.
int parse_axes(const std::string& text) {
  if (text == "0") return kAxis0;
  if (text == "1") return kAxis1;
  if (text == "01") return kBothAxes;
  return -1;
}

}  // namespace

std::int64_t axes_size(AxisSet axes, MeshShape mesh) {
  std::int64_t n = 1;
  if (axes & kAxis0) n *= mesh.d0;
  if (axes & kAxis1) n *= mesh.d1;
  return n;
}

void validate(const MeshShape& mesh) {
  if (mesh.d0 < 1 || mesh.d1 < 1) {
    throw std::invalid_argument("mesh shape (" + std::to_string(mesh.d0) + ", " +
                                std::to_string(mesh.d1) + "): both sizes must be >= 1");
  }
}

AxisSet Layout::used_axes() const {
  AxisSet used = partial;
  for (AxisSet d : dims) used = static_cast<AxisSet>(used | d);
  return used;
}

int Layout::dim_of_axis(int axis) const {
  for (std::size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] & axis_bit(axis)) return static_cast<int>(d);
  }
  return -1;
}

bool is_valid(const Layout& layout) {
  AxisSet used = layout.partial;
  if (layout.partial & ~kBothAxes) return false;
  for (AxisSet d : layout.dims) {
    if ((d & ~kBothAxes) || (d & used)) return false;
    used = static_cast<AxisSet>(used | d);
  }
  return true;
}

std::string to_string(AxisSet dim_axes) {
  switch (dim_axes) {
    case kNoAxes:
      return "R";
    case kAxis0:
      return "S0";
    case kAxis1:
      return "S1";
    case kBothAxes:
      return "S01";
    default:
      return "S?";
  }
}

std::string to_string(const Layout& layout) {
  std::string out;
  for (std::size_t d = 0; d < layout.dims.size(); ++d) {
    if (d > 0) out += ',';
    out += to_string(layout.dims[d]);
  }
  if (layout.dims.empty()) out = "-";
  if (layout.partial != kNoAxes) {
    out += "|P";
    if (layout.partial & kAxis0) out += '0';
    if (layout.partial & kAxis1) out += '1';
  }
  return out;
}

Layout parse_layout(const std::string& text) {
  const auto fail = [&](const std::string& why) {
    throw std::invalid_argument("layout '" + text + "': " + why);
  };
  Layout layout;
  std::string dims = text;
  const auto bar = text.find('|');
  if (bar != std::string::npos) {
    dims = text.substr(0, bar);
    const std::string p = text.substr(bar + 1);
    const int axes = p.size() > 1 && p[0] == 'P' ? parse_axes(p.substr(1)) : -1;
    if (axes < 0) fail("partial part '" + p + "' must be P0, P1 or P01");
    layout.partial = static_cast<AxisSet>(axes);
  }
  if (dims != "-") {
    std::size_t begin = 0;
    while (true) {
      const auto comma = dims.find(',', begin);
      const std::string tok =
          dims.substr(begin, comma == std::string::npos ? comma : comma - begin);
      if (tok == "R") {
        layout.dims.push_back(kNoAxes);
      } else {
        const int axes = tok.size() > 1 && tok[0] == 'S' ? parse_axes(tok.substr(1)) : -1;
        if (axes < 0)
          fail("dim " + std::to_string(layout.dims.size()) + " '" + tok +
               "' must be R, S0, S1 or S01");
        layout.dims.push_back(static_cast<AxisSet>(axes));
      }
      if (comma == std::string::npos) break;
      begin = comma + 1;
    }
  }
  if (!is_valid(layout)) fail("a mesh axis is used more than once");
  return layout;
}

Layout normalized(const Layout& layout, MeshShape mesh) {
  AxisSet keep = kNoAxes;
  if (mesh.d0 > 1) keep |= kAxis0;
  if (mesh.d1 > 1) keep |= kAxis1;
  Layout out = layout;
  for (AxisSet& d : out.dims) d = static_cast<AxisSet>(d & keep);
  out.partial = static_cast<AxisSet>(out.partial & keep);
  return out;
}

void check_layout(const Shape& global, const Layout& layout, MeshShape mesh,
                  const std::string& what) {
  validate(mesh);
  if (!is_valid(layout)) {
    throw std::invalid_argument(what + ": layout " + to_string(layout) +
                                " uses a mesh axis more than once");
  }
  if (layout.rank() != global.size()) {
    throw std::invalid_argument(
        what + ": layout " + to_string(layout) + " has rank " + std::to_string(layout.rank()) +
        " but the shape " + shape_to_string(global) + " has rank " + std::to_string(global.size()));
  }
  for (std::size_t d = 0; d < global.size(); ++d) {
    const std::int64_t n = axes_size(layout.dims[d], mesh);
    if (global[d] % n != 0) {
      throw std::invalid_argument(what + ": dim " + std::to_string(d) + " of " +
                                  shape_to_string(global) + " (" + std::to_string(global[d]) +
                                  ") does not divide by " + std::to_string(n) + " (" +
                                  to_string(layout.dims[d]) + " on mesh " +
                                  std::to_string(mesh.d0) + "x" + std::to_string(mesh.d1) + ")");
    }
  }
}

Shape local_shape(const Shape& global, const Layout& layout, MeshShape mesh) {
  check_layout(global, layout, mesh);
  Shape local = global;
  for (std::size_t d = 0; d < global.size(); ++d) local[d] /= axes_size(layout.dims[d], mesh);
  return local;
}

std::int64_t local_bytes(const Shape& global, DType dtype, const Layout& layout, MeshShape mesh) {
  return num_elements(local_shape(global, layout, mesh)) *
         static_cast<std::int64_t>(dtype_size_bytes(dtype));
}

std::vector<DimSlice> shard_slice(const Shape& global, const Layout& layout, MeshShape mesh,
                                  std::int64_t c0, std::int64_t c1) {
  check_layout(global, layout, mesh);
  mesh_rank(mesh, c0, c1);  // range check
  std::vector<DimSlice> slices(global.size());
  for (std::size_t d = 0; d < global.size(); ++d) {
    std::int64_t chunks = 1, index = 0;
    switch (layout.dims[d]) {
      case kAxis0:
        chunks = mesh.d0, index = c0;
        break;
      case kAxis1:
        chunks = mesh.d1, index = c1;
        break;
      case kBothAxes:  // axis 0 major
        chunks = mesh.d0 * mesh.d1, index = c0 * mesh.d1 + c1;
        break;
      default:
        break;
    }
    const std::int64_t size = global[d] / chunks;
    slices[d] = {index * size, size};
  }
  return slices;
}

std::int64_t mesh_rank(MeshShape mesh, std::int64_t c0, std::int64_t c1) {
  if (c0 < 0 || c0 >= mesh.d0 || c1 < 0 || c1 >= mesh.d1) {
    throw std::out_of_range("mesh coordinates (" + std::to_string(c0) + ", " + std::to_string(c1) +
                            ") are off the " + std::to_string(mesh.d0) + "x" +
                            std::to_string(mesh.d1) + " mesh");
  }
  return c0 * mesh.d1 + c1;
}

MeshCoord mesh_coords(MeshShape mesh, std::int64_t rank) {
  if (rank < 0 || rank >= mesh.num_devices()) {
    throw std::out_of_range("mesh rank " + std::to_string(rank) + " is off the " +
                            std::to_string(mesh.d0) + "x" + std::to_string(mesh.d1) + " mesh");
  }
  return {rank / mesh.d1, rank % mesh.d1};
}

std::string join_layouts(const std::vector<Layout>& layouts) {
  if (layouts.empty()) return "()";
  std::string out;
  for (std::size_t i = 0; i < layouts.size(); ++i) {
    if (i > 0) out += " x ";
    out += to_string(layouts[i]);
  }
  return out;
}

}  // namespace strata::solver
