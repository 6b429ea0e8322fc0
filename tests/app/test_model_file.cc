// Model files and the h5 helpers: round trips of a tiny GPT (graph JSON and every parameter,
// bit-exact, f32 and f64), seeded re-initialisation of --no-weights files, one test per kind of bad
// input (each must be an InputError of one line starting with the path), and h5py interop.
// Fixtures are generated in a temp dir; nothing is downloaded (STYLE.md 39).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "app/dataset_file.h"
#include "app/errors.h"
#include "app/h5.h"
#include "app/model_file.h"
#include "solver/ir/gpt.h"
#include "solver/ir/graph_json.h"
#include "tests/app/test_support.h"

namespace {

namespace fs = std::filesystem;
using strata::app::InputError;
using strata::app::ModelFile;
using strata::app::ParamData;
using strata::solver::DType;
using strata::solver::GptConfig;

GptConfig tiny_gpt(DType dtype) {
  GptConfig config;
  config.layers = 2;
  config.hidden = 16;
  config.heads = 2;
  config.seq_len = 8;
  config.vocab = 32;
  config.dtype = dtype;
  return config;
}

// A model as `strata model gpt` builds it: weights straight from gpt_init_values (doubles; the
// writer rounds them to the file dtype), each given in its file shape, or with `graph_shapes` in
// the graph's factored shape (as `strata model gpt` and `train` give them; the same values).
ModelFile make_model(const GptConfig& config, std::uint64_t seed, bool with_weights,
                     bool graph_shapes = false) {
  const strata::solver::Graph graph = strata::solver::build_gpt(config, 1);
  ModelFile model;
  model.kind = "gpt";
  model.graph_json = strata::solver::encode_graph_json(graph);
  model.dtype = config.dtype;
  model.seed = seed;
  model.has_weights = with_weights;
  if (!with_weights) return model;
  for (const auto id : graph.tensors_with_role(strata::solver::TensorRole::kParameter)) {
    const auto& t = graph.tensor(id);
    model.params[t.name] =
        ParamData{graph_shapes ? t.shape : strata::solver::file_shape_of(t),
                  strata::solver::gpt_init_values(config, t.name,
                                                  strata::solver::num_elements(t.shape), seed)};
  }
  return model;
}

// What the file must hold: each value rounded to the file dtype.
std::vector<double> stored(const std::vector<double>& values, DType dtype) {
  std::vector<double> out = values;
  if (dtype == DType::kF32) {
    for (double& v : out) v = static_cast<double>(static_cast<float>(v));
  }
  return out;
}

bool bit_equal(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// The single problem line of the InputError `fn` throws ("" when it throws none).
std::string input_error_line(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    INFO("what(): " << e.what());
    CHECK(e.problems().size() == 1);
    return e.problems().empty() ? std::string("<no problems>") : e.problems().front();
  }
  return "";
}

// `fn` throws an InputError of one line that starts with `path` and mentions `needle`.
void require_input_error(const std::function<void()>& fn, const std::string& path,
                         const std::string& needle) {
  const std::string line = input_error_line(fn);
  INFO("message: " << line);
  REQUIRE(!line.empty());
  CHECK(line.rfind(path + ": ", 0) == 0);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find(needle) != std::string::npos);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Opens a written model read-write to damage it.
template <class Edit>
void edit_file(const std::string& path, Edit&& edit) {
  strata::app::h5::File file = strata::app::h5::open_file(path, true);
  edit(file.get());
  REQUIRE(file.close());
}

}  // namespace

