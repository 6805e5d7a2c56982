// oneDNN primitives through its C API (Debian's oneDNN 2.6): descriptor, primitive
// descriptor (with the forward one as hint for backward), primitive, then memory objects
// wrapping the caller's pointers at each run. oneDNN threads with OpenMP.
#include "bench/peers/onednn_prims.hpp"

#include <dnnl.h>

#include <vector>

#include "tilegrad/kernels/error.hpp"

namespace tg::peers {

namespace {

void ok(dnnl_status_t st, const char* what) {
  TG_CHECK(st == dnnl_success, "onednn", what, "expected dnnl_success, got status ", int(st));
}

dnnl_alg_kind_t eltwise_alg(Act a, float& alpha) {
  alpha = 0;
  switch (a) {
    case Act::none: alpha = 1; return dnnl_eltwise_linear;
    case Act::relu: return dnnl_eltwise_relu;
    case Act::leaky_relu: return dnnl_eltwise_relu;  // alpha: the negative slope
    case Act::gelu_erf: return dnnl_eltwise_gelu_erf;
    case Act::gelu_tanh: return dnnl_eltwise_gelu_tanh;
    case Act::silu: alpha = 1; return dnnl_eltwise_swish;
    case Act::sigmoid: return dnnl_eltwise_logistic;
    case Act::tanh: return dnnl_eltwise_tanh;
  }
  return dnnl_eltwise_linear;
}

}  // namespace

struct OnednnPrimitive::State {
  Kind kind;
  dnnl_engine_t engine = nullptr;
  dnnl_stream_t stream = nullptr;
  dnnl_primitive_desc_t fwd_pd = nullptr, pd = nullptr;
  dnnl_primitive_t prim = nullptr, fwd_prim = nullptr;
  dnnl_memory_desc_t md{}, stat_md{};
  std::vector<float> mean, var;  // layer norm statistics
  std::vector<float> scratch;    // layer_norm_bwd: the forward's output, discarded
  const float* stats_of = nullptr;  // layer_norm_bwd: the x whose statistics are held
  std::string impl;

  ~State() {
    if (prim) dnnl_primitive_destroy(prim);
    if (fwd_prim) dnnl_primitive_destroy(fwd_prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    if (stream) dnnl_stream_destroy(stream);
    if (engine) dnnl_engine_destroy(engine);
  }

  void execute(dnnl_primitive_t p, std::initializer_list<std::pair<int, void*>> args,
               std::initializer_list<const dnnl_memory_desc_t*> descs) {
    std::vector<dnnl_exec_arg_t> a;
    std::vector<dnnl_memory_t> mems;
    auto d = descs.begin();
    for (const auto& [arg, ptr] : args) {
      dnnl_memory_t m = nullptr;
      ok(dnnl_memory_create(&m, *d++, engine, ptr), "memory_create");
      mems.push_back(m);
      a.push_back({arg, m});
    }
    ok(dnnl_primitive_execute(p, stream, int(a.size()), a.data()), "execute");
    ok(dnnl_stream_wait(stream), "stream_wait");
    for (dnnl_memory_t m : mems) dnnl_memory_destroy(m);
  }
};

OnednnPrimitive::OnednnPrimitive(Kind kind, index_t rows, index_t cols, Activation act)
    : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.kind = kind;
  ok(dnnl_engine_create(&s.engine, dnnl_cpu, 0), "engine_create");
  ok(dnnl_stream_create(&s.stream, s.engine, dnnl_stream_default_flags), "stream_create");
  const dnnl_dims_t dims = {rows, cols}, stat_dims = {rows};
  ok(dnnl_memory_desc_init_by_tag(&s.md, 2, dims, dnnl_f32, dnnl_ab), "memory_desc");
  ok(dnnl_memory_desc_init_by_tag(&s.stat_md, 1, stat_dims, dnnl_f32, dnnl_a), "memory_desc");

