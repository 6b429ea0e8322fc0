// GPT-2 forward graph builder and its parameter initialisation (gpt.h).
// Names follow Hugging Face GPT2LMHeadModel (DESIGN.md section 7); op names are "h.{i}.<part>"
// inside block i (layer i+1). Attention tensors keep heads as their own dims (no index map needs
// a composite dim); the attention parameters carry HF's shapes as file_shape. All parameters and
// inputs are added before the first op, so a graph decoded from encode_graph_json has the same
// tensor ids. Pure C++.
#include "solver/ir/gpt.h"

#include <cmath>
#include <random>
#include <stdexcept>

namespace strata::solver {
namespace {

constexpr double kInitStd = 0.02;
constexpr double kLayerNormEps = 1e-5;
// Bound on every config value, so products such as V*H and B*S*V stay far from int64 overflow
// in any sane use and the error names the field instead.
constexpr std::int64_t kMaxConfigValue = std::int64_t{1} << 31;

std::string block(std::int64_t i) { return "transformer.h." + std::to_string(i) + "."; }

// Per-block parameter suffixes in HF order.
constexpr const char* kBlockParams[] = {
    "ln_1.weight",        "ln_1.bias",        "attn.c_attn.weight", "attn.c_attn.bias",
    "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",        "ln_2.bias",
    "mlp.c_fc.weight",    "mlp.c_fc.bias",    "mlp.c_proj.weight",  "mlp.c_proj.bias",
};

// Graph shape and file shape ({} = the same) of a block parameter. The attention parameters are
// factored so heads are a dim of their own (tensor parallelism splits a): c_attn [H,3,A,D] is
// the same row-major bytes as HF's [H,3H] (q, k, v, each head by head), c_proj [A,D,H] as [H,H].
struct ParamShapes {
  Shape shape, file_shape;
};
ParamShapes block_param_shapes(const std::string& suffix, std::int64_t H, std::int64_t A) {
  const std::int64_t D = H / A;
  if (suffix == "attn.c_attn.weight") return {{H, 3, A, D}, {H, 3 * H}};
  if (suffix == "attn.c_attn.bias") return {{3, A, D}, {3 * H}};
  if (suffix == "attn.c_proj.weight") return {{A, D, H}, {H, H}};
  if (suffix == "mlp.c_fc.weight") return {{H, 4 * H}, {}};
  if (suffix == "mlp.c_fc.bias") return {{4 * H}, {}};
  if (suffix == "mlp.c_proj.weight") return {{4 * H, H}, {}};
  return {{H}, {}};  // LayerNorm weights and biases, attn.c_proj.bias, mlp.c_proj.bias
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// FNV-1a, 64-bit: offset basis 14695981039346656037, prime 1099511628211.
std::uint64_t fnv1a64(const std::string& text) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// splitmix64 finaliser: spreads the user's seed over all 64 bits before it meets the name hash.
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

void validate(const GptConfig& config) {
  const auto check = [](const char* field, std::int64_t v) {
    if (v < 1 || v > kMaxConfigValue) {
      throw std::invalid_argument(std::string("gpt config: ") + field + " = " + std::to_string(v) +
                                  " must be in [1, 2^31]");
    }
  };
  check("layers", config.layers);
  check("hidden", config.hidden);
  check("heads", config.heads);
  check("seq_len", config.seq_len);
  check("vocab", config.vocab);
  if (config.hidden % config.heads != 0) {
    throw std::invalid_argument("gpt config: heads = " + std::to_string(config.heads) +
                                " does not divide hidden = " + std::to_string(config.hidden));
  }
  if (!is_floating(config.dtype)) {
    throw std::invalid_argument(std::string("gpt config: dtype ") + dtype_name(config.dtype) +
                                " is not a floating type");
  }
}

bool gpt_fused_attention(const Graph& graph) {
  const auto it = graph.meta.find("attention");
  if (it == graph.meta.end() || it->second == "unfused") return false;
  if (it->second == "fused") return true;
  throw std::invalid_argument("gpt: meta 'attention' = '" + it->second +
                              "' must be 'fused' or 'unfused'");
}

Graph build_gpt(const GptConfig& config, std::int64_t batch) {
  validate(config);
  if (batch < 1 || batch > kMaxConfigValue) {
    throw std::invalid_argument("gpt: batch = " + std::to_string(batch) + " must be in [1, 2^31]");
  }
  const std::int64_t L = config.layers, H = config.hidden, A = config.heads;
  const std::int64_t S = config.seq_len, V = config.vocab, D = H / A;
  const DType dt = config.dtype;
  const int head_layer = static_cast<int>(L) + 1;

  Graph g;
  g.num_layers = static_cast<int>(L) + 2;
  g.meta = {{"kind", "gpt"},
            {"layers", std::to_string(L)},
            {"hidden", std::to_string(H)},
            {"heads", std::to_string(A)},
            {"seq_len", std::to_string(S)},
            {"vocab", std::to_string(V)},
            {"dtype", dtype_name(dt)},
            {"attention", config.fused_attention ? "fused" : "unfused"}};

  const auto param = [&](const std::string& name, Shape shape, int layer, Shape file_shape = {}) {
    return g.add_tensor(
        {name, std::move(shape), dt, TensorRole::kParameter, layer, std::move(file_shape)});
  };
  // ---- parameters and inputs, in HF order
  const TensorId wte = param("transformer.wte.weight", {V, H}, 0);
  const TensorId wpe = param("transformer.wpe.weight", {S, H}, 0);
  for (std::int64_t i = 0; i < L; ++i) {
    for (const char* suffix : kBlockParams) {
      ParamShapes p = block_param_shapes(suffix, H, A);
      param(block(i) + suffix, std::move(p.shape), static_cast<int>(i) + 1,
            std::move(p.file_shape));
    }
  }
  const TensorId lnf_w = param("transformer.ln_f.weight", {H}, head_layer);
  const TensorId lnf_b = param("transformer.ln_f.bias", {H}, head_layer);
  const TensorId tokens = g.add_tensor({"tokens", {batch, S}, DType::kI32, TensorRole::kInput, 0});
  const TensorId targets =
      g.add_tensor({"targets", {batch, S}, DType::kI32, TensorRole::kInput, head_layer});
  g.shared_parameters.push_back({wte, {0, head_layer}});

  const auto out = [&](OpId op, std::size_t i = 0) {
    return g.ops[static_cast<std::size_t>(op)].outputs.at(i);
  };
  const auto matmul = [&](const std::string& name, const char* eq, TensorId a, TensorId b,
                          int layer, double alpha = 1.0) {
    Attrs attrs = {{"equation", std::string(eq)}};
    if (alpha != 1.0) attrs["alpha"] = alpha;
    return out(g.add_op(OpKind::kMatMul, name, {a, b}, std::move(attrs), layer));
  };
  const auto layernorm = [&](const std::string& name, TensorId x, TensorId w, TensorId b,
                             int layer) {
    return out(g.add_op(OpKind::kLayerNorm, name, {x, w, b}, {{"eps", kLayerNormEps}}, layer));
  };
  const auto unary = [&](OpKind kind, const std::string& name, std::vector<TensorId> in,
                         int layer) { return out(g.add_op(kind, name, std::move(in), {}, layer)); };

  // ---- layer 0: x = wte[tokens] + wpe
  TensorId x = unary(OpKind::kEmbedding, "embed.wte", {tokens, wte}, 0);
  x = unary(OpKind::kPositionEmbedding, "embed.wpe", {x, wpe}, 0);

  // ---- blocks: x += attn(ln_1(x)); x += mlp(ln_2(x))
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  for (std::int64_t i = 0; i < L; ++i) {
    const int layer = static_cast<int>(i) + 1;
    const std::string op = "h." + std::to_string(i) + ".";
    const std::string pn = block(i);
    const TensorId ln1 =
        layernorm(op + "ln_1", x, g.at(pn + "ln_1.weight"), g.at(pn + "ln_1.bias"), layer);
    // qkv[b,s,p,a,d] = sum_k ln1[b,s,k] w[k,p,a,d] + bias[p,a,d]; p = 0, 1, 2 is q, k, v
    TensorId qkv =
        matmul(op + "attn.qkv", "bsk,kpad->bspad", ln1, g.at(pn + "attn.c_attn.weight"), layer);
    qkv =
        unary(OpKind::kBiasAdd, op + "attn.qkv_bias", {qkv, g.at(pn + "attn.c_attn.bias")}, layer);
    const OpId split =
        g.add_op(OpKind::kSplitHeads, op + "attn.split", {qkv},
                 {{"parts", std::int64_t{3}}, {"heads", A}}, layer, OpPhase::kForward,
                 TensorRole::kActivation, {op + "attn.q", op + "attn.k", op + "attn.v"});
    // ctx[b,a,s,:] = sum_t softmax_t(q[b,a,s,:] . k[b,a,t,:] / sqrt(D), causal) v[b,a,t,:]
    TensorId ctx = kNoTensor;
    if (config.fused_attention) {
      ctx = out(g.add_op(OpKind::kAttention, op + "attn.attention",
                         {out(split, 0), out(split, 1), out(split, 2)},
                         {{"scale", scale}, {"causal", std::int64_t{1}}}, layer));
    } else {
      // scores[b,a,s,t] = sum_d q[b,a,s,d] k[b,a,t,d] / sqrt(D); the causal mask and the softmax
      // as one op (kernels' causal_softmax_forward), so the masked scores are never stored.
      TensorId att =
          matmul(op + "attn.scores", "basd,batd->bast", out(split, 0), out(split, 1), layer, scale);
      att = out(g.add_op(OpKind::kSoftmax, op + "attn.softmax", {att},
                         {{"causal", std::int64_t{1}}}, layer));
      ctx = matmul(op + "attn.ctx", "bast,batd->basd", att, out(split, 2), layer);
    }
    // [B,A,S,D] -> [B,S,A,D], then y[b,s,n] = sum_{a,d} ctx[b,s,a,d] w[a,d,n]
    ctx = out(g.add_op(OpKind::kMergeHeads, op + "attn.merge", {ctx},
                       {{"parts", std::int64_t{1}}, {"heads", A}}, layer));
    TensorId y =
        matmul(op + "attn.proj", "bsad,adn->bsn", ctx, g.at(pn + "attn.c_proj.weight"), layer);
    y = unary(OpKind::kBiasAdd, op + "attn.proj_bias", {y, g.at(pn + "attn.c_proj.bias")}, layer);
    x = unary(OpKind::kAdd, op + "attn.residual", {x, y}, layer);

    const TensorId ln2 =
        layernorm(op + "ln_2", x, g.at(pn + "ln_2.weight"), g.at(pn + "ln_2.bias"), layer);
    TensorId m = matmul(op + "mlp.fc", "bsk,kn->bsn", ln2, g.at(pn + "mlp.c_fc.weight"), layer);
    // The fc bias and the GELU as one op: gelu(m + bias), whose backward recomputes m + bias.
    m = unary(OpKind::kGelu, op + "mlp.gelu", {m, g.at(pn + "mlp.c_fc.bias")}, layer);
    m = matmul(op + "mlp.proj", "bsk,kn->bsn", m, g.at(pn + "mlp.c_proj.weight"), layer);
    m = unary(OpKind::kBiasAdd, op + "mlp.proj_bias", {m, g.at(pn + "mlp.c_proj.bias")}, layer);
    x = unary(OpKind::kAdd, op + "mlp.residual", {x, m}, layer);
  }

  // ---- head: logits[b,s,v] = sum_h ln_f(x)[b,s,h] wte[v,h]; loss = mean CE
  const TensorId lnf = layernorm("ln_f", x, lnf_w, lnf_b, head_layer);
  const TensorId logits = matmul("lm_head", "bsh,vh->bsv", lnf, wte, head_layer);
  g.add_op(OpKind::kCrossEntropy, "loss", {logits, targets}, {}, head_layer, OpPhase::kForward,
           TensorRole::kLoss, {"loss"});
  return g;
}

ParamInit gpt_param_init(const GptConfig& config, const std::string& name) {
  validate(config);
  if (name == "transformer.wte.weight" || name == "transformer.wpe.weight") {
    return {kInitStd, 0.0};
  }
  std::string suffix;
  if (name == "transformer.ln_f.weight" || name == "transformer.ln_f.bias") {
    suffix = name.substr(std::string("transformer.").size());
  } else if (name.rfind("transformer.h.", 0) == 0) {
    const std::string rest = name.substr(std::string("transformer.h.").size());
    const auto dot = rest.find('.');
    const std::string index = rest.substr(0, dot);
    bool ok = dot != std::string::npos && !index.empty() && index.size() <= 10 &&
              (index == "0" || index[0] != '0');
    for (char ch : index) ok = ok && ch >= '0' && ch <= '9';
    if (ok && std::stoll(index) < config.layers) {
      suffix = rest.substr(dot + 1);
      ok = false;
      for (const char* p : kBlockParams) ok = ok || suffix == p;
    }
    if (!ok) suffix.clear();
  }
  if (suffix.empty()) {
    throw std::invalid_argument("gpt init: '" + name + "' is not a parameter of this GPT");
  }
  if (ends_with(suffix, ".bias")) return {0.0, 0.0};
  if (suffix.rfind("ln_", 0) == 0) return {0.0, 1.0};  // LayerNorm weight
  if (suffix == "attn.c_proj.weight" || suffix == "mlp.c_proj.weight") {
    // GPT-2's scaled init of the residual projections: 0.02 / sqrt(2 L).
    return {kInitStd / std::sqrt(2.0 * static_cast<double>(config.layers)), 0.0};
  }
  return {kInitStd, 0.0};
}

std::vector<double> gpt_init_values(const GptConfig& config, const std::string& name,
                                    std::int64_t count, std::uint64_t seed) {
  const ParamInit init = gpt_param_init(config, name);
  if (count < 0 || count > (std::int64_t{1} << 40)) {
    throw std::invalid_argument("gpt init: count " + std::to_string(count) + " for '" + name +
                                "' out of range");
  }
  std::vector<double> values(static_cast<std::size_t>(count), init.constant);
  if (init.stddev == 0.0) return values;
  // Engine seed = FNV-1a-64(name) XOR splitmix64(seed). Uniforms u = (53 high bits) * 2^-53 in
  // [0, 1); Box-Muller on (1 - u1, u2): r = sqrt(-2 ln(1 - u1)), z0 = r cos(2 pi u2),
  // z1 = r sin(2 pi u2); both normals are used, in that order.
  std::mt19937_64 engine(fnv1a64(name) ^ splitmix64(seed));
  const auto uniform = [&engine] { return static_cast<double>(engine() >> 11) * 0x1.0p-53; };
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (std::size_t i = 0; i < values.size(); i += 2) {
    const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    values[i] = init.stddev * r * std::cos(kTwoPi * u2);
    if (i + 1 < values.size()) values[i + 1] = init.stddev * r * std::sin(kTwoPi * u2);
  }
  return values;
}

}  // namespace strata::solver