TEST_CASE("model file round trip keeps the graph and every parameter bit-exactly",
          "[app][model_file]") {
  strata::test::TempDir dir("model-file");
  for (const DType dtype : {DType::kF32, DType::kF64}) {
    DYNAMIC_SECTION("dtype " << strata::solver::dtype_name(dtype)) {
      const GptConfig config = tiny_gpt(dtype);
      const ModelFile written = make_model(config, 1234, true);
      const std::string path =
          dir.file(std::string("gpt_") + strata::solver::dtype_name(dtype) + ".h5");
      strata::app::write_model_file(path, written);
      CHECK(fs::exists(path));
      CHECK_FALSE(fs::exists(path + ".tmp"));

      const ModelFile read = strata::app::read_model_file(path);
      CHECK(read.path == path);
      CHECK(read.kind == "gpt");
      CHECK(read.dtype == dtype);
      CHECK(read.seed == 1234u);
      CHECK(read.has_weights);
      CHECK(read.graph_json == written.graph_json);
      REQUIRE(read.params.size() == written.params.size());
      // 2 + 12 per block + 2 parameters; the tied LM head has no dataset of its own.
      CHECK(read.params.size() == 2 + 12 * 2 + 2);
      for (const auto& [name, data] : written.params) {
        INFO(name);
        REQUIRE(read.params.count(name) == 1);
        CHECK(read.params.at(name).shape == data.shape);
        CHECK(bit_equal(read.params.at(name).values, stored(data.values, dtype)));
      }

      const strata::solver::Graph graph = strata::app::model_graph(read, 4);
      CHECK(graph.tensor(graph.at("tokens")).shape == strata::solver::Shape{4, 8});
      const auto params = strata::app::model_parameters(read, graph);
      REQUIRE(params.size() == read.params.size());
      for (const auto& [name, data] : params)
        CHECK(bit_equal(data.values, read.params.at(name).values));

      // Validated but not loaded: values come from the file when asked for.
      const ModelFile lazy = strata::app::read_model_file(path, false);
      CHECK(lazy.params.empty());
      const auto lazy_params = strata::app::model_parameters(lazy, graph);
      REQUIRE(lazy_params.size() == params.size());
      for (const auto& [name, data] : lazy_params)
        CHECK(bit_equal(data.values, params.at(name).values));

      CHECK(strata::app::strata_file_format(path) == "strata-model");
    }
  }
}

TEST_CASE("a model without weights (--no-weights) regenerates identical parameters from its seed",
          "[app][model_file]") {
  strata::test::TempDir dir("model-noweights");
  for (const DType dtype : {DType::kF32, DType::kF64}) {
    DYNAMIC_SECTION("dtype " << strata::solver::dtype_name(dtype)) {
      const GptConfig config = tiny_gpt(dtype);
      const std::string graph_only = dir.file("graph_only.h5");
      const std::string weights = dir.file("weights.h5");
      strata::app::write_model_file(graph_only, make_model(config, 77, false));
      strata::app::write_model_file(weights, make_model(config, 77, true));

      const ModelFile model = strata::app::read_model_file(graph_only);
      CHECK_FALSE(model.has_weights);
      CHECK(model.params.empty());
      CHECK(strata::app::h5::list_datasets(strata::app::h5::open_file(graph_only).get(), "params")
                .empty());
      const strata::solver::Graph graph = strata::app::model_graph(model, 1);
      const auto first = strata::app::model_parameters(model, graph);
      const auto second =
          strata::app::model_parameters(strata::app::read_model_file(graph_only), graph);
      const ModelFile with_weights = strata::app::read_model_file(weights);
      REQUIRE(first.size() == with_weights.params.size());
      for (const auto& [name, data] : first) {
        INFO(name);
        CHECK(data.shape == strata::solver::file_shape_of(graph.tensor(graph.at(name))));
        CHECK(bit_equal(data.values, second.at(name).values));
        // Same seed, same dtype rounding: training from either file starts identically.
        CHECK(bit_equal(data.values, with_weights.params.at(name).values));
      }
      // LayerNorm weights are 1 and biases 0 (GPT-2 init).
      CHECK(first.at("transformer.h.0.ln_1.weight").values.front() == 1.0);
      CHECK(first.at("transformer.h.0.attn.c_attn.bias").values.front() == 0.0);

      ModelFile other_seed = model;
      other_seed.seed = 78;
      CHECK_FALSE(bit_equal(
          strata::app::model_parameters(other_seed, graph).at("transformer.wte.weight").values,
          first.at("transformer.wte.weight").values));
    }
  }
}