  switch (kind) {
    case Kind::eltwise_fwd:
    case Kind::eltwise_bwd: {
      float alpha = 0;
      const dnnl_alg_kind_t alg = eltwise_alg(act.kind, alpha);
      if (act.kind == Act::leaky_relu) alpha = float(act.slope);
      dnnl_eltwise_desc_t d;
      ok(dnnl_eltwise_forward_desc_init(&d, dnnl_forward_training, alg, &s.md, alpha, 0), "eltwise_forward_desc");
      ok(dnnl_primitive_desc_create(&s.fwd_pd, &d, nullptr, s.engine, nullptr), "primitive_desc");
      if (kind == Kind::eltwise_bwd) {
        dnnl_eltwise_desc_t b;
        ok(dnnl_eltwise_backward_desc_init(&b, alg, &s.md, &s.md, alpha, 0), "eltwise_backward_desc");
        ok(dnnl_primitive_desc_create(&s.pd, &b, nullptr, s.engine, s.fwd_pd), "primitive_desc");
      }
      break;
    }
    case Kind::softmax_fwd:
    case Kind::softmax_bwd:
    case Kind::log_softmax_fwd:
    case Kind::log_softmax_bwd: {
      const bool log = kind == Kind::log_softmax_fwd || kind == Kind::log_softmax_bwd;
      const dnnl_alg_kind_t alg = log ? dnnl_softmax_log : dnnl_softmax_accurate;
      dnnl_softmax_v2_desc_t d;
      ok(dnnl_softmax_v2_forward_desc_init(&d, dnnl_forward_training, alg, &s.md, &s.md, 1), "softmax_forward_desc");
      ok(dnnl_primitive_desc_create(&s.fwd_pd, &d, nullptr, s.engine, nullptr), "primitive_desc");
      if (kind == Kind::softmax_bwd || kind == Kind::log_softmax_bwd) {
        dnnl_softmax_v2_desc_t b;
        ok(dnnl_softmax_v2_backward_desc_init(&b, alg, &s.md, &s.md, &s.md, 1), "softmax_backward_desc");
        ok(dnnl_primitive_desc_create(&s.pd, &b, nullptr, s.engine, s.fwd_pd), "primitive_desc");
      }
      break;
    }
    case Kind::layer_norm_fwd:
    case Kind::layer_norm_bwd: {
      s.mean.assign(std::size_t(rows), 0.0f);
      s.var.assign(std::size_t(rows), 1.0f);
      dnnl_layer_normalization_desc_t d;
      ok(dnnl_layer_normalization_forward_desc_init(&d, dnnl_forward_training, &s.md, &s.stat_md, 1e-5f, 0),
         "layer_norm_forward_desc");
      ok(dnnl_primitive_desc_create(&s.fwd_pd, &d, nullptr, s.engine, nullptr), "primitive_desc");
      if (kind == Kind::layer_norm_bwd) {
        dnnl_layer_normalization_desc_t b;
        ok(dnnl_layer_normalization_backward_desc_init(&b, dnnl_backward_data, &s.md, &s.md, &s.stat_md, 1e-5f, 0),
           "layer_norm_backward_desc");
        ok(dnnl_primitive_desc_create(&s.pd, &b, nullptr, s.engine, s.fwd_pd), "primitive_desc");
      }
      break;
    }
  }
  ok(dnnl_primitive_create(&s.fwd_prim, s.fwd_pd), "primitive_create");
  if (s.pd) ok(dnnl_primitive_create(&s.prim, s.pd), "primitive_create");
  const char* info = nullptr;
  dnnl_primitive_desc_query(s.pd ? s.pd : s.fwd_pd, dnnl_query_impl_info_str, 0, &info);
  s.impl = info ? info : "?";
}

OnednnPrimitive::~OnednnPrimitive() = default;

void OnednnPrimitive::run(const float* in0, const float* in1, float* out) {
  State& s = *s_;
  void* x = const_cast<float*>(in0);
  void* d = const_cast<float*>(in1);
  const dnnl_memory_desc_t* md = &s.md;
  const dnnl_memory_desc_t* st = &s.stat_md;
  switch (s.kind) {
    case Kind::eltwise_fwd:
    case Kind::softmax_fwd:
    case Kind::log_softmax_fwd:
      return s.execute(s.fwd_prim, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, out}}, {md, md});
    case Kind::eltwise_bwd:
      return s.execute(s.prim, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, d}, {DNNL_ARG_DIFF_SRC, out}}, {md, md, md});
    case Kind::softmax_bwd:
    case Kind::log_softmax_bwd:
      return s.execute(s.prim, {{DNNL_ARG_DST, x}, {DNNL_ARG_DIFF_DST, d}, {DNNL_ARG_DIFF_SRC, out}}, {md, md, md});
    case Kind::layer_norm_fwd:
      return s.execute(s.fwd_prim, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, out}, {DNNL_ARG_MEAN, s.mean.data()},
                                    {DNNL_ARG_VARIANCE, s.var.data()}},
                       {md, md, st, st});
    case Kind::layer_norm_bwd:
      // The backward takes the forward's statistics of x: computed (untimed by callers
      // that run once before timing) the first time and whenever x changes.
      if (s.stats_of != in0) {
        s.scratch.resize(s.mean.size() * std::size_t(s.md.dims[1]));
        s.execute(s.fwd_prim, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, s.scratch.data()}, {DNNL_ARG_MEAN, s.mean.data()},
                               {DNNL_ARG_VARIANCE, s.var.data()}},
                  {md, md, st, st});
        s.stats_of = in0;
      }
      return s.execute(s.prim, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, d}, {DNNL_ARG_MEAN, s.mean.data()},
                                {DNNL_ARG_VARIANCE, s.var.data()}, {DNNL_ARG_DIFF_SRC, out}},
                       {md, md, st, st, md});
  }
}

const std::string& OnednnPrimitive::implementation() const { return s_->impl; }

}  // namespace tg::peers