TEST_CASE("parameter datasets keep HF's shapes while the graph is factored by head",
          "[app][model_file]") {
  // H 16, A 2, D 8: the graph holds c_attn [16, 3, 2, 8]; the file holds HF's [16, 48].
  strata::test::TempDir dir("model-file-shapes");
  const GptConfig config = tiny_gpt(DType::kF64);
  const ModelFile in_file_shapes = make_model(config, 3, true);
  const ModelFile in_graph_shapes = make_model(config, 3, true, /*graph_shapes=*/true);
  CHECK(in_graph_shapes.params.at("transformer.h.0.attn.c_attn.weight").shape ==
        strata::solver::Shape{16, 3, 2, 8});
  const std::string a = dir.file("a.h5"), b = dir.file("b.h5");
  strata::app::write_model_file(a, in_file_shapes);
  strata::app::write_model_file(b, in_graph_shapes);  // mapped to the file shapes
  const std::map<std::string, strata::solver::Shape> hf = {
      {"transformer.h.0.attn.c_attn.weight", {16, 48}}, {"transformer.h.1.attn.c_attn.bias", {48}},
      {"transformer.h.1.attn.c_proj.weight", {16, 16}}, {"transformer.h.0.attn.c_proj.bias", {16}},
      {"transformer.h.0.mlp.c_fc.weight", {16, 64}},    {"transformer.wte.weight", {32, 16}}};
  for (const std::string& path : {a, b}) {
    const auto file = strata::app::h5::open_file(path);
    for (const auto& [name, shape] : hf) {
      INFO(path << " " << name);
      CHECK(strata::app::h5::dataset_info(file.get(), "params/" + name).shape == shape);
    }
  }
  // Both read back in file shapes with the same row-major values.
  const ModelFile ra = strata::app::read_model_file(a), rb = strata::app::read_model_file(b);
  for (const auto& [name, data] : in_file_shapes.params) {
    INFO(name);
    CHECK(ra.params.at(name).shape == data.shape);
    CHECK(rb.params.at(name).shape == data.shape);
    CHECK(bit_equal(ra.params.at(name).values, data.values));
    CHECK(bit_equal(rb.params.at(name).values, data.values));
  }
  // model_parameters accepts either shape in memory and answers in file shapes.
  const strata::solver::Graph graph = strata::app::model_graph(ra, 2);
  ModelFile in_memory = ra;
  in_memory.params = in_graph_shapes.params;
  const auto params = strata::app::model_parameters(in_memory, graph);
  CHECK(params.at("transformer.h.0.attn.c_attn.weight").shape == strata::solver::Shape{16, 48});
  CHECK(bit_equal(params.at("transformer.h.0.attn.c_attn.weight").values,
                  ra.params.at("transformer.h.0.attn.c_attn.weight").values));
}

TEST_CASE("model file writer leaves no partial file behind", "[app][model_file]") {
  strata::test::TempDir dir("model-write-fail");
  const std::string path = dir.file("missing_dir/model.h5");
  CHECK_THROWS_AS(strata::app::write_model_file(path, make_model(tiny_gpt(DType::kF32), 1, true)),
                  std::runtime_error);
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));

  // A failure inside the fill (values that do not match their shape) removes the temporary.
  const std::string bad = dir.file("bad.h5");
  ModelFile model = make_model(tiny_gpt(DType::kF32), 1, true);
  model.params["transformer.wpe.weight"].values.pop_back();
  CHECK_THROWS_AS(strata::app::write_model_file(bad, model), std::invalid_argument);
  CHECK_FALSE(fs::exists(bad));
  CHECK_FALSE(fs::exists(bad + ".tmp"));
}

TEST_CASE("bad model files are input errors naming the path", "[app][model_file]") {
  // Failures must not leak HDF5 ids (an open file id would also keep the file locked).
  const ssize_t open_before = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  strata::test::TempDir dir("model-bad");
  const GptConfig config = tiny_gpt(DType::kF32);
  const std::string good = dir.file("good.h5");
  strata::app::write_model_file(good, make_model(config, 5, true));
  // Each case gets a fresh copy of the good file to damage.
  const auto copy_of_good = [&](const std::string& name) {
    const std::string path = dir.file(name);
    fs::copy_file(good, path, fs::copy_options::overwrite_existing);
    return path;
  };
  const auto read = [](const std::string& path) {
    return [path] { strata::app::read_model_file(path); };
  };

  SECTION("missing file") {
    const std::string path = dir.file("nope.h5");
    require_input_error(read(path), path, "no such file");
    require_input_error([&] { strata::app::strata_file_format(path); }, path, "no such file");
  }
  SECTION("empty file") {
    const std::string path = dir.file("empty.h5");
    write_text(path, "");
    require_input_error(read(path), path, "empty file");
  }
  SECTION("truncated copy of a good file") {
    const std::string path = dir.file("truncated.h5");
    const std::string bytes = read_text(good);
    write_text(path, bytes.substr(0, bytes.size() / 2));
    require_input_error(read(path), path, "truncated or corrupt");
  }
  SECTION("a text file") {
    const std::string path = dir.file("notes.txt");
    write_text(path, "layers: 2\nhidden: 16\n");
    require_input_error(read(path), path, "not an HDF5 file");
    require_input_error([&] { strata::app::strata_file_format(path); }, path, "not an HDF5 file");
  }
  SECTION("a directory") {
    require_input_error(read(dir.path().string()), dir.path().string(), "is a directory");
  }
  SECTION("an HDF5 file that is not a Strata file") {
    const std::string path = dir.file("plain.h5");
    strata::app::h5::write_atomically(path, [](hid_t file) {
      const double x = 1.0;
      strata::app::h5::write_dataset(file, "x", {1}, &x);
    });
    require_input_error(read(path), path, "not a Strata file");
  }
  SECTION("a dataset file given as a model") {
    const std::string path = dir.file("data.h5");
    strata::app::write_dataset_file(path, strata::app::dataset_synthetic(32, 8, 4, 1));
    require_input_error(read(path), path, "is a strata-dataset file, expected a strata-model file");
    CHECK(strata::app::strata_file_format(path) == "strata-dataset");
  }
  SECTION("a newer version") {
    const std::string path = copy_of_good("v2.h5");
    edit_file(path, [](hid_t file) { strata::app::h5::write_attr_int(file, "version", 2); });
    require_input_error(read(path), path, "version 2 is newer than this build supports (1)");
  }
  SECTION("format attribute missing") {
    const std::string path = copy_of_good("noformat.h5");
    edit_file(path, [](hid_t file) { H5Adelete(file, "format"); });
    require_input_error(read(path), path, "no root attribute 'format'");
  }
  SECTION("a missing root attribute") {
    const std::string path = copy_of_good("noseed.h5");
    edit_file(path, [](hid_t file) { H5Adelete(file, "seed"); });
    require_input_error(read(path), path, "attribute 'seed' is missing");
  }
  SECTION("a graph that does not decode") {
    const std::string path = copy_of_good("badgraph.h5");
    edit_file(path, [](hid_t file) {
      strata::app::h5::remove(file, "graph");
      strata::app::h5::write_string_dataset(file, "graph",
                                            "{\"format\": \"strata-graph\", \"version\": 1");
    });
    require_input_error(read(path), path, "/graph: ");
  }
  SECTION("a missing parameter") {
    const std::string path = copy_of_good("missing_param.h5");
    edit_file(path, [](hid_t file) {
      strata::app::h5::remove(file, "params/transformer.h.1.mlp.c_fc.bias");
    });
    require_input_error(read(path), path, "/params/transformer.h.1.mlp.c_fc.bias: missing");
  }
  SECTION("an extra parameter") {
    const std::string path = copy_of_good("extra_param.h5");
    edit_file(path, [](hid_t file) {
      const std::vector<double> v(16, 0.0);
      strata::app::h5::write_values(file, "params/lm_head.weight", {16}, v, DType::kF32);
    });
    require_input_error(read(path), path, "/params/lm_head.weight: not a parameter of the graph");
  }
  SECTION("a parameter with the wrong shape") {
    const std::string path = copy_of_good("wrong_shape.h5");
    edit_file(path, [](hid_t file) {
      strata::app::h5::remove(file, "params/transformer.wpe.weight");
      const std::vector<double> v(4 * 16, 0.5);
      strata::app::h5::write_values(file, "params/transformer.wpe.weight", {4, 16}, v, DType::kF32);
    });
    require_input_error(
        read(path), path,
        "/params/transformer.wpe.weight: shape [4, 16] does not match the graph's [8, 16]");
  }
  SECTION("a parameter in the graph's factored shape instead of its file shape") {
    const std::string path = copy_of_good("factored_shape.h5");
    edit_file(path, [](hid_t file) {
      strata::app::h5::remove(file, "params/transformer.h.0.attn.c_attn.weight");
      const std::vector<double> v(16 * 48, 0.5);
      strata::app::h5::write_values(file, "params/transformer.h.0.attn.c_attn.weight",
                                    {16, 3, 2, 8}, v, DType::kF32);
    });
    require_input_error(read(path), path,
                        "/params/transformer.h.0.attn.c_attn.weight: shape [16, 3, 2, 8] does not "
                        "match the graph's [16, 48]");
  }
  SECTION("a parameter with the wrong dtype") {
    const std::string path = copy_of_good("wrong_dtype.h5");
    edit_file(path, [](hid_t file) {
      strata::app::h5::remove(file, "params/transformer.ln_f.bias");
      const std::vector<double> v(16, 0.0);
      strata::app::h5::write_values(file, "params/transformer.ln_f.bias", {16}, v, DType::kF64);
    });
    require_input_error(
        read(path), path,
        "/params/transformer.ln_f.bias: dtype f64 does not match the file's dtype f32");
  }
  SECTION("a bad dtype attribute") {
    const std::string path = copy_of_good("bf16.h5");
    edit_file(path, [](hid_t file) { strata::app::h5::write_attr_string(file, "dtype", "bf16"); });
    require_input_error(read(path), path, "dtype = 'bf16' must be f32 or f64");
  }
  SECTION("a kind without an init rule") {
    ModelFile model = make_model(config, 5, false);
    model.path = dir.file("moe.h5");
    model.kind = "moe";
    require_input_error(
        [&] { strata::app::model_parameters(model, strata::solver::build_gpt(config, 1)); },
        model.path, "no initialisation rule");
  }
  SECTION("several problems give one line each") {
    const std::string path = copy_of_good("two_problems.h5");
    edit_file(path, [](hid_t file) {
      strata::app::h5::remove(file, "params/transformer.wte.weight");
      strata::app::h5::remove(file, "params/transformer.wpe.weight");
    });
    try {
      strata::app::read_model_file(path);
      FAIL("no InputError");
    } catch (const InputError& e) {
      REQUIRE(e.problems().size() == 2);
      for (const auto& line : e.problems()) CHECK(line.rfind(path + ": ", 0) == 0);
    }
  }
  CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == open_before);
}

TEST_CASE("h5 helpers: attributes, long strings, listing, slabs, strict conversion", "[app][h5]") {
  namespace h5 = strata::app::h5;
  strata::test::TempDir dir("h5");
  const std::string path = dir.file("helpers.h5");
  const std::string long_text(200 * 1024, 'g');  // past the ~64 KiB limit of attributes
  h5::write_atomically(path, [&](hid_t file) {
    h5::write_attr_string(file, "name", "strata \xc3\xa9t\xc3\xa9");  // UTF-8
    h5::write_attr_int(file, "step", -42);
    h5::write_attr_uint(file, "seed", 18446744073709551615ull);
    h5::write_attr_double(file, "loss", 2.5);
    h5::write_attr_int(file, "step", 43);  // replaces
    h5::write_string_dataset(file, "text", long_text);
    const std::vector<double> m(6, 1.5);
    h5::write_values(file, "optimizer/transformer.wte.weight/m", {2, 3}, m, DType::kF32);
    const std::int32_t grid[6] = {0, 1, 2, 3, 4, 5};
    h5::write_dataset(file, "grid", {2, 3}, grid);
    const std::int64_t big[2] = {1, std::int64_t{1} << 40};
    h5::Dataspace space(H5Screate_simple(1, std::vector<hsize_t>{2}.data(), nullptr));
    h5::Dataset d(
        H5Dcreate2(file, "big", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    REQUIRE(H5Dwrite(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, big) >= 0);
  });
  h5::File file = h5::open_file(path);
  CHECK(h5::read_attr_string(file.get(), "name") == "strata \xc3\xa9t\xc3\xa9");
  CHECK(h5::read_attr_int(file.get(), "step") == 43);
  CHECK(h5::read_attr_uint(file.get(), "seed") == 18446744073709551615ull);
  CHECK(h5::read_attr_double(file.get(), "loss") == 2.5);
  CHECK(h5::read_attr_double(file.get(), "step") == 43.0);
  CHECK_THROWS_AS(h5::read_attr_int(file.get(), "seed"), h5::Error);  // > int64 max
  CHECK_THROWS_AS(h5::read_attr_int(file.get(), "name"), h5::Error);
  CHECK_THROWS_AS(h5::read_attr_int(file.get(), "absent"), h5::Error);
  CHECK(h5::read_string_dataset(file.get(), "text") == long_text);

  CHECK(h5::list_datasets(file.get(), "/") == std::vector<std::string>{"big", "grid", "text"});
  CHECK(h5::list_datasets(file.get(), "optimizer/transformer.wte.weight") ==
        std::vector<std::string>{"m"});
  CHECK(h5::exists(file.get(), "optimizer/transformer.wte.weight/m"));
  CHECK_FALSE(h5::exists(file.get(), "optimizer/nope/m"));
  CHECK(h5::dataset_dtype(file.get(), "optimizer/transformer.wte.weight/m") == DType::kF32);
  CHECK(h5::dataset_dtype(file.get(), "grid") == DType::kI32);

  strata::solver::Shape shape;
  CHECK(h5::read_f64(file.get(), "optimizer/transformer.wte.weight/m", &shape) ==
        std::vector<double>(6, 1.5));
  CHECK(shape == strata::solver::Shape{2, 3});
  CHECK(h5::read_i32_slab(file.get(), "grid", {1, 1}, {1, 2}) == std::vector<std::int32_t>{4, 5});
  CHECK_THROWS_AS(h5::read_i32_slab(file.get(), "grid", {1, 2}, {1, 2}), h5::Error);
  CHECK_THROWS_AS(h5::read_f64(file.get(), "grid"), h5::Error);  // integers are not floats

  // 2^40 does not fit int32: the read fails instead of clipping.
  try {
    h5::read_i32(file.get(), "big");
    FAIL("no h5::Error");
  } catch (const h5::Error& e) {
    const std::string what = e.what();
    CHECK(what.rfind(path + ": /big: ", 0) == 0);
  }
}

TEST_CASE("h5py reads a model file", "[app][model_file][python]") {
  if (std::system("/usr/bin/python3 -c 'import h5py' > /dev/null 2>&1") != 0) {
    WARN("skipped: /usr/bin/python3 with h5py is not available");
    return;
  }
  strata::test::TempDir dir("model-h5py");
  const std::string path = dir.file("gpt.h5");
  const ModelFile model = make_model(tiny_gpt(DType::kF32), 9, true);
  strata::app::write_model_file(path, model);
  const std::string script = dir.file("read.py");
  const std::string out = dir.file("out.txt");
  const std::string graph_out = dir.file("graph.json");
  write_text(script,
             "import sys, h5py\n"
             "with h5py.File(sys.argv[1], 'r') as f:\n"
             "    w = f['params/transformer.wte.weight']\n"
             "    qkv = f['params/transformer.h.0.attn.c_attn.weight'].shape\n"
             "    proj = f['params/transformer.h.1.attn.c_proj.weight'].shape\n"
             "    a = f.attrs\n"
             "    print(w.shape[0], w.shape[1], w.dtype, a['format'], a['version'], a['kind'],\n"
             "          a['has_weights'], a['dtype'], a['seed'], len(f['params']), qkv, proj)\n"
             "    open(sys.argv[2], 'w', encoding='utf-8').write(f['graph'].asstr()[()])\n");
  const std::string command =
      "/usr/bin/python3 " + script + " " + path + " " + graph_out + " > " + out + " 2>&1";
  const int rc = std::system(command.c_str());
  INFO("python output: " << read_text(out));
  REQUIRE(rc == 0);
  // HF's layouts: c_attn [H, 3H], c_proj [H, H] (H 16)
  CHECK(read_text(out) == "32 16 float32 strata-model 1 gpt 1 f32 9 28 (16, 48) (16, 16)\n");
  CHECK(read_text(graph_out) == model.graph_json);
}
